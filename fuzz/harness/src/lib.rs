//! # usockets-fuzz-harness
//!
//! The one harness behind the cargo-fuzz targets in `fuzz/` and the corpus replay test that
//! `cargo test` runs: it decodes an input into API calls and simulated-OS decisions, keeps a
//! reference model of every object, and checks invariants inside every callback and after
//! every step. A broken invariant panics (a crash to the fuzzer, a failure to the test).
//!
//! The input layout is in [`input`]; [`run`] runs one input for one [`Target`] and returns
//! what it reached ([`Report`]).
//!
//! ## Invariants checked
//!
//! * Exactly one `on_close` per socket that opened (and one at most for one whose connect
//!   failed: only if the application itself closes it inside `on_connect_error`, as in C).
//! * No callback for a closed or released socket; every callback's socket has the ext and the
//!   context the model expects (adoption moves it, and resets its timeouts).
//! * Bytes arrive in order and unaltered, each stream at one receiver only; when a receiver sees
//!   the sender's FIN, it has every byte the sender was told was written.
//! * `on_open` once; `on_writable` only after a short write; nothing read after `on_end`;
//!   `on_timeout` and timers never early, timers at most once per pass and never missed.
//! * Handles of released sockets, freed contexts, closed timers and freed polls are rejected.
//! * Arena occupancy and `is_alive` match the model at every step; after draining the loop
//!   every slot is free and no descriptor is left open.

#![forbid(unsafe_code)]

pub mod input;

use std::collections::BTreeMap;

use input::{parse_header, split, stream_chunk, Ops, HEADER};
use usockets_core::{
    Config, ConnectError, ConnectTarget, ContextCallbacks, ContextError, ContextId, Event,
    Interest, ListenError, ListenId, ListenOptions, ListenTarget, Loop, LoopCallbacks, Memory,
    OsError, OsShim, PollError, PollId, PreOpen, RecvBuf, Settings, Slot, SlotStore, SocketId,
    TimerId,
};
use usockets_shim_sim::{ByteSource, FaultCounts, Faults, PeerId, SimNet, SimShim};

/// Fixed storage owned by a `Vec`, sized once.
pub struct VecStore<T>(Vec<Slot<T>>);

impl<T> VecStore<T> {
    fn new(n: usize) -> Self {
        VecStore((0..n).map(|_| Slot::EMPTY).collect())
    }
}

impl<T> SlotStore<T> for VecStore<T> {
    fn len(&self) -> usize {
        self.0.len()
    }
    fn slot(&self, index: usize) -> Option<&Slot<T>> {
        self.0.get(index)
    }
    fn slot_mut(&mut self, index: usize) -> Option<&mut Slot<T>> {
        self.0.get_mut(index)
    }
}

/// The loop configuration the harness runs: shim-sim underneath, the model as loop ext, and a
/// serial number as the ext of every other object.
pub struct H;

impl Config for H {
    type Shim = SimShim;
    type LoopExt = World;
    type ContextExt = u64;
    type SocketExt = u64;
    type TimerExt = u64;
    type PollExt = u64;
    type Reason = u32;
    type Sockets = VecStore<usockets_core::SocketEntry<Self>>;
    type Listeners = VecStore<usockets_core::ListenEntry<Self>>;
    type Contexts = VecStore<usockets_core::ContextEntry<Self>>;
    type Timers = VecStore<usockets_core::TimerEntry<Self>>;
    type Polls = VecStore<usockets_core::PollEntry<Self>>;
    type RecvBuf = Vec<u8>;
    type EventBuf = Vec<Event>;
}

type Cx = usockets_core::Cx<H>;

/// Arena sizes: small, so that full arenas (shed connections, paused listeners, capacity
/// errors) are reached often.
const SOCKETS: usize = 12;
const LISTENERS: usize = 3;
const CONTEXTS: usize = 5;
const TIMERS: usize = 6;
const POLLS: usize = 3;
/// At most this many steps per input (an input is a few KB at most anyway).
const MAX_STEPS: usize = 600;
/// Callbacks nest (a close inside an `on_close` inside a `context_close` ...) up to this depth.
const MAX_DEPTH: u32 = 6;
/// Released socket handles remembered for stale-handle checks.
const STALE: usize = 16;

/// Which fuzz target an input is for: the same harness, different mixes of operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// Every API call and simulated OS event: peers, data, faults, clock jumps.
    LoopOps,
    /// Storms of adoption between contexts, closes inside callbacks, context and listener
    /// closes (also inside the accept loop), context frees.
    AdoptClose,
    /// Timers (also closed and re-armed inside callbacks), fallthrough, polls, wake-ups and
    /// clock movement.
    Timers,
}

impl Target {
    /// Every target.
    pub const ALL: [Target; 3] = [Target::LoopOps, Target::AdoptClose, Target::Timers];

    /// The cargo-fuzz target name (and the corpus directory name).
    pub fn name(self) -> &'static str {
        match self {
            Target::LoopOps => "loop_ops",
            Target::AdoptClose => "adopt_close",
            Target::Timers => "timers",
        }
    }

    fn ops(self) -> &'static [Op] {
        use Op::*;
        match self {
            Target::LoopOps => &[
                Run,
                Run,
                Run,
                Run,
                RunIdle,
                Advance,
                Advance,
                PeerConnect,
                PeerConnect,
                PeerConnect,
                PeerSend,
                PeerSend,
                PeerSend,
                PeerSend,
                PeerRecv,
                PeerRecv,
                PeerShutdown,
                PeerClose,
                PeerReset,
                PeerAccept,
                Connect,
                Connect,
                Connect,
                Listen,
                ListenClose,
                Sock,
                Sock,
                Sock,
                Sock,
                Sock,
                Sock,
                Stale,
                CtxClose,
                TimerCreate,
                TimerSet,
                Wake,
                FdLimit,
                AdoptAccepted,
                SetFaults,
            ],
            Target::AdoptClose => &[
                Run,
                Run,
                Run,
                Advance,
                PeerConnect,
                PeerConnect,
                PeerConnect,
                PeerSend,
                PeerSend,
                PeerRecv,
                PeerClose,
                Connect,
                Connect,
                Connect,
                Listen,
                Listen,
                ListenClose,
                ListenClose,
                Sock,
                Sock,
                Sock,
                Sock,
                Sock,
                Sock,
                Stale,
                Stale,
                CtxCreate,
                CtxCreate,
                CtxClose,
                CtxClose,
                CtxFree,
                CtxFree,
                AdoptAccepted,
                AdoptAccepted,
            ],
            Target::Timers => &[
                Run,
                Run,
                Run,
                RunIdle,
                RunIdle,
                Advance,
                Advance,
                Advance,
                TimerCreate,
                TimerCreate,
                TimerCreate,
                TimerSet,
                TimerSet,
                TimerSet,
                TimerSet,
                TimerClose,
                TimerClose,
                TimerStale,
                PollCreate,
                PollCreate,
                PollCtl,
                PollCtl,
                PipeWrite,
                PipeWrite,
                PipeClose,
                Wake,
                Wake,
                PeerConnect,
                Sock,
                Sock,
                Connect,
            ],
        }
    }

    fn acts(self) -> &'static [Act] {
        use Act::*;
        match self {
            Target::LoopOps => &[
                Nothing,
                Write,
                Write,
                Write2,
                WriteMore,
                Flush,
                Close,
                Adopt,
                Timeout,
                Timeout,
                LongTimeout,
                Shutdown,
                ShutdownRead,
                Pause,
                Resume,
                LowPrio,
                CloseConnecting,
                Addr,
                CloseOther,
                CtxClose,
                ListenClose,
                Connect,
                Wake,
                TimerSet,
                TimerClose,
                PeerSend,
                Nothing,
                Nothing,
            ],
            Target::AdoptClose => &[
                Nothing,
                Adopt,
                Adopt,
                Adopt,
                AdoptOther,
                AdoptOther,
                Close,
                Close,
                CloseOther,
                CloseOther,
                CtxClose,
                CtxClose,
                CtxFree,
                ListenClose,
                ListenClose,
                Listen,
                Connect,
                Connect,
                Timeout,
                Timeout,
                Write,
                Shutdown,
                CloseConnecting,
                Nothing,
            ],
            Target::Timers => &[
                Nothing,
                TimerSet,
                TimerSet,
                TimerSet,
                TimerClose,
                TimerClose,
                TimerCreate,
                Wake,
                Timeout,
                LongTimeout,
                Close,
                Adopt,
                Write,
                PollCtl,
                Nothing,
                Nothing,
            ],
        }
    }
}

/// How often each callback kind ran.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// `on_pre_open`.
    pub on_pre_open: u64,
    /// `on_open`.
    pub on_open: u64,
    /// `on_data`.
    pub on_data: u64,
    /// `on_writable`.
    pub on_writable: u64,
    /// `on_end`.
    pub on_end: u64,
    /// `on_timeout`.
    pub on_timeout: u64,
    /// `on_long_timeout`.
    pub on_long_timeout: u64,
    /// `on_close`.
    pub on_close: u64,
    /// `on_connect_error`.
    pub on_connect_error: u64,
    /// Timer callbacks.
    pub timer: u64,
    /// Poll callbacks.
    pub poll: u64,
    /// The loop's `wakeup` callback.
    pub wakeup: u64,
    /// The loop's `pre` callback.
    pub pre: u64,
    /// The loop's `post` callback.
    pub post: u64,
    /// The loop's `released` callback.
    pub released: u64,
}

