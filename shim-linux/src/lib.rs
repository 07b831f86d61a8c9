//! # usockets-shim-linux
//!
//! The Linux [`OsShim`] for `usockets-core`: level-triggered epoll, an eventfd waker, a
//! `CLOCK_MONOTONIC` clock with a timerfd deadline, and non-blocking BSD sockets, all through
//! `libc`.
//!
//! ```no_run
//! use usockets_core::{ListenOptions, ListenTarget, OsShim};
//! use usockets_shim_linux::LinuxShim;
//!
//! let mut shim = LinuxShim::new()?;
//! let target = ListenTarget::Host { host: Some("127.0.0.1"), port: 0 };
//! let listener = shim.listen(target, ListenOptions::default())?;
//! println!("listening on {:?}", shim.local_addr(&listener)?);
//! # Ok::<(), usockets_shim_linux::LinuxError>(())
//! ```
//!
//! # How it meets core's readiness contract
//!
//! * Descriptors are registered **without `EPOLLET`**: epoll's level-triggered mode is exactly
//!   the contract. Readable interest is `EPOLLIN | EPOLLRDHUP`, writable interest `EPOLLOUT`;
//!   the token is stored in `epoll_event.u64` and handed back unchanged.
//! * `EPOLLIN` → readable, `EPOLLOUT` → writable, `EPOLLERR` → error, `EPOLLHUP` → hang-up.
//!   `EPOLLRDHUP` (the peer's FIN, a half-close) is reported as **readable**, never as a
//!   hang-up: core then reads 0 and runs `on_end`, and the write side stays usable.
//! * `EPOLLRDHUP` is requested only together with readable interest, not always: it is
//!   level-triggered, so on a half-closed socket whose readable interest core has dropped it
//!   would fire on every `wait` and spin the loop. With readable interest the FIN raises
//!   `EPOLLIN` anyway.
//! * The waker is an eventfd registered under [`Token::WAKER`]; `wait` drains it and reports
//!   one [`Token::WAKER`] event. See [`LinuxWaker`] for why it is safe after the shim is gone.
//! * The deadline ([`OsShim::set_deadline`]) is a `CLOCK_MONOTONIC` timerfd armed at an
//!   absolute time (`TFD_TIMER_ABSTIME`) and registered once under [`Token::DEADLINE`]: core
//!   waits with no timeout and reads no clock per iteration, as the C library does with its
//!   timer descriptors. It runs on the clock `now_ms` reads, so it never fires before `now_ms`
//!   reaches it. Core sets it again (`timerfd_settime`, about once per sweep period) after
//!   every report, which resets its expiry count: no `read` is needed.
//! * `wait` reuses one `epoll_event` buffer (1024 entries, grown only if core passes a larger
//!   slice): no allocation per call. An interrupted `epoll_wait` returns `Ok(0)`.
//!
//! # Descriptors
//!
//! [`OsShim::Fd`] is std's [`OwnedFd`]: the shim hands out owned descriptors from `listen`,
//! `accept` and `connect`, borrows them (`&OwnedFd`, which is `AsFd`/`AsRawFd`) for every other
//! call, and closes them in [`close`](OsShim::close) (or when dropped). Safe code cannot make
//! one from an integer (`OwnedFd::from_raw_fd` is `unsafe`), so it cannot make the shim touch a
//! descriptor it does not own.
//!
//! # Syscalls and errors
//!
//! Every raw libc call goes through one helper that turns `-1` into the `errno`
//! [`LinuxError`] and retries `EINTR` — except `close` (Linux releases the descriptor even on
//! `EINTR`; retrying could close someone else's), `epoll_wait` (returns no events) and
//! `connect` (after `EINTR` the connect continues asynchronously, like `EINPROGRESS`).
//! Would-block is an error of kind [`ErrorKind::WouldBlock`](usockets_core::ErrorKind::WouldBlock). Every descriptor the shim creates
//! is close-on-exec (`SOCK_CLOEXEC`, `EPOLL_CLOEXEC`, `EFD_CLOEXEC`, `TFD_CLOEXEC`,
//! `O_CLOEXEC`).
//!
//! `accept` reports the network errors accept(2) says to treat like `EAGAIN` (`ENETDOWN`,
//! `EPROTO`, `ENOPROTOOPT`, `EHOSTDOWN`, `ENONET`, `EHOSTUNREACH`, `EOPNOTSUPP`,
//! `ENETUNREACH`, `ECONNABORTED`: the pending connection died, the listener is fine) as
//! [`ErrorKind::ConnectionAborted`](usockets_core::ErrorKind::ConnectionAborted), with the raw code kept, so core accepts the next one.
//!
//! # Blocking name resolution
//!
//! [`listen`](OsShim::listen) with a host name and [`connect`](OsShim::connect) resolve with
//! `getaddrinfo`, which **blocks** the calling thread (and so the loop) for as long as DNS
//! takes. Pass numeric addresses to avoid it. A failure is
//! [`ErrorKind::NameResolution`](usockets_core::ErrorKind::NameResolution) with the (negative) `EAI_*` code.
//!
//! # Listening and connecting
//!
//! * `ListenTarget::Host { host: None, .. }` (or an empty host) listens on every interface,
//!   dual-stack: `[::]` with `IPV6_V6ONLY` off, so IPv4 peers show up as `::ffff:a.b.c.d`;
//!   `0.0.0.0` when the kernel has no IPv6. A host is resolved (`AI_PASSIVE`) and the first
//!   address that binds is used. `SO_REUSEADDR` is always set, `SO_REUSEPORT` unless
//!   [`ListenOptions::exclusive_port`](usockets_core::ListenOptions::exclusive_port).
//! * `connect` uses the **first** address the name resolves to; `source` must be a numeric
//!   address of the same family.
//! * Unix-domain sockets: the path must fit in `sun_path` with its NUL
//!   ([`UNIX_PATH_MAX`] bytes at most); a longer one is
//!   [`ErrorKind::InvalidInput`](usockets_core::ErrorKind::InvalidInput) (`ENAMETOOLONG`), never truncated. A path starting with a NUL
//!   byte is a Linux abstract-namespace name. The socket file is created with
//!   [`ListenOptions::unix_mode`](usockets_core::ListenOptions::unix_mode) (0700 unless set;
//!   the umask still applies), set before `bind` so it is never looser. A path already taken
//!   is unlinked and bound again only if it is a socket file nobody answers on (a probe
//!   connect is refused): a server that restarts gets its path back, a live server keeps it
//!   (listen fails with `EADDRINUSE`; the live server sees the probe as a connection that
//!   closes at once) and a file of any other type is never removed. The file stays when the
//!   listener closes, as with the C library. Abstract names are neither chmod-ed nor unlinked.
//!
//! # Running out of descriptors (the accept storm)
//!
//! A level-triggered listener whose `accept4` fails with `EMFILE`/`ENFILE` stays readable, and
//! the peer waits in the backlog with no answer. The shim keeps a **reserve descriptor**
//! (`/dev/null`, opened by [`LinuxShim::new`]). When `accept4` fails that way it closes the
//! reserve, accepts pending connections and closes each at once (the peer sees EOF or a reset
//! instead of hanging) until none is left or 64 are shed, and reopens the reserve: one `accept4`
//! and one `close` per refused connection, plus per call two `accept4` (the failing one and the
//! one that finds the backlog empty), the reserve's `close` and its `open`. With none left,
//! `accept` returns `Ok(None)`; with more waiting it reports
//! [`ErrorKind::ConnectionAborted`](usockets_core::ErrorKind::ConnectionAborted) (code `EMFILE`), so core goes on shedding within its
//! per-event cap. A flood beyond the limit is thus refused within an event or two, and nothing
//! is called again until a new connection arrives. Only if no descriptor came free (in a
//! multi-threaded process another thread may grab the reserve's number first) does `accept`
//! return the `EMFILE` error itself, on which core backs the listener off, so it never spins.

