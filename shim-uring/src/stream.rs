//! Stream sockets: receives from the connection's chain of filled buffers, sends copied into
//! its slab, the multishot receive armed and cancelled, shutdown after the queued bytes, and
//! the deferred close.

use std::os::fd::OwnedFd;

use io_uring::{opcode, types};

use usockets_shim_unix::{net, sys};

use crate::conn::{Conn, Kind, NO_CHUNK};
use crate::memory::{BGID, NO_BUF};
use crate::op::{pack, Op};
use crate::{UringError, UringShim};

/// `ErrorKind::WouldBlock`.
fn would_block() -> UringError {
    UringError::from_errno(libc::EAGAIN)
}

impl UringShim {
    /// Queues `fd` for the next readiness pass.
    #[inline]
    pub(crate) fn mark_ready(&mut self, fd: u32) {
        if let Some(c) = self.table.get_mut(fd) {
            enqueue(&mut self.ready, c, fd);
        }
    }

    /// Arms `fd`'s multishot receive if it should run: registered for reading, nothing ended
    /// it (FIN, error, close), under the unread cap. Out of buffers, it waits on the starved
    /// list.
    pub(crate) fn arm_recv(&mut self, fd: u32) {
        let cap = self.config.unread_cap;
        let Some(c) = self.table.get_mut(fd) else {
            return;
        };
        if c.kind != Kind::Stream
            || !c.registered
            || !c.interest.is_readable()
            || c.armed
            || c.fin
            || c.error != 0
            || c.connecting
            || c.is_closing()
            || c.rx_bytes >= cap
        {
            return;
        }
        if self.rx.available == 0 {
            if !c.starved {
                c.starved = true;
                self.starved.push(fd);
            }
            return;
        }
        let entry = opcode::RecvMulti::new(types::Fd(fd as i32), BGID)
            .build()
            .user_data(pack(Op::Recv, fd, c.generation));
        // SAFETY: a multishot receive writes only into the provided buffer ring's buffers,
        // which live until the shim's drop has drained every operation.
        if unsafe { self.ring.push(&entry) } {
            c.armed = true;
            c.starved = false;
            c.ops += 1;
        }
    }

    /// Cancels `fd`'s armed multishot operation (receive, accept or poll) of operation `op`.
    pub(crate) fn cancel(&mut self, fd: u32, op: Op) {
        let Some(c) = self.table.get_mut(fd) else {
            return;
        };
        if !c.armed || c.cancelling {
            return;
        }
        let target = pack(op, fd, c.generation);
        let entry = match op {
            Op::Poll => opcode::PollRemove::new(target).build(),
            _ => opcode::AsyncCancel::new(target).build(),
        }
        .user_data(pack(Op::Cancel, fd, 0));
        // SAFETY: a cancel carries no pointer.
        if unsafe { self.ring.push(&entry) } {
            c.cancelling = true;
        }
    }

    /// Copies received bytes of `fd` into `buf` (no syscall); `Ok(0)` after the peer's FIN,
    /// the pending error once the bytes before it are read, else would-block.
    pub(crate) fn stream_recv(&mut self, fd: u32, buf: &mut [u8]) -> Result<usize, UringError> {
        let Some(c) = self.table.get_mut(fd) else {
            return Err(would_block());
        };
        if c.rx_head == NO_BUF {
            return if c.error != 0 {
                Err(UringError::from_errno(c.error))
            } else if c.fin {
                Ok(0)
            } else {
                Err(would_block())
            };
        }
        let mut n = 0;
        while n < buf.len() && c.rx_head != NO_BUF {
            let bid = c.rx_head;
            let len = self.rx.len[usize::from(bid)];
            let take = ((len - c.rx_off) as usize).min(buf.len() - n);
            self.rx.read(bid, c.rx_off, &mut buf[n..n + take]);
            n += take;
            c.rx_off += take as u32;
            if c.rx_off == len {
                c.rx_head = self.rx.next[usize::from(bid)];
                if c.rx_head == NO_BUF {
                    c.rx_tail = NO_BUF;
                }
                c.rx_off = 0;
                self.rx.give_back(bid);
            }
        }
        c.rx_bytes -= n as u32;
        let rearm = !c.armed;
        if rearm {
            self.arm_recv(fd);
        }
        if !self.starved.is_empty() {
            self.rearm_starved();
        }
        Ok(n)
    }

