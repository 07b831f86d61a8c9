//! `usockets::Outbox` on the simulated OS, where the "kernel" takes at most 256 KiB a direction
//! and the peer reads only when the test says: when it queues, pauses and resumes, what it
//! refuses to queue, closing after the peer's end, and order across the ring's wrap point.

use usockets::{
    Capacity, Config, ContextCallbacks, Cx, GrowingStorage, ListenOptions, ListenTarget, Loop,
    LoopCallbacks, Outbox, Settings, SocketId,
};
use usockets_shim_sim::{Faults, NoFaults, PeerId, SimNet, SimShim};

/// Kernel room per direction in shim-sim.
const KERNEL: usize = 256 * 1024;

#[derive(Default)]
struct Opened(Option<SocketId>);

struct Sim;

impl Config for Sim {
    type Shim = SimShim;
    type LoopExt = Opened;
    type ContextExt = ();
    type SocketExt = Outbox;
    type TimerExt = ();
    type PollExt = ();
    type Reason = usize;
    type Storage = GrowingStorage<Self>;
    type Layer = usockets::NoLayer;
}

fn on_open(cx: &mut Cx<Sim>, s: SocketId, _: bool, _: &[u8]) {
    cx.ext_mut().0 = Some(s);
}

fn on_writable(cx: &mut Cx<Sim>, s: SocketId) {
    Outbox::flush(cx, s);
}

fn net() -> SimNet {
    SimNet::new(Faults::NONE, Box::new(NoFaults))
}

fn new_loop(net: &SimNet) -> Loop<Sim> {
    let storage = GrowingStorage::new(Capacity::new().with_recv(64 * 1024));
    Loop::new(
        net.shim(),
        storage,
        Opened::default(),
        LoopCallbacks::default(),
        Settings::default(),
    )
    .expect("loop")
}

/// A server socket accepted from a peer, its outbox made by `outbox`.
fn accepted(outbox: fn() -> Outbox) -> (SimNet, Loop<Sim>, SocketId, PeerId) {
    let net = net();
    let mut l = new_loop(&net);
    let callbacks = ContextCallbacks {
        on_open: Some(on_open),
        on_writable: Some(on_writable),
        ..ContextCallbacks::default()
    };
    let ctx = l.context_create((), callbacks).expect("context");
    let target = ListenTarget::Host {
        host: None,
        port: 0,
    };
    let ls = l
        .listen(ctx, target, ListenOptions::default(), outbox)
        .expect("listen");
    let port = l.listen_port(ls).expect("port");
    let peer = net.peer_connect(port).expect("peer connect");
    l.run_once(Some(0)).expect("run");
    let s = l.ext().0.expect("accepted");
    (net, l, s, peer)
}

fn bytes(from: usize, len: usize) -> Vec<u8> {
    (from..from + len).map(|i| (i % 251) as u8).collect()
}

fn readable(l: &Loop<Sim>, s: SocketId) -> bool {
    l.socket_interest(s).expect("open").is_readable()
}

fn outbox(l: &mut Loop<Sim>, s: SocketId) -> &mut Outbox {
    l.socket_ext_mut(s).expect("ext")
}

#[test]
fn queues_what_the_kernel_refuses_pauses_above_high_resumes_at_exactly_low() {
    const HIGH: usize = 300_000;
    const LOW: usize = 100_000;
    let (net, mut l, s, peer) = accepted(|| Outbox::with_marks(HIGH, LOW));
    // The kernel takes 256 KiB; the rest waits, above the high-water mark: reading pauses.
    let first = 2 * KERNEL + LOW;
    assert_eq!(Outbox::write(&mut l, s, &bytes(0, first)), KERNEL);
    assert_eq!(outbox(&mut l, s).len(), first - KERNEL);
    assert!(!readable(&l, s), "paused above the high-water mark");
    assert_eq!(outbox(&mut l, s).pauses(), 1);
    // The peer reads 256 KiB; on_writable sends as much, leaving exactly LOW: reading resumes.
    let mut got = net.peer_recv(peer);
    l.run_once(Some(0)).expect("run");
    assert_eq!(
        outbox(&mut l, s).len(),
        LOW,
        "one flush of the kernel's room"
    );
    assert!(readable(&l, s), "resumed at exactly the low-water mark");
    assert!(!outbox(&mut l, s).is_paused());
    got.extend(net.peer_recv(peer));
    l.run_once(Some(0)).expect("run");
    got.extend(net.peer_recv(peer));
    assert!(outbox(&mut l, s).is_empty());
    assert_eq!(got, bytes(0, first), "every byte, in order");
    assert_eq!(outbox(&mut l, s).peak(), first - KERNEL);
}

