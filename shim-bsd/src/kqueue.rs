//! The kqueue FFI: the kqueue descriptor, `kevent` calls, and the mapping between the OS's
//! `struct kevent` (whose field types differ between the BSDs) and the portable [`Kev`].

// `struct kevent`'s fields and the EV_*/EVFILT_* constants have different integer types on
// different BSDs (u16 or u32 flags, i16 or u32 filters, i64 or isize data): a conversion
// needed on one is a no-op on another.
#![allow(clippy::unnecessary_cast, clippy::useless_conversion)]

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::Arc;

use usockets_core::{Event, Interest, Token};
use usockets_shim_unix::stats::{Counters, Sys};
use usockets_shim_unix::sys::{cvt, cvt_retry, fcntl_add};
use usockets_shim_unix::UnixError;

use crate::kev::{self, Filter, Flags, Kev};

/// Kevents read per wait at first; grown only if core passes a larger event slice.
const INITIAL_EVENTS: usize = 1024;

/// A kqueue, its wait buffers, and the raw/portable kevent mapping.
pub(crate) struct Kqueue {
    /// Shared with a waker that triggers an `EVFILT_USER` event on it, so that it stays open
    /// as long as such a waker exists.
    fd: Arc<OwnedFd>,
    raw: Vec<libc::kevent>,
    kevs: Vec<Kev>,
}

/// An all-zero `struct kevent`.
fn zeroed() -> libc::kevent {
    // SAFETY: struct kevent is a plain C struct of integers and a `udata` pointer; all-zero
    // is a valid value of each.
    unsafe { std::mem::zeroed::<libc::kevent>() }
}

/// The OS's kevent for `k`.
pub(crate) fn to_sys(k: &Kev) -> libc::kevent {
    let mut e = zeroed();
    e.ident = k.ident as _;
    e.filter = match k.filter {
        Filter::Read => libc::EVFILT_READ,
        Filter::Write => libc::EVFILT_WRITE,
        Filter::User => libc::EVFILT_USER,
        // Never built by this shim.
        Filter::Other => libc::EVFILT_READ,
    } as _;
    let mut flags = 0;
    for (ours, theirs) in flag_map() {
        if k.flags.has(ours) {
            flags |= theirs;
        }
    }
    e.flags = flags as _;
    e.fflags = k.fflags as _;
    e.data = k.data as _;
    e.udata = k.udata as usize as _;
    e
}

/// The portable form of the OS's kevent `e`.
pub(crate) fn from_sys(e: &libc::kevent) -> Kev {
    // Identifiers compared with `==`: EVFILT_* values are not bits.
    let filter = if e.filter == libc::EVFILT_READ as _ {
        Filter::Read
    } else if e.filter == libc::EVFILT_WRITE as _ {
        Filter::Write
    } else if e.filter == libc::EVFILT_USER as _ {
        Filter::User
    } else {
        Filter::Other
    };
    let mut flags = Flags::NONE;
    for (ours, theirs) in flag_map() {
        if u32::from(e.flags) & theirs == theirs {
            flags = flags.with(ours);
        }
    }
    Kev {
        ident: e.ident as usize,
        filter,
        flags,
        fflags: e.fflags as u32,
        data: e.data as i64,
        udata: e.udata as usize as u64,
    }
}

/// Our flags and the OS's `EV_*` values (as `u32`: `u16` on most BSDs, `u32` on NetBSD).
fn flag_map() -> [(Flags, u32); 8] {
    [
        (Flags::ADD, u32::from(libc::EV_ADD)),
        (Flags::DELETE, u32::from(libc::EV_DELETE)),
        (Flags::ENABLE, u32::from(libc::EV_ENABLE)),
        (Flags::DISABLE, u32::from(libc::EV_DISABLE)),
        (Flags::RECEIPT, u32::from(libc::EV_RECEIPT)),
        (Flags::CLEAR, u32::from(libc::EV_CLEAR)),
        (Flags::EOF, u32::from(libc::EV_EOF)),
        (Flags::ERROR, u32::from(libc::EV_ERROR)),
    ]
}

impl Kqueue {
    /// A new kqueue, close-on-exec.
    pub(crate) fn new(c: &mut Counters) -> Result<Kqueue, UnixError> {
        // SAFETY: kqueue takes no arguments and touches no memory.
        let raw = cvt_retry(c, Sys::Other, || unsafe { libc::kqueue() })?;
        // SAFETY: kqueue just returned `raw`, a new descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // A kqueue is not inherited across fork anyway (kqueue(2)); this keeps it from an exec
        // in a thread that never forks too.
        fcntl_add(c, raw, libc::F_GETFD, libc::F_SETFD, libc::FD_CLOEXEC)?;
        Ok(Kqueue {
            fd: Arc::new(fd),
            raw: vec![zeroed(); INITIAL_EVENTS],
            kevs: Vec::with_capacity(INITIAL_EVENTS),
        })
    }

