//! The simulated OS exercised directly through `OsShim` (not through core).

use std::net::SocketAddr;

use usockets_core::{
    ConnectTarget, ErrorKind, Event, Interest, ListenOptions, ListenTarget, OsShim, PeerAddr,
    Token, Wake,
};
use usockets_shim_sim::{
    ByteSource, FaultCounts, FaultSource, Faults, NoFaults, SeededRng, SimError, SimFd, SimNet,
    SimShim,
};

fn quiet() -> SimNet {
    SimNet::new(Faults::NONE, Box::new(NoFaults))
}

fn wait(shim: &mut SimShim, timeout: Option<u64>) -> Vec<Event> {
    let mut buf = [Event::EMPTY; 64];
    let n = shim.wait(&mut buf, timeout).expect("wait");
    buf[..n].to_vec()
}

fn find(events: &[Event], t: u64) -> Option<Event> {
    events.iter().copied().find(|e| e.token == Token(t))
}

fn any_host(port: u16) -> ListenTarget<'static> {
    ListenTarget::Host { host: None, port }
}

fn connect_to(port: u16) -> ConnectTarget<'static> {
    ConnectTarget::Host {
        host: "127.0.0.1",
        port,
        source: None,
    }
}

/// A listener on an ephemeral port, registered with token 1.
fn listener(shim: &mut SimShim) -> (SimFd, u16) {
    let fd = shim
        .listen(any_host(0), ListenOptions::default())
        .expect("listen");
    shim.register(&fd, Token(1), Interest::READABLE)
        .expect("register listener");
    let port = match shim.local_addr(&fd) {
        Ok(PeerAddr::Ip(a)) => a.port(),
        other => panic!("listener address {other:?}"),
    };
    (fd, port)
}

/// A peer connected to an accepted socket registered readable with token 2.
fn accepted_pair(net: &SimNet, shim: &mut SimShim) -> (SimFd, usockets_shim_sim::PeerId) {
    let (lfd, port) = listener(shim);
    let p = net.peer_connect(port).expect("peer connect");
    let (fd, _) = shim
        .accept(&lfd)
        .expect("accept")
        .expect("pending connection");
    shim.register(&fd, Token(2), Interest::READABLE)
        .expect("register");
    (fd, p)
}

#[test]
fn listen_accept_round_trip() {
    let net = quiet();
    let mut shim = net.shim();
    let (lfd, port) = listener(&mut shim);
    assert_eq!(lfd.number(), 3, "descriptors start at 3");
    assert_eq!(port, 40_000, "ephemeral listen ports start at 40000");
    assert_eq!(
        shim.local_addr(&lfd),
        Ok(PeerAddr::Ip("[::]:40000".parse().expect("addr")))
    );
    assert_eq!(shim.accept(&lfd), Ok(None), "nothing pending yet");
    assert!(wait(&mut shim, Some(0)).is_empty());

    let p = net.peer_connect(port).expect("peer connect");
    let ev = wait(&mut shim, Some(0));
    assert_eq!(ev.len(), 1);
    assert!(ev[0].readable() && ev[0].token == Token(1));
    let (fd, remote) = shim.accept(&lfd).expect("accept").expect("pending");
    assert_eq!(fd.number(), 4);
    let mapped: SocketAddr = "[::ffff:127.0.0.1]:50000".parse().expect("addr");
    assert_eq!(
        remote,
        PeerAddr::Ip(mapped),
        "dual-stack listener sees an IPv4-mapped client"
    );
    assert_eq!(shim.remote_addr(&fd), Ok(PeerAddr::Ip(mapped)));
    assert!(
        wait(&mut shim, Some(0)).is_empty(),
        "backlog drained: listener no longer readable"
    );

    shim.register(&fd, Token(2), Interest::READABLE)
        .expect("register");
    assert_eq!(net.peer_send(p, b"hello"), 5);
    let ev = wait(&mut shim, Some(0));
    assert_eq!(
        ev,
        vec![Event::new(Token(2))
            .with_readable(true)
            .with_writable(false)
            .with_error(false)
            .with_hangup(false)]
    );
    let mut buf = [0u8; 16];
    assert_eq!(shim.recv(&fd, &mut buf), Ok(5));
    assert_eq!(&buf[..5], b"hello");
    assert_eq!(shim.recv(&fd, &mut buf), Err(SimError::WOULD_BLOCK));
    assert_eq!(shim.send(&fd, b"world", false), Ok(5));
    assert_eq!(shim.send2(&fd, b"he", b"ader"), Ok(6));
    assert_eq!(net.peer_recv(p), b"worldheader".to_vec());
    assert_eq!(net.open_fds(), 2);
    shim.close(fd);
    shim.close(lfd);
    assert_eq!(net.open_fds(), 0);
    assert!(net.peer_got_fin(p));
    let c = net.syscalls();
    assert_eq!(
        (c.send, c.send2, c.close, c.accept, c.listen),
        (1, 1, 2, 2, 1)
    );
}

