//! Core's `GrowingStorage` (the `alloc` feature): arenas that grow a chunk at a time up to a
//! maximum, reuse freed slots with a new generation, give back chunks that empty (stale handles
//! into them stay stale after they come back), and hold 100 000 connections on the simulated
//! OS.

mod support;

use std::cell::Cell;
use std::collections::HashSet;
use std::rc::Rc;

use support::quiet_net;
use usockets_core::{
    Capacity, CapacityError, Config, ContextCallbacks, ContextEntry, Cx, Event, Growing,
    GrowingStorage, ListenEntry, ListenOptions, ListenTarget, Loop, LoopCallbacks, Parts,
    PollEntry, RecvBuf, Settings, Slot, SlotStore, SocketEntry, SocketId, Storage, TimerEntry,
    RECV_PADDING,
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
    // Every handle made before a growth step still finds its own timer.
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

/// Tags each accepted socket with its order of arrival (its ext) and keeps its handle. For
/// both configs of this file (`G` and `W`).
fn on_open<C: Config<SocketExt = u64, LoopExt = Vec<SocketId>>>(
    cx: &mut Cx<C>,
    s: SocketId,
    _: bool,
    _: &[u8],
) {
    let n = cx.ext().len() as u64;
    if let Some(e) = cx.socket_ext_mut(s) {
        *e = n;
    }
    cx.ext_mut().push(s);
}

/// Echoes, prefixed with the socket's ext, so a slot mixed up by a move would show.
fn on_data<C: Config<SocketExt = u64, LoopExt = Vec<SocketId>>>(
    cx: &mut Cx<C>,
    s: SocketId,
    data: &mut RecvBuf<'_>,
) {
    let tag = cx.socket_ext(s).copied().unwrap_or(u64::MAX);
    let mut out = format!("{tag}:").into_bytes();
    out.extend_from_slice(data);
    assert_eq!(cx.write(s, &out, false), out.len());
}

/// 100 000 connections accepted in waves (the simulated backlog holds 4096), across dozens of
/// chunks; a sample of them echoes with its own ext; then all close and every slot is free
/// again.
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

// ---- chunks given back, through a loop ---------------------------------------------------------

/// Core's `Growing`, unchanged, with what it has allocated copied out after every change (the
/// loop owns the store; the test only reads the copy).
struct Watched<T> {
    store: Growing<T>,
    allocated: Rc<Cell<usize>>,
}

impl<T> Watched<T> {
    fn note(&self) {
        self.allocated.set(self.store.allocated());
    }
}

impl<T> SlotStore<T> for Watched<T> {
    fn len(&self) -> usize {
        self.store.len()
    }
    fn slot(&self, index: usize) -> Option<&Slot<T>> {
        self.store.slot(index)
    }
    fn slot_mut(&mut self, index: usize) -> Option<&mut Slot<T>> {
        self.store.slot_mut(index)
    }
    fn grow(&mut self) -> usize {
        self.store.grow()
    }
    fn keeps_free_slots(&self) -> bool {
        self.store.keeps_free_slots()
    }
    fn reserve_free(&mut self) -> bool {
        let ok = self.store.reserve_free();
        self.note();
        ok
    }
    fn take_free(&mut self) -> Option<usize> {
        let index = self.store.take_free();
        self.note();
        index
    }
    fn put_free(&mut self, index: usize) {
        self.store.put_free(index);
        self.note();
    }
}

struct W;

impl Config for W {
    type Shim = SimShim;
    type LoopExt = Vec<SocketId>;
    type ContextExt = ();
    type SocketExt = u64;
    type TimerExt = ();
    type PollExt = ();
    type Reason = u32;
    type Storage = WatchedStorage;
    type Layer = usockets_core::NoLayer;
}

/// `GrowingStorage`'s arenas, the socket one watched.
struct WatchedStorage {
    sockets: Watched<SocketEntry<W>>,
}

impl Storage<W> for WatchedStorage {
    type Sockets = Watched<SocketEntry<W>>;
    type Listeners = Growing<ListenEntry<W>>;
    type Contexts = Growing<ContextEntry<W>>;
    type Timers = Growing<TimerEntry<W>>;
    type Polls = Growing<PollEntry<W>>;
    type Recv = Box<[u8]>;
    type Events = Box<[Event]>;

    fn into_parts(self) -> Parts<W, Self> {
        Parts {
            sockets: self.sockets,
            listeners: Growing::new(0, 1 << 24),
            contexts: Growing::new(0, 1 << 24),
            timers: Growing::new(0, 1 << 24),
            polls: Growing::new(0, 1 << 24),
            recv: vec![0; 4096 + 2 * RECV_PADDING].into_boxed_slice(),
            events: vec![Event::EMPTY; 1024].into_boxed_slice(),
        }
    }
}

/// The idle benchmark's shape on the simulated OS: 5,000 connections, the first 4,950 opened
/// closed. The socket store gives back every chunk but the survivors' (and at most one kept
/// empty), every survivor still echoes with its own ext, and new connections re-create the
/// released chunks without a stale handle coming back to life.
#[test]
fn closing_most_sockets_gives_their_chunks_back_and_the_rest_keep_working() {
    const N: usize = 5_000;
    const KEEP: usize = 50;
    let chunk = Growing::<SocketEntry<W>>::CHUNK_SLOTS;
    let allocated = Rc::new(Cell::new(0));
    let storage = WatchedStorage {
        sockets: Watched {
            store: Growing::new(0, 1 << 24),
            allocated: allocated.clone(),
        },
    };
    let net = quiet_net();
    let settings = Settings::default().with_max_accepts_per_event(4096);
    let mut l = match Loop::new(
        net.shim(),
        storage,
        Vec::new(),
        LoopCallbacks::default(),
        settings,
    ) {
        Ok(l) => l,
        Err(e) => panic!("loop: {e}"),
    };
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
    let ls = l
        .listen(c, any, ListenOptions::default().with_backlog(4096), || 0)
        .expect("listen");
    let port = l.listen_port(ls).expect("port");
    let connect = |l: &mut Loop<W>, peers: &mut Vec<_>, n: usize| {
        let goal = l.ext().len() + n;
        while l.ext().len() < goal {
            let wave = (goal - l.ext().len()).min(4096);
            for _ in 0..wave {
                peers.push(net.peer_connect(port).expect("peer"));
            }
            while l.ext().len() < peers.len() {
                l.run_once(Some(0)).expect("run");
            }
        }
    };
    let mut peers = Vec::new();
    connect(&mut l, &mut peers, N);
    let peak = allocated.get();
    assert_eq!(
        peak,
        N.div_ceil(chunk) * chunk,
        "whole chunks, lowest slots first"
    );
    assert!(
        peak / chunk >= 2,
        "the test spans chunks ({chunk} slots each)"
    );
    let sockets = l.ext().clone();
    for s in &sockets[..N - KEEP] {
        l.close(*s, 0, None);
    }
    l.run_once(Some(0)).expect("run");
    assert_eq!(l.socket_slots_in_use(), KEEP);
    let mut chunks: Vec<u32> = sockets[N - KEEP..]
        .iter()
        .map(|s| s.index() / chunk as u32)
        .collect();
    chunks.dedup();
    assert!(
        allocated.get() <= (chunks.len() + 1) * chunk,
        "{} slots still allocated for {KEEP} sockets in {} chunk(s)",
        allocated.get(),
        chunks.len()
    );
    assert!(allocated.get() < peak / 2, "most of the peak given back");
    let check = |l: &mut Loop<W>, peers: &[_], range: core::ops::Range<usize>| {
        for i in range.clone() {
            net.peer_send(peers[i], b"hi");
        }
        l.run_once(Some(0)).expect("run");
        for i in range {
            assert_eq!(
                net.peer_recv(peers[i]),
                format!("{i}:hi").into_bytes(),
                "peer {i} is served by its own socket"
            );
        }
    };
    check(&mut l, &peers, N - KEEP..N);
    // New connections fill the released chunks again; the closed sockets' handles stay stale.
    connect(&mut l, &mut peers, N - KEEP);
    let closed: HashSet<u32> = sockets[..N - KEEP].iter().map(|s| s.index()).collect();
    let reused = l.ext()[N..]
        .iter()
        .filter(|s| closed.contains(&s.index()))
        .count();
    assert!(
        reused > N / 2,
        "slots of released chunks are occupied again ({reused})"
    );
    for old in &sockets[..N - KEEP] {
        assert_eq!(l.socket_ext(*old), None, "{old:?} is stale");
    }
    check(&mut l, &peers, N - KEEP..N + 100);
    for s in l.ext().clone() {
        l.close(s, 0, None);
    }
    l.listen_close(ls);
    l.run_once(Some(0)).expect("run");
    assert_eq!(l.socket_slots_in_use(), 0);
    assert!(allocated.get() <= chunk, "at most one empty chunk kept");
    assert_eq!(net.open_fds(), 0);
}
