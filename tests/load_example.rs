//! The load example against the example servers: every response byte is checked, so a clean
//! summary means the servers answered every request correctly under load.

mod support;

use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(60);

/// Runs `load --port <port> <args>` and returns its summary's requests and errors, asserting it
/// succeeded.
fn load(port: u16, args: &[&str]) -> (u64, u64) {
    let port = port.to_string();
    let mut all = vec!["--port", port.as_str()];
    all.extend_from_slice(args);
    let run = support::run_example("load", &all, TIMEOUT);
    let f = support::summary_fields(&run.stdout, "summary:");
    eprintln!("load {args:?}: {f:?}");
    assert!(
        run.status.success(),
        "load {args:?} failed ({}):\n{}",
        run.status,
        run.stdout
    );
    let n = |k: &str| -> u64 {
        f.get(k)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no number {k} in {f:?}"))
    };
    (n("requests"), n("errors"))
}

#[test]
fn http_20000_requests_one_in_flight_per_connection() {
    let server = support::start("http_server", &[]);
    let (requests, errors) = load(
        server.port,
        &[
            "--requests",
            "20000",
            "--connections",
            "50",
            "--pipeline",
            "1",
        ],
    );
    assert_eq!(errors, 0);
    assert!(requests >= 20000, "{requests} requests");
}

#[test]
fn http_20000_requests_sixteen_pipelined() {
    let server = support::start("http_server", &[]);
    let (requests, errors) = load(
        server.port,
        &[
            "--requests",
            "20000",
            "--connections",
            "50",
            "--pipeline",
            "16",
        ],
    );
    assert_eq!(errors, 0);
    assert!(requests >= 20000, "{requests} requests");
}

#[test]
fn echo_20000_messages() {
    let server = support::start("echo_server", &[]);
    for pipeline in ["1", "8"] {
        let (requests, errors) = load(
            server.port,
            &[
                "--mode",
                "echo",
                "--requests",
                "20000",
                "--connections",
                "50",
                "--pipeline",
                pipeline,
                "--payload",
                "100",
            ],
        );
        assert_eq!(errors, 0);
        assert!(requests >= 20000, "{requests} requests");
    }
}

#[test]
fn a_wrong_response_byte_fails_the_run() {
    // The echo server sends the request back: its first byte already differs from the response.
    let server = support::start("echo_server", &[]);
    let port = server.port.to_string();
    let run = support::run_example(
        "load",
        &["--port", &port, "--requests", "100", "--connections", "2"],
        TIMEOUT,
    );
    assert!(
        !run.status.success(),
        "a mismatch must fail:\n{}",
        run.stdout
    );
}

#[test]
fn refused_connections_are_errors() {
    // A port that was just free: nothing listens there any more.
    let port = {
        let server = support::start("echo_server", &[]);
        server.port
    };
    let port = port.to_string();
    let run = support::run_example(
        "load",
        &["--port", &port, "--requests", "100", "--connections", "3"],
        TIMEOUT,
    );
    assert!(!run.status.success(), "refused connects must fail");
    let f = support::summary_fields(&run.stdout, "summary:");
    assert_eq!(f.get("requests").map(String::as_str), Some("0"), "{f:?}");
    assert_eq!(f.get("errors").map(String::as_str), Some("3"), "{f:?}");
}
