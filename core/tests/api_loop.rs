//! Behaviour tests of the loop (`us_create_loop`, `us_loop_run`, `us_wakeup_loop`,
//! `us_loop_integrate`, `us_loop_iteration_number`, pre/post callbacks, end-of-iteration release),
//! the low-priority queue and the per-event accept cap, on the simulated OS.

mod support;

use std::thread::ThreadId;

use support::{new_loop, quiet_net, run_until, Caps, SimNet, SimShim};
use usockets_core::{
    Config, ContextCallbacks, ContextEntry, ContextId, Cx, Event, Growing, Interest, ListenEntry,
    ListenId, ListenOptions, ListenTarget, Loop, LoopCallbacks, LoopError, Parts, PollEntry,
    PollId, RecvBuf, Settings, SocketEntry, SocketId, Storage, TimerEntry, TimerId, Wake,
};
use usockets_shim_sim::PeerId;

#[derive(Clone, Debug, PartialEq, Eq)]
enum Ev {
    Pre {
        iter: u64,
        waits: u64,
    },
    Post {
        iter: u64,
        waits: u64,
    },
    Wake,
    Timer {
        at: u64,
    },
    Poll,
    Open(SocketId),
    Data {
        s: SocketId,
        ctx: u8,
        iter: u64,
    },
    Closed {
        s: SocketId,
        is_closed: Option<bool>,
        ext: Option<u32>,
        slots: usize,
    },
    Released {
        s: SocketId,
        ext: u32,
    },
    PostSees {
        s: SocketId,
        is_closed: Option<bool>,
    },
    Timeout {
        at: u64,
    },
}

#[derive(Default)]
struct Rec {
    log: Vec<Ev>,
    /// Log `Pre`/`Post` entries.
    trace: bool,
    /// Call `wakeup()` from the first `pre`.
    wake_in_pre: bool,
    wakeups: u32,
    wake_thread: Option<ThreadId>,
    listener: Option<ListenId>,
    close_listener_on_open: bool,
    close_on_data: bool,
    /// `on_timeout` closes the socket and the listener.
    close_on_timeout: bool,
    low_priority: bool,
    opened: Vec<SocketId>,
    /// Sockets whose `is_closed` the post callback records.
    watch: Vec<SocketId>,
    timer_fires: u32,
    /// A repeating timer closes itself after this many fires.
    close_timer_after: u32,
    /// The poll callback drains its pipe.
    pipe_read: bool,
}

sim_config!(L {
    loop_ext: Rec,
    context_ext: u8,
    socket_ext: u32,
    timer_ext: (),
    poll_ext: ()
});

const GUARD: u64 = 1000;

fn on_pre(cx: &mut Cx<L>) {
    let iter = cx.iteration_number();
    assert!(
        iter < GUARD,
        "run() did not return after {GUARD} iterations"
    );
    let waits = cx.shim().net().syscalls().wait;
    if cx.ext().trace {
        cx.ext_mut().log.push(Ev::Pre { iter, waits });
    }
    if cx.ext().wake_in_pre {
        cx.ext_mut().wake_in_pre = false;
        cx.wakeup();
    }
}

fn on_post(cx: &mut Cx<L>) {
    let iter = cx.iteration_number();
    let waits = cx.shim().net().syscalls().wait;
    for s in cx.ext().watch.clone() {
        let is_closed = cx.is_closed(s);
        cx.ext_mut().log.push(Ev::PostSees { s, is_closed });
    }
    if cx.ext().trace {
        cx.ext_mut().log.push(Ev::Post { iter, waits });
    }
}

fn on_wakeup(cx: &mut Cx<L>) {
    let e = cx.ext_mut();
    e.wakeups += 1;
    e.wake_thread = Some(std::thread::current().id());
    e.log.push(Ev::Wake);
}

fn on_released(cx: &mut Cx<L>, s: SocketId, ext: u32) {
    cx.ext_mut().log.push(Ev::Released { s, ext });
}

fn on_open(cx: &mut Cx<L>, s: SocketId, _: bool, _: &[u8]) {
    if cx.ext().low_priority {
        cx.set_low_priority(s, true);
    }
    if cx.ext().close_listener_on_open {
        if let Some(ls) = cx.ext_mut().listener.take() {
            cx.listen_close(ls);
        }
    }
    let n = cx.ext().opened.len() as u32;
    if let Some(x) = cx.socket_ext_mut(s) {
        *x = 100 + n;
    }
    cx.ext_mut().opened.push(s);
    cx.ext_mut().log.push(Ev::Open(s));
}

