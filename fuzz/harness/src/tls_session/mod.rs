//! The `tls_session` target: a TLS client socket and a TLS server socket of one loop on the
//! simulated OS finish a handshake (the same one in every run: [`crypto`]), then the input
//! drives both ends and the bytes between them.
//!
//! The two sockets are not connected to each other but each to a peer of the run's
//! [`proxy`](proxy::Proxy), which passes records on when the loop runs, or in the pieces the
//! input asks for, and can tamper with them. The input writes (`write`, `write2`), shuts down,
//! closes, pauses, resumes, adopts sockets into other contexts (TLS or plain), arms timeouts,
//! moves the clock and runs the loop; inside callbacks it may do the same (`reactive` runs).
//! The simulated OS adds its own faults (short writes, would-block, delays, spurious
//! readiness, resets, hang-ups), drawn from the input.
//!
//! ## Input
//!
//! ```text
//! [setup][early][n][faults: n bytes][ops...]
//! ```
//!
//! * `setup`: bits 0-1 the configuration ([`crypto::pair`]: TLS 1.3 or 1.2, AES-GCM or
//!   ChaCha20), bit 2 callbacks act (each callback reads one action byte: [`react`]), bit 3
//!   both ends write [`length`]`(early)` bytes in `on_open` (before the handshake ends),
//!   bits 4-6 the fault profile ([`faults`]), on from the end of the handshake on, bit 7 a
//!   receive buffer of 1500 bytes instead of 16 KiB (records arrive in pieces).
//! * `faults`: the simulated OS's decisions ([`ByteSource`]); none once used up.
//! * `ops`: one operation per step ([`step`]). The low nibble of its byte says which, bit 4
//!   which side (0 the client, 1 the server) or direction (named by its sender), bits 5-7 an
//!   argument `a`; some read more bytes. A byte past the end reads as 0; a run takes at most
//!   [`MAX_STEPS`] operations.
//!
//! | nibble | operation | more bytes |
//! |---:|---|---|
//! | 0 | run the loop `a % 4 + 1` times, the proxy passing everything on first (unless `a & 4`) | |
//! | 1 | the side writes [`length`]`(n)` bytes of its stream | n |
//! | 2 | the same with `write2`, cut at `cut / 255` | n, cut |
//! | 3 | the proxy passes `1 + m · 2^a` bytes of the direction on | m |
//! | 4 | the proxy flips bit `a` of a held byte | position (2) |
//! | 5 | the proxy inserts bytes of kind `a` (raw, alert, ChangeCipherSpec, forged header, replayed, reflected or truncated record, empty record: [`inject`]) | position, ... |
//! | 6 | the proxy drops `1 + k` held bytes | position, k |
//! | 7, 8 | the side shuts down (close_notify), closes | |
//! | 9 | the side is adopted into context `a % 4` (client TLS, server TLS, both, plain) | |
//! | 10, 11 | the side pauses, resumes | |
//! | 12 | the side's timeout: `a % 4 + 1` s | |
//! | 13 | the clock moves `(t + 1) · 32` ms, one iteration | t |
//! | 14 | the proxy ends the direction: FIN (`a` even) or reset | |
//! | 15 | the side shuts its read side down | |
//!
//! After the last op the run drains: faults off, both ends resumed, the loop run until nothing
//! moves; then it closes what is left and frees the contexts.
//!
//! ## Invariants (a panic when broken)
//!
//! * Plaintext delivered to a side is always a prefix of what the other side's writes
//!   accepted: byte for byte, nothing lost in the middle, nothing twice, nothing in the wrong
//!   order; never during the handshake. This holds after tampering too (AEAD).
//! * With nothing done to a direction (no tampering, no FIN or reset by the proxy, no lossy OS
//!   fault): when the library closes the receiver while the sender, still open, has shut down
//!   cleanly, the receiver has every byte (unless paused or read-shut: a hang-up closes those
//!   without reading); after draining, a receiver whose sender is open and not shut down has
//!   every byte, and one whose sender is gone (shut down or closed) is closed.
//! * `on_open` once and `on_close` once per socket; no callback for a closed socket; no
//!   `on_end` (a TLS socket closes on FIN); `on_timeout` never early, never unarmed; every
//!   callback's socket is in the context the run last adopted it into; a close by the run
//!   reports its code, one by the library code 0.
//! * Writes after shutdown or close accept nothing; an adopted socket keeps its session,
//!   handshake done.
//! * Descriptors (`SimNet::open_fds`) and socket slots (`slots_in_use`) match the open sockets
//!   after every step; at the end, everything closed and freed, nothing is left.
//!
//! Garbage never reaches a side that has shut down, and a side that garbage may still reach
//! does not shut down: rustls debug-asserts otherwise (see [`shutdown`]).

mod crypto;
mod proxy;

use std::sync::OnceLock;

use usockets_core::{
    Capacity, CloseCause, Config, ConnectTarget, ContextCallbacks, ContextId, GrowingStorage,
    ListenId, ListenOptions, ListenTarget, Loop, LoopCallbacks, OsError, RecvBuf, Settings,
    SocketId,
};
use usockets_shim_sim::{ByteSource, Faults, SimNet, SimShim};
use usockets_tls::{Tls, TlsContext};

use proxy::Proxy;

struct SessionH;