#[test]
fn readable_is_level_triggered_until_everything_is_read() {
    let net = quiet();
    let mut shim = net.shim();
    let (fd, p) = accepted_pair(&net, &mut shim);
    net.peer_send(p, b"0123456789");
    let mut buf = [0u8; 4];
    for expect in [&b"0123"[..], b"4567", b"89"] {
        let ev = find(&wait(&mut shim, Some(0)), 2).expect("still readable while data is unread");
        assert!(ev.readable() && !ev.hangup());
        let n = shim.recv(&fd, &mut buf).expect("recv");
        assert_eq!(&buf[..n], expect);
    }
    assert!(
        find(&wait(&mut shim, Some(0)), 2).is_none(),
        "nothing left: not readable"
    );

    net.peer_shutdown(p);
    for _ in 0..2 {
        let ev = find(&wait(&mut shim, Some(0)), 2).expect("FIN is readable, every time");
        assert!(
            ev.readable() && !ev.hangup() && !ev.error(),
            "a half-close is not a hang-up: {ev:?}"
        );
        assert_eq!(shim.recv(&fd, &mut buf), Ok(0));
    }
    shim.shutdown_write(&fd).expect("shutdown");
    let ev = find(&wait(&mut shim, Some(0)), 2).expect("event");
    assert!(ev.hangup(), "both directions finished: hangup");
    assert!(net.peer_got_fin(p));
    shim.modify(&fd, Token(2), Interest::NONE).expect("modify");
    assert!(
        find(&wait(&mut shim, Some(0)), 2).is_some_and(|e| e.hangup() && !e.readable()),
        "hangup ignores interest"
    );
}

#[test]
fn writable_while_room_and_backpressure() {
    let net = quiet();
    let mut shim = net.shim();
    let (fd, p) = accepted_pair(&net, &mut shim);
    shim.modify(&fd, Token(2), Interest::WRITABLE)
        .expect("modify");
    assert!(find(&wait(&mut shim, Some(0)), 2).is_some_and(|e| e.writable()));
    let big = vec![7u8; 300 * 1024];
    assert_eq!(
        shim.send(&fd, &big, false),
        Ok(256 * 1024),
        "takes what fits"
    );
    assert_eq!(shim.send(&fd, &big, false), Err(SimError::WOULD_BLOCK));
    assert!(
        find(&wait(&mut shim, Some(0)), 2).is_none(),
        "full: not writable"
    );
    assert_eq!(net.peer_recv(p).len(), 256 * 1024);
    assert!(
        find(&wait(&mut shim, Some(0)), 2).is_some_and(|e| e.writable()),
        "drained: writable again"
    );
}

#[test]
fn refused_connect_reported_by_wait() {
    let net = quiet();
    let mut shim = net.shim();
    let fd = shim
        .connect(connect_to(1))
        .expect("connect is non-blocking");
    assert_eq!(
        shim.connect_result(&fd),
        Err(SimError::WOULD_BLOCK),
        "outcome not before the next wait"
    );
    shim.register(&fd, Token(9), Interest::WRITABLE)
        .expect("register");
    let ev = find(&wait(&mut shim, Some(0)), 9).expect("outcome reported");
    assert!(ev.writable() && ev.error(), "{ev:?}");
    let err = shim.connect_result(&fd).expect_err("refused");
    assert_eq!((err.kind, err.code), (ErrorKind::ConnectionRefused, 111));
    shim.close(fd);
    assert_eq!(net.open_fds(), 0);
}

