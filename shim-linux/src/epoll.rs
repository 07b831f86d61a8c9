//! The poller: level-triggered epoll.
//!
//! Descriptors are registered **without `EPOLLET`**, so epoll itself gives the level-triggered
//! behaviour core's readiness contract asks for. The token lives in `epoll_event.u64`.

use usockets_core::{Event, Interest, Token};

use crate::LinuxError;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use usockets_shim_unix::stats::{Counters, Sys};

use usockets_shim_unix::sys::{cvt, cvt_retry};

/// The `epoll_event` buffer size allocated up front; it only grows if core passes a larger
/// event slice to `wait`.
pub(crate) const INITIAL_EVENTS: usize = 1024;

const EMPTY: libc::epoll_event = libc::epoll_event { events: 0, u64: 0 };

/// An epoll instance and its reusable event buffer.
pub(crate) struct Poller {
    epfd: OwnedFd,
    buf: Vec<libc::epoll_event>,
}

/// The epoll bits for an interest.
///
/// `EPOLLRDHUP` is added together with readable interest only: it is level-triggered too, so
/// requesting it on a descriptor whose readable interest core has dropped (after `on_end`, a
/// half-closed socket) would report that socket on every `wait` forever and spin the loop.
/// With readable interest a peer's FIN raises `EPOLLIN` as well, so nothing is lost.
/// `EPOLLERR` and `EPOLLHUP` are always reported by the kernel, whatever the interest.
pub(crate) fn epoll_bits(interest: Interest) -> u32 {
    let mut bits = 0;
    if interest.is_readable() {
        bits |= (libc::EPOLLIN | libc::EPOLLRDHUP) as u32;
    }
    if interest.is_writable() {
        bits |= libc::EPOLLOUT as u32;
    }
    bits
}

/// Translates one epoll event. `EPOLLRDHUP` alone (the peer's FIN, a half-close) is reported as
/// **readable**, not as a hang-up: core then reads 0 and runs `on_end`. Only `EPOLLHUP` (both
/// directions down) is a hang-up.
#[inline]
pub(crate) fn translate(ev: &libc::epoll_event) -> Event {
    let bits = ev.events;
    let has = |flag: i32| bits & flag as u32 != 0;
    Event::new(Token(ev.u64))
        .with_readable(has(libc::EPOLLIN) || has(libc::EPOLLRDHUP))
        .with_writable(has(libc::EPOLLOUT))
        .with_error(has(libc::EPOLLERR))
        .with_hangup(has(libc::EPOLLHUP))
}

impl Poller {
    /// A new close-on-exec epoll instance.
    pub(crate) fn new(c: &mut Counters) -> Result<Poller, LinuxError> {
        // SAFETY: epoll_create1 takes only a flags integer and touches no memory.
        let fd = cvt_retry(c, Sys::Other, || unsafe {
            libc::epoll_create1(libc::EPOLL_CLOEXEC)
        })?;
        Ok(Poller {
            // SAFETY: epoll_create1 just returned `fd`, a new descriptor that nothing else owns.
            epfd: unsafe { OwnedFd::from_raw_fd(fd) },
            buf: vec![EMPTY; INITIAL_EVENTS],
        })
    }

    /// The epoll descriptor.
    pub(crate) fn raw(&self) -> i32 {
        self.epfd.as_raw_fd()
    }

    /// `epoll_ctl(op)` with raw epoll bits.
    pub(crate) fn ctl(
        &mut self,
        c: &mut Counters,
        op: i32,
        fd: i32,
        token: Token,
        bits: u32,
    ) -> Result<(), LinuxError> {
        let mut ev = libc::epoll_event {
            events: bits,
            u64: token.0,
        };
        let (epfd, evp): (i32, *mut libc::epoll_event) = (self.epfd.as_raw_fd(), &mut ev);
        // SAFETY: `evp` points to a live epoll_event for the whole call (the kernel only reads
        // it; EPOLL_CTL_DEL ignores it).
        cvt_retry(c, Sys::Ctl, || unsafe {
            libc::epoll_ctl(epfd, op, fd, evp)
        })
        .map(drop)
    }

    /// Makes the kernel's buffer `len` events long.
    #[cold]
    #[inline(never)]
    fn grow(&mut self, len: usize) {
        self.buf.resize(len, EMPTY);
    }

    /// Waits and fills `events` from the front; `EINTR` gives `Ok(0)`. Also says whether a
    /// reserved token (the waker's or the deadline's) was among them, found in the same pass
    /// that translates with one compare per event.
    #[inline(always)]
    pub(crate) fn wait(
        &mut self,
        c: &mut Counters,
        events: &mut [Event],
        timeout_ms: Option<u64>,
    ) -> Result<(usize, bool), LinuxError> {
        // No room at all, or more than the buffer holds: one compare for both (rare).
        if events.len().wrapping_sub(1) >= self.buf.len() {
            if events.is_empty() {
                return Ok((0, false));
            }
            self.grow(events.len());
        }
        let max = events.len().min(i32::MAX as usize) as i32;
        let timeout = match timeout_ms {
            None => -1,
            Some(ms) => ms.min(i32::MAX as u64) as i32,
        };
        let (epfd, buf) = (self.epfd.as_raw_fd(), self.buf.as_mut_ptr());
        // SAFETY: `buf` points to at least `max` epoll_events (the buffer is at least
        // `events.len()` long), which the kernel writes and nothing else touches meanwhile.
        let n = match cvt(c, Sys::Wait, || unsafe {
            libc::epoll_wait(epfd, buf, max, timeout)
        }) {
            Ok(n) => n as usize,
            Err(e) if e.code == libc::EINTR => return Ok((0, false)),
            Err(e) => return Err(e),
        };
        let mut woken = false;
        // The kernel writes at most `max` events: `n` is within both slices.
        for (out, ev) in events[..n].iter_mut().zip(&self.buf) {
            *out = translate(ev);
            // Token::DEADLINE and Token::WAKER are the two highest tokens.
            woken |= out.token.0 >= Token::DEADLINE.0;
        }
        Ok((n, woken))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(bits: i32) -> Event {
        translate(&libc::epoll_event {
            events: bits as u32,
            u64: 7,
        })
    }

    #[test]
    fn rdhup_alone_is_readable_not_hangup() {
        let e = ev(libc::EPOLLRDHUP);
        assert_eq!(e.token, Token(7));
        assert!(e.readable() && !e.hangup() && !e.error() && !e.writable());
    }

    #[test]
    fn flag_mapping() {
        assert!(ev(libc::EPOLLIN).readable());
        assert!(ev(libc::EPOLLOUT).writable());
        assert!(ev(libc::EPOLLERR).error());
        let h = ev(libc::EPOLLHUP);
        assert!(h.hangup() && !h.readable());
    }

    #[test]
    fn interest_bits() {
        assert_eq!(epoll_bits(Interest::NONE), 0);
        let r = epoll_bits(Interest::READABLE);
        assert_eq!(r, (libc::EPOLLIN | libc::EPOLLRDHUP) as u32);
        assert_eq!(epoll_bits(Interest::WRITABLE), libc::EPOLLOUT as u32);
        assert_eq!(epoll_bits(Interest::BOTH) & libc::EPOLLET as u32, 0);
    }
}
