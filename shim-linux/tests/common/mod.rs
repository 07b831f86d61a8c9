//! Helpers shared by the integration tests (each test file uses a subset).
#![allow(dead_code)]

use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use usockets_core::{Event, Interest, ListenOptions, ListenTarget, OsShim, PeerAddr, Token};
use usockets_shim_linux::{Fd, LinuxShim};

pub const LISTENER: Token = Token(1);
pub const CONN: Token = Token(2);

pub fn shim() -> LinuxShim {
    LinuxShim::new().expect("LinuxShim::new")
}

/// Waits (up to `within`) until a `wait` reports `token`; returns that event.
pub fn wait_token(shim: &mut LinuxShim, token: Token, within: Duration) -> Option<Event> {
    let deadline = Instant::now() + within;
    let mut events = [Event::EMPTY; 64];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let n = shim
            .wait(&mut events, Some(left.as_millis() as u64))
            .expect("wait");
        if let Some(ev) = events[..n].iter().find(|e| e.token == token) {
            return Some(*ev);
        }
        if Instant::now() >= deadline {
            return None;
        }
    }
}

/// One `wait(Some(ms))`: the event for `token`, if reported.
pub fn poll_once(shim: &mut LinuxShim, token: Token, ms: u64) -> Option<Event> {
    let mut events = [Event::EMPTY; 64];
    let n = shim.wait(&mut events, Some(ms)).expect("wait");
    events[..n].iter().find(|e| e.token == token).copied()
}

pub fn listen_host(shim: &mut LinuxShim, host: Option<&str>) -> Fd {
    shim.listen(
        ListenTarget::Host { host, port: 0 },
        ListenOptions::default(),
    )
    .expect("listen")
}

pub fn local(shim: &mut LinuxShim, fd: &Fd) -> SocketAddr {
    match shim.local_addr(fd).expect("local_addr") {
        PeerAddr::Ip(a) => a,
        PeerAddr::Unix => panic!("not an IP socket"),
    }
}

/// Registers `listener` (readable, [`LISTENER`]) and accepts one connection.
pub fn accept_one(shim: &mut LinuxShim, listener: &Fd) -> (Fd, PeerAddr) {
    shim.register(listener, LISTENER, Interest::READABLE)
        .expect("register listener");
    let ev = wait_token(shim, LISTENER, Duration::from_secs(5)).expect("listener readable");
    assert!(ev.readable());
    let got = shim
        .accept(listener)
        .expect("accept")
        .expect("a connection");
    shim.deregister(listener).expect("deregister listener");
    got
}

/// Whether `fd` has `FD_CLOEXEC` (F_GETFD only reads the descriptor table, so a raw number
/// is fine here).
pub fn cloexec<F: AsRawFd>(fd: &F) -> bool {
    let raw = fd.as_raw_fd();
    // SAFETY: F_GETFD takes no argument and touches no memory.
    let flags = unsafe { libc::fcntl(raw, libc::F_GETFD) };
    assert!(flags >= 0, "fcntl(F_GETFD) on {raw} failed");
    flags & libc::FD_CLOEXEC != 0
}

/// A fresh unix socket path in the temp dir, unique per process and call.
pub fn unique_path(tag: &str) -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("usl-{tag}-{}-{n}.sock", std::process::id()))
}

/// Receives until `want` bytes arrived (waiting for readability in between).
pub fn recv_exact(shim: &mut LinuxShim, fd: &Fd, token: Token, want: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while out.len() < want {
        wait_token(shim, token, Duration::from_secs(5)).expect("readable");
        match shim.recv(fd, &mut buf) {
            Ok(0) => panic!("EOF after {} of {want} bytes", out.len()),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.is_would_block() => {}
            Err(e) => panic!("recv: {e}"),
        }
    }
    out
}
