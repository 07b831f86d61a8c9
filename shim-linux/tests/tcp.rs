//! TCP over real loopback sockets, driving the shim directly.

mod common;

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use common::*;
use usockets_core::{ConnectTarget, ErrorKind, Event, Interest, OsShim, PeerAddr};
use usockets_shim_linux::{Fd, LinuxShim};

/// A listener on `host`, a std client connected to `connect_to`, and the accepted socket
/// registered readable under [`CONN`].
fn pair_on(host: Option<&str>, connect_to: IpAddr) -> (LinuxShim, Fd, TcpStream, PeerAddr) {
    let mut shim = shim();
    let listener = listen_host(&mut shim, host);
    let port = local(&mut shim, &listener).port();
    let client = TcpStream::connect((connect_to, port)).expect("client connect");
    client
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let (fd, peer) = accept_one(&mut shim, &listener);
    shim.close(listener);
    shim.register(&fd, CONN, Interest::READABLE).unwrap();
    (shim, fd, client, peer)
}

fn pair() -> (LinuxShim, Fd, TcpStream) {
    let (shim, fd, client, _) = pair_on(Some("127.0.0.1"), [127, 0, 0, 1].into());
    (shim, fd, client)
}

#[test]
fn listen_ipv4_reports_port_and_peer() {
    let mut shim = shim();
    let listener = listen_host(&mut shim, Some("127.0.0.1"));
    let addr = local(&mut shim, &listener);
    assert_eq!(addr.ip(), IpAddr::from([127, 0, 0, 1]));
    assert_ne!(addr.port(), 0);
    assert!(cloexec(&listener));
    let client = TcpStream::connect(addr).unwrap();
    let (fd, peer) = accept_one(&mut shim, &listener);
    assert_eq!(peer, PeerAddr::Ip(client.local_addr().unwrap()));
    assert_eq!(shim.remote_addr(&fd).unwrap(), peer);
    assert_eq!(shim.local_addr(&fd).unwrap(), PeerAddr::Ip(addr));
    assert!(cloexec(&fd));
    // Non-blocking and TCP_NODELAY.
    // SAFETY: F_GETFL touches no memory.
    let fl = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) };
    assert_ne!(fl & libc::O_NONBLOCK, 0);
    let mut v: i32 = 0;
    let mut len = 4 as libc::socklen_t;
    // SAFETY: v/len are live locals of the right size.
    let r = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_NODELAY,
            (&mut v as *mut i32).cast(),
            &mut len,
        )
    };
    assert_eq!((r, v), (0, 1));
    // Nothing else pending: accept says so without blocking.
    assert!(shim.accept(&listener).unwrap().is_none());
    shim.close(fd);
    shim.close(listener);
}

#[test]
fn listen_ipv6_loopback() {
    let (mut shim, fd, client, peer) = pair_on(Some("::1"), Ipv6Addr::LOCALHOST.into());
    assert_eq!(peer, PeerAddr::Ip(client.local_addr().unwrap()));
    match peer {
        PeerAddr::Ip(SocketAddr::V6(a)) => assert_eq!(*a.ip(), Ipv6Addr::LOCALHOST),
        other => panic!("{other:?}"),
    }
    shim.close(fd);
}

#[test]
fn listen_dual_stack_sees_mapped_ipv4_peer() {
    let mut shim = shim();
    let listener = listen_host(&mut shim, None);
    let addr = local(&mut shim, &listener);
    assert!(addr.ip().is_unspecified(), "{addr}");
    let client = TcpStream::connect(("127.0.0.1", addr.port())).unwrap();
    let (fd, peer) = accept_one(&mut shim, &listener);
    let PeerAddr::Ip(SocketAddr::V6(p)) = peer else {
        panic!("expected a mapped IPv6 peer, got {peer:?}");
    };
    assert_eq!(p.ip().to_ipv4_mapped(), Some([127, 0, 0, 1].into()));
    assert_eq!(p.port(), client.local_addr().unwrap().port());
    // IPv6 clients work on the same listener.
    let _v6 = TcpStream::connect((Ipv6Addr::LOCALHOST, addr.port())).unwrap();
    let (fd6, _) = accept_one(&mut shim, &listener);
    shim.close(fd6);
    shim.close(fd);
    shim.close(listener);
}

