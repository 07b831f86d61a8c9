//! Tests that change process-wide state (the descriptor limit) or need a quiet descriptor
//! table. Each runs in a child process: the parent test re-runs this test binary with
//! `--ignored --exact` on one `child_*` test and an environment variable naming it. The child
//! tests are `#[ignore]`d, so a normal run reports them as ignored, never as passed, and they
//! refuse to run outside their parent.

mod common;

use std::fs::File;
use std::io::{ErrorKind as IoKind, Read};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::process::Command;
use std::time::Duration;

use common::*;
use usockets_core::{Interest, OsShim};

const CHILD_ENV: &str = "USOCKETS_SHIM_LINUX_CHILD";

/// Fails unless this process is the child its parent test started for test `name`.
fn assert_child(name: &str) {
    assert_eq!(
        std::env::var(CHILD_ENV).as_deref(),
        Ok(name),
        "{name} runs only in the child process its parent test starts"
    );
}

/// Runs test `name` alone in a child process and checks it passed.
fn run_child(name: &str) {
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            name,
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, name)
        .output()
        .expect("spawn child test process");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "child {name} failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        out.status
    );
}

#[test]
fn emfile_sheds_pending_connection() {
    run_child("child_emfile");
}

#[test]
fn private_descriptors_are_cloexec() {
    run_child("child_private_fds");
}

/// Whether `fd` is open.
fn is_open(fd: i32) -> bool {
    // SAFETY: F_GETFD takes no argument and touches no memory.
    unsafe { libc::fcntl(fd, libc::F_GETFD) >= 0 }
}

/// Opens `/dev/null` until the descriptor table is full.
fn fill_descriptors() -> Vec<File> {
    let mut fillers = Vec::new();
    loop {
        match File::open("/dev/null") {
            Ok(f) => fillers.push(f),
            Err(e) if e.raw_os_error() == Some(libc::EMFILE) => return fillers,
            Err(e) => panic!("unexpected error while filling: {e}"),
        }
        assert!(
            fillers.len() < 100_000,
            "the descriptor limit was not lowered"
        );
    }
}

/// The shed client sees EOF (or a reset), never a hang.
fn assert_shed(client: &mut TcpStream) {
    let mut buf = [0u8; 1];
    match client.read(&mut buf) {
        Ok(0) => {}
        Err(e) if e.kind() == IoKind::ConnectionReset => {}
        other => panic!("the pending connection was not shed: {other:?}"),
    }
}

#[test]
#[ignore = "runs in a child process, started by emfile_sheds_pending_connection"]
fn child_emfile() {
    assert_child("child_emfile");
    let mut shim = shim();
    let listener = listen_host(&mut shim, Some("127.0.0.1"));
    let addr = local(&mut shim, &listener);
    shim.register(&listener, LISTENER, Interest::READABLE)
        .unwrap();
    let connect = || {
        let c = TcpStream::connect(addr).expect("client connect");
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        c
    };
    let mut client = connect();

    // Lower the limit for this process only, then use every remaining descriptor.
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a live rlimit the call fills.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
    lim.rlim_cur = lim.rlim_cur.min(128);
    // SAFETY: `lim` is a live, initialised rlimit the call reads.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) }, 0);
    let mut fillers = fill_descriptors();

    // Round 1: accept4 fails with EMFILE; the shim sheds the pending connection (and finds no
    // other), so there is nothing to accept.
    let ev = poll_once(&mut shim, LISTENER, 5000).expect("listener readable");
    assert!(ev.readable());
    assert!(matches!(shim.accept(&listener), Ok(None)));
    assert_shed(&mut client);
    // Not readable any more: nothing left in the backlog.
    assert_eq!(poll_once(&mut shim, LISTENER, 50), None);
    // With the table full, Linux fails accept4 with EMFILE even when no connection is pending
    // (it allocates the descriptor first); the shim finds nothing to shed.
    assert!(matches!(shim.accept(&listener), Ok(None)));
    // The reserve was taken back: the table is still full.
    assert_eq!(
        File::open("/dev/null").unwrap_err().raw_os_error(),
        Some(libc::EMFILE)
    );

    // Round 2 (proves the reserve was reopened): one slot for a new client, and again.
    drop(fillers.pop());
    let mut client2 = connect();
    poll_once(&mut shim, LISTENER, 5000).expect("listener readable again");
    assert!(matches!(shim.accept(&listener), Ok(None)));
    assert_shed(&mut client2);
    assert_eq!(poll_once(&mut shim, LISTENER, 50), None);

    // Round 3: several pending; each accept call sheds every one queued by then, at one
    // accept4 each plus two per call (the failing one and the one finding the backlog empty).
    for _ in 0..5 {
        drop(fillers.pop());
    }
    let mut flood: Vec<TcpStream> = (0..5).map(|_| connect()).collect();
    #[cfg(feature = "stats")]
    let accepts = shim.stats().accept;
    let mut calls = 0;
    let mut byte = [0u8; 1];
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    for c in &mut flood {
        // Until this client is shed (the handshakes complete in the kernel at their own pace).
        c.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
        loop {
            match c.read(&mut byte) {
                Ok(0) => break,
                Err(e) if e.kind() == IoKind::ConnectionReset => break,
                Err(e) if matches!(e.kind(), IoKind::WouldBlock | IoKind::TimedOut) => {}
                other => panic!("the pending connection was not shed: {other:?}"),
            }
            assert!(
                std::time::Instant::now() < deadline,
                "a client was never shed"
            );
            assert!(matches!(shim.accept(&listener), Ok(None)));
            calls += 1;
        }
    }
    #[cfg(feature = "stats")]
    assert_eq!(
        shim.stats().accept - accepts,
        5 + 2 * calls,
        "accept4 calls to shed five in {calls} accept call(s)"
    );

    // Recovery: with descriptors free again, accepting works.
    fillers.clear();
    let _client3 = connect();
    poll_once(&mut shim, LISTENER, 5000).expect("listener readable");
    let (fd, _) = shim.accept(&listener).unwrap().expect("accepted");
    shim.close(fd);
    shim.close(listener);
}

#[test]
#[ignore = "runs in a child process, started by private_descriptors_are_cloexec"]
fn child_private_fds() {
    assert_child("child_private_fds");
    let before: Vec<i32> = (0..4096).filter(|&fd| is_open(fd)).collect();
    let shim = shim();
    let new: Vec<i32> = (0..4096)
        .filter(|&fd| is_open(fd) && !before.contains(&fd))
        .collect();
    // epoll, the waker's eventfd, the deadline's timerfd and the reserve descriptor.
    assert_eq!(new.len(), 4, "{new:?}");
    assert!(new.contains(&shim.as_raw_fd()));
    for fd in new {
        assert!(cloexec(&fd), "descriptor {fd} is not close-on-exec");
    }
}
