//! The recording harness every check runs on: one [`Config`] generic over the shim under test,
//! callbacks that log what core did (and obey a few per-context knobs), a loop builder, a
//! two-ended fixture and bounded drivers that never hang.

use std::collections::{HashMap, HashSet};
use std::fmt::Debug;
use std::marker::PhantomData;
use std::time::{Duration, Instant};

use usockets_core::{
    Accepted, Capacity, CloseCause, Config, ConnectTarget, ContextCallbacks, ContextId, Cx,
    GrowingStorage, Interest, ListenId, ListenOptions, ListenTarget, Loop, LoopCallbacks, OsError,
    PollId, RecvBuf, Settings, SocketId, TimerId, RECV_PADDING,
};

pub use crate::Fd;
use crate::ShimUnderTest;

/// The loop every check builds.
pub type L<S> = Loop<Conf<S>>;
/// What every callback receives.
pub type X<S> = Cx<Conf<S>>;

/// Context ext tag of the server (listening) context.
pub const SERVER: u32 = 1;
/// Context ext tag of the client (connecting) context.
pub const CLIENT: u32 = 2;
/// Context ext tag of an adoption target.
pub const CHILD: u32 = 3;
/// Context ext tag of a second adoption target.
pub const OTHER: u32 = 4;
/// The ext every accepted socket starts with.
pub const ACCEPTED_EXT: u64 = 1000;
/// The ext the checks give their client sockets.
pub const CLIENT_EXT: u64 = 2000;
/// The IPv4 loopback literal every TCP check uses.
pub const LOCAL4: &str = "127.0.0.1";
/// The IPv6 loopback literal.
pub const LOCAL6: &str = "::1";
/// Poll ext tag: the read end of a pipe (its callback drains it).
pub const READ_END: u32 = 1;
/// Poll ext tag: the write end of a pipe (its callback stops it after one report).
pub const WRITE_END: u32 = 2;

/// The conformance loop's [`Config`] over shim `S`: core's storage with exactly the
/// capacities a check asks for ([`Caps`]), a recording
/// [`World`] as loop ext.
pub struct Conf<S>(PhantomData<fn() -> S>);

impl<S: ShimUnderTest> Config for Conf<S> {
    type Shim = S::Shim;
    type LoopExt = World<Fd<S>>;
    type ContextExt = Ctx;
    type SocketExt = u64;
    type TimerExt = u32;
    type PollExt = u32;
    type Reason = u32;
    type Storage = GrowingStorage<Self>;
    type Layer = usockets_core::NoLayer;
}

/// One observed callback.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ev {
    /// `on_pre_open` with the peer's IP bytes.
    PreOpen {
        /// Raw IP bytes given.
        ip: Vec<u8>,
    },
    /// `on_open`.
    Open {
        /// The socket.
        s: SocketId,
        /// `is_client`.
        client: bool,
        /// The IP bytes given.
        ip: Vec<u8>,
        /// Tag of the context whose callback ran.
        ctx: u32,
    },
    /// `on_data` (the bytes go to [`World::rx`]).
    Data {
        /// The socket.
        s: SocketId,
        /// How many bytes.
        len: usize,
        /// Tag of the context whose callback ran.
        ctx: u32,
    },
    /// `on_writable`.
    Writable(SocketId),
    /// `on_end`.
    End {
        /// The socket.
        s: SocketId,
        /// Tag of the context whose callback ran.
        ctx: u32,
    },
    /// `on_close`.
    Close {
        /// The socket.
        s: SocketId,
        /// Why it closed.
        cause: CloseCause<u32>,
        /// Tag of the context whose callback ran.
        ctx: u32,
    },
    /// `on_connect_error`.
    ConnectError {
        /// The socket.
        s: SocketId,
        /// The error.
        err: OsError,
    },
    /// `on_timeout`, with the shim clock when it ran.
    Timeout {
        /// The socket.
        s: SocketId,
        /// Shim clock (ms).
        at: u64,
    },
    /// `on_long_timeout`, with the shim clock when it ran.
    LongTimeout {
        /// The socket.
        s: SocketId,
        /// Shim clock (ms).
        at: u64,
    },
    /// The loop's `released` callback.
    Released {
        /// The socket.
        s: SocketId,
        /// Its ext.
        ext: u64,
    },
    /// A timer fired, with the shim clock when it ran.
    Timer {
        /// The timer.
        t: TimerId,
        /// Shim clock (ms).
        at: u64,
    },
    /// The loop's `wakeup` callback ran (on the loop thread, or not).
    Wakeup {
        /// Whether it ran on the thread that built the loop.
        on_loop_thread: bool,
    },
    /// A poll callback ran.
    Poll {
        /// The poll.
        p: PollId,
        /// Ready events.
        ready: Interest,
        /// Error or hang-up pending.
        error: bool,
    },
}