#[test]
fn connect_to_core_listener() {
    let net = quiet();
    let mut shim = net.shim();
    let fd = shim.listen(
        ListenTarget::Host {
            host: Some("127.0.0.1"),
            port: 8080,
        },
        ListenOptions::default(),
    );
    let lfd = fd.expect("listen");
    assert_eq!(
        shim.listen(
            ListenTarget::Host {
                host: Some("::"),
                port: 8080
            },
            ListenOptions::default()
        ),
        Err(SimError::ADDR_IN_USE)
    );
    shim.register(&lfd, Token(1), Interest::READABLE)
        .expect("register");
    let c = shim.connect(ConnectTarget::Host {
        host: "localhost",
        port: 8080,
        source: Some("127.0.0.1"),
    });
    let c = c.expect("connect");
    shim.register(&c, Token(5), Interest::WRITABLE)
        .expect("register");
    let ev = wait(&mut shim, Some(0));
    assert!(find(&ev, 1).is_some_and(|e| e.readable()));
    assert!(find(&ev, 5).is_some_and(|e| e.writable() && !e.error()));
    assert_eq!(shim.connect_result(&c), Ok(()));
    let (s, remote) = shim.accept(&lfd).expect("accept").expect("pending");
    let client_local = shim.local_addr(&c).expect("local");
    assert_eq!(remote, client_local, "server sees the client's address");
    assert_eq!(
        shim.remote_addr(&c),
        Ok(PeerAddr::Ip("127.0.0.1:8080".parse().expect("addr")))
    );
    assert_eq!(
        shim.local_addr(&s),
        Ok(PeerAddr::Ip("127.0.0.1:8080".parse().expect("addr")))
    );
    shim.modify(&c, Token(5), Interest::READABLE)
        .expect("modify");
    shim.register(&s, Token(6), Interest::READABLE)
        .expect("register");
    assert_eq!(shim.send(&c, b"ping", false), Ok(4));
    let ev = wait(&mut shim, Some(0));
    assert!(find(&ev, 6).is_some_and(|e| e.readable()));
    assert!(
        find(&ev, 5).is_none(),
        "connected and nothing to read: quiet"
    );
    let mut buf = [0u8; 8];
    assert_eq!(shim.recv(&s, &mut buf), Ok(4));
    // Closing with unread data resets the far end, as Linux does.
    assert_eq!(shim.send(&s, b"unread", false), Ok(6));
    shim.close(c);
    let ev = find(&wait(&mut shim, Some(0)), 6).expect("reset reported");
    assert!(ev.error() && ev.readable() && ev.hangup());
    assert_eq!(shim.recv(&s, &mut buf).map_err(|e| e.code), Err(104));
}

#[test]
fn name_resolution_and_address_errors() {
    let net = quiet();
    let mut shim = net.shim();
    let err = shim.connect(ConnectTarget::Host {
        host: "no.such.host",
        port: 80,
        source: None,
    });
    let err = err.expect_err("does not resolve");
    assert_eq!((err.kind, err.code), (ErrorKind::NameResolution, -2));
    let err = shim.connect(ConnectTarget::Host {
        host: "127.0.0.1",
        port: 80,
        source: Some("10.0.0.1"),
    });
    assert_eq!(err.map_err(|e| e.code), Err(99));
    let err = shim.listen(
        ListenTarget::Host {
            host: Some("192.168.1.1"),
            port: 0,
        },
        ListenOptions::default(),
    );
    assert_eq!(
        err.map_err(|e| (e.kind, e.code)),
        Err((ErrorKind::AddrNotAvailable, 99))
    );
    assert_eq!(net.open_fds(), 0, "failures leave no descriptor");
    // A descriptor of another network is not this shim's: EBADF, and closing it here does not
    // touch this network (it closes in its own).
    let other = quiet();
    let (foreign, _w) = other.user_pipe();
    assert_eq!(
        shim.recv(&foreign, &mut [0u8; 4]).map_err(|e| e.code),
        Err(9)
    );
    assert_eq!(
        shim.register(&foreign, Token(1), Interest::READABLE)
            .map_err(|e| e.code),
        Err(9)
    );
    assert_eq!(shim.local_addr(&foreign).map_err(|e| e.code), Err(9));
    assert_eq!(other.open_fds(), 2);
    shim.close(foreign);
    assert_eq!(other.open_fds(), 1, "closed in its own network");
    assert_eq!(net.syscalls().close, 0, "not a close of this network");
}

#[test]
fn unix_path_too_long_is_rejected_not_truncated() {
    let net = quiet();
    let mut shim = net.shim();
    let long = "/tmp/".to_string() + &"x".repeat(103);
    assert_eq!(long.len(), 108);
    let err = shim
        .listen(ListenTarget::Unix(&long), ListenOptions::default())
        .expect_err("too long");
    assert_eq!((err.kind, err.code), (ErrorKind::InvalidInput, 22));
    assert_eq!(
        shim.connect(ConnectTarget::Unix(&long)).map_err(|e| e.code),
        Err(22)
    );
    assert_eq!(net.peer_connect_unix(&long), Err(ErrorKind::InvalidInput));
    let ok = &long[..107];
    let lfd = shim
        .listen(ListenTarget::Unix(ok), ListenOptions::default())
        .expect("107 bytes fit");
    assert_eq!(shim.local_addr(&lfd), Ok(PeerAddr::Unix));
    let p = net.peer_connect_unix(ok).expect("peer connect");
    let (fd, remote) = shim.accept(&lfd).expect("accept").expect("pending");
    assert_eq!(remote, PeerAddr::Unix);
    net.peer_send(p, b"x");
    assert_eq!(shim.recv(&fd, &mut [0u8; 4]), Ok(1));
}

#[test]
fn register_twice_and_unregistered() {
    let net = quiet();
    let mut shim = net.shim();
    let (fd, _) = listener(&mut shim);
    let err = shim
        .register(&fd, Token(1), Interest::READABLE)
        .expect_err("twice");
    assert_eq!((err.kind, err.code), (ErrorKind::InvalidInput, 17));
    shim.deregister(&fd).expect("deregister");
    assert!(shim.deregister(&fd).is_err());
    assert!(shim.modify(&fd, Token(1), Interest::READABLE).is_err());
}