#[test]
fn exclusive_port_and_reuse_port() {
    let mut shim = shim();
    let shared = listen_host(&mut shim, Some("127.0.0.1"));
    let port = local(&mut shim, &shared).port();
    // SO_REUSEPORT on both: a second listener on the same port is allowed.
    let opts = usockets_core::ListenOptions::default();
    let target = usockets_core::ListenTarget::Host {
        host: Some("127.0.0.1"),
        port,
    };
    let second = shim.listen(target, opts).expect("shared port");
    let exclusive = opts.with_exclusive_port(true);
    let err = shim.listen(target, exclusive).unwrap_err();
    assert_eq!(err.kind, ErrorKind::AddrInUse);
    shim.close(second);
    shim.close(shared);
}

#[test]
fn level_triggered_unread_data_is_reported_again() {
    let (mut shim, fd, mut client) = pair();
    client.write_all(b"hello").unwrap();
    let ev = wait_token(&mut shim, CONN, Duration::from_secs(5)).unwrap();
    assert!(ev.readable() && !ev.hangup() && !ev.error());
    // Nothing read: the next waits report it again, at once.
    for _ in 0..2 {
        let again = poll_once(&mut shim, CONN, 0).expect("still readable");
        assert!(again.readable());
    }
    let mut buf = [0u8; 16];
    assert_eq!(shim.recv(&fd, &mut buf).unwrap(), 5);
    assert_eq!(&buf[..5], b"hello");
    // Drained: no longer reported, and recv would block.
    assert_eq!(poll_once(&mut shim, CONN, 0), None);
    let e = shim.recv(&fd, &mut buf).unwrap_err();
    assert_eq!((e.kind, e.code), (ErrorKind::WouldBlock, libc::EAGAIN));
    shim.close(fd);
}

#[test]
fn send_recv_round_trip() {
    let (mut shim, fd, mut client) = pair();
    assert_eq!(shim.send(&fd, b"ping", false).unwrap(), 4);
    let mut buf = [0u8; 4];
    client.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"ping");
    client.write_all(b"pong").unwrap();
    assert_eq!(recv_exact(&mut shim, &fd, CONN, 4), b"pong");
    shim.close(fd);
}

#[test]
fn send_more_then_flush_delivers() {
    let (mut shim, fd, mut client) = pair();
    // Linux releases MSG_MORE data by itself only after ~200 ms; flush must push it at once.
    // The fastest of three rounds is timed, so one scheduling hiccup cannot fail the test.
    let mut fastest = Duration::MAX;
    for _ in 0..3 {
        assert_eq!(shim.send(&fd, b"head-", true).unwrap(), 5);
        assert_eq!(shim.send(&fd, b"tail", true).unwrap(), 4);
        let start = Instant::now();
        shim.flush(&fd).unwrap();
        let mut buf = [0u8; 9];
        client.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"head-tail");
        fastest = fastest.min(start.elapsed());
        // A second flush has nothing to withdraw.
        shim.flush(&fd).unwrap();
    }
    assert!(fastest < Duration::from_millis(150), "{fastest:?}");
    shim.close(fd);
}

#[test]
fn send2_delivers_header_then_payload() {
    let (mut shim, fd, mut client) = pair();
    let payload = vec![7u8; 100_000];
    let mut sent = shim.send2(&fd, b"HEADER:", &payload).unwrap();
    assert!(sent > 7);
    // Finish a short write with plain sends.
    let all: Vec<u8> = b"HEADER:".iter().chain(&payload).copied().collect();
    let reader = std::thread::spawn(move || {
        let mut got = vec![0u8; all.len()];
        client.read_exact(&mut got).unwrap();
        assert_eq!(got, all);
    });
    let total = 7 + payload.len();
    shim.modify(&fd, CONN, Interest::WRITABLE).unwrap();
    while sent < total {
        wait_token(&mut shim, CONN, Duration::from_secs(5)).expect("writable");
        let rest = &payload[sent - 7..];
        match shim.send(&fd, rest, false) {
            Ok(n) => sent += n,
            Err(e) if e.is_would_block() => {}
            Err(e) => panic!("{e}"),
        }
    }
    reader.join().unwrap();
    // Empty parts are fine.
    assert_eq!(shim.send2(&fd, b"", b"").unwrap(), 0);
    shim.close(fd);
}

