//! What the shim's deadlines and caps guarantee where a peer misbehaves or vanishes: no smoltcp
//! socket is held for good. On a virtual clock (the shim's sleeps jump to their deadline), so
//! minutes pass in milliseconds.

mod common;

use common::{virtual_shim, VirtualShim};
use usockets_core::{
    ConnectTarget, ErrorKind, Event, Interest, ListenOptions, ListenTarget, OsShim, PeerAddr,
    ShimError, Token,
};
use usockets_shim_smoltcp::smoltcp::phy::{ChecksumCapabilities, Device, TxToken};
use usockets_shim_smoltcp::smoltcp::time::Instant;
use usockets_shim_smoltcp::smoltcp::wire::{
    IpAddress, IpProtocol, Ipv4Address, Ipv4Packet, Ipv4Repr, TcpControl, TcpPacket, TcpRepr,
    TcpSeqNumber,
};
use usockets_shim_smoltcp::{SmolConfig, SmolFd, HANDSHAKE_TIMEOUT_MS};

type S = VirtualShim<8>;

fn listen(s: &mut S, backlog: u32) -> (SmolFd, u16) {
    let l = s
        .listen(
            ListenTarget::Host {
                host: Some("127.0.0.1"),
                port: 0,
            },
            ListenOptions::default().with_backlog(backlog),
        )
        .expect("listen");
    s.register(&l, Token(1), Interest::READABLE)
        .expect("register");
    let Ok(PeerAddr::Ip(a)) = s.local_addr(&l) else {
        panic!("a listener has an IP address")
    };
    (l, a.port())
}

fn connect(s: &mut S, host: &str, port: u16, token: u64) -> SmolFd {
    let c = s
        .connect(ConnectTarget::Host {
            host,
            port,
            source: None,
        })
        .expect("connect");
    s.register(&c, Token(token), Interest::WRITABLE)
        .expect("register");
    c
}

/// One wait of at most `ms` (virtual); the events.
fn wait(s: &mut S, ms: u64) -> Vec<Event> {
    let mut events = [Event::new(Token(0)); 16];
    let n = s.wait(&mut events, Some(ms)).expect("wait");
    events[..n].to_vec()
}

/// Waits (virtual time) until `done`; at most 1,000 waits.
fn until(s: &mut S, what: &str, mut done: impl FnMut(&mut S, &[Event]) -> bool) {
    for _ in 0..1_000 {
        let ev = wait(s, 100);
        if done(s, &ev) {
            return;
        }
    }
    panic!("never: {what}");
}

/// An established pair: (client, server end).
fn pair(s: &mut S, l: &SmolFd, port: u16) -> (SmolFd, SmolFd) {
    let c = connect(s, "127.0.0.1", port, 10);
    let mut server = None;
    until(s, "accept", |s, _| {
        server = s.accept(l).expect("accept").map(|(fd, _)| fd);
        server.is_some()
    });
    until(s, "connected", |_, ev| {
        ev.iter().any(|e| e.token == Token(10) && e.writable())
    });
    s.connect_result(&c).expect("connected");
    (c, server.expect("server end"))
}

/// A server end reads its error once the shim reports one.
fn error_of(s: &mut S, fd: &SmolFd, token: u64) -> ErrorKind {
    s.register(fd, Token(token), Interest::READABLE)
        .expect("register");
    until(s, "an error", |_, ev| {
        ev.iter().any(|e| e.token == Token(token) && e.error())
    });
    s.connect_result(fd).expect_err("an error").kind()
}

/// The peer acknowledges our FIN and never sends its own: FIN-WAIT-2 would last for ever.
/// After `linger_ms` the socket is reset and given back; the peer sees the reset.
#[test]
fn a_close_the_peer_never_finishes_is_reset_after_linger_ms() {
    let mut s = virtual_shim::<8>(SmolConfig::new().with_listen_pool(1).with_linger_ms(5_000));
    let (l, port) = listen(&mut s, 4);
    let (c, srv) = pair(&mut s, &l, port);
    s.close(c);
    // The server end stays open, never closing (and unregistered: no event ends a wait
    // early): the client's socket waits in FIN-WAIT-2.
    wait(&mut s, 1_000);
    assert_eq!(s.sockets_lingering(), 1, "closing, within linger_ms");
    wait(&mut s, 5_000);
    assert_eq!(s.sockets_lingering(), 0, "given back after linger_ms");
    assert_eq!(error_of(&mut s, &srv, 20), ErrorKind::ConnectionReset);
}

/// Data that arrives for a closed connection resets it at once, as on a BSD socket (and
/// frees its socket), instead of being buffered for no one.
#[test]
fn data_after_close_resets_the_connection() {
    let mut s = virtual_shim::<8>(SmolConfig::new().with_listen_pool(1));
    let (l, port) = listen(&mut s, 4);
    let (c, srv) = pair(&mut s, &l, port);
    s.close(c);
    wait(&mut s, 10);
    assert_eq!(s.send(&srv, b"for no one", false).expect("send"), 10);
    assert_eq!(error_of(&mut s, &srv, 21), ErrorKind::ConnectionReset);
    wait(&mut s, 10);
    assert_eq!(s.sockets_lingering(), 0);
}

