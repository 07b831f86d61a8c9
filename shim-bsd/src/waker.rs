//! The cross-thread waker: an `EVFILT_USER` event on the kqueue where the kernel has one, a
//! pipe otherwise.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::Arc;

use usockets_core::{Interest, Token, Wake};
use usockets_shim_unix::stats::{Counters, Sys};
use usockets_shim_unix::sys::{cvt_retry, fcntl_add};
use usockets_shim_unix::UnixError;

use crate::kev::{Filter, Flags, Kev};
use crate::kqueue::{self, Kqueue};

/// The `ident` of the waker's `EVFILT_USER` event (any number: user events have their own
/// namespace).
const USER_IDENT: usize = 0x7573_6f63; // "usoc"

/// Wakes a [`BsdShim`](crate::BsdShim)'s `wait` from any thread.
///
/// Where the kernel has `EVFILT_USER` (FreeBSD, macOS, DragonFly, NetBSD 10, recent
/// OpenBSD) it triggers a user event registered with `EV_CLEAR`, which needs no draining; the
/// kqueue descriptor is shared through an `Arc`, so a waker that outlives the shim triggers
/// a still-open, unwatched kqueue, never a descriptor number the process reused. Elsewhere it
/// writes a byte to a non-blocking pipe whose read end the shim watches (and drains when it
/// reports the waker).
#[derive(Clone, Debug)]
pub struct BsdWaker {
    target: Arc<Target>,
}

#[derive(Debug)]
enum Target {
    /// The kqueue with the user event.
    User(Arc<OwnedFd>),
    /// The pipe: read end (watched by the shim), write end (written here).
    Pipe(OwnedFd, OwnedFd),
}

impl BsdWaker {
    /// Registers the waker on `kq`: the user event if the kernel accepts it, else a pipe.
    pub(crate) fn new(c: &mut Counters, kq: &mut Kqueue) -> Result<BsdWaker, UnixError> {
        let user = Kev::change(
            USER_IDENT,
            Filter::User,
            Flags::ADD.with(Flags::CLEAR).with(Flags::RECEIPT),
            Token::WAKER,
        );
        let target = match kq.apply(c, &[user]) {
            Ok(()) => Target::User(kq.shared()),
            Err(_) => {
                let (r, w) = pipe(c)?;
                kq.set_interest(c, r.as_raw_fd(), Token::WAKER, Interest::READABLE)?;
                Target::Pipe(r, w)
            }
        };
        Ok(BsdWaker {
            target: Arc::new(target),
        })
    }

    /// Empties the pipe after the shim reported a wake-up (nothing to do for a user event).
    pub(crate) fn drain(&self, c: &mut Counters) {
        if let Target::Pipe(r, _) = &*self.target {
            let mut buf = [0u8; 64];
            let (fd, p) = (r.as_raw_fd(), buf.as_mut_ptr());
            // SAFETY: `p` is valid for writes of 64 bytes (the local `buf`) during each call.
            while let Ok(n) = cvt_retry(c, Sys::Other, || unsafe { libc::read(fd, p.cast(), 64) }) {
                if n < 64 {
                    break;
                }
            }
        }
    }
}

impl Wake for BsdWaker {
    fn wake(&self) {
        match &*self.target {
            Target::User(kq) => {
                let k = Kev {
                    fflags: libc::NOTE_TRIGGER,
                    ..Kev::change(USER_IDENT, Filter::User, Flags::NONE, Token::WAKER)
                };
                let e = kqueue::to_sys(&k);
                let ep: *const libc::kevent = &e;
                // SAFETY: `ep` points to one live kevent for the whole call; no event list.
                // A failure leaves nothing to do: the loop is gone or the kqueue is broken.
                let _ = unsafe {
                    libc::kevent(
                        kq.as_raw_fd(),
                        ep,
                        1,
                        std::ptr::null_mut(),
                        0,
                        std::ptr::null(),
                    )
                };
            }
            Target::Pipe(_, w) => {
                let byte = 1u8;
                let p: *const u8 = &byte;
                // SAFETY: `p` points to one live byte for the call. A full pipe (EAGAIN) means
                // a wake-up is pending already.
                let _ = unsafe { libc::write(w.as_raw_fd(), p.cast(), 1) };
            }
        }
    }
}

/// A non-blocking, close-on-exec pipe (with `fcntl`: `pipe2` is missing on Apple systems).
fn pipe(c: &mut Counters) -> Result<(OwnedFd, OwnedFd), UnixError> {
    let mut fds = [0i32; 2];
    let p = fds.as_mut_ptr();
    // SAFETY: `p` points to room for the two descriptors pipe writes.
    cvt_retry(c, Sys::Other, || unsafe { libc::pipe(p) })?;
    // SAFETY: pipe just returned `fds[0]`, a new descriptor that nothing else owns.
    let r = unsafe { OwnedFd::from_raw_fd(fds[0]) };
    // SAFETY: likewise `fds[1]`.
    let w = unsafe { OwnedFd::from_raw_fd(fds[1]) };
    for fd in [r.as_raw_fd(), w.as_raw_fd()] {
        fcntl_add(c, fd, libc::F_GETFD, libc::F_SETFD, libc::FD_CLOEXEC)?;
        fcntl_add(c, fd, libc::F_GETFL, libc::F_SETFL, libc::O_NONBLOCK)?;
    }
    Ok((r, w))
}
