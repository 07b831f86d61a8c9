//! # usockets-shim-uring
//!
//! A Linux [`OsShim`] for `usockets-core` on **io_uring**: every receive, send, accept and
//! connect of an iteration goes to the kernel in the iteration's one `io_uring_enter`, so a
//! request costs no `recv`, `send` or `epoll_*` syscall at all. Linux 6.0 or later; no
//! `SQPOLL` (a polling kernel thread would take a core).
//!
//! ```no_run
//! use usockets_core::{ListenOptions, ListenTarget, OsShim};
//! use usockets_shim_uring::UringShim;
//!
//! // Where io_uring is missing or disabled, `new` fails cleanly: fall back to epoll.
//! let mut shim = UringShim::new()?;
//! let target = ListenTarget::Host { host: Some("127.0.0.1"), port: 0 };
//! let listener = shim.listen(target, ListenOptions::default())?;
//! println!("listening on {:?}", shim.local_addr(&listener)?);
//! # Ok::<(), usockets_shim_uring::UringError>(())
//! ```
//!
//! # How a completion-based ring meets core's readiness contract
//!
//! Core wants level-triggered readiness and one non-blocking `recv`/`send` per event. The shim
//! keeps, per descriptor, what the kernel has completed, and reports it as readiness:
//!
//! * **Receives.** A registered socket with readable interest has a multishot receive armed
//!   that draws buffers from one provided buffer ring. Each completion appends its buffer to
//!   the socket's chain. "Readable" means the chain holds bytes, or the FIN or an error came
//!   after them; [`recv`](OsShim::recv) copies from the chain (no syscall) and gives emptied
//!   buffers back to the ring. Dropping readable interest (core pauses the socket) cancels
//!   the receive. A socket holding [`UringConfig::unread_cap`] unread bytes has its receive
//!   cancelled until core reads below the cap, so a slow or paused connection cannot take
//!   the ring's buffers from the others; a receive that ends because the ring is empty is
//!   armed again once buffers come back.
//! * **Sends.** [`send`](OsShim::send) and [`send2`](OsShim::send2) copy into the
//!   connection's slab, taken on demand from a shared pool of
//!   [`UringConfig::send_chunks`] slabs (no allocation per request) and queue nothing yet:
//!   at the next `wait`, each connection with bytes queued and no send in flight gets one
//!   send of everything it queued, so an iteration's writes on a socket become one send. A
//!   socket has at most one send in flight, so nothing is reordered; a short send's rest goes
//!   with the next. "Writable" means room in the slab (or a free slab). A send that fails
//!   leaves its error pending: an error event, and the next `recv`, `send` or
//!   [`connect_result`](OsShim::connect_result) returns it.
//! * **One enter per iteration.** `wait` first queues the sends and re-arms, handles the
//!   completions already posted, and computes readiness. With something to report it only
//!   submits (one `io_uring_enter`, none if nothing is queued and the timeout is not zero);
//!   with nothing, one `io_uring_enter` submits and waits for a completion (the timeout
//!   rides along, `IORING_ENTER_EXT_ARG`). Either way a `wait` enters the kernel at most
//!   once; a wait whose completions make nothing ready returns no events (core treats it as
//!   an empty iteration). [`UringShim::stats`] counts the enters.
//! * **Accepts.** A listener has a multishot accept armed whose connections queue for core's
//!   `accept` (which sets `TCP_NODELAY` and reads the peer's address: the multishot form
//!   returns none). At [`UringConfig::accept_queue`] queued connections the accept is
//!   cancelled and the kernel's backlog holds the rest. An accept that ends on a real error
//!   (`EMFILE` above all) hands the listener to the plain `accept4` syscall with shim-unix's
//!   shedding (exactly shim-linux's behaviour: the reserve descriptor, queued peers closed
//!   at once) until the backlog is empty, then the multishot accept is armed again; if even
//!   shedding fails, core gets the `EMFILE` and backs the listener off, and resuming it
//!   arms the accept again.
//! * **Connects** are `IORING_OP_CONNECT` submissions; the socket is writable (or in error)
//!   when it completes.
//! * **Closing.** [`close`](OsShim::close) cancels the receive and gives back unread
//!   buffers, but the socket's queued bytes still go out: the real close waits until its
//!   last operation completes, or until [`UringConfig::close_linger_ms`] has passed (a peer
//!   that never reads cannot keep the descriptor and its slab). [`shutdown_write`](OsShim::shutdown_write) likewise waits for
//!   the queued bytes, then shuts down. Until then the descriptor number stays taken, so a
//!   late completion can never be mistaken for a new socket's.
//! * **User polls** (descriptors core polls for the user: pipes, eventfds...) get one-shot
//!   `IORING_OP_POLL_ADD`s re-armed every iteration while they have interest, which is
//!   level-triggered as seen by core.
//! * **Waker**: an eventfd (the same [`LinuxWaker`] as shim-linux's) polled through the ring;
//!   [`Wake::wake`](usockets_core::Wake::wake) works from any thread, before or after the
//!   shim is gone.
//! * **Deadline**: [`set_deadline`](OsShim::set_deadline) is an absolute
//!   `IORING_OP_TIMEOUT` on `CLOCK_MONOTONIC`, the clock of [`now_ms`](OsShim::now_ms):
//!   no syscall to arm it; it rides along with the next enter.
//!
//! # Descriptors
//!
//! [`OsShim::Fd`] is std's [`OwnedFd`], as for shim-linux: plain descriptors (no fixed-file
//! table), so `Cx::socket_fd` and every std conversion work unchanged.
//!
//! # Memory
//!
//! Everything is sized by [`UringConfig`] when the shim is made: the rings, the receive
//! buffers and the send pool; a table indexed by descriptor number grows (rarely) to the
//! highest number seen. A client that stops reading costs at most one slab of the server's
//! memory, however much the server writes.
//!
//! # Dropping
//!
//! The drop cancels every operation in flight and waits until the kernel has completed them
//! all before the buffers are freed (if the kernel does not finish within a few seconds, the
//! buffers are leaked rather than freed under it).
//!
//! # Features
//!
//! * `stats`: also counts the syscalls made outside the ring (setup, `accept4` fallback,
//!   `shutdown`, `getpeername`, ...): `UringStats::syscalls`.