/// Per-context behaviour knobs (the context ext).
#[derive(Clone, Debug, Default)]
pub struct Ctx {
    /// Tag logged with each event ([`SERVER`], [`CLIENT`], ...).
    pub tag: u32,
    /// Write every received byte back (with backpressure).
    pub echo: bool,
    /// Close the socket (code 0) on `on_end`.
    pub close_on_end: bool,
    /// On `on_end`: send these bytes, then shut down once they are all written.
    pub reply_on_end: Option<Vec<u8>>,
    /// On `on_open`: send these bytes.
    pub send_on_open: Option<Vec<u8>>,
    /// On `on_open`: shut down once `send_on_open` is written.
    pub shutdown_on_open: bool,
    /// Close the socket once this many bytes were received on it.
    pub close_after_rx: Option<usize>,
}

impl Ctx {
    /// A context with no behaviour but recording.
    pub fn tag(tag: u32) -> Ctx {
        Ctx {
            tag,
            ..Ctx::default()
        }
    }
}

/// Guards [`Loop::run`], which cannot be bounded from outside: the `pre` callback panics once
/// the deadline or the iteration budget is exceeded.
#[derive(Clone, Copy, Debug)]
pub struct RunGuard {
    /// Wall-clock deadline.
    pub deadline: Instant,
    /// Iterations left.
    pub iterations: u64,
}

/// The loop ext: the log and the knobs the callbacks obey.
pub struct World<F> {
    /// Every callback, in order.
    pub log: Vec<Ev>,
    /// Bytes received per socket, in order.
    pub rx: HashMap<SocketId, Vec<u8>>,
    /// Bytes waiting to be written per socket (after a short write).
    pub tx: HashMap<SocketId, Vec<u8>>,
    /// Sockets to shut down once their `tx` is empty.
    pub shutdown_after_tx: HashSet<SocketId>,
    /// Writes that took fewer bytes than offered.
    pub short_writes: usize,
    /// Listener to close inside the next `on_open` of an accepted socket.
    pub listen_close_on_open: Option<ListenId>,
    /// Sockets every `on_close` closes too (each must still be closed once).
    pub close_on_close: Vec<SocketId>,
    /// `is_closed` of each socket as seen inside its own `on_close`.
    pub closed_in_on_close: Vec<(SocketId, Option<bool>)>,
    /// Make `on_pre_open` take the descriptor.
    pub take_on_pre_open: bool,
    /// Descriptors taken by `on_pre_open`, with their IP bytes.
    pub taken: Vec<(F, Vec<u8>)>,
    /// Bytes the read-end poll callback drained from the pipe.
    pub pipe_rx: Vec<u8>,
    /// `pre` and `post` callback runs.
    pub pre_runs: u64,
    /// `post` callback runs.
    pub post_runs: u64,
    /// Bounds a [`Loop::run`] call.
    pub guard: Option<RunGuard>,
    /// The thread that built the loop.
    pub loop_thread: std::thread::ThreadId,
}

