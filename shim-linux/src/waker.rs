//! The cross-thread waker: an eventfd shared through an `Arc`.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::Arc;

use usockets_core::Wake;

use crate::LinuxError;
use usockets_shim_unix::stats::{Counters, Sys};
use usockets_shim_unix::sys::cvt_retry;

/// Wakes a [`LinuxShim`](crate::LinuxShim)'s `wait` from any thread.
///
/// It writes 1 to an eventfd the shim registered with its epoll under
/// [`Token::WAKER`](usockets_core::Token::WAKER). The eventfd is owned by an `Arc` shared by
/// the shim and every clone of the waker, so it is closed only when the last of them is
/// dropped: a waker used after the loop and shim are gone writes to the still-open, now
/// unwatched eventfd — never to a descriptor number the process has reused for something else.
#[derive(Clone, Debug)]
pub struct LinuxWaker {
    fd: Arc<OwnedFd>,
}

impl LinuxWaker {
    /// A new non-blocking, close-on-exec eventfd (public for the io_uring shim, which watches
    /// the same kind of waker through its ring).
    pub fn new(c: &mut Counters) -> Result<LinuxWaker, LinuxError> {
        // SAFETY: eventfd takes only integers and touches no memory.
        let fd = cvt_retry(c, Sys::Other, || unsafe {
            libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC)
        })?;
        Ok(LinuxWaker {
            // SAFETY: eventfd just returned `fd`, a new descriptor that nothing else owns.
            fd: Arc::new(unsafe { OwnedFd::from_raw_fd(fd) }),
        })
    }

    /// The eventfd.
    pub fn raw(&self) -> i32 {
        self.fd.as_raw_fd()
    }

    /// Consumes pending wake-ups (reads and so resets the eventfd counter).
    pub fn drain(&self, c: &mut Counters) {
        let mut counter: u64 = 0;
        let (fd, p): (i32, *mut u64) = (self.fd.as_raw_fd(), &mut counter);
        // SAFETY: `p` points to a live u64 and exactly 8 bytes are read into it. The eventfd
        // is open: `self` holds a reference to its owner.
        let _ = cvt_retry(c, Sys::Other, || unsafe { libc::read(fd, p.cast(), 8) });
    }
}

impl Wake for LinuxWaker {
    fn wake(&self) {
        let one: u64 = 1;
        let (fd, p): (i32, *const u64) = (self.fd.as_raw_fd(), &one);
        // Not counted: wake runs on other threads, away from the shim's counters. EAGAIN
        // means the counter is already non-zero (a wake-up is pending): nothing to do.
        // SAFETY: `p` points to a live u64 and exactly 8 bytes are written from it. The
        // eventfd is open: `self` holds a reference to its owner, so the number is ours.
        let _ = cvt_retry(&mut Counters::default(), Sys::Other, || unsafe {
            libc::write(fd, p.cast(), 8)
        });
    }
}
