//! Bare-metal echo over usockets-core and usockets-shim-smoltcp, for QEMU's `lm3s6965evb`
//! (Cortex-M3, 64 KiB of RAM, no allocator).
//!
//! One usockets-core loop, on smoltcp through the shim, over a loopback device: a server context
//! listening on 127.0.0.1 (an ephemeral port) echoes every byte it receives; a client context
//! connects to it, sends [`TOTAL`] bytes of a deterministic pattern, checks every echoed byte in
//! order and closes. The server answers the client's FIN with its own, the listener closes, and
//! `Loop::run` returns once nothing keeps the loop alive. Then the firmware prints a summary and
//! exits QEMU with `EXIT_SUCCESS` through semihosting. A mismatch, a connect error, an
//! unexpected close, a panic or the deadline (a core timer) exits with `EXIT_FAILURE`.
//!
//! Short writes are handled as usockets requires (core has no write queue): the client
//! regenerates unsent bytes from its send offset when `on_writable` comes; the server keeps what
//! the socket did not take in its echo buffer, stops reading until `on_writable` has sent it,
//! then reads again.
//!
//! Memory: everything sizeable is a `static` (see the `static`s below), so RAM use is known at
//! link time; `main`'s frame holds the `Loop` itself (the shim, the smoltcp interface, the
//! application state) and the stack is what remains of the 64 KiB.

#![no_std]
#![no_main]
// No unsafe code in the app. cortex-m-rt's `#[entry]` and `#[exception]` expand to
// `#[export_name]` trampolines (the vector table's symbols), but the lint does not look into
// another crate's macro expansion, so `forbid` holds with no exception.
#![forbid(unsafe_code)]

use core::panic::PanicInfo;
use core::sync::atomic::{AtomicU32, Ordering};

use cortex_m::peripheral::syst::SystClkSource;
use cortex_m_rt::{entry, exception};
use cortex_m_semihosting::debug::{self, EXIT_FAILURE, EXIT_SUCCESS};
use cortex_m_semihosting::hprintln;
use static_cell::{ConstStaticCell, StaticCell};
use usockets_core::{
    CloseCause, Config, ConnectTarget, ContextCallbacks, Cx, FixedStorage, ListenId, ListenOptions,
    ListenTarget, Loop, LoopCallbacks, NoLayer, OsError, RecvBuf, Settings, SocketId, TimerId,
    RECV_PADDING,
};
use usockets_shim_smoltcp::smoltcp::iface::{self, Interface, SocketStorage};
use usockets_shim_smoltcp::smoltcp::time::Instant;
use usockets_shim_smoltcp::smoltcp::wire::{
    HardwareAddress, IpAddress, IpCidr, Ipv4Address, Ipv6Address,
};
use usockets_shim_smoltcp::{LoopbackDevice, Platform, SmolConfig, SmolShim, WakeFlag};

// ---- sizes -------------------------------------------------------------------------------

/// Bytes the client sends and must get back, in order.
const TOTAL: usize = 64 * 1024;
/// The client's write size.
const CHUNK: usize = 512;
/// Core's receive buffer, data only (the `FixedStorage` adds the padding on both sides).
const RECV_DATA: usize = 2048;
/// smoltcp TCP sockets: the listener's pool of 2, the client, and the one taking the accepted
/// socket's place in the pool.
const SOCKETS: usize = 4;
/// Each socket's receive and send buffers (bytes each way).
const SOCKET_BUFFER: usize = 2048;
/// Loopback frames and their size (IP medium: the MTU is the frame size).
const FRAMES: usize = 8;
const MTU: usize = 1500;
/// Every `STALL_EVERY` bytes verified, the client stops reading for `STALL_MS` (a core timer
/// resumes it): the server's writes then come up short and its `on_writable` path runs, and
/// the client's sends meet a closed window.
const STALL_EVERY: usize = 16 * 1024;
const STALL_MS: u64 = 5;
/// The test's budget in SysTick time, enforced by a core timer.
const DEADLINE_MS: u64 = 20_000;
/// Backstop in the SysTick handler, for a hang that keeps the loop from ever firing the timer.
const WATCHDOG_MS: u32 = 60_000;
/// The top of RAM (memory.x: 64 KiB from 0x2000_0000), where the stack starts.
const RAM_END: u32 = 0x2000_0000 + 64 * 1024;
/// QEMU's lm3s6965evb runs the core (and SysTick, clocked from it) at 12 MHz.
const CORE_HZ: u32 = 12_000_000;

