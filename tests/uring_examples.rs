//! The example servers on io_uring (`--shim uring`) over real loopback sockets: the same server
//! code as on epoll, checked byte for byte, and checked to really run on an io_uring (the
//! process holds an io_uring descriptor and no epoll one), while the default stays epoll.
//!
//! These tests need io_uring. Where it is not available they FAIL, saying so: they never pass
//! without having run the servers on it.
#![cfg(target_os = "linux")]

mod support;

#[path = "../examples/shared/http.rs"]
#[allow(dead_code)]
mod http;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::process::Command;
use std::thread;
use std::time::Duration;

use http::{ResponseChecker, REQUEST, RESPONSE};

/// Fails the test, loudly, where io_uring cannot be used.
fn require_io_uring() {
    if let Err(e) = usockets::uring::UringShim::new() {
        panic!(
            "io_uring is not available here ({e}, kind {:?}): the `--shim uring` tests cannot \
             run, and fail rather than pass without having run",
            e.kind
        );
    }
}

/// The anonymous-inode kinds among `pid`'s descriptors (`io_uring`, `eventpoll`, `eventfd`...).
fn anon_inodes(pid: u32) -> Vec<String> {
    let dir = format!("/proc/{pid}/fd");
    std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("read {dir}: {e}"))
        .filter_map(|entry| std::fs::read_link(entry.ok()?.path()).ok())
        .filter_map(|target| {
            let t = target.to_str()?;
            Some(
                t.strip_prefix("anon_inode:")?
                    .trim_matches(['[', ']'])
                    .to_string(),
            )
        })
        .collect()
}

/// Asserts that the server runs on io_uring (`uring`) or on epoll.
fn assert_runs_on(server: &support::Server, uring: bool) {
    let kinds = anon_inodes(server.pid());
    let has = |k: &str| kinds.iter().any(|x| x == k);
    if uring {
        assert!(
            has("io_uring") && !has("eventpoll"),
            "not on io_uring: {kinds:?}"
        );
    } else {
        assert!(
            has("eventpoll") && !has("io_uring"),
            "not on epoll: {kinds:?}"
        );
    }
}

fn connect(port: u16) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_nodelay(true).expect("nodelay");
    s.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    s
}

/// Reads exactly `n` fixed responses (never past them).
fn read_responses(s: &mut TcpStream, n: usize) {
    let mut checker = ResponseChecker::default();
    let mut buf = vec![0u8; 64 * 1024];
    let (mut got, mut bytes) = (0, 0);
    while bytes < n * RESPONSE.len() {
        let want = buf.len().min(n * RESPONSE.len() - bytes);
        let k = match s.read(&mut buf[..want]) {
            Ok(k) => k,
            // A signal may interrupt the read: read again.
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => panic!("read responses: {e}"),
        };
        assert!(k > 0, "server closed after {got} of {n} responses");
        bytes += k;
        got += checker
            .feed(&buf[..k])
            .unwrap_or_else(|at| panic!("bad response byte {at} after {got} responses"));
    }
    assert_eq!(got, n, "complete responses");
}

/// Byte `i` of the echo test stream (catches loss, duplication and reordering).
fn pattern(i: usize) -> u8 {
    (i.wrapping_mul(31) ^ (i >> 9)) as u8
}

#[test]
fn http_server_on_io_uring_answers_split_pipelined_and_fin_ended_requests() {
    require_io_uring();
    let server = support::start("http_server", &["--shim", "uring"]);
    assert_runs_on(&server, true);

    // One request byte by byte, then 16 pipelined in one segment, on a kept-alive connection.
    let mut s = connect(server.port);
    for b in REQUEST {
        s.write_all(&[*b]).expect("write");
        thread::sleep(Duration::from_millis(1));
    }
    read_responses(&mut s, 1);
    s.write_all(&REQUEST.repeat(16)).expect("write");
    read_responses(&mut s, 16);

    // 10 000 pipelined requests then our FIN: every response, then the server's FIN.
    const REQUESTS: usize = 10_000;
    let mut s = connect(server.port);
    let mut w = s.try_clone().expect("clone");
    let writer = thread::spawn(move || {
        let chunk = REQUEST.repeat(1000);
        for _ in 0..REQUESTS / 1000 {
            w.write_all(&chunk).expect("write requests");
        }
        w.shutdown(Shutdown::Write).expect("shutdown");
    });
    read_responses(&mut s, REQUESTS);
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).expect("read to the server's FIN");
    assert!(
        rest.is_empty(),
        "{} bytes after the last response",
        rest.len()
    );
    writer.join().expect("writer");
}

#[test]
fn echo_server_on_io_uring_echoes_8_mib_then_closes_after_the_fin() {
    const LEN: usize = 8 << 20;
    require_io_uring();
    let server = support::start("echo_server", &["--shim", "uring"]);
    assert_runs_on(&server, true);
    let mut s = connect(server.port);
    let mut w = s.try_clone().expect("clone");
    let writer = thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        let mut at = 0;
        while at < LEN {
            let n = buf.len().min(LEN - at);
            for (k, b) in buf[..n].iter_mut().enumerate() {
                *b = pattern(at + k);
            }
            w.write_all(&buf[..n]).expect("write");
            at += n;
        }
        w.shutdown(Shutdown::Write).expect("shutdown");
    });
    let mut buf = vec![0u8; 64 * 1024];
    let mut got = 0;
    loop {
        let n = match s.read(&mut buf) {
            Ok(n) => n,
            // A signal (another test's child exiting) may interrupt the read: read again.
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => panic!("read after {got} bytes: {e}"),
        };
        if n == 0 {
            break;
        }
        for (k, &b) in buf[..n].iter().enumerate() {
            assert_eq!(b, pattern(got + k), "byte {} differs", got + k);
        }
        got += n;
    }
    writer.join().expect("writer");
    assert_eq!(got, LEN, "bytes echoed before the server's FIN");
}

#[test]
fn the_default_and_shim_epoll_run_on_epoll() {
    for args in [&[][..], &["--shim", "epoll"][..]] {
        for name in ["http_server", "echo_server"] {
            let server = support::start(name, args);
            assert_runs_on(&server, false);
        }
    }
}

#[test]
fn an_unknown_shim_is_refused_with_usage() {
    for name in ["http_server", "echo_server"] {
        let out = Command::new(support::example(name))
            .args(["--port", "0", "--shim", "kqueue"])
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(2), "{name}: {out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("--shim"), "{name}: {err}");
        assert!(out.stdout.is_empty(), "{name} started: {out:?}");
    }
}
