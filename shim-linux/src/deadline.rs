//! The loop's deadline: a `timerfd` in the epoll set, for [`OsShim::set_deadline`].
//!
//! A `CLOCK_MONOTONIC` timer armed at an absolute time (`TFD_TIMER_ABSTIME`), the clock
//! [`now_ms`](usockets_core::OsShim::now_ms) reads too, so the timer never fires before
//! `now_ms` reaches the deadline: `now_ms` truncates to whole milliseconds and the timer is
//! armed at exactly that millisecond. Registered once under [`Token::DEADLINE`], level-triggered:
//! readable while its expiry count is non-zero.
//!
//! Arming (or disarming) with `timerfd_settime` sets the expiry count back to zero (the kernel's
//! `timerfd_setup`), so a timer that fired needs no `read`: core sets the deadline again, or
//! disarms it, after every report and before its next wait (the trait's contract lets a
//! reported deadline stay readable until then).
//!
//! [`OsShim::set_deadline`]: usockets_core::OsShim::set_deadline
//! [`Token::DEADLINE`]: usockets_core::Token::DEADLINE

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use crate::LinuxError;
use usockets_shim_unix::stats::{Counters, Sys};
use usockets_shim_unix::sys::cvt_retry;

/// The deadline timer.
#[derive(Debug)]
pub(crate) struct Deadline {
    fd: OwnedFd,
}

impl Deadline {
    /// A new, disarmed, non-blocking, close-on-exec `CLOCK_MONOTONIC` timerfd.
    pub(crate) fn new(c: &mut Counters) -> Result<Deadline, LinuxError> {
        // SAFETY: timerfd_create takes only integers and touches no memory.
        let fd = cvt_retry(c, Sys::Other, || unsafe {
            libc::timerfd_create(
                libc::CLOCK_MONOTONIC,
                libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
            )
        })?;
        Ok(Deadline {
            // SAFETY: timerfd_create just returned `fd`, a new descriptor that nothing else owns.
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    /// The timerfd.
    pub(crate) fn raw(&self) -> i32 {
        self.fd.as_raw_fd()
    }

    /// Arms the timer at `at_ms` on `CLOCK_MONOTONIC` (`None`: disarms it); either way its
    /// expiry count goes back to zero.
    pub(crate) fn set(&mut self, c: &mut Counters, at_ms: Option<u64>) -> Result<(), LinuxError> {
        let it_value = match at_ms {
            None => libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            Some(ms) => abs_time(ms),
        };
        let spec = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value,
        };
        let (fd, p): (i32, *const libc::itimerspec) = (self.fd.as_raw_fd(), &spec);
        // SAFETY: `p` points to a live itimerspec for the whole call (the kernel only reads it);
        // the old value is not asked for (null).
        cvt_retry(c, Sys::Other, || unsafe {
            libc::timerfd_settime(fd, libc::TFD_TIMER_ABSTIME, p, std::ptr::null_mut())
        })
        .map(drop)
    }
}

/// `ms` milliseconds of `CLOCK_MONOTONIC` as an absolute `timespec`. Never all zero (which
/// would disarm the timer): time 0 is already past, and 1 ns is too.
fn abs_time(ms: u64) -> libc::timespec {
    let sec = (ms / 1000).min(i64::MAX as u64 / 2);
    let nsec = (ms % 1000) * 1_000_000;
    libc::timespec {
        tv_sec: sec as libc::time_t,
        tv_nsec: if sec == 0 && nsec == 0 {
            1
        } else {
            nsec as libc::c_long
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absolute_times_keep_milliseconds_and_never_disarm() {
        let t = abs_time(12_345);
        assert_eq!((t.tv_sec, t.tv_nsec), (12, 345_000_000));
        let zero = abs_time(0);
        assert_eq!(
            (zero.tv_sec, zero.tv_nsec),
            (0, 1),
            "time 0 must arm, not disarm"
        );
        let huge = abs_time(u64::MAX);
        assert!(huge.tv_sec > 0 && huge.tv_nsec < 1_000_000_000);
    }
}