#[test]
fn lowest_free_descriptor_is_reused() {
    let net = quiet();
    let mut shim = net.shim();
    let a = shim.connect(connect_to(1)).expect("a");
    let b = shim.connect(connect_to(1)).expect("b");
    let c = shim.connect(connect_to(1)).expect("c");
    assert_eq!((a.number(), b.number(), c.number()), (3, 4, 5));
    shim.close(b);
    let d = shim.connect(connect_to(1)).expect("d");
    assert_eq!(d.number(), 4);
    shim.close(a);
    let (r, w) = net.user_pipe();
    assert_eq!((r.number(), w.number()), (3, 6));
    drop((c, d));
}

#[test]
fn fd_limit_gives_emfile_and_keeps_the_connection_pending() {
    let net = quiet();
    let mut shim = net.shim();
    let (lfd, port) = listener(&mut shim);
    net.peer_connect(port).expect("peer 1");
    net.peer_connect(port).expect("peer 2");
    net.set_fd_limit(Some(2));
    let first = shim.accept(&lfd).expect("accept").expect("pending");
    let err = shim.accept(&lfd).expect_err("limit reached");
    assert_eq!((err.kind, err.code), (ErrorKind::TooManyOpenFiles, 24));
    assert_eq!(shim.connect(connect_to(port)).map_err(|e| e.code), Err(24));
    assert!(
        find(&wait(&mut shim, Some(0)), 1).is_some_and(|e| e.readable()),
        "still pending"
    );
    net.set_fd_limit(None);
    let second = shim.accept(&lfd).expect("accept").expect("pending");
    assert_eq!(net.open_fds(), 3);
    drop((first, second));
    assert_eq!(net.open_fds(), 1, "dropping an owned descriptor closes it");
}

#[test]
fn emfile_accept_fault_keeps_the_connection() {
    let faults = Faults {
        emfile_accept: 1000,
        ..Faults::NONE
    };
    let net = SimNet::new(faults, Box::new(SeededRng::new(1)));
    let mut shim = net.shim();
    let (lfd, port) = listener(&mut shim);
    assert_eq!(
        shim.accept(&lfd),
        Ok(None),
        "no fault without a pending connection"
    );
    net.peer_connect(port).expect("peer");
    assert_eq!(shim.accept(&lfd).map_err(|e| e.code), Err(24));
    net.set_faults(Faults::NONE);
    assert!(shim.accept(&lfd).expect("accept").is_some());
    assert_eq!(net.fault_counts().emfile_accept, 1);
}

#[test]
fn waker_event_comes_first_and_once() {
    let net = quiet();
    let mut shim = net.shim();
    let (fd, p) = accepted_pair(&net, &mut shim);
    let _ = fd;
    net.peer_send(p, b"x");
    let waker = shim.waker();
    let thread_waker = waker.clone();
    std::thread::spawn(move || thread_waker.wake())
        .join()
        .expect("thread");
    let ev = wait(&mut shim, None);
    assert_eq!(ev.len(), 2);
    assert_eq!(ev[0].token, Token::WAKER);
    assert_eq!(ev[1].token, Token(2));
    assert!(
        wait(&mut shim, Some(0))
            .iter()
            .all(|e| e.token != Token::WAKER),
        "consumed"
    );
    drop(shim);
    drop(net);
    waker.wake(); // harmless after the network is gone
}

#[test]
fn wait_moves_the_clock_only_when_asked() {
    let net = quiet();
    let mut shim = net.shim();
    let t0 = net.now_ms();
    assert_eq!(t0, 1_000_000);
    assert!(wait(&mut shim, Some(0)).is_empty());
    assert!(
        wait(&mut shim, None).is_empty(),
        "nothing scheduled: returns at once"
    );
    assert_eq!(net.now_ms(), t0);
    assert!(wait(&mut shim, Some(250)).is_empty());
    assert_eq!(net.now_ms(), t0 + 250);
    net.advance(1000);
    assert_eq!(shim.now_ms(), t0 + 1250);
}

