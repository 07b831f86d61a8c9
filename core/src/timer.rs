//! Timers: kept in core, they set the wait timeout. Any delay and repeat on every shim.

use crate::entry::Timer;
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
        };
        let (index, generation) = self.timers.insert(entry).map_err(|_| CapacityError)?;
        if !fallthrough {
            self.keepalive += 1;
        }
        Ok(TimerId::new(index, generation))
    }

    /// Arms the timer to fire `cb` after `ms`, then every `repeat_ms` (0 = once)
    /// (`us_timer_set`). `ms == 0 && repeat_ms == 0` disarms it.
    pub fn timer_set(&mut self, t: TimerId, cb: TimerCb<C>, ms: u64, repeat_ms: u64) {
        let now = self.shim.now_ms();
        let pass = self.timer_pass;
        let Some(e) = self.timers.get_mut(t.index, t.generation) else {
            return;
        };
        e.cb = Some(cb);
        e.repeat_ms = repeat_ms;
        e.pass = pass;
        e.deadline = if ms == 0 && repeat_ms == 0 {
            None
        } else {
            Some(now.saturating_add(ms))
        };
    }

    /// Stops and frees the timer now (`us_timer_close`), also from inside its own callback.
    /// Returns its ext.
    pub fn timer_close(&mut self, t: TimerId) -> Option<C::TimerExt> {
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

    pub(crate) fn next_timer_deadline(&self) -> Option<u64> {
        (0..self.timers.slots())
            .filter_map(|i| self.timers.at(i).and_then(|(_, e)| e.deadline))
            .min()
    }

    /// Fires due user timers in deadline order, each at most once per pass.
    pub(crate) fn fire_timers(&mut self) {
        self.timer_pass += 1;
        let pass = self.timer_pass;
        let now = self.now;
        loop {
            let mut due: Option<(u64, u32, u32)> = None;
            for i in 0..self.timers.slots() {
                if let Some((g, e)) = self.timers.at(i) {
                    if let Some(d) = e.deadline.filter(|&d| d <= now && e.pass < pass) {
                        if due.is_none_or(|(bd, _, _)| d < bd) {
                            due = Some((d, i, g));
                        }
                    }
                }
            }
            let Some((deadline, index, generation)) = due else {
                return;
            };
            let Some(e) = self.timers.get_mut(index, generation) else {
                continue;
            };
            e.pass = pass;
            e.deadline = if e.repeat_ms > 0 {
                let next = deadline.saturating_add(e.repeat_ms);
                Some(if next <= now { now + e.repeat_ms } else { next })
            } else {
                None
            };
            if let Some(cb) = e.cb {
                cb(self, TimerId::new(index, generation));
                self.close_failed();
            }
        }
    }
}