impl Config for SessionH {
    type Shim = SimShim;
    type LoopExt = World;
    /// The context's index in [`World::ctxs`].
    type ContextExt = u8;
    /// The socket's side: 0 the client, 1 the server.
    type SocketExt = u8;
    type TimerExt = ();
    type PollExt = ();
    type Reason = u32;
    type Storage = GrowingStorage<Self>;
    type Layer = Tls;
}

type Cx = usockets_core::Cx<SessionH>;

const SIDE: [&str; 2] = ["client", "server"];

/// The most operations a run takes from its input (the rest is ignored): plenty for any
/// scenario, and a bound on how long a run takes however long the fuzzer grows its input.
const MAX_STEPS: usize = 256;

/// Close codes the run uses (the library closes with 0).
const CLOSE_OP: i32 = 7;
const CLOSE_ACTION: i32 = 8;

/// Where a socket is in its life, as the run sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Life {
    /// Connecting or not yet accepted.
    Unopened,
    Open,
    /// Closed; its slot is released at the end of the loop iteration.
    Closed,
    Released,
}

/// The run's model of one side.
struct End {
    s: Option<SocketId>,
    life: Life,
    opens: u32,
    closes: u32,
    /// Bytes its writes accepted.
    sent: usize,
    /// Plaintext delivered to it.
    got: usize,
    /// The context it is in (index into [`World::ctxs`]).
    ctx: usize,
    /// The run shut it down.
    shut: bool,
    /// The run shut its read side down.
    shut_read: bool,
    /// The run paused it (and did not resume it since).
    paused: bool,
    /// The code of the run's close in progress.
    closing: Option<i32>,
    /// When its timeout may fire, at the earliest.
    timeout_due: Option<u64>,
}

impl End {
    fn new() -> End {
        End {
            s: None,
            life: Life::Unopened,
            opens: 0,
            closes: 0,
            sent: 0,
            got: 0,
            ctx: 0,
            shut: false,
            shut_read: false,
            paused: false,
            closing: None,
            timeout_due: None,
        }
    }
}

/// What a run did, for tests (determinism, and what the seeds reach).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SessionReport {
    /// The configuration (see `crypto::pair`).
    pub variant: u8,
    /// Operations run, by kind (the low nibble of the op byte).
    pub ops: [u32; 16],
    /// Actions taken inside callbacks.
    pub actions: u32,
    /// Bytes accepted by each side's writes.
    pub sent: [usize; 2],
    /// Plaintext delivered to each side.
    pub got: [usize; 2],
    /// Directions the proxy tampered with.
    pub tampered: [bool; 2],
    /// Faults the simulated OS injected.
    pub faults: u64,
    /// `on_timeout` calls.
    pub timeouts: u32,
    /// Bytes the proxy passed on, per direction.
    pub forwarded: [usize; 2],
    /// A digest of everything the proxy passed on.
    pub digest: u64,
}

/// The loop's ext: the model, the input and the proxy.
struct World {
    net: SimNet,
    input: Vec<u8>,
    pos: usize,
    /// Callbacks read and take an action.
    reactive: bool,
    /// The handshake is being set up: callbacks take no action.
    setup: bool,
    early: usize,
    ends: [End; 2],
    ctxs: Vec<ContextId>,
    listener: Option<ListenId>,
    proxy: Proxy,
    /// Direction `d` was tampered with, truncated or reset by the proxy.
    tampered: [bool; 2],
    /// Bytes of direction `d` were changed, dropped or made up (see [`shutdown`]).
    garbage: [bool; 2],
    trace: bool,
    report: SessionReport,
}

impl World {
    fn byte(&mut self) -> u8 {
        let b = self.input.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        b
    }

    fn done(&self) -> bool {
        self.pos >= self.input.len()
    }

    /// Whether the simulated OS lost bytes of any direction (a reset or a hang-up).
    fn lossy(&self) -> bool {
        let f = self.net.fault_counts();
        f.reset + f.hangup_with_unread > 0
    }

    /// Whether the proxy may change the bytes of direction `d`: not once its receiver has shut
    /// down (see [`shutdown`]).
    fn tamper_ok(&self, d: usize) -> bool {
        !self.ends[1 - d].shut
    }

    /// Direction `d` got garbage, if `changed`.
    fn garbled(&mut self, d: usize, changed: bool) {
        self.tampered[d] |= changed;
        self.garbage[d] |= changed;
    }

    fn open_sockets(&self) -> usize {
        self.ends.iter().filter(|e| e.life == Life::Open).count()
    }
}

// ---- the plaintext each side writes ----------------------------------------------------------

/// The pattern's period: longer than any one write, so a byte lost, repeated or reordered shows.
const PERIOD: usize = 65_521;
/// Where the server's stream starts in the pattern (the client's starts at 0): the two streams
/// of a run (at most [`WRITE_BUDGET`] bytes together) use different parts of it, so a record
/// delivered to the wrong side never passes for the right one.
const SERVER_PHASE: usize = 32_760;
/// The longest write (see [`length`]).
const MAX_WRITE: usize = 20_480;
/// The most plaintext both sides together write in a run: two records' worth, and little
/// enough that a run stays short (encrypting, copying and checking bytes is most of the work
/// of a run with many writes; more bytes add little coverage past a few records).
const WRITE_BUDGET: usize = 32 * 1024;