impl<F> World<F> {
    fn new() -> Self {
        World {
            log: Vec::new(),
            rx: HashMap::new(),
            tx: HashMap::new(),
            shutdown_after_tx: HashSet::new(),
            short_writes: 0,
            listen_close_on_open: None,
            close_on_close: Vec::new(),
            closed_in_on_close: Vec::new(),
            take_on_pre_open: false,
            taken: Vec::new(),
            pipe_rx: Vec::new(),
            pre_runs: 0,
            post_runs: 0,
            guard: None,
            loop_thread: std::thread::current().id(),
        }
    }
}

// ---- callbacks ----------------------------------------------------------------------------

fn ctx_of<S: ShimUnderTest>(cx: &X<S>, s: SocketId) -> Ctx {
    cx.socket_context(s)
        .and_then(|c| cx.context_ext(c))
        .cloned()
        .unwrap_or_default()
}

/// Writes `data` after whatever is already queued for `s`; a short write queues the rest for
/// `on_writable`.
pub fn send<S: ShimUnderTest>(cx: &mut X<S>, s: SocketId, data: &[u8]) {
    if data.is_empty() {
        return;
    }
    if let Some(q) = cx.ext_mut().tx.get_mut(&s) {
        q.extend_from_slice(data);
        return;
    }
    let n = cx.write(s, data, false);
    if n < data.len() {
        let w = cx.ext_mut();
        w.short_writes += 1;
        w.tx.insert(s, data[n..].to_vec());
    }
}

/// Shuts `s` down now if nothing is queued, or once its queue is written.
pub fn shutdown_when_sent<S: ShimUnderTest>(cx: &mut X<S>, s: SocketId) {
    if cx.ext().tx.contains_key(&s) {
        cx.ext_mut().shutdown_after_tx.insert(s);
    } else {
        cx.shutdown(s);
    }
}

/// Writes what is queued for `s` (from `on_writable`).
fn pump<S: ShimUnderTest>(cx: &mut X<S>, s: SocketId) {
    let Some(mut q) = cx.ext_mut().tx.remove(&s) else {
        return;
    };
    let n = cx.write(s, &q, false);
    if n < q.len() {
        cx.ext_mut().short_writes += 1;
        q.drain(..n);
        cx.ext_mut().tx.insert(s, q);
    } else if cx.ext_mut().shutdown_after_tx.remove(&s) {
        cx.shutdown(s);
    }
}

fn on_pre_open<S: ShimUnderTest>(
    cx: &mut X<S>,
    _c: ContextId,
    accepted: &mut Accepted<Fd<S>>,
    ip: &[u8],
) {
    let w = cx.ext_mut();
    w.log.push(Ev::PreOpen { ip: ip.to_vec() });
    if w.take_on_pre_open {
        if let Some(fd) = accepted.take() {
            w.taken.push((fd, ip.to_vec()));
        }
    }
}

fn on_open<S: ShimUnderTest>(cx: &mut X<S>, s: SocketId, client: bool, ip: &[u8]) {
    let ctx = ctx_of::<S>(cx, s);
    cx.ext_mut().log.push(Ev::Open {
        s,
        client,
        ip: ip.to_vec(),
        ctx: ctx.tag,
    });
    if !client {
        if let Some(l) = cx.ext_mut().listen_close_on_open.take() {
            cx.listen_close(l);
        }
    }
    if let Some(data) = &ctx.send_on_open {
        send::<S>(cx, s, data);
    }
    if ctx.shutdown_on_open {
        shutdown_when_sent::<S>(cx, s);
    }
}

fn on_data<S: ShimUnderTest>(cx: &mut X<S>, s: SocketId, data: &mut RecvBuf<'_>) {
    assert!(!data.is_empty(), "on_data must never get an empty buffer");
    let len = data.len();
    assert_eq!(
        data.padded().len(),
        len + 2 * RECV_PADDING,
        "on_data's buffer has RECV_PADDING writable bytes on each side"
    );
    let ctx = ctx_of::<S>(cx, s);
    let w = cx.ext_mut();
    w.log.push(Ev::Data {
        s,
        len: data.len(),
        ctx: ctx.tag,
    });
    let rx = w.rx.entry(s).or_default();
    rx.extend_from_slice(data);
    let total = rx.len();
    if ctx.echo {
        send::<S>(cx, s, data);
    }
    if ctx.close_after_rx.is_some_and(|n| total >= n) {
        cx.close(s, 0, None);
    }
}