#[test]
fn delayed_delivery_is_visible_only_after_the_clock_passes() {
    let faults = Faults {
        delay_delivery: 1000,
        ..Faults::NONE
    };
    let net = SimNet::new(faults, Box::new(SeededRng::new(3)));
    let mut shim = net.shim();
    let (lfd, port) = listener(&mut shim);
    let c = shim.connect(connect_to(port)).expect("connect");
    assert_eq!(
        shim.send(&c, b"early", false),
        Err(SimError::WOULD_BLOCK),
        "still connecting"
    );
    shim.register(&c, Token(3), Interest::WRITABLE)
        .expect("register");
    assert!(find(&wait(&mut shim, Some(0)), 3).is_some_and(|e| e.writable()));
    assert_eq!(shim.connect_result(&c), Ok(()));
    shim.deregister(&c).expect("deregister");
    let (s, _) = shim.accept(&lfd).expect("accept").expect("pending");
    shim.register(&s, Token(2), Interest::READABLE)
        .expect("register");
    let t0 = net.now_ms();
    assert_eq!(shim.send(&c, b"late", false), Ok(4));
    assert_eq!(
        shim.recv(&s, &mut [0u8; 8]),
        Err(SimError::WOULD_BLOCK),
        "still in flight"
    );
    assert!(
        find(&wait(&mut shim, Some(0)), 2).is_none(),
        "in flight: not readable, clock unmoved"
    );
    assert_eq!(net.now_ms(), t0);
    let ev = wait(&mut shim, Some(10_000));
    assert!(
        find(&ev, 2).is_some_and(|e| e.readable()),
        "wait jumps to the delivery"
    );
    let elapsed = net.now_ms() - t0;
    assert!((1..=50).contains(&elapsed), "delivered after {elapsed} ms");
    let mut buf = [0u8; 8];
    assert_eq!(shim.recv(&s, &mut buf), Ok(4));
    assert_eq!(&buf[..4], b"late");

    // Towards a peer: visible to peer_recv once the clock passes.
    let p = net.peer_connect(port).expect("peer");
    let (s2, _) = shim.accept(&lfd).expect("accept").expect("pending");
    assert_eq!(shim.send(&s2, b"abc", false), Ok(3));
    assert!(net.peer_recv(p).is_empty());
    net.advance(50);
    assert_eq!(net.peer_recv(p), b"abc".to_vec());
    assert_eq!(net.fault_counts().delay_delivery, 2);
}

/// Bytes delayed towards a connection nobody accepted yet are due long before anyone reads
/// them. Waiting must still let the clock run to the timeout: found by the hammer, where a
/// listener backing off after EMFILE left such a connection in its backlog and every `wait`
/// returned at once with the clock stuck.
#[test]
fn due_bytes_towards_an_unaccepted_connection_do_not_stop_the_clock() {
    let faults = Faults {
        delay_delivery: 1000,
        ..Faults::NONE
    };
    let net = SimNet::new(faults, Box::new(SeededRng::new(3)));
    let mut shim = net.shim();
    let (lfd, port) = listener(&mut shim);
    let c = shim.connect(connect_to(port)).expect("connect");
    shim.register(&c, Token(3), Interest::WRITABLE)
        .expect("register");
    assert!(find(&wait(&mut shim, Some(0)), 3).is_some_and(|e| e.writable()));
    assert_eq!(shim.send(&c, b"early bird", false), Ok(10));
    // Nothing is watched (as when the listener backs off); the connection stays in the
    // backlog and its chunk falls due within 50 ms.
    shim.deregister(&c).expect("deregister");
    shim.deregister(&lfd).expect("deregister");
    let t0 = net.now_ms();
    assert!(wait(&mut shim, Some(1000)).is_empty());
    assert_eq!(net.now_ms(), t0 + 1000, "the first wait ran to its timeout");
    assert!(wait(&mut shim, Some(1000)).is_empty());
    assert_eq!(
        net.now_ms(),
        t0 + 2000,
        "so did the second, with the chunk overdue"
    );
}

#[test]
fn peer_reset_is_an_error_whatever_the_interest() {
    let net = quiet();
    let mut shim = net.shim();
    let (fd, p) = accepted_pair(&net, &mut shim);
    shim.modify(&fd, Token(2), Interest::NONE).expect("pause");
    net.peer_send(p, b"lost");
    net.peer_reset(p);
    let ev = find(&wait(&mut shim, Some(0)), 2).expect("error reported with empty interest");
    assert!(ev.error() && ev.hangup() && !ev.readable());
    assert_eq!(
        shim.recv(&fd, &mut [0u8; 8]).map_err(|e| (e.kind, e.code)),
        Err((ErrorKind::ConnectionReset, 104))
    );
    assert_eq!(shim.send(&fd, b"x", false).map_err(|e| e.code), Err(104));
    assert!(net.peer_is_reset(p));
}

#[test]
fn peer_close_delivers_data_then_eof_and_writes_fail() {
    let net = quiet();
    let mut shim = net.shim();
    let (fd, p) = accepted_pair(&net, &mut shim);
    net.peer_send(p, b"last words");
    net.peer_close(p);
    let mut buf = [0u8; 32];
    assert!(find(&wait(&mut shim, Some(0)), 2).is_some_and(|e| e.readable() && !e.error()));
    assert_eq!(shim.recv(&fd, &mut buf), Ok(10));
    assert_eq!(shim.recv(&fd, &mut buf), Ok(0));
    let err = shim.send(&fd, b"reply", false).expect_err("peer gone");
    assert_eq!((err.kind, err.code), (ErrorKind::ConnectionReset, 32));
    let ev = find(&wait(&mut shim, Some(0)), 2).expect("event");
    assert!(
        ev.error() && ev.hangup(),
        "the failed write is reported: {ev:?}"
    );
    shim.close(fd);
}