fn table() -> &'static [u8] {
    static TABLE: OnceLock<Vec<u8>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut rng = usockets_shim_sim::SeededRng::new(0x0070_6c61_696e);
        let mut t: Vec<u8> = (0..PERIOD).map(|_| rng.next_u64() as u8).collect();
        // Twice over, so that every `len <= PERIOD` bytes from any phase are one slice.
        t.extend_from_within(..);
        t
    })
}

/// Bytes `off..off + len` of side `side`'s stream (`len` at most [`PERIOD`]).
fn pattern(side: usize, off: usize, len: usize) -> &'static [u8] {
    let start = (off + side * SERVER_PHASE) % PERIOD;
    &table()[start..start + len]
}

/// Whether `data` is bytes `off..` of side `side`'s stream.
fn is_stream(side: usize, off: usize, data: &[u8]) -> bool {
    data.chunks(PERIOD)
        .enumerate()
        .all(|(i, c)| c == pattern(side, off + i * PERIOD, c.len()))
}

/// A write length from one byte, spread over magnitudes: the low five bits a mantissa
/// (1..=32), the high three a unit. A quarter of all bytes give 1..=32 bytes, one in eight
/// 640..=[`MAX_WRITE`] (more than one record of 16 KiB from 16,640 up).
fn length(b: u8) -> usize {
    const UNIT: [usize; 8] = [1, 1, 2, 4, 16, 64, 256, 640];
    (1 + usize::from(b & 31)) * UNIT[usize::from(b >> 5)]
}

// ---- what the run and the callbacks do -------------------------------------------------------

fn trace(cx: &Cx, what: std::fmt::Arguments<'_>) {
    if cx.ext().trace {
        eprintln!("[{} ms] {what}", cx.ext().net.now_ms());
    }
}

/// Side `side` writes `len` bytes of its stream (with `write2`, cut at `cut`, if given).
fn write(cx: &mut Cx, side: usize, len: usize, cut: Option<usize>) {
    let Some(s) = cx.ext().ends[side].s else {
        return;
    };
    let w = cx.ext();
    let off = w.ends[side].sent;
    let room = WRITE_BUDGET.saturating_sub(w.ends[0].sent + w.ends[1].sent);
    let data = pattern(side, off, len.min(MAX_WRITE).min(room));
    if data.is_empty() {
        return;
    }
    let n = match cut {
        Some(h) => {
            let h = h.min(data.len());
            cx.write2(s, &data[..h], &data[h..])
        }
        None => cx.write(s, data, false),
    };
    trace(
        cx,
        format_args!("{} writes {} (cut {cut:?}): {n}", SIDE[side], data.len()),
    );
    assert!(n <= data.len(), "write took {n} of {} bytes", data.len());
    let e = &mut cx.ext_mut().ends[side];
    if e.life != Life::Open || e.shut {
        assert_eq!(
            n, 0,
            "a write on the {} socket took {n} bytes while it is {:?} (shut down: {})",
            SIDE[side], e.life, e.shut
        );
    }
    e.sent += n;
}

/// Side `side` shuts down (sends close_notify), unless garbage is on its way to it.
///
/// rustls 0.23 debug-asserts that a session sends no alert after its close_notify
/// (`CommonState::send_fatal_alert`), yet one that has sent close_notify and then receives
/// a bad record wants to send a fatal alert: a debug build panics there (rustls issue 959),
/// a release build sends the alert. The layer cannot tell bad records from good ones before
/// rustls reads them, and a session must keep reading after its close_notify, so the run
/// keeps the two apart: a side that may still receive garbage does not shut down, and no
/// garbage goes to a side that has shut down (see `tamper_ok`).
fn shutdown(cx: &mut Cx, side: usize) {
    let Some(s) = cx.ext().ends[side].s else {
        return;
    };
    if cx.ext().garbage[1 - side] {
        trace(
            cx,
            format_args!("{} does not shut down: garbage may reach it", SIDE[side]),
        );
        return;
    }
    trace(cx, format_args!("{} shuts down", SIDE[side]));
    if cx.ext().ends[side].life == Life::Open {
        cx.ext_mut().ends[side].shut = true;
    }
    cx.shutdown(s);
}

fn close(cx: &mut Cx, side: usize, code: i32) {
    let Some(s) = cx.ext().ends[side].s else {
        return;
    };
    trace(cx, format_args!("{} closes ({code})", SIDE[side]));
    let open = cx.ext().ends[side].life == Life::Open;
    if open {
        cx.ext_mut().ends[side].closing = Some(code);
    }
    cx.close(s, code, None);
    let e = &mut cx.ext_mut().ends[side];
    if open {
        assert_eq!(e.life, Life::Closed, "close ran no on_close");
    }
    e.closing = None;
}

fn adopt(cx: &mut Cx, side: usize, k: usize) {
    let Some(s) = cx.ext().ends[side].s else {
        return;
    };
    let target = cx.ext().ctxs[k];
    trace(cx, format_args!("{} adopted into context {k}", SIDE[side]));
    let r = cx.adopt(s, target);
    match cx.ext().ends[side].life {
        Life::Open => {
            assert_eq!(r, Some(s), "adopt changed or lost an open socket");
            assert_eq!(cx.socket_context(s), Some(target), "adopted elsewhere");
            assert!(cx.is_layered(s), "adoption made the socket plain");
            let info = usockets_tls::info(cx, s).expect("the session survives adoption");
            assert!(!info.handshaking, "adoption restarted the handshake");
            let e = &mut cx.ext_mut().ends[side];
            e.ctx = k;
            e.timeout_due = None;
        }
        Life::Closed => assert_eq!(r, Some(s), "a closed socket comes back unchanged"),
        Life::Released => assert_eq!(r, None, "a released handle was adopted"),
        Life::Unopened => {}
    }
}