fn on_writable<S: ShimUnderTest>(cx: &mut X<S>, s: SocketId) {
    cx.ext_mut().log.push(Ev::Writable(s));
    pump::<S>(cx, s);
}

fn on_end<S: ShimUnderTest>(cx: &mut X<S>, s: SocketId) {
    let ctx = ctx_of::<S>(cx, s);
    cx.ext_mut().log.push(Ev::End { s, ctx: ctx.tag });
    if let Some(reply) = &ctx.reply_on_end {
        send::<S>(cx, s, reply);
        shutdown_when_sent::<S>(cx, s);
    }
    if ctx.close_on_end {
        cx.close(s, 0, None);
    }
}

fn on_close<S: ShimUnderTest>(cx: &mut X<S>, s: SocketId, cause: CloseCause<u32>) {
    let ctx = ctx_of::<S>(cx, s);
    let closed = cx.is_closed(s);
    let w = cx.ext_mut();
    w.log.push(Ev::Close {
        s,
        cause,
        ctx: ctx.tag,
    });
    w.closed_in_on_close.push((s, closed));
    w.tx.remove(&s);
    for other in cx.ext().close_on_close.clone() {
        cx.close(other, 0, None);
    }
}

fn on_connect_error<S: ShimUnderTest>(cx: &mut X<S>, s: SocketId, err: OsError) {
    cx.ext_mut().log.push(Ev::ConnectError { s, err });
}

fn on_timeout<S: ShimUnderTest>(cx: &mut X<S>, s: SocketId) {
    let at = cx.clock_ms();
    cx.ext_mut().log.push(Ev::Timeout { s, at });
}

fn on_long_timeout<S: ShimUnderTest>(cx: &mut X<S>, s: SocketId) {
    let at = cx.clock_ms();
    cx.ext_mut().log.push(Ev::LongTimeout { s, at });
}

fn released<S: ShimUnderTest>(cx: &mut X<S>, s: SocketId, ext: u64) {
    cx.ext_mut().log.push(Ev::Released { s, ext });
}

fn wakeup<S: ShimUnderTest>(cx: &mut X<S>) {
    let on_loop_thread = std::thread::current().id() == cx.ext().loop_thread;
    cx.ext_mut().log.push(Ev::Wakeup { on_loop_thread });
}

fn pre<S: ShimUnderTest>(cx: &mut X<S>) {
    let w = cx.ext_mut();
    w.pre_runs += 1;
    if let Some(g) = &mut w.guard {
        assert!(
            Instant::now() < g.deadline && g.iterations > 0,
            "Loop::run did not return within its bound; last events: {:?}",
            tail(&w.log)
        );
        g.iterations -= 1;
    }
}

fn post<S: ShimUnderTest>(cx: &mut X<S>) {
    cx.ext_mut().post_runs += 1;
}

/// A timer callback that logs.
pub fn timer_log<S: ShimUnderTest>(cx: &mut X<S>, t: TimerId) {
    let at = cx.clock_ms();
    cx.ext_mut().log.push(Ev::Timer { t, at });
}

/// A timer callback that logs, counts in the timer's ext and closes the timer itself once the
/// count reaches 3.
pub fn timer_close_at_3<S: ShimUnderTest>(cx: &mut X<S>, t: TimerId) {
    timer_log::<S>(cx, t);
    let n = cx.timer_ext_mut(t).map(|n| {
        *n += 1;
        *n
    });
    if n == Some(3) {
        assert!(
            cx.timer_close(t).is_some(),
            "timer_close inside its own callback"
        );
    }
}