//! # `MSG_MORE` and `flush`
//!
//! `send(.., more: true)` uses `MSG_MORE`, which on Linux holds back the last partial segment
//! of *that* call only; there is no `TCP_CORK` to clear. The shim remembers (in a bit set
//! indexed by descriptor) which sockets sent with `MSG_MORE` since their last flush;
//! [`flush`](OsShim::flush) on such a socket sets `TCP_NODELAY` again, which makes Linux push
//! the pending frames at once. On any other socket `flush` makes no syscall. A later send
//! without `MSG_MORE` pushes the data too and clears the mark.
//!
//! # Gathered writes
//!
//! [`send2`](OsShim::send2) is a `writev`-style gathered write done with `sendmsg`, so it can
//! pass `MSG_NOSIGNAL` like `send`: no write ever raises `SIGPIPE`.
//!
//! # Features
//!
//! * `stats`: counts syscalls by kind (`LinuxShim::stats`, `SyscallStats`). Without it the
//!   counters compile away.

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]
#![warn(
    clippy::undocumented_unsafe_blocks,
    clippy::multiple_unsafe_ops_per_block
)]

mod deadline;
mod epoll;
mod waker;

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

use crate::deadline::Deadline;
use crate::epoll::Poller;

pub use crate::waker::LinuxWaker;
#[cfg(feature = "stats")]
pub use usockets_shim_unix::SyscallStats;
pub use usockets_shim_unix::UNIX_PATH_MAX;
/// The Linux shim's error: a portable [`ErrorKind`](usockets_core::ErrorKind) and the raw
/// `errno` (or `EAI_*`) code. The same type as the BSD shim's, from the sockets code they
/// share (`usockets-shim-unix`).
pub type LinuxError = usockets_shim_unix::UnixError;

