//! Completions: each one applied to the state of the descriptor it is for. Nothing here
//! reports to core directly; a descriptor whose state changed is queued for the readiness
//! pass (`ready` module).

use std::os::fd::{FromRawFd, OwnedFd};

use usockets_shim_unix::sys;

use crate::conn::Kind;
use crate::op::{unpack, Op};
use crate::ring::{buffer, more, Completion, BATCH};
use crate::stream::enqueue;
use crate::UringShim;

/// Errors of a pending connection that end a multishot accept but leave the listener
/// fine (accept(2) says to treat them like `EAGAIN`): the accept is simply armed again.
fn transient_accept_error(code: i32) -> bool {
    matches!(
        code,
        libc::ECONNABORTED
            | libc::ENETDOWN
            | libc::EPROTO
            | libc::ENOPROTOOPT
            | libc::EHOSTDOWN
            | libc::ENONET
            | libc::EHOSTUNREACH
            | libc::EOPNOTSUPP
            | libc::ENETUNREACH
            | libc::EINTR
            | libc::EAGAIN
    )
}

impl UringShim {
    /// Handles every completion on the queue (no syscall).
    pub(crate) fn reap(&mut self) {
        let mut batch = [Completion::default(); BATCH];
        loop {
            let n = self.ring.take(&mut batch);
            for c in &batch[..n] {
                self.complete(*c);
            }
            if n < BATCH {
                return;
            }
        }
    }

    fn complete(&mut self, cqe: Completion) {
        let last = !more(cqe.flags);
        if last {
            self.ring.in_flight = self.ring.in_flight.saturating_sub(1);
        }
        let Some((op, fd, generation)) = unpack(cqe.user_data) else {
            return;
        };
        match op {
            Op::Cancel => {}
            Op::Waker => self.waker_fired(),
            Op::Deadline => {
                if generation == self.deadline_gen && cqe.result == -libc::ETIME {
                    self.deadline_armed = false;
                    self.deadline_fired = true;
                }
            }
            Op::Poll => {
                let Some(c) = self.table.get_mut(fd) else {
                    return;
                };
                if c.kind == Kind::Listener && c.fallback_poll {
                    self.listener_polled(fd, generation);
                    return;
                }
                if c.kind != Kind::Poll || c.generation != generation {
                    return;
                }
                c.armed = false;
                c.cancelling = false;
                if cqe.result > 0 {
                    c.revents |= cqe.result as u32;
                    enqueue(&mut self.ready, c, fd);
                } else if cqe.result < 0 && cqe.result != -libc::ECANCELED {
                    c.revents |= libc::POLLERR as u32;
                    enqueue(&mut self.ready, c, fd);
                }
                if c.registered && !c.interest.is_empty() {
                    self.poll_rearm.push(fd);
                }
            }
            Op::Recv | Op::Send | Op::Accept | Op::Connect => {
                self.socket_completion(op, fd, generation, cqe, last)
            }
        }
    }

    /// A completion of an operation on a socket (counted in its `ops`).
    fn socket_completion(&mut self, op: Op, fd: u32, generation: u32, cqe: Completion, last: bool) {
        let Some(c) = self.table.get_mut(fd) else {
            self.stray(op, cqe);
            return;
        };
        if last {
            c.ops = c.ops.saturating_sub(1);
        }
        if c.generation != generation {
            self.stray(op, cqe);
            return;
        }
        match op {
            Op::Recv => self.received(fd, cqe, last),
            Op::Send => self.sent(fd, cqe.result),
            Op::Accept => self.accepted(fd, cqe, last),
            Op::Connect => {
                c.connecting = false;
                c.connect_to = None;
                if cqe.result < 0 && c.error == 0 {
                    c.error = -cqe.result;
                }
                self.mark_ready(fd);
            }
            _ => {}
        }
        if self.table.get(fd).is_some_and(|c| c.is_closing()) {
            self.finish_close(fd);
        }
    }

