//! The loop: one iteration is pre → wait → dispatch → timers → release closed → post.

use core::ops::{Deref, DerefMut};

use crate::config::{Config, FdOf, Memory, Settings};
use crate::context::ContextEntry;
use crate::handle::{untoken, Kind, SocketId};
use crate::listen::ListenEntry;
use crate::poll::PollEntry;
use crate::shim::{Event, OsError, OsShim, Token, Wake};
use crate::socket::SocketEntry;
use crate::storage::Arena;
use crate::timer::TimerEntry;
use crate::RECV_PADDING;

/// A loop-level callback (`wakeup_cb`, `pre_cb`, `post_cb`).
pub type LoopCb<C> = fn(&mut Cx<C>);
/// Called when a closed socket's slot is reclaimed at the end of an iteration, with the ext that
/// lived in it. The C ABI frees the socket's memory here.
pub type ReleaseCb<C> = fn(&mut Cx<C>, SocketId, <C as Config>::SocketExt);

/// The loop-level callbacks of `us_create_loop`.
pub struct LoopCallbacks<C: Config> {
    /// Runs on the loop thread after [`Wake::wake`] (`wakeup_cb`).
    pub wakeup: Option<LoopCb<C>>,
    /// Runs at the start of every iteration, before waiting (`pre_cb`).
    pub pre: Option<LoopCb<C>>,
    /// Runs at the end of every iteration, after closed sockets are released (`post_cb`).
    pub post: Option<LoopCb<C>>,
    /// Reports each released socket slot and hands back its ext.
    pub released: Option<ReleaseCb<C>>,
}

impl<C: Config> Default for LoopCallbacks<C> {
    fn default() -> Self {
        LoopCallbacks {
            wakeup: None,
            pre: None,
            post: None,
            released: None,
        }
    }
}

impl<C: Config> Clone for LoopCallbacks<C> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<C: Config> Copy for LoopCallbacks<C> {}

/// The loop's whole state but the receive buffer: what every callback gets, and the API.
///
/// A callback receives `&mut Cx` and may call anything on it — close, write, adopt, connect,
/// timers — re-entrantly. Core never holds a slot borrow across a callback and re-checks every
/// handle after one returns. `on_data`'s buffer is lent separately, so an echo needs no copy.
pub struct Cx<C: Config> {
    pub(crate) shim: C::Shim,
    pub(crate) waker: <C::Shim as OsShim>::Waker,
    pub(crate) sockets: Arena<SocketEntry<C>, C::Sockets>,
    pub(crate) listeners: Arena<ListenEntry<C>, C::Listeners>,
    pub(crate) contexts: Arena<ContextEntry<C>, C::Contexts>,
    pub(crate) timers: Arena<TimerEntry<C>, C::Timers>,
    pub(crate) polls: Arena<PollEntry<C>, C::Polls>,
    pub(crate) events: C::EventBuf,
    pub(crate) ext: C::LoopExt,
    pub(crate) callbacks: LoopCallbacks<C>,
    pub(crate) settings: Settings,
    pub(crate) iteration: u64,
    /// Loop time, refreshed after every wait.
    pub(crate) now: u64,
    /// Origin of the sweep ticks.
    pub(crate) epoch: u64,
    /// Sweep ticks elapsed since `epoch` at the last sweep.
    pub(crate) tick: u64,
    /// When the next sweep runs; `None` until integrated.
    pub(crate) sweep_at: Option<u64>,
    /// Sockets, listen sockets, non-fallthrough timers and polls that keep `run` going.
    pub(crate) keepalive: usize,
    /// Closed sockets waiting for the end of the iteration (linked through `next`).
    pub(crate) closed_sockets: u32,
    /// Closed listen sockets waiting for the end of the iteration.
    pub(crate) closed_listeners: u32,
    /// Failing sockets waiting for the running callback to return (linked through
    /// `queue_next`; see the `close` module).
    pub(crate) failing: u32,
    /// Sockets whose connect failed at once; their `on_connect_error` runs next iteration.
    pub(crate) pending_connect_errors: usize,
    /// Listen sockets paused for lack of slots or descriptors.
    pub(crate) paused_listeners: usize,
    pub(crate) low_priority: crate::low_priority::Queue,
    /// Bumped at each timer pass so a timer re-armed inside it waits for the next pass.
    pub(crate) timer_pass: u64,
    /// Creation number of the next socket (`context_close` leaves newer sockets open).
    pub(crate) next_serial: u64,
    /// Total `recv` buffer capacity for data (without padding).
    pub(crate) recv_capacity: usize,
}

