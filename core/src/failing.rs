//! Sockets that failed and close as soon as the running callback returns.
//!
//! A hard send error (EPIPE, ECONNRESET, anything but would-block) is not backpressure: the
//! connection is dead. `write` then returns 0, arms no writable interest and marks the socket
//! *failing*; the socket is closed with [`CloseCause::Os`] as soon as the callback that wrote
//! returns (or, for a write made outside any callback, at the start of the next iteration), so
//! `on_close` never runs in the middle of the code that called `write`. A poller that refuses a
//! socket's interest change fails the socket the same way.
//!
//! Failing sockets are chained through the socket slot's `queue_next`, the low-priority queue's
//! link: a socket leaves that queue when it starts failing and never re-enters it, so it is in
//! at most one of the two lists. The chain is drained after every top-level callback and before
//! any closed slot is released, so it never points at a freed slot.

use crate::close::CloseCause;
use crate::entry::NIL;
use crate::event_loop::{Config, Cx};
use crate::handle::SocketId;
use crate::shim::OsError;

impl<C: Config> Cx<C> {
    /// Marks `s` failing with `err` after a hard send error or a refused interest change: no
    /// more writes or reads, no writable interest; closed by
    /// [`close_failed`](Self::close_failed).
    pub(crate) fn fail_socket(&mut self, s: SocketId, err: OsError) {
        let Some(e) = self.socket(s) else { return };
        if e.closed() || e.pending_error().is_some() {
            return;
        }
        crate::log::debug!("socket failed with os error {}: closing", err.code);
        self.low_priority_remove(s);
        let head = self.failing;
        if let Some(e) = self.socket_mut(s) {
            e.set_pending_error(Some(err));
            e.queue_next = head;
        }
        self.failing = s.index;
        self.add_chore(crate::chores::FAILING);
    }

    /// Closes every failing socket with its error. Runs after each top-level callback, at the
    /// start of an iteration and before closed slots are released: the common case, nothing
    /// failing, is one compare inlined at each of those places.
    #[inline(always)]
    pub(crate) fn close_failed(&mut self) {
        if self.failing != NIL {
            self.close_failing_sockets();
        }
    }

    /// The work of [`close_failed`](Self::close_failed) when a socket is failing.
    #[cold]
    #[inline(never)]
    fn close_failing_sockets(&mut self) {
        while self.failing != NIL {
            let index = self.failing;
            let Some((g, e)) = self.sockets.at(index) else {
                self.failing = NIL;
                return;
            };
            self.failing = e.queue_next;
            let s = SocketId::new(index, g);
            let err = if e.closed() { None } else { e.pending_error() };
            if let Some(e) = self.socket_mut(s) {
                e.queue_next = NIL;
            }
            if let Some(err) = err {
                self.close_with(s, CloseCause::Os(err));
            }
        }
    }
}
