//! The shim's own behaviour where it departs from a BSD socket world, through `OsShim`
//! directly: the listening pool, the socket budget shared with lingering sockets, what is
//! unsupported, and how `wait` sleeps and wakes.

mod common;

use std::time::Instant;

use common::{shim, Shim};
use usockets_core::{
    ConnectTarget, ErrorKind, Event, Interest, ListenOptions, ListenTarget, OsShim, PeerAddr,
    ShimError, Token, Wake,
};
use usockets_shim_smoltcp::{SmolConfig, SmolFd};

const LISTENER: Token = Token(1);

fn to(host: &str, port: u16) -> ConnectTarget<'_> {
    ConnectTarget::Host {
        host,
        port,
        source: None,
    }
}

fn listen<const N: usize>(s: &mut Shim<N>) -> (SmolFd, u16) {
    let l = s
        .listen(
            ListenTarget::Host {
                host: Some("127.0.0.1"),
                port: 0,
            },
            ListenOptions::default(),
        )
        .expect("listen");
    s.register(&l, LISTENER, Interest::READABLE)
        .expect("register");
    let Ok(PeerAddr::Ip(a)) = s.local_addr(&l) else {
        panic!("a listener has an IP address")
    };
    (l, a.port())
}

/// Waits (10 ms at a time, 3 s at most) until `done` holds for the events of one wait.
fn until<const N: usize>(s: &mut Shim<N>, what: &str, mut done: impl FnMut(&[Event]) -> bool) {
    let start = Instant::now();
    let mut events = [Event::new(Token(0)); 64];
    loop {
        let n = s.wait(&mut events, Some(10)).expect("wait");
        if done(&events[..n]) {
            return;
        }
        assert!(
            start.elapsed().as_secs() < 3,
            "timed out waiting for {what}"
        );
    }
}

fn accept_one<const N: usize>(s: &mut Shim<N>, l: &SmolFd) -> SmolFd {
    let start = Instant::now();
    let mut events = [Event::new(Token(0)); 64];
    loop {
        if let Some((fd, addr)) = s.accept(l).expect("accept") {
            assert!(matches!(addr, PeerAddr::Ip(a) if a.ip().is_loopback()));
            return fd;
        }
        assert!(start.elapsed().as_secs() < 3, "timed out waiting to accept");
        s.wait(&mut events, Some(10)).expect("wait");
    }
}

/// A connected pair: (client, accepted server end).
fn connect_pair<const N: usize>(
    s: &mut Shim<N>,
    l: &SmolFd,
    port: u16,
    token: u64,
) -> (SmolFd, SmolFd) {
    let c = s.connect(to("127.0.0.1", port)).expect("connect");
    s.register(&c, Token(token), Interest::WRITABLE)
        .expect("register");
    let server = accept_one(s, l);
    until(s, "the connect", |ev| {
        ev.iter().any(|e| e.token == Token(token) && e.writable())
    });
    s.connect_result(&c).expect("connected");
    (c, server)
}

#[test]
fn what_smoltcp_lacks_is_unsupported_and_changes_nothing() {
    let mut s = shim::<8>(SmolConfig::new());
    let (l, port) = listen(&mut s);
    let name = s.connect(to("localhost", port)).expect_err("no names");
    assert_eq!(name.kind(), ErrorKind::Unsupported);
    let unix = s
        .connect(ConnectTarget::Unix("/tmp/x"))
        .expect_err("no unix");
    assert_eq!(unix.kind(), ErrorKind::Unsupported);
    let e = s
        .listen(ListenTarget::Unix("/tmp/x"), ListenOptions::default())
        .expect_err("no unix");
    assert_eq!(e.kind(), ErrorKind::Unsupported);
    let e = s
        .listen(
            ListenTarget::Host {
                host: Some("example.org"),
                port: 0,
            },
            ListenOptions::default(),
        )
        .expect_err("no names");
    assert_eq!(e.kind(), ErrorKind::Unsupported);

    let (c, srv) = connect_pair(&mut s, &l, port, 10);
    let e = s.shutdown_read(&srv).expect_err("no shutdown_read");
    assert_eq!(e.kind(), ErrorKind::Unsupported);
    assert_eq!(e.raw_os_error(), 95, "EOPNOTSUPP");
    // Still a working connection both ways.
    assert_eq!(s.send(&c, b"ping", false).expect("send"), 4);
    s.register(&srv, Token(11), Interest::READABLE)
        .expect("register");
    until(&mut s, "the data", |ev| {
        ev.iter().any(|e| e.token == Token(11) && e.readable())
    });
    let mut buf = [0u8; 16];
    assert_eq!(s.recv(&srv, &mut buf).expect("recv"), 4);
    assert_eq!(&buf[..4], b"ping");
    let e = s.recv(&srv, &mut buf).expect_err("nothing more");
    assert_eq!(e.kind(), ErrorKind::WouldBlock);
}