/// An event loop over a shim: owns all state, the receive buffer and drives the callbacks.
///
/// It dereferences to [`Cx`], so every API call works on the loop directly too.
///
/// Dropping it closes every descriptor it owns (sockets, listen sockets and the descriptors
/// given to polls), drops every ext and then the shim, and runs **no** callback: no `on_close`,
/// no `released`. Close sockets first for their callbacks to run.
pub struct Loop<C: Config> {
    cx: Cx<C>,
    recv: C::RecvBuf,
}

/// Why a loop could not be built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum LoopError {
    /// The receive buffer has no room for data between its two paddings.
    RecvBufferTooSmall,
    /// The event buffer is empty.
    NoEventSlots,
}

impl core::fmt::Display for LoopError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            LoopError::RecvBufferTooSmall => {
                write!(f, "receive buffer must exceed twice the padding")
            }
            LoopError::NoEventSlots => write!(f, "event buffer must hold at least one event"),
        }
    }
}

impl core::error::Error for LoopError {}

impl<C: Config> Loop<C> {
    /// Builds a loop (`us_create_loop`) in the memory given. Nothing is allocated.
    pub fn new(
        mut shim: C::Shim,
        mut memory: Memory<C>,
        ext: C::LoopExt,
        callbacks: LoopCallbacks<C>,
        settings: Settings,
    ) -> Result<Self, LoopError> {
        let recv_len = memory.recv.as_mut().len();
        if recv_len <= 2 * RECV_PADDING {
            return Err(LoopError::RecvBufferTooSmall);
        }
        if memory.events.as_mut().is_empty() {
            return Err(LoopError::NoEventSlots);
        }
        let now = shim.now_ms();
        let waker = shim.waker();
        Ok(Loop {
            cx: Cx {
                shim,
                waker,
                sockets: Arena::new(memory.sockets),
                listeners: Arena::new(memory.listeners),
                contexts: Arena::new(memory.contexts),
                timers: Arena::new(memory.timers),
                polls: Arena::new(memory.polls),
                events: memory.events,
                ext,
                callbacks,
                settings: Settings {
                    sweep_period_ms: settings.sweep_period_ms.max(1),
                    ..settings
                },
                iteration: 0,
                now,
                epoch: now,
                tick: 0,
                sweep_at: None,
                keepalive: 0,
                closed_sockets: crate::NIL,
                closed_listeners: crate::NIL,
                failing: crate::NIL,
                pending_connect_errors: 0,
                paused_listeners: 0,
                low_priority: crate::low_priority::Queue::new(),
                timer_pass: 0,
                next_serial: 0,
                recv_capacity: recv_len - 2 * RECV_PADDING,
            },
            recv: memory.recv,
        })
    }

    /// Runs until nothing keeps the loop alive (`us_loop_run`): no socket, listen socket,
    /// non-fallthrough timer or non-fallthrough poll remains. Arms the sweep first.
    pub fn run(&mut self) -> Result<(), OsError> {
        self.cx.integrate();
        while self.cx.keepalive > 0 {
            self.run_once(None)?;
        }
        Ok(())
    }

    /// Runs exactly one iteration, waiting at most `timeout_ms` (`None`: until the next timer
    /// or event). For driving the loop from a foreign event loop together with
    /// [`Cx::next_deadline`].
    pub fn run_once(&mut self, timeout_ms: Option<u64>) -> Result<(), OsError> {
        let cx = &mut self.cx;
        let recv = self.recv.as_mut();
        cx.iteration += 1;
        // Sockets whose write failed outside any callback close now.
        cx.close_failed();
        cx.serve_low_priority();
        if let Some(pre) = cx.callbacks.pre {
            pre(cx);
            cx.close_failed();
        }
        let mut wait = cx
            .next_deadline()
            .map(|d| d.saturating_sub(cx.shim.now_ms()));
        if cx.pending_connect_errors > 0 {
            wait = Some(0);
        }
        let wait = match (wait, timeout_ms) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let n = cx
            .shim
            .wait(cx.events.as_mut(), wait)
            .map_err(OsError::from_shim)?;
        cx.now = cx.shim.now_ms();
        for i in 0..n {
            let Some(ev) = cx.events.as_mut().get(i).copied() else {
                break;
            };
            cx.dispatch(recv, ev);
            cx.close_failed();
        }
        if cx.pending_connect_errors > 0 {
            cx.report_failed_connects();
        }
        cx.run_timers();
        cx.release_closed();
        if let Some(post) = cx.callbacks.post {
            post(cx);
            cx.close_failed();
        }
        Ok(())
    }