fn pause(cx: &mut Cx, side: usize, on: bool) {
    if let Some(s) = cx.ext().ends[side].s {
        trace(
            cx,
            format_args!("{} {}", SIDE[side], if on { "paused" } else { "resumed" }),
        );
        cx.ext_mut().ends[side].paused = on;
        if on {
            cx.pause(s);
        } else {
            cx.resume(s);
        }
    }
}

fn timeout(cx: &mut Cx, side: usize, seconds: u32) {
    let Some(s) = cx.ext().ends[side].s else {
        return;
    };
    trace(cx, format_args!("{} timeout {seconds} s", SIDE[side]));
    let now = cx.ext().net.now_ms();
    cx.timeout(s, seconds);
    let e = &mut cx.ext_mut().ends[side];
    if e.life == Life::Open {
        e.timeout_due = Some(now + u64::from(seconds) * 1000);
    }
}

fn shutdown_read(cx: &mut Cx, side: usize) {
    let Some(s) = cx.ext().ends[side].s else {
        return;
    };
    trace(cx, format_args!("{} shuts its read side down", SIDE[side]));
    if cx.ext().ends[side].life == Life::Open {
        cx.ext_mut().ends[side].shut_read = true;
    }
    cx.shutdown_read(s);
}

/// A callback's action (`reactive` runs only): one byte, sometimes one more.
fn react(cx: &mut Cx, side: usize) {
    let w = cx.ext_mut();
    if !w.reactive || w.setup || w.done() {
        return;
    }
    let a = w.byte();
    let other = 1 - side;
    let who = if a & 0x10 == 0 { side } else { other };
    if a % 16 >= 8 {
        w.report.actions += 1;
    }
    match a % 16 {
        8 => {
            let len = length(cx.ext_mut().byte());
            write(cx, who, len, None);
        }
        9 => {
            let len = length(cx.ext_mut().byte());
            write(cx, who, len, Some(len / 2));
        }
        10 => shutdown(cx, who),
        11 => close(cx, who, CLOSE_ACTION),
        12 => {
            let k = usize::from(a >> 5) % 4;
            adopt(cx, who, k);
        }
        13 => pause(cx, who, true),
        14 => pause(cx, who, false),
        15 => shutdown_read(cx, who),
        _ => {}
    }
}

// ---- callbacks -------------------------------------------------------------------------------

/// The side of `s`, checking that a callback may run for it now.
fn live(cx: &Cx, s: SocketId, what: &str) -> usize {
    let side = usize::from(
        *cx.socket_ext(s)
            .unwrap_or_else(|| panic!("{what} for released socket {s:?}")),
    );
    let e = &cx.ext().ends[side];
    assert_eq!(
        e.s,
        Some(s),
        "{what}: {s:?} is not the {} socket",
        SIDE[side]
    );
    assert_eq!(
        e.life,
        Life::Open,
        "{what} for the {} socket, which is {:?}",
        SIDE[side],
        e.life
    );
    assert_eq!(cx.is_closed(s), Some(false), "{what} for a closed socket");
    let ctx = cx.ext().ctxs[e.ctx];
    assert_eq!(
        cx.socket_context(s),
        Some(ctx),
        "{what}: the {} socket is not in the context it was adopted into",
        SIDE[side]
    );
    side
}

fn on_open(cx: &mut Cx, s: SocketId, is_client: bool, _: &[u8]) {
    let side = usize::from(*cx.socket_ext(s).expect("on_open for a live socket"));
    assert_eq!(is_client, side == 0, "on_open: is_client");
    let early = cx.ext().early;
    let e = &mut cx.ext_mut().ends[side];
    assert_eq!(e.opens, 0, "a second on_open for the {} socket", SIDE[side]);
    assert_eq!(e.life, Life::Unopened);
    match e.s {
        Some(x) => assert_eq!(x, s, "on_open: not the connecting socket"),
        None => e.s = Some(s),
    }
    e.opens = 1;
    e.life = Life::Open;
    e.ctx = side;
    if early > 0 {
        write(cx, side, early, None);
    }
}

fn on_data(cx: &mut Cx, s: SocketId, data: &mut RecvBuf<'_>) {
    let side = live(cx, s, "on_data");
    // Once set up, both handshakes are known to be done (`set_up` checks it).
    if cx.ext().setup {
        let info = usockets_tls::info(cx, s).expect("a TLS socket has a session");
        assert!(!info.handshaking, "plaintext before the handshake ended");
    }
    let from = 1 - side;
    let w = cx.ext_mut();
    let off = w.ends[side].got;
    let len = data.len();
    assert!(
        off + len <= w.ends[from].sent,
        "the {} got bytes {off}..{} but the {} wrote only {}",
        SIDE[side],
        off + len,
        SIDE[from],
        w.ends[from].sent
    );
    assert!(
        is_stream(from, off, data),
        "the {} got bytes {off}..{} that the {} did not write there",
        SIDE[side],
        off + len,
        SIDE[from]
    );
    w.ends[side].got += len;
    if w.trace {
        eprintln!("  {} got {len} (total {})", SIDE[side], off + len);
    }
    react(cx, side);
}

