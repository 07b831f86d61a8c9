//! [`BsdShim`]: core's [`OsShim`] over a kqueue and the shared Unix socket calls.

use core::fmt;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use usockets_core::{
    ConnectTarget, Event, Interest, ListenOptions, ListenTarget, OsShim, PeerAddr, Token,
};
use usockets_shim_unix::accept::Acceptor;
use usockets_shim_unix::fdset::FdSet;
use usockets_shim_unix::stats::Counters;
use usockets_shim_unix::sys::MonotonicClock;
use usockets_shim_unix::{net, sys, targets};

use crate::kqueue::Kqueue;
use crate::waker::BsdWaker;

/// The shim's descriptor: std's owned Unix file descriptor.
pub type Fd = OwnedFd;

/// The BSD shim's error: a portable [`ErrorKind`](usockets_core::ErrorKind) and the raw
/// `errno` (or `EAI_*`) code. The same type as the Linux shim's (`usockets-shim-unix`).
pub type BsdError = usockets_shim_unix::UnixError;

/// The kqueue [`OsShim`]: one per loop, used from that loop's thread.
///
/// See the [crate docs](crate) for the behaviour and the decisions behind it.
pub struct BsdShim {
    kq: Kqueue,
    waker: BsdWaker,
    acceptor: Acceptor,
    /// Sockets with `TCP_NOPUSH` set by a `more` hint, until it is withdrawn.
    corked: FdSet,
    clock: MonotonicClock,
    c: Counters,
}

impl BsdShim {
    /// Creates the kqueue, the waker (an `EVFILT_USER` event, or a pipe registered under
    /// [`Token::WAKER`]) and the reserve descriptor, all close-on-exec.
    pub fn new() -> Result<BsdShim, BsdError> {
        let mut c = Counters::default();
        let mut kq = Kqueue::new(&mut c)?;
        let waker = BsdWaker::new(&mut c, &mut kq)?;
        let acceptor = Acceptor::new(&mut c)?;
        Ok(BsdShim {
            kq,
            waker,
            acceptor,
            corked: FdSet::default(),
            clock: MonotonicClock::default(),
            c,
        })
    }

    /// The syscalls made so far (since creation or the last [`reset_stats`](Self::reset_stats)).
    #[cfg(feature = "stats")]
    pub fn stats(&self) -> usockets_shim_unix::SyscallStats {
        self.c.stats
    }

    /// Sets every syscall counter back to zero.
    #[cfg(feature = "stats")]
    pub fn reset_stats(&mut self) {
        self.c.stats = usockets_shim_unix::SyscallStats::default();
    }

    /// Holds back (`on`) or releases partial segments of `fd` with `TCP_NOPUSH`, tracking
    /// which sockets have it set so that the common send makes no extra syscall. A hint, so
    /// best effort: a socket that refuses the option (a unix socket) just sends at once.
    /// Nothing at all where the hint is ignored ([`NOPUSH_HINT`]).
    fn nopush(&mut self, fd: RawFd, on: bool) {
        if !NOPUSH_HINT || on == self.corked.contains(fd) {
            return;
        }
        if on {
            self.corked.insert(fd);
        } else {
            self.corked.remove(fd);
        }
        #[cfg(not(any(target_os = "netbsd", target_vendor = "apple")))]
        {
            let (level, name) = (libc::IPPROTO_TCP, libc::TCP_NOPUSH);
            let _ = sys::setsockopt_int(&mut self.c, fd, level, name, i32::from(on));
        }
    }
}

/// Whether the "more" hint holds bytes back with `TCP_NOPUSH`. Not on NetBSD, which has no
/// such option, nor on Apple systems, whose kernel does not push held bytes when it is
/// cleared.
const NOPUSH_HINT: bool = !cfg!(any(target_os = "netbsd", target_vendor = "apple"));

impl fmt::Debug for BsdShim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BsdShim")
            .field("kqueue", &self.kq.raw())
            .field("waker", &self.waker)
            .field("acceptor", &self.acceptor)
            .finish_non_exhaustive()
    }
}

/// The kqueue descriptor, e.g. to nest this shim's poller in another event loop. It stays
/// owned by the shim: do not close it.
impl AsRawFd for BsdShim {
    fn as_raw_fd(&self) -> RawFd {
        self.kq.raw()
    }
}