fn on_data(cx: &mut Cx<L>, s: SocketId, _: &mut RecvBuf<'_>) {
    let ctx = cx
        .socket_context(s)
        .and_then(|c| cx.context_ext(c).copied())
        .unwrap_or(0);
    let iter = cx.iteration_number();
    cx.ext_mut().log.push(Ev::Data { s, ctx, iter });
    if cx.ext().close_on_data {
        cx.close(s, 0, None);
        let ev = Ev::Closed {
            s,
            is_closed: cx.is_closed(s),
            ext: cx.socket_ext(s).copied(),
            slots: cx.socket_slots_in_use(),
        };
        cx.ext_mut().log.push(ev);
    }
}

fn on_timeout(cx: &mut Cx<L>, s: SocketId) {
    let at = cx.now_ms();
    cx.ext_mut().log.push(Ev::Timeout { at });
    if cx.ext().close_on_timeout {
        cx.close(s, 0, None);
        if let Some(ls) = cx.ext_mut().listener.take() {
            cx.listen_close(ls);
        }
    }
}

fn on_timer(cx: &mut Cx<L>, t: TimerId) {
    let at = cx.now_ms();
    cx.ext_mut().log.push(Ev::Timer { at });
    cx.ext_mut().timer_fires += 1;
    let (fires, limit) = (cx.ext().timer_fires, cx.ext().close_timer_after);
    if limit > 0 && fires >= limit {
        cx.timer_close(t);
    }
}

fn close_listener_timer(cx: &mut Cx<L>, _: TimerId) {
    let at = cx.now_ms();
    cx.ext_mut().log.push(Ev::Timer { at });
    if let Some(ls) = cx.ext_mut().listener.take() {
        cx.listen_close(ls);
    }
}

fn on_poll(cx: &mut Cx<L>, p: PollId, _: Interest, _: bool) {
    cx.ext_mut().log.push(Ev::Poll);
    if cx.ext().pipe_read {
        let mut buf = [0u8; 64];
        if let Some(r) = cx.poll_fd(p) {
            cx.shim().net().pipe_read(r, &mut buf);
        }
    }
}

fn callbacks() -> ContextCallbacks<L> {
    ContextCallbacks {
        on_open: Some(on_open),
        on_data: Some(on_data),
        on_timeout: Some(on_timeout),
        ..ContextCallbacks::default()
    }
}

fn loop_callbacks() -> LoopCallbacks<L> {
    LoopCallbacks {
        wakeup: Some(on_wakeup),
        pre: Some(on_pre),
        post: Some(on_post),
        released: Some(on_released),
    }
}

fn make(net: &SimNet, settings: Settings) -> Loop<L> {
    new_loop::<L>(
        net,
        Caps::default(),
        Rec::default(),
        loop_callbacks(),
        settings,
    )
}

fn step(l: &mut Loop<L>) {
    l.run_once(Some(0)).expect("run_once");
}

/// A context labelled `A` with a listener; returns the context and the port.
fn serve(l: &mut Loop<L>) -> (ContextId, u16) {
    let ctx = l.context_create(b'A', callbacks()).expect("context");
    let ls = l
        .listen(
            ctx,
            ListenTarget::Host {
                host: None,
                port: 0,
            },
            ListenOptions::default(),
            || 0,
        )
        .expect("listen");
    l.ext_mut().listener = Some(ls);
    let port = l.listen_port(ls).expect("port");
    (ctx, port)
}

/// A config whose storage is [`Buffers`]: a `Storage` implemented outside core.
struct B;
impl Config for B {
    type Shim = SimShim;
    type LoopExt = ();
    type ContextExt = ();
    type SocketExt = ();
    type TimerExt = ();
    type PollExt = ();
    type Reason = u32;
    type Storage = Buffers;
    type Layer = usockets_core::NoLayer;
}

/// Core's arenas with receive and event buffers of any size, to check what `Loop::new` accepts.
struct Buffers {
    recv: usize,
    events: usize,
}

