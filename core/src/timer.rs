//! Timers: kept in core, they set the wait timeout. Any delay and repeat on every shim.
//!
//! Armed timers are ordered in the timer index (the `timer_heap` module): arming costs O(1),
//! re-arming, disarming and closing an armed timer O(log n) amortized, the next deadline O(1),
//! and a pass pops exactly the timers that are due, O(log n) amortized each: no step scans the
//! timers, so a pass costs what it fires, not what is armed.

use crate::entry::{Links, Timer};
use crate::error::CapacityError;
use crate::event_loop::{Config, Cx, TimerCb};
use crate::handle::TimerId;
use crate::shim::OsShim;

impl<C: Config> Cx<C> {
    /// Creates a disarmed timer (`us_create_timer`). A non-fallthrough timer keeps
    /// [`Loop::run`](crate::Loop::run) going until it is closed, armed or not.
    pub fn timer_create(
        &mut self,
        fallthrough: bool,
        ext: C::TimerExt,
    ) -> Result<TimerId, CapacityError> {
        let entry = Timer {
            ext,
            fallthrough,
            deadline: None,
            repeat_ms: 0,
            cb: None,
            pass: 0,
            links: Links::DETACHED,
        };
        let (index, generation) = self.timers.insert(entry).map_err(|_| CapacityError)?;
        if !fallthrough {
            self.keepalive += 1;
        }
        Ok(TimerId::new(index, generation))
    }

    /// Arms the timer to fire `cb` after `ms`, then every `repeat_ms` (0 = once)
    /// (`us_timer_set`). `ms == 0 && repeat_ms == 0` disarms it.
    ///
    /// Armed while the loop fires timers (from a timer callback, say), it fires in the next
    /// timer pass at the earliest, even when already due. Cost: O(1) for a disarmed timer, O(log n) amortized in the
    /// number of armed timers for an armed one.
    pub fn timer_set(&mut self, t: TimerId, cb: TimerCb<C>, ms: u64, repeat_ms: u64) {
        let now = self.shim.now_ms();
        let Some(e) = self.timers.get_mut(t.index, t.generation) else {
            return;
        };
        e.cb = Some(cb);
        e.repeat_ms = repeat_ms;
        let deadline = if ms == 0 && repeat_ms == 0 {
            None
        } else {
            Some(now.saturating_add(ms))
        };
        self.timer_unlink(t.index);
        self.timer_link(t.index, deadline);
    }

    /// Stops and frees the timer now (`us_timer_close`), also from inside its own callback.
    /// Returns its ext. O(log n) amortized in the number of armed timers.
    pub fn timer_close(&mut self, t: TimerId) -> Option<C::TimerExt> {
        self.timers.get(t.index, t.generation)?;
        self.timer_unlink(t.index);
        let e = self.timers.remove(t.index, t.generation)?;
        if !e.fallthrough {
            self.keepalive -= 1;
        }
        Some(e.ext)
    }

    /// Timer user data (`us_timer_ext`).
    pub fn timer_ext(&self, t: TimerId) -> Option<&C::TimerExt> {
        self.timers.get(t.index, t.generation).map(|e| &e.ext)
    }
    /// Timer user data, mutably.
    pub fn timer_ext_mut(&mut self, t: TimerId) -> Option<&mut C::TimerExt> {
        self.timers
            .get_mut(t.index, t.generation)
            .map(|e| &mut e.ext)
    }
    /// Whether the timer is armed.
    pub fn timer_is_armed(&self, t: TimerId) -> Option<bool> {
        self.timers
            .get(t.index, t.generation)
            .map(|e| e.deadline.is_some())
    }

    /// The earliest deadline of the armed timers. O(1).
    #[inline]
    pub(crate) fn next_timer_deadline(&self) -> Option<u64> {
        self.timer_index.next_deadline(&self.timers)
    }

    /// Takes the timer in slot `index` out of the index, if it is armed; it is disarmed then.
    fn timer_unlink(&mut self, index: u32) {
        let Some((_, e)) = self.timers.at(index) else {
            return;
        };
        if e.deadline.is_none() {
            return;
        }
        let pass = e.pass;
        self.timer_index
            .heap_of(pass)
            .remove(&mut self.timers, index);
        if let Some((generation, _)) = self.timers.at(index) {
            if let Some(e) = self.timers.get_mut(index, generation) {
                e.deadline = None;
            }
        }
    }

    /// Arms the disarmed timer in slot `index` for `deadline` (`None`: leaves it disarmed).
    /// Armed while a pass runs, it waits aside for the next pass.
    fn timer_link(&mut self, index: u32, deadline: Option<u64>) {
        let Some((generation, _)) = self.timers.at(index) else {
            return;
        };
        let pass = self.timer_index.pass;
        let Some(e) = self.timers.get_mut(index, generation) else {
            return;
        };
        e.deadline = deadline;
        if deadline.is_none() {
            return;
        }
        e.pass = pass;
        self.timer_index.heap_of(pass).push(&mut self.timers, index);
        if let Some(d) = deadline {
            self.lower_wake(d);
            // Due by loop time already (a zero delay): this iteration's timer phase runs it
            // (the next one's, when set during a pass), as without deadline events.
            if self.deadline_events && d <= self.now {
                self.add_chore(crate::chores::TIMERS);
            }
        }
    }

    /// Fires the due user timers in deadline order, each at most once per pass: it pops them
    /// off the index one by one, and a timer armed meanwhile (a repeat, or by a callback) waits
    /// aside until the pass ends. Callbacks may close, arm or create any timer.
    pub(crate) fn fire_timers(&mut self) {
        // Nothing due, the common case: no pass (a skipped pass changes nothing, as no timer
        // is set aside outside one).
        if self.next_timer_deadline().is_none_or(|d| d > self.now) {
            return;
        }
        self.timer_index.pass += 1;
        self.timer_index.firing = true;
        let now = self.now;
        while let Some(index) = self.timer_index.armed.peek() {
            let Some((generation, e)) = self.timers.at(index) else {
                break;
            };
            let Some(deadline) = e.deadline.filter(|&d| d <= now) else {
                break;
            };
            self.timer_index.armed.pop(&mut self.timers);
            let Some(e) = self.timers.get_mut(index, generation) else {
                continue;
            };
            e.deadline = None;
            let next = (e.repeat_ms > 0).then(|| {
                let next = deadline.saturating_add(e.repeat_ms);
                if next <= now {
                    now.saturating_add(e.repeat_ms)
                } else {
                    next
                }
            });
            let cb = e.cb;
            self.timer_link(index, next);
            if let Some(cb) = cb {
                cb(self, TimerId::new(index, generation));
                self.close_failed();
            }
        }
        self.timer_index.firing = false;
        let (armed, aside) = (&mut self.timer_index.armed, &mut self.timer_index.aside);
        armed.absorb(&mut self.timers, aside);
    }
}
