//! The readiness pass: what each queued descriptor's state means to core, as core's
//! level-triggered contract wants it. A descriptor stays queued while it has something to
//! report, so everything still true is reported by every `wait` (unread bytes, a FIN, an
//! error, room to write, a pending connection); one whose state changes is queued again by
//! whatever changed it.

use io_uring::{opcode, types};

use usockets_core::{Event, Token};

use crate::conn::{Conn, Kind, NO_CHUNK};
use crate::op::{pack, Op};
use crate::UringShim;

/// What poll(2) reports as readable.
const POLL_READ: u32 = (libc::POLLIN | libc::POLLPRI | libc::POLLRDHUP) as u32;

impl UringShim {
    /// Fills `events` from the readiness queue and the waker and deadline flags; how many.
    pub(crate) fn collect(&mut self, events: &mut [Event]) -> usize {
        let mut n = 0;
        if self.woken && n < events.len() {
            self.woken = false;
            events[n] = Event::new(Token::WAKER).with_readable(true);
            n += 1;
        }
        if self.deadline_fired && n < events.len() {
            self.deadline_fired = false;
            events[n] = Event::new(Token::DEADLINE).with_readable(true);
            n += 1;
        }
        let has_room = self.pool.has_free();
        let size = self.pool.chunk();
        let mut list = std::mem::take(&mut self.ready);
        let mut keep = std::mem::take(&mut self.ready_spare);
        for &fd in &list {
            let Some(c) = self.table.get_mut(fd) else {
                continue;
            };
            c.in_ready = false;
            if !c.registered || c.is_closing() {
                continue;
            }
            if n == events.len() {
                c.in_ready = true;
                keep.push(fd);
                continue;
            }
            let ev = match c.kind {
                Kind::Stream => stream_event(c, has_room, size),
                Kind::Listener => Event::ready(
                    c.token,
                    c.interest.is_readable() && (!c.accepted.is_empty() || c.fallback_ready),
                    false,
                    false,
                    false,
                ),
                Kind::Poll => {
                    let r = std::mem::take(&mut c.revents);
                    let ev = Event::ready(
                        c.token,
                        c.interest.is_readable() && r & POLL_READ != 0,
                        c.interest.is_writable() && r & libc::POLLOUT as u32 != 0,
                        r & libc::POLLERR as u32 != 0,
                        r & libc::POLLHUP as u32 != 0,
                    );
                    if let Some(e) = ev {
                        events[n] = e;
                        n += 1;
                    }
                    continue;
                }
                Kind::Free => None,
            };
            if let Some(e) = ev {
                events[n] = e;
                n += 1;
                c.in_ready = true;
                keep.push(fd);
            }
        }
        list.clear();
        self.ready_spare = list;
        // Anything queued while the pass ran (nothing today) goes after the kept ones.
        keep.append(&mut self.ready);
        self.ready = keep;
        n
    }

    /// Arms the one-shot polls of user-polled descriptors whose last poll completed (or whose
    /// interest changed): after core has handled what the last one reported, so that a
    /// condition still true is reported again and one that is gone is not.
    pub(crate) fn rearm_polls(&mut self) {
        let mut list = std::mem::take(&mut self.poll_rearm);
        for &fd in &list {
            let Some(c) = self.table.get_mut(fd) else {
                continue;
            };
            if c.kind != Kind::Poll || !c.registered || c.armed || c.interest.is_empty() {
                continue;
            }
            let mut mask = 0u32;
            if c.interest.is_readable() {
                mask |= POLL_READ;
            }
            if c.interest.is_writable() {
                mask |= libc::POLLOUT as u32;
            }
            let entry = opcode::PollAdd::new(types::Fd(fd as i32), mask)
                .build()
                .user_data(pack(Op::Poll, fd, c.generation));
            // SAFETY: a poll carries no pointer.
            if unsafe { self.ring.push(&entry) } {
                c.armed = true;
            }
        }
        list.clear();
        if self.poll_rearm.is_empty() {
            self.poll_rearm = list;
        }
    }
}

/// A stream socket's event: readable with bytes, FIN or an error to read; writable with room
/// in its slab (or a free slab to take) once connected; an error whatever the interest.
fn stream_event(c: &Conn, pool_has_room: bool, size: u32) -> Option<Event> {
    let readable = c.interest.is_readable() && (c.rx_bytes > 0 || c.fin || c.error != 0);
    let room = if c.chunk == NO_CHUNK {
        pool_has_room
    } else {
        c.tx_fill < size
    };
    let writable = c.interest.is_writable() && !c.connecting && (room || c.error != 0);
    let error = c.error != 0;
    Event::ready(c.token, readable, writable, error, false)
}