impl Storage<B> for Buffers {
    type Sockets = Growing<SocketEntry<B>>;
    type Listeners = Growing<ListenEntry<B>>;
    type Contexts = Growing<ContextEntry<B>>;
    type Timers = Growing<TimerEntry<B>>;
    type Polls = Growing<PollEntry<B>>;
    type Recv = Vec<u8>;
    type Events = Vec<Event>;
    fn into_parts(self) -> Parts<B, Self> {
        Parts {
            sockets: Growing::exactly(4),
            listeners: Growing::exactly(1),
            contexts: Growing::exactly(1),
            timers: Growing::exactly(1),
            polls: Growing::exactly(1),
            recv: vec![0u8; self.recv],
            events: vec![Event::EMPTY; self.events],
        }
    }
}

fn build(net: &SimNet, recv: usize, events: usize) -> Result<Loop<B>, LoopError> {
    Loop::new(
        net.shim(),
        Buffers { recv, events },
        (),
        LoopCallbacks::default(),
        Settings::default(),
    )
}

// ---- construction and ext ------------------------------------------------------------------

#[test]
fn new_rejects_recv_buffer_of_at_most_twice_the_padding() {
    let net = quiet_net();
    let pad = usockets_core::RECV_PADDING;
    assert_eq!(pad, 32);
    for len in [0, 1, 63, 64] {
        assert_eq!(
            build(&net, len, 8).err(),
            Some(LoopError::RecvBufferTooSmall),
            "recv buffer of {len} bytes"
        );
    }
    assert!(
        build(&net, 65, 8).is_ok(),
        "65 bytes leave one byte of data"
    );
}

#[test]
fn new_rejects_empty_event_buffer() {
    let net = quiet_net();
    assert_eq!(build(&net, 4096, 0).err(), Some(LoopError::NoEventSlots));
    assert!(build(&net, 4096, 1).is_ok());
}

#[test]
fn loop_with_one_byte_of_recv_space_still_delivers_all_data() {
    let net = quiet_net();
    let caps = Caps {
        recv: 1,
        events: 1,
        ..Caps::default()
    };
    let mut l = new_loop::<L>(
        &net,
        caps,
        Rec::default(),
        LoopCallbacks::default(),
        Settings::default(),
    );
    let (_, port) = serve(&mut l);
    let p = net.peer_connect(port).expect("connect");
    run_until(&mut l, 10, |l| l.ext().opened.len() == 1);
    net.peer_send(p, b"abc");
    run_until(&mut l, 20, |l| {
        l.ext()
            .log
            .iter()
            .filter(|e| matches!(e, Ev::Data { .. }))
            .count()
            == 3
    });
}

#[test]
fn loop_ext_is_readable_and_writable_from_loop_and_callbacks() {
    let net = quiet_net();
    let mut l = new_loop::<L>(
        &net,
        Caps::default(),
        Rec {
            timer_fires: 41,
            ..Rec::default()
        },
        loop_callbacks(),
        Settings::default(),
    );
    assert_eq!(l.ext().timer_fires, 41, "ext given to Loop::new");
    l.ext_mut().timer_fires += 1;
    assert_eq!(l.ext().timer_fires, 42);
    let t = l.timer_create(true, ()).expect("timer");
    l.timer_set(t, on_timer, 1, 0);
    l.run_once(None).expect("run");
    assert_eq!(
        l.ext().timer_fires,
        43,
        "the callback saw and changed the same ext"
    );
}

// ---- run and loop lifetime -----------------------------------------------------------------

#[test]
fn run_returns_once_timer_closes_last_listener() {
    let net = quiet_net();
    let mut l = make(&net, Settings::default());
    serve(&mut l);
    let t0 = net.now_ms();
    let t = l.timer_create(true, ()).expect("timer");
    l.timer_set(t, close_listener_timer, 30, 0);
    assert!(l.is_alive());
    l.run().expect("run");
    assert_eq!(net.now_ms(), t0 + 30, "run waited for the timer, no longer");
    assert_eq!(l.ext().log, vec![Ev::Timer { at: t0 + 30 }]);
    assert!(!l.is_alive());
    assert_eq!(l.slots_in_use(), [0, 0, 1, 1, 0], "listen slot released");
}

#[test]
fn run_with_only_fallthrough_timers_returns_immediately() {
    let net = quiet_net();
    let mut l = make(&net, Settings::default());
    let t0 = net.now_ms();
    let t = l.timer_create(true, ()).expect("timer");
    l.timer_set(t, on_timer, 10, 10);
    assert!(!l.is_alive());
    l.run().expect("run");
    assert_eq!(l.iteration_number(), 0, "no iteration ran");
    assert_eq!(l.ext().timer_fires, 0);
    assert_eq!(net.now_ms(), t0);
}

