//! Syscall counters (`--features stats`).
#![cfg(feature = "stats")]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::*;
use usockets_core::{Event, Interest, OsShim};
use usockets_shim_linux::SyscallStats;

#[test]
fn counts_each_syscall_kind() {
    let mut shim = shim();
    let listener = listen_host(&mut shim, Some("127.0.0.1"));
    let addr = local(&mut shim, &listener);
    let mut client = TcpStream::connect(addr).unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    shim.register(&listener, LISTENER, Interest::READABLE)
        .unwrap();
    wait_token(&mut shim, LISTENER, Duration::from_secs(5)).unwrap();

    shim.reset_stats();
    assert_eq!(shim.stats(), SyscallStats::default());

    let (fd, _) = shim.accept(&listener).unwrap().unwrap();
    let s = shim.stats();
    assert_eq!(
        (s.accept, s.setsockopt),
        (1, 1),
        "accept + TCP_NODELAY: {s:?}"
    );

    shim.register(&fd, CONN, Interest::READABLE).unwrap();
    shim.modify(&fd, CONN, Interest::BOTH).unwrap();
    shim.deregister(&fd).unwrap();
    assert_eq!(shim.stats().epoll_ctl, 3);

    shim.reset_stats();
    shim.send(&fd, b"a", true).unwrap();
    shim.flush(&fd).unwrap(); // TCP_NODELAY push
    shim.flush(&fd).unwrap(); // nothing held: no syscall
    shim.send(&fd, b"b", false).unwrap();
    shim.flush(&fd).unwrap(); // a plain send pushed it: no syscall
    shim.send2(&fd, b"c", b"d").unwrap();
    let mut buf = [0u8; 4];
    client.read_exact(&mut buf).unwrap();
    client.write_all(b"x").unwrap();
    shim.register(&fd, CONN, Interest::READABLE).unwrap();
    wait_token(&mut shim, CONN, Duration::from_secs(5)).unwrap();
    shim.recv(&fd, &mut buf).unwrap();
    let s = shim.stats();
    assert_eq!(
        (s.send, s.setsockopt, s.writev, s.recv, s.epoll_ctl),
        (2, 1, 1, 1, 1),
        "{s:?}"
    );
    assert!(s.epoll_wait >= 1);

    shim.reset_stats();
    let mut events = [Event::EMPTY; 4];
    shim.wait(&mut events, Some(0)).unwrap();
    let _ = shim.now_ms(); // vDSO, not counted
    shim.close(fd);
    shim.local_addr(&listener).unwrap();
    let s = shim.stats();
    assert_eq!((s.epoll_wait, s.close, s.other), (1, 1, 1), "{s:?}");
    assert_eq!(s.total(), 3);
    shim.close(listener);
}

#[test]
fn connect_is_counted() {
    let mut shim = shim();
    let listener = listen_host(&mut shim, Some("127.0.0.1"));
    let port = local(&mut shim, &listener).port();
    shim.reset_stats();
    let fd = shim
        .connect(usockets_core::ConnectTarget::Host {
            host: "127.0.0.1",
            port,
            source: None,
        })
        .unwrap();
    let s = shim.stats();
    // A literal address skips getaddrinfo: socket (other), TCP_NODELAY, connect.
    assert_eq!((s.connect, s.setsockopt, s.other), (1, 1, 1), "{s:?}");
    shim.close(fd);
    // A name goes through the resolver (counted as other).
    shim.reset_stats();
    let fd = shim
        .connect(usockets_core::ConnectTarget::Host {
            host: "localhost",
            port,
            source: None,
        })
        .unwrap();
    let s = shim.stats();
    assert_eq!((s.connect, s.setsockopt, s.other), (1, 1, 2), "{s:?}");
    shim.close(fd);
    shim.close(listener);
}