#![cfg(target_os = "linux")]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]
#![warn(
    clippy::undocumented_unsafe_blocks,
    clippy::multiple_unsafe_ops_per_block
)]

mod complete;
mod config;
mod conn;
mod listener;
mod memory;
mod op;
mod ready;
mod ring;
mod stream;

use core::fmt;
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use io_uring::{opcode, types};

use usockets_core::{
    ConnectTarget, Event, Interest, ListenOptions, ListenTarget, OsShim, PeerAddr, Token,
};
use usockets_shim_unix::accept::Acceptor;
use usockets_shim_unix::stats::Counters;
use usockets_shim_unix::sys::MonotonicClock;
use usockets_shim_unix::{net, targets};

use crate::conn::{Kind, Table};
use crate::memory::{RecvBuffers, SendPool, BGID};
use crate::op::{pack, Op, GEN_MASK};
use crate::ring::Ring;

pub use crate::config::UringConfig;
pub use usockets_shim_linux::LinuxWaker;
#[cfg(feature = "stats")]
pub use usockets_shim_unix::SyscallStats;

/// The shim's error: a portable [`ErrorKind`](usockets_core::ErrorKind) and the raw `errno`,
/// the same type as shim-linux's. [`UringShim::new`] fails with kind
/// [`Unsupported`](usockets_core::ErrorKind::Unsupported) where io_uring is not available.
pub type UringError = usockets_shim_unix::UnixError;

/// The shim's descriptor: std's owned Unix file descriptor.
pub type Fd = OwnedFd;

/// What the shim has done so far: always counted (a few additions per iteration).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct UringStats {
    /// `io_uring_enter` calls.
    pub enters: u64,
    /// Submissions queued (receives, sends, accepts, connects, polls, cancels, timeouts).
    pub submitted: u64,
    /// Completions handled.
    pub completions: u64,
    /// Syscalls made outside the ring (feature `stats`); its `recv`, `send`, `epoll_wait`
    /// and `epoll_ctl` stay 0: the shim has none of them.
    #[cfg(feature = "stats")]
    pub syscalls: SyscallStats,
}

