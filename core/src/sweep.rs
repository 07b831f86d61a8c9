//! The timeout sweep and the timer phase of an iteration.
//!
//! Socket timeouts are absolute times, "now + n" when set (loop time inside an iteration, the
//! clock outside one): a timeout fires at the first sweep whose tick time is at or after it, so
//! never early (counted from loop time inside an iteration: the time its wait returned) and at
//! most one sweep period late, for every n (nothing wraps).
//!
//! A timeout set while the sweep runs its callbacks (re-armed in `on_timeout`) counts from the
//! tick that fired it instead, so a periodic re-arm with n fires every n seconds (4, 8, 12 for
//! n = 4, as the C library does). Counted from the clock, it would be rounded up from a few
//! milliseconds past the tick to the tick after next: 4, 12, 20.

use crate::entry::NEVER;
use crate::event_loop::{Config, Cx};
use crate::handle::SocketId;
use crate::shim::OsShim;

impl<C: Config> Cx<C> {
    /// When a timeout of `delay_ms` set now is due ([`NEVER`] for a zero delay: off): `now +
    /// delay_ms`, fired by the first sweep whose tick time is at or past it; during the sweep,
    /// the tick time `delay_ms` (rounded up to whole ticks) after the one being swept. `now` is
    /// loop time inside an iteration, the clock outside one. No division on this path: a
    /// request re-arms its timeout, and only the rare set inside the sweep rounds.
    #[inline(always)]
    pub(crate) fn deadline_at(&mut self, delay_ms: u64) -> u64 {
        // The hot path (a request re-arming its timeout inside an iteration) inline, the rest
        // out of line, so that `timeout` saves no registers for a clock call it never makes.
        if self.timeouts_from_now && delay_ms != 0 {
            return self.now.saturating_add(delay_ms);
        }
        self.deadline_at_outside(delay_ms)
    }

    /// [`deadline_at`](Self::deadline_at) off the hot path: off, during the sweep, before
    /// loop time was read in this iteration, or outside an iteration.
    #[inline(never)]
    fn deadline_at_outside(&mut self, delay_ms: u64) -> u64 {
        if delay_ms == 0 {
            return NEVER;
        }
        if self.sweeping {
            let p = self.settings.sweep_period_ms;
            let ticks = self.tick.saturating_add(delay_ms.div_ceil(p));
            return self.epoch.saturating_add(ticks.saturating_mul(p));
        }
        // Inside an iteration this is loop time from now on (as libuv's `uv_now` and the C
        // library's cached timestamp): no clock read on the hot path, where a request re-arms
        // its timeout. Without deadline events only a `pre` or low-priority callback gets here
        // (before the wait); with them the first timeout set after each wait does.
        if self.in_iteration {
            self.read_now();
            return self.now.saturating_add(delay_ms);
        }
        let now = self.shim.now_ms().max(self.epoch);
        now.saturating_add(delay_ms)
    }

    /// The timer phase: user timers, the sweep, listeners coming back from back-off.
    pub(crate) fn run_timers(&mut self) {
        self.fire_timers();
        if let Some(at) = self.sweep_at {
            if at <= self.now {
                let p = self.settings.sweep_period_ms;
                self.tick = (self.now - self.epoch) / p;
                self.sweep_at = Some(self.epoch + (self.tick + 1) * p);
                self.sweep_guarded();
            }
        }
        if self.paused_listeners > 0 {
            self.resume_listeners(false);
        }
    }

    /// Runs the timeout sweep now, out of its schedule (`us_internal_timer_sweep`): fires the
    /// timeouts whose tick has come by the clock, and only those; the scheduled sweeps go on as
    /// before. Does nothing when called from inside a sweep.
    pub fn sweep_now(&mut self) {
        if self.sweeping {
            return;
        }
        let now = self.shim.now_ms();
        let tick = now.saturating_sub(self.epoch) / self.settings.sweep_period_ms;
        // Never back: a clock read earlier in the iteration may be ahead of a later one only
        // if the shim's clock is not monotonic, and a tick once swept stays swept.
        self.tick = self.tick.max(tick);
        self.sweep_guarded();
    }

    /// [`sweep`](Self::sweep) with `sweeping` set, so that timeouts set by its callbacks count
    /// from the tick swept (and the hot path's shortcut is off meanwhile).
    fn sweep_guarded(&mut self) {
        let from_now = self.timeouts_from_now;
        self.timeouts_from_now = false;
        self.sweeping = true;
        self.sweep();
        self.sweeping = false;
        self.timeouts_from_now = from_now;
    }

    /// Fires `on_timeout`, then `on_long_timeout`, for every socket whose deadline has come.
    /// Walks slots by index, so closes and adoptions inside the callbacks are harmless.
    fn sweep(&mut self) {
        // The time of the tick being swept: a timeout due at or before it fires.
        let tick_at = self
            .epoch
            .saturating_add(self.tick.saturating_mul(self.settings.sweep_period_ms));
        for index in 0..self.sockets.slots() {
            let Some((g, e)) = self.sockets.at(index) else {
                continue;
            };
            if e.closed() {
                continue;
            }
            let s = SocketId::new(index, g);
            if e.timeout_at <= tick_at {
                if let Some(e) = self.socket_mut(s) {
                    e.timeout_at = NEVER;
                }
                if let Some(cb) = self.callbacks_of(s).and_then(|c| c.on_timeout) {
                    cb(self, s);
                    self.close_failed();
                }
            }
            let Some(e) = self.socket(s).filter(|e| !e.closed()) else {
                continue;
            };
            if e.long_timeout_at <= tick_at {
                if let Some(e) = self.socket_mut(s) {
                    e.long_timeout_at = NEVER;
                }
                if let Some(cb) = self.callbacks_of(s).and_then(|c| c.on_long_timeout) {
                    cb(self, s);
                    self.close_failed();
                }
            }
        }
    }
}