#[test]
fn run_keeps_going_while_non_fallthrough_timer_lives() {
    let net = quiet_net();
    let mut l = make(&net, Settings::default());
    l.ext_mut().close_timer_after = 3;
    let t0 = net.now_ms();
    let t = l.timer_create(false, ()).expect("timer");
    l.timer_set(t, on_timer, 10, 10);
    assert!(
        l.is_alive(),
        "an unarmed or armed non-fallthrough timer keeps the loop alive"
    );
    l.run().expect("run");
    assert_eq!(l.ext().timer_fires, 3);
    assert_eq!(net.now_ms(), t0 + 30);
    assert_eq!(l.slots_in_use()[3], 0);
}

#[test]
fn run_returns_once_last_socket_closes() {
    let net = quiet_net();
    let mut l = make(&net, Settings::default());
    l.ext_mut().close_listener_on_open = true;
    l.ext_mut().close_on_data = true;
    let (_, port) = serve(&mut l);
    let p = net.peer_connect(port).expect("connect");
    net.peer_send(p, b"bye");
    l.run().expect("run");
    let opened = l.ext().opened.clone();
    assert_eq!(opened.len(), 1);
    let s = opened[0];
    assert!(l
        .ext()
        .log
        .iter()
        .any(|e| matches!(e, Ev::Data { s: x, .. } if *x == s)));
    assert!(!l.is_alive());
    assert_eq!(
        l.slots_in_use()[..2],
        [0, 0],
        "socket and listener released"
    );
    assert!(net.peer_got_fin(p), "the socket was really closed");
}

// ---- pre / post / iteration number ---------------------------------------------------------

#[test]
fn pre_runs_before_wait_and_post_after_dispatch_and_timers() {
    let net = quiet_net();
    let mut l = make(&net, Settings::default());
    l.ext_mut().trace = true;
    let (r, w) = net.user_pipe();
    l.ext_mut().pipe_read = true;
    let p = l.poll_create(true, ()).expect("poll");
    l.poll_init(p, r).expect("init");
    l.poll_set_callback(p, on_poll).expect("cb");
    l.poll_start(p, Interest::READABLE).expect("start");
    let t = l.timer_create(true, ()).expect("timer");
    l.timer_set(t, on_timer, 10, 0);
    let w0 = net.syscalls().wait;

    step(&mut l); // nothing ready
    net.advance(10);
    net.pipe_write(&w, b"x");
    step(&mut l); // poll ready and timer due
    step(&mut l); // nothing
    let t0 = net.now_ms();
    assert_eq!(
        l.ext().log,
        vec![
            Ev::Pre { iter: 1, waits: w0 },
            Ev::Post {
                iter: 1,
                waits: w0 + 1
            },
            Ev::Pre {
                iter: 2,
                waits: w0 + 1
            },
            Ev::Poll,
            Ev::Timer { at: t0 },
            Ev::Post {
                iter: 2,
                waits: w0 + 2
            },
            Ev::Pre {
                iter: 3,
                waits: w0 + 2
            },
            Ev::Post {
                iter: 3,
                waits: w0 + 3
            },
        ]
    );
}

#[test]
fn iteration_number_increments_once_per_iteration() {
    let net = quiet_net();
    let mut l = make(&net, Settings::default());
    l.ext_mut().trace = true;
    assert_eq!(l.iteration_number(), 0);
    for i in 1..=5 {
        step(&mut l);
        assert_eq!(l.iteration_number(), i);
    }
    let pres: Vec<u64> = l
        .ext()
        .log
        .iter()
        .filter_map(|e| match e {
            Ev::Pre { iter, .. } => Some(*iter),
            _ => None,
        })
        .collect();
    let posts: Vec<u64> = l
        .ext()
        .log
        .iter()
        .filter_map(|e| match e {
            Ev::Post { iter, .. } => Some(*iter),
            _ => None,
        })
        .collect();
    assert_eq!(
        pres,
        vec![1, 2, 3, 4, 5],
        "pre sees the already-incremented counter"
    );
    assert_eq!(posts, vec![1, 2, 3, 4, 5]);
}

// ---- integrate, next_deadline, run_once timeout ---------------------------------------------

