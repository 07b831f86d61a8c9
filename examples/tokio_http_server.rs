//! Benchmark peer only (`benches/suite.sh`): the keep-alive HTTP server one writes with tokio,
//! with the same request parser and response bytes as `http_server` and `mio_http_server`
//! (`shared/http.rs`), on tokio's current-thread runtime, since our loop runs on one thread too.
//! Each connection is a task that reads up to 16 KiB, counts the complete requests in it and
//! writes their responses from the prepared batch.
//!
//! `cargo run --release --example tokio_http_server -- --port 0` prints `listening on port N`,
//! as `http_server` does.
//!
//! Memory per client is bounded: one 16 KiB buffer, and a client that pipelines without reading
//! stalls its own task in `write_all` (nothing queues). Unlike `http_server` it has no idle
//! timeout (tokio's timers would add cost the comparison is not about), and when accept fails
//! (out of descriptors) it retries at once, as `mio_http_server` does.
//!
//! With `--echo` it is instead the tokio peer of `echo_server` (`benches/suite.sh`'s `uring`
//! section): each connection's task writes back every byte it reads, in order, from the same
//! 16 KiB buffer (bounded the same way: a client that sends without reading stalls its task).

#[path = "shared/http.rs"]
#[allow(dead_code)]
mod http;

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr};

use http::{responses, RequestCounter, BATCH};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Bytes read at once per connection.
const BUFFER: usize = 16 * 1024;

/// Exits with a message (set-up failures only: nothing a client does reaches here).
fn fail(what: &str, e: impl std::fmt::Display) -> ! {
    eprintln!("tokio_http_server: {what}: {e}");
    std::process::exit(1);
}

/// `--port N` (default 3000) and `--echo` (echo instead of HTTP), in any order.
fn options() -> (u16, bool) {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (mut port, mut echo) = (3000, false);
    let mut i = 0;
    while i < args.len() {
        match (args[i].as_str(), args.get(i + 1)) {
            ("--echo", _) => {
                echo = true;
                i += 1;
            }
            ("--port", Some(value)) => {
                port = value
                    .parse()
                    .unwrap_or_else(|e| fail(&format!("--port {value}"), e));
                i += 2;
            }
            _ => {
                eprintln!("usage: tokio_http_server [--port N] [--echo]");
                std::process::exit(2);
            }
        }
    }
    (port, echo)
}

/// Answers every complete request on `stream` until the client goes or an error.
async fn serve(mut stream: TcpStream) {
    let mut buf = vec![0u8; BUFFER];
    let mut parser = RequestCounter::default();
    loop {
        let n = match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let mut requests = parser.feed(&buf[..n]);
        while requests > 0 {
            let k = requests.min(BATCH);
            requests -= k;
            if stream.write_all(responses(k)).await.is_err() {
                return;
            }
        }
    }
}

/// Echo mode: writes back every byte read on `stream` until the client goes or an error.
async fn echo(mut stream: TcpStream) {
    let mut buf = vec![0u8; BUFFER];
    loop {
        let n = match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if stream.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

fn main() {
    let (port, echo_mode) = options();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .unwrap_or_else(|e| fail("runtime", e));
    runtime.block_on(async {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let listener = TcpListener::bind(addr)
            .await
            .unwrap_or_else(|e| fail(&format!("cannot listen on port {port}"), e));
        let bound = listener
            .local_addr()
            .unwrap_or_else(|e| fail("local address", e));
        println!("listening on port {}", bound.port());
        let _ = std::io::stdout().flush();
        loop {
            // An accept error concerns one pending connection (or the descriptor limit): the
            // listener stays, after a pause so that running out of descriptors cannot make it
            // spin (a blocking pause: this peer has no timer feature, and it is rare).
            match listener.accept().await {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    if echo_mode {
                        tokio::spawn(echo(stream));
                    } else {
                        tokio::spawn(serve(stream));
                    }
                }
                Err(_) => std::thread::sleep(std::time::Duration::from_millis(10)),
            }
        }
    });
}
