//! The one gateway to libc: [`cvt`] and [`cvt_retry`], through which every raw call goes.
//!
//! A call is passed in as a closure holding the (small) `unsafe` block. The helper counts it
//! (see [`crate::stats`]), turns a `-1` return into the `errno` [`UnixError`] and, in
//! [`cvt_retry`], retries `EINTR`. [`cvt`] makes exactly one attempt: it is for the calls that
//! must never be retried — `close` (Linux releases the descriptor even when it reports `EINTR`,
//! so a retry could close a descriptor another thread just got), `epoll_wait` (an interrupted
//! wait returns no events) and `connect` (after `EINTR` the connection goes on asynchronously,
//! like `EINPROGRESS`).

use std::mem::size_of;
use std::os::fd::{FromRawFd, IntoRawFd, OwnedFd};

use crate::error::UnixError;
use crate::stats::{Counters, Sys};

/// A raw libc return value whose `-1` means "see errno".
pub trait SysRet: Copy {
    /// Whether the value is the error sentinel `-1`.
    fn is_minus_one(self) -> bool;
}

impl SysRet for i32 {
    fn is_minus_one(self) -> bool {
        self == -1
    }
}

impl SysRet for isize {
    fn is_minus_one(self) -> bool {
        self == -1
    }
}

/// The calling thread's `errno`.
pub fn errno() -> i32 {
    std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

/// `errno` as an error; out of line, so the inlined success path of every call stays short.
#[cold]
#[inline(never)]
fn last_error() -> UnixError {
    UnixError::from_errno(errno())
}

/// Makes one attempt of `call`: `-1` becomes the `errno` error. Never retries.
#[inline(always)]
pub fn cvt<T: SysRet>(
    c: &mut Counters,
    sys: Sys,
    call: impl FnOnce() -> T,
) -> Result<T, UnixError> {
    c.bump(sys);
    let ret = call();
    if ret.is_minus_one() {
        Err(last_error())
    } else {
        Ok(ret)
    }
}

/// Like [`cvt`], but retries while the call fails with `EINTR`.
#[inline(always)]
pub fn cvt_retry<T: SysRet>(
    c: &mut Counters,
    sys: Sys,
    mut call: impl FnMut() -> T,
) -> Result<T, UnixError> {
    loop {
        match cvt(c, sys, &mut call) {
            Err(e) if e.code == libc::EINTR => continue,
            other => return other,
        }
    }
}

/// Closes `fd` exactly once; the result is ignored (the descriptor is gone either way).
pub fn close(c: &mut Counters, fd: i32) {
    // SAFETY: close takes no pointers; the caller owns `fd` and never uses it again.
    let _ = cvt(c, Sys::Close, || unsafe { libc::close(fd) });
}

/// Sets an `int` socket option.
pub fn setsockopt_int(
    c: &mut Counters,
    fd: i32,
    level: i32,
    name: i32,
    value: i32,
) -> Result<(), UnixError> {
    let ptr: *const i32 = &value;
    // SAFETY: `ptr` points to a live i32 for the whole call and the length passed is its size.
    cvt_retry(c, Sys::Setsockopt, || unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            ptr.cast(),
            size_of::<i32>() as libc::socklen_t,
        )
    })
    .map(drop)
}

/// Reads an `int` socket option.
pub fn getsockopt_int(c: &mut Counters, fd: i32, level: i32, name: i32) -> Result<i32, UnixError> {
    let mut value: i32 = 0;
    let mut len = size_of::<i32>() as libc::socklen_t;
    let (vp, lp): (*mut i32, *mut libc::socklen_t) = (&mut value, &mut len);
    // SAFETY: `vp` and `lp` point to live locals for the whole call; `*lp` is the size of `*vp`.
    cvt_retry(c, Sys::Other, || unsafe {
        libc::getsockopt(fd, level, name, vp.cast(), lp)
    })?;
    Ok(value)
}

/// Sets flag bits with `fcntl` (`get`/`set` = `F_GETFL`/`F_SETFL` or `F_GETFD`/`F_SETFD`).
pub fn fcntl_add(
    c: &mut Counters,
    fd: i32,
    get: i32,
    set: i32,
    bits: i32,
) -> Result<(), UnixError> {
    // SAFETY: F_GETFL/F_GETFD take no third argument and touch no memory.
    let old = cvt_retry(c, Sys::Other, || unsafe { libc::fcntl(fd, get) })?;
    if old & bits == bits {
        return Ok(());
    }
    // SAFETY: F_SETFL/F_SETFD take an int argument and touch no memory.
    cvt_retry(c, Sys::Other, || unsafe {
        libc::fcntl(fd, set, old | bits)
    })
    .map(drop)
}

/// Sets the permission bits of `fd`'s inode (`fchmod`); on an unbound unix socket they become
/// the mode of the file `bind` creates.
pub fn fchmod(c: &mut Counters, fd: i32, mode: u32) -> Result<(), UnixError> {
    // Permission bits fit every `mode_t` (u16 on the BSDs).
    let mode = (mode & 0o7777) as libc::mode_t;
    // SAFETY: fchmod takes only integers and touches no memory.
    cvt_retry(c, Sys::Other, || unsafe { libc::fchmod(fd, mode) }).map(drop)
}

/// Opens `/dev/null` read-only and close-on-exec: the reserve descriptor of the EMFILE trick.
pub fn open_dev_null(c: &mut Counters) -> Result<OwnedFd, UnixError> {
    let path = c"/dev/null";
    // SAFETY: `path` is a static NUL-terminated string; open copies it before returning.
    let raw = cvt_retry(c, Sys::Other, || unsafe {
        libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC)
    })?;
    // SAFETY: open just returned `raw`, a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

/// Closes an owned descriptor now, counting the `close` (dropping it would close it too, but
/// a drop has no access to the shim's counters).
pub fn close_owned(c: &mut Counters, fd: OwnedFd) {
    close(c, fd.into_raw_fd());
}

/// `CLOCK_MONOTONIC` in milliseconds, never going back (the last value is kept and returned
/// again if a read fails or goes back).
#[derive(Debug, Default)]
pub struct MonotonicClock {
    last: u64,
}

impl MonotonicClock {
    /// The clock now, in milliseconds.
    #[inline]
    pub fn now_ms(&mut self, c: &mut Counters) -> u64 {
        // SAFETY: timespec is a plain C struct of integers; all-zero is a valid value.
        let mut ts = unsafe { std::mem::zeroed::<libc::timespec>() };
        let p: *mut libc::timespec = &mut ts;
        // SAFETY: `p` points to a live timespec for the whole call.
        let r = cvt(c, Sys::Clock, || unsafe {
            libc::clock_gettime(libc::CLOCK_MONOTONIC, p)
        });
        if r.is_ok() {
            // No overflow checks: a monotonic clock's seconds times 1000 fit in a u64 for
            // half a billion years, and this runs once per iteration.
            let ms = (ts.tv_sec as u64)
                .wrapping_mul(1000)
                .wrapping_add(ts.tv_nsec as u64 / 1_000_000);
            self.last = self.last.max(ms);
        }
        self.last
    }
}