/// The shim's descriptor: std's owned Unix file descriptor.
pub type Fd = OwnedFd;

/// The Linux [`OsShim`]: one per loop, used from that loop's thread.
///
/// See the [crate docs](crate) for the behaviour and the decisions behind it.
pub struct LinuxShim {
    poller: Poller,
    waker: LinuxWaker,
    /// The loop's deadline, a timerfd registered under [`Token::DEADLINE`].
    deadline: Deadline,
    /// `accept`, with the spare descriptor given up to shed connections on `EMFILE`.
    acceptor: Acceptor,
    /// Sockets that sent with `MSG_MORE` since their last flush.
    corked: FdSet,
    clock: MonotonicClock,
    c: Counters,
}

impl LinuxShim {
    /// Creates the epoll instance, the waker's eventfd (registered under [`Token::WAKER`]), the
    /// deadline's timerfd (registered under [`Token::DEADLINE`]) and the reserve descriptor,
    /// all close-on-exec.
    pub fn new() -> Result<LinuxShim, LinuxError> {
        let mut c = Counters::default();
        let mut poller = Poller::new(&mut c)?;
        let waker = LinuxWaker::new(&mut c)?;
        poller.ctl(
            &mut c,
            libc::EPOLL_CTL_ADD,
            waker.raw(),
            Token::WAKER,
            libc::EPOLLIN as u32,
        )?;
        let deadline = Deadline::new(&mut c)?;
        poller.ctl(
            &mut c,
            libc::EPOLL_CTL_ADD,
            deadline.raw(),
            Token::DEADLINE,
            libc::EPOLLIN as u32,
        )?;
        let acceptor = Acceptor::new(&mut c)?;
        Ok(LinuxShim {
            poller,
            waker,
            deadline,
            acceptor,
            corked: FdSet::default(),
            clock: MonotonicClock::default(),
            c,
        })
    }

    /// The syscalls made so far (since creation or the last [`reset_stats`](Self::reset_stats)).
    #[cfg(feature = "stats")]
    pub fn stats(&self) -> SyscallStats {
        self.c.stats
    }

    /// Sets every syscall counter back to zero.
    #[cfg(feature = "stats")]
    pub fn reset_stats(&mut self) {
        self.c.stats = SyscallStats::default();
    }

    /// Records whether a successful send left data held back by `MSG_MORE`.
    #[inline]
    fn note_send(&mut self, fd: RawFd, more: bool, result: &Result<usize, LinuxError>) {
        // The hot path, first and alone: no hint, nothing held back anywhere (one compare;
        // the result and the descriptor are not even looked at).
        if !more && self.corked.is_empty() {
            return;
        }
        if matches!(result, Ok(n) if *n > 0) {
            if more {
                self.corked.insert(fd);
            } else {
                self.corked.remove(fd);
            }
        }
    }
}

impl LinuxShim {
    /// A wait reported the waker or the deadline: drains the eventfd and reports both as
    /// plain readable events (the timerfd needs no read: setting it again resets it).
    #[cold]
    #[inline(never)]
    fn reserved_events(&mut self, events: &mut [Event]) {
        for ev in events.iter_mut() {
            if ev.token == Token::WAKER {
                self.waker.drain(&mut self.c);
                *ev = Event::new(Token::WAKER).with_readable(true);
            } else if ev.token == Token::DEADLINE {
                *ev = Event::new(Token::DEADLINE).with_readable(true);
            }
        }
    }
}

impl fmt::Debug for LinuxShim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LinuxShim")
            .field("epoll_fd", &self.poller.raw())
            .field("waker", &self.waker)
            .field("acceptor", &self.acceptor)
            .finish_non_exhaustive()
    }
}

/// The epoll descriptor, e.g. to nest this shim's poller in another event loop. It stays owned
/// by the shim: do not close it.
impl AsRawFd for LinuxShim {
    fn as_raw_fd(&self) -> RawFd {
        self.poller.raw()
    }
}

impl OsShim for LinuxShim {
    type Fd = Fd;
    type Waker = LinuxWaker;
    type Error = LinuxError;

    fn register(&mut self, fd: &Fd, token: Token, interest: Interest) -> Result<(), LinuxError> {
        let bits = epoll::epoll_bits(interest);
        self.poller.ctl(
            &mut self.c,
            libc::EPOLL_CTL_ADD,
            fd.as_raw_fd(),
            token,
            bits,
        )
    }

