//! Core's `GrowingStorage` (the `alloc` feature): arenas that start small and grow up to a
//! maximum, move their slots when they grow without any handle noticing, reuse freed slots with
//! a new generation, and hold 100 000 connections on the simulated OS.

mod support;

use support::quiet_net;
use usockets_core::{
    Capacity, CapacityError, Config, ContextCallbacks, Cx, GrowingStorage, ListenOptions,
    ListenTarget, Loop, LoopCallbacks, RecvBuf, Settings, SocketId,
};
use usockets_shim_sim::{SimNet, SimShim};

struct G;

impl Config for G {
    type Shim = SimShim;
    type LoopExt = Vec<SocketId>;
    type ContextExt = ();
    type SocketExt = u64;
    type TimerExt = u64;
    type PollExt = ();
    type Reason = u32;
    type Storage = GrowingStorage<Self>;
    type Layer = usockets_core::NoLayer;
}

fn new_loop(net: &SimNet, cap: Capacity) -> Loop<G> {
    let storage = GrowingStorage::new(cap);
    // A whole wave of the simulated backlog per readable event: few waits, each of which the
    // simulator answers by scanning every descriptor.
    let settings = Settings::default().with_max_accepts_per_event(4096);
    match Loop::new(
        net.shim(),
        storage,
        Vec::new(),
        LoopCallbacks::default(),
        settings,
    ) {
        Ok(l) => l,
        Err(e) => panic!("loop: {e}"),
    }
}

#[test]
fn arenas_grow_on_demand_up_to_their_maximum_and_reuse_freed_slots() {
    let net = quiet_net();
    let mut l = new_loop(&net, Capacity::new().with_timers(40));
    let timers: Vec<_> = (0..40u64)
        .map(|i| l.timer_create(true, 1000 + i).expect("timer"))
        .collect();
    assert_eq!(
        l.timer_create(true, 0),
        Err(CapacityError),
        "the maximum, 40, past two growth steps (16, 32, 40)"
    );
    // Every handle made before a growth step still finds its own timer: the slots moved
    // with the vector, the handles are indices and generations.
    for (i, t) in timers.iter().enumerate() {
        assert_eq!(l.timer_ext(*t), Some(&(1000 + i as u64)));
    }
    let gone = timers[3];
    assert_eq!(l.timer_close(gone), Some(1003));
    let again = l.timer_create(true, 7).expect("a freed slot");
    assert_eq!(again.index(), gone.index(), "reused, not grown");
    assert_ne!(again.generation(), gone.generation());
    assert_eq!(l.timer_ext(gone), None, "the old handle is stale");
    assert_eq!(l.timer_ext(again), Some(&7));
    assert_eq!(l.slots_in_use()[3], 40);
}

#[test]
fn preallocated_storage_is_full_at_exactly_its_size() {
    let net = quiet_net();
    let cap = Capacity::new()
        .with_sockets(2)
        .with_listeners(1)
        .with_contexts(0)
        .with_timers(5)
        .with_polls(1)
        .with_recv(1024)
        .with_events(8);
    let storage = GrowingStorage::preallocated(cap);
    let mut l: Loop<G> = match Loop::new(
        net.shim(),
        storage,
        Vec::new(),
        LoopCallbacks::default(),
        Settings::default(),
    ) {
        Ok(l) => l,
        Err(e) => panic!("loop: {e}"),
    };
    for i in 0..5 {
        assert!(l.timer_create(true, i).is_ok());
    }
    assert_eq!(l.timer_create(true, 5), Err(CapacityError));
    assert!(
        l.context_create((), ContextCallbacks::default()).is_err(),
        "a zero capacity holds nothing"
    );
}

fn on_open(cx: &mut Cx<G>, s: SocketId, _: bool, _: &[u8]) {
    let n = cx.ext().len() as u64;
    if let Some(e) = cx.socket_ext_mut(s) {
        *e = n;
    }
    cx.ext_mut().push(s);
}

/// Echoes, prefixed with the socket's ext, so a slot mixed up by a move would show.
fn on_data(cx: &mut Cx<G>, s: SocketId, data: &mut RecvBuf<'_>) {
    let tag = cx.socket_ext(s).copied().unwrap_or(u64::MAX);
    let mut out = format!("{tag}:").into_bytes();
    out.extend_from_slice(data);
    assert_eq!(cx.write(s, &out, false), out.len());
}

/// 100 000 connections accepted in waves (the simulated backlog holds 4096), every slot a
/// move away from where it started; a sample of them echoes with its own ext; then all close
/// and every slot is free again.
#[test]
fn a_hundred_thousand_sockets_on_the_simulated_os() {
    const N: usize = 100_000;
    let net = quiet_net();
    let mut l = new_loop(&net, Capacity::new().with_recv(4096).with_events(1024));
    let callbacks = ContextCallbacks {
        on_open: Some(on_open),
        on_data: Some(on_data),
        ..ContextCallbacks::default()
    };
    let c = l.context_create((), callbacks).expect("context");
    let any = ListenTarget::Host {
        host: None,
        port: 0,
    };
    let backlog = ListenOptions::default().with_backlog(4096);
    let ls = l.listen(c, any, backlog, || 0).expect("listen");
    let port = l.listen_port(ls).expect("port");
    let mut peers = Vec::with_capacity(N);
    while peers.len() < N {
        let wave = (N - peers.len()).min(4096);
        for _ in 0..wave {
            peers.push(net.peer_connect(port).expect("peer"));
        }
        while l.ext().len() < peers.len() {
            l.run_once(Some(0)).expect("run");
        }
    }
    assert_eq!(l.socket_slots_in_use(), N);
    let sockets = l.ext().clone();
    for i in (0..N).step_by(997) {
        net.peer_send(peers[i], b"hi");
    }
    l.run_once(Some(0)).expect("run");
    for i in (0..N).step_by(997) {
        assert_eq!(
            net.peer_recv(peers[i]),
            format!("{i}:hi").into_bytes(),
            "peer {i} is served by its own socket"
        );
    }
    for s in &sockets {
        l.close(*s, 0, None);
    }
    l.listen_close(ls);
    l.run_once(Some(0)).expect("run");
    assert_eq!(l.slots_in_use(), [0, 0, 1, 0, 0]);
    assert_eq!(l.socket_ext(sockets[0]), None, "handles are stale");
    assert_eq!(net.open_fds(), 0);
}