#[test]
fn peer_half_close_is_readable_not_hangup() {
    let (mut shim, fd, client) = pair();
    client.shutdown(Shutdown::Write).unwrap();
    let ev = wait_token(&mut shim, CONN, Duration::from_secs(5)).unwrap();
    assert!(ev.readable(), "{ev:?}");
    assert!(!ev.hangup() && !ev.error(), "{ev:?}");
    let mut buf = [0u8; 8];
    assert_eq!(shim.recv(&fd, &mut buf).unwrap(), 0);
    // Our write side still works.
    assert_eq!(shim.send(&fd, b"bye", false).unwrap(), 3);
    // Core drops readable interest after EOF: the half-closed socket must not be reported
    // any more (no busy loop), while writable interest still works.
    shim.modify(&fd, CONN, Interest::NONE).unwrap();
    assert_eq!(poll_once(&mut shim, CONN, 20), None);
    shim.modify(&fd, CONN, Interest::WRITABLE).unwrap();
    let w = poll_once(&mut shim, CONN, 1000).expect("writable");
    assert!(w.writable() && !w.hangup());
    shim.close(fd);
}

#[test]
fn full_close_is_a_hangup_even_without_interest() {
    let (mut shim, fd, mut client) = pair();
    shim.shutdown_write(&fd).unwrap();
    let mut buf = [0u8; 1];
    assert_eq!(client.read(&mut buf).unwrap(), 0);
    drop(client);
    shim.modify(&fd, CONN, Interest::NONE).unwrap();
    let ev = wait_token(&mut shim, CONN, Duration::from_secs(5)).expect("hang-up");
    assert!(ev.hangup(), "{ev:?}");
    shim.close(fd);
}

#[test]
fn shutdown_write_gives_peer_eof() {
    let (mut shim, fd, mut client) = pair();
    shim.send(&fd, b"last", false).unwrap();
    shim.shutdown_write(&fd).unwrap();
    let mut got = Vec::new();
    client.read_to_end(&mut got).unwrap();
    assert_eq!(got, b"last");
    // The read side still works.
    client.write_all(b"late").unwrap();
    assert_eq!(recv_exact(&mut shim, &fd, CONN, 4), b"late");
    shim.close(fd);
}

#[test]
fn shutdown_read_reports_eof() {
    let (mut shim, fd, _client) = pair();
    shim.shutdown_read(&fd).unwrap();
    let ev = wait_token(&mut shim, CONN, Duration::from_secs(5)).unwrap();
    assert!(ev.readable());
    let mut buf = [0u8; 8];
    assert_eq!(shim.recv(&fd, &mut buf).unwrap(), 0);
    shim.close(fd);
}

#[test]
fn connect_to_own_listener() {
    let mut shim = shim();
    let listener = listen_host(&mut shim, Some("127.0.0.1"));
    let port = local(&mut shim, &listener).port();
    let fd = shim
        .connect(ConnectTarget::Host {
            host: "127.0.0.1",
            port,
            source: None,
        })
        .unwrap();
    assert!(cloexec(&fd));
    shim.register(&fd, CONN, Interest::WRITABLE).unwrap();
    let ev = wait_token(&mut shim, CONN, Duration::from_secs(5)).unwrap();
    assert!(ev.writable() && !ev.error(), "{ev:?}");
    shim.connect_result(&fd).unwrap();
    let (server, peer) = accept_one(&mut shim, &listener);
    assert_eq!(shim.local_addr(&fd).unwrap(), peer);
    assert_eq!(
        shim.remote_addr(&fd).unwrap(),
        PeerAddr::Ip(([127, 0, 0, 1], port).into())
    );
    shim.send(&fd, b"x", false).unwrap();
    shim.register(&server, Token2::SERVER, Interest::READABLE)
        .unwrap();
    assert_eq!(recv_exact(&mut shim, &server, Token2::SERVER, 1), b"x");
    shim.close(server);
    shim.close(fd);
    shim.close(listener);
}