impl OsShim for BsdShim {
    type Fd = Fd;
    type Waker = BsdWaker;
    type Error = BsdError;

    fn register(&mut self, fd: &Fd, token: Token, interest: Interest) -> Result<(), BsdError> {
        self.kq
            .set_interest(&mut self.c, fd.as_raw_fd(), token, interest)
    }

    fn modify(&mut self, fd: &Fd, token: Token, interest: Interest) -> Result<(), BsdError> {
        self.kq
            .set_interest(&mut self.c, fd.as_raw_fd(), token, interest)
    }

    fn deregister(&mut self, fd: &Fd) -> Result<(), BsdError> {
        self.kq.remove(&mut self.c, fd.as_raw_fd())
    }

    fn wait(&mut self, events: &mut [Event], timeout_ms: Option<u64>) -> Result<usize, BsdError> {
        let (n, woken) = self.kq.wait(&mut self.c, events, timeout_ms)?;
        if woken {
            self.waker.drain(&mut self.c);
        }
        Ok(n)
    }

    fn waker(&mut self) -> BsdWaker {
        self.waker.clone()
    }

    fn now_ms(&mut self) -> u64 {
        self.clock.now_ms(&mut self.c)
    }

    fn listen(&mut self, target: ListenTarget<'_>, options: ListenOptions) -> Result<Fd, BsdError> {
        targets::listen(&mut self.c, target, options)
    }

    fn accept(&mut self, listener: &Fd) -> Result<Option<(Fd, PeerAddr)>, BsdError> {
        self.acceptor.accept(&mut self.c, listener.as_raw_fd())
    }

    fn connect(&mut self, target: ConnectTarget<'_>) -> Result<Fd, BsdError> {
        targets::connect(&mut self.c, target)
    }

    fn connect_result(&mut self, fd: &Fd) -> Result<(), BsdError> {
        net::take_error(&mut self.c, fd.as_raw_fd())
    }

    fn adopt(&mut self, fd: &Fd) -> Result<(), BsdError> {
        net::adopt(&mut self.c, fd.as_raw_fd())
    }

    fn recv(&mut self, fd: &Fd, buf: &mut [u8]) -> Result<usize, BsdError> {
        net::recv(&mut self.c, fd.as_raw_fd(), buf)
    }

    fn send(&mut self, fd: &Fd, data: &[u8], more: bool) -> Result<usize, BsdError> {
        let fd = fd.as_raw_fd();
        // The hint is set before the send, so its bytes are held; cleared after a send
        // without it, so that they leave together with this one's.
        if more {
            self.nopush(fd, true);
        }
        let r = net::send(&mut self.c, fd, data, more);
        if !more {
            self.nopush(fd, false);
        }
        r
    }

    fn send2(&mut self, fd: &Fd, header: &[u8], payload: &[u8]) -> Result<usize, BsdError> {
        let fd = fd.as_raw_fd();
        let r = net::send2(&mut self.c, fd, header, payload);
        self.nopush(fd, false);
        r
    }

    fn flush(&mut self, fd: &Fd) -> Result<(), BsdError> {
        self.nopush(fd.as_raw_fd(), false);
        Ok(())
    }

    fn shutdown_write(&mut self, fd: &Fd) -> Result<(), BsdError> {
        net::shutdown(&mut self.c, fd.as_raw_fd(), libc::SHUT_WR)
    }

    fn shutdown_read(&mut self, fd: &Fd) -> Result<(), BsdError> {
        net::shutdown(&mut self.c, fd.as_raw_fd(), libc::SHUT_RD)
    }

    fn close(&mut self, fd: Fd) {
        // Closing removes the descriptor's kevents ("Events which are attached to file
        // descriptors are automatically deleted on the last close of the descriptor").
        self.corked.remove(fd.as_raw_fd());
        sys::close_owned(&mut self.c, fd);
    }

    fn local_addr(&mut self, fd: &Fd) -> Result<PeerAddr, BsdError> {
        net::name(&mut self.c, fd.as_raw_fd(), false)
    }

    fn remote_addr(&mut self, fd: &Fd) -> Result<PeerAddr, BsdError> {
        net::name(&mut self.c, fd.as_raw_fd(), true)
    }
}