#[test]
fn core_close_with_unread_data_resets_the_peer() {
    let net = quiet();
    let mut shim = net.shim();
    let (fd, p) = accepted_pair(&net, &mut shim);
    net.peer_send(p, b"unread");
    shim.close(fd);
    assert!(net.peer_is_reset(p));
    assert!(!net.peer_got_fin(p));
    assert_eq!(net.peer_send(p, b"more"), 0);
}

#[test]
fn shutdown_read_reports_eof() {
    let net = quiet();
    let mut shim = net.shim();
    let (fd, p) = accepted_pair(&net, &mut shim);
    net.peer_send(p, b"ignored");
    shim.shutdown_read(&fd).expect("shutdown_read");
    assert!(find(&wait(&mut shim, Some(0)), 2).is_some_and(|e| e.readable()));
    assert_eq!(shim.recv(&fd, &mut [0u8; 8]), Ok(0));
}

#[test]
fn spurious_readiness_then_would_block() {
    let faults = Faults {
        spurious_readiness: 1000,
        ..Faults::NONE
    };
    let net = SimNet::new(faults, Box::new(SeededRng::new(5)));
    let mut shim = net.shim();
    let (fd, _p) = accepted_pair(&net, &mut shim);
    let ev = find(&wait(&mut shim, Some(0)), 2).expect("spurious event");
    assert!(ev.readable());
    assert_eq!(shim.recv(&fd, &mut [0u8; 8]), Err(SimError::WOULD_BLOCK));
    assert_eq!(
        net.fault_counts().spurious_readiness,
        1,
        "only connected sockets get spurious events"
    );
}

#[test]
fn hangup_with_unread_reports_hangup_alongside_readable() {
    let faults = Faults {
        hangup_with_unread: 1000,
        ..Faults::NONE
    };
    let net = SimNet::new(faults, Box::new(SeededRng::new(9)));
    let mut shim = net.shim();
    let (fd, p) = accepted_pair(&net, &mut shim);
    net.peer_send(p, b"pending");
    assert_eq!(shim.send(&fd, b"hi", false), Ok(2));
    assert_eq!(net.fault_counts().hangup_with_unread, 1);
    let ev = find(&wait(&mut shim, Some(0)), 2).expect("event");
    assert!(ev.readable() && ev.hangup() && !ev.error(), "{ev:?}");
    let mut buf = [0u8; 16];
    assert_eq!(shim.recv(&fd, &mut buf), Ok(7));
    assert_eq!(shim.recv(&fd, &mut buf), Ok(0));
    assert_eq!(net.peer_send(p, b"x"), 0, "the peer is gone");
    assert!(shim.send(&fd, b"x", false).is_err());
}

#[test]
fn partial_and_would_block_writes() {
    let faults = Faults {
        partial_write: 1000,
        ..Faults::NONE
    };
    let net = SimNet::new(faults, Box::new(SeededRng::new(11)));
    let mut shim = net.shim();
    let (fd, p) = accepted_pair(&net, &mut shim);
    let n = shim.send(&fd, b"0123456789", false).expect("send");
    assert!((1..10).contains(&n), "partial: {n}");
    assert_eq!(
        shim.send(&fd, b"x", false),
        Ok(1),
        "a single byte is never split"
    );
    assert_eq!(net.peer_recv(p).len(), n + 1);
    net.set_faults(Faults {
        would_block_send: 1000,
        ..Faults::NONE
    });
    assert_eq!(shim.send(&fd, b"abc", false), Err(SimError::WOULD_BLOCK));
    assert_eq!(net.fault_counts().partial_write, 1);
    assert_eq!(net.fault_counts().would_block_send, 1);
}

#[test]
fn refuse_connect_fault() {
    let faults = Faults {
        refuse_connect: 1000,
        ..Faults::NONE
    };
    let net = SimNet::new(faults, Box::new(SeededRng::new(2)));
    let mut shim = net.shim();
    let (lfd, port) = listener(&mut shim);
    let c = shim.connect(connect_to(port)).expect("connect");
    shim.register(&c, Token(4), Interest::WRITABLE)
        .expect("register");
    assert!(find(&wait(&mut shim, Some(0)), 4).is_some_and(|e| e.writable() && e.error()));
    assert_eq!(shim.connect_result(&c).map_err(|e| e.code), Err(111));
    assert_eq!(shim.accept(&lfd), Ok(None), "nothing reached the listener");
    assert_eq!(net.fault_counts().refuse_connect, 1);
}