/// The io_uring [`OsShim`]: one per loop, used from that loop's thread.
///
/// See the [crate docs](crate) for how it works and why.
pub struct UringShim {
    ring: Ring,
    config: UringConfig,
    table: Table,
    rx: RecvBuffers,
    pool: SendPool,
    /// Descriptors for the next readiness pass, and the spare list it swaps with.
    ready: Vec<u32>,
    ready_spare: Vec<u32>,
    /// Connections with bytes queued for the next enter.
    tx_list: Vec<u32>,
    /// Receives that ended for want of buffers.
    starved: Vec<u32>,
    /// User polls to arm at the next wait.
    poll_rearm: Vec<u32>,
    /// Closed sockets still sending: (descriptor, generation, give up at this `now_ms`).
    lingering: Vec<(u32, u32, u64)>,
    /// A connection found the send pool empty: wake writers when a slab comes back.
    pool_waiters: bool,
    waker: LinuxWaker,
    waker_armed: bool,
    woken: bool,
    /// The deadline's absolute time, read by the kernel when the timeout is submitted:
    /// boxed so it never moves.
    deadline_at: Box<types::Timespec>,
    deadline_gen: u32,
    deadline_armed: bool,
    deadline_fired: bool,
    acceptor: Acceptor,
    clock: MonotonicClock,
    c: Counters,
}

impl UringShim {
    /// A shim with the default [`UringConfig`]. Fails with kind
    /// [`Unsupported`](usockets_core::ErrorKind::Unsupported) where io_uring is missing,
    /// disabled or too old (before Linux 6.0), so a program can fall back to epoll.
    pub fn new() -> Result<UringShim, UringError> {
        UringShim::with_config(UringConfig::default())
    }

    /// A shim with the capacities of `config`. An unusable configuration (a buffer count that
    /// is not a power of two, a zero size) is [`InvalidInput`](usockets_core::ErrorKind::InvalidInput).
    pub fn with_config(config: UringConfig) -> Result<UringShim, UringError> {
        if !config.valid() {
            return Err(UringError::from_errno(libc::EINVAL));
        }
        let mut c = Counters::default();
        let ring = Ring::new(config.entries)?;
        let rx = RecvBuffers::new(config.recv_buffers, config.recv_buffer_size)
            .map_err(|e| UringError::from_errno(e.raw_os_error().unwrap_or(libc::ENOMEM)))?;
        let (addr, count) = rx.ring_addr();
        // SAFETY: `rx`'s ring is page-aligned (mmap) with `count` entries, and it lives in
        // the shim next to the ring, freed only after the drop has drained the ring.
        unsafe { ring.register_buffers(addr, count, BGID)? };
        let waker = LinuxWaker::new(&mut c)?;
        let acceptor = Acceptor::new(&mut c)?;
        let mut shim = UringShim {
            ring,
            config,
            table: Table::new(),
            rx,
            pool: SendPool::new(config.send_chunks, config.send_chunk),
            ready: Vec::with_capacity(1024),
            ready_spare: Vec::with_capacity(1024),
            tx_list: Vec::with_capacity(1024),
            starved: Vec::new(),
            poll_rearm: Vec::new(),
            lingering: Vec::new(),
            pool_waiters: false,
            waker,
            waker_armed: false,
            woken: false,
            deadline_at: Box::new(types::Timespec::new()),
            deadline_gen: 0,
            deadline_armed: false,
            deadline_fired: false,
            acceptor,
            clock: MonotonicClock::default(),
            c,
        };
        shim.arm_waker();
        Ok(shim)
    }

    /// What the shim has done since it was made.
    pub fn stats(&self) -> UringStats {
        UringStats {
            enters: self.ring.enters,
            submitted: self.ring.submitted,
            completions: self.ring.completions,
            #[cfg(feature = "stats")]
            syscalls: self.c.stats,
        }
    }

    /// The configuration the shim was made with.
    pub fn config(&self) -> &UringConfig {
        &self.config
    }