/// A loop with one accepted socket, driven with `run_once` only (never `run`).
fn accepted(settings: Settings) -> (SimNet, Loop<L>, SocketId) {
    let net = quiet_net();
    let mut l = make(&net, settings);
    let (_, port) = serve(&mut l);
    let _p = net.peer_connect(port).expect("connect");
    run_until(&mut l, 10, |l| !l.ext().opened.is_empty());
    let s = l.ext().opened[0];
    (net, l, s)
}

#[test]
fn without_integrate_socket_timeouts_never_fire_under_run_once() {
    let settings = Settings::default().with_sweep_period_ms(100);
    let (net, mut l, s) = accepted(settings);
    l.timeout(s, 1);
    assert_eq!(l.next_deadline(), None, "no sweep armed, no timers");
    net.advance(10_000);
    for _ in 0..5 {
        l.run_once(Some(1000)).expect("run");
    }
    assert!(
        !l.ext().log.iter().any(|e| matches!(e, Ev::Timeout { .. })),
        "the sweep is not armed before integrate"
    );
}

#[test]
fn integrate_arms_the_sweep_for_run_once() {
    let settings = Settings::default().with_sweep_period_ms(100);
    let (net, mut l, s) = accepted(settings);
    let set_at = net.now_ms();
    l.timeout(s, 1);
    l.integrate();
    let first = l.next_deadline().expect("sweep armed");
    assert!(first > net.now_ms() && first <= net.now_ms() + 100);
    let mut fired = None;
    for _ in 0..30 {
        l.run_once(None).expect("run");
        fired = l.ext().log.iter().find_map(|e| match e {
            Ev::Timeout { at } => Some(*at),
            _ => None,
        });
        if fired.is_some() {
            break;
        }
    }
    let at = fired.expect("timeout fired once the sweep was armed");
    assert!(at >= set_at + 1000, "never early: {at} < {}", set_at + 1000);
    assert!(at <= set_at + 1100, "at most one sweep period late");
}

#[test]
fn run_arms_the_sweep_itself() {
    let settings = Settings::default().with_sweep_period_ms(100);
    let (net, mut l, s) = accepted(settings);
    assert_eq!(l.next_deadline(), None, "not integrated yet");
    let set_at = net.now_ms();
    l.timeout(s, 2);
    l.ext_mut().close_on_timeout = true;
    l.run().expect("run");
    let at = l
        .ext()
        .log
        .iter()
        .find_map(|e| match e {
            Ev::Timeout { at } => Some(*at),
            _ => None,
        })
        .expect("the socket timed out under run()");
    assert!(at >= set_at + 2000 && at <= set_at + 2100);
    assert!(!l.is_alive());
}

#[test]
fn integrate_is_idempotent() {
    let net = quiet_net();
    let mut l = make(&net, Settings::default().with_sweep_period_ms(100));
    net.advance(30);
    l.integrate();
    let d = l.next_deadline().expect("armed");
    assert_eq!(
        d,
        net.now_ms() + 70,
        "next tick on the grid from loop creation"
    );
    l.integrate();
    assert_eq!(l.next_deadline(), Some(d));
    net.advance(250);
    l.integrate();
    assert_eq!(
        l.next_deadline(),
        Some(d),
        "a second integrate does not re-arm an armed sweep"
    );
    step(&mut l);
    let next = l.next_deadline().expect("still armed");
    assert!(next > net.now_ms() && next <= net.now_ms() + 100);
}

#[test]
fn next_deadline_is_earliest_timer_or_sweep_and_run_once_waits_at_most_timeout() {
    let net = quiet_net();
    let t0 = net.now_ms();
    let mut l = make(&net, Settings::default().with_sweep_period_ms(300));
    assert_eq!(l.next_deadline(), None);
    let a = l.timer_create(true, ()).expect("a");
    let b = l.timer_create(true, ()).expect("b");
    l.timer_set(a, on_timer, 500, 0);
    assert_eq!(l.next_deadline(), Some(t0 + 500));
    l.timer_set(b, on_timer, 200, 0);
    assert_eq!(l.next_deadline(), Some(t0 + 200));

    l.run_once(Some(50)).expect("run");
    assert_eq!(net.now_ms(), t0 + 50, "waited exactly the given timeout");
    assert!(l.ext().log.is_empty(), "nothing due yet");

    l.run_once(Some(1000)).expect("run");
    assert_eq!(net.now_ms(), t0 + 200, "woke for the earlier timer");
    assert_eq!(l.ext().log, vec![Ev::Timer { at: t0 + 200 }]);
    assert_eq!(l.next_deadline(), Some(t0 + 500));

    l.integrate();
    assert_eq!(
        l.next_deadline(),
        Some(t0 + 300),
        "the sweep is earlier now"
    );
    l.run_once(None).expect("run");
    assert_eq!(net.now_ms(), t0 + 300);
    assert_eq!(l.next_deadline(), Some(t0 + 500));
    l.run_once(None).expect("run");
    assert_eq!(net.now_ms(), t0 + 500);
    assert_eq!(
        l.ext().log,
        vec![Ev::Timer { at: t0 + 200 }, Ev::Timer { at: t0 + 500 }]
    );
}