fn on_writable(cx: &mut Cx, s: SocketId) {
    let side = live(cx, s, "on_writable");
    react(cx, side);
}

fn on_timeout(cx: &mut Cx, s: SocketId) {
    let side = live(cx, s, "on_timeout");
    let now = cx.now_ms();
    let w = cx.ext_mut();
    w.report.timeouts += 1;
    let due = w.ends[side]
        .timeout_due
        .take()
        .unwrap_or_else(|| panic!("on_timeout for the {} socket, none armed", SIDE[side]));
    assert!(now >= due, "on_timeout {} ms early", due - now);
    react(cx, side);
}

fn on_close(cx: &mut Cx, s: SocketId, cause: CloseCause<u32>) {
    let side = usize::from(*cx.socket_ext(s).expect("on_close for a live slot"));
    assert_eq!(
        cx.is_closed(s),
        Some(true),
        "on_close for a socket not closed"
    );
    let w = cx.ext_mut();
    let lossy = w.lossy();
    let e = &mut w.ends[side];
    assert_eq!(e.s, Some(s), "on_close: not the {} socket", SIDE[side]);
    assert_eq!(
        e.life,
        Life::Open,
        "on_close for the {} socket, which is {:?} (closes so far: {})",
        SIDE[side],
        e.life,
        e.closes
    );
    e.life = Life::Closed;
    e.closes += 1;
    match e.closing.take() {
        Some(code) => assert_eq!(
            cause,
            CloseCause::User { code, reason: None },
            "on_close: the run's close reported as something else"
        ),
        None => assert!(
            !matches!(cause, CloseCause::User { code, .. } if code != 0),
            "on_close: a close by the library with a code: {cause:?}"
        ),
    }
    if w.trace {
        eprintln!("  {} closed: {cause:?}", SIDE[side]);
    }
    // The library closed it while its peer, still open, had shut down cleanly: the close_notify
    // came after everything the peer wrote. Not so for a paused socket: a hang-up closes it
    // without reading what is still in the kernel (core does as the C library does).
    let from = 1 - side;
    let (me, peer) = (&w.ends[side], &w.ends[from]);
    let by_library = !matches!(cause, CloseCause::User { code, .. } if code != 0);
    if by_library
        && peer.life == Life::Open
        && peer.shut
        && !w.tampered[from]
        && !lossy
        && !me.shut_read
        && !me.paused
    {
        assert_eq!(
            me.got, peer.sent,
            "the {} closed ({cause:?}) with plaintext missing, though the {} shut down cleanly",
            SIDE[side], SIDE[from]
        );
    }
    react(cx, side);
}

fn on_end(_: &mut Cx, s: SocketId) {
    panic!("on_end for TLS socket {s:?}: a TLS socket closes on FIN");
}

fn on_connect_error(_: &mut Cx, s: SocketId, err: OsError) {
    panic!("on_connect_error for {s:?}: {err:?} (no faults while connecting)");
}

fn on_long_timeout(_: &mut Cx, s: SocketId) {
    panic!("on_long_timeout for {s:?}: none armed");
}

fn callbacks() -> ContextCallbacks<SessionH> {
    ContextCallbacks {
        on_open: Some(on_open),
        on_data: Some(on_data),
        on_writable: Some(on_writable),
        on_close: Some(on_close),
        on_end: Some(on_end),
        on_timeout: Some(on_timeout),
        on_long_timeout: Some(on_long_timeout),
        on_connect_error: Some(on_connect_error),
        ..ContextCallbacks::default()
    }
}

// ---- the run ---------------------------------------------------------------------------------

type L = Loop<SessionH>;

/// The simulated OS's fault rates for profile `p` (0..8), per mille.
fn faults(p: u8) -> Faults {
    let mut f = Faults::NONE;
    match p % 8 {
        0 => {}
        1 => f.partial_write = 300,
        2 => f.would_block_send = 300,
        3 => {
            f.partial_write = 200;
            f.would_block_send = 200;
            f.spurious_readiness = 200;
        }
        4 => f.delay_delivery = 400,
        5 => {
            f.partial_write = 150;
            f.would_block_send = 150;
            f.spurious_readiness = 150;
            f.delay_delivery = 150;
        }
        6 => {
            f.partial_write = 150;
            f.reset = 15;
        }
        _ => {
            f.would_block_send = 150;
            f.hangup_with_unread = 15;
        }
    }
    f
}

/// One loop iteration behind the proxy passing everything on; then the step checks.
fn iterate(l: &mut L) {
    let net = l.ext().net.clone();
    let w = l.ext_mut();
    w.proxy.pump(&net, 0);
    w.proxy.pump(&net, 1);
    iterate_held(l);
}

/// One loop iteration, the proxy passing nothing on; then the step checks.
fn iterate_held(l: &mut L) {
    l.run_once(Some(0)).expect("run_once");
    released(l);
}