    /// Takes the loop apart without closing anything it owns: every descriptor (sockets,
    /// listen sockets, polls) is handed to `keep`, no callback runs, the rest is dropped. For
    /// an owner that must leave descriptors open, as the C ABI's `us_loop_free` does (the C
    /// library does not close sockets there).
    pub fn into_descriptors(mut self, mut keep: impl FnMut(FdOf<C>)) {
        self.cx.dismantle(&mut |_, fd| keep(fd));
    }
}

impl<C: Config> Drop for Loop<C> {
    fn drop(&mut self) {
        self.cx.dismantle(&mut |shim, fd| shim.close(fd));
    }
}

impl<C: Config> Deref for Loop<C> {
    type Target = Cx<C>;
    fn deref(&self) -> &Cx<C> {
        &self.cx
    }
}

impl<C: Config> DerefMut for Loop<C> {
    fn deref_mut(&mut self) -> &mut Cx<C> {
        &mut self.cx
    }
}

impl<C: Config> Cx<C> {
    /// Loop user data (`us_loop_ext`).
    pub fn ext(&self) -> &C::LoopExt {
        &self.ext
    }
    /// Loop user data (`us_loop_ext`).
    pub fn ext_mut(&mut self) -> &mut C::LoopExt {
        &mut self.ext
    }
    /// The number of iterations started (`us_loop_iteration_number`).
    pub fn iteration_number(&self) -> u64 {
        self.iteration
    }
    /// A handle that wakes this loop from any thread and runs `wakeup` on the loop thread
    /// (`us_wakeup_loop`). The only thread-safe operation.
    pub fn waker(&self) -> <C::Shim as OsShim>::Waker {
        self.waker.clone()
    }
    /// Wakes the loop from its own thread (same as calling [`Wake::wake`] on [`waker`](Self::waker)).
    pub fn wakeup(&self) {
        self.waker.wake();
    }
    /// Arms the timeout sweep (`us_loop_integrate`), for loops driven from outside with
    /// [`Loop::run_once`]. [`Loop::run`] does it itself. Idempotent.
    pub fn integrate(&mut self) {
        if self.sweep_at.is_none() {
            let now = self.shim.now_ms();
            let p = self.settings.sweep_period_ms;
            let tick = now.saturating_sub(self.epoch) / p;
            self.sweep_at = Some(self.epoch + (tick + 1) * p);
        }
    }
    /// The loop's settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }
    /// The shim, shared: for its counters and other `&self` reads. The loop never lends it
    /// mutably, so nothing reachable from a loop can close or re-register a descriptor the loop
    /// owns.
    pub fn shim(&self) -> &C::Shim {
        &self.shim
    }
    /// Loop time in milliseconds as of the last wait.
    pub fn now_ms(&self) -> u64 {
        self.now
    }
    /// The shim's clock right now ([`OsShim::now_ms`]), in milliseconds; unlike
    /// [`now_ms`](Self::now_ms) it moves during an iteration.
    pub fn clock_ms(&mut self) -> u64 {
        self.shim.now_ms()
    }
    /// Whether something keeps [`Loop::run`] going.
    pub fn is_alive(&self) -> bool {
        self.keepalive > 0
    }
    /// The earliest absolute time (shim clock, ms) at which the loop has timer work: a user
    /// timer, the sweep or a listener coming back from back-off. `None` when there is none.
    pub fn next_deadline(&self) -> Option<u64> {
        let mut best = self.sweep_at;
        let mut take = |d: Option<u64>| {
            if let Some(d) = d {
                best = Some(best.map_or(d, |b| b.min(d)));
            }
        };
        take(self.next_timer_deadline());
        take(self.next_listener_resume());
        if self.pending_connect_errors > 0 {
            take(Some(self.now));
        }
        best
    }
    /// How many socket slots are occupied, closed-but-not-yet-released ones included.
    pub fn socket_slots_in_use(&self) -> usize {
        self.sockets.live()
    }
    /// How many slots of every arena are occupied: sockets, listen sockets, contexts, timers,
    /// polls. Zero everywhere once everything is closed and released.
    pub fn slots_in_use(&self) -> [usize; 5] {
        [
            self.sockets.live(),
            self.listeners.live(),
            self.contexts.live(),
            self.timers.live(),
            self.polls.live(),
        ]
    }