/// The poll callback: logs; a [`READ_END`] poll drains the pipe into [`World::pipe_rx`]; a
/// [`WRITE_END`] poll stops itself.
pub fn poll_cb<S: ShimUnderTest>(cx: &mut X<S>, p: PollId, ready: Interest, error: bool) {
    cx.ext_mut().log.push(Ev::Poll { p, ready, error });
    let (Some(&tag), Some(fd)) = (cx.poll_ext(p), cx.poll_fd(p)) else {
        return;
    };
    if tag == READ_END && ready.is_readable() {
        let mut buf = [0u8; 256];
        let n = S::read_pipe(cx.shim(), fd, &mut buf);
        cx.ext_mut()
            .pipe_rx
            .extend_from_slice(&buf[..n.min(buf.len())]);
    } else if tag == WRITE_END {
        cx.poll_stop(p)
            .expect("poll_stop inside the poll's callback");
    }
}

/// Every context callback set to the recording one.
pub fn callbacks<S: ShimUnderTest>() -> ContextCallbacks<Conf<S>> {
    ContextCallbacks {
        on_pre_open: Some(on_pre_open::<S>),
        on_open: Some(on_open::<S>),
        on_close: Some(on_close::<S>),
        on_data: Some(on_data::<S>),
        on_writable: Some(on_writable::<S>),
        on_timeout: Some(on_timeout::<S>),
        on_long_timeout: Some(on_long_timeout::<S>),
        on_end: Some(on_end::<S>),
        on_connect_error: Some(on_connect_error::<S>),
    }
}

/// The ext of accepted sockets.
pub fn accepted_ext() -> u64 {
    ACCEPTED_EXT
}

// ---- loops ----------------------------------------------------------------------------------

/// Arena sizes of a check's loop.
#[derive(Clone, Copy, Debug)]
pub struct Caps {
    /// Socket slots (both ends of every connection live in the same loop).
    pub sockets: usize,
    /// Listen-socket slots.
    pub listeners: usize,
    /// Context slots.
    pub contexts: usize,
    /// Timer slots.
    pub timers: usize,
    /// Poll slots.
    pub polls: usize,
}

impl Default for Caps {
    fn default() -> Self {
        Caps {
            sockets: 32,
            listeners: 4,
            contexts: 6,
            timers: 8,
            polls: 4,
        }
    }
}

/// Receive buffer data size.
const RECV: usize = 64 * 1024;

/// Settings with the shim's short sweep period.
pub fn short_sweep<S: ShimUnderTest>() -> Settings {
    Settings::default().with_sweep_period_ms(S::SWEEP_MS)
}

/// Builds a loop over a new shim with every loop callback set to the recording one.
pub fn new_loop<S: ShimUnderTest>(settings: Settings, caps: Caps) -> L<S> {
    let storage = GrowingStorage::preallocated(
        Capacity::new()
            .with_sockets(caps.sockets)
            .with_listeners(caps.listeners)
            .with_contexts(caps.contexts)
            .with_timers(caps.timers)
            .with_polls(caps.polls)
            .with_recv(RECV)
            .with_events(256),
    );
    let callbacks = LoopCallbacks {
        wakeup: Some(wakeup::<S>),
        pre: Some(pre::<S>),
        post: Some(post::<S>),
        released: Some(released::<S>),
    };
    match Loop::new(S::new_shim(), storage, World::new(), callbacks, settings) {
        Ok(l) => l,
        Err(e) => panic!("Loop::new refused the conformance memory: {e}"),
    }
}

/// The last events of a log, for failure messages.
pub fn tail(log: &[Ev]) -> &[Ev] {
    &log[log.len().saturating_sub(12)..]
}

// ---- driving ---------------------------------------------------------------------------------

/// How long a bounded drive may take before the check fails.
#[derive(Clone, Copy, Debug)]
pub struct Bound {
    /// Wall-clock limit.
    pub wall: Duration,
    /// Limit on the shim clock's advance (a simulated clock jumps).
    pub shim_ms: u64,
    /// Limit on iterations.
    pub iterations: u64,
    /// `timeout_ms` of each `run_once`.
    pub step_ms: u64,
}