/// After an iteration: every closed socket's slot is released.
fn released(l: &mut L) {
    for side in 0..2 {
        let e = &l.ext().ends[side];
        if e.life == Life::Closed {
            let s = e.s.expect("a closed socket has a handle");
            assert_eq!(
                l.is_closed(s),
                None,
                "a closed socket outlived its iteration"
            );
            l.ext_mut().ends[side].life = Life::Released;
        }
    }
    let open = l.ext().open_sockets();
    assert_eq!(l.slots_in_use()[0], open, "socket slots in use");
}

/// What holds between steps: descriptors and slots as the model says, open sockets where it
/// says.
fn check(l: &L) {
    let w = l.ext();
    let listener = usize::from(w.listener.is_some());
    assert_eq!(
        w.net.open_fds(),
        listener + w.open_sockets(),
        "descriptors open (listener: {listener}, sockets {:?})",
        [w.ends[0].life, w.ends[1].life]
    );
    let unreleased = w
        .ends
        .iter()
        .filter(|e| matches!(e.life, Life::Open | Life::Closed))
        .count();
    assert_eq!(l.slots_in_use()[0], unreleased, "socket slots in use");
    for e in &w.ends {
        if let (Some(s), Life::Open) = (e.s, e.life) {
            assert_eq!(
                l.is_closed(s),
                Some(false),
                "an open socket reads as closed"
            );
            assert_eq!(l.socket_context(s), Some(w.ctxs[e.ctx]), "context");
        }
    }
}

/// One operation (see the module docs).
fn step(l: &mut L) {
    let net = l.ext().net.clone();
    let b = l.ext_mut().byte();
    let code = b & 0x0f;
    let side = usize::from((b >> 4) & 1);
    let arg = b >> 5;
    l.ext_mut().report.ops[usize::from(code)] += 1;
    match code {
        0 => {
            // Bit 2 of the argument: the proxy holds what it has (see `Forward`).
            for _ in 0..=arg % 4 {
                if arg & 4 == 0 {
                    iterate(l);
                } else {
                    iterate_held(l);
                }
            }
        }
        1 => {
            let len = length(l.ext_mut().byte());
            write(l, side, len, None);
        }
        2 => {
            let w = l.ext_mut();
            let len = length(w.byte());
            let cut = len * usize::from(w.byte()) / 255;
            write(l, side, len, Some(cut));
        }
        3 => {
            let w = l.ext_mut();
            let n = 1 + usize::from(w.byte()) * (1 << (arg % 8));
            w.proxy.pull(&net, side);
            let went = w.proxy.forward(&net, side, n);
            trace(
                l,
                format_args!("proxy passes {went} of the {}'s bytes", SIDE[side]),
            );
        }
        4 => {
            let w = l.ext_mut();
            let pos = usize::from(u16::from_le_bytes([w.byte(), w.byte()]));
            w.proxy.pull(&net, side);
            let changed = w.tamper_ok(side) && w.proxy.flip(side, pos, u32::from(arg));
            w.garbled(side, changed);
            trace(
                l,
                format_args!("proxy flips a bit of the {}'s: {changed}", SIDE[side]),
            );
        }
        5 => inject(l, side, arg),
        6 => {
            let w = l.ext_mut();
            let at = w.byte();
            let n = 1 + usize::from(w.byte());
            w.proxy.pull(&net, side);
            let changed = w.tamper_ok(side) && w.proxy.drop_bytes(side, at, n);
            w.garbled(side, changed);
            trace(
                l,
                format_args!("proxy drops {n} of the {}'s: {changed}", SIDE[side]),
            );
        }
        7 => shutdown(l, side),
        8 => close(l, side, CLOSE_OP),
        9 => adopt(l, side, usize::from(arg) % 4),
        10 => pause(l, side, true),
        11 => pause(l, side, false),
        12 => timeout(l, side, 1 + u32::from(arg % 4)),
        13 => {
            let ms = (u64::from(l.ext_mut().byte()) + 1) * 32;
            trace(l, format_args!("the clock moves {ms} ms"));
            net.advance(ms);
            iterate(l);
        }
        14 => {
            let w = l.ext_mut();
            w.proxy.pull(&net, side);
            if arg & 1 == 0 {
                w.tampered[side] |= w.proxy.fin(&net, side);
            } else if w.proxy.reset(&net, side) {
                // The receiver's connection is gone both ways.
                w.tampered = [true, true];
            }
            trace(l, format_args!("proxy ends the {}'s direction", SIDE[side]));
        }
        _ => shutdown_read(l, side),
    }
    check(l);
}

/// The most bytes one injection inserts: one record of 16 KiB with its header and tag.
const MAX_INSERT: usize = 16 * 1024 + 5 + 256;

