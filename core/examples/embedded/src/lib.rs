//! Build check: `usockets-core` in a `no_std`, allocation-free static library for a bare-metal
//! target. A stub shim, the loop's memory in a `static` (core's `FixedStorage` through
//! `static_cell`), a context and a timer, a few loop iterations; the exported function keeps it
//! all from being optimised away.
//!
//! Nothing here is meant to run on hardware: the point is that it compiles and links into a
//! `staticlib` for `thumbv7em-none-eabihf` without `std`, `alloc` or `unsafe` code.

#![no_std]
// `#[no_mangle]` counts as unsafe code for the `unsafe_code` lint, so `forbid` would reject the
// one exported symbol; `deny` lets that single item opt out explicitly.
#![deny(unsafe_code)]

use static_cell::StaticCell;
use usockets_core::{
    Config, ConnectTarget, ContextCallbacks, Cx, ErrorKind, Event, FixedStorage, Interest,
    ListenOptions, ListenTarget, Loop, LoopCallbacks, OsShim, PeerAddr, Settings, ShimError,
    TimerId, Token, Wake,
};

/// The only error the stub shim produces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StubError;

impl ShimError for StubError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Unsupported
    }
    fn raw_os_error(&self) -> i32 {
        0
    }
}

/// A waker with nothing to wake.
#[derive(Clone, Copy, Debug)]
pub struct StubWaker;

impl Wake for StubWaker {
    fn wake(&self) {}
}

/// A shim with no network: every socket operation is unsupported, `wait` never reports anything
/// and the clock is a counter that advances one millisecond per reading.
#[derive(Debug, Default)]
pub struct StubShim {
    clock: u64,
}

/// The stub's (never created) descriptor: owned, like every shim's.
#[derive(Debug)]
pub struct StubFd;

impl OsShim for StubShim {
    type Fd = StubFd;
    type Waker = StubWaker;
    type Error = StubError;

    fn register(
        &mut self,
        _fd: &StubFd,
        _token: Token,
        _interest: Interest,
    ) -> Result<(), StubError> {
        Err(StubError)
    }
    fn modify(
        &mut self,
        _fd: &StubFd,
        _token: Token,
        _interest: Interest,
    ) -> Result<(), StubError> {
        Err(StubError)
    }
    fn deregister(&mut self, _fd: &StubFd) -> Result<(), StubError> {
        Err(StubError)
    }
    fn wait(
        &mut self,
        _events: &mut [Event],
        _timeout_ms: Option<u64>,
    ) -> Result<usize, StubError> {
        Ok(0)
    }
    fn waker(&mut self) -> StubWaker {
        StubWaker
    }
    fn now_ms(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }
    fn listen(
        &mut self,
        _target: ListenTarget<'_>,
        _options: ListenOptions,
    ) -> Result<StubFd, StubError> {
        Err(StubError)
    }
    fn accept(&mut self, _listener: &StubFd) -> Result<Option<(StubFd, PeerAddr)>, StubError> {
        Err(StubError)
    }
    fn connect(&mut self, _target: ConnectTarget<'_>) -> Result<StubFd, StubError> {
        Err(StubError)
    }
    fn connect_result(&mut self, _fd: &StubFd) -> Result<(), StubError> {
        Err(StubError)
    }
    fn adopt(&mut self, _fd: &StubFd) -> Result<(), StubError> {
        Err(StubError)
    }
    fn recv(&mut self, _fd: &StubFd, _buf: &mut [u8]) -> Result<usize, StubError> {
        Err(StubError)
    }
    fn send(&mut self, _fd: &StubFd, _data: &[u8], _more: bool) -> Result<usize, StubError> {
        Err(StubError)
    }
    fn shutdown_write(&mut self, _fd: &StubFd) -> Result<(), StubError> {
        Err(StubError)
    }
    fn shutdown_read(&mut self, _fd: &StubFd) -> Result<(), StubError> {
        Err(StubError)
    }
    fn close(&mut self, _fd: StubFd) {}
    fn local_addr(&mut self, _fd: &StubFd) -> Result<PeerAddr, StubError> {
        Err(StubError)
    }
    fn remote_addr(&mut self, _fd: &StubFd) -> Result<PeerAddr, StubError> {
        Err(StubError)
    }
}

/// The loop configuration: the stub shim, small ext types and fixed storage in a `static`.
pub struct Demo;

impl Config for Demo {
    type Shim = StubShim;
    type LoopExt = u32;
    type ContextExt = ();
    type SocketExt = ();
    type TimerExt = u32;
    type PollExt = ();
    type Reason = ();
    type Storage = &'static mut Memory;
    type Layer = usockets_core::NoLayer;
}

/// 8 sockets, 2 listen sockets, 2 contexts, 4 timers, 2 polls, a 1 KiB receive buffer and 8
/// events per wait: all of the loop's memory, sized at compile time.
pub type Memory = FixedStorage<Demo, 8, 2, 2, 4, 2, 1024, 8>;

/// Where the loop's memory lives: reserved at link time (`.bss`), filled in place at start-up.
static MEMORY: StaticCell<Memory> = StaticCell::new();

/// Counts its firings in the timer ext and in the loop ext.
fn on_tick(cx: &mut Cx<Demo>, t: TimerId) {
    if let Some(n) = cx.timer_ext_mut(t) {
        *n += 1;
    }
    *cx.ext_mut() += 1;
}

/// Builds a loop in the static memory, creates a context and a repeating timer, runs a few
/// non-blocking iterations and returns `iterations * 1000 + timer firings` (0 on failure). Runs
/// once: the memory is taken for good (a second call panics).
pub fn demo() -> u32 {
    let memory = MEMORY.init_with(Memory::new);
    let settings = Settings::default();
    let Ok(mut lp) = Loop::new(
        StubShim::default(),
        memory,
        0,
        LoopCallbacks::default(),
        settings,
    ) else {
        return 0;
    };
    lp.integrate();
    if lp.context_create((), ContextCallbacks::default()).is_err() {
        return 0;
    }
    let Ok(timer) = lp.timer_create(false, 0) else {
        return 0;
    };
    lp.timer_set(timer, on_tick, 1, 1);
    for _ in 0..4 {
        if lp.run_once(Some(0)).is_err() {
            return 0;
        }
    }
    let fired = *lp.ext();
    lp.timer_close(timer);
    let iterations = u32::try_from(lp.iteration_number()).unwrap_or(u32::MAX);
    iterations.saturating_mul(1000).saturating_add(fired)
}

/// The exported entry point a C (or assembly) caller links against.
// SAFETY: `#[no_mangle]` is only unsafe because two items exporting the same symbol would clash
// at link time; `usockets_embedded_demo` is unique to this crate.
#[allow(unsafe_code)]
#[no_mangle]
pub extern "C" fn usockets_embedded_demo() -> u32 {
    demo()
}

/// Bare-metal targets have no `std` to provide one; a stub that parks the core is enough here.
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo<'_>) -> ! {
    loop {
        core::hint::spin_loop();
    }
}
