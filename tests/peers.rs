//! Real peers that no one here wrote: curl, wrk, netcat and openssl against the example servers.
//!
//! Compiled only with `--features peers`, which `.ci/run` passes after installing the tools
//! (`apt-get install curl wrk netcat-openbsd openssl`); a missing tool fails the test loudly.
#![cfg(feature = "peers")]

mod support;

use std::io::Write;
use std::process::{Command, Stdio};

fn tool(name: &str) -> Command {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .output();
    assert!(
        found.map(|o| o.status.success()).unwrap_or(false),
        "{name} is not installed: install it (apt-get install curl wrk netcat-openbsd) or run without --features peers"
    );
    Command::new(name)
}

#[test]
fn curl_reuses_one_connection_for_several_requests() {
    let server = support::start("http_server", &[]);
    let url = format!("http://127.0.0.1:{}/", server.port);
    let out = tool("curl")
        .args(["-sv", "--max-time", "10", &url, &url, &url])
        .output()
        .expect("run curl");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "curl failed: {stderr}");
    assert_eq!(
        stdout.matches("Hello, World!").count(),
        3,
        "three bodies: {stdout}"
    );
    assert_eq!(
        stderr.matches("< HTTP/1.1 200 OK").count(),
        3,
        "three 200s: {stderr}"
    );
    let reused = stderr.matches("Re-using existing connection").count()
        + stderr.matches("Reusing existing connection").count();
    assert_eq!(
        reused, 2,
        "curl kept the connection alive for requests 2 and 3: {stderr}"
    );
    assert_eq!(
        stderr.matches("Connected to").count(),
        1,
        "one TCP connection: {stderr}"
    );
}

#[test]
fn wrk_sees_no_socket_errors_and_no_non_2xx() {
    let server = support::start("http_server", &[]);
    let url = format!("http://127.0.0.1:{}/", server.port);
    let out = tool("wrk")
        .args(["-t1", "-c50", "-d3s", &url])
        .output()
        .expect("run wrk");
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "wrk failed: {report} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !report.contains("Socket errors"),
        "wrk saw socket errors:\n{report}"
    );
    assert!(
        !report.contains("Non-2xx"),
        "wrk saw non-2xx responses:\n{report}"
    );
    let requests: u64 = report
        .lines()
        .find(|l| l.contains("requests in"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no request count in:\n{report}"));
    assert!(
        requests > 1000,
        "wrk completed only {requests} requests:\n{report}"
    );
}

#[test]
fn netcat_gets_its_bytes_echoed_and_the_connection_closed_on_eof() {
    let server = support::start("echo_server", &[]);
    let mut nc = tool("nc")
        .args(["-N", "-w", "5", "127.0.0.1", &server.port.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run nc");
    let payload: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    {
        let mut stdin = nc.stdin.take().expect("stdin");
        stdin.write_all(&payload).expect("write to nc");
    } // closing stdin makes nc (-N) shut down its side: the server answers FIN with FIN.
    let out = nc.wait_with_output().expect("nc output");
    assert!(out.status.success(), "nc failed");
    assert_eq!(out.stdout.len(), payload.len(), "every byte echoed");
    assert!(out.stdout == payload, "echoed bytes in order");
}

/// A CA and a server certificate for localhost it signed, as PEM files in a fresh directory
/// (made at test time: no private key is committed). Returns (dir, ca.pem, cert.pem, key.pem).
fn pki() -> (
    std::path::PathBuf,
    std::path::PathBuf,
    std::path::PathBuf,
    std::path::PathBuf,
) {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "usockets-pki-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).expect("pki dir");
    let ca_key = rcgen::KeyPair::generate().expect("CA key");
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "usockets peers test CA");
    let ca = ca_params.self_signed(&ca_key).expect("CA cert");
    let key = rcgen::KeyPair::generate().expect("server key");
    let params = rcgen::CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()])
        .expect("server params");
    let cert = params.signed_by(&key, &ca, &ca_key).expect("server cert");
    let (ca_pem, cert_pem, key_pem) = (
        dir.join("ca.pem"),
        dir.join("cert.pem"),
        dir.join("key.pem"),
    );
    std::fs::write(&ca_pem, ca.pem()).expect("write ca.pem");
    std::fs::write(&cert_pem, cert.pem()).expect("write cert.pem");
    std::fs::write(&key_pem, key.serialize_pem()).expect("write key.pem");
    (dir, ca_pem, cert_pem, key_pem)
}

/// `http_server --cert --key` on a free port.
fn https_server(cert: &std::path::Path, key: &std::path::Path) -> support::Server {
    support::start(
        "http_server",
        &[
            "--cert",
            cert.to_str().expect("utf-8 path"),
            "--key",
            key.to_str().expect("utf-8 path"),
        ],
    )
}