    /// Re-arms the receives that ran out of buffers, now that some are back.
    pub(crate) fn rearm_starved(&mut self) {
        while self.rx.available > 0 {
            let Some(fd) = self.starved.pop() else { return };
            if let Some(c) = self.table.get_mut(fd) {
                c.starved = false;
            }
            self.arm_recv(fd);
        }
    }

    /// Appends a filled buffer to `fd`'s chain.
    pub(crate) fn chain(&mut self, fd: u32, bid: u16, n: u32) {
        let Some(c) = self.table.get_mut(fd) else {
            self.rx.give_back(bid);
            return;
        };
        if c.rx_tail == NO_BUF {
            c.rx_head = bid;
        } else {
            self.rx.next[usize::from(c.rx_tail)] = bid;
        }
        c.rx_tail = bid;
        c.rx_bytes += n;
    }

    /// Gives back every buffer in `fd`'s chain (the socket is closing).
    pub(crate) fn drop_chain(&mut self, fd: u32) {
        let Some(c) = self.table.get_mut(fd) else {
            return;
        };
        let mut bid = c.rx_head;
        c.rx_head = NO_BUF;
        c.rx_tail = NO_BUF;
        c.rx_off = 0;
        c.rx_bytes = 0;
        while bid != NO_BUF {
            let next = self.rx.next[usize::from(bid)];
            self.rx.give_back(bid);
            bid = next;
        }
    }

    /// Copies as much of `parts` as `fd`'s slab has room for; the bytes go to the kernel in
    /// the next iteration's enter, after everything queued before them.
    pub(crate) fn stream_send(&mut self, fd: u32, parts: [&[u8]; 2]) -> Result<usize, UringError> {
        let size = self.pool.chunk();
        let Some(c) = self.table.get_mut(fd) else {
            return Err(would_block());
        };
        if c.error != 0 {
            return Err(UringError::from_errno(c.error));
        }
        if c.kind != Kind::Stream || c.connecting || c.shut_pending {
            return Err(would_block());
        }
        if parts[0].is_empty() && parts[1].is_empty() {
            return Ok(0);
        }
        if c.chunk == NO_CHUNK {
            let Some(chunk) = self.pool.take() else {
                self.pool_waiters = true;
                return Err(would_block());
            };
            c.chunk = chunk;
            c.tx_done = 0;
            c.tx_flight = 0;
            c.tx_fill = 0;
        }
        let mut taken = 0;
        for part in parts {
            if part.is_empty() {
                continue;
            }
            let room = (size - c.tx_fill) as usize;
            let n = part.len().min(room);
            if n == 0 {
                break;
            }
            self.pool.write(c.chunk, c.tx_fill, &part[..n]);
            c.tx_fill += n as u32;
            taken += n;
            if n < part.len() {
                break;
            }
        }
        if taken == 0 {
            return Err(would_block());
        }
        if !c.tx_queued {
            c.tx_queued = true;
            self.tx_list.push(fd);
        }
        Ok(taken)
    }

    /// Submits the queued bytes of every connection that has some and no send in flight: one
    /// send per connection per iteration, however many writes queued them.
    pub(crate) fn flush_sends(&mut self) {
        let mut list = std::mem::take(&mut self.tx_list);
        for &fd in &list {
            self.submit_send(fd);
        }
        list.clear();
        // Keep the longer allocation (submit_send may have queued none: the list stays empty).
        if self.tx_list.is_empty() {
            self.tx_list = list;
        }
    }

    /// Sends `fd`'s queued bytes if no send is in flight (moving them to the slab's start).
    fn submit_send(&mut self, fd: u32) {
        let Some(c) = self.table.get_mut(fd) else {
            return;
        };
        c.tx_queued = false;
        if c.sending() || !c.tx_pending() || c.chunk == NO_CHUNK || c.error != 0 {
            return;
        }
        if c.tx_done > 0 {
            self.pool
                .shift_to_start(c.chunk, c.tx_done, c.tx_fill - c.tx_done);
            c.tx_fill -= c.tx_done;
            c.tx_done = 0;
        }
        let len = c.tx_fill;
        let entry = opcode::Send::new(types::Fd(fd as i32), self.pool.addr(c.chunk, 0), len)
            .flags(libc::MSG_NOSIGNAL)
            .build()
            .user_data(pack(Op::Send, fd, c.generation));
        // SAFETY: the send reads `len` bytes of the connection's slab, which the shim neither
        // writes (it appends past `tx_fill` and moves bytes only with no send in flight) nor
        // gives back before this send's completion; the pool lives until the drop's drain.
        if unsafe { self.ring.push(&entry) } {
            c.tx_flight = len;
            c.ops += 1;
        } else {
            c.error = libc::ENOBUFS;
            self.mark_ready(fd);
        }
    }