#[test]
fn closing_a_listener_resets_its_backlog() {
    let net = quiet();
    let mut shim = net.shim();
    let (lfd, port) = listener(&mut shim);
    let p = net.peer_connect(port).expect("peer");
    shim.close(lfd);
    assert!(net.peer_is_reset(p));
    assert_eq!(net.peer_connect(port), Err(ErrorKind::ConnectionRefused));
}

#[test]
fn core_connects_to_a_peer_listener() {
    let net = quiet();
    let mut shim = net.shim();
    let port = net.peer_listen(0);
    assert_eq!(net.peer_listen(port), 0, "port taken");
    let c = shim
        .connect(ConnectTarget::Host {
            host: "::1",
            port,
            source: None,
        })
        .expect("connect");
    shim.register(&c, Token(3), Interest::WRITABLE)
        .expect("register");
    let p = net
        .peer_accept(port)
        .expect("connection reached the peer listener");
    assert!(find(&wait(&mut shim, Some(0)), 3).is_some_and(|e| e.writable() && !e.error()));
    assert_eq!(shim.connect_result(&c), Ok(()));
    assert_eq!(
        shim.remote_addr(&c),
        Ok(PeerAddr::Ip(SocketAddr::new(
            "::1".parse().expect("ip"),
            port
        )))
    );
    shim.send(&c, b"hi", false).expect("send");
    assert_eq!(net.peer_recv(p), b"hi".to_vec());
    shim.shutdown_write(&c).expect("shutdown");
    assert!(net.peer_got_fin(p));
}

#[test]
fn user_pipe_readiness() {
    let net = quiet();
    let mut shim = net.shim();
    let (r, w) = net.user_pipe();
    shim.register(&r, Token(7), Interest::READABLE)
        .expect("register");
    shim.register(&w, Token(8), Interest::WRITABLE)
        .expect("register");
    let ev = wait(&mut shim, Some(0));
    assert!(find(&ev, 7).is_none());
    assert!(find(&ev, 8).is_some_and(|e| e.writable()));
    net.pipe_write(&w, b"abc");
    assert!(find(&wait(&mut shim, Some(0)), 7).is_some_and(|e| e.readable()));
    let mut buf = [0u8; 2];
    assert_eq!(net.pipe_read(&r, &mut buf), 2);
    assert!(
        find(&wait(&mut shim, Some(0)), 7).is_some(),
        "one byte left"
    );
    assert_eq!(net.pipe_read(&r, &mut buf), 1);
    assert!(find(&wait(&mut shim, Some(0)), 7).is_none());
    shim.close(r);
    shim.close(w);
    assert_eq!(net.open_fds(), 0);
}

#[test]
fn truncated_waits_rotate_so_nobody_starves() {
    let net = quiet();
    let mut shim = net.shim();
    let (lfd, port) = listener(&mut shim);
    let mut peers = Vec::new();
    let mut fds = Vec::new();
    for i in 0..4u64 {
        let p = net.peer_connect(port).expect("peer");
        let (fd, _) = shim.accept(&lfd).expect("accept").expect("pending");
        shim.register(&fd, Token(10 + i), Interest::READABLE)
            .expect("register");
        net.peer_send(p, b"x");
        peers.push(p);
        fds.push(fd);
    }
    let mut seen = Vec::new();
    for _ in 0..4 {
        let mut buf = [Event::EMPTY; 1];
        assert_eq!(shim.wait(&mut buf, Some(0)), Ok(1));
        seen.push(buf[0].token.0);
    }
    assert_eq!(
        seen,
        vec![10, 11, 12, 13],
        "every ready descriptor gets its turn"
    );
}