impl Stats {
    /// Every callback kind with its count.
    pub fn kinds(&self) -> [(&'static str, u64); 15] {
        [
            ("on_pre_open", self.on_pre_open),
            ("on_open", self.on_open),
            ("on_data", self.on_data),
            ("on_writable", self.on_writable),
            ("on_end", self.on_end),
            ("on_timeout", self.on_timeout),
            ("on_long_timeout", self.on_long_timeout),
            ("on_close", self.on_close),
            ("on_connect_error", self.on_connect_error),
            ("timer", self.timer),
            ("poll", self.poll),
            ("wakeup", self.wakeup),
            ("pre", self.pre),
            ("post", self.post),
            ("released", self.released),
        ]
    }
}

/// Every fault kind of shim-sim with how often it was injected.
pub fn fault_kinds(f: &FaultCounts) -> [(&'static str, u64); 8] {
    [
        ("partial_write", f.partial_write),
        ("would_block_send", f.would_block_send),
        ("reset", f.reset),
        ("refuse_connect", f.refuse_connect),
        ("emfile_accept", f.emfile_accept),
        ("spurious_readiness", f.spurious_readiness),
        ("delay_delivery", f.delay_delivery),
        ("hangup_with_unread", f.hangup_with_unread),
    ]
}

/// What one input reached.
#[derive(Clone, Copy, Debug, Default)]
pub struct Report {
    /// Callbacks that ran.
    pub stats: Stats,
    /// Faults the simulated OS injected.
    pub faults: FaultCounts,
    /// Steps (top-level operations) run.
    pub steps: usize,
}

// ---- the model -------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Life {
    Connecting,
    Open,
    /// `on_close` ran (or is running); released at the end of the iteration.
    Closed,
    /// The connect failed (`on_connect_error`) or was aborted (`close_connecting`).
    Failed,
}

/// What a receiver has read of the one stream it receives.
#[derive(Clone, Copy, Debug, Default)]
struct Inbound {
    hdr: [u8; HEADER],
    n: u64,
    id: Option<u16>,
}

impl Inbound {
    fn feed(&mut self, streams: &mut [Stream], mut data: &[u8], who: &str) {
        while self.id.is_none() && !data.is_empty() {
            self.hdr[self.n as usize] = data[0];
            self.n += 1;
            data = &data[1..];
            if self.n == HEADER as u64 {
                let id = parse_header(self.hdr)
                    .unwrap_or_else(|| panic!("{who}: corrupted stream header {:?}", self.hdr));
                let st = streams
                    .get_mut(usize::from(id))
                    .unwrap_or_else(|| panic!("{who}: header of a stream never written ({id})"));
                assert!(!st.claimed, "{who}: stream {id} arrived at two receivers");
                assert!(
                    self.n <= st.sent,
                    "{who}: more of stream {id} than was written"
                );
                st.claimed = true;
                self.id = Some(id);
            }
        }
        let Some(id) = self.id else { return };
        if data.is_empty() {
            return;
        }
        let want = stream_chunk(id, self.n, data.len());
        if data != want.as_slice() {
            let i = data
                .iter()
                .zip(&want)
                .position(|(a, b)| a != b)
                .unwrap_or(0);
            panic!(
                "{who}: byte {} of stream {id} differs (lost, repeated, reordered or foreign)",
                self.n + i as u64
            );
        }
        self.n += data.len() as u64;
        assert!(
            self.n <= streams[usize::from(id)].sent,
            "{who}: received more of stream {id} than its sender wrote"
        );
    }

    /// The sender's FIN arrived: every byte it wrote must have arrived before it.
    fn check_complete(&self, streams: &[Stream], who: &str) {
        if let Some(id) = self.id {
            let sent = streams[usize::from(id)].sent;
            assert_eq!(
                self.n, sent,
                "{who}: stream {id} ended after {} of the {sent} bytes written: bytes lost while \
                 the connection was open",
                self.n
            );
        }
    }
}

#[derive(Clone, Copy, Debug, Default)]
struct Stream {
    /// Bytes the writer was told were written.
    sent: u64,
    /// A receiver identified it.
    claimed: bool,
}

#[derive(Clone, Debug)]
struct Sock {
    serial: u64,
    life: Life,
    ctx: ContextId,
    out: u16,
    inb: Inbound,
    shut_wr: bool,
    shut_rd: bool,
    got_end: bool,
    want_writable: bool,
    timeout: Option<u64>,
    long_timeout: Option<u64>,
    /// The code and reason of a close the harness asked for, until `on_close` shows them.
    closing: Option<(i32, u32)>,
    closes: u32,
    /// Out of its context's list while still open (inside `on_connect_error`).
    unlinked: bool,
}

#[derive(Clone, Debug)]
struct Peer {
    id: PeerId,
    out: u16,
    inb: Inbound,
    /// The harness closed or reset it: it no longer counts on receiving everything.
    gone: bool,
}

#[derive(Clone, Copy, Debug)]
struct Ctx {
    id: ContextId,
    serial: u64,
    freed: bool,
}

#[derive(Clone, Debug)]
struct Lis {
    id: ListenId,
    ctx: ContextId,
    port: Option<u16>,
    path: Option<String>,
    closed: bool,
}

#[derive(Clone, Copy, Debug)]
struct Armed {
    deadline: u64,
    repeat: u64,
    /// The iteration it was armed in, and whether that was at or after that iteration's timer
    /// pass (then it may wait for the next pass).
    iteration: u64,
    late: bool,
}

#[derive(Clone, Copy, Debug)]
struct Tmr {
    id: TimerId,
    serial: u64,
    fallthrough: bool,
    closed: bool,
    armed: Option<Armed>,
    last_fire: u64,
}

#[derive(Clone, Copy, Debug)]
struct Pol {
    id: PollId,
    serial: u64,
    fallthrough: bool,
    freed: bool,
    /// The polled descriptor and the pipe it belongs to.
    fd: i32,
    read_end: i32,
    write_end: i32,
    write_closed: bool,
    started: bool,
    interest: Interest,
}

/// The reference model and the input cursor: the loop's ext.
pub struct World {
    target: Target,
    ops: Ops,
    net: SimNet,
    depth: u32,
    draining: bool,
    after_timer_phase: bool,
    stats: Stats,
    serial: u64,
    socks: BTreeMap<SocketId, Sock>,
    released: Vec<SocketId>,
    streams: Vec<Stream>,
    peers: Vec<Peer>,
    peer_port: Option<u16>,
    ctxs: Vec<Ctx>,
    lis: Vec<Lis>,
    /// Listen sockets closed since the last iteration (their slots are not released yet).
    lis_closing: usize,
    timers: Vec<Tmr>,
    polls: Vec<Pol>,
    /// Descriptors taken in `on_pre_open`, ours to adopt or close.
    taken: Vec<i32>,
    /// The serial given to `adopt_accepted`, until its `on_open`.
    adopting: Option<u64>,
    /// The socket whose `on_connect_error` is running.
    in_connect_error: Vec<SocketId>,
    /// A wake-up from outside the loop that the next iteration must deliver.
    wake_outside: bool,
    /// Print every operation and action (`USOCKETS_FUZZ_TRACE=1`), to read a failing input.
    trace: bool,
}

impl World {
    fn next_serial(&mut self) -> u64 {
        self.serial += 1;
        self.serial
    }

    fn new_stream(&mut self) -> u16 {
        self.streams.push(Stream::default());
        u16::try_from(self.streams.len() - 1).unwrap_or(u16::MAX)
    }

    fn ctx_live(&self, c: ContextId) -> bool {
        self.ctxs.iter().any(|x| x.id == c && !x.freed)
    }

    fn sock(&mut self, s: SocketId, what: &str) -> &mut Sock {
        self.socks
            .get_mut(&s)
            .unwrap_or_else(|| panic!("{what} for a socket the model does not know: {s:?}"))
    }

    /// Closed as far as core's `is_closed` goes.
    fn closed(&self, s: SocketId) -> bool {
        match self.socks.get(&s).map(|x| x.life) {
            Some(Life::Closed) => true,
            Some(Life::Failed) => !self.in_connect_error.contains(&s),
            _ => false,
        }
    }

    fn keepalive(&self) -> usize {
        let socks = self
            .socks
            .values()
            .filter(|x| matches!(x.life, Life::Open | Life::Connecting))
            .count();
        let lis = self.lis.iter().filter(|x| !x.closed).count();
        let timers = self
            .timers
            .iter()
            .filter(|x| !x.closed && !x.fallthrough)
            .count();
        let polls = self
            .polls
            .iter()
            .filter(|x| !x.freed && !x.fallthrough)
            .count();
        socks + lis + timers + polls
    }

    fn may_react(&self) -> bool {
        !self.draining && self.depth < MAX_DEPTH && !self.ops.done()
    }

    fn pick_sock(&mut self) -> Option<SocketId> {
        let i = self.ops.u8() as usize;
        let n = self.socks.len();
        if n == 0 {
            return None;
        }
        self.socks.keys().nth(i % n).copied()
    }

    fn pick_ctx(&mut self) -> Option<ContextId> {
        let i = self.ops.u8() as usize;
        (!self.ctxs.is_empty()).then(|| self.ctxs[i % self.ctxs.len()].id)
    }

    fn pick_lis(&mut self) -> Option<usize> {
        let i = self.ops.u8() as usize;
        (!self.lis.is_empty()).then(|| i % self.lis.len())
    }