    /// Send slabs in use now (of [`UringConfig::send_chunks`]).
    pub fn send_slabs_in_use(&self) -> u32 {
        self.config.send_chunks - self.pool.free_count()
    }

    /// Arms the poll on the waker's eventfd.
    fn arm_waker(&mut self) {
        if self.waker_armed {
            return;
        }
        let entry = opcode::PollAdd::new(types::Fd(self.waker.raw()), libc::POLLIN as u32)
            .build()
            .user_data(pack(Op::Waker, 0, 0));
        // SAFETY: a poll carries no pointer.
        self.waker_armed = unsafe { self.ring.push(&entry) };
    }

    /// The waker's poll completed: drain the eventfd, report the wake-up, poll again.
    fn waker_fired(&mut self) {
        self.waker_armed = false;
        self.waker.drain(&mut self.c);
        self.woken = true;
        self.arm_waker();
    }

    /// Everything queued since the last enter goes out with the next: sends, re-arms.
    fn prepare(&mut self) {
        if !self.tx_list.is_empty() {
            self.flush_sends();
        }
        if !self.poll_rearm.is_empty() {
            self.rearm_polls();
        }
        if !self.starved.is_empty() {
            self.rearm_starved();
        }
        if !self.waker_armed {
            self.arm_waker();
        }
    }

    /// The descriptor's number, as the table's index.
    #[inline]
    fn raw(fd: &OwnedFd) -> u32 {
        fd.as_raw_fd() as u32
    }
}

