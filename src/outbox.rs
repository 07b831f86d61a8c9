//! [`Outbox`]: a socket's bounded queue of bytes the kernel has not taken yet.
//!
//! The library keeps no write queue (as uSockets): `write` returns what the kernel accepted and
//! the rest is the application's. Keeping it naively loses data or memory in the ways servers
//! usually get wrong: a peer that sends and never reads grows the queue without bound, draining
//! a `Vec` from the front copies the whole queue on every `on_writable`, and closing on the
//! peer's FIN drops what was still queued. `Outbox` does it right once, for every program:
//! bytes go out in order, reading pauses above a high-water mark and resumes below a low-water
//! mark, the queue is a ring (draining moves no bytes), and after the peer's FIN the socket is
//! shut down and closed only once everything queued has been sent.

use std::collections::VecDeque;

use usockets_core::{Config, Cx, SocketId};

/// A socket ext that holds an [`Outbox`] (implement it for your ext type to use the `Outbox`
/// functions with it).
pub trait HasOutbox {
    /// The socket's outbox.
    fn outbox(&mut self) -> &mut Outbox;
}

impl HasOutbox for Outbox {
    fn outbox(&mut self) -> &mut Outbox {
        self
    }
}

/// A socket's queue of unsent bytes, bounded by pausing reads (see the [module](self) docs).
///
/// Use it from the socket's callbacks, from `on_open` on: [`Outbox::write`] instead of
/// `Cx::write`, [`Outbox::flush`] in `on_writable`, [`Outbox::end`] in `on_end`. A queue is at
/// most the high-water mark plus what one callback adds above it: the write that crosses the
/// mark pauses reading, so no further `on_data` adds to it until it drained to the low-water
/// mark. The outbox owns the socket's pause and resume while it is used: an application that
/// also pauses the socket for its own reasons would be resumed by [`Outbox::flush`].
#[derive(Debug)]
pub struct Outbox {
    queue: VecDeque<u8>,
    high: usize,
    low: usize,
    /// Reading is paused by us (above the high-water mark).
    paused: bool,
    /// The peer finished sending: shut down and close once the queue is empty.
    ending: bool,
    peak: usize,
    pauses: u64,
}

impl Default for Outbox {
    fn default() -> Self {
        Outbox::new()
    }
}

impl Outbox {
    /// The default high-water mark: 256 KiB queued pauses reading.
    pub const DEFAULT_HIGH: usize = 256 * 1024;
    /// The default low-water mark: reading resumes once at most 64 KiB are queued.
    pub const DEFAULT_LOW: usize = 64 * 1024;
    /// An empty outbox with the default marks. Allocates nothing until bytes wait.
    pub const fn new() -> Outbox {
        Outbox::with_marks(Outbox::DEFAULT_HIGH, Outbox::DEFAULT_LOW)
    }

    /// An empty outbox pausing reads above `high` queued bytes and resuming at `low` or less
    /// (`low` is capped at `high`).
    pub const fn with_marks(high: usize, low: usize) -> Outbox {
        Outbox {
            queue: VecDeque::new(),
            high,
            low: if low < high { low } else { high },
            paused: false,
            ending: false,
            peak: 0,
            pauses: 0,
        }
    }

    /// Bytes waiting.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// The most bytes that ever waited at once (for tests and statistics).
    pub fn peak(&self) -> usize {
        self.peak
    }

    /// How many times reading was paused because the queue passed the high-water mark.
    pub fn pauses(&self) -> u64 {
        self.pauses
    }

    /// Whether reading is paused by this outbox.
    pub fn is_paused(&self) -> bool {
        self.paused
    }

    /// Whether the peer's end was seen ([`Outbox::end`]) and the socket closes once drained.
    pub fn is_ending(&self) -> bool {
        self.ending
    }

    /// Writes `data` to `s` after whatever is queued: what the kernel does not take now is
    /// queued (so nothing is lost or reordered), and reading pauses if the queue passes the
    /// high-water mark. Returns how many bytes went to the kernel now. A socket that cannot
    /// send (closed, still connecting, or shut down) queues nothing and returns 0: no
    /// `on_writable` would ever come to send it.
    pub fn write<C>(cx: &mut Cx<C>, s: SocketId, data: &[u8]) -> usize
    where
        C: Config,
        C::SocketExt: HasOutbox,
    {
        let can_send = cx.is_established(s) == Some(true) && cx.is_shut_down(s) == Some(false);
        if data.is_empty() || !can_send {
            return 0;
        }
        let Some(queued) = cx.socket_ext_mut(s).map(|e| !e.outbox().queue.is_empty()) else {
            return 0;
        };
        // Keep order: once something waits, new bytes wait behind it for on_writable.
        let sent = if queued { 0 } else { cx.write(s, data, false) };
        if sent == data.len() {
            return sent;
        }
        let Some(ob) = cx.socket_ext_mut(s).map(HasOutbox::outbox) else {
            return sent;
        };
        ob.queue.extend(&data[sent..]);
        ob.peak = ob.peak.max(ob.queue.len());
        if ob.queue.len() > ob.high {
            if !ob.paused {
                ob.paused = true;
                ob.pauses += 1;
            }
            // Also when the application resumed it meanwhile: the bound holds regardless.
            if cx.socket_interest(s).is_some_and(|i| i.is_readable()) {
                cx.pause(s);
            }
        }
        sent
    }

    /// Sends what is queued (call it from `on_writable`): both halves of the ring in one
    /// gathered write, no bytes moved. At or below the low-water mark reading resumes; once
    /// empty after [`Outbox::end`], the socket is shut down and closed. Returns how many bytes
    /// went to the kernel, so the caller can count progress (e.g. reset an idle timeout).
    pub fn flush<C>(cx: &mut Cx<C>, s: SocketId) -> usize
    where
        C: Config,
        C::SocketExt: HasOutbox,
    {
        let Some(mut queue) = cx
            .socket_ext_mut(s)
            .map(|e| std::mem::take(&mut e.outbox().queue))
        else {
            return 0;
        };
        let (front, back) = queue.as_slices();
        let sent = match (front.is_empty(), back.is_empty()) {
            (true, _) => 0,
            (false, true) => cx.write(s, front, false),
            (false, false) => cx.write2(s, front, back),
        };
        queue.drain(..sent);
        if queue.is_empty() {
            // An idle connection keeps no buffer: the memory of many once-busy connections
            // would add up. The next backlog allocates again (never while the kernel keeps up).
            queue = VecDeque::new();
        }
        let Some(ob) = cx.socket_ext_mut(s).map(HasOutbox::outbox) else {
            return sent;
        };
        ob.queue = queue;
        let (len, low, paused, ending) = (ob.queue.len(), ob.low, ob.paused, ob.ending);
        if paused && len <= low {
            ob.paused = false;
            if !ending {
                cx.resume(s);
            }
        }
        if ending && len == 0 {
            cx.shutdown(s);
            cx.close(s, 0, None);
        }
        sent
    }

    /// The peer finished sending (call it from `on_end`): shut down and close now if nothing
    /// is queued, else as soon as [`Outbox::flush`] has sent it all.
    pub fn end<C>(cx: &mut Cx<C>, s: SocketId)
    where
        C: Config,
        C::SocketExt: HasOutbox,
    {
        let Some(ob) = cx.socket_ext_mut(s).map(HasOutbox::outbox) else {
            return;
        };
        ob.ending = true;
        if ob.queue.is_empty() {
            cx.shutdown(s);
            cx.close(s, 0, None);
        }
    }
}