impl Bound {
    /// The default bound of `S`: [`ShimUnderTest::BOUND_MS`] of wall clock, 60 s of shim clock,
    /// a million iterations, 10 ms per iteration.
    pub fn of<S: ShimUnderTest>() -> Bound {
        Bound {
            wall: Duration::from_millis(S::BOUND_MS),
            shim_ms: 60_000,
            iterations: 1_000_000,
            step_ms: 10,
        }
    }
}

/// Runs iterations until `done` holds, failing with `what` once `bound` is exceeded.
pub fn drive_bounded<S: ShimUnderTest>(
    l: &mut L<S>,
    bound: Bound,
    what: &str,
    mut done: impl FnMut(&mut L<S>) -> bool,
) {
    let start = Instant::now();
    let shim_start = l.clock_ms();
    let mut iterations = 0u64;
    while !done(l) {
        let shim_elapsed = l.clock_ms().saturating_sub(shim_start);
        if start.elapsed() > bound.wall
            || shim_elapsed > bound.shim_ms
            || iterations >= bound.iterations
        {
            panic!(
                "timed out waiting for: {what} (after {:?} wall, {shim_elapsed} ms shim clock, \
                 {iterations} iterations); last events: {:?}",
                start.elapsed(),
                tail(&l.ext().log)
            );
        }
        if let Err(e) = l.run_once(Some(bound.step_ms)) {
            panic!("run_once failed while waiting for {what}: {e}");
        }
        iterations += 1;
    }
}

/// [`drive_bounded`] with the shim's default [`Bound`].
pub fn drive<S: ShimUnderTest>(l: &mut L<S>, what: &str, done: impl FnMut(&mut L<S>) -> bool) {
    drive_bounded(l, Bound::of::<S>(), what, done)
}

/// Runs the loop until the shim clock has advanced `ms` (nothing expected to happen).
pub fn idle<S: ShimUnderTest>(l: &mut L<S>, ms: u64) {
    let until = l.clock_ms() + ms;
    drive(l, "the shim clock to advance", |l| l.clock_ms() >= until);
}

/// Runs exactly `n` iterations that do not wait.
pub fn spin<S: ShimUnderTest>(l: &mut L<S>, n: usize) {
    for _ in 0..n {
        l.run_once(Some(0)).expect("run_once");
    }
}

/// Runs `Loop::run` under a guard of the shim's bound.
pub fn run_guarded<S: ShimUnderTest>(l: &mut L<S>) {
    l.ext_mut().guard = Some(RunGuard {
        deadline: Instant::now() + Duration::from_millis(S::BOUND_MS),
        iterations: 1_000_000,
    });
    let r = l.run();
    l.ext_mut().guard = None;
    if let Err(e) = r {
        panic!("Loop::run failed: {e}");
    }
}

// ---- log queries -----------------------------------------------------------------------------

/// Events matching `f`.
pub fn events<S: ShimUnderTest>(l: &L<S>, f: impl Fn(&Ev) -> bool) -> Vec<Ev> {
    l.ext().log.iter().filter(|e| f(e)).cloned().collect()
}

/// How many events match `f`.
pub fn count<S: ShimUnderTest>(l: &L<S>, f: impl Fn(&Ev) -> bool) -> usize {
    l.ext().log.iter().filter(|e| f(e)).count()
}

/// Index of the first event matching `f`.
pub fn position<S: ShimUnderTest>(l: &L<S>, f: impl Fn(&Ev) -> bool) -> Option<usize> {
    l.ext().log.iter().position(f)
}

/// Whether `s` got `on_open`.
pub fn opened<S: ShimUnderTest>(l: &L<S>, s: SocketId) -> bool {
    count(l, |e| matches!(e, Ev::Open { s: x, .. } if *x == s)) > 0
}

/// The `on_close` calls of `s`: (code, reason) as the C API gives them.
pub fn closes<S: ShimUnderTest>(l: &L<S>, s: SocketId) -> Vec<(i32, Option<u32>)> {
    close_causes(l, s)
        .iter()
        .map(CloseCause::code_and_reason)
        .collect()
}