#[test]
fn addresses_must_be_local_and_ports_free() {
    let mut s = shim::<8>(SmolConfig::new());
    let e = s
        .listen(
            ListenTarget::Host {
                host: Some("10.1.2.3"),
                port: 0,
            },
            ListenOptions::default(),
        )
        .expect_err("not an address of the interface");
    assert_eq!(e.kind(), ErrorKind::AddrNotAvailable);
    let (_l, port) = listen(&mut s);
    let e = s
        .listen(
            ListenTarget::Host { host: None, port },
            ListenOptions::default(),
        )
        .expect_err("the port is taken");
    assert_eq!(e.kind(), ErrorKind::AddrInUse);
}

#[test]
fn a_refused_connect_reports_an_error_with_econnrefused() {
    let mut s = shim::<4>(SmolConfig::new());
    let c = s.connect(to("127.0.0.1", 9)).expect("connect starts");
    s.register(&c, Token(5), Interest::WRITABLE)
        .expect("register");
    until(&mut s, "the refusal", |ev| {
        ev.iter().any(|e| e.token == Token(5) && e.error())
    });
    let e = s.connect_result(&c).expect_err("refused");
    assert_eq!(e.kind(), ErrorKind::ConnectionRefused);
    assert_eq!(e.raw_os_error(), 111);
    s.close(c);
}

/// Four sockets: a listener's pool of one, two ends of a connection, one spare. The pool is
/// refilled from the spare once its socket is accepted; then nothing is free, a connect fails
/// with `TooManyOpenFiles`; closed connections linger in TIME-WAIT (in the shim, not in
/// core) and are taken back when a socket is needed.
#[test]
fn the_socket_budget_is_shared_with_the_pool_and_lingering_sockets() {
    let mut s = shim::<4>(SmolConfig::new().with_listen_pool(1));
    let (l, port) = listen(&mut s);
    assert_eq!(s.sockets_in_use(), 1, "the pool");
    let (c, srv) = connect_pair(&mut s, &l, port, 20);
    // Client, server end, and the pool refilled from a spare the moment its socket took the
    // SYN: one socket is left.
    assert_eq!(s.sockets_in_use(), 3);
    let c3 = s.connect(to("127.0.0.1", port)).expect("the last socket");
    assert_eq!(s.sockets_in_use(), 4);
    let e = s
        .connect(to("127.0.0.1", port))
        .expect_err("no socket left");
    assert_eq!(e.kind(), ErrorKind::TooManyOpenFiles);
    // Closed while connecting: reset, and free once the reset is out.
    s.close(c3);

    // An orderly close of both ends: each shuts down, then closes.
    s.shutdown_write(&c).expect("shutdown");
    s.shutdown_write(&srv).expect("shutdown");
    s.register(&c, Token(20), Interest::READABLE)
        .expect("register");
    until(&mut s, "both FINs", |ev| {
        ev.iter().any(|e| e.token == Token(20) && e.hangup())
    });
    s.close(c);
    s.close(srv);
    let mut events = [Event::new(Token(0)); 8];
    s.wait(&mut events, Some(0)).expect("wait");
    assert!(s.sockets_lingering() >= 1, "TIME-WAIT lingers in the shim");
    // A new connection takes the lingering sockets back.
    let (c2, srv2) = connect_pair(&mut s, &l, port, 30);
    assert_eq!(s.send(&c2, b"again", false).expect("send"), 5);
    s.register(&srv2, Token(31), Interest::READABLE)
        .expect("register");
    until(&mut s, "data", |ev| {
        ev.iter().any(|e| e.token == Token(31) && e.readable())
    });
    let mut buf = [0u8; 8];
    assert_eq!(s.recv(&srv2, &mut buf).expect("recv"), 5);
}

