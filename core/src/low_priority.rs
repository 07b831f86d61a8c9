//! The low-priority queue: sockets whose reads are rationed per iteration (TLS handshakes).
//!
//! A socket marked low priority spends one unit of the loop's per-iteration budget per read.
//! When the budget is gone its readiness is deferred: readable interest is dropped and the socket
//! joins a FIFO queue (once: a flag guards it). At the start of each iteration up to a budget's
//! worth of queued sockets get readable interest back and may read once without spending more.
//! The queue is the loop's, so adopting a queued socket into another context keeps it queued
//! under its new context; closing removes it.

use crate::entry::NIL;
use crate::event_loop::{Config, Cx, Queue};
use crate::handle::SocketId;
use crate::shim::Interest;

impl<C: Config> Cx<C> {
    /// Marks a socket low priority (or not). Its reads then count against the per-iteration
    /// budget of [`Settings::low_priority_budget`](crate::Settings::low_priority_budget).
    pub fn set_low_priority(&mut self, s: SocketId, on: bool) {
        if let Some(e) = self.socket_mut(s).filter(|e| !e.closed()) {
            e.set_low_priority(on);
        }
    }

    /// Whether the socket waits in the low-priority queue.
    pub fn is_low_priority_queued(&self, s: SocketId) -> Option<bool> {
        self.socket(s).map(|e| e.queued())
    }

    /// How many sockets wait in the low-priority queue.
    pub fn low_priority_queue_len(&self) -> usize {
        self.low_priority.len
    }

    /// Whether a low-priority socket may read now; if not, it is queued.
    pub(crate) fn take_low_priority_turn(&mut self, s: SocketId) -> bool {
        // The budget is this iteration's: filled by the first read of the iteration (or by
        // serving the queue at its start), so an iteration with no low-priority socket does
        // nothing for it.
        if self.low_priority.iteration != self.iteration {
            self.low_priority.iteration = self.iteration;
            self.low_priority.budget = self.settings.low_priority_budget;
        }
        let budget = self.low_priority.budget;
        let Some(e) = self.socket_mut(s) else {
            return false;
        };
        if e.low_priority_turn() {
            e.set_low_priority_turn(false);
            return true;
        }
        if budget > 0 {
            self.low_priority.budget -= 1;
            return true;
        }
        if !e.queued() {
            e.set_queued(true);
            e.queue_next = NIL;
            let i = e.interest.without(Interest::READABLE);
            let tail = self.low_priority.tail;
            match self.sockets.at(tail).map(|(g, _)| g) {
                Some(g) => {
                    if let Some(t) = self.sockets.get_mut(tail, g) {
                        t.queue_next = s.index;
                    }
                }
                None => self.low_priority.head = s.index,
            }
            self.low_priority.tail = s.index;
            self.low_priority.len += 1;
            self.add_chore(crate::chores::LOW_PRIORITY);
            self.set_socket_interest(s, i);
        }
        false
    }

    /// Start of an iteration with sockets queued: fill the budget and give queued sockets
    /// their turn.
    pub(crate) fn serve_low_priority(&mut self) {
        self.low_priority.iteration = self.iteration;
        self.low_priority.budget = self.settings.low_priority_budget;
        while self.low_priority.budget > 0 && self.low_priority.head != NIL {
            let index = self.low_priority.head;
            let Some((g, _)) = self.sockets.at(index) else {
                self.low_priority = Queue {
                    iteration: self.iteration,
                    ..Queue::new()
                };
                return;
            };
            let s = SocketId::new(index, g);
            self.low_priority_remove(s);
            self.low_priority.budget -= 1;
            if let Some(e) = self.socket_mut(s) {
                e.set_low_priority_turn(true);
                let i = if e.peer_fin() {
                    e.interest
                } else {
                    e.interest.with(Interest::READABLE)
                };
                self.set_socket_interest(s, i);
            }
        }
    }

    /// Takes a socket out of the queue if it is in it.
    pub(crate) fn low_priority_remove(&mut self, s: SocketId) {
        if !self.socket(s).is_some_and(|e| e.queued()) {
            return;
        }
        let mut prev = NIL;
        let mut cur = self.low_priority.head;
        while cur != NIL && cur != s.index {
            prev = cur;
            cur = self.sockets.at(cur).map_or(NIL, |(_, e)| e.queue_next);
        }
        if cur == NIL {
            return;
        }
        let next = self.socket(s).map_or(NIL, |e| e.queue_next);
        match self.sockets.at(prev).map(|(g, _)| g) {
            Some(g) => {
                if let Some(p) = self.sockets.get_mut(prev, g) {
                    p.queue_next = next;
                }
            }
            None => self.low_priority.head = next,
        }
        if self.low_priority.tail == s.index {
            self.low_priority.tail = prev;
        }
        self.low_priority.len -= 1;
        if let Some(e) = self.socket_mut(s) {
            e.set_queued(false);
            e.queue_next = NIL;
        }
    }
}