    /// The kqueue descriptor, shared (for the waker).
    pub(crate) fn shared(&self) -> Arc<OwnedFd> {
        Arc::clone(&self.fd)
    }

    /// The kqueue's raw descriptor.
    pub(crate) fn raw(&self) -> i32 {
        self.fd.as_raw_fd()
    }

    /// Applies `changes` (at most [`kev::CHANGES`], each with `EV_RECEIPT`) and checks every
    /// receipt: the first failed change's error (an `ENOENT` deletion excepted).
    pub(crate) fn apply(&mut self, c: &mut Counters, changes: &[Kev]) -> Result<(), UnixError> {
        let mut list = [zeroed(); kev::CHANGES];
        let mut receipts = [zeroed(); kev::CHANGES];
        let n = changes.len().min(list.len());
        for (dst, k) in list.iter_mut().zip(changes) {
            *dst = to_sys(k);
        }
        let zero = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        let (kq, lp, rp, tp) = (
            self.raw(),
            list.as_ptr(),
            receipts.as_mut_ptr(),
            &zero as *const libc::timespec,
        );
        // SAFETY: `lp` points to `n` initialised kevents and `rp` to room for `n` more, both on
        // this stack frame for the whole call; `tp` points to a live zero timeout.
        let got = cvt_retry(c, Sys::Ctl, || unsafe {
            libc::kevent(kq, lp, n as _, rp, n as _, tp)
        })?;
        let got = usize::try_from(got).unwrap_or(0).min(n);
        let mut kevs = [Kev::change(0, Filter::Other, Flags::NONE, Token(0)); kev::CHANGES];
        for (dst, r) in kevs.iter_mut().zip(&receipts[..got]) {
            *dst = from_sys(r);
        }
        kev::check_receipts(&kevs[..got], &changes[..n], libc::ENOENT, libc::EIO)
            .map_err(UnixError::from_errno)
    }

    /// Gives `fd` exactly `interest` under `token` (see [`kev::interest_changes`]).
    pub(crate) fn set_interest(
        &mut self,
        c: &mut Counters,
        fd: i32,
        token: Token,
        interest: Interest,
    ) -> Result<(), UnixError> {
        self.apply(c, &kev::interest_changes(fd as usize, token, interest))
    }

    /// Removes both of `fd`'s filters.
    pub(crate) fn remove(&mut self, c: &mut Counters, fd: i32) -> Result<(), UnixError> {
        self.apply(c, &kev::removal_changes(fd as usize))
    }

    /// Waits and fills `events` from the front; `EINTR` gives `Ok(0)`. Also says whether the
    /// waker's token was among them.
    pub(crate) fn wait(
        &mut self,
        c: &mut Counters,
        events: &mut [Event],
        timeout_ms: Option<u64>,
    ) -> Result<(usize, bool), UnixError> {
        if events.is_empty() {
            return Ok((0, false));
        }
        if events.len() > self.raw.len() {
            self.raw.resize(events.len(), zeroed());
        }
        let max = events.len().min(i32::MAX as usize);
        let ts = timeout_ms.map(|ms| libc::timespec {
            tv_sec: (ms / 1000).min(i32::MAX as u64) as _,
            tv_nsec: ((ms % 1000) * 1_000_000) as _,
        });
        let tp = ts
            .as_ref()
            .map_or(std::ptr::null(), |t| t as *const libc::timespec);
        let (kq, buf) = (self.raw(), self.raw.as_mut_ptr());
        // SAFETY: `buf` points to at least `max` kevents (the buffer is at least
        // `events.len()` long), which the kernel writes and nothing else touches meanwhile;
        // `tp` is null (wait forever) or points to a live timespec; no change list.
        let n = match cvt(c, Sys::Wait, || unsafe {
            libc::kevent(kq, std::ptr::null(), 0, buf, max as _, tp)
        }) {
            Ok(n) => usize::try_from(n).unwrap_or(0).min(max),
            Err(e) if e.code == libc::EINTR => return Ok((0, false)),
            Err(e) => return Err(e),
        };
        self.kevs.clear();
        self.kevs.extend(self.raw[..n].iter().map(from_sys));
        Ok(kev::translate(&self.kevs, events))
    }
}