#[test]
fn curl_gets_the_hello_body_over_https_verifying_the_server() {
    let (dir, ca, cert, key) = pki();
    let server = https_server(&cert, &key);
    let url = format!("https://localhost:{}/", server.port);
    let out = tool("curl")
        .args(["-s", "-S", "--max-time", "10", "--cacert"])
        .arg(&ca)
        .args([&url, &url])
        .output()
        .expect("run curl");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "curl failed: {stderr}");
    assert_eq!(
        stdout, "Hello, World!Hello, World!",
        "two bodies over one TLS connection"
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// Runs `openssl s_client` against the server with `extra` options; returns its stdout.
fn s_client(port: u16, ca: &std::path::Path, extra: &[&str]) -> String {
    let out = tool("openssl")
        .args(["s_client", "-connect", &format!("127.0.0.1:{port}")])
        .args([
            "-servername",
            "localhost",
            "-verify_return_error",
            "-CAfile",
        ])
        .arg(ca)
        .args(extra)
        .stdin(Stdio::null())
        .output()
        .expect("run openssl");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "openssl s_client failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn openssl_s_client_verifies_the_certificate_in_tls13_and_tls12() {
    let (dir, ca, cert, key) = pki();
    let server = https_server(&cert, &key);
    let out = s_client(server.port, &ca, &[]);
    assert!(out.contains("Verify return code: 0 (ok)"), "{out}");
    assert!(out.contains("TLSv1.3"), "TLS 1.3 by default: {out}");
    let out = s_client(server.port, &ca, &["-tls1_2"]);
    assert!(out.contains("Verify return code: 0 (ok)"), "{out}");
    assert!(out.contains("TLSv1.2"), "TLS 1.2 when asked: {out}");
    let _ = std::fs::remove_dir_all(dir);
}

/// What our TLS client saw of `openssl s_server -www`.
#[derive(Default)]
struct Fetched {
    body: Vec<u8>,
    closed: bool,
    version: Option<usockets::tls::rustls::ProtocolVersion>,
}

type ClientApp = usockets::App<Fetched, (), ()>;

fn fetch_open(cx: &mut usockets::Cx<ClientApp>, s: usockets::SocketId, _: bool, _: &[u8]) {
    // Written during the handshake: held, then sent when it ends.
    assert_eq!(cx.write(s, b"GET / HTTP/1.0\r\n\r\n", false), 18);
}

fn fetch_data(
    cx: &mut usockets::Cx<ClientApp>,
    s: usockets::SocketId,
    data: &mut usockets::RecvBuf<'_>,
) {
    let version = usockets::tls::info(cx, s).and_then(|i| i.version);
    let seen = cx.ext_mut();
    seen.version = version;
    seen.body.extend_from_slice(data);
}

fn fetch_close(
    cx: &mut usockets::Cx<ClientApp>,
    _: usockets::SocketId,
    _: usockets::CloseCause<usize>,
) {
    cx.ext_mut().closed = true;
}

/// Our client (CA file, connecting to "localhost": chain and name verified) fetches
/// `openssl s_server -www`'s status page over `version`.
fn fetch_from_s_server(version: usockets::tls::Versions, flag: &str) -> Fetched {
    use usockets::tls::{ContextOptions, Options};
    let (dir, ca, cert, key) = pki();
    let mut server = tool("openssl")
        .args(["s_server", "-accept", "0", "-www", flag, "-cert"])
        .arg(&cert)
        .arg("-key")
        .arg(&key)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("run openssl s_server");
    let mut out = std::io::BufReader::new(server.stdout.take().expect("stdout"));
    let mut line = String::new();
    let port: u16 = loop {
        line.clear();
        let n = std::io::BufRead::read_line(&mut out, &mut line).expect("s_server output");
        assert!(n > 0, "s_server ended before accepting");
        // "ACCEPT [::]:PORT" or "ACCEPT 0.0.0.0:PORT".
        if let Some(rest) = line.trim().strip_prefix("ACCEPT ") {
            break rest
                .rsplit(':')
                .next()
                .and_then(|p| p.parse().ok())
                .expect("port");
        }
    };
    let mut l = usockets::new_loop(Fetched::default(), Default::default(), Default::default())
        .expect("loop");
    let callbacks = usockets::ContextCallbacks {
        on_open: Some(fetch_open),
        on_data: Some(fetch_data),
        on_close: Some(fetch_close),
        ..Default::default()
    };
    let ctx = l.context_create((), callbacks).expect("context");
    let client = ContextOptions {
        ca_file: Some(ca),
        ..ContextOptions::default()
    }
    .build(&Options::new(version))
    .expect("client context");
    assert!(l.set_layer_context(ctx, client));
    let target = usockets::ConnectTarget::Host {
        host: "localhost",
        port,
        source: None,
    };
    l.connect(ctx, target, ()).expect("connect");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !l.ext().closed && std::time::Instant::now() < deadline {
        l.run_once(Some(100)).expect("run");
    }
    let _ = server.kill();
    let _ = server.wait();
    let _ = std::fs::remove_dir_all(dir);
    std::mem::take(l.ext_mut())
}

#[test]
fn our_client_verifies_openssl_s_server_and_reads_its_page_in_tls13_and_tls12() {
    for (version, flag, name) in [
        (usockets::tls::Versions::Tls13, "-tls1_3", "TLSv1.3"),
        (usockets::tls::Versions::Tls12, "-tls1_2", "TLSv1.2"),
    ] {
        let got = fetch_from_s_server(version, flag);
        let page = String::from_utf8_lossy(&got.body);
        assert!(got.closed, "s_server closes after the page");
        assert!(page.starts_with("HTTP/1.0 200 ok"), "{page}");
        assert!(page.contains(name), "s_server reports {name}: {page}");
        let expected = match version {
            usockets::tls::Versions::Tls12 => usockets::tls::rustls::ProtocolVersion::TLSv1_2,
            _ => usockets::tls::rustls::ProtocolVersion::TLSv1_3,
        };
        assert_eq!(got.version, Some(expected));
    }
}
