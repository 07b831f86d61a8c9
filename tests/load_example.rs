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

#[test]
fn handshake_mode_opens_a_connection_per_response() {
    let server = support::start("echo_server", &[]);
    let (requests, errors) = load(
        server.port,
        &[
            "--mode",
            "handshake",
            "--requests",
            "300",
            "--connections",
            "4",
        ],
    );
    assert_eq!(errors, 0);
    assert!(requests >= 300, "{requests} requests");
}

/// The certificate files `bench_cert` writes, in a fresh directory removed on drop.
#[cfg(feature = "tls")]
struct Certs {
    dir: std::path::PathBuf,
}

#[cfg(feature = "tls")]
impl Certs {
    /// Runs `bench_cert` into a directory of this test process's own.
    fn new() -> Certs {
        let dir = std::env::temp_dir().join(format!("usockets-load-certs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("certificate dir");
        let run = support::run_example("bench_cert", &[dir.to_str().expect("utf-8 dir")], TIMEOUT);
        assert!(run.status.success(), "bench_cert failed");
        Certs { dir }
    }

    /// The path of file `name` of the directory, as an argument.
    fn path(&self, name: &str) -> String {
        self.dir.join(name).to_str().expect("utf-8 path").to_owned()
    }
}

#[cfg(feature = "tls")]
impl Drop for Certs {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// What `benches/tls.sh` runs, counted instead of timed, against both TLS servers: echo, full
/// handshakes (a resumed session fails the run), and a client speaking no TLS in between, which
/// must cost the server nothing but that connection.
#[cfg(feature = "tls")]
#[test]
fn tls_echo_and_full_handshakes_against_both_tls_servers() {
    use std::io::{Read, Write};
    let certs = Certs::new();
    let (ca, cert, key) = (
        certs.path("ca.pem"),
        certs.path("cert.pem"),
        certs.path("key.pem"),
    );
    for name in ["echo_server", "tokio_tls_echo_server"] {
        let server = support::start(name, &["--cert", &cert, "--key", &key]);
        let echo = [
            "--tls",
            &ca,
            "--mode",
            "echo",
            "--requests",
            "2000",
            "--connections",
            "10",
            "--payload",
            "1000",
        ];
        let (requests, errors) = load(server.port, &echo);
        assert_eq!(errors, 0, "{name}");
        assert!(requests >= 2000, "{name}: {requests} requests");

        let mut plain = std::net::TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
        plain
            .write_all(b"GET / HTTP/1.1\r\n\r\n")
            .expect("send garbage");
        plain
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("read timeout");
        let mut answer = Vec::new();
        let _ = plain.read_to_end(&mut answer);

        let handshakes = [
            "--tls",
            &ca,
            "--mode",
            "handshake",
            "--requests",
            "200",
            "--connections",
            "4",
        ];
        let (requests, errors) = load(server.port, &handshakes);
        assert_eq!(errors, 0, "{name}");
        assert!(requests >= 200, "{name}: {requests} requests");
    }
}
