//! Syscall counters (the `stats` feature).
//!
//! Every raw libc call goes through [`crate::sys`], which bumps one counter per attempt
//! (an `EINTR` retry counts again). Without the `stats` feature [`Counters`] is an empty struct
//! and [`Counters::bump`] an empty inline function, so the counting compiles away.

/// Which counter a syscall bumps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sys {
    /// The poller's wait (`epoll_wait`, `kevent`).
    Wait,
    /// A change to the poller's interest list (`epoll_ctl`, `kevent`).
    Ctl,
    /// `recv`.
    Recv,
    /// `send`.
    Send,
    /// A gathered write (`sendmsg`).
    Writev,
    /// `accept4` (`accept` on Apple systems).
    Accept,
    /// `connect`.
    Connect,
    /// `close`.
    Close,
    /// `setsockopt`.
    Setsockopt,
    /// Everything else.
    Other,
    /// `clock_gettime`: a vDSO call, not a syscall; never counted.
    Clock,
}

/// How many syscalls of each kind a shim made since it was created or since its counters
/// were last reset (`LinuxShim::stats`, `LinuxShim::reset_stats`).
///
/// Not counted: `clock_gettime` (a vDSO call, no syscall), [`wake`](usockets_core::Wake::wake)
/// (called from other threads, outside the shim) and the closes of the shim's own private
/// descriptors when it is dropped.
#[cfg(feature = "stats")]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct SyscallStats {
    /// `epoll_wait` (the poller's wait: `kevent` on the BSDs).
    pub epoll_wait: u64,
    /// `epoll_ctl` (register, modify, deregister: `kevent` with a change list on the BSDs).
    pub epoll_ctl: u64,
    /// `recv`.
    pub recv: u64,
    /// `send`.
    pub send: u64,
    /// Gathered writes ([`send2`](usockets_core::OsShim::send2), done with `sendmsg`).
    pub writev: u64,
    /// `accept4`.
    pub accept: u64,
    /// `connect`.
    pub connect: u64,
    /// `close`.
    pub close: u64,
    /// `setsockopt`.
    pub setsockopt: u64,
    /// Everything else: `socket`, `bind`, `listen`, `getsockopt`, `getsockname`, `fcntl`,
    /// `shutdown`, `open`, the eventfd drain `read`, `getaddrinfo`...
    pub other: u64,
}

#[cfg(feature = "stats")]
impl SyscallStats {
    /// The sum of all counters.
    pub fn total(&self) -> u64 {
        self.epoll_wait
            + self.epoll_ctl
            + self.recv
            + self.send
            + self.writev
            + self.accept
            + self.connect
            + self.close
            + self.setsockopt
            + self.other
    }
}

/// The shim's counters: a `SyscallStats` with the `stats` feature, nothing without it.
#[derive(Debug, Default)]
pub struct Counters {
    #[cfg(feature = "stats")]
    /// The counts so far.
    pub stats: SyscallStats,
}

impl Counters {
    /// Counts one syscall of kind `sys`.
    #[inline(always)]
    pub fn bump(&mut self, sys: Sys) {
        #[cfg(feature = "stats")]
        {
            let s = &mut self.stats;
            let c = match sys {
                Sys::Wait => &mut s.epoll_wait,
                Sys::Ctl => &mut s.epoll_ctl,
                Sys::Recv => &mut s.recv,
                Sys::Send => &mut s.send,
                Sys::Writev => &mut s.writev,
                Sys::Accept => &mut s.accept,
                Sys::Connect => &mut s.connect,
                Sys::Close => &mut s.close,
                Sys::Setsockopt => &mut s.setsockopt,
                Sys::Other => &mut s.other,
                Sys::Clock => return,
            };
            *c += 1;
        }
        #[cfg(not(feature = "stats"))]
        let _ = sys;
    }
}