/// A burst of SYNs bigger than the pool, in one poll: the ones that find no listening
/// socket are reset by smoltcp (a refused connect), which is why the pool is sized for the
/// bursts expected. With a pool as big as the burst, all are accepted.
#[test]
fn the_pool_size_is_the_burst_the_listener_takes() {
    for (pool, refused_expected) in [(1u8, true), (4, false)] {
        let mut s = shim::<16>(SmolConfig::new().with_listen_pool(pool));
        let (l, port) = listen(&mut s);
        let clients: Vec<_> = (0..4u64)
            .map(|i| {
                let c = s.connect(to("127.0.0.1", port)).expect("connect");
                s.register(&c, Token(100 + i), Interest::WRITABLE)
                    .expect("register");
                c
            })
            .collect();
        let mut outcome = [None::<bool>; 4];
        let start = Instant::now();
        let mut events = [Event::new(Token(0)); 16];
        while outcome.iter().any(Option::is_none) {
            assert!(
                start.elapsed().as_secs() < 3,
                "every connect settles: pool {pool}, {outcome:?}"
            );
            let n = s.wait(&mut events, Some(10)).expect("wait");
            for e in &events[..n] {
                if let Some(i) = e.token.0.checked_sub(100).filter(|&i| i < 4) {
                    let i = i as usize;
                    if outcome[i].is_none() && (e.writable() || e.error()) {
                        outcome[i] = Some(s.connect_result(&clients[i]).is_ok());
                    }
                }
            }
            while s.accept(&l).expect("accept").is_some() {}
        }
        let refused = outcome.contains(&Some(false));
        assert_eq!(refused, refused_expected, "pool {pool}: {outcome:?}");
    }
}

#[test]
fn wait_sleeps_until_its_timeout_and_a_wake_ends_it() {
    let mut s = shim::<2>(SmolConfig::new());
    let mut events = [Event::new(Token(0)); 4];
    let start = Instant::now();
    assert_eq!(s.wait(&mut events, Some(50)).expect("wait"), 0);
    assert!(start.elapsed().as_millis() >= 50, "slept its timeout");

    let waker = s.waker();
    let t = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(50));
        waker.wake();
    });
    let start = Instant::now();
    let n = s.wait(&mut events, None).expect("wait");
    t.join().expect("waker thread");
    assert_eq!(n, 1);
    assert_eq!(events[0].token, Token::WAKER);
    assert!(start.elapsed().as_secs() < 2, "woken, not timed out");
}

/// The embedder's own sockets go beside the shim's, within the storage given, and
/// `Platform::after_poll` runs after every poll (where a DHCP socket would be driven).
#[test]
fn sockets_of_the_embedder_fit_the_spare_storage_and_after_poll_runs() {
    use usockets_shim_smoltcp::smoltcp::socket::tcp;
    use usockets_shim_smoltcp::smoltcp::storage::RingBuffer;
    let mut s = common::shim_with_extra::<2>(SmolConfig::new().with_listen_pool(1), 1);
    let mine = || {
        let rx: &'static mut [u8] = Box::leak(vec![0u8; 64].into_boxed_slice());
        let tx: &'static mut [u8] = Box::leak(vec![0u8; 64].into_boxed_slice());
        tcp::Socket::new(RingBuffer::new(rx), RingBuffer::new(tx))
    };
    s.add_socket(mine()).expect("one spare entry");
    let e = s.add_socket(mine()).expect_err("no spare entry left");
    assert_eq!(e.kind(), ErrorKind::OutOfMemory);
    let mut events = [Event::new(Token(0)); 4];
    let before = s.platform().1;
    s.wait(&mut events, Some(0)).expect("wait");
    assert!(s.platform().1 > before, "after_poll ran");
    let (l, port) = listen(&mut s);
    let _pair = connect_pair(&mut s, &l, port, 40);
    assert_eq!(
        s.sockets_in_use(),
        2,
        "the embedder's socket is not the shim's"
    );
}
