//! One iteration of a loop: pre → wait → dispatch → timers → release closed → post; the
//! loop-level API; and taking a loop apart (drop, `into_descriptors`).

use crate::chores;
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
    /// With a shim that has deadline events ([`OsShim::set_deadline`]) an iteration waits
    /// with no timeout and reads no clock: the shim reports when timer work is due, and loop
    /// time is read when something first needs it after the wait (see
    /// [`Cx::now_ms`]). Without them it reads the clock once per iteration, when its wait
    /// returns, and the next wait counts from then. Either way a timer may be late by the
    /// time the iteration's own callbacks took (as with libuv, whose poll timeout counts from
    /// the start of the iteration), never early.
    pub fn run(&mut self) -> Result<(), OsError> {
        self.cx.integrate();
        self.cx.now = self.cx.shim.now_ms().max(self.cx.now);
        // Taken once for the whole run, so that what the dispatch derives from it (the data
        // area's bounds) is derived once too.
        let recv = self.recv.as_mut();
        let cx = &mut self.cx;
        while cx.keepalive > 0 {
            cx.iterate(recv, None, false)?;
        }
        Ok(())
    }

    /// Runs exactly one iteration, waiting at most `timeout_ms` (`None`: until the next timer
    /// or event). For driving the loop from a foreign event loop together with
    /// [`Cx::next_deadline`]. Without deadline events it reads the clock at its start too,
    /// since the caller may have spent any time since the last iteration; with them loop time
    /// is read when first needed, as under [`run`](Self::run).
    pub fn run_once(&mut self, timeout_ms: Option<u64>) -> Result<(), OsError> {
        self.cx.iterate(self.recv.as_mut(), timeout_ms, true)
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
            self.lower_wake(at);
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
    /// Loop time in milliseconds (libuv's `uv_now`). Socket timeouts set inside an iteration
    /// count from it; it never goes back.
    ///
    /// Without deadline events ([`OsShim::set_deadline`]) it is the clock as of when this
    /// iteration's wait returned; before the wait it is that of the iteration before (under
    /// [`Loop::run_once`], or once a timeout was set, as of this iteration's start).
    ///
    /// With them no clock is read when the wait returns: inside an iteration, the first call
    /// after the wait (or the first timeout set, or the timer phase) reads it, and later calls
    /// return the same time until the next wait. That is why it takes `&mut self`. A timer
    /// that this read finds due fires in this iteration's timer phase (after its events) when
    /// the read comes before it, else in the next iteration. Outside an iteration, and in `pre`
    /// (before the wait), it reads no clock: it is loop time as the last iteration left it,
    /// which may be up to a sweep period old under [`Loop::run`] (a timeout set there counts
    /// from the clock all the same). Changed from `&self` with deadline events.
    pub fn now_ms(&mut self) -> u64 {
        if self.deadline_events && self.in_iteration && !self.timeouts_from_now && !self.sweeping {
            self.refresh_now();
        }
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
    /// timer, the sweep or a listener coming back from back-off; loop time when a connect
    /// failed at once and waits to be reported. `None` when there is none.
    #[inline]
    pub fn next_deadline(&self) -> Option<u64> {
        let best = self.next_timer_work();
        if self.pending_connect_errors > 0 {
            return earlier(best, Some(self.now));
        }
        best
    }

    /// The earliest time of timer work: a user timer, the sweep, a listener's back-off end.
    #[inline]
    fn next_timer_work(&self) -> Option<u64> {
        let best = earlier(self.sweep_at, self.next_timer_deadline());
        // The rare part behind one test: every iteration without deadline events asks.
        if self.paused_listeners > 0 {
            return earlier(best, self.next_listener_resume());
        }
        best
    }

    /// One iteration. The two ways of running timers share its events phase (one copy of the
    /// dispatch, which stays inlined in `run`'s loop) and differ before it and after it:
    ///
    /// * with deadline events, inline: no clock read and no timeout computed; the shim's
    ///   deadline is armed again only when the next timer work moved (the
    ///   [`ARM`](chores::ARM) chore); `in_iteration` is set only once the wait returned (before
    ///   it, timeouts count from the clock and loop time is the last iteration's), and loop
    ///   time is stale after the wait until something needs it (`timeouts_from_now` is false
    ///   until then); the timer phase is a chore the deadline event (or a read of loop time
    ///   that finds `wake` passed) sets;
    /// * without them, out of line ([`wait_on_timeouts`](Self::wait_on_timeouts)): the wait's
    ///   timeout runs to the next timer work and the clock is read when it returns; the
    ///   [`ON_TIMEOUTS`](chores::ON_TIMEOUTS) chore, always set, runs the timer phase when
    ///   loop time has reached `wake`. `read_clock`: read the clock at the iteration's start
    ///   too (else loop time stays that of the last wait until something needs it fresh: a
    ///   timeout set before the wait reads it).
    #[inline(always)]
    fn iterate(
        &mut self,
        recv: &mut [u8],
        timeout_ms: Option<u64>,
        read_clock: bool,
    ) -> Result<(), OsError> {
        let n = if self.deadline_events {
            self.iteration += 1;
            if self.chores != 0 {
                self.chores_before_wait();
            }
            if let Some(pre) = C::SHARED_LOOP_CALLBACKS.map_or(self.callbacks.pre, |c| c.pre) {
                pre(self);
            }
            let mut wait = timeout_ms;
            // Sockets `pre` failed are closed in there too (their FAILING chore): one compare
            // for both.
            if self.chores != 0 {
                wait = self.chores_at_wait(wait)?;
            }
            let n = self
                .shim
                .wait(self.events.as_mut(), wait)
                .map_err(OsError::from_shim)?;
            // Loop time is stale from here on (`timeouts_from_now` is false between
            // iterations), until something needs it.
            self.in_iteration = true;
            n
        } else {
            self.wait_on_timeouts(timeout_ms, read_clock)?
        };
        for i in 0..n {
            let Some(ev) = self.events.as_mut().get(i).copied() else {
                break;
            };
            self.dispatch(recv, ev);
            self.close_failed();
        }
        if self.chores != 0 {
            self.chores_after_events();
        }
        if let Some(post) = C::SHARED_LOOP_CALLBACKS.map_or(self.callbacks.post, |c| c.post) {
            post(self);
            self.close_failed();
        }
        self.in_iteration = false;
        self.timeouts_from_now = false;
        Ok(())
    }

    /// Before the wait with deadline events, when a chore is set: sockets that failed in `pre`
    /// are closed; a connect that failed at once is reported after this wait, which must not
    /// sleep (the bit may outlive the last such connect by an iteration: one wait polls in vain
    /// then); the shim's deadline is set again when the next timer work moved or the deadline
    /// was reported. Returns the wait's timeout.
    #[cold]
    #[inline(never)]
    fn chores_at_wait(&mut self, mut wait: Option<u64>) -> Result<Option<u64>, OsError> {
        if self.chores & chores::FAILING != 0 {
            // Failed in `pre`: closed once it returned, as after every top-level callback.
            self.close_failed();
            self.chores &= !chores::FAILING;
        }
        if self.chores & chores::CONNECT_ERRORS != 0 {
            wait = Some(0);
        }
        if self.chores & chores::ARM != 0 {
            // Cleared once armed: a shim error leaves it set, so the next iteration (a caller
            // retrying `run_once`) arms again rather than wait with no deadline.
            wait = self.arm_deadline(wait)?;
            self.chores &= !chores::ARM;
        }
        Ok(wait)
    }

    /// An iteration without deadline events up to its events (see [`iterate`](Self::iterate)): start,
    /// chores, `pre`, the wait with a timeout to the next timer work, the clock read after it.
    /// Returns how many events the wait collected.
    #[inline(never)]
    fn wait_on_timeouts(
        &mut self,
        timeout_ms: Option<u64>,
        read_clock: bool,
    ) -> Result<usize, OsError> {
        self.iteration += 1;
        self.in_iteration = true;
        if read_clock {
            self.now = self.shim.now_ms().max(self.now);
        }
        self.timeouts_from_now = read_clock;
        self.chores_before_wait();
        if let Some(pre) = C::SHARED_LOOP_CALLBACKS.map_or(self.callbacks.pre, |c| c.pre) {
            pre(self);
            self.close_failed();
        }
        // From loop time, as libuv does (under `run`, the last wait's return): the callbacks
        // since then make timers late, never early.
        let deadline = self.next_deadline();
        self.wake = deadline.unwrap_or(NEVER);
        let mut wait = deadline.map(|d| d.saturating_sub(self.now));
        if self.pending_connect_errors > 0 {
            wait = Some(0);
        }
        let wait = earlier(wait, timeout_ms);
        let n = match self.shim.wait(self.events.as_mut(), wait) {
            Ok(n) => n,
            Err(e) => {
                self.in_iteration = false;
                self.timeouts_from_now = false;
                return Err(OsError::from_shim(e));
            }
        };
        // Never back: a timeout set before the wait may have read the clock already.
        self.now = self.shim.now_ms().max(self.now);
        self.timeouts_from_now = true;
        Ok(n)
    }

    /// Reads the clock into loop time (never back). With deadline events, inside an iteration
    /// loop time is fresh from here until the next wait, and timer work it finds due is
    /// recorded for the timer phase.
    #[cold]
    #[inline(never)]
    pub(crate) fn refresh_now(&mut self) {
        self.read_now();
    }

    /// [`refresh_now`](Self::refresh_now), inlined: for the first timeout set after a wait,
    /// which is where a server reads the clock once per iteration.
    #[inline(always)]
    pub(crate) fn read_now(&mut self) {
        self.now = self.shim.now_ms().max(self.now);
        if self.in_iteration && !self.sweeping {
            self.timeouts_from_now = true;
        }
        if self.deadline_events && self.now >= self.wake {
            self.add_chore(chores::TIMERS);
        }
    }

    /// Sets the shim's deadline to `wake` (the next timer work moved, or the deadline was
    /// reported); returns the wait's timeout. A shim that gives deadline events up puts the
    /// loop on timeouts from the next iteration on, and this wait does not sleep.
    fn arm_deadline(&mut self, wait: Option<u64>) -> Result<Option<u64>, OsError> {
        let at = (self.wake != NEVER).then_some(self.wake);
        match self.shim.set_deadline(at) {
            Ok(true) => Ok(wait),
            Ok(false) => {
                self.deadline_events = false;
                self.chores = (self.chores & !chores::TIMERS) | chores::ON_TIMEOUTS;
                Ok(Some(0))
            }
            Err(e) => Err(OsError::from_shim(e)),
        }
    }

    /// Lowers `wake` to `at` if that is earlier: with deadline events the shim's deadline is
    /// set again before the next wait.
    #[inline]
    pub(crate) fn lower_wake(&mut self, at: u64) {
        if at < self.wake {
            self.wake = at;
            self.add_chore(chores::ARM);
        }
    }

    /// The shim reported its deadline: it must be set again (or disarmed) before the next
    /// wait, whatever `wake` is then. Reads loop time, which records the timer phase if `wake`
    /// has come (a deadline reported early by a coarser clock is set again instead).
    #[cold]
    #[inline(never)]
    fn deadline_came(&mut self) {
        if !self.deadline_events {
            return;
        }
        self.add_chore(chores::ARM);
        self.refresh_now();
    }

    /// The timer phase with deadline events (timer work was found due): runs it, then takes
    /// the next timer work as the time to wake at.
    pub(crate) fn timer_phase_on_deadline(&mut self) {
        // Loop time as fresh as the iteration's (a timer armed due during the last pass, or
        // for now, asked for this phase without a read): the pass fires what is due by it.
        if !self.timeouts_from_now {
            self.refresh_now();
            // The read records this very phase (`TIMERS`) when `wake` has come: done here.
            self.chores &= !chores::TIMERS;
        }
        if self.now >= self.wake {
            self.run_timers();
        }
        let next = self.next_timer_work().unwrap_or(NEVER);
        if next != self.wake {
            self.wake = next;
            self.add_chore(chores::ARM);
        }
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
        if ev.token == Token::DEADLINE {
            self.deadline_came();
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
        self.chores = if self.deadline_events {
            0
        } else {
            chores::ON_TIMEOUTS
        };
    }

    /// Frees the slots of sockets and listen sockets closed during this iteration.
    pub(crate) fn release_closed(&mut self) {
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
            if self.listeners.remove(index, generation).is_some() {
                C::listener_released(self, ListenId::new(index, generation));
            }
        }
        if released_any && self.paused_listeners > 0 {
            self.resume_listeners(true);
        }
    }
}