// ---- the clock ---------------------------------------------------------------------------

/// Milliseconds since SysTick started, counted by its exception.
static MILLIS: AtomicU32 = AtomicU32::new(0);

/// The lowest stack pointer seen by [`sample_stack`]: in the SysTick exception (at whatever
/// depth it interrupted, smoltcp's included), in the platform's calls and in the callbacks. A
/// sample, so a lower bound of the deepest stack; reading the painted stack would need `unsafe`.
static LOWEST_SP: AtomicU32 = AtomicU32::new(RAM_END);

fn sample_stack() {
    LOWEST_SP.fetch_min(cortex_m::register::msp::read(), Ordering::Relaxed);
}

#[exception]
fn SysTick() {
    sample_stack();
    let ms = MILLIS.fetch_add(1, Ordering::Relaxed) + 1;
    if ms == WATCHDOG_MS {
        fail(format_args!(
            "watchdog: still running after {WATCHDOG_MS} ms of SysTick time"
        ));
    }
}

/// SysTick interrupts every millisecond from the core clock.
fn start_systick(mut syst: cortex_m::peripheral::SYST) {
    syst.set_clock_source(SystClkSource::Core);
    syst.set_reload(CORE_HZ / 1000 - 1);
    syst.clear_current();
    syst.enable_interrupt();
    syst.enable_counter();
}

/// The shim's [`Platform`]: SysTick's millisecond count (widened to 64 bits: the 32-bit count
/// wraps after 49.7 days, and the shim reads it far more often than that) and `WFI` to sleep
/// (SysTick wakes the core every millisecond; a network interrupt would too).
struct Board {
    last: u32,
    high: u64,
}

impl Board {
    const fn new() -> Board {
        Board { last: 0, high: 0 }
    }
}

impl Platform for Board {
    fn now_ms(&mut self) -> u64 {
        sample_stack();
        let now = MILLIS.load(Ordering::Relaxed);
        if now < self.last {
            self.high += 1 << 32;
        }
        self.last = now;
        self.high | u64::from(now)
    }

    fn idle(&mut self, until_ms: Option<u64>) {
        if until_ms.is_some_and(|until| self.now_ms() >= until) {
            return;
        }
        cortex_m::asm::wfi();
    }
}

// ---- the network -------------------------------------------------------------------------

type Loopback = LoopbackDevice<FRAMES, MTU>;

/// The loopback device lives in a `static` (12 KiB of frames, never moved through the stack);
/// the shim owns the `&'static mut` to it (the shim's crate implements `Device` for it, as a
/// board's driver held in a `static` would need too).
type Wire = &'static mut Loopback;

type Shim = SmolShim<'static, Wire, Board, SOCKETS, 1>;