    /// A send completed: `result` bytes taken, or an error.
    pub(crate) fn sent(&mut self, fd: u32, result: i32) {
        let writable_waiters;
        {
            let Some(c) = self.table.get_mut(fd) else {
                return;
            };
            if result < 0 {
                c.tx_done = 0;
                c.tx_flight = 0;
                c.tx_fill = 0;
                if c.error == 0 && result != -libc::ECANCELED {
                    c.error = -result;
                }
                if c.error == 0 {
                    c.error = libc::ECANCELED;
                }
                c.shut_pending = false;
            } else {
                c.tx_done += result as u32;
                c.tx_flight = c.tx_flight.max(c.tx_done);
                if c.tx_done < c.tx_flight {
                    // A short send: the rest of it (and anything queued since) goes next.
                    c.tx_flight = c.tx_done;
                }
            }
            if c.error != 0 {
                // Failed (or given up at close): what is still queued never goes out.
                c.tx_fill = c.tx_done;
                c.tx_flight = c.tx_done;
            }
            if !c.tx_pending() && c.chunk != NO_CHUNK {
                let chunk = std::mem::replace(&mut c.chunk, NO_CHUNK);
                c.tx_done = 0;
                c.tx_flight = 0;
                c.tx_fill = 0;
                self.pool.put(chunk);
            }
            let shut_now = c.shut_pending && !c.tx_pending();
            if shut_now {
                c.shut_pending = false;
            }
            let queue = c.tx_pending() && !c.tx_queued && c.error == 0;
            if queue {
                c.tx_queued = true;
            }
            let wants = c.interest.is_writable() || c.error != 0;
            writable_waiters = std::mem::take(&mut self.pool_waiters) && self.pool.has_free();
            if shut_now {
                let _ = net::shutdown(&mut self.c, fd as i32, libc::SHUT_WR);
            }
            if queue {
                self.tx_list.push(fd);
            }
            if wants {
                self.mark_ready(fd);
            }
        }
        if writable_waiters {
            self.wake_writers();
        }
    }

    /// A slab came free after some connection found none: every connection waiting to write
    /// gets a readiness pass.
    fn wake_writers(&mut self) {
        for fd in 0..self.table.len() as u32 {
            let wants = self.table.get(fd).is_some_and(|c| {
                c.kind == Kind::Stream && c.registered && c.interest.is_writable()
            });
            if wants {
                self.mark_ready(fd);
            }
        }
    }

    /// `shutdown(SHUT_WR)` once the queued bytes are out.
    pub(crate) fn stream_shutdown_write(&mut self, fd: u32) -> Result<(), UringError> {
        if let Some(c) = self.table.get_mut(fd) {
            if c.tx_pending() && c.error == 0 {
                c.shut_pending = true;
                return Ok(());
            }
        }
        net::shutdown(&mut self.c, fd as i32, libc::SHUT_WR)
    }