#[test]
fn one_byte_above_low_stays_paused() {
    const HIGH: usize = 300_000;
    const LOW: usize = 100_000;
    let (net, mut l, s, peer) = accepted(|| Outbox::with_marks(HIGH, LOW));
    Outbox::write(&mut l, s, &bytes(0, 2 * KERNEL + LOW + 1));
    net.peer_recv(peer);
    l.run_once(Some(0)).expect("run");
    assert_eq!(outbox(&mut l, s).len(), LOW + 1);
    assert!(!readable(&l, s), "still above the low-water mark");
}

#[test]
fn low_above_high_is_capped_at_high() {
    // low 500 > high 100: resuming happens at 100 bytes or less.
    let (net, mut l, s, peer) = accepted(|| Outbox::with_marks(100, 500));
    Outbox::write(&mut l, s, &bytes(0, 2 * KERNEL + 150));
    assert!(!readable(&l, s));
    net.peer_recv(peer);
    l.run_once(Some(0)).expect("run");
    assert_eq!(outbox(&mut l, s).len(), 150);
    assert!(
        !readable(&l, s),
        "150 is above the capped low-water mark (100)"
    );
}

#[test]
fn order_holds_across_the_rings_wrap_point() {
    // Writes interleaved with partial drains make the ring's data wrap around its end; each
    // flush then sends both halves in one gathered write.
    let (net, mut l, s, peer) = accepted(|| Outbox::with_marks(8 << 20, 0));
    let mut sent = 0;
    let mut got = Vec::new();
    let before = net.syscalls().send2;
    // A large queue first, so its front drains while new bytes go in behind it.
    Outbox::write(&mut l, s, &bytes(0, 4 * KERNEL));
    sent += 4 * KERNEL;
    for round in 0..20 {
        got.extend(net.peer_recv(peer));
        l.run_once(Some(0)).expect("run");
        let len = 100_000 + (round * 7919) % 200_000;
        Outbox::write(&mut l, s, &bytes(sent, len));
        sent += len;
    }
    while got.len() < sent {
        got.extend(net.peer_recv(peer));
        l.run_once(Some(0)).expect("run");
    }
    assert_eq!(got, bytes(0, sent), "every byte, in order");
    assert!(
        net.syscalls().send2 > before,
        "no flush ever sent two halves of the ring"
    );
}

#[test]
fn nothing_is_queued_for_a_socket_that_cannot_send() {
    let (net, mut l, s, _peer) = accepted(Outbox::new);
    // Shut down: no on_writable would ever send it.
    l.shutdown(s);
    assert_eq!(Outbox::write(&mut l, s, b"late"), 0);
    assert!(outbox(&mut l, s).is_empty());
    // Closed (its ext lives until the end of the iteration).
    l.close(s, 0, None);
    assert_eq!(Outbox::write(&mut l, s, b"later"), 0);
    // Still connecting: a client socket before its on_open.
    let port = net.peer_listen(0);
    let ctx = l.socket_context(s);
    let ctx = match ctx {
        Some(c) => c,
        None => l
            .context_create((), ContextCallbacks::default())
            .expect("ctx"),
    };
    let target = usockets::ConnectTarget::Host {
        host: "127.0.0.1",
        port,
        source: None,
    };
    let c = l.connect(ctx, target, Outbox::new()).expect("connect");
    assert_eq!(l.is_established(c), Some(false));
    assert_eq!(Outbox::write(&mut l, c, b"too early"), 0);
    assert!(outbox(&mut l, c).is_empty());
}

#[test]
fn end_with_nothing_queued_closes_at_once_and_with_bytes_queued_after_them() {
    let (net, mut l, s, peer) = accepted(Outbox::new);
    Outbox::end(&mut l, s);
    assert_eq!(l.is_closed(s), Some(true), "nothing queued: closed at once");
    l.run_once(Some(0)).expect("run");
    assert!(net.peer_got_fin(peer));

    let (net, mut l, s, peer) = accepted(Outbox::new);
    let len = KERNEL + 1000;
    Outbox::write(&mut l, s, &bytes(0, len));
    Outbox::end(&mut l, s);
    assert_eq!(l.is_closed(s), Some(false), "1000 bytes still queued");
    let mut got = net.peer_recv(peer);
    for _ in 0..10 {
        l.run_once(Some(0)).expect("run");
        got.extend(net.peer_recv(peer));
    }
    assert_eq!(got, bytes(0, len), "the queue went out before the close");
    assert!(net.peer_got_fin(peer));
    assert_eq!(l.slots_in_use()[0], 0, "closed and released");
}
