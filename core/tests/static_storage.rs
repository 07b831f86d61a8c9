//! Loops whose memory is core's `FixedStorage` in a `static` (through `static_cell`, as an
//! embedder does), on the simulated OS: connections, echo, close and release, timers and polls
//! behave as on any storage, and every arena is full at exactly its size.

mod support;

use static_cell::StaticCell;
use support::quiet_net;
use usockets_core::{
    CapacityError, CloseCause, Config, ConnectTarget, ContextCallbacks, ContextError, Cx,
    FixedStorage, Interest, ListenError, ListenOptions, ListenTarget, Loop, LoopCallbacks, PollId,
    RecvBuf, Settings, SocketId, TimerId,
};
use usockets_shim_sim::{SimNet, SimShim};

/// What the callbacks saw.
#[derive(Default)]
struct Log {
    opened: Vec<SocketId>,
    closed: Vec<(SocketId, CloseCause<u32>)>,
    released: Vec<(SocketId, u32)>,
    ticks: u32,
    polls: u32,
}

struct Static;

impl Config for Static {
    type Shim = SimShim;
    type LoopExt = Log;
    type ContextExt = ();
    type SocketExt = u32;
    type TimerExt = ();
    type PollExt = ();
    type Reason = u32;
    type Storage = &'static mut Memory;
    type Layer = usockets_core::NoLayer;
}

/// 4 sockets, 2 listen sockets, 2 contexts, 3 timers, 2 polls.
type Memory = FixedStorage<Static, 4, 2, 2, 3, 2>;

/// A fresh `&'static mut Memory` from a `static` of its own (one per call site: a
/// `StaticCell` hands its memory out once).
macro_rules! static_memory {
    () => {{
        static MEMORY: StaticCell<Memory> = StaticCell::new();
        MEMORY.init_with(Memory::new)
    }};
}

fn on_open(cx: &mut Cx<Static>, s: SocketId, _: bool, _: &[u8]) {
    let n = cx.ext().opened.len() as u32;
    if let Some(e) = cx.socket_ext_mut(s) {
        *e = 100 + n;
    }
    cx.ext_mut().opened.push(s);
}
fn on_data(cx: &mut Cx<Static>, s: SocketId, data: &mut RecvBuf<'_>) {
    let n = cx.write(s, data, false);
    assert_eq!(n, data.len(), "the simulated socket takes a short echo");
}
fn on_close(cx: &mut Cx<Static>, s: SocketId, cause: CloseCause<u32>) {
    cx.ext_mut().closed.push((s, cause));
}
fn on_released(cx: &mut Cx<Static>, s: SocketId, ext: u32) {
    cx.ext_mut().released.push((s, ext));
}
fn on_tick(cx: &mut Cx<Static>, _: TimerId) {
    cx.ext_mut().ticks += 1;
}
/// Counts and drains the pipe, so the level-triggered poll goes quiet.
fn on_poll(cx: &mut Cx<Static>, p: PollId, _: Interest, _: bool) {
    cx.ext_mut().polls += 1;
    let mut buf = [0u8; 16];
    if let Some(fd) = cx.poll_fd(p) {
        cx.shim().net().pipe_read(fd, &mut buf);
    }
}

fn callbacks() -> ContextCallbacks<Static> {
    ContextCallbacks {
        on_open: Some(on_open),
        on_data: Some(on_data),
        on_close: Some(on_close),
        ..ContextCallbacks::default()
    }
}

fn new_loop(net: &SimNet, memory: &'static mut Memory) -> Loop<Static> {
    let callbacks = LoopCallbacks {
        released: Some(on_released),
        ..LoopCallbacks::default()
    };
    match Loop::new(
        net.shim(),
        memory,
        Log::default(),
        callbacks,
        Settings::default(),
    ) {
        Ok(l) => l,
        Err(e) => panic!("loop on static memory: {e}"),
    }
}

fn any_port() -> ListenTarget<'static> {
    ListenTarget::Host {
        host: None,
        port: 0,
    }
}

fn turn(l: &mut Loop<Static>) {
    l.run_once(Some(0)).expect("run_once");
}