struct Token2;
impl Token2 {
    const SERVER: usockets_core::Token = usockets_core::Token(3);
}

#[test]
fn connect_binds_source_address() {
    let mut shim = shim();
    let listener = listen_host(&mut shim, Some("127.0.0.1"));
    let port = local(&mut shim, &listener).port();
    let fd = shim
        .connect(ConnectTarget::Host {
            host: "localhost",
            port,
            source: Some("127.0.0.2"),
        })
        .or_else(|_| {
            // localhost may resolve to ::1 first; the IPv4 source then cannot apply.
            shim.connect(ConnectTarget::Host {
                host: "127.0.0.1",
                port,
                source: Some("127.0.0.2"),
            })
        })
        .unwrap();
    let (server, peer) = accept_one(&mut shim, &listener);
    match peer {
        PeerAddr::Ip(a) => assert_eq!(a.ip(), IpAddr::from([127, 0, 0, 2])),
        other => panic!("{other:?}"),
    }
    shim.close(server);
    shim.close(fd);
    shim.close(listener);
}

#[test]
fn connect_refused_reports_econnrefused() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut shim = shim();
    let target = ConnectTarget::Host {
        host: "127.0.0.1",
        port,
        source: None,
    };
    match shim.connect(target) {
        Ok(fd) => {
            shim.register(&fd, CONN, Interest::WRITABLE).unwrap();
            let ev = wait_token(&mut shim, CONN, Duration::from_secs(5)).unwrap();
            assert!(ev.writable() || ev.error(), "{ev:?}");
            let e = shim.connect_result(&fd).unwrap_err();
            assert_eq!((e.kind, e.code), (ErrorKind::ConnectionRefused, 111));
            shim.close(fd);
        }
        // Allowed by the trait: an immediate refusal.
        Err(e) => assert_eq!((e.kind, e.code), (ErrorKind::ConnectionRefused, 111)),
    }
}

#[test]
fn connect_unresolvable_name_fails() {
    let mut shim = shim();
    let e = shim
        .connect(ConnectTarget::Host {
            host: "no-such-host.invalid",
            port: 80,
            source: None,
        })
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::NameResolution, "{e}");
    assert!(e.code < 0, "EAI codes are negative: {e:?}");
    let e = shim
        .connect(ConnectTarget::Host {
            host: "bad\0host",
            port: 80,
            source: None,
        })
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidInput);
}

#[test]
fn adopt_makes_std_socket_nonblocking_and_cloexec() {
    let mut shim = shim();
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let fd = OwnedFd::from(client);
    shim.adopt(&fd).unwrap();
    assert!(cloexec(&fd));
    let mut buf = [0u8; 4];
    let e = shim.recv(&fd, &mut buf).unwrap_err();
    assert!(e.is_would_block(), "{e:?}");
    shim.close(fd);
}

/// A descriptor that is not a socket gives mapped errors with the raw code kept. (A bad
/// descriptor number cannot even be named: the shim takes only owned descriptors.)
#[test]
fn non_socket_descriptor_gives_mapped_errors() {
    let mut shim = shim();
    let file = OwnedFd::from(std::fs::File::open("/dev/null").unwrap());
    let e = shim.recv(&file, &mut [0u8; 4]).unwrap_err();
    assert_eq!(e.code, libc::ENOTSOCK);
    let e = shim.register(&file, CONN, Interest::READABLE).unwrap_err();
    assert_eq!(
        (e.kind, e.code),
        (ErrorKind::PermissionDenied, libc::EPERM),
        "epoll refuses regular files"
    );
    shim.close(file);
}

#[test]
fn wait_honours_timeout_and_grows_for_large_slices() {
    let mut shim = shim();
    let start = Instant::now();
    let mut events = vec![Event::EMPTY; 4096];
    assert_eq!(shim.wait(&mut events, Some(30)).unwrap(), 0);
    assert!(start.elapsed() >= Duration::from_millis(29));
    assert_eq!(shim.wait(&mut [], Some(0)).unwrap(), 0);
    let a = shim.now_ms();
    std::thread::sleep(Duration::from_millis(5));
    let b = shim.now_ms();
    assert!(b >= a + 5, "{a} {b}");
}