/// A connect to an address that never answers (127.0.0.2: not the interface's, so the SYN is
/// dropped) fails with `TimedOut` after `connect_timeout_ms`.
#[test]
fn a_connect_nobody_answers_times_out() {
    let mut s = virtual_shim::<8>(SmolConfig::new().with_connect_timeout_ms(3_000));
    let c = connect(&mut s, "127.0.0.2", 80, 30);
    let events = wait(&mut s, 1_000);
    assert!(events.is_empty(), "nothing yet: {events:?}");
    until(&mut s, "the time-out", |_, ev| {
        ev.iter().any(|e| e.token == Token(30) && e.error())
    });
    let e = s.connect_result(&c).expect_err("timed out");
    assert_eq!(e.kind(), ErrorKind::TimedOut);
    assert_eq!(e.raw_os_error(), 110);
    s.close(c);
    wait(&mut s, 2_000);
    assert_eq!(s.sockets_in_use(), 0);
}

/// Writes a TCP SYN from 127.0.0.2 (an address nobody answers from) into the device.
fn inject_syn(s: &mut S, src_port: u16, dst_port: u16) {
    inject(s, src_port, dst_port, TcpControl::Syn, 1_000);
}

/// Writes a TCP segment (`control`, sequence number `seq`, no ACK, no data) from 127.0.0.2
/// into the device.
fn inject(s: &mut S, src_port: u16, dst_port: u16, control: TcpControl, seq: i32) {
    let (src, dst) = (
        Ipv4Address::new(127, 0, 0, 2),
        Ipv4Address::new(127, 0, 0, 1),
    );
    let tcp = TcpRepr {
        src_port,
        dst_port,
        control,
        seq_number: TcpSeqNumber(seq),
        ack_number: None,
        window_len: 1_024,
        window_scale: None,
        max_seg_size: None,
        sack_permitted: false,
        sack_ranges: [None; 3],
        timestamp: None,
        payload: &[],
    };
    let ip = Ipv4Repr {
        src_addr: src,
        dst_addr: dst,
        next_header: IpProtocol::Tcp,
        payload_len: tcp.buffer_len(),
        hop_limit: 64,
    };
    let caps = ChecksumCapabilities::default();
    let token = s
        .device_mut()
        .transmit(Instant::from_millis(0))
        .expect("room in the device");
    token.consume(ip.buffer_len() + tcp.buffer_len(), |buf| {
        ip.emit(&mut Ipv4Packet::new_unchecked(&mut buf[..]), &caps);
        let mut packet = TcpPacket::new_unchecked(&mut buf[ip.buffer_len()..]);
        tcp.emit(
            &mut packet,
            &IpAddress::from(src),
            &IpAddress::from(dst),
            &caps,
        );
    });
}

/// SYNs that never complete (a vanished or spoofed peer) take at most `backlog` sockets
/// besides the pool, and give them back after the handshake's time-out; the listener keeps
/// working throughout.
#[test]
fn half_open_connections_are_capped_by_the_backlog_and_time_out() {
    let mut s = virtual_shim::<8>(SmolConfig::new().with_listen_pool(1));
    let (l, port) = listen(&mut s, 2);
    for k in 0..6 {
        inject_syn(&mut s, 40_000 + k, port);
        wait(&mut s, 0);
    }
    let in_use = s.sockets_in_use();
    assert!(
        in_use <= 1 + 2,
        "the pool and at most `backlog` half-open sockets, not one per SYN: {in_use}"
    );
    wait(&mut s, HANDSHAKE_TIMEOUT_MS + 2_000);
    assert_eq!(s.sockets_in_use(), 1, "half-open sockets given back");
    // The listener still works.
    let (c, _srv) = pair(&mut s, &l, port);
    assert_eq!(s.send(&c, b"ok", false).expect("send"), 2);
}

/// A listener's pool shrinks back to its size: half-open sockets that smoltcp puts back to
/// listening after a reset do not stay as extra listeners.
#[test]
fn the_pool_shrinks_back_after_a_burst() {
    let mut s = virtual_shim::<8>(SmolConfig::new().with_listen_pool(1));
    let (_l, port) = listen(&mut s, 4);
    // Three SYNs, each taking the listening socket (which is replaced at once)...
    for k in 0..3 {
        inject_syn(&mut s, 41_000 + k, port);
        wait(&mut s, 0);
    }
    assert_eq!(
        s.sockets_in_use(),
        1 + 3,
        "the pool and three half-open sockets"
    );
    // ...then each peer resets its handshake: smoltcp puts the three back to listening.
    for k in 0..3 {
        inject(&mut s, 41_000 + k, port, TcpControl::Rst, 1_001);
        wait(&mut s, 0);
    }
    wait(&mut s, 10);
    assert_eq!(
        s.sockets_in_use(),
        1,
        "only the pool of one is left listening"
    );
}