/// A scripted run: a listener, peers and core clients exchanging bytes under `faults`.
/// Returns the fault counts and a transcript of every observable result.
fn scripted_run(faults: Faults, source: Box<dyn FaultSource>) -> (FaultCounts, Vec<String>) {
    let net = SimNet::new(faults, source);
    let mut shim = net.shim();
    let mut log = Vec::new();
    let (lfd, port) = listener(&mut shim);
    // Open descriptors by number (tokens carry the number).
    let mut fds = std::collections::BTreeMap::new();
    let mut peers = Vec::new();
    for i in 0..6u64 {
        match net.peer_connect(port) {
            Ok(p) => peers.push(p),
            Err(e) => log.push(format!("peer {i}: {e:?}")),
        }
        if let Ok(c) = shim.connect(connect_to(port)) {
            let n = c.number();
            log.push(format!("connect -> {n}"));
            let _ = shim.register(&c, Token(1000 + n as u64), Interest::WRITABLE);
            fds.insert(n, c);
        }
    }
    let mut buf = [0u8; 97];
    for round in 0..200u32 {
        for p in &peers {
            net.peer_send(*p, &[round as u8; 13]);
            log.push(format!("peer got {}", net.peer_recv(*p).len()));
        }
        let mut events = [Event::EMPTY; 16];
        let n = shim.wait(&mut events, Some(5)).expect("wait");
        for ev in &events[..n] {
            log.push(format!("{ev:?} at {}", net.now_ms()));
            if ev.token == Token(1) {
                match shim.accept(&lfd) {
                    Ok(Some((fd, _))) => {
                        let n = fd.number();
                        let _ = shim.register(&fd, Token(n as u64), Interest::READABLE);
                        fds.insert(n, fd);
                    }
                    other => log.push(format!("accept {other:?}")),
                }
                continue;
            }
            let number = (ev.token.0 % 1000) as i32;
            let Some(fd) = fds.get(&number) else {
                continue;
            };
            if ev.token.0 >= 1000 {
                let r = shim.connect_result(fd);
                log.push(format!("connect_result {r:?}"));
                let _ = shim.modify(fd, Token(number as u64), Interest::READABLE);
                if r.is_err() {
                    if let Some(fd) = fds.remove(&number) {
                        shim.close(fd);
                    }
                }
                continue;
            }
            let r = shim.recv(fd, &mut buf);
            log.push(format!("recv {number} {r:?}"));
            match r {
                Ok(0) | Err(_)
                    if !matches!(
                        r,
                        Err(SimError {
                            kind: ErrorKind::WouldBlock,
                            ..
                        })
                    ) =>
                {
                    let _ = shim.deregister(fd);
                    if let Some(fd) = fds.remove(&number) {
                        shim.close(fd);
                    }
                }
                Ok(n) => log.push(format!("send {:?}", shim.send(fd, &buf[..n], false))),
                Err(_) => {}
            }
        }
    }
    (net.fault_counts(), log)
}

#[test]
fn same_seed_same_run() {
    let (a, log_a) = scripted_run(Faults::chaos(), Box::new(SeededRng::new(42)));
    let (b, log_b) = scripted_run(Faults::chaos(), Box::new(SeededRng::new(42)));
    assert_eq!(a, b);
    assert_eq!(log_a, log_b);
    assert_ne!(a, FaultCounts::default(), "chaos injects something");
    let (c, log_c) = scripted_run(Faults::chaos(), Box::new(SeededRng::new(43)));
    assert!(a != c || log_a != log_c, "another seed, another run");
    let (q1, l1) = scripted_run(Faults::NONE, Box::new(SeededRng::new(1)));
    let (q2, l2) = scripted_run(Faults::NONE, Box::new(SeededRng::new(2)));
    assert_eq!((q1, l1), (q2, l2), "no faults: the seed does not matter");
    assert_eq!(q1, FaultCounts::default());
}

#[test]
fn exhausted_byte_source_injects_nothing() {
    let all = Faults {
        partial_write: 1000,
        would_block_send: 1000,
        reset: 1000,
        refuse_connect: 1000,
        emfile_accept: 1000,
        spurious_readiness: 1000,
        delay_delivery: 1000,
        hangup_with_unread: 1000,
    };
    let (counts, _) = scripted_run(all, Box::new(ByteSource::new(Vec::new())));
    assert_eq!(counts, FaultCounts::default());
    let (counts, _) = scripted_run(all, Box::new(ByteSource::new(vec![0; 6])));
    let total = counts.partial_write
        + counts.would_block_send
        + counts.reset
        + counts.refuse_connect
        + counts.emfile_accept
        + counts.spurious_readiness
        + counts.delay_delivery
        + counts.hangup_with_unread;
    assert!(
        (1..=3).contains(&total),
        "three decisions' worth of bytes, then none: {counts:?}"
    );
}

/// `into_number` gives ownership up without closing; `reclaim_fd` takes back only a number
/// given up that way, once: a descriptor never gets two owners, not even across a C boundary.
#[test]
fn into_number_and_reclaim_fd_pass_ownership_without_forging_it() {
    let net = quiet();
    let (r, w) = net.user_pipe();
    let w_number = w.number();
    let n = r.into_number();
    assert_eq!(net.open_fds(), 2, "giving ownership up does not close");
    assert!(
        net.reclaim_fd(w_number).is_none(),
        "an owned descriptor cannot be claimed"
    );
    assert!(
        net.reclaim_fd(n + 100).is_none(),
        "nor a number that is not open"
    );
    let back = net
        .reclaim_fd(n)
        .expect("the given-up descriptor comes back");
    assert_eq!(back.number(), n);
    assert!(net.reclaim_fd(n).is_none(), "once");
    net.pipe_write(&w, b"x");
    let mut buf = [0u8; 2];
    assert_eq!(net.pipe_read(&back, &mut buf), 1, "it is the same pipe end");
    drop(back);
    drop(w);
    assert_eq!(net.open_fds(), 0);
    let other = quiet();
    let (foreign, _w) = other.user_pipe();
    let m = foreign.into_number();
    assert!(
        net.reclaim_fd(m).is_none(),
        "another network's number is not this one's"
    );
    assert!(other.reclaim_fd(m).is_some());
}