/// Bytes into direction `d` that its sender never sent (`kind` says which).
fn inject(l: &mut L, d: usize, kind: u8) {
    let net = l.ext().net.clone();
    let w = l.ext_mut();
    w.proxy.pull(&net, d);
    let at = w.byte();
    let bytes: Vec<u8> = match kind {
        // Raw bytes from the input.
        0 => {
            let n = usize::from(w.byte());
            (0..n).map(|_| w.byte()).collect()
        }
        // A plaintext alert (level, description from the input).
        1 => vec![21, 3, 3, 0, 2, w.byte(), w.byte()],
        // A ChangeCipherSpec record.
        2 => vec![20, 3, 3, 0, 1, 1],
        // A record header (type and length from the input) and up to 64 bytes of body.
        3 => {
            let (t, hi, lo) = (w.byte(), w.byte(), w.byte());
            let body = usize::from(u16::from_be_bytes([hi, lo])).min(64);
            let mut r = vec![t, 3, 3, hi, lo];
            r.extend((0..body).map(|_| w.byte()));
            r
        }
        // The last piece passed on, again (a replayed record, or part of one).
        4 => w.proxy.last(d)[..w.proxy.last(d).len().min(MAX_INSERT)].to_vec(),
        // The last piece of the other direction (a reflected record).
        5 => w.proxy.last(1 - d)[..w.proxy.last(1 - d).len().min(MAX_INSERT)].to_vec(),
        // The first bytes of the last piece (a truncated record).
        6 => {
            let n = usize::from(w.byte());
            let last = w.proxy.last(d);
            last[..n.min(last.len())].to_vec()
        }
        // An empty application-data record.
        _ => vec![23, 3, 3, 0, 0],
    };
    let changed = w.tamper_ok(d) && w.proxy.insert(d, at, &bytes);
    w.garbled(d, changed);
    trace(
        l,
        format_args!(
            "proxy inserts {} bytes (kind {kind}) into the {}'s: {changed}",
            bytes.len(),
            SIDE[d]
        ),
    );
}

/// What moves between iterations: bytes through the proxy, plaintext delivered, sockets
/// open, and the sockets' sends, receives and shutdowns.
fn progress(l: &L) -> ([usize; 2], [usize; 2], usize, [u64; 4]) {
    let w = l.ext();
    let c = w.net.syscalls();
    (
        w.proxy.forwarded,
        [w.ends[0].got, w.ends[1].got],
        w.open_sockets(),
        [c.send, c.send2, c.recv, c.shutdown],
    )
}

/// Connects the client to the server through the proxy and runs the handshake to its end:
/// a resumed one unless `full` (see [`crypto`]).
fn set_up(l: &mut L, variant: usize, full: bool) {
    let net = l.ext().net.clone();
    let pair = crypto::pair(variant);
    let client = TlsContext::client(pair.client.clone());
    let server = TlsContext::server(pair.server.clone());
    let both = TlsContext::server(pair.server.clone()).with_client(pair.client.clone());
    let layers = [Some(client), Some(server), Some(both), None];
    for (k, layer) in layers.into_iter().enumerate() {
        let c = l.context_create(k as u8, callbacks()).expect("context");
        if let Some(layer) = layer {
            assert!(l.set_layer_context(c, layer));
        }
        l.ext_mut().ctxs.push(c);
    }
    let target = ListenTarget::Host {
        host: Some("127.0.0.1"),
        port: 0,
    };
    let (client_ctx, server_ctx) = (l.ext().ctxs[0], l.ext().ctxs[1]);
    let ls = l
        .listen(server_ctx, target, ListenOptions::default(), || 1)
        .expect("listen");
    l.ext_mut().listener = Some(ls);
    let port = l.listen_port(ls).expect("port");
    let peer_port = net.peer_listen(0);
    let target = ConnectTarget::Host {
        host: "127.0.0.1",
        port: peer_port,
        source: None,
    };
    let c = l.connect(client_ctx, target, 0).expect("connect");
    let w = l.ext_mut();
    w.ends[0].s = Some(c);
    w.proxy.peer[0] = net.peer_accept(peer_port);
    w.proxy.peer[1] = Some(net.peer_connect(port).expect("the server listens"));
    assert!(
        w.proxy.peer[0].is_some(),
        "the client connected to the proxy"
    );
    let done = |l: &L| {
        l.ext().ends.iter().all(|e| {
            e.life == Life::Open
                && e.s
                    .and_then(|s| usockets_tls::info(l, s))
                    .is_some_and(|i| !i.handshaking)
        })
    };
    // Until both ends finished and an iteration moved nothing (a TLS 1.3 session ticket
    // follows the handshake).
    for _ in 0..64 {
        let before = progress(l);
        iterate(l);
        if progress(l) == before && done(l) {
            break;
        }
    }
    assert!(
        done(l),
        "the handshake did not complete: {:?}",
        l.ext().report
    );
    for e in &l.ext().ends {
        let info =
            e.s.and_then(|s| usockets_tls::info(l, s))
                .expect("a session");
        assert_eq!(
            info.resumed, !full,
            "the handshake was not the one every run makes: {info:?}"
        );
    }
    check(l);
}

/// Everything passed on and delivered: faults off, both ends resumed, until nothing moves.
fn drain(l: &mut L) {
    let net = l.ext().net.clone();
    net.set_faults(Faults::NONE);
    for side in 0..2 {
        if l.ext().ends[side].life == Life::Open {
            pause(l, side, false);
        }
    }
    let mut quiet = 0;
    for _ in 0..200 {
        let before = progress(l);
        iterate(l);
        check(l);
        // Delayed deliveries land within 50 ms: two quiet iterations 51 ms apart see them.
        net.advance(51);
        quiet = if progress(l) == before { quiet + 1 } else { 0 };
        if quiet == 2 {
            break;
        }
    }
    let w = l.ext();
    let lossy = w.lossy();
    for (from, tx) in w.ends.iter().enumerate() {
        let to = 1 - from;
        let rx = &w.ends[to];
        if w.tampered[from] || lossy {
            continue;
        }
        if tx.life == Life::Open && rx.life == Life::Open && !tx.shut {
            assert_eq!(
                rx.got, tx.sent,
                "after draining, the {} has not all the {} wrote",
                SIDE[to], SIDE[from]
            );
        }
        if tx.life != Life::Open || tx.shut {
            assert_ne!(
                rx.life,
                Life::Open,
                "after draining, the {} is open though the {} is gone ({:?}, shut down: {})",
                SIDE[to],
                SIDE[from],
                tx.life,
                tx.shut
            );
        }
    }
}

