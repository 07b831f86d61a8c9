//! Benchmark peer only (`benches/tls.sh`): the TLS echo server one writes with tokio and
//! tokio-rustls, to compare with `echo_server --cert --key`. Same crypto as ours (rustls 0.23 on
//! ring), TLS 1.3, the same certificate and key, and tokio's current-thread runtime, since our
//! loop runs on one thread too. Each connection is a task that reads up to 16 KiB of plaintext
//! and writes it back.
//!
//! `cargo run --release --example tokio_tls_echo_server -- --port 0 --cert cert.pem --key
//! key.pem` prints `listening on port N`, as `echo_server` does.
//!
//! A client that sends garbage, fails its handshake or vanishes only ends its own task (the
//! error is printed, unless it is an ordinary disconnect). Unlike `echo_server` it has no idle
//! timeout and no per-client memory bound beyond one buffer: a timer per read would add cost
//! that the comparison is not about.

use std::io::{ErrorKind, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::{self, ServerConfig};
use tokio_rustls::TlsAcceptor;

/// Plaintext read at once: one TLS record's worth.
const BUFFER: usize = 16 * 1024;

/// Exits with a message (set-up failures only: nothing a client does reaches here).
fn fail(what: &str, e: impl std::fmt::Display) -> ! {
    eprintln!("tokio_tls_echo_server: {what}: {e}");
    std::process::exit(1);
}

/// Exits with the usage message.
fn usage() -> ! {
    eprintln!("usage: tokio_tls_echo_server [--port N] --cert FILE --key FILE");
    std::process::exit(2);
}

/// `--port` (default 3001), `--cert`, `--key`.
fn args() -> (u16, String, String) {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (mut port, mut cert, mut key) = (3001, None, None);
    for pair in args.chunks(2) {
        let [flag, value] = pair else { usage() };
        match flag.as_str() {
            "--port" => port = value.parse().unwrap_or_else(|_| usage()),
            "--cert" => cert = Some(value.clone()),
            "--key" => key = Some(value.clone()),
            _ => usage(),
        }
    }
    match (cert, key) {
        (Some(cert), Some(key)) => (port, cert, key),
        _ => usage(),
    }
}

/// TLS 1.3 on ring with the certificate chain and key of the PEM files.
fn server_config(cert: &str, key: &str) -> Arc<ServerConfig> {
    let chain = CertificateDer::pem_file_iter(Path::new(cert))
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .unwrap_or_else(|e| fail(cert, e));
    let key = PrivateKeyDer::from_pem_file(Path::new(key)).unwrap_or_else(|e| fail(key, e));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .and_then(|b| b.with_no_client_auth().with_single_cert(chain, key))
        .unwrap_or_else(|e| fail("TLS configuration", e));
    Arc::new(config)
}

/// Errors that only mean the client went away (without close_notify, or resetting).
fn ordinary(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::UnexpectedEof | ErrorKind::ConnectionReset | ErrorKind::BrokenPipe
    )
}

/// One connection: the handshake, then every byte back until the client is done.
async fn echo(acceptor: TlsAcceptor, tcp: TcpStream) -> std::io::Result<()> {
    let mut tls = acceptor.accept(tcp).await?;
    let mut buf = vec![0u8; BUFFER];
    loop {
        let n = tls.read(&mut buf).await?;
        if n == 0 {
            // close_notify (or FIN): close at once, as echo_server does over TLS.
            return Ok(());
        }
        tls.write_all(&buf[..n]).await?;
        tls.flush().await?;
    }
}

/// Accepts forever, a task per connection.
async fn serve(port: u16, config: Arc<ServerConfig>) -> std::io::Result<()> {
    let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::UNSPECIFIED, port))).await?;
    println!("listening on port {}", listener.local_addr()?.port());
    std::io::stdout().flush()?;
    let acceptor = TlsAcceptor::from(config);
    loop {
        match listener.accept().await {
            Ok((tcp, peer)) => {
                let _ = tcp.set_nodelay(true);
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    if let Err(e) = echo(acceptor, tcp).await {
                        if !ordinary(&e) {
                            eprintln!("tokio_tls_echo_server: {peer}: {e}");
                        }
                    }
                });
            }
            Err(e) => {
                // Out of descriptors, most likely: say so and pause rather than spin (blocking
                // the one thread briefly; this is a benchmark peer, not a production server).
                eprintln!("tokio_tls_echo_server: accept: {e}");
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
        }
    }
}

fn main() {
    let (port, cert, key) = args();
    let config = server_config(&cert, &key);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .unwrap_or_else(|e| fail("runtime", e));
    if let Err(e) = runtime.block_on(serve(port, config)) {
        fail(&format!("cannot serve on port {port}"), e);
    }
}
