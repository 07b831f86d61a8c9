//! The rare work of an iteration, behind one byte: sockets that failed outside a callback,
//! the low-priority queue, connects that failed at once, closed slots to release and (with
//! deadline events) a timer phase to run.
//!
//! Each kind of work sets its bit in `Cx::chores` where it arises; an iteration tests the byte
//! once before its wait and once after its events, and a set bit sends it out of line to
//! the work. A loop without deadline events keeps one bit set for good, as its timer phase
//! is a test every iteration makes. A bit is a hint: the work checks the real state, so a bit set in vain costs a
//! call, never a wrong step; a bit is cleared only once its work is done. With nothing to do
//! (a connection in its steady state) an iteration makes two compares for all of it.

use crate::entry::NIL;
use crate::event_loop::{Config, Cx};

/// Failing sockets wait to be closed (`Cx::failing`).
pub(crate) const FAILING: u8 = 1;
/// The low-priority queue is not empty.
pub(crate) const LOW_PRIORITY: u8 = 2;
/// Connects that failed at once wait for `on_connect_error` (`pending_connect_errors`).
pub(crate) const CONNECT_ERRORS: u8 = 4;
/// Closed sockets or listen sockets wait to be released.
pub(crate) const CLOSED: u8 = 8;
/// With deadline events: timer work is due (the deadline event came, or loop time was read
/// and found `wake` passed).
pub(crate) const TIMERS: u8 = 16;
/// Without deadline events, always set: the iteration's timer phase runs when loop time has
/// reached `wake`, a test every iteration makes.
pub(crate) const ON_TIMEOUTS: u8 = 32;
/// With deadline events: the shim's deadline must be set to `wake` before the next wait
/// (`wake` moved, or the shim reported the deadline).
pub(crate) const ARM: u8 = 64;

impl<C: Config> Cx<C> {
    /// Records rare work for this iteration or the next (see the module docs).
    #[inline(always)]
    pub(crate) fn add_chore(&mut self, bit: u8) {
        self.chores |= bit;
    }

    /// The start of an iteration, when a chore is set: close the sockets whose write failed
    /// outside any callback, then give queued low-priority sockets their turn.
    #[cold]
    #[inline(never)]
    pub(crate) fn chores_before_wait(&mut self) {
        self.close_failed();
        self.chores &= !FAILING;
        if self.chores & LOW_PRIORITY != 0 {
            self.serve_low_priority();
            if self.low_priority.head == NIL {
                self.chores &= !LOW_PRIORITY;
            }
        }
    }

    /// After an iteration's events, when a chore is set: report connects that failed at once,
    /// run the timer phase (with deadline events when it is due; without them when loop time
    /// has reached `wake`), release the slots closed so far, in the order an iteration always
    /// had.
    #[cold]
    #[inline(never)]
    pub(crate) fn chores_after_events(&mut self) {
        self.report_connect_errors();
        if self.chores & ON_TIMEOUTS != 0 {
            if self.now >= self.wake {
                self.run_timers();
            }
        } else if self.chores & TIMERS != 0 {
            self.chores &= !TIMERS;
            self.timer_phase_on_deadline();
        }
        self.release_if_closed();
    }

    /// Runs `on_connect_error` for the connects that failed at once, if any wait.
    #[inline]
    pub(crate) fn report_connect_errors(&mut self) {
        if self.chores & CONNECT_ERRORS != 0 {
            if self.pending_connect_errors > 0 {
                self.report_failed_connects();
            }
            if self.pending_connect_errors == 0 {
                self.chores &= !CONNECT_ERRORS;
            }
        }
    }

    /// Releases the closed slots if any wait.
    #[inline]
    pub(crate) fn release_if_closed(&mut self) {
        if self.chores & CLOSED != 0 {
            self.chores &= !CLOSED;
            self.release_closed();
        }
    }
}
