//! A closed socket's queued bytes still go out (the close waits for them), but a peer that
//! never reads cannot keep the descriptor and its slab: after the close linger they are given
//! up and the descriptor closed.
#![cfg(target_os = "linux")]

mod common;

use std::io::Read;
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use common::{drive, listen_local, new_loop, U};
use usockets_core::{ContextCallbacks, Cx, ListenOptions, SocketId};
use usockets_shim_uring::UringConfig;

/// What descriptor `fd` of this process is (`socket:[inode]`), if it is open: the tests run
/// in parallel, so a number alone could be another test's by the time it is looked at.
fn what_is(fd: i32) -> Option<std::path::PathBuf> {
    std::fs::read_link(format!("/proc/self/fd/{fd}")).ok()
}

#[derive(Default)]
struct State {
    socket: Option<SocketId>,
    sent: u64,
}

type C = U<State, ()>;

/// Writes until the shim takes no more.
fn pump(cx: &mut Cx<C>, s: SocketId) {
    let block = [7u8; 64 * 1024];
    loop {
        let n = cx.write(s, &block, false);
        cx.ext_mut().sent += n as u64;
        if n < block.len() {
            return;
        }
    }
}

fn on_open(cx: &mut Cx<C>, s: SocketId, _client: bool, _ip: &[u8]) {
    cx.ext_mut().socket = Some(s);
    pump(cx, s);
}

fn on_writable(cx: &mut Cx<C>, s: SocketId) {
    pump(cx, s);
}

/// Fills a non-reading client's buffers, closes the server's socket, then (`read_after`) lets
/// the client read everything; returns how long the descriptor stayed open after the close,
/// what the client read and what the server wrote.
fn run(linger_ms: u64, read_after: bool) -> (Duration, u64, u64) {
    let config = UringConfig::default()
        .with_send_pool(4, 64 * 1024)
        .with_close_linger_ms(linger_ms);
    let mut l = new_loop::<State, ()>(config, State::default());
    let callbacks = ContextCallbacks {
        on_open: Some(on_open),
        on_writable: Some(on_writable),
        ..ContextCallbacks::default()
    };
    let port = listen_local(&mut l, callbacks, ListenOptions::default());
    let mut client = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    // The client does not read: the server's writes stall (kernel buffers and slab full).
    let mut last = u64::MAX;
    let mut quiet = 0;
    drive(
        &mut l,
        Duration::from_secs(10),
        "the writes to stall",
        |l| {
            let sent = l.ext().sent;
            quiet = if sent == last { quiet + 1 } else { 0 };
            last = sent;
            quiet >= 50
        },
    );
    assert_eq!(l.shim().send_slabs_in_use(), 1, "bytes wait in the slab");
    let s = l.ext().socket.expect("server socket");
    let raw = l.socket_fd(s).expect("server descriptor").as_raw_fd();
    let server_fd = what_is(raw).expect("the server's descriptor is open");
    l.close(s, 0, None);
    let sent = l.ext().sent;
    let closed_at = Instant::now();
    let mut read = 0u64;
    if read_after {
        client
            .set_read_timeout(Some(Duration::from_millis(5)))
            .expect("timeout");
        let mut buf = vec![0u8; 256 * 1024];
        let end = Instant::now() + Duration::from_secs(10);
        loop {
            match client.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => read += n as u64,
                Err(_) => {}
            }
            l.run_once(Some(0)).expect("run_once");
            assert!(Instant::now() < end, "no EOF after the server's close");
        }
    }
    drive(
        &mut l,
        Duration::from_secs(10),
        "the descriptor to be closed",
        |_| what_is(raw).as_ref() != Some(&server_fd),
    );
    let took = closed_at.elapsed();
    assert_eq!(l.shim().send_slabs_in_use(), 0, "the slab is back");
    (took, read, sent)
}

#[test]
fn queued_bytes_go_out_after_close_when_the_peer_reads() {
    let (_, read, sent) = run(10_000, true);
    assert_eq!(
        read, sent,
        "the client got every byte written before the close"
    );
}

#[test]
fn a_peer_that_never_reads_holds_the_descriptor_only_for_the_linger() {
    let (took, _, _) = run(300, false);
    assert!(
        took >= Duration::from_millis(250) && took < Duration::from_secs(5),
        "closed after {took:?}, the linger being 300 ms"
    );
}