// ---- wakeup -----------------------------------------------------------------------------------

#[test]
fn wake_from_another_thread_runs_wakeup_cb_on_loop_thread_next_iteration() {
    let net = quiet_net();
    let mut l = make(&net, Settings::default());
    let t0 = net.now_ms();
    let t = l.timer_create(false, ()).expect("timer");
    l.timer_set(t, on_timer, 1000, 0);
    let w = l.waker();
    std::thread::spawn(move || w.wake())
        .join()
        .expect("waker thread");
    assert_eq!(l.ext().wakeups, 0, "nothing runs before the loop iterates");
    l.run_once(None).expect("run");
    assert_eq!(l.ext().wakeups, 1);
    assert_eq!(l.ext().wake_thread, Some(std::thread::current().id()));
    assert_eq!(
        net.now_ms(),
        t0,
        "the wake-up ended the wait before the timer"
    );
    assert_eq!(l.ext().timer_fires, 0);
    l.run_once(None).expect("run");
    assert_eq!(l.ext().wakeups, 1, "one wake, one callback");
    assert_eq!(net.now_ms(), t0 + 1000);
    assert_eq!(l.ext().timer_fires, 1);
}

#[test]
fn waker_used_after_loop_is_dropped_is_harmless() {
    let net = quiet_net();
    let l = make(&net, Settings::default());
    let w = l.waker();
    drop(l);
    let w2 = w.clone();
    std::thread::spawn(move || w2.wake())
        .join()
        .expect("waker thread");
    w.wake();
    let mut l2 = make(&net, Settings::default());
    step(&mut l2);
    step(&mut l2);
    assert_eq!(l2.ext().wakeups, 0, "an old waker never wakes another loop");
    drop(net);
    w.wake();
}

#[test]
fn cx_wakeup_from_loop_thread_runs_wakeup_cb() {
    let net = quiet_net();
    let mut l = make(&net, Settings::default());
    l.wakeup();
    step(&mut l);
    assert_eq!(l.ext().wakeups, 1);
    step(&mut l);
    assert_eq!(l.ext().wakeups, 1);
}

#[test]
fn wakeup_from_pre_cb_is_served_in_the_same_iteration() {
    let net = quiet_net();
    let mut l = make(&net, Settings::default());
    l.ext_mut().trace = true;
    l.ext_mut().wake_in_pre = true;
    step(&mut l);
    let w0 = net.syscalls().wait - 1;
    assert_eq!(
        l.ext().log,
        vec![
            Ev::Pre { iter: 1, waits: w0 },
            Ev::Wake,
            Ev::Post {
                iter: 1,
                waits: w0 + 1
            }
        ]
    );
}

// ---- end-of-iteration release ----------------------------------------------------------------