/// Raised by the loop's waker (unused here: nothing wakes the loop from outside).
static WAKE: WakeFlag = WakeFlag::new();
/// All zeros: `.bss`, filled in place (never copied through the stack).
static DEVICE: ConstStaticCell<Loopback> = ConstStaticCell::new(LoopbackDevice::new());
static SOCKET_SET: ConstStaticCell<[SocketStorage<'static>; SOCKETS]> =
    ConstStaticCell::new([SocketStorage::EMPTY; SOCKETS]);
static SOCKET_BUFFERS: ConstStaticCell<[u8; SOCKETS * 2 * SOCKET_BUFFER]> =
    ConstStaticCell::new([0; SOCKETS * 2 * SOCKET_BUFFER]);

// ---- the loop ----------------------------------------------------------------------------

/// The loop's configuration: the smoltcp shim, the app's state as loop ext, fixed storage in a
/// `static`.
struct App;

impl Config for App {
    type Shim = Shim;
    type LoopExt = State;
    type ContextExt = ();
    type SocketExt = ();
    type TimerExt = ();
    type PollExt = ();
    type Reason = ();
    type Storage = &'static mut Memory;
    type Layer = NoLayer;
}

/// 2 sockets (the client and the accepted one), 1 listen socket, 2 contexts, 2 timers (the
/// deadline and the client's stall), no polls, the receive buffer, 8 events per wait.
type Memory = FixedStorage<App, 2, 1, 2, 2, 0, { RECV_DATA + 2 * RECV_PADDING }, 8>;

static MEMORY: StaticCell<Memory> = StaticCell::new();

/// What the callbacks share (the loop ext).
struct State {
    listener: Option<ListenId>,
    deadline: Option<TimerId>,
    stall: Option<TimerId>,
    stalls: u32,
    // The client.
    client: Option<SocketId>,
    /// Bytes the client's socket took.
    sent: usize,
    /// Echoed bytes checked, in order.
    verified: usize,
    client_short_writes: u32,
    client_closed: bool,
    // The server's one connection.
    server: Option<SocketId>,
    /// Received bytes the socket did not take back yet: `echo[echo_at..echo_len]`.
    echo: [u8; RECV_DATA],
    echo_at: usize,
    echo_len: usize,
    echoed: usize,
    server_short_writes: u32,
    server_closed: bool,
}

impl State {
    const fn new() -> State {
        State {
            listener: None,
            deadline: None,
            stall: None,
            stalls: 0,
            client: None,
            sent: 0,
            verified: 0,
            client_short_writes: 0,
            client_closed: false,
            server: None,
            echo: [0; RECV_DATA],
            echo_at: 0,
            echo_len: 0,
            echoed: 0,
            server_short_writes: 0,
            server_closed: false,
        }
    }
}

/// Byte `i` of the stream: a multiplicative hash of the offset, so a lost, repeated or
/// reordered byte (or chunk) shows.
fn pattern(i: usize) -> u8 {
    ((i as u32).wrapping_mul(0x9E37_79B1) >> 24) as u8
}

/// Prints why and exits QEMU with `EXIT_FAILURE`.
fn fail(why: core::fmt::Arguments<'_>) -> ! {
    hprintln!("firmware echo: FAILED: {}", why);
    debug::exit(EXIT_FAILURE);
    loop {
        cortex_m::asm::wfi();
    }
}

#[panic_handler]
fn panic(info: &PanicInfo<'_>) -> ! {
    fail(format_args!("panic: {info}"))
}

// ---- the server --------------------------------------------------------------------------

fn server_open(cx: &mut Cx<App>, s: SocketId, is_client: bool, _ip: &[u8]) {
    if is_client || cx.ext().server.is_some() {
        fail(format_args!("server: unexpected connection {s:?}"));
    }
    cx.ext_mut().server = Some(s);
}

/// Echoes what the socket takes; keeps the rest and stops reading until it is sent.
fn server_data(cx: &mut Cx<App>, s: SocketId, data: &mut RecvBuf<'_>) {
    sample_stack();
    if cx.ext().echo_len > 0 {
        // Reading stops while bytes wait (`pause`), and core checks that before every read.
        fail(format_args!(
            "server: data while {} bytes wait",
            cx.ext().echo_len
        ));
    }
    let n = cx.write(s, data, false);
    let st = cx.ext_mut();
    st.echoed += n;
    if n < data.len() {
        let rest = &data[n..];
        st.echo[..rest.len()].copy_from_slice(rest);
        st.echo_at = 0;
        st.echo_len = rest.len();
        st.server_short_writes += 1;
        cx.pause(s);
    }
}

/// Sends what waits; once it is all out, reads again.
fn server_writable(cx: &mut Cx<App>, s: SocketId) {
    sample_stack();
    let mut out = [0u8; 256];
    while cx.ext().echo_at < cx.ext().echo_len {
        let (at, len) = (cx.ext().echo_at, cx.ext().echo_len);
        let k = (len - at).min(out.len());
        out[..k].copy_from_slice(&cx.ext().echo[at..at + k]);
        let n = cx.write(s, &out[..k], false);
        let st = cx.ext_mut();
        st.echo_at += n;
        st.echoed += n;
        if n < k {
            st.server_short_writes += 1;
            return; // on_writable again when the socket takes more
        }
    }
    let st = cx.ext_mut();
    st.echo_at = 0;
    st.echo_len = 0;
    cx.resume(s);
}

/// The client's FIN: everything was echoed, answer with ours (the socket then closes,
/// `Finished`).
fn server_end(cx: &mut Cx<App>, s: SocketId) {
    if cx.ext().echo_len > 0 || cx.ext().echoed != TOTAL {
        fail(format_args!(
            "server: FIN after echoing {} bytes",
            cx.ext().echoed
        ));
    }
    cx.shutdown(s);
}

fn server_close(cx: &mut Cx<App>, s: SocketId, cause: CloseCause<()>) {
    if cause != CloseCause::Finished || !cx.ext().client_closed {
        fail(format_args!("server: {s:?} closed: {cause:?}"));
    }
    cx.ext_mut().server_closed = true;
    // The last thing keeping `run` going.
    if let Some(l) = cx.ext_mut().listener.take() {
        cx.listen_close(l);
    }
}

// ---- the client --------------------------------------------------------------------------

/// Writes the pattern from where the socket stopped taking it, `CHUNK` bytes at a time, until
/// all is sent or a write is short (core then arms `on_writable`, which calls this again).
fn client_send(cx: &mut Cx<App>, s: SocketId) {
    sample_stack();
    let mut chunk = [0u8; CHUNK];
    while cx.ext().sent < TOTAL {
        let at = cx.ext().sent;
        let k = (TOTAL - at).min(CHUNK);
        for (j, b) in chunk[..k].iter_mut().enumerate() {
            *b = pattern(at + j);
        }
        let n = cx.write(s, &chunk[..k], false);
        cx.ext_mut().sent += n;
        if n < k {
            cx.ext_mut().client_short_writes += 1;
            return;
        }
    }
}

fn client_open(cx: &mut Cx<App>, s: SocketId, is_client: bool, _ip: &[u8]) {
    if !is_client || cx.ext().client != Some(s) {
        fail(format_args!("client: unexpected open of {s:?}"));
    }
    client_send(cx, s);
}

/// Checks every echoed byte; closes once all came back. Stops reading for a while every
/// [`STALL_EVERY`] bytes.
fn client_data(cx: &mut Cx<App>, s: SocketId, data: &mut RecvBuf<'_>) {
    sample_stack();
    let (at, sent) = (cx.ext().verified, cx.ext().sent);
    if at + data.len() > sent {
        fail(format_args!(
            "client: {} bytes echoed, {sent} sent",
            at + data.len()
        ));
    }
    if let Some(k) = data
        .iter()
        .enumerate()
        .position(|(k, &b)| b != pattern(at + k))
    {
        fail(format_args!(
            "client: byte {} is {:#04x}, sent {:#04x}",
            at + k,
            data[k],
            pattern(at + k)
        ));
    }
    let before = cx.ext().verified;
    cx.ext_mut().verified += data.len();
    let now = cx.ext().verified;
    if now == TOTAL {
        cx.close(s, 0, None);
    } else if now / STALL_EVERY != before / STALL_EVERY {
        if let Some(t) = cx.ext().stall {
            cx.pause(s);
            cx.timer_set(t, client_resume, STALL_MS, 0);
            cx.ext_mut().stalls += 1;
        }
    }
}

/// The stall is over: read again.
fn client_resume(cx: &mut Cx<App>, _t: TimerId) {
    if let Some(s) = cx.ext().client {
        cx.resume(s);
    }
}

fn client_end(cx: &mut Cx<App>, _s: SocketId) {
    fail(format_args!(
        "client: server's FIN after {} bytes",
        cx.ext().verified
    ));
}

fn client_close(cx: &mut Cx<App>, s: SocketId, cause: CloseCause<()>) {
    let done = cx.ext().verified == TOTAL;
    if !done || !matches!(cause, CloseCause::User { code: 0, .. }) {
        fail(format_args!(
            "client: {s:?} closed after {} bytes: {cause:?}",
            cx.ext().verified
        ));
    }
    cx.ext_mut().client_closed = true;
}

fn client_connect_error(_cx: &mut Cx<App>, s: SocketId, err: OsError) {
    fail(format_args!("client: connect of {s:?} failed: {err:?}"));
}

fn deadline(cx: &mut Cx<App>, _t: TimerId) {
    let st = cx.ext();
    fail(format_args!(
        "deadline of {DEADLINE_MS} ms: sent {}, echoed {}, verified {} of {TOTAL}",
        st.sent, st.echoed, st.verified
    ));
}

// ---- main --------------------------------------------------------------------------------

#[entry]
fn main() -> ! {
    let Some(peripherals) = cortex_m::Peripherals::take() else {
        fail(format_args!("core peripherals taken twice"));
    };
    start_systick(peripherals.SYST);
    let mut board = Board::new();

    // The interface: IP medium (no link layer on a loopback), 127.0.0.1/8 and ::1/128.
    let mut wire: Wire = DEVICE.take();
    let now = Instant::from_millis(i64::try_from(board.now_ms()).unwrap_or(i64::MAX));
    let mut iface = Interface::new(iface::Config::new(HardwareAddress::Ip), &mut wire, now);
    iface.update_ip_addrs(|addrs| {
        let v4 = IpCidr::new(IpAddress::Ipv4(Ipv4Address::new(127, 0, 0, 1)), 8);
        let v6 = IpCidr::new(IpAddress::Ipv6(Ipv6Address::LOCALHOST), 128);
        if addrs.push(v4).is_err() || addrs.push(v6).is_err() {
            fail(format_args!(
                "interface: no room for the loopback addresses"
            ));
        }
    });
    let shim: Shim = match SmolShim::new(
        wire,
        iface,
        board,
        &WAKE,
        SOCKET_SET.take(),
        SOCKET_BUFFERS.take(),
        SmolConfig::new(),
    ) {
        Ok(shim) => shim,
        Err(e) => fail(format_args!("shim: {e:?}")),
    };

    let memory = MEMORY.init_with(Memory::new);
    let mut lp = match Loop::new(
        shim,
        memory,
        State::new(),
        LoopCallbacks::default(),
        Settings::default(),
    ) {
        Ok(lp) => lp,
        Err(e) => fail(format_args!("loop: {e}")),
    };

    let server = ContextCallbacks {
        on_open: Some(server_open),
        on_data: Some(server_data),
        on_writable: Some(server_writable),
        on_end: Some(server_end),
        on_close: Some(server_close),
        ..ContextCallbacks::default()
    };
    let client = ContextCallbacks {
        on_open: Some(client_open),
        on_data: Some(client_data),
        on_writable: Some(client_send),
        on_end: Some(client_end),
        on_close: Some(client_close),
        on_connect_error: Some(client_connect_error),
        ..ContextCallbacks::default()
    };
    let (Ok(server), Ok(client)) = (lp.context_create((), server), lp.context_create((), client))
    else {
        fail(format_args!("no context slots"));
    };
    let target = ListenTarget::Host {
        host: Some("127.0.0.1"),
        port: 0,
    };
    let listener = match lp.listen(server, target, ListenOptions::default(), || ()) {
        Ok(l) => l,
        Err(e) => fail(format_args!("listen: {e:?}")),
    };
    let Some(port) = lp.listen_port(listener) else {
        fail(format_args!("listen socket without a port"));
    };
    lp.ext_mut().listener = Some(listener);
    let to = ConnectTarget::Host {
        host: "127.0.0.1",
        port,
        source: None,
    };
    match lp.connect(client, to, ()) {
        Ok(s) => lp.ext_mut().client = Some(s),
        Err(e) => fail(format_args!("connect: {e:?}")),
    }
    // Fallthrough: the deadline alone does not keep `run` going.
    let Ok(timer) = lp.timer_create(true, ()) else {
        fail(format_args!("no timer slot"));
    };
    lp.timer_set(timer, deadline, DEADLINE_MS, 0);
    lp.ext_mut().deadline = Some(timer);
    let Ok(stall) = lp.timer_create(true, ()) else {
        fail(format_args!("no timer slot"));
    };
    lp.ext_mut().stall = Some(stall);

    let started = lp.clock_ms();
    if let Err(e) = lp.run() {
        fail(format_args!("run: {e:?}"));
    }
    let elapsed = lp.clock_ms() - started;
    lp.timer_close(timer);
    lp.timer_close(stall);

    let st = lp.ext();
    if !(st.client_closed && st.server_closed && st.verified == TOTAL) {
        fail(format_args!(
            "loop ended early: verified {} of {TOTAL}",
            st.verified
        ));
    }
    hprintln!(
        "firmware echo: {} bytes verified, {} loop iterations, {} ms",
        st.verified,
        lp.iteration_number(),
        elapsed
    );
    hprintln!(
        "  port {}, client stalls {}, short writes: client {}, server {}; smoltcp sockets not yet free: {}; uptime {} ms",
        port,
        st.stalls,
        st.client_short_writes,
        st.server_short_writes,
        lp.shim().sockets_in_use(),
        MILLIS.load(Ordering::Relaxed)
    );
    hprintln!(
        "  RAM: loop storage {} B, loopback device {} B, socket buffers {} B, Loop (in main's frame) {} B, deepest stack sampled {} B",
        core::mem::size_of::<Memory>(),
        core::mem::size_of::<Loopback>(),
        SOCKETS * 2 * SOCKET_BUFFER,
        core::mem::size_of::<Loop<App>>(),
        RAM_END - LOWEST_SP.load(Ordering::Relaxed)
    );
    debug::exit(EXIT_SUCCESS);
    loop {
        cortex_m::asm::wfi();
    }
}