    fn pick_timer(&mut self) -> Option<usize> {
        let i = self.ops.u8() as usize;
        (!self.timers.is_empty()).then(|| i % self.timers.len())
    }

    fn pick_poll(&mut self) -> Option<usize> {
        let i = self.ops.u8() as usize;
        (!self.polls.is_empty()).then(|| i % self.polls.len())
    }

    fn pick_peer(&mut self) -> Option<usize> {
        let i = self.ops.u8() as usize;
        (!self.peers.is_empty()).then(|| i % self.peers.len())
    }
}

// ---- callbacks -------------------------------------------------------------------------------

/// The checks every socket callback makes.
fn check_live(cx: &Cx, s: SocketId, what: &str) {
    let w = cx.ext();
    let sock = w
        .socks
        .get(&s)
        .unwrap_or_else(|| panic!("{what} for a socket the model does not know: {s:?}"));
    assert!(
        matches!(sock.life, Life::Open | Life::Connecting),
        "{what} for {s:?}, which is {:?}",
        sock.life
    );
    assert_eq!(
        cx.is_closed(s),
        Some(false),
        "{what}: {s:?} reads as closed"
    );
    assert_eq!(
        cx.socket_ext(s),
        Some(&sock.serial),
        "{what}: the ext of {s:?} changed"
    );
    assert_eq!(
        cx.socket_context(s),
        Some(sock.ctx),
        "{what}: {s:?} is in the wrong context"
    );
}

fn callbacks(pre_open: bool) -> ContextCallbacks<H> {
    ContextCallbacks {
        on_pre_open: if pre_open { Some(on_pre_open) } else { None },
        on_open: Some(on_open),
        on_close: Some(on_close),
        on_data: Some(on_data),
        on_writable: Some(on_writable),
        on_timeout: Some(on_timeout),
        on_long_timeout: Some(on_long_timeout),
        on_end: Some(on_end),
        on_connect_error: Some(on_connect_error),
    }
}

fn on_pre_open(cx: &mut Cx, c: ContextId, fd: i32, ip: &[u8]) -> PreOpen {
    let w = cx.ext_mut();
    w.stats.on_pre_open += 1;
    assert!(w.ctx_live(c), "on_pre_open for a freed context {c:?}");
    assert!(
        matches!(ip.len(), 0 | 4 | 16),
        "on_pre_open ip of {} bytes",
        ip.len()
    );
    assert!(fd >= 3, "on_pre_open with descriptor {fd}");
    react(cx, None);
    let w = cx.ext_mut();
    if !w.draining && w.ops.u8() % 4 == 3 {
        w.taken.push(fd);
        PreOpen::Taken
    } else {
        PreOpen::Adopt
    }
}

fn on_open(cx: &mut Cx, s: SocketId, is_client: bool, ip: &[u8]) {
    cx.ext_mut().stats.on_open += 1;
    if is_client {
        assert!(ip.is_empty(), "on_open(client) with an ip");
        let sock = cx.ext_mut().sock(s, "on_open(client)");
        assert_eq!(
            sock.life,
            Life::Connecting,
            "on_open(client) twice for {s:?}"
        );
        sock.life = Life::Open;
        // A connect that completes resets both timeouts.
        sock.timeout = None;
        sock.long_timeout = None;
    } else {
        assert!(
            matches!(ip.len(), 0 | 4 | 16),
            "on_open(server) ip of {} bytes",
            ip.len()
        );
        let ctx = cx.socket_context(s).expect("context of an opening socket");
        let ext = cx.socket_ext(s).copied();
        let w = cx.ext_mut();
        assert!(
            !w.socks.contains_key(&s),
            "on_open(server) for a socket the model knows: {s:?}"
        );
        assert!(w.ctx_live(ctx), "socket accepted into a freed context");
        let want_ext = w.adopting.take().unwrap_or(0);
        assert_eq!(ext, Some(want_ext), "ext of an accepted socket");
        let serial = w.next_serial();
        let out = w.new_stream();
        w.socks.insert(
            s,
            Sock {
                serial,
                life: Life::Open,
                ctx,
                out,
                inb: Inbound::default(),
                shut_wr: false,
                shut_rd: false,
                got_end: false,
                want_writable: false,
                timeout: None,
                long_timeout: None,
                closing: None,
                closes: 0,
                unlinked: false,
            },
        );
        if let Some(e) = cx.socket_ext_mut(s) {
            *e = serial;
        }
    }
    check_live(cx, s, "on_open");
    react(cx, Some(s));
}

fn on_data(cx: &mut Cx, s: SocketId, data: &mut RecvBuf<'_>) {
    check_live(cx, s, "on_data");
    assert!(!data.is_empty(), "on_data with no bytes");
    let padded = data.padded();
    let last = padded.len() - 1;
    padded[0] = 0xEE;
    padded[last] = 0xEE;
    let w = cx.ext_mut();
    w.stats.on_data += 1;
    let World { socks, streams, .. } = w;
    let sock = socks.get_mut(&s).expect("checked live");
    assert_eq!(sock.life, Life::Open, "on_data before on_open for {s:?}");
    assert!(!sock.got_end, "on_data after on_end for {s:?}");
    assert!(!sock.shut_rd, "on_data after shutdown_read for {s:?}");
    sock.inb.feed(streams, data, "on_data");
    react(cx, Some(s));
}

fn on_writable(cx: &mut Cx, s: SocketId) {
    check_live(cx, s, "on_writable");
    let w = cx.ext_mut();
    w.stats.on_writable += 1;
    let sock = w.sock(s, "on_writable");
    assert!(
        sock.want_writable,
        "on_writable for {s:?} without a short write"
    );
    sock.want_writable = false;
    react(cx, Some(s));
}

fn on_end(cx: &mut Cx, s: SocketId) {
    check_live(cx, s, "on_end");
    let w = cx.ext_mut();
    w.stats.on_end += 1;
    let World { socks, streams, .. } = w;
    let sock = socks.get_mut(&s).expect("checked live");
    assert!(!sock.got_end, "on_end twice for {s:?}");
    assert_eq!(sock.life, Life::Open, "on_end before on_open for {s:?}");
    sock.got_end = true;
    if !sock.shut_rd {
        sock.inb.check_complete(streams, "on_end");
    }
    react(cx, Some(s));
}

fn on_timeout(cx: &mut Cx, s: SocketId) {
    check_live(cx, s, "on_timeout");
    let now = cx.now_ms();
    let w = cx.ext_mut();
    w.stats.on_timeout += 1;
    w.after_timer_phase = true;
    let sock = w.sock(s, "on_timeout");
    let due = sock
        .timeout
        .take()
        .unwrap_or_else(|| panic!("on_timeout for {s:?} with no timeout set"));
    assert!(now >= due, "on_timeout for {s:?} {} ms early", due - now);
    react(cx, Some(s));
}

fn on_long_timeout(cx: &mut Cx, s: SocketId) {
    check_live(cx, s, "on_long_timeout");
    let now = cx.now_ms();
    let w = cx.ext_mut();
    w.stats.on_long_timeout += 1;
    w.after_timer_phase = true;
    let sock = w.sock(s, "on_long_timeout");
    let due = sock
        .long_timeout
        .take()
        .unwrap_or_else(|| panic!("on_long_timeout for {s:?} with no long timeout set"));
    assert!(
        now >= due,
        "on_long_timeout for {s:?} {} ms early",
        due - now
    );
    react(cx, Some(s));
}

fn on_close(cx: &mut Cx, s: SocketId, code: i32, reason: Option<u32>) {
    assert_eq!(
        cx.is_closed(s),
        Some(true),
        "on_close: {s:?} not marked closed"
    );
    let ext = cx.socket_ext(s).copied();
    let w = cx.ext_mut();
    w.stats.on_close += 1;
    let in_connect_error = w.in_connect_error.contains(&s);
    let sock = w.sock(s, "on_close");
    let allowed = match sock.life {
        Life::Open | Life::Connecting => true,
        // The application closed it inside its own on_connect_error (C does call on_close).
        Life::Failed => in_connect_error && sock.closes == 0,
        Life::Closed => false,
    };
    assert!(
        allowed,
        "on_close for {s:?}, which is {:?} (closes so far: {})",
        sock.life, sock.closes
    );
    sock.life = Life::Closed;
    sock.closes += 1;
    assert_eq!(ext, Some(sock.serial), "on_close: the ext of {s:?} changed");
    match sock.closing.take() {
        Some((c, r)) => assert_eq!(
            (code, reason),
            (c, Some(r)),
            "on_close: code and reason not passed through"
        ),
        None => assert_eq!(
            (code, reason),
            (0, None),
            "on_close: a close by the library passes (0, None)"
        ),
    }
    react(cx, Some(s));
}

fn on_connect_error(cx: &mut Cx, s: SocketId, err: OsError) {
    check_live(cx, s, "on_connect_error");
    let w = cx.ext_mut();
    w.stats.on_connect_error += 1;
    assert_ne!(err.code, 0, "on_connect_error without an OS code");
    let sock = w.sock(s, "on_connect_error");
    assert_eq!(
        sock.life,
        Life::Connecting,
        "on_connect_error for {s:?} after on_open"
    );
    sock.life = Life::Failed;
    sock.unlinked = true;
    w.in_connect_error.push(s);
    react(cx, Some(s));
    let w = cx.ext_mut();
    w.in_connect_error.retain(|&x| x != s);
}

fn on_timer(cx: &mut Cx, t: TimerId) {
    let now = cx.now_ms();
    let iteration = cx.iteration_number();
    let ext = cx.timer_ext(t).copied();
    let w = cx.ext_mut();
    w.stats.timer += 1;
    w.after_timer_phase = true;
    let tm = w
        .timers
        .iter_mut()
        .find(|x| x.id == t && !x.closed)
        .unwrap_or_else(|| panic!("callback of a closed timer {t:?}"));
    assert_eq!(ext, Some(tm.serial), "timer ext changed");
    let armed = tm
        .armed
        .unwrap_or_else(|| panic!("callback of a disarmed timer {t:?}"));
    assert!(
        now >= armed.deadline,
        "timer {t:?} fired {} ms early",
        armed.deadline - now
    );
    assert_ne!(
        tm.last_fire, iteration,
        "timer {t:?} fired twice in one pass"
    );
    tm.last_fire = iteration;
    tm.armed = (armed.repeat > 0).then(|| {
        let next = armed.deadline.saturating_add(armed.repeat);
        Armed {
            deadline: if next <= now {
                now + armed.repeat
            } else {
                next
            },
            repeat: armed.repeat,
            iteration,
            late: true,
        }
    });
    if cx.ext().may_react() {
        // Timers most often act on themselves: close or re-arm inside their own callback.
        match cx.ext_mut().ops.u8() % 4 {
            1 => timer_close(cx, t),
            2 => {
                let (ms, rep) = timer_delays(cx);
                timer_set(cx, t, ms, rep);
            }
            _ => {}
        }
    }
    react(cx, None);
}

fn on_poll(cx: &mut Cx, p: PollId, ready: Interest, error: bool) {
    let ext = cx.poll_ext(p).copied();
    let w = cx.ext_mut();
    w.stats.poll += 1;
    let i = w
        .polls
        .iter()
        .position(|x| x.id == p && !x.freed)
        .unwrap_or_else(|| panic!("callback of a freed poll {p:?}"));
    let pm = w.polls[i];
    assert_eq!(ext, Some(pm.serial), "poll ext changed");
    assert!(pm.started, "callback of a stopped poll {p:?}");
    assert!(
        ready.bits() & !pm.interest.bits() == 0,
        "poll {p:?} ready {ready:?} outside its interest {:?}",
        pm.interest
    );
    assert!(
        !ready.is_empty() || error,
        "poll callback with nothing ready"
    );
    if ready.is_readable() && pm.fd == pm.read_end {
        let mut buf = [0u8; 64];
        if w.ops.u8() & 1 == 0 {
            while w.net.pipe_read(pm.fd, &mut buf) > 0 {}
        }
    }
    if cx.ext().may_react() {
        poll_ctl(cx, i);
    }
    react(cx, None);
}

fn on_wakeup(cx: &mut Cx) {
    let w = cx.ext_mut();
    w.stats.wakeup += 1;
    w.wake_outside = false;
}

fn on_pre(cx: &mut Cx) {
    let w = cx.ext_mut();
    w.stats.pre += 1;
    w.after_timer_phase = false;
}

fn on_post(cx: &mut Cx) {
    let w = cx.ext_mut();
    w.stats.post += 1;
    w.after_timer_phase = true;
}

fn on_released(cx: &mut Cx, s: SocketId, ext: u64) {
    assert_eq!(cx.is_closed(s), None, "released {s:?} still accepted");
    let w = cx.ext_mut();
    w.stats.released += 1;
    w.after_timer_phase = true;
    let sock = w
        .socks
        .remove(&s)
        .unwrap_or_else(|| panic!("released a socket the model does not know: {s:?}"));
    assert_eq!(ext, sock.serial, "released {s:?} with another ext");
    match sock.life {
        Life::Closed => assert_eq!(sock.closes, 1, "{s:?} closed {} times", sock.closes),
        Life::Failed => assert_eq!(sock.closes, 0),
        l => panic!("released {s:?}, which is {l:?}"),
    }
    if w.released.len() == STALE {
        w.released.remove(0);
    }
    w.released.push(s);
}

// ---- actions (from callbacks and from the top level) -------------------------------------------

#[derive(Clone, Copy, Debug)]
enum Act {
    Nothing,
    Write,
    Write2,
    WriteMore,
    Flush,
    Close,
    Adopt,
    AdoptOther,
    Timeout,
    LongTimeout,
    Shutdown,
    ShutdownRead,
    Pause,
    Resume,
    LowPrio,
    CloseConnecting,
    Addr,
    CloseOther,
    CtxClose,
    CtxFree,
    Listen,
    ListenClose,
    Connect,
    Wake,
    TimerCreate,
    TimerSet,
    TimerClose,
    PollCtl,
    PeerSend,
}

/// A callback's reaction: up to three actions read from the input (`0` = none; the high bit
/// chains another).
fn react(cx: &mut Cx, s: Option<SocketId>) {
    if !cx.ext().may_react() {
        return;
    }
    cx.ext_mut().depth += 1;
    for _ in 0..3 {
        let w = cx.ext_mut();
        let b = w.ops.u8();
        let acts = w.target.acts();
        let a = acts[usize::from(b & 0x7F) % acts.len()];
        act(cx, s, a);
        if b & 0x80 == 0 || !cx.ext().may_react() {
            break;
        }
    }
    cx.ext_mut().depth -= 1;
}

fn act(cx: &mut Cx, s: Option<SocketId>, a: Act) {
    let target = match s {
        Some(s) => Some(s),
        None => cx.ext_mut().pick_sock(),
    };
    if cx.ext().trace {
        eprintln!(
            "{:indent$}act {a:?} on {target:?} (iteration {}, now {})",
            "",
            cx.iteration_number(),
            cx.now_ms(),
            indent = 2 * cx.ext().depth as usize
        );
    }
    match a {
        Act::Nothing => {}
        Act::Write | Act::Write2 | Act::WriteMore => {
            if let Some(t) = target {
                write(cx, t, a);
            }
        }
        Act::Flush => {
            if let Some(t) = target {
                cx.flush(t);
            }
        }
        Act::Close => {
            if let Some(t) = target {
                close(cx, t);
            }
        }
        Act::CloseOther => {
            if let Some(t) = cx.ext_mut().pick_sock() {
                close(cx, t);
            }
        }
        Act::Adopt => {
            if let Some(t) = target {
                adopt(cx, t);
            }
        }
        Act::AdoptOther => {
            if let Some(t) = cx.ext_mut().pick_sock() {
                adopt(cx, t);
            }
        }
        Act::Timeout | Act::LongTimeout => {
            if let Some(t) = target {
                timeout(cx, t, matches!(a, Act::LongTimeout));
            }
        }
        Act::Shutdown => {
            if let Some(t) = target {
                shutdown(cx, t);
            }
        }
        Act::ShutdownRead => {
            if let Some(t) = target {
                let open = cx.ext().socks.get(&t).map(|x| x.life) == Some(Life::Open);
                cx.shutdown_read(t);
                if open {
                    cx.ext_mut().sock(t, "shutdown_read").shut_rd = true;
                }
            }
        }
        Act::Pause => {
            if let Some(t) = target {
                cx.pause(t);
            }
        }
        Act::Resume => {
            if let Some(t) = target {
                cx.resume(t);
            }
        }
        Act::LowPrio => {
            if let Some(t) = target {
                let on = cx.ext_mut().ops.u8() & 1 == 0;
                cx.set_low_priority(t, on);
            }
        }
        Act::CloseConnecting => {
            if let Some(t) = target {
                close_connecting(cx, t);
            }
        }
        Act::Addr => {
            if let Some(t) = target {
                addr(cx, t);
            }
        }
        Act::CtxClose => {
            if let Some(c) = cx.ext_mut().pick_ctx() {
                context_close(cx, c);
            }
        }
        Act::CtxFree => {
            if let Some(c) = cx.ext_mut().pick_ctx() {
                context_free(cx, c);
            }
        }
        Act::Listen => listen(cx),
        Act::ListenClose => {
            if let Some(i) = cx.ext_mut().pick_lis() {
                listen_close(cx, i);
            }
        }
        Act::Connect => connect(cx),
        Act::Wake => cx.wakeup(),
        Act::TimerCreate => timer_create(cx),
        Act::TimerSet => {
            if let Some(i) = cx.ext_mut().pick_timer() {
                let t = cx.ext().timers[i].id;
                let (ms, rep) = timer_delays(cx);
                timer_set(cx, t, ms, rep);
            }
        }
        Act::TimerClose => {
            if let Some(i) = cx.ext_mut().pick_timer() {
                let t = cx.ext().timers[i].id;
                timer_close(cx, t);
            }
        }
        Act::PollCtl => {
            if let Some(i) = cx.ext_mut().pick_poll() {
                poll_ctl(cx, i);
            }
        }
        Act::PeerSend => peer_send(cx),
    }
}

fn write(cx: &mut Cx, s: SocketId, how: Act) {
    let w = cx.ext_mut();
    let len = 1 + usize::from(w.ops.u8()) * 4;
    let Some(sock) = w.socks.get(&s) else {
        // A released handle: nothing may be written.
        assert_eq!(cx.write(s, b"x", false), 0, "write on released {s:?}");
        return;
    };
    let writable = sock.life == Life::Open && !sock.shut_wr;
    let out = sock.out;
    let chunk = stream_chunk(out, w.streams[usize::from(out)].sent, len);
    let n = match how {
        Act::Write2 => {
            let at = w.ops.below(len + 1);
            cx.write2(s, &chunk[..at], &chunk[at..])
        }
        Act::WriteMore => {
            let flush = w.ops.u8() & 1 == 0;
            let n = cx.write(s, &chunk, true);
            if flush {
                cx.flush(s);
            }
            n
        }
        _ => cx.write(s, &chunk, false),
    };
    assert!(n <= len, "write of {len} bytes returned {n}");
    if !writable {
        assert_eq!(
            n, 0,
            "a closed, connecting or shut-down {s:?} took {n} bytes"
        );
    }
    let w = cx.ext_mut();
    w.streams[usize::from(out)].sent += n as u64;
    if writable && n < len {
        w.sock(s, "write").want_writable = true;
    }
}

fn close(cx: &mut Cx, s: SocketId) {
    let w = cx.ext_mut();
    let code = i32::from(w.ops.u8()) - 16;
    let reason = u32::from(w.ops.u8());
    let live = !w.closed(s) && w.socks.contains_key(&s);
    if live {
        w.sock(s, "close").closing = Some((code, reason));
    }
    // Only a socket inside its on_connect_error can have lost its context (freed there).
    let orphan = live && !w.ctx_live(w.socks[&s].ctx);
    cx.close(s, code, Some(reason));
    if orphan {
        assert_eq!(cx.is_closed(s), Some(true), "close left {s:?} open");
        let w = cx.ext_mut();
        let sock = w.sock(s, "close");
        assert_ne!(sock.life, Life::Closed, "on_close from a freed context");
        sock.life = Life::Failed;
        sock.closing = None;
        w.in_connect_error.retain(|&x| x != s);
    } else if live {
        let life = cx.ext().socks.get(&s).map(|x| x.life);
        assert_eq!(life, Some(Life::Closed), "close of {s:?} gave no on_close");
    }
}

fn close_connecting(cx: &mut Cx, s: SocketId) {
    let w = cx.ext();
    let life = w.socks.get(&s).map(|x| x.life);
    // A connecting socket, or one whose on_connect_error is running (still connecting to core).
    let connecting = life == Some(Life::Connecting)
        || life == Some(Life::Failed) && w.in_connect_error.contains(&s);
    cx.close_connecting(s);
    if connecting {
        assert_eq!(
            cx.is_closed(s),
            Some(true),
            "close_connecting left {s:?} open"
        );
        let w = cx.ext_mut();
        w.sock(s, "close_connecting").life = Life::Failed;
        w.in_connect_error.retain(|&x| x != s);
    }
}

fn adopt(cx: &mut Cx, s: SocketId) {
    let Some(to) = cx.ext_mut().pick_ctx() else {
        return;
    };
    let transform = cx.ext_mut().ops.u8() & 1 == 0;
    let w = cx.ext();
    let known = w.socks.get(&s).map(|x| x.serial);
    let closed = w.closed(s);
    let target_live = w.ctx_live(to);
    let r = if transform {
        cx.adopt_with(s, to, |e| {
            assert_eq!(Some(*e), known, "adopt_with got another ext");
        })
    } else {
        cx.adopt(s, to)
    };
    let want = match known {
        None => None,
        Some(_) if closed => Some(s),
        Some(_) if !target_live => None,
        Some(_) => Some(s),
    };
    assert_eq!(r, want, "adopt of {s:?} into {to:?}");
    if known.is_some() && !closed && target_live {
        let sock = cx.ext_mut().sock(s, "adopt");
        sock.ctx = to;
        sock.unlinked = false;
        sock.timeout = None;
        sock.long_timeout = None;
    }
    if let Some(sock) = cx.ext().socks.get(&s) {
        assert_eq!(cx.socket_context(s), Some(sock.ctx), "context after adopt");
    } else {
        assert_eq!(cx.socket_context(s), None, "released {s:?} has a context");
    }
}

fn timeout(cx: &mut Cx, s: SocketId, long: bool) {
    let w = cx.ext_mut();
    let n = u32::from(w.ops.u8());
    let (amount, unit) = if long {
        (n % 3, 60_000)
    } else {
        (n % 16, 1000)
    };
    let now = w.net.now_ms();
    if long {
        cx.long_timeout(s, amount);
    } else {
        cx.timeout(s, amount);
    }
    let w = cx.ext_mut();
    if w.closed(s) {
        return;
    }
    if let Some(sock) = w.socks.get_mut(&s) {
        let due = (amount > 0).then(|| now + u64::from(amount) * unit);
        if long {
            sock.long_timeout = due;
        } else {
            sock.timeout = due;
        }
    }
}

fn shutdown(cx: &mut Cx, s: SocketId) {
    let w = cx.ext_mut();
    let mut closes = false;
    if let Some(sock) = w.socks.get_mut(&s) {
        if sock.life == Life::Open && !sock.shut_wr {
            sock.shut_wr = true;
            sock.want_writable = false;
            closes = sock.got_end;
        }
    }
    cx.shutdown(s);
    if closes {
        let life = cx.ext().socks.get(&s).map(|x| x.life);
        assert_eq!(
            life,
            Some(Life::Closed),
            "shutdown after the peer's FIN did not close {s:?}"
        );
    }
}

fn addr(cx: &mut Cx, s: SocketId) {
    let mut buf = [0u8; 16];
    let n = cx.remote_address(s, &mut buf);
    let port = cx.remote_port(s);
    let local = cx.local_port(s);
    assert!(matches!(n, 0 | 4 | 16), "remote_address gave {n} bytes");
    if cx.ext().closed(s) || !cx.ext().socks.contains_key(&s) {
        assert_eq!((n, port, local), (0, None, None), "address of closed {s:?}");
    }
}

fn context_close(cx: &mut Cx, c: ContextId) {
    let members: Vec<SocketId> = cx
        .ext()
        .socks
        .iter()
        .filter(|(s, x)| x.ctx == c && !cx.ext().closed(**s))
        .map(|(s, _)| *s)
        .collect();
    // Its listen sockets close first, before any callback runs; listen sockets an on_close
    // creates in this context stay open.
    let w = cx.ext_mut();
    for l in w.lis.iter_mut().filter(|l| l.ctx == c && !l.closed) {
        l.closed = true;
        w.lis_closing += 1;
    }
    cx.context_close(c);
    for s in members {
        let Some(sock) = cx.ext().socks.get(&s) else {
            continue;
        };
        if sock.ctx == c && !cx.ext().in_connect_error.contains(&s) {
            assert!(
                matches!(sock.life, Life::Closed | Life::Failed),
                "context_close left {s:?} open"
            );
        }
    }
}

fn context_free(cx: &mut Cx, c: ContextId) {
    let w = cx.ext();
    let live = w.ctx_live(c);
    // Linked sockets keep a context busy: open ones, but not one in its on_connect_error
    // (unlinked before the callback) unless the callback adopted it back into a context.
    let busy = w
        .socks
        .iter()
        .any(|(s, x)| x.ctx == c && !w.closed(*s) && !x.unlinked)
        || w.lis.iter().any(|l| l.ctx == c && !l.closed);
    let r = cx.context_free(c);
    let w = cx.ext_mut();
    match r {
        Ok(serial) => {
            assert!(
                live && !busy,
                "context_free of {c:?} succeeded (live {live}, busy {busy}: {:?})",
                w.socks
                    .iter()
                    .filter(|(_, x)| x.ctx == c)
                    .map(|(s, x)| (s, x.life, x.unlinked))
                    .collect::<Vec<_>>()
            );
            let x = w
                .ctxs
                .iter_mut()
                .find(|x| x.id == c && !x.freed)
                .expect("live");
            assert_eq!(serial, x.serial, "context ext changed");
            x.freed = true;
        }
        Err(ContextError::InvalidContext) => assert!(!live, "live context {c:?} rejected"),
        Err(ContextError::Busy) => assert!(live && busy, "context {c:?} busy, model says not"),
        Err(ContextError::Capacity) => panic!("context_free: capacity error"),
    }
    // Freed handles stay rejected.
    if !cx.ext().ctx_live(c) {
        assert!(
            cx.context_ext(c).is_none(),
            "freed context {c:?} has an ext"
        );
    }
}

fn context_create(cx: &mut Cx) {
    let w = cx.ext_mut();
    let b = w.ops.u8();
    let parent = w.pick_ctx();
    let serial = w.next_serial();
    let live = w.ctxs.iter().filter(|x| !x.freed).count();
    let child = b % 2 == 1;
    let r = match (child, parent) {
        (true, Some(p)) => cx.context_create_child(p, serial).map(|c| (c, Some(p))),
        _ => cx
            .context_create(serial, callbacks(b & 3 == 0))
            .map(|c| (c, None)),
    };
    match r {
        Ok((c, parent)) => {
            assert!(live < CONTEXTS, "more contexts than slots");
            if let Some(p) = parent {
                assert!(cx.ext().ctx_live(p), "child of a freed context");
                assert_eq!(cx.context_parent(c), Some(p));
                if let Some(cbs) = cx.context_callbacks_mut(c) {
                    *cbs = callbacks(b % 4 == 1);
                }
            }
            cx.ext_mut().ctxs.push(Ctx {
                id: c,
                serial,
                freed: false,
            });
        }
        Err(ContextError::Capacity) => assert_eq!(live, CONTEXTS, "context capacity"),
        Err(ContextError::InvalidContext) => {
            assert!(
                parent.is_some_and(|p| !cx.ext().ctx_live(p)),
                "parent rejected"
            )
        }
        Err(ContextError::Busy) => panic!("context_create: busy"),
    }
}

fn new_ext() -> u64 {
    0
}

const UNIX_PATHS: [&str; 3] = ["/fz/a", "/fz/b", "/fz/c"];

fn listen(cx: &mut Cx) {
    let w = cx.ext_mut();
    let Some(c) = w.pick_ctx() else { return };
    let kind = w.ops.u8() % 6;
    let live = w.ctx_live(c);
    let taken_port = w.lis.iter().filter_map(|l| l.port).next().unwrap_or(0);
    let path = UNIX_PATHS[usize::from(kind) % UNIX_PATHS.len()];
    let target = match kind {
        0 | 5 => ListenTarget::Host {
            host: Some("127.0.0.1"),
            port: 0,
        },
        1 => ListenTarget::Host {
            host: None,
            port: 0,
        },
        2 => ListenTarget::Host {
            host: Some("::1"),
            port: 0,
        },
        3 => ListenTarget::Unix(path),
        _ => ListenTarget::Host {
            host: Some("127.0.0.1"),
            port: taken_port,
        },
    };
    let backlog = 1 + u32::from(w.ops.u8() % 4);
    let options = ListenOptions {
        exclusive_port: false,
        backlog,
    };
    match cx.listen(c, target, options, new_ext) {
        Ok(l) => {
            assert!(live, "listen on a freed context");
            assert_eq!(cx.listen_context(l), Some(c));
            let port = cx.listen_port(l);
            let path = matches!(target, ListenTarget::Unix(_)).then(|| path.to_owned());
            cx.ext_mut().lis.push(Lis {
                id: l,
                ctx: c,
                port,
                path,
                closed: false,
            });
        }
        Err(ListenError::InvalidContext) => assert!(!live, "listen refused a live context"),
        Err(ListenError::Capacity) | Err(ListenError::Os(_)) => {}
    }
}

fn listen_close(cx: &mut Cx, i: usize) {
    let l = cx.ext().lis[i].id;
    cx.listen_close(l);
    let w = cx.ext_mut();
    if !w.lis[i].closed {
        w.lis[i].closed = true;
        w.lis_closing += 1;
    }
    assert_eq!(cx.listen_context(l), None, "closed listener still answers");
}

fn connect(cx: &mut Cx) {
    let w = cx.ext_mut();
    let Some(c) = w.pick_ctx() else { return };
    let kind = w.ops.u8() % 8;
    let li = w.pick_lis();
    let live = w.ctx_live(c);
    let port = li.and_then(|i| w.lis[i].port).unwrap_or(1);
    let path = li
        .and_then(|i| w.lis[i].path.clone())
        .unwrap_or_else(|| "/fz/none".to_owned());
    let peer_port = match (kind, w.peer_port) {
        (1, None) => {
            let p = w.net.peer_listen(0);
            w.peer_port = Some(p);
            p
        }
        (_, p) => p.unwrap_or(1),
    };
    let target = match kind {
        0 | 6 => ConnectTarget::Host {
            host: "127.0.0.1",
            port,
            source: None,
        },
        1 => ConnectTarget::Host {
            host: "localhost",
            port: peer_port,
            source: None,
        },
        2 => ConnectTarget::Host {
            host: "127.0.0.1",
            port: 1,
            source: None,
        },
        3 => ConnectTarget::Host {
            host: "no.such.host.invalid",
            port,
            source: None,
        },
        4 => ConnectTarget::Unix(&path),
        5 => ConnectTarget::Host {
            host: "::1",
            port,
            source: Some("10.1.2.3"),
        },
        _ => ConnectTarget::Host {
            host: "::1",
            port,
            source: None,
        },
    };
    let serial = w.next_serial();
    let in_use = w.socks.len();
    match cx.connect(c, target, serial) {
        Ok(s) => {
            assert!(live, "connect from a freed context");
            let w = cx.ext_mut();
            let out = w.new_stream();
            let old = w.socks.insert(
                s,
                Sock {
                    serial,
                    life: Life::Connecting,
                    ctx: c,
                    out,
                    inb: Inbound::default(),
                    shut_wr: false,
                    shut_rd: false,
                    got_end: false,
                    want_writable: false,
                    timeout: None,
                    long_timeout: None,
                    closing: None,
                    closes: 0,
                    unlinked: false,
                },
            );
            assert!(old.is_none(), "connect reused the live handle {s:?}");
        }
        Err(ConnectError::InvalidContext) => assert!(!live, "connect refused a live context"),
        Err(ConnectError::Capacity) => {
            assert!(live, "capacity error for a freed context");
            assert_eq!(in_use, SOCKETS, "capacity error with free slots");
        }
        Err(ConnectError::Os(e)) => panic!("connect failed synchronously: {e}"),
    }
}

fn timer_delays(cx: &mut Cx) -> (u64, u64) {
    let w = cx.ext_mut();
    let ms = w.ops.pick(&[0, 1, 5, 50, 250, 999, 1000, 4000, 60_000, 7]);
    let rep = w.ops.pick(&[0, 0, 0, 1, 10, 100, 1000]);
    (ms, rep)
}

fn timer_create(cx: &mut Cx) {
    let w = cx.ext_mut();
    let fallthrough = w.ops.u8() % 2 == 1;
    let serial = w.next_serial();
    let live = w.timers.iter().filter(|x| !x.closed).count();
    match cx.timer_create(fallthrough, serial) {
        Ok(t) => {
            assert!(live < TIMERS, "more timers than slots");
            assert_eq!(cx.timer_is_armed(t), Some(false));
            cx.ext_mut().timers.push(Tmr {
                id: t,
                serial,
                fallthrough,
                closed: false,
                armed: None,
                last_fire: 0,
            });
        }
        Err(_) => assert_eq!(live, TIMERS, "timer capacity"),
    }
}

fn timer_set(cx: &mut Cx, t: TimerId, ms: u64, repeat: u64) {
    cx.timer_set(t, on_timer, ms, repeat);
    let iteration = cx.iteration_number();
    let w = cx.ext_mut();
    let now = w.net.now_ms();
    let late = w.after_timer_phase;
    if let Some(tm) = w.timers.iter_mut().find(|x| x.id == t && !x.closed) {
        tm.armed = (ms != 0 || repeat != 0).then(|| Armed {
            deadline: now.saturating_add(ms),
            repeat,
            iteration,
            late,
        });
    } else {
        assert_eq!(cx.timer_is_armed(t), None, "closed timer {t:?} armed");
    }
}

fn timer_close(cx: &mut Cx, t: TimerId) {
    let r = cx.timer_close(t);
    let w = cx.ext_mut();
    match w.timers.iter_mut().find(|x| x.id == t && !x.closed) {
        Some(tm) => {
            assert_eq!(r, Some(tm.serial), "timer_close ext");
            tm.closed = true;
        }
        None => assert_eq!(r, None, "closed timer {t:?} closed again"),
    }
    assert_eq!(cx.timer_ext(t), None, "closed timer {t:?} has an ext");
}

fn poll_ctl(cx: &mut Cx, i: usize) {
    let w = cx.ext_mut();
    let pm = w.polls[i];
    let how = w.ops.u8() % 6;
    let interest = [Interest::READABLE, Interest::WRITABLE, Interest::BOTH][usize::from(how % 3)];
    let p = pm.id;
    match how {
        0..=2 => {
            let r = cx.poll_start(p, interest);
            let w = cx.ext_mut();
            match r {
                Ok(()) => {
                    assert!(!pm.freed, "freed poll {p:?} started");
                    w.polls[i].started = true;
                    w.polls[i].interest = interest;
                }
                Err(PollError::InvalidHandle) => assert!(pm.freed, "live poll {p:?} rejected"),
                Err(e) => panic!("poll_start: {e}"),
            }
        }
        3 => {
            let r = cx.poll_stop(p);
            let w = cx.ext_mut();
            match r {
                Ok(()) => {
                    assert!(!pm.freed, "freed poll {p:?} stopped");
                    w.polls[i].started = false;
                    w.polls[i].interest = Interest::NONE;
                }
                Err(PollError::InvalidHandle) => assert!(pm.freed, "live poll {p:?} rejected"),
                Err(e) => panic!("poll_stop: {e}"),
            }
        }
        4 => {
            let r = cx.poll_free(p);
            let w = cx.ext_mut();
            if pm.freed {
                assert_eq!(r, None, "freed poll {p:?} freed again");
            } else {
                assert_eq!(r, Some(pm.serial), "poll_free ext");
                w.polls[i].freed = true;
                w.polls[i].started = false;
            }
        }
        _ => {
            let w = cx.ext_mut();
            let n = 1 + usize::from(w.ops.u8() % 32);
            if !pm.write_closed {
                w.net.pipe_write(pm.write_end, &vec![0x33; n]);
            }
        }
    }
    if pm.freed {
        assert_eq!(cx.poll_ext(p), None, "freed poll {p:?} has an ext");
    }
}

fn peer_send(cx: &mut Cx) {
    let w = cx.ext_mut();
    let Some(i) = w.pick_peer() else { return };
    let len = 1 + usize::from(w.ops.u8()) * 4;
    let out = w.peers[i].out;
    let chunk = stream_chunk(out, w.streams[usize::from(out)].sent, len);
    let n = w.net.peer_send(w.peers[i].id, &chunk);
    assert!(n == 0 || n == len, "peer_send queued {n} of {len}");
    w.streams[usize::from(out)].sent += n as u64;
}

// ---- top-level operations ----------------------------------------------------------------------

#[derive(Clone, Copy, Debug)]
enum Op {
    Run,
    RunIdle,
    Advance,
    PeerConnect,
    PeerSend,
    PeerRecv,
    PeerShutdown,
    PeerClose,
    PeerReset,
    PeerAccept,
    Connect,
    Listen,
    ListenClose,
    Sock,
    Stale,
    CtxCreate,
    CtxClose,
    CtxFree,
    TimerCreate,
    TimerSet,
    TimerClose,
    TimerStale,
    PollCreate,
    PollCtl,
    PipeWrite,
    PipeClose,
    Wake,
    FdLimit,
    AdoptAccepted,
    SetFaults,
}

fn faults_from(ops: &mut Ops) -> Faults {
    let mut pm = || (u32::from(ops.u8()) * 4).min(1000);
    Faults {
        partial_write: pm(),
        would_block_send: pm(),
        reset: pm(),
        refuse_connect: pm(),
        emfile_accept: pm(),
        spurious_readiness: pm(),
        delay_delivery: pm(),
        hangup_with_unread: pm(),
    }
}

fn run_once(l: &mut Loop<H>, timeout: Option<u64>) {
    let wake = l.ext().wake_outside;
    l.run_once(timeout).expect("run_once");
    let w = l.ext_mut();
    w.after_timer_phase = false;
    w.lis_closing = 0;
    assert!(!(wake && w.wake_outside), "a wake-up was not delivered");
    let now = l.now_ms();
    let iteration = l.iteration_number();
    let w = l.ext();
    for (s, x) in &w.socks {
        assert!(
            matches!(x.life, Life::Open | Life::Connecting),
            "{s:?} ({:?}) not released at the end of the iteration",
            x.life
        );
    }
    for t in w.timers.iter().filter(|t| !t.closed) {
        if let Some(a) = t.armed {
            let waits = a.late && a.iteration == iteration;
            assert!(
                a.deadline > now || waits,
                "timer {:?} due at {} missed (now {now})",
                t.id,
                a.deadline
            );
        }
    }
}

fn step(l: &mut Loop<H>) {
    let w = l.ext_mut();
    let op = w.ops.pick(w.target.ops());
    if w.trace {
        eprintln!("op {op:?}");
    }
    match op {
        Op::Run => {
            let t = l.ext_mut().ops.pick(&[
                Some(0),
                Some(1),
                Some(10),
                Some(100),
                Some(1000),
                Some(4000),
                Some(65_000),
                None,
            ]);
            run_once(l, t);
        }
        Op::RunIdle => run_once(l, None),
        Op::Advance => {
            let w = l.ext_mut();
            let ms = w
                .ops
                .pick(&[1, 10, 250, 999, 1000, 4000, 15_000, 61_000, 250_000]);
            w.net.advance(ms);
        }
        Op::PeerConnect => {
            let w = l.ext_mut();
            if let Some(i) = w.pick_lis() {
                let r = match (w.lis[i].port, &w.lis[i].path) {
                    (Some(port), _) => w.net.peer_connect(port),
                    (None, Some(path)) => w.net.peer_connect_unix(path),
                    (None, None) => return,
                };
                if let Ok(p) = r {
                    let out = w.new_stream();
                    w.peers.push(Peer {
                        id: p,
                        out,
                        inb: Inbound::default(),
                        gone: false,
                    });
                }
            }
        }
        Op::PeerSend => peer_send(l),
        Op::PeerRecv => {
            let w = l.ext_mut();
            if let Some(i) = w.pick_peer() {
                peer_recv(w, i);
            }
        }
        Op::PeerShutdown | Op::PeerClose | Op::PeerReset => {
            let w = l.ext_mut();
            if let Some(i) = w.pick_peer() {
                let p = w.peers[i].id;
                match op {
                    Op::PeerShutdown => w.net.peer_shutdown(p),
                    Op::PeerClose => {
                        w.net.peer_close(p);
                        w.peers[i].gone = true;
                    }
                    _ => {
                        w.net.peer_reset(p);
                        w.peers[i].gone = true;
                    }
                }
            }
        }
        Op::PeerAccept => {
            let w = l.ext_mut();
            if let Some(port) = w.peer_port {
                if let Some(p) = w.net.peer_accept(port) {
                    let out = w.new_stream();
                    w.peers.push(Peer {
                        id: p,
                        out,
                        inb: Inbound::default(),
                        gone: false,
                    });
                }
            }
        }
        Op::Connect => connect(l),
        Op::Listen => listen(l),
        Op::ListenClose => {
            if let Some(i) = l.ext_mut().pick_lis() {
                listen_close(l, i);
            }
        }
        Op::Sock => {
            let w = l.ext_mut();
            if let Some(s) = w.pick_sock() {
                let acts = w.target.acts();
                let a = acts[w.ops.below(acts.len())];
                act(l, Some(s), a);
            }
        }
        Op::Stale => stale(l),
        Op::CtxCreate => context_create(l),
        Op::CtxClose => {
            if let Some(c) = l.ext_mut().pick_ctx() {
                context_close(l, c);
            }
        }
        Op::CtxFree => {
            if let Some(c) = l.ext_mut().pick_ctx() {
                context_free(l, c);
            }
        }
        Op::TimerCreate => timer_create(l),
        Op::TimerSet => act(l, None, Act::TimerSet),
        Op::TimerClose => act(l, None, Act::TimerClose),
        Op::TimerStale => {
            let w = l.ext_mut();
            if let Some(i) = w.pick_timer() {
                let t = w.timers[i];
                if t.closed {
                    timer_set(l, t.id, 0, 1);
                    assert_eq!(l.timer_ext(t.id), None);
                    assert_eq!(l.timer_close(t.id), None);
                }
            }
        }
        Op::PollCreate => poll_create(l),
        Op::PollCtl => act(l, None, Act::PollCtl),
        Op::PipeWrite => {
            let w = l.ext_mut();
            if let Some(i) = w.pick_poll() {
                let pm = w.polls[i];
                let n = 1 + usize::from(w.ops.u8());
                if !pm.write_closed {
                    w.net.pipe_write(pm.write_end, &vec![0x44; n]);
                }
            }
        }
        Op::PipeClose => {
            let w = l.ext_mut();
            if let Some(i) = w.pick_poll() {
                let pm = w.polls[i];
                // Never close a descriptor a live poll watches (that is the user's bug).
                if !pm.write_closed && (pm.fd != pm.write_end || pm.freed) {
                    w.polls[i].write_closed = true;
                    l.shim().close(pm.write_end);
                }
            }
        }
        Op::Wake => {
            let w = l.ext_mut();
            w.wake_outside = true;
            if w.ops.u8() & 1 == 0 {
                l.wakeup();
            } else {
                usockets_core::Wake::wake(&l.waker());
            }
        }
        Op::FdLimit => {
            let w = l.ext_mut();
            let b = w.ops.u8();
            let limit = (b != 0).then(|| w.net.open_fds() + usize::from(b % 4));
            w.net.set_fd_limit(limit);
        }
        Op::AdoptAccepted => adopt_accepted(l),
        Op::SetFaults => {
            let w = l.ext_mut();
            let f = faults_from(&mut w.ops);
            w.net.set_faults(f);
        }
    }
}

fn peer_recv(w: &mut World, i: usize) {
    let p = w.peers[i].id;
    let data = w.net.peer_recv(p);
    let World { peers, streams, .. } = w;
    peers[i].inb.feed(streams, &data, "peer_recv");
    if !peers[i].gone && w.net.peer_got_fin(p) && !w.net.peer_is_reset(p) {
        peers[i].inb.check_complete(streams, "peer FIN");
    }
}

fn stale(l: &mut Loop<H>) {
    let w = l.ext_mut();
    if w.released.is_empty() {
        return;
    }
    let s = w.released[w.ops.below(w.released.len())];
    if w.socks.contains_key(&s) {
        return;
    }
    assert_eq!(l.is_closed(s), None, "released {s:?} accepted");
    assert_eq!(l.socket_ext(s), None, "released {s:?} has an ext");
    assert_eq!(l.socket_context(s), None, "released {s:?} has a context");
    assert_eq!(l.socket_fd(s), None, "released {s:?} has a descriptor");
    let before = l.ext().stats;
    let acts = l.ext().target.acts();
    let a = acts[l.ext_mut().ops.below(acts.len())];
    if matches!(
        a,
        Act::Write
            | Act::Write2
            | Act::WriteMore
            | Act::Close
            | Act::Adopt
            | Act::Timeout
            | Act::LongTimeout
            | Act::Shutdown
            | Act::ShutdownRead
            | Act::Pause
            | Act::Resume
            | Act::LowPrio
            | Act::CloseConnecting
            | Act::Addr
            | Act::Flush
    ) {
        act(l, Some(s), a);
    }
    assert_eq!(l.ext().stats, before, "a released handle caused callbacks");
    assert_eq!(l.is_closed(s), None);
}

fn poll_create(l: &mut Loop<H>) {
    let w = l.ext_mut();
    let fallthrough = w.ops.u8() % 2 == 1;
    let read = w.ops.below(3) != 0;
    let serial = w.next_serial();
    let live = w.polls.iter().filter(|x| !x.freed).count();
    let p = match l.poll_create(fallthrough, serial) {
        Ok(p) => p,
        Err(_) => {
            assert_eq!(live, POLLS, "poll capacity");
            return;
        }
    };
    assert!(live < POLLS, "more polls than slots");
    let (r, wr) = l.ext().net.user_pipe();
    let fd = if read { r } else { wr };
    l.poll_init(p, fd).expect("poll_init");
    l.poll_set_callback(p, on_poll).expect("poll_set_callback");
    assert_eq!(l.poll_fd(p), Some(fd));
    l.ext_mut().polls.push(Pol {
        id: p,
        serial,
        fallthrough,
        freed: false,
        fd,
        read_end: r,
        write_end: wr,
        write_closed: false,
        started: false,
        interest: Interest::NONE,
    });
}

fn adopt_accepted(l: &mut Loop<H>) {
    let w = l.ext_mut();
    if w.taken.is_empty() {
        return;
    }
    let fd = w.taken.remove(0);
    let Some(c) = w.pick_ctx() else {
        w.taken.push(fd);
        return;
    };
    let live = w.ctx_live(c);
    let in_use = w.socks.len();
    let serial = w.next_serial();
    w.adopting = Some(serial);
    let r = l.adopt_accepted(c, fd, serial, &[127, 0, 0, 1]);
    let w = l.ext_mut();
    w.adopting = None;
    match r {
        Ok(s) => {
            assert!(live, "adopted into a freed context");
            assert!(w.socks.contains_key(&s), "adopt_accepted without on_open");
        }
        Err(e) => {
            match e {
                ConnectError::InvalidContext => assert!(!live, "live context rejected"),
                ConnectError::Capacity => assert_eq!(in_use, SOCKETS, "capacity with free slots"),
                ConnectError::Os(e) => panic!("adopt_accepted of a fresh descriptor: {e}"),
            }
            w.taken.push(fd);
        }
    }
}

/// The checks after every top-level step.
fn check_world(l: &mut Loop<H>) {
    let w = l.ext();
    assert_eq!(w.depth, 0);
    for (&s, x) in &w.socks {
        assert_eq!(
            l.is_closed(s),
            Some(w.closed(s)),
            "{s:?} is {:?} in the model",
            x.life
        );
        assert_eq!(l.socket_ext(s), Some(&x.serial), "ext of {s:?}");
        if !w.closed(s) {
            assert_eq!(l.socket_context(s), Some(x.ctx), "context of {s:?}");
        }
    }
    for &s in &w.released {
        assert_eq!(l.is_closed(s), None, "released {s:?} still accepted");
    }
    for c in &w.ctxs {
        let want = (!c.freed).then_some(&c.serial);
        assert_eq!(l.context_ext(c.id), want, "context {:?}", c.id);
    }
    for x in &w.lis {
        assert_eq!(
            l.listen_context(x.id).is_some(),
            !x.closed,
            "listener {:?}",
            x.id
        );
    }
    for t in &w.timers {
        let want = (!t.closed).then_some(&t.serial);
        assert_eq!(l.timer_ext(t.id), want, "timer {:?}", t.id);
        if !t.closed {
            assert_eq!(
                l.timer_is_armed(t.id),
                Some(t.armed.is_some()),
                "timer {:?} armed",
                t.id
            );
        }
    }
    for p in &w.polls {
        let want = (!p.freed).then_some(&p.serial);
        assert_eq!(l.poll_ext(p.id), want, "poll {:?}", p.id);
    }
    let slots = [
        w.socks.len(),
        w.lis.iter().filter(|x| !x.closed).count() + w.lis_closing,
        w.ctxs.iter().filter(|x| !x.freed).count(),
        w.timers.iter().filter(|x| !x.closed).count(),
        w.polls.iter().filter(|x| !x.freed).count(),
    ];
    assert_eq!(
        l.slots_in_use(),
        slots,
        "arena occupancy differs from the model"
    );
    assert_eq!(
        l.is_alive(),
        w.keepalive() > 0,
        "is_alive differs from the model ({} keep it alive)",
        w.keepalive()
    );
}

/// Closes everything, runs the loop dry and checks that nothing is left.
fn drain(l: &mut Loop<H>) {
    let w = l.ext_mut();
    w.draining = true;
    w.net.set_faults(Faults::NONE);
    w.net.set_fd_limit(None);
    for i in 0..w.peers.len() {
        peer_recv(l.ext_mut(), i);
    }
    let timers: Vec<TimerId> = l
        .ext()
        .timers
        .iter()
        .filter(|t| !t.closed)
        .map(|t| t.id)
        .collect();
    for t in timers {
        timer_close(l, t);
    }
    let polls = l.ext().polls.clone();
    for (i, p) in polls.iter().enumerate() {
        if !p.freed {
            assert_eq!(l.poll_free(p.id), Some(p.serial));
            l.ext_mut().polls[i].freed = true;
        }
        l.shim().close(p.read_end);
        if !p.write_closed {
            l.shim().close(p.write_end);
        }
    }
    for fd in std::mem::take(&mut l.ext_mut().taken) {
        l.shim().close(fd);
    }
    let ctxs: Vec<ContextId> = l
        .ext()
        .ctxs
        .iter()
        .filter(|c| !c.freed)
        .map(|c| c.id)
        .collect();
    for &c in &ctxs {
        context_close(l, c);
    }
    check_world(l);
    run_once(l, Some(0));
    check_world(l);
    run_once(l, Some(0));
    check_world(l);
    let w = l.ext();
    assert!(
        w.socks.is_empty(),
        "sockets left after draining: {:?}",
        w.socks.keys()
    );
    assert_eq!(
        l.slots_in_use(),
        [0, 0, ctxs.len(), 0, 0],
        "slots left after draining"
    );
    for c in ctxs {
        context_free(l, c);
    }
    assert_eq!(l.slots_in_use(), [0; 5], "every slot free");
    assert!(!l.is_alive(), "alive after draining");
    let w = l.ext_mut();
    for i in 0..w.peers.len() {
        peer_recv(w, i);
    }
}

/// Runs one input for `target`: decodes it, drives the loop, checks every invariant (panicking
/// on the first broken one), drains the loop and checks nothing is left.
pub fn run(target: Target, data: &[u8]) -> Report {
    let (ops, fault_bytes) = split(data);
    let mut ops = Ops::new(ops);
    let settings = Settings {
        sweep_period_ms: ops.pick(&[1000, 4000, 250, 2000]),
        low_priority_budget: ops.pick(&[1, 5]),
        max_reads_per_event: ops.pick(&[1, 2, 4]),
        max_accepts_per_event: ops.pick(&[1, 2, 256]),
        accept_backoff_ms: ops.pick(&[250, 10, 1000]),
    };
    let recv = ops.pick(&[64usize, 512]);
    let events = ops.pick(&[1usize, 4, 16]);
    let faults = faults_from(&mut ops);
    let net = SimNet::new(faults, Box::new(ByteSource::new(fault_bytes.to_vec())));
    let memory = Memory {
        sockets: VecStore::new(SOCKETS),
        listeners: VecStore::new(LISTENERS),
        contexts: VecStore::new(CONTEXTS),
        timers: VecStore::new(TIMERS),
        polls: VecStore::new(POLLS),
        recv: vec![0u8; recv + 2 * usockets_core::RECV_PADDING],
        events: vec![Event::EMPTY; events],
    };
    let world = World {
        target,
        ops,
        net: net.clone(),
        depth: 0,
        draining: false,
        after_timer_phase: false,
        stats: Stats::default(),
        serial: 0,
        socks: BTreeMap::new(),
        released: Vec::new(),
        streams: Vec::new(),
        peers: Vec::new(),
        peer_port: None,
        ctxs: Vec::new(),
        lis: Vec::new(),
        lis_closing: 0,
        timers: Vec::new(),
        polls: Vec::new(),
        taken: Vec::new(),
        adopting: None,
        in_connect_error: Vec::new(),
        wake_outside: false,
        trace: std::env::var_os("USOCKETS_FUZZ_TRACE").is_some(),
    };
    let loop_callbacks = LoopCallbacks {
        wakeup: Some(on_wakeup),
        pre: Some(on_pre),
        post: Some(on_post),
        released: Some(on_released),
    };
    let mut l = Loop::<H>::new(net.shim(), memory, world, loop_callbacks, settings)
        .expect("loop construction");
    // A server context with a listener and a child context to adopt into.
    let serial = l.ext_mut().next_serial();
    let pre_open = l.ext_mut().ops.u8() % 2 == 1;
    let a = l
        .context_create(serial, callbacks(pre_open))
        .expect("first context");
    let serial2 = l.ext_mut().next_serial();
    let b = l.context_create_child(a, serial2).expect("child context");
    *l.context_callbacks_mut(b).expect("child") = callbacks(false);
    l.ext_mut().ctxs.extend([
        Ctx {
            id: a,
            serial,
            freed: false,
        },
        Ctx {
            id: b,
            serial: serial2,
            freed: false,
        },
    ]);
    let ls = l
        .listen(
            a,
            ListenTarget::Host {
                host: Some("127.0.0.1"),
                port: 0,
            },
            ListenOptions::default(),
            new_ext,
        )
        .expect("first listener");
    let port = l.listen_port(ls);
    l.ext_mut().lis.push(Lis {
        id: ls,
        ctx: a,
        port,
        path: None,
        closed: false,
    });
    l.integrate();
    check_world(&mut l);
    let mut steps = 0;
    while !l.ext().ops.done() && steps < MAX_STEPS {
        step(&mut l);
        check_world(&mut l);
        steps += 1;
    }
    drain(&mut l);
    let stats = l.ext().stats;
    drop(l);
    assert_eq!(net.open_fds(), 0, "descriptors left open after draining");
    Report {
        stats,
        faults: net.fault_counts(),
        steps,
    }
}