#[test]
fn closed_sockets_stay_readable_until_released_before_post_cb() {
    let net = quiet_net();
    let mut l = make(&net, Settings::default());
    let (_, port) = serve(&mut l);
    let peers: Vec<PeerId> = (0..3)
        .map(|_| net.peer_connect(port).expect("connect"))
        .collect();
    run_until(&mut l, 10, |l| l.ext().opened.len() == 3);
    let socks = l.ext().opened.clone();
    let exts: Vec<u32> = socks.iter().map(|s| *l.socket_ext(*s).unwrap()).collect();
    assert_eq!(exts, vec![100, 101, 102]);
    for p in &peers {
        net.peer_send(*p, b"close me");
    }
    l.ext_mut().close_on_data = true;
    l.ext_mut().watch = socks.clone();
    l.ext_mut().log.clear();
    step(&mut l);

    let log = l.ext().log.clone();
    for (s, ext) in socks.iter().zip(&exts) {
        let closed = log
            .iter()
            .find_map(|e| match e {
                Ev::Closed {
                    s: x,
                    is_closed,
                    ext,
                    slots,
                } if x == s => Some((*is_closed, *ext, *slots)),
                _ => None,
            })
            .expect("closed during dispatch");
        assert_eq!(closed.0, Some(true), "closed socket reads as closed");
        assert_eq!(closed.1, Some(*ext), "its ext is intact");
        assert_eq!(closed.2, 3, "its slot is still held during the iteration");
        let released: Vec<usize> = log
            .iter()
            .enumerate()
            .filter(|(_, e)| matches!(e, Ev::Released { s: x, .. } if x == s))
            .map(|(i, _)| i)
            .collect();
        assert_eq!(released.len(), 1, "released exactly once");
        assert_eq!(
            log[released[0]],
            Ev::Released { s: *s, ext: *ext },
            "released with its own ext"
        );
        let post = log
            .iter()
            .position(|e| matches!(e, Ev::PostSees { s: x, .. } if x == s))
            .expect("post ran");
        assert!(released[0] < post, "released before post_cb");
        assert_eq!(
            log[post],
            Ev::PostSees {
                s: *s,
                is_closed: None
            },
            "post_cb sees the handle gone"
        );
    }
    assert_eq!(l.socket_slots_in_use(), 0);
    l.ext_mut().log.clear();
    l.ext_mut().watch.clear();
    step(&mut l);
    assert!(
        !l.ext().log.iter().any(|e| matches!(e, Ev::Released { .. })),
        "nothing released twice"
    );
}

// ---- low-priority queue ----------------------------------------------------------------------

fn on_data_b(cx: &mut Cx<L>, s: SocketId, _: &mut RecvBuf<'_>) {
    let iter = cx.iteration_number();
    cx.ext_mut().log.push(Ev::Data { s, ctx: b'B', iter });
}

/// `n` low-priority sockets, accepted, each with one message pending.
fn lp_setup(budget: u32, n: usize) -> (SimNet, Loop<L>, Vec<SocketId>) {
    let net = quiet_net();
    let mut l = make(&net, Settings::default().with_low_priority_budget(budget));
    l.ext_mut().low_priority = true;
    let (_, port) = serve(&mut l);
    let peers: Vec<PeerId> = (0..n)
        .map(|_| net.peer_connect(port).expect("connect"))
        .collect();
    run_until(&mut l, 10, |l| l.ext().opened.len() == n);
    let socks = l.ext().opened.clone();
    for (i, p) in peers.iter().enumerate() {
        net.peer_send(*p, format!("message {i}").as_bytes());
    }
    l.ext_mut().log.clear();
    (net, l, socks)
}

/// Runs one iteration and returns the (socket, context label) of every `on_data` in it.
fn reads(l: &mut Loop<L>) -> Vec<(SocketId, u8)> {
    l.ext_mut().log.clear();
    step(l);
    l.ext()
        .log
        .iter()
        .filter_map(|e| match e {
            Ev::Data { s, ctx, .. } => Some((*s, *ctx)),
            _ => None,
        })
        .collect()
}

fn queued(l: &Loop<L>, socks: &[SocketId]) -> Vec<SocketId> {
    socks
        .iter()
        .copied()
        .filter(|s| l.is_low_priority_queued(*s) == Some(true))
        .collect()
}

#[test]
fn low_priority_budget_limits_reads_per_iteration_and_queue_drains() {
    let (_net, mut l, socks) = lp_setup(2, 5);
    let first = reads(&mut l);
    assert_eq!(first.len(), 2, "budget 2: only two low-priority reads");
    assert_eq!(l.low_priority_queue_len(), 3);
    let q = queued(&l, &socks);
    assert_eq!(q.len(), 3);
    assert!(first.iter().all(|(s, _)| !q.contains(s)));

    let second = reads(&mut l);
    assert_eq!(second.len(), 2, "two queued sockets served next iteration");
    assert_eq!(l.low_priority_queue_len(), 1);
    let third = reads(&mut l);
    assert_eq!(third.len(), 1);
    assert_eq!(l.low_priority_queue_len(), 0);
    assert!(reads(&mut l).is_empty());

    let mut served: Vec<SocketId> = second.iter().chain(&third).map(|(s, _)| *s).collect();
    served.sort();
    let mut q = q;
    q.sort();
    assert_eq!(
        served, q,
        "exactly the queued sockets were served, once each"
    );
    let mut all: Vec<SocketId> = first
        .iter()
        .chain(&second)
        .chain(&third)
        .map(|(s, _)| *s)
        .collect();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 5, "every socket read exactly once");
}

