//! Real peers that no one here wrote: curl, wrk and netcat against the example servers.
//!
//! Compiled only with `--features peers`, which `.ci/run` passes after installing the tools
//! (`apt-get install curl wrk netcat-openbsd`); a missing tool fails the test loudly.
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