/// Closes what is left and checks that nothing remains.
fn tear_down(l: &mut L) {
    for side in 0..2 {
        if l.ext().ends[side].life == Life::Open {
            close(l, side, CLOSE_OP);
        }
    }
    if let Some(ls) = l.ext_mut().listener.take() {
        l.listen_close(ls);
    }
    iterate(l);
    check(l);
    for e in &l.ext().ends {
        assert_eq!((e.opens, e.closes), (1, 1), "one on_open and one on_close");
    }
    assert_eq!(
        l.slots_in_use(),
        [0, 0, 4, 0, 0],
        "all but the contexts released"
    );
    let ctxs = l.ext().ctxs.clone();
    for c in ctxs {
        l.context_free(c).expect("an empty context frees");
    }
    assert_eq!(l.slots_in_use(), [0; 5], "everything released");
    assert_eq!(l.ext().net.open_fds(), 0, "no descriptor left");
}

/// Runs one input (see the module docs); panics on a broken invariant. Returns what it did.
pub fn run_tls_session(data: &[u8]) -> SessionReport {
    let variant = data.first().copied().unwrap_or(0) & 3;
    let resumes = crypto::resumes(usize::from(variant));
    if resumes && crypto::needs_warm_up(usize::from(variant)) {
        // This thread's first run of the configuration: a full handshake, whose session this
        // run and every later one resume (see `crypto`).
        run(&[variant], true);
    }
    run(data, !resumes)
}

/// Runs one input, with a full handshake if `full`.
fn run(data: &[u8], full: bool) -> SessionReport {
    let setup = data.first().copied().unwrap_or(0);
    let early = data.get(1).copied().unwrap_or(0);
    let n = usize::from(data.get(2).copied().unwrap_or(0));
    let fault_bytes = data.get(3..).unwrap_or(&[]);
    let fault_bytes = &fault_bytes[..n.min(fault_bytes.len())];
    let ops = data.get(3 + fault_bytes.len()..).unwrap_or(&[]);
    let variant = usize::from(setup & 3);

    crypto::reseed();
    let net = SimNet::new(
        Faults::NONE,
        Box::new(ByteSource::new(fault_bytes.to_vec())),
    );
    let world = World {
        net: net.clone(),
        input: ops.to_vec(),
        pos: 0,
        reactive: setup & 4 != 0,
        setup: true,
        early: if setup & 8 != 0 { length(early) } else { 0 },
        ends: [End::new(), End::new()],
        ctxs: Vec::with_capacity(4),
        listener: None,
        proxy: Proxy::default(),
        tampered: [false; 2],
        garbage: [false; 2],
        trace: trace_wanted(),
        report: SessionReport {
            variant: variant as u8,
            ..SessionReport::default()
        },
    };
    // Room for what a run makes (two sockets, a listener, four contexts) and no more: the
    // storage is made anew for every run. Bit 7 of `setup` picks a receive buffer smaller than
    // a record, so that records arrive in pieces across reads.
    let recv = if setup & 0x80 != 0 { 1500 } else { 16 * 1024 };
    let capacity = Capacity::new()
        .with_sockets(4)
        .with_listeners(1)
        .with_contexts(4)
        .with_timers(1)
        .with_polls(1)
        .with_events(8)
        .with_recv(recv);
    let storage = GrowingStorage::preallocated(capacity);
    let mut l: L = Loop::new(
        net.shim(),
        storage,
        world,
        LoopCallbacks::default(),
        Settings::default(),
    )
    .expect("loop");
    // The run drives the loop with run_once: arm the timeout sweep (us_loop_integrate).
    l.integrate();
    set_up(&mut l, variant, full);
    l.ext_mut().setup = false;
    net.set_faults(faults(setup >> 4));
    for _ in 0..MAX_STEPS {
        if l.ext().done() {
            break;
        }
        step(&mut l);
    }
    // What is left of the input is not for the callbacks of the drain either.
    let w = l.ext_mut();
    w.pos = w.input.len();
    drain(&mut l);
    tear_down(&mut l);
    let w = l.ext();
    let f = net.fault_counts();
    SessionReport {
        sent: [w.ends[0].sent, w.ends[1].sent],
        got: [w.ends[0].got, w.ends[1].got],
        tampered: w.tampered,
        faults: f.partial_write
            + f.would_block_send
            + f.reset
            + f.spurious_readiness
            + f.delay_delivery
            + f.hangup_with_unread,
        forwarded: w.proxy.forwarded,
        digest: w.proxy.digest,
        ..w.report.clone()
    }
}

/// Whether `USOCKETS_FUZZ_TRACE` is set (read once per process).
fn trace_wanted() -> bool {
    static TRACE: OnceLock<bool> = OnceLock::new();
    *TRACE.get_or_init(|| std::env::var_os("USOCKETS_FUZZ_TRACE").is_some())
}