/// The `on_close` calls of `s`: why it closed.
pub fn close_causes<S: ShimUnderTest>(l: &L<S>, s: SocketId) -> Vec<CloseCause<u32>> {
    l.ext()
        .log
        .iter()
        .filter_map(|e| match e {
            Ev::Close { s: x, cause, .. } if *x == s => Some(*cause),
            _ => None,
        })
        .collect()
}

/// How many `on_end` calls `s` got.
pub fn ends<S: ShimUnderTest>(l: &L<S>, s: SocketId) -> usize {
    count(l, |e| matches!(e, Ev::End { s: x, .. } if *x == s))
}

/// Bytes received on `s` so far.
pub fn rx<S: ShimUnderTest>(l: &L<S>, s: SocketId) -> Vec<u8> {
    l.ext().rx.get(&s).cloned().unwrap_or_default()
}

/// How many bytes `s` received so far.
pub fn rx_len<S: ShimUnderTest>(l: &L<S>, s: SocketId) -> usize {
    l.ext().rx.get(&s).map_or(0, Vec::len)
}

/// Every event that names socket `s`.
pub fn events_of<S: ShimUnderTest>(l: &L<S>, s: SocketId) -> Vec<Ev> {
    events(l, |e| match e {
        Ev::Open { s: x, .. }
        | Ev::Data { s: x, .. }
        | Ev::Writable(x)
        | Ev::End { s: x, .. }
        | Ev::Close { s: x, .. }
        | Ev::ConnectError { s: x, .. }
        | Ev::Timeout { s: x, .. }
        | Ev::LongTimeout { s: x, .. }
        | Ev::Released { s: x, .. } => *x == s,
        _ => false,
    })
}

/// A deterministic byte pattern that makes reordering, loss and duplication visible.
pub fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| ((i % 251) as u8) ^ ((i / 251) as u8).wrapping_mul(31) ^ seed)
        .collect()
}

// ---- the two-ended fixture ----------------------------------------------------------------------

/// A loop with a server context listening and a client context, both in the same loop.
pub struct Fixture<S: ShimUnderTest> {
    /// The loop.
    pub l: L<S>,
    /// The listening context ([`SERVER`]).
    pub server: ContextId,
    /// The connecting context ([`CLIENT`]).
    pub client: ContextId,
    /// The listener.
    pub listener: ListenId,
    /// Where clients connect.
    pub target: Target,
}

/// Where the fixture's listener is.
#[derive(Clone, Debug)]
pub enum Target {
    /// A host literal and port.
    Host(&'static str, u16),
    /// A unix-domain path.
    Unix(String),
}

impl<S: ShimUnderTest> Fixture<S> {
    /// A server listening on `host` port 0, with default settings and caps.
    pub fn tcp(host: &'static str) -> Self {
        Self::tcp_with(host, Settings::default(), Caps::default())
    }

    /// A server listening on `host` port 0.
    pub fn tcp_with(host: &'static str, settings: Settings, caps: Caps) -> Self {
        let mut l = new_loop::<S>(settings, caps);
        let (server, client) = contexts(&mut l);
        let listener = l
            .listen(
                server,
                ListenTarget::Host {
                    host: Some(host),
                    port: 0,
                },
                ListenOptions::default(),
                accepted_ext,
            )
            .unwrap_or_else(|e| panic!("listen on {host} port 0 failed: {e}"));
        let port = l
            .listen_port(listener)
            .unwrap_or_else(|| panic!("listen_port of a listener on {host} is None"));
        assert_ne!(port, 0, "listen on port 0 must report the ephemeral port");
        Fixture {
            l,
            server,
            client,
            listener,
            target: Target::Host(host, port),
        }
    }