    fn modify(&mut self, fd: &Fd, token: Token, interest: Interest) -> Result<(), LinuxError> {
        let bits = epoll::epoll_bits(interest);
        self.poller.ctl(
            &mut self.c,
            libc::EPOLL_CTL_MOD,
            fd.as_raw_fd(),
            token,
            bits,
        )
    }

    fn deregister(&mut self, fd: &Fd) -> Result<(), LinuxError> {
        self.poller.ctl(
            &mut self.c,
            libc::EPOLL_CTL_DEL,
            fd.as_raw_fd(),
            Token(0),
            0,
        )
    }

    // Always inlined: the loop calls it from two places (with and without deadline events),
    // and one of them runs every iteration.
    #[inline(always)]
    fn wait(&mut self, events: &mut [Event], timeout_ms: Option<u64>) -> Result<usize, LinuxError> {
        let (n, woken) = self.poller.wait(&mut self.c, events, timeout_ms)?;
        if woken {
            self.reserved_events(&mut events[..n]);
        }
        Ok(n)
    }

    fn waker(&mut self) -> LinuxWaker {
        self.waker.clone()
    }

    /// Arms the timerfd (see the `deadline` module): always supported.
    fn set_deadline(&mut self, at_ms: Option<u64>) -> Result<bool, LinuxError> {
        self.deadline.set(&mut self.c, at_ms)?;
        Ok(true)
    }

    #[inline]
    fn now_ms(&mut self) -> u64 {
        self.clock.now_ms(&mut self.c)
    }

    fn listen(
        &mut self,
        target: ListenTarget<'_>,
        options: ListenOptions,
    ) -> Result<Fd, LinuxError> {
        targets::listen(&mut self.c, target, options)
    }

    fn accept(&mut self, listener: &Fd) -> Result<Option<(Fd, PeerAddr)>, LinuxError> {
        self.acceptor.accept(&mut self.c, listener.as_raw_fd())
    }

    fn connect(&mut self, target: ConnectTarget<'_>) -> Result<Fd, LinuxError> {
        targets::connect(&mut self.c, target)
    }

    fn connect_result(&mut self, fd: &Fd) -> Result<(), LinuxError> {
        net::take_error(&mut self.c, fd.as_raw_fd())
    }

    fn adopt(&mut self, fd: &Fd) -> Result<(), LinuxError> {
        net::adopt(&mut self.c, fd.as_raw_fd())
    }

    #[inline]
    fn recv(&mut self, fd: &Fd, buf: &mut [u8]) -> Result<usize, LinuxError> {
        net::recv(&mut self.c, fd.as_raw_fd(), buf)
    }

    #[inline]
    fn send(&mut self, fd: &Fd, data: &[u8], more: bool) -> Result<usize, LinuxError> {
        let fd = fd.as_raw_fd();
        let r = net::send(&mut self.c, fd, data, more);
        self.note_send(fd, more, &r);
        r
    }

    fn send2(&mut self, fd: &Fd, header: &[u8], payload: &[u8]) -> Result<usize, LinuxError> {
        let fd = fd.as_raw_fd();
        let r = net::send2(&mut self.c, fd, header, payload);
        self.note_send(fd, false, &r);
        r
    }

    fn flush(&mut self, fd: &Fd) -> Result<(), LinuxError> {
        let fd = fd.as_raw_fd();
        if !self.corked.remove(fd) {
            return Ok(());
        }
        match net::set_nodelay(&mut self.c, fd) {
            Err(e) if net::not_applicable(&e) => Ok(()),
            r => r,
        }
    }

    fn shutdown_write(&mut self, fd: &Fd) -> Result<(), LinuxError> {
        net::shutdown(&mut self.c, fd.as_raw_fd(), libc::SHUT_WR)
    }

    fn shutdown_read(&mut self, fd: &Fd) -> Result<(), LinuxError> {
        net::shutdown(&mut self.c, fd.as_raw_fd(), libc::SHUT_RD)
    }

    fn close(&mut self, fd: Fd) {
        self.corked.remove(fd.as_raw_fd());
        sys::close_owned(&mut self.c, fd);
    }

    fn local_addr(&mut self, fd: &Fd) -> Result<PeerAddr, LinuxError> {
        net::name(&mut self.c, fd.as_raw_fd(), false)
    }

    fn remote_addr(&mut self, fd: &Fd) -> Result<PeerAddr, LinuxError> {
        net::name(&mut self.c, fd.as_raw_fd(), true)
    }
}

/// The examples of the crate's README, run as doctests so they cannot go stale.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