#[test]
fn low_priority_socket_readable_again_is_not_queued_twice() {
    let (_net, mut l, socks) = lp_setup(2, 5);
    let first = reads(&mut l);
    assert_eq!(first.len(), 2);
    let q = queued(&l, &socks);
    assert_eq!(q.len(), 3);
    // Give the queued sockets readable interest back: they are reported readable again while
    // still queued and the budget is spent.
    for s in &q {
        l.resume(*s);
    }
    let second = reads(&mut l);
    assert_eq!(second.len(), 2, "budget still caps reads");
    assert_eq!(
        l.low_priority_queue_len(),
        1,
        "the third queued socket stays queued once, not twice"
    );
    assert_eq!(queued(&l, &socks).len(), 1);
    let third = reads(&mut l);
    assert_eq!(third.len(), 1);
    assert_eq!(l.low_priority_queue_len(), 0);
    assert!(reads(&mut l).is_empty(), "no socket served a second time");
    assert!(reads(&mut l).is_empty());
}

#[test]
fn closing_a_queued_socket_removes_it_from_the_queue() {
    let (_net, mut l, socks) = lp_setup(2, 5);
    reads(&mut l);
    let q = queued(&l, &socks);
    assert_eq!(q.len(), 3);
    let victim = q[1];
    l.close(victim, 0, None);
    assert_eq!(l.low_priority_queue_len(), 2);
    assert_ne!(l.is_low_priority_queued(victim), Some(true));
    let second = reads(&mut l);
    assert_eq!(
        second.len(),
        2,
        "the two remaining queued sockets are served"
    );
    assert!(second.iter().all(|(s, _)| *s != victim));
    assert_eq!(l.low_priority_queue_len(), 0);
    assert_eq!(l.is_low_priority_queued(victim), None, "released");
    assert!(reads(&mut l).is_empty());
}

#[test]
fn adopting_a_queued_socket_keeps_it_queued_and_delivers_to_new_context() {
    let (_net, mut l, socks) = lp_setup(2, 5);
    let b = l
        .context_create(
            b'B',
            ContextCallbacks {
                on_data: Some(on_data_b),
                ..ContextCallbacks::default()
            },
        )
        .expect("context B");
    let first = reads(&mut l);
    assert!(first.iter().all(|(_, c)| *c == b'A'));
    let q = queued(&l, &socks);
    let moved = q[0];
    assert_eq!(l.adopt(moved, b), Some(moved));
    assert_eq!(l.socket_context(moved), Some(b));
    assert_eq!(l.is_low_priority_queued(moved), Some(true));
    assert_eq!(l.low_priority_queue_len(), 3);
    let mut later = Vec::new();
    for _ in 0..4 {
        later.extend(reads(&mut l));
    }
    assert_eq!(l.low_priority_queue_len(), 0);
    let moved_reads: Vec<u8> = later
        .iter()
        .filter(|(s, _)| *s == moved)
        .map(|(_, c)| *c)
        .collect();
    assert_eq!(
        moved_reads,
        vec![b'B'],
        "delivered once, to the new context"
    );
    assert_eq!(later.len(), 3);
}

// ---- accept cap ------------------------------------------------------------------------------

#[test]
fn max_accepts_per_event_caps_accepts_per_iteration() {
    let net = quiet_net();
    let mut l = make(&net, Settings::default().with_max_accepts_per_event(3));
    let (_, port) = serve(&mut l);
    for _ in 0..10 {
        net.peer_connect(port).expect("connect");
    }
    let mut per_iteration = Vec::new();
    let a0 = net.syscalls().accept;
    step(&mut l);
    assert_eq!(net.syscalls().accept - a0, 3, "no accept beyond the cap");
    per_iteration.push(l.ext().opened.len());
    for _ in 0..4 {
        step(&mut l);
        per_iteration.push(l.ext().opened.len());
    }
    assert_eq!(per_iteration, vec![3, 6, 9, 10, 10]);
}
