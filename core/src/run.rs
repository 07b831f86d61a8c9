//! One iteration of a loop: pre → wait → dispatch → timers → release closed → post; the
//! loop-level API; and taking a loop apart (drop, `into_descriptors`).

use crate::entry::{NEVER, NIL};
use crate::event_loop::{Config, Cx, FdOf, Loop, Queue};
use crate::handle::{socket_token, untoken, Kind, ListenId, PollId, SocketId};
use crate::settings::Settings;
use crate::shim::{Event, OsError, OsShim, Token, Wake};

/// The earlier of two optional times (`None`: no time, so the other wins).
#[inline(always)]
fn earlier(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

impl<C: Config> Loop<C> {
    /// Runs until nothing keeps the loop alive (`us_loop_run`): no socket, listen socket,
    /// non-fallthrough timer or non-fallthrough poll remains. Arms the sweep first.
    ///
    /// Reads the clock once per iteration, when its wait returns: the next wait counts from
    /// then, so a timer may be late by the time the iteration's own callbacks took (as with
    /// libuv, whose poll timeout counts from the start of the iteration), never early.
    pub fn run(&mut self) -> Result<(), OsError> {
        self.cx.integrate();
        self.cx.now = self.cx.shim.now_ms().max(self.cx.epoch);
        while self.cx.keepalive > 0 {
            self.iterate(None, false)?;
        }
        Ok(())
    }

    /// Runs exactly one iteration, waiting at most `timeout_ms` (`None`: until the next timer
    /// or event). For driving the loop from a foreign event loop together with
    /// [`Cx::next_deadline`]. Reads the clock at its start too, since the caller may have
    /// spent any time since the last iteration.
    pub fn run_once(&mut self, timeout_ms: Option<u64>) -> Result<(), OsError> {
        self.iterate(timeout_ms, true)
    }

    /// One iteration; `read_clock`: read the clock at its start (else loop time stays that of
    /// the last wait until something needs it fresh: a timeout set before the wait reads it).
    #[inline(always)]
    fn iterate(&mut self, timeout_ms: Option<u64>, read_clock: bool) -> Result<(), OsError> {
        let cx = &mut self.cx;
        let recv = self.recv.as_mut();
        cx.iteration += 1;
        cx.in_iteration = true;
        if read_clock {
            cx.now = cx.shim.now_ms().max(cx.epoch);
        }
        cx.timeouts_from_now = read_clock;
        // Sockets whose write failed outside any callback close now.
        cx.close_failed();
        cx.serve_low_priority();
        if let Some(pre) = C::SHARED_LOOP_CALLBACKS.map_or(cx.callbacks.pre, |c| c.pre) {
            pre(cx);
            cx.close_failed();
        }
        // From loop time, as libuv does (under `run`, the last wait's return): the callbacks
        // since then make timers late, never early.
        let deadline = cx.next_deadline();
        cx.wake = deadline.unwrap_or(NEVER);
        let mut wait = deadline.map(|d| d.saturating_sub(cx.now));
        if cx.pending_connect_errors > 0 {
            wait = Some(0);
        }
        let wait = earlier(wait, timeout_ms);
        let n = cx.shim.wait(cx.events.as_mut(), wait).map_err(|e| {
            // No iteration goes on: timeouts set from outside read the clock again.
            cx.in_iteration = false;
            cx.timeouts_from_now = false;
            OsError::from_shim(e)
        })?;
        // Never back: a timeout set before the wait may have read the clock already.
        cx.now = cx.shim.now_ms().max(cx.now);
        cx.timeouts_from_now = true;
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
        if cx.now >= cx.wake {
            cx.run_timers();
        }
        cx.release_closed();
        if let Some(post) = C::SHARED_LOOP_CALLBACKS.map_or(cx.callbacks.post, |c| c.post) {
            post(cx);
            cx.close_failed();
        }
        cx.in_iteration = false;
        cx.timeouts_from_now = false;
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
            let at = self.epoch + (tick + 1) * p;
            self.sweep_at = Some(at);
            self.wake = self.wake.min(at);
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
    /// Loop time in milliseconds (libuv's `uv_now`): the clock as of when this iteration's
    /// wait returned. Before the wait it is that of the iteration before (under
    /// [`Loop::run_once`], or once a timeout was set, as of this iteration's start). Socket
    /// timeouts set inside an iteration count from it.
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
    #[inline]
    pub fn next_deadline(&self) -> Option<u64> {
        let mut best = earlier(self.sweep_at, self.next_timer_deadline());
        // The rare parts behind one test each: every iteration asks.
        if self.paused_listeners > 0 {
            best = earlier(best, self.next_listener_resume());
        }
        if self.pending_connect_errors > 0 {
            best = earlier(best, Some(self.now));
        }
        best
    }
    /// How many socket slots are occupied, closed-but-not-yet-released ones included.
    pub fn socket_slots_in_use(&self) -> usize {
        self.sockets.live()
    }
    /// How many listen socket slots are occupied, closed-but-not-yet-released ones included
    /// (the second of [`slots_in_use`](Self::slots_in_use), alone: cheap enough to ask every
    /// iteration).
    pub fn listen_slots_in_use(&self) -> usize {
        self.listeners.live()
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

    #[inline(always)]
    fn dispatch(&mut self, recv: &mut [u8], ev: Event) {
        if let Some((generation, index)) = socket_token(ev.token) {
            self.socket_event(recv, SocketId::new(index, generation), ev);
            return;
        }
        self.dispatch_other(ev);
    }

    /// [`dispatch`](Self::dispatch) for the waker, listen sockets and polls.
    fn dispatch_other(&mut self, ev: Event) {
        if ev.token == Token::WAKER {
            if let Some(cb) = C::SHARED_LOOP_CALLBACKS.map_or(self.callbacks.wakeup, |c| c.wakeup) {
                cb(self);
            }
            return;
        }
        match untoken(ev.token) {
            // Taken by `dispatch` already.
            Some((Kind::Socket, _, _)) => {}
            Some((Kind::Listen, generation, index)) => {
                self.listen_event(ListenId::new(index, generation))
            }
            Some((Kind::Poll, generation, index)) => {
                self.poll_event(PollId::new(index, generation), ev)
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
        self.timer_index = crate::timer_heap::TimerIndex::new();
        for index in 0..self.contexts.slots() {
            if let Some((g, _)) = self.contexts.at(index) {
                self.contexts.remove(index, g);
            }
        }
        self.keepalive = 0;
        self.closed_sockets = NIL;
        self.closed_listeners = NIL;
        self.failing = NIL;
        self.pending_connect_errors = 0;
        self.paused_listeners = 0;
        self.low_priority = Queue::new();
    }

    /// Frees the slots of sockets and listen sockets closed during this iteration.
    fn release_closed(&mut self) {
        let mut released_any = false;
        loop {
            // A `released` callback may fail (and close) a socket: the failing list is always
            // empty before a slot is freed, so it never leads to a freed slot.
            self.close_failed();
            if self.closed_sockets == NIL {
                break;
            }
            let index = self.closed_sockets;
            let Some((generation, entry)) = self.sockets.at(index) else {
                self.closed_sockets = NIL;
                break;
            };
            self.closed_sockets = entry.next;
            if let Some(entry) = self.sockets.remove(index, generation) {
                released_any = true;
                if let Some(cb) =
                    C::SHARED_LOOP_CALLBACKS.map_or(self.callbacks.released, |c| c.released)
                {
                    cb(self, SocketId::new(index, generation), entry.ext);
                }
            }
        }
        while self.closed_listeners != NIL {
            let index = self.closed_listeners;
            let Some((generation, entry)) = self.listeners.at(index) else {
                self.closed_listeners = NIL;
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