    /// A completion for no live state: give back what it carries.
    fn stray(&mut self, op: Op, cqe: Completion) {
        if let (Op::Recv, Some(bid)) = (op, buffer(cqe.flags)) {
            self.rx.taken(bid, 0);
            self.rx.give_back(bid);
        }
        if op == Op::Accept && cqe.result >= 0 {
            // SAFETY: the kernel created this descriptor for the shim's accept; nothing else
            // knows its number, so taking ownership (and closing it) is sound.
            let owned = unsafe { OwnedFd::from_raw_fd(cqe.result) };
            sys::close_owned(&mut self.c, owned);
        }
    }

    /// A multishot receive completion: bytes into the chain, FIN, or the end of the receive.
    fn received(&mut self, fd: u32, cqe: Completion, last: bool) {
        let cap = self.config.unread_cap;
        let closing = self.table.get(fd).is_none_or(|c| c.is_closing());
        if let Some(bid) = buffer(cqe.flags) {
            let n = cqe.result.max(0) as u32;
            if self.rx.taken(bid, n) && n > 0 && !closing {
                self.chain(fd, bid, n);
            } else if usize::from(bid) < self.rx.len.len() {
                self.rx.give_back(bid);
            }
        }
        let Some(c) = self.table.get_mut(fd) else {
            return;
        };
        match cqe.result {
            0 => c.fin = true,
            r if r < 0 => match -r {
                libc::ECANCELED => {}
                libc::ENOBUFS => {
                    if !c.starved {
                        c.starved = true;
                        self.starved.push(fd);
                    }
                }
                code => {
                    if c.error == 0 {
                        c.error = code;
                    }
                }
            },
            _ => {}
        }
        let c = match self.table.get_mut(fd) {
            Some(c) => c,
            None => return,
        };
        if last {
            c.armed = false;
            c.cancelling = false;
        }
        let over_cap = c.armed && c.rx_bytes >= cap;
        let wake = c.registered && (c.rx_bytes > 0 || c.fin || c.error != 0);
        if wake {
            self.mark_ready(fd);
        }
        if over_cap {
            self.cancel(fd, Op::Recv);
        } else if last {
            // The receive ended (cancelled at the cap, out of buffers, or the kernel stopped
            // it): armed again at once if it still should run.
            self.arm_recv(fd);
        }
    }

    /// A multishot accept completion: a new connection for the queue, or the end of the
    /// accept (re-armed, or the fallback to the plain syscall on a real error).
    fn accepted(&mut self, fd: u32, cqe: Completion, last: bool) {
        let cap = self.config.accept_queue as usize;
        let Some(c) = self.table.get_mut(fd) else {
            return;
        };
        if cqe.result >= 0 {
            // SAFETY: the kernel created this descriptor for the shim's accept; nothing else
            // knows its number.
            let owned = unsafe { OwnedFd::from_raw_fd(cqe.result) };
            if c.kind == Kind::Listener && !c.is_closing() {
                c.accepted.push_back(owned);
            } else {
                sys::close_owned(&mut self.c, owned);
            }
        }
        let c = match self.table.get_mut(fd) {
            Some(c) => c,
            None => return,
        };
        let mut rearm = false;
        if last {
            c.armed = false;
            c.cancelling = false;
            let code = -cqe.result;
            if cqe.result >= 0 || code == libc::ECANCELED || transient_accept_error(code) {
                // Armed again if it should run: a cancel at the queue's cap is undone once
                // core has taken from the queue (a pause's or a close's is not: `arm_accept`
                // checks the interest and the state).
                rearm = true;
            } else {
                // Out of descriptors above all: a multishot accept fails at once then, with or
                // without a pending connection, so it is not armed again until `accept`
                // through the syscall has found descriptors (see `listener_accept`).
                c.accept_fallback = true;
                c.fallback_ready = true;
            }
        }
        let full = c.accepted.len() >= cap;
        let wake = c.registered && (!c.accepted.is_empty() || c.fallback_ready);
        if wake {
            self.mark_ready(fd);
        }
        if full {
            self.cancel(fd, Op::Accept);
        } else if rearm {
            self.arm_accept(fd);
        }
    }
}