    /// A server listening on a unix-domain `path`.
    pub fn unix(path: &str) -> Self {
        let mut l = new_loop::<S>(Settings::default(), Caps::default());
        let (server, client) = contexts(&mut l);
        let listener = l
            .listen(
                server,
                ListenTarget::Unix(path),
                ListenOptions::default(),
                accepted_ext,
            )
            .unwrap_or_else(|e| panic!("listen on unix path {path} failed: {e}"));
        Fixture {
            l,
            server,
            client,
            listener,
            target: Target::Unix(path.to_owned()),
        }
    }

    /// The listener's port (TCP fixtures).
    pub fn port(&self) -> u16 {
        match self.target {
            Target::Host(_, p) => p,
            Target::Unix(_) => panic!("a unix fixture has no port"),
        }
    }

    /// Mutable access to a context's knobs.
    pub fn knobs(&mut self, c: ContextId) -> &mut Ctx {
        self.l.context_ext_mut(c).expect("context is alive")
    }

    /// Starts a connect from the client context to the listener.
    pub fn connect(&mut self) -> SocketId {
        let target = self.target.clone();
        let r = match &target {
            Target::Host(host, port) => self.l.connect(
                self.client,
                ConnectTarget::Host {
                    host,
                    port: *port,
                    source: None,
                },
                CLIENT_EXT,
            ),
            Target::Unix(path) => {
                self.l
                    .connect(self.client, ConnectTarget::Unix(path), CLIENT_EXT)
            }
        };
        r.unwrap_or_else(|e| panic!("connect failed synchronously: {e}"))
    }

    /// Connects and runs until both ends are open; returns (client end, server end).
    pub fn pair(&mut self) -> (SocketId, SocketId) {
        let mark = self.l.ext().log.len();
        let c = self.connect();
        let found = |l: &L<S>| {
            l.ext().log[mark..].iter().find_map(|e| match e {
                Ev::Open {
                    s, client: false, ..
                } => Some(*s),
                _ => None,
            })
        };
        drive(&mut self.l, "both ends of a connection to open", |l| {
            opened(l, c) && found(l).is_some()
        });
        let s = found(&self.l).expect("server end");
        (c, s)
    }

    /// Sends `data` on `from` (queueing what the OS does not take) and runs until `to` has
    /// received `expect_total` bytes in all.
    pub fn transfer(&mut self, from: SocketId, data: &[u8], to: SocketId) {
        let before = rx_len(&self.l, to);
        send::<S>(&mut self.l, from, data);
        let want = before + data.len();
        drive(&mut self.l, "sent bytes to arrive", |l| {
            rx_len(l, to) >= want
        });
        assert_eq!(
            &rx(&self.l, to)[before..],
            data,
            "bytes arrive complete and in order"
        );
    }
}

fn contexts<S: ShimUnderTest>(l: &mut L<S>) -> (ContextId, ContextId) {
    let server = l
        .context_create(Ctx::tag(SERVER), callbacks::<S>())
        .expect("context_create");
    let client = l
        .context_create(Ctx::tag(CLIENT), callbacks::<S>())
        .expect("context_create");
    (server, client)
}

/// A unique unix-domain socket path under the temp dir, removed (if it exists) on drop.
pub struct UnixPath(pub String);

impl UnixPath {
    /// A fresh path, short enough for `sun_path`.
    pub fn new() -> UnixPath {
        use std::sync::atomic::{AtomicU32, Ordering};
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let name = format!("usc-{}-{n}-{nanos:x}.sock", std::process::id());
        let mut path = std::env::temp_dir().join(&name);
        if path.as_os_str().len() > 100 {
            path = std::path::Path::new("/tmp").join(&name);
        }
        let path = path.to_string_lossy().into_owned();
        let _ = std::fs::remove_file(&path);
        UnixPath(path)
    }
}

impl Default for UnixPath {
    fn default() -> Self {
        UnixPath::new()
    }
}

impl Drop for UnixPath {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A debug-printable check that `a` lies in `lo..=hi`.
pub fn assert_within<T: PartialOrd + Debug>(what: &str, a: T, lo: T, hi: T) {
    assert!(
        a >= lo && a <= hi,
        "{what}: {a:?} is outside {lo:?}..={hi:?}"
    );
}
