//! The echo example's own callbacks (`examples/shared/echo_app.rs`) on the simulated OS, where
//! the kernel buffers are small and fixed (256 KiB a direction) and time is virtual, so the cases
//! loopback hides behind megabytes of kernel buffering happen every time: the peer's FIN read
//! while echo bytes still wait in the outbox, and a slow reader draining the outbox for longer
//! than the idle timeout.

#[path = "../examples/shared/echo_app.rs"]
mod echo_app;

use usockets::{
    Capacity, Config, GrowingStorage, ListenOptions, ListenTarget, Loop, LoopCallbacks, Outbox,
    Settings,
};
use usockets_shim_sim::{Faults, NoFaults, PeerId, SimNet, SimShim};

/// The echo server on the simulated OS.
struct Sim;

impl Config for Sim {
    type Shim = SimShim;
    type LoopExt = ();
    type ContextExt = echo_app::Echo;
    type SocketExt = Outbox;
    type TimerExt = ();
    type PollExt = ();
    type Reason = usize;
    type Storage = GrowingStorage<Self>;
    type Layer = usockets::NoLayer;
}

/// Byte `i` of the test stream.
fn pattern(i: usize) -> u8 {
    (i.wrapping_mul(31) ^ (i >> 9)) as u8
}

/// An echo server with idle timeout `idle` and a peer connected to it, accepted.
fn echo_server(idle: u32) -> (SimNet, Loop<Sim>, PeerId) {
    let net = SimNet::new(Faults::NONE, Box::new(NoFaults));
    let storage = GrowingStorage::new(Capacity::new().with_recv(usockets::RECV_BUFFER_LENGTH));
    let mut l = Loop::new(
        net.shim(),
        storage,
        (),
        LoopCallbacks::default(),
        Settings::default(),
    )
    .expect("loop");
    let ctx = l
        .context_create(
            echo_app::Echo {
                idle_seconds: idle,
                ..echo_app::Echo::default()
            },
            echo_app::callbacks::<Sim>(),
        )
        .expect("context");
    let target = ListenTarget::Host {
        host: None,
        port: 0,
    };
    let ls = l
        .listen(ctx, target, ListenOptions::default(), Outbox::new)
        .expect("listen");
    let port = l.listen_port(ls).expect("port");
    let peer = net.peer_connect(port).expect("peer connect");
    l.integrate();
    l.run_once(Some(0)).expect("run");
    assert_eq!(l.slots_in_use()[0], 1, "the peer was accepted");
    (net, l, peer)
}

/// Runs the loop through `ms` of virtual time in 100 ms steps.
fn run_for(net: &SimNet, l: &mut Loop<Sim>, ms: u64) {
    for _ in 0..ms / 100 {
        l.run_once(Some(0)).expect("run");
        net.advance(100);
        l.run_once(Some(0)).expect("run");
    }
}

/// Sends `len` pattern bytes and FIN, then reads whatever arrived every `read_every_ms` until
/// the server's FIN; returns what arrived and the virtual time it took.
fn echo_with_fin(idle: u32, len: usize, read_every_ms: u64) -> (Vec<u8>, u64) {
    let (net, mut l, peer) = echo_server(idle);
    let data: Vec<u8> = (0..len).map(pattern).collect();
    assert_eq!(net.peer_send(peer, &data), len);
    net.peer_shutdown(peer);
    let start = net.now_ms();
    let mut got = Vec::with_capacity(len);
    for _ in 0..10_000 {
        run_for(&net, &mut l, read_every_ms);
        got.extend(net.peer_recv(peer));
        if net.peer_got_fin(peer) {
            break;
        }
    }
    assert!(net.peer_got_fin(peer), "the server never closed");
    assert_eq!(l.slots_in_use()[0], 0, "the socket was released");
    (got, net.now_ms() - start)
}

#[test]
fn fin_read_while_echo_bytes_wait_still_gets_them_all_then_our_fin() {
    // 2 MiB + 100 KB against 256 KiB of "kernel" buffer each way, read once a second: the
    // server reads the FIN right after resuming, with echo bytes still in its outbox.
    let len = (2 << 20) + 100_000;
    let (got, _) = echo_with_fin(30, len, 1000);
    assert_eq!(got.len(), len, "echo bytes before the server's FIN");
    assert!(
        got.iter().enumerate().all(|(i, &b)| b == pattern(i)),
        "the echo differs from what was sent"
    );
}

#[test]
fn a_slow_reader_keeps_the_connection_while_bytes_go_out() {
    // One 256 KiB read every 3 s: the 2 MiB echo takes about 24 s, the last several seconds
    // with the server only sending from its outbox (all input read). Each flush is progress
    // and pushes the 4 s idle timeout away; measured from the last byte received instead, it
    // would close with bytes still waiting.
    let len = 2 << 20;
    let (got, took) = echo_with_fin(4, len, 3000);
    assert_eq!(got.len(), len, "echo bytes before the server closed");
    assert!(
        got.iter().enumerate().all(|(i, &b)| b == pattern(i)),
        "the echo differs from what was sent"
    );
    assert!(took >= 20_000, "the transfer was not slow: {took} ms");
}

#[test]
fn an_idle_connection_still_times_out() {
    // Nothing sent, nothing read: the idle timeout closes it (between 4 and 8 s).
    let (net, mut l, peer) = echo_server(4);
    run_for(&net, &mut l, 3_900);
    assert!(!net.peer_got_fin(peer), "closed before its idle timeout");
    run_for(&net, &mut l, 4_200);
    assert!(net.peer_got_fin(peer), "an idle connection was kept");
}