impl fmt::Debug for UringShim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UringShim")
            .field("config", &self.config)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl OsShim for UringShim {
    type Fd = Fd;
    type Waker = LinuxWaker;
    type Error = UringError;

    fn register(&mut self, fd: &Fd, token: Token, interest: Interest) -> Result<(), UringError> {
        let raw = Self::raw(fd);
        let c = self.table.at(raw);
        if c.kind == Kind::Free || c.kind == Kind::Poll {
            c.open(Kind::Poll);
        }
        c.token = token;
        c.registered = true;
        c.interest = Interest::NONE;
        self.modify(fd, token, interest)
    }

    fn modify(&mut self, fd: &Fd, token: Token, interest: Interest) -> Result<(), UringError> {
        let raw = Self::raw(fd);
        let c = self.table.at(raw);
        if !c.registered {
            return Err(UringError::from_errno(libc::ENOENT));
        }
        let old = std::mem::replace(&mut c.interest, interest);
        c.token = token;
        match c.kind {
            Kind::Stream => {
                let wake = interest.is_writable()
                    || c.error != 0
                    || (interest.is_readable() && (c.rx_bytes > 0 || c.fin));
                if interest.is_readable() && !old.is_readable() {
                    self.arm_recv(raw);
                } else if !interest.is_readable() && old.is_readable() {
                    self.cancel(raw, Op::Recv);
                }
                if wake {
                    self.mark_ready(raw);
                }
            }
            Kind::Listener => {
                if interest.is_readable() && !old.is_readable() && c.accept_fallback {
                    // Resumed (after a back-off, say) while out of descriptors: try again.
                    c.fallback_ready = true;
                }
                let wake = !c.accepted.is_empty() || c.fallback_ready;
                if interest.is_readable() {
                    self.arm_accept(raw);
                    if wake {
                        self.mark_ready(raw);
                    }
                } else if old.is_readable() {
                    self.cancel(raw, Op::Accept);
                    self.cancel_fallback_poll(raw);
                }
            }
            Kind::Poll => {
                if old != interest {
                    // A new life for the poll: the one in flight (removed) reports nothing.
                    let armed = c.armed;
                    if armed {
                        self.cancel(raw, Op::Poll);
                    }
                    let c = self.table.at(raw);
                    c.generation = c.generation.wrapping_add(1) & GEN_MASK;
                    c.armed = false;
                    c.cancelling = false;
                    c.revents = 0;
                    self.poll_rearm.push(raw);
                }
            }
            Kind::Free => {}
        }
        Ok(())
    }

    fn deregister(&mut self, fd: &Fd) -> Result<(), UringError> {
        let raw = Self::raw(fd);
        let Some(c) = self.table.get_mut(raw) else {
            return Err(UringError::from_errno(libc::ENOENT));
        };
        if !c.registered {
            return Err(UringError::from_errno(libc::ENOENT));
        }
        match c.kind {
            Kind::Stream => self.cancel(raw, Op::Recv),
            Kind::Listener => {
                self.cancel(raw, Op::Accept);
                self.cancel_fallback_poll(raw);
            }
            Kind::Poll => {
                self.cancel(raw, Op::Poll);
                // The user keeps the descriptor (and may close it): the number is not ours.
                self.table.at(raw).open(Kind::Free);
                return Ok(());
            }
            Kind::Free => {}
        }
        let c = self.table.at(raw);
        c.registered = false;
        c.interest = Interest::NONE;
        Ok(())
    }

    fn wait(&mut self, events: &mut [Event], timeout_ms: Option<u64>) -> Result<usize, UringError> {
        self.prepare();
        self.reap();
        let mut timeout_ms = timeout_ms;
        if !self.lingering.is_empty() {
            if let Some(left) = self.expire_lingering() {
                timeout_ms = Some(timeout_ms.map_or(left, |t| t.min(left)));
            }
        }
        let n = self.collect(events);
        if n > 0 || timeout_ms == Some(0) {
            // Something to report (or a poll): hand over what is queued, wait for nothing.
            if self.ring.has_queued() || timeout_ms == Some(0) {
                self.ring.submit()?;
            }
            if n > 0 {
                return Ok(n);
            }
            self.reap();
            return Ok(self.collect(events));
        }
        self.ring.submit_and_wait(timeout_ms)?;
        self.reap();
        Ok(self.collect(events))
    }

    fn waker(&mut self) -> LinuxWaker {
        self.waker.clone()
    }

    /// An absolute `IORING_OP_TIMEOUT` (always supported): replaces the one armed before.
    fn set_deadline(&mut self, at_ms: Option<u64>) -> Result<bool, UringError> {
        if self.deadline_armed {
            let entry = opcode::TimeoutRemove::new(pack(Op::Deadline, 0, self.deadline_gen))
                .build()
                .user_data(pack(Op::Cancel, 0, 0));
            // SAFETY: a timeout removal carries no pointer.
            unsafe { self.ring.push(&entry) };
            self.deadline_armed = false;
        }
        self.deadline_gen = self.deadline_gen.wrapping_add(1) & GEN_MASK;
        self.deadline_fired = false;
        let Some(at) = at_ms else {
            return Ok(true);
        };
        *self.deadline_at = types::Timespec::new()
            .sec(at / 1000)
            .nsec((at % 1000) as u32 * 1_000_000);
        let entry = opcode::Timeout::new(&*self.deadline_at)
            .flags(types::TimeoutFlags::ABS)
            .build()
            .user_data(pack(Op::Deadline, 0, self.deadline_gen));
        // SAFETY: the timeout reads `deadline_at` when it is submitted; the box lives as long
        // as the shim and is only rewritten by a later `set_deadline`, whose own timeout is
        // submitted after this one's (with the same time, then removed: the right outcome).
        if !unsafe { self.ring.push(&entry) } {
            return Err(UringError::from_errno(libc::EBUSY));
        }
        self.deadline_armed = true;
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
    ) -> Result<Fd, UringError> {
        let fd = targets::listen(&mut self.c, target, options)?;
        let queue = self.config.accept_queue as usize;
        let c = self.table.at(Self::raw(&fd));
        c.open(Kind::Listener);
        c.accepted.reserve(queue);
        Ok(fd)
    }

    fn accept(&mut self, listener: &Fd) -> Result<Option<(Fd, PeerAddr)>, UringError> {
        self.listener_accept(Self::raw(listener))
    }

    fn connect(&mut self, target: ConnectTarget<'_>) -> Result<Fd, UringError> {
        let (to, from) = targets::connect_addrs(&mut self.c, target)?;
        let fd = net::connect_socket(&mut self.c, &to, from.as_ref())?;
        let raw = Self::raw(&fd);
        let to = Box::new(to);
        let (p, len) = (to.as_ptr(), to.len());
        let c = self.table.at(raw);
        c.open(Kind::Stream);
        c.connecting = true;
        c.connect_to = Some(to);
        let entry = opcode::Connect::new(types::Fd(raw as i32), p, len)
            .build()
            .user_data(pack(Op::Connect, raw, c.generation));
        // SAFETY: the connect reads the boxed address, which stays in the socket's state
        // (never moved: it is boxed) until the connect's completion.
        if unsafe { self.ring.push(&entry) } {
            self.table.at(raw).ops += 1;
            Ok(fd)
        } else {
            self.table.at(raw).open(Kind::Free);
            Err(UringError::from_errno(libc::EBUSY))
        }
    }

    fn connect_result(&mut self, fd: &Fd) -> Result<(), UringError> {
        let raw = Self::raw(fd);
        if let Some(c) = self.table.get_mut(raw) {
            if c.connecting {
                return Err(UringError::from_errno(libc::EAGAIN));
            }
            if c.error != 0 {
                return Err(UringError::from_errno(std::mem::take(&mut c.error)));
            }
        }
        net::take_error(&mut self.c, raw as i32)
    }

    fn adopt(&mut self, fd: &Fd) -> Result<(), UringError> {
        net::adopt(&mut self.c, fd.as_raw_fd())?;
        self.table.at(Self::raw(fd)).open(Kind::Stream);
        Ok(())
    }

    #[inline]
    fn recv(&mut self, fd: &Fd, buf: &mut [u8]) -> Result<usize, UringError> {
        self.stream_recv(Self::raw(fd), buf)
    }

    #[inline]
    fn send(&mut self, fd: &Fd, data: &[u8], _more: bool) -> Result<usize, UringError> {
        // `more` needs nothing: everything written in an iteration leaves in one send.
        self.stream_send(Self::raw(fd), [data, &[]])
    }

    fn send2(&mut self, fd: &Fd, header: &[u8], payload: &[u8]) -> Result<usize, UringError> {
        self.stream_send(Self::raw(fd), [header, payload])
    }

    fn shutdown_write(&mut self, fd: &Fd) -> Result<(), UringError> {
        self.stream_shutdown_write(Self::raw(fd))
    }

    fn shutdown_read(&mut self, fd: &Fd) -> Result<(), UringError> {
        net::shutdown(&mut self.c, fd.as_raw_fd(), libc::SHUT_RD)
    }

    fn close(&mut self, fd: Fd) {
        let raw = Self::raw(&fd);
        self.close_fd(fd, raw);
    }

    fn local_addr(&mut self, fd: &Fd) -> Result<PeerAddr, UringError> {
        net::name(&mut self.c, fd.as_raw_fd(), false)
    }

    fn remote_addr(&mut self, fd: &Fd) -> Result<PeerAddr, UringError> {
        net::name(&mut self.c, fd.as_raw_fd(), true)
    }
}