#[test]
fn a_loop_in_static_memory_echoes_closes_and_releases() {
    let net = quiet_net();
    let mut l = new_loop(&net, static_memory!());
    let c = l.context_create((), callbacks()).expect("context");
    let ls = l
        .listen(c, any_port(), ListenOptions::default(), || 0)
        .expect("listen");
    let port = l.listen_port(ls).expect("port");
    let peers: Vec<_> = (0..3)
        .map(|_| net.peer_connect(port).expect("peer"))
        .collect();
    turn(&mut l);
    assert_eq!(l.ext().opened.len(), 3);
    for (i, p) in peers.iter().enumerate() {
        net.peer_send(*p, format!("ping {i}").as_bytes());
    }
    turn(&mut l);
    for (i, p) in peers.iter().enumerate() {
        assert_eq!(net.peer_recv(*p), format!("ping {i}").into_bytes());
    }
    let first = l.ext().opened[0];
    assert_eq!(l.socket_ext(first), Some(&100));
    l.close(first, 7, Some(1));
    turn(&mut l);
    assert_eq!(
        l.ext().closed,
        [(
            first,
            CloseCause::User {
                code: 7,
                reason: Some(1)
            }
        )]
    );
    assert_eq!(l.ext().released, [(first, 100)], "the ext comes back");
    assert!(net.peer_got_fin(peers[0]));
    assert_eq!(l.socket_slots_in_use(), 2);
}

#[test]
fn timers_and_polls_work_in_static_memory() {
    let net = quiet_net();
    let mut l = new_loop(&net, static_memory!());
    let t = l.timer_create(true, ()).expect("timer");
    l.timer_set(t, on_tick, 10, 10);
    let (r, w) = net.user_pipe();
    let p = l.poll_create(true, ()).expect("poll");
    assert!(matches!(l.poll_init(p, r), Ok(None)));
    l.poll_set_callback(p, on_poll).expect("callback");
    l.poll_start(p, Interest::READABLE).expect("start");
    net.pipe_write(&w, b"x");
    for _ in 0..3 {
        l.run_once(Some(1000)).expect("run");
    }
    assert!(l.ext().ticks >= 2, "{} ticks", l.ext().ticks);
    assert!(l.ext().polls >= 1, "the poll reported its pipe");
    assert!(l.poll_free(p).is_some());
    assert!(l.timer_close(t).is_some());
}

#[test]
fn every_arena_of_static_memory_is_full_at_exactly_its_size() {
    let net = quiet_net();
    let mut l = new_loop(&net, static_memory!());
    let c = l.context_create((), callbacks()).expect("context 1");
    let spare = l.context_create((), callbacks()).expect("context 2");
    assert_eq!(
        l.context_create((), callbacks()).err(),
        Some(ContextError::Capacity),
        "2 contexts"
    );
    let ls = l
        .listen(c, any_port(), ListenOptions::default(), || 0)
        .expect("listener 1");
    let ls2 = l
        .listen(spare, any_port(), ListenOptions::default(), || 0)
        .expect("listener 2");
    assert_eq!(
        l.listen(c, any_port(), ListenOptions::default(), || 0)
            .err(),
        Some(ListenError::Capacity),
        "2 listen sockets"
    );
    l.listen_close(ls2);
    let timers: Vec<_> = (0..3)
        .map(|_| l.timer_create(true, ()).expect("timer"))
        .collect();
    assert_eq!(l.timer_create(true, ()), Err(CapacityError), "3 timers");
    let polls: Vec<_> = (0..2)
        .map(|_| l.poll_create(true, ()).expect("poll"))
        .collect();
    assert_eq!(l.poll_create(true, ()), Err(CapacityError), "2 polls");

    // 4 socket slots: the 5th connection is shed, and the listener waits for a free slot.
    let port = l.listen_port(ls).expect("port");
    let peers: Vec<_> = (0..5)
        .map(|_| net.peer_connect(port).expect("peer"))
        .collect();
    turn(&mut l);
    assert_eq!(l.ext().opened.len(), 4, "4 sockets");
    assert_eq!(l.socket_slots_in_use(), 4);
    assert!(
        net.peer_got_fin(peers[4]) || net.peer_is_reset(peers[4]),
        "the connection with no slot is shed"
    );
    let to = ConnectTarget::Host {
        host: "127.0.0.1",
        port,
        source: None,
    };
    assert!(l.connect(c, to, 0).is_err(), "no slot for a client either");

    // A slot released is a slot reused, with a new generation.
    let first = l.ext().opened[0];
    l.close(first, 0, None);
    turn(&mut l);
    let late = net.peer_connect(port).expect("late peer");
    l.run_once(Some(1000)).expect("run");
    let newest = *l.ext().opened.last().expect("opened");
    assert_eq!(newest.index(), first.index(), "the freed slot is reused");
    assert_ne!(newest.generation(), first.generation());
    assert_eq!(l.socket_ext(first), None, "the old handle is stale");
    net.peer_send(late, b"served");
    turn(&mut l);
    assert_eq!(net.peer_recv(late), b"served");

    for t in timers {
        l.timer_close(t);
    }
    for p in polls {
        l.poll_free(p);
    }
    assert!(
        l.timer_create(true, ()).is_ok(),
        "freed timer slots are reused"
    );
}
