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