    fn dispatch(&mut self, recv: &mut [u8], ev: Event) {
        if ev.token == Token::WAKER {
            if let Some(cb) = self.callbacks.wakeup {
                cb(self);
            }
            return;
        }
        match untoken(ev.token) {
            Some((Kind::Socket, generation, index)) => {
                self.socket_event(recv, SocketId::new(index, generation), ev)
            }
            Some((Kind::Listen, generation, index)) => {
                self.listen_event(crate::ListenId::new(index, generation))
            }
            Some((Kind::Poll, generation, index)) => {
                self.poll_event(crate::PollId::new(index, generation), ev)
            }
            None => crate::log::debug!("dropping event with a foreign token"),
        }
    }

    /// Empties every arena, handing each owned descriptor to `f` (with the shim), running no
    /// callback. Used by `Drop` and [`Loop::into_descriptors`].
    fn dismantle(&mut self, f: &mut dyn FnMut(&mut C::Shim, FdOf<C>)) {
        for index in 0..self.sockets.slots() {
            if let Some((g, _)) = self.sockets.at(index) {
                if let Some(fd) = self.sockets.remove(index, g).and_then(|e| e.fd) {
                    f(&mut self.shim, fd);
                }
            }
        }
        for index in 0..self.listeners.slots() {
            if let Some((g, _)) = self.listeners.at(index) {
                if let Some(fd) = self.listeners.remove(index, g).and_then(|e| e.fd) {
                    f(&mut self.shim, fd);
                }
            }
        }
        for index in 0..self.polls.slots() {
            if let Some((g, _)) = self.polls.at(index) {
                if let Some(fd) = self.polls.remove(index, g).and_then(|e| e.fd) {
                    f(&mut self.shim, fd);
                }
            }
        }
        for index in 0..self.timers.slots() {
            if let Some((g, _)) = self.timers.at(index) {
                self.timers.remove(index, g);
            }
        }
        for index in 0..self.contexts.slots() {
            if let Some((g, _)) = self.contexts.at(index) {
                self.contexts.remove(index, g);
            }
        }
        self.keepalive = 0;
        self.closed_sockets = crate::NIL;
        self.closed_listeners = crate::NIL;
        self.failing = crate::NIL;
        self.pending_connect_errors = 0;
        self.paused_listeners = 0;
        self.low_priority = crate::low_priority::Queue::new();
    }

    /// Frees the slots of sockets and listen sockets closed during this iteration.
    fn release_closed(&mut self) {
        let mut released_any = false;
        loop {
            // A `released` callback may fail (and close) a socket: the failing list is always
            // empty before a slot is freed, so it never leads to a freed slot.
            self.close_failed();
            if self.closed_sockets == crate::NIL {
                break;
            }
            let index = self.closed_sockets;
            let Some((generation, entry)) = self.sockets.at(index) else {
                self.closed_sockets = crate::NIL;
                break;
            };
            self.closed_sockets = entry.next;
            if let Some(entry) = self.sockets.remove(index, generation) {
                released_any = true;
                if let Some(cb) = self.callbacks.released {
                    cb(self, SocketId::new(index, generation), entry.ext);
                }
            }
        }
        while self.closed_listeners != crate::NIL {
            let index = self.closed_listeners;
            let Some((generation, entry)) = self.listeners.at(index) else {
                self.closed_listeners = crate::NIL;
                break;
            };
            self.closed_listeners = entry.next;
            self.listeners.remove(index, generation);
        }
        if released_any && self.paused_listeners > 0 {
            self.resume_listeners(true);
        }
    }
}