impl Drop for UringShim {
    fn drop(&mut self) {
        // Cancel everything in flight, then wait until the kernel has completed it all: only
        // then may the buffers it writes into (and the slabs it reads) be freed.
        let entry = opcode::AsyncCancel2::new(types::CancelBuilder::any())
            .build()
            .user_data(pack(Op::Cancel, 0, 0));
        // SAFETY: a cancel carries no pointer.
        unsafe { self.ring.push(&entry) };
        self.ring.refuse_new();
        if self.ring.never_entered() {
            // Nothing ever reached the kernel: nothing to wait for.
            self.ring.in_flight = 0;
        }
        let give_up = Instant::now() + Duration::from_secs(5);
        while self.ring.in_flight > 0 && Instant::now() < give_up {
            if self.ring.submit_and_wait(Some(100)).is_err() {
                break;
            }
            self.reap();
        }
        if self.ring.in_flight > 0 {
            // The kernel may still write into the receive buffers or read the slabs (and the
            // connect addresses): leak them rather than free memory under it.
            self.rx.leak();
            self.pool.leak();
            for c in self.table.all_mut() {
                if let Some(to) = c.connect_to.take() {
                    std::mem::forget(to);
                }
            }
        }
        // What the table still holds (descriptors of closes in progress, queued accepts) is
        // closed when it drops.
    }
}

/// The examples of the crate's README, run as doctests so they cannot go stale.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