    /// Core closes a descriptor: at once if nothing is in flight on it, else once the last
    /// operation completes (queued sends go out first; the receive is cancelled).
    pub(crate) fn close_fd(&mut self, owned: OwnedFd, fd: u32) {
        let kind = self.table.get(fd).map_or(Kind::Free, |c| c.kind);
        match kind {
            Kind::Stream => {
                self.cancel(fd, Op::Recv);
                self.drop_chain(fd);
                if self.table.get(fd).is_some_and(|c| c.connecting) {
                    self.cancel_connect(fd);
                }
            }
            Kind::Listener => {
                // Stop listening now, as a plain close would: the multishot accept holds the
                // socket until its cancel completes (an iteration later), and meanwhile the
                // kernel would queue connections to a listener that is gone (they would be
                // reset rather than refused) and a unix path would still answer.
                let _ = net::shutdown(&mut self.c, fd as i32, libc::SHUT_RDWR);
                self.cancel(fd, Op::Accept);
                self.cancel_fallback_poll(fd);
                if let Some(c) = self.table.get_mut(fd) {
                    c.accepted.clear();
                }
            }
            Kind::Poll => {
                self.cancel(fd, Op::Poll);
                if let Some(c) = self.table.get_mut(fd) {
                    c.open(Kind::Free);
                }
                sys::close_owned(&mut self.c, owned);
                return;
            }
            Kind::Free => {
                sys::close_owned(&mut self.c, owned);
                return;
            }
        }
        let Some(c) = self.table.get_mut(fd) else {
            sys::close_owned(&mut self.c, owned);
            return;
        };
        c.registered = false;
        c.interest = usockets_core::Interest::NONE;
        if c.ops == 0 && !c.tx_pending() {
            self.release(fd);
            sys::close_owned(&mut self.c, owned);
        } else {
            let (generation, sending) = (c.generation, c.tx_pending());
            c.closing = Some(owned);
            if sending {
                // A peer that never reads would keep the descriptor and the slab forever:
                // the queued bytes get `close_linger_ms` to go out.
                let until = self.clock.now_ms(&mut self.c) + self.config.close_linger_ms;
                self.lingering.push((fd, generation, until));
            }
        }
    }

    /// Gives up the queued bytes of closed sockets whose linger ran out (their send is
    /// cancelled, so the close completes); how long until the next one runs out, if any.
    pub(crate) fn expire_lingering(&mut self) -> Option<u64> {
        let now = self.clock.now_ms(&mut self.c);
        let mut next: Option<u64> = None;
        let mut i = 0;
        while i < self.lingering.len() {
            let (fd, generation, until) = self.lingering[i];
            let live = self
                .table
                .get(fd)
                .is_some_and(|c| c.is_closing() && c.generation == generation);
            if !live {
                self.lingering.swap_remove(i);
                continue;
            }
            if until > now {
                next = Some(next.map_or(until - now, |n| n.min(until - now)));
                i += 1;
                continue;
            }
            self.lingering.swap_remove(i);
            if let Some(c) = self.table.get_mut(fd) {
                // Nothing more goes out; the send in flight is cancelled.
                c.tx_fill = c.tx_flight.max(c.tx_done);
                c.shut_pending = false;
                if c.error == 0 {
                    c.error = libc::ETIMEDOUT;
                }
            }
            let entry = opcode::AsyncCancel::new(pack(Op::Send, fd, generation))
                .build()
                .user_data(pack(Op::Cancel, fd, 0));
            // SAFETY: a cancel carries no pointer.
            let _ = unsafe { self.ring.push(&entry) };
            self.finish_close(fd);
        }
        next
    }

    /// Cancels a connect in flight.
    fn cancel_connect(&mut self, fd: u32) {
        let Some(c) = self.table.get(fd) else { return };
        let entry = opcode::AsyncCancel::new(pack(Op::Connect, fd, c.generation))
            .build()
            .user_data(pack(Op::Cancel, fd, 0));
        // SAFETY: a cancel carries no pointer.
        let _ = unsafe { self.ring.push(&entry) };
    }

    /// The last operation of a closing socket completed: closes it for real.
    pub(crate) fn finish_close(&mut self, fd: u32) {
        let Some(c) = self.table.get_mut(fd) else {
            return;
        };
        if c.ops != 0 || c.tx_pending() {
            return;
        }
        let Some(owned) = c.closing.take() else {
            return;
        };
        self.release(fd);
        sys::close_owned(&mut self.c, owned);
    }

    /// Gives back what `fd`'s state holds (chain, slab, queued accepts) and frees the number.
    fn release(&mut self, fd: u32) {
        self.drop_chain(fd);
        let Some(c) = self.table.get_mut(fd) else {
            return;
        };
        if c.chunk != NO_CHUNK {
            let chunk = std::mem::replace(&mut c.chunk, NO_CHUNK);
            self.pool.put(chunk);
        }
        c.open(Kind::Free);
    }
}

/// Queues descriptor `fd` (state `c`) on `ready` unless it is already there.
#[inline]
pub(crate) fn enqueue(ready: &mut Vec<u32>, c: &mut Conn, fd: u32) {
    if !c.in_ready {
        c.in_ready = true;
        ready.push(fd);
    }
}
