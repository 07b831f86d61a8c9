//! The one seam between core and an operating system: the [`OsShim`] trait.
//!
//! Core never touches the OS. Everything it needs — a readiness poller, a monotonic clock, a
//! cross-thread waker and a handful of non-blocking socket operations — comes through this trait.
//! A shim author implements it once per OS (epoll, kqueue, IOCP, a simulated network, a custom
//! RTOS stack) and runs the conformance suite against it.
//!
//! # The readiness contract (level-triggered)
//!
//! Core relies on **level-triggered** readiness, as the C library's hot path does:
//!
//! * While a registered descriptor has unread data, a pending FIN, a pending error or a pending
//!   connection (listeners), every [`OsShim::wait`] reports it readable. Core therefore does
//!   exactly **one** `recv` per readable event and never an extra `recv` just to see
//!   would-block: whatever is left is reported again by the next `wait`.
//! * While a descriptor registered for writable interest can take more bytes, `wait` reports it
//!   writable. Core adds writable interest only after a short write and drops it once
//!   `on_writable` returns without another short write, so a connection in steady state causes
//!   **no interest change at all** (no `modify` call per request).
//! * Errors and hang-ups are reported whatever the interest (even an empty one), through
//!   [`Event::error`] and [`Event::hangup`]. A hang-up means the connection is finished in
//!   both directions (or reset); a peer's FIN alone (a half-close) is **not** a hang-up: it is
//!   reported as readable, core reads 0 bytes and runs `on_end`. A hang-up with unread data must
//!   still report readable, so core delivers the data before it closes.
//! * Spurious readiness is allowed: core treats a would-block result as "nothing to do".
//!
//! How each OS meets it:
//!
//! * **epoll** (Linux): register without `EPOLLET`; `EPOLLIN`/`EPOLLOUT` map to the two interest
//!   bits, `EPOLLERR` to `error`, `EPOLLHUP` to `hangup`. `EPOLLRDHUP` (peer half-close) is
//!   registered only together with readable interest and reported as readable: registered
//!   always, it would stay ready after core drops readable interest on `on_end` and spin the
//!   loop. This is the natural mode.
//! * **kqueue** (BSD, macOS): `EVFILT_READ`/`EVFILT_WRITE` without `EV_CLEAR` are level-triggered.
//!   `EV_EOF` on the read filter is the peer's FIN: readable (the pending data first, then 0
//!   bytes and `on_end`), and an error too when `fflags` carries a socket error; `EV_ERROR`
//!   maps to `error`. Interest is added and removed with `EV_ADD`/`EV_DELETE`; without
//!   readable interest an edge-triggered (`EV_CLEAR`) read filter stays to catch errors
//!   (`usockets-shim-bsd`).
//! * **IOCP** (Windows, via AFD poll): an AFD poll request is one-shot; the shim re-arms it after
//!   delivering each event with the current interest, which gives level-triggered behaviour as
//!   seen by core (the next `wait` reports the socket again while the condition holds).
//!
//! # Tokens
//!
//! Core registers every descriptor with a [`Token`] that encodes a generational handle. The shim
//! stores it and hands it back unchanged in [`Event::token`]; it never interprets it. Because the
//! generation is part of the token, an event that arrives for a slot that has since been reused
//! (a stale event, a late completion) is recognised and dropped by core.
//!
//! # Descriptors have one owner
//!
//! A shim's [`Fd`](OsShim::Fd) is an *owned* descriptor, like std's `OwnedFd`: not `Copy`, not
//! makeable from an integer by safe code, closed by whoever holds it. The shim gives core an
//! owned `Fd` from `listen`, `accept` and `connect`; every other operation borrows one
//! (`&Self::Fd`); [`OsShim::close`] takes it back. So safe code can never close, read or
//! register a descriptor it does not own, nor one that was closed and reused (std's I/O-safety
//! rule), through the loop or through a second shim.
//!
//! # Dropping a shim
//!
//! A shim's `Drop` must return only once the OS can no longer touch the shim's memory. A
//! readiness poller (epoll, kqueue) holds none; a completion-based shim does (IOCP's
//! `OVERLAPPED`s and buffers, io_uring's rings and provided buffers): its `Drop` cancels every
//! operation in flight, then drains the completions until none is outstanding, and only then
//! frees what the kernel was writing into. [`Loop`](crate::Loop)'s own `Drop` closes every
//! descriptor the loop owns before the shim is dropped.
//!
//! # Non-blocking everything
//!
//! Every socket operation must be non-blocking except name resolution, which a shim may do
//! synchronously (its docs must say so). Every descriptor the shim creates must be
//! close-on-exec. Would-block is reported as an error of kind [`ErrorKind::WouldBlock`]; core
//! never treats it as a failure. A shim retries `EINTR` itself.

use core::fmt;
use core::net::SocketAddr;

/// The opaque value core registers with the poller and gets back in [`Event`]s.
///
/// The shim stores it and returns it unchanged; only core gives it meaning.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Token(pub u64);

impl Token {
    /// The token a shim uses in the event that reports a [`Wake::wake`] call.
    pub const WAKER: Token = Token(u64::MAX);
    /// The token a shim uses in the event that reports that the deadline armed with
    /// [`OsShim::set_deadline`] has come.
    pub const DEADLINE: Token = Token(u64::MAX - 1);
}

/// What a registration is interested in: readable, writable, both or neither.
///
/// The bit values match the C ABI's `LIBUS_SOCKET_READABLE` (1) and `LIBUS_SOCKET_WRITABLE` (2).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Interest(u8);

impl Interest {
    /// No interest: only errors and hang-ups are reported.
    pub const NONE: Interest = Interest(0);
    /// Readable interest.
    pub const READABLE: Interest = Interest(1);
    /// Writable interest.
    pub const WRITABLE: Interest = Interest(2);
    /// Readable and writable interest.
    pub const BOTH: Interest = Interest(3);

    /// Builds an interest from the C bit mask (1 = readable, 2 = writable); other bits are ignored.
    pub const fn from_bits(bits: i32) -> Interest {
        Interest((bits & 3) as u8)
    }
    /// The C bit mask of this interest.
    pub const fn bits(self) -> i32 {
        self.0 as i32
    }
    /// Whether readable interest is set.
    pub const fn is_readable(self) -> bool {
        self.0 & 1 != 0
    }
    /// Whether writable interest is set.
    pub const fn is_writable(self) -> bool {
        self.0 & 2 != 0
    }
    /// Whether no interest is set.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }
    /// This interest with `other`'s bits added.
    #[must_use]
    pub const fn with(self, other: Interest) -> Interest {
        Interest(self.0 | other.0)
    }
    /// This interest with `other`'s bits removed.
    #[must_use]
    pub const fn without(self, other: Interest) -> Interest {
        Interest(self.0 & !other.0)
    }
}

/// One readiness report from [`OsShim::wait`].
///
/// Build one with [`Event::new`] and the `with_*` setters; read it with [`readable`],
/// [`writable`], [`error`] and [`hangup`]. The four states are bits of one byte: a shim sets
/// them from its poller's bits and core tests them together, without a byte per state to
/// write and read back on every event.
///
/// [`readable`]: Event::readable
/// [`writable`]: Event::writable
/// [`error`]: Event::error
/// [`hangup`]: Event::hangup
#[derive(Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Event {
    /// The token given at registration, or [`Token::WAKER`].
    pub token: Token,
    bits: u8,
}

impl Event {
    const READABLE: u8 = 1;
    const WRITABLE: u8 = 2;
    const ERROR: u8 = 4;
    const HANGUP: u8 = 8;

    /// An event with nothing set, for filling the slice core hands to [`OsShim::wait`].
    pub const EMPTY: Event = Event::new(Token(0));

    /// An event for `token` with nothing set yet.
    pub const fn new(token: Token) -> Event {
        Event { token, bits: 0 }
    }

    #[inline(always)]
    const fn with_bit(mut self, bit: u8, on: bool) -> Event {
        if on {
            self.bits |= bit;
        } else {
            self.bits &= !bit;
        }
        self
    }

    /// Readable (data, FIN, error or pending connection).
    #[inline(always)]
    pub const fn readable(&self) -> bool {
        self.bits & Event::READABLE != 0
    }
    /// Writable (or a non-blocking connect finished, successfully or not).
    #[inline(always)]
    pub const fn writable(&self) -> bool {
        self.bits & Event::WRITABLE != 0
    }
    /// An error is pending on the descriptor.
    #[inline(always)]
    pub const fn error(&self) -> bool {
        self.bits & Event::ERROR != 0
    }
    /// The connection is finished in both directions, or reset (`EPOLLHUP`). A half-close
    /// (`EPOLLRDHUP`) is reported as [`readable`](Event::readable), not here.
    #[inline(always)]
    pub const fn hangup(&self) -> bool {
        self.bits & Event::HANGUP != 0
    }
    /// Readable and nothing else: the common event, tested in one compare.
    #[inline(always)]
    pub(crate) const fn only_readable(&self) -> bool {
        self.bits == Event::READABLE
    }

    /// This event with [`readable`](Event::readable) set to `on`.
    #[must_use]
    #[inline(always)]
    pub const fn with_readable(self, on: bool) -> Event {
        self.with_bit(Event::READABLE, on)
    }
    /// This event with [`writable`](Event::writable) set to `on`.
    #[must_use]
    #[inline(always)]
    pub const fn with_writable(self, on: bool) -> Event {
        self.with_bit(Event::WRITABLE, on)
    }
    /// This event with [`error`](Event::error) set to `on`.
    #[must_use]
    #[inline(always)]
    pub const fn with_error(self, on: bool) -> Event {
        self.with_bit(Event::ERROR, on)
    }
    /// This event with [`hangup`](Event::hangup) set to `on`.
    #[must_use]
    #[inline(always)]
    pub const fn with_hangup(self, on: bool) -> Event {
        self.with_bit(Event::HANGUP, on)
    }

    /// The event a shim reports for `token` with these conditions, or `None` when none holds
    /// (nothing to report): for shims that compute readiness themselves (AFD poll results,
    /// a user-space stack's socket states) rather than translate a poller's events.
    #[inline]
    pub const fn ready(
        token: Token,
        readable: bool,
        writable: bool,
        error: bool,
        hangup: bool,
    ) -> Option<Event> {
        if !(readable || writable || error || hangup) {
            return None;
        }
        Some(
            Event::new(token)
                .with_readable(readable)
                .with_writable(writable)
                .with_error(error)
                .with_hangup(hangup),
        )
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for Event {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(
            f,
            "Event {{ token: {}, readable: {}, writable: {}, error: {}, hangup: {} }}",
            self.token,
            self.readable(),
            self.writable(),
            self.error(),
            self.hangup()
        );
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("token", &self.token)
            .field("readable", &self.readable())
            .field("writable", &self.writable())
            .field("error", &self.error())
            .field("hangup", &self.hangup())
            .finish()
    }
}

impl Default for Event {
    fn default() -> Self {
        Event::EMPTY
    }
}

/// A portable classification of OS errors, so core and users can react without raw codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum ErrorKind {
    /// The operation would block (EAGAIN/EWOULDBLOCK); never a failure for core.
    WouldBlock,
    /// The connection was refused (ECONNREFUSED).
    ConnectionRefused,
    /// The peer reset the connection (ECONNRESET, EPIPE).
    ConnectionReset,
    /// The connection was aborted (ECONNABORTED).
    ConnectionAborted,
    /// The operation timed out (ETIMEDOUT).
    TimedOut,
    /// The address is in use (EADDRINUSE).
    AddrInUse,
    /// The address is not available (EADDRNOTAVAIL).
    AddrNotAvailable,
    /// The host or network is unreachable.
    Unreachable,
    /// The process or system ran out of descriptors (EMFILE, ENFILE).
    TooManyOpenFiles,
    /// Out of memory or buffer space (ENOMEM, ENOBUFS).
    OutOfMemory,
    /// A name did not resolve.
    NameResolution,
    /// The arguments were invalid (bad address, path too long, bad descriptor).
    InvalidInput,
    /// Permission denied (EACCES, EPERM).
    PermissionDenied,
    /// The operation is not supported by this shim.
    Unsupported,
    /// Anything else; see the raw code.
    Other,
}

/// What a shim's error must offer core: a portable kind and the raw OS code.
pub trait ShimError: Copy + fmt::Debug {
    /// The portable kind.
    fn kind(&self) -> ErrorKind;
    /// The raw OS code (errno on Unix, the WSA code on Windows), or 0 when there is none.
    fn raw_os_error(&self) -> i32;
}

/// An OS error as core reports it to users: a portable kind plus the raw OS code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub struct OsError {
    /// The portable kind.
    pub kind: ErrorKind,
    /// The raw OS code (e.g. 111 for ECONNREFUSED on Linux), or 0 when there is none.
    pub code: i32,
}

impl OsError {
    /// Builds an error from a kind and a raw code.
    pub const fn new(kind: ErrorKind, code: i32) -> OsError {
        OsError { kind, code }
    }
    /// Converts any shim error.
    pub fn from_shim<E: ShimError>(e: E) -> OsError {
        OsError {
            kind: e.kind(),
            code: e.raw_os_error(),
        }
    }
}

impl ShimError for OsError {
    fn kind(&self) -> ErrorKind {
        self.kind
    }
    fn raw_os_error(&self) -> i32 {
        self.code
    }
}

impl fmt::Display for OsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} (os error {})", self.kind, self.code)
    }
}

impl core::error::Error for OsError {}

/// Wakes a loop from any thread. Given out by [`OsShim::waker`].
///
/// It must stay safe to call after the loop (and the shim) are gone: then it does nothing.
pub trait Wake: Clone + Send + Sync {
    /// Makes the loop's current or next [`OsShim::wait`] return a [`Token::WAKER`] event.
    fn wake(&self);
}

/// Options for [`OsShim::listen`]. Start from [`ListenOptions::default`] (or
/// [`new`](ListenOptions::new)) and use the `with_*` setters: the struct may gain options.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub struct ListenOptions {
    /// Do not share the port (no `SO_REUSEPORT`; `SO_EXCLUSIVEADDRUSE` on Windows).
    pub exclusive_port: bool,
    /// The accept backlog; the C library uses 512.
    pub backlog: u32,
    /// Permission bits of a unix-domain socket file (`ListenTarget::Unix`), less the umask:
    /// 0700 by default, as the C library makes it (only the owner may connect). Shims without
    /// a file system ignore it.
    pub unix_mode: u32,
}

impl ListenOptions {
    /// The C library's defaults: a shared port (`LIBUS_LISTEN_DEFAULT`) and a backlog of 512.
    pub const fn new() -> ListenOptions {
        ListenOptions {
            exclusive_port: false,
            backlog: 512,
            unix_mode: 0o700,
        }
    }
    /// These options with [`exclusive_port`](ListenOptions::exclusive_port) set to `on`
    /// (`LIBUS_LISTEN_EXCLUSIVE_PORT`).
    #[must_use]
    pub const fn with_exclusive_port(mut self, on: bool) -> ListenOptions {
        self.exclusive_port = on;
        self
    }
    /// These options with an accept backlog of `backlog`.
    #[must_use]
    pub const fn with_backlog(mut self, backlog: u32) -> ListenOptions {
        self.backlog = backlog;
        self
    }
    /// These options with unix socket files created with permission bits `mode` (e.g. 0o770
    /// to let the owner's group connect).
    #[must_use]
    pub const fn with_unix_mode(mut self, mode: u32) -> ListenOptions {
        self.unix_mode = mode;
        self
    }
}

impl Default for ListenOptions {
    fn default() -> Self {
        ListenOptions::new()
    }
}

/// Where a non-blocking connect goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnectTarget<'a> {
    /// A host name or literal address and a port. The shim resolves the name.
    Host {
        /// Host name or literal IP address.
        host: &'a str,
        /// TCP port.
        port: u16,
        /// A local address to bind before connecting, if any.
        source: Option<&'a str>,
    },
    /// A unix-domain socket path.
    Unix(&'a str),
}

/// Where a listener listens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListenTarget<'a> {
    /// A host (`None` = every interface, dual-stack) and port (0 = ephemeral).
    Host {
        /// Interface address or name; `None` for every interface.
        host: Option<&'a str>,
        /// TCP port; 0 picks an ephemeral one.
        port: u16,
    },
    /// A unix-domain socket path.
    Unix(&'a str),
}

/// A peer address as the shim reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeerAddr {
    /// An IP peer.
    Ip(SocketAddr),
    /// A unix-domain peer (no IP address).
    Unix,
}

impl PeerAddr {
    /// The raw IP bytes as `on_open` and `remote_address` give them, copied into `out`: 4 for
    /// IPv4, 16 for IPv6, none for unix sockets. Returns how many.
    pub fn ip_bytes(&self, out: &mut [u8; 16]) -> usize {
        match self {
            PeerAddr::Ip(SocketAddr::V4(a)) => {
                out[..4].copy_from_slice(&a.ip().octets());
                4
            }
            PeerAddr::Ip(SocketAddr::V6(a)) => {
                out.copy_from_slice(&a.ip().octets());
                16
            }
            PeerAddr::Unix => 0,
        }
    }
}

/// What core needs from an operating system. See the [module docs](self) for the readiness
/// contract every implementation must meet, and for who owns a descriptor.
///
/// All methods take `&mut self`: a shim belongs to one loop on one thread. Only the
/// [`Waker`](OsShim::Waker) crosses threads. The loop lends its shim to users only as `&Self`
/// ([`Cx::shim`](crate::Cx::shim)), so nothing reachable from a loop can close or re-register a
/// descriptor the loop owns.
///
/// Required methods are the poller, the clock and the socket operations; [`send2`](Self::send2)
/// and [`flush`](Self::flush) have correct defaults, so a minimal shim is short. The
/// conformance suite (`usockets-conformance`) proves every method either way.
pub trait OsShim {
    /// An **owned** descriptor: a socket, listener or other pollable object. Whoever holds the
    /// value owns it and is the one to close it; core hands every `Fd` it owns back to
    /// [`close`](Self::close) exactly once (or to the user, who then owns it). Operations borrow
    /// it as `&Self::Fd`, which is the borrowed handle: it cannot outlive the owner, so it can
    /// never name a descriptor that was closed and reused.
    ///
    /// It must not be `Copy` or `Clone`, and safe code must not be able to make one from an
    /// integer: std's `OwnedFd` (Unix) and `OwnedSocket` (Windows) fit exactly (their
    /// `from_raw_*` constructors are not safe to call and carry a written contract); an io_uring
    /// fixed-file slot or a simulated descriptor is a private newtype. Dropping one should close
    /// it, as std's types do.
    type Fd: fmt::Debug;
    /// The cross-thread waker.
    type Waker: Wake + 'static;
    /// The shim's error type.
    type Error: ShimError;

    // ---- poller -------------------------------------------------------------------------

    /// Starts watching `fd` with `interest`, reporting events with `token`.
    fn register(
        &mut self,
        fd: &Self::Fd,
        token: Token,
        interest: Interest,
    ) -> Result<(), Self::Error>;
    /// Changes the interest (and token) of a registered descriptor.
    fn modify(
        &mut self,
        fd: &Self::Fd,
        token: Token,
        interest: Interest,
    ) -> Result<(), Self::Error>;
    /// Stops watching `fd`. Events for it already collected but not yet returned are dropped.
    fn deregister(&mut self, fd: &Self::Fd) -> Result<(), Self::Error>;
    /// Waits up to `timeout_ms` (`None` = forever, `Some(0)` = poll) for readiness and fills
    /// `events` from the front, returning how many were filled. A wake-up is reported as an event
    /// with [`Token::WAKER`]. An interrupted wait returns `Ok(0)`.
    fn wait(&mut self, events: &mut [Event], timeout_ms: Option<u64>)
        -> Result<usize, Self::Error>;
    /// A handle that wakes this shim's `wait` from any thread.
    fn waker(&mut self) -> Self::Waker;
    /// Arms the shim's one deadline at the absolute time `at_ms` on its own
    /// [`now_ms`](Self::now_ms) clock (`None`: disarms it), replacing the one armed before.
    /// Returns `Ok(false)` when the shim has no deadline events (the default), `Ok(true)` when
    /// it armed (or disarmed) it.
    ///
    /// A shim that supports it reports the deadline's coming from [`wait`](Self::wait) as one
    /// event with [`Token::DEADLINE`], once `now_ms` has reached `at_ms` (a time already past
    /// is reported by the next `wait` at once), as the kernel's timer descriptors do (Linux's
    /// `timerfd`, kqueue's `EVFILT_TIMER`). Once reported, it may be reported by every `wait`
    /// (level-triggered, as a fired timer descriptor stays readable) or only once, until it
    /// is set again: core sets it again or disarms it after every report, before its next
    /// wait, so a shim needs nothing to clear a fired timer but that call. It should never be
    /// reported before `now_ms` reaches `at_ms`; a shim whose timer runs on another clock may
    /// report it a little early, and core then sets it again rather than run a timer early:
    /// a busy wait until its clock catches up, not a hang. A shim that returned `Ok(true)`
    /// once must keep supporting it for its life.
    ///
    /// Why it is worth a method: with it, core waits with no timeout and reads no clock per
    /// iteration (the upstream C library does the same with its kernel timer descriptors); it
    /// arms the deadline only when the next timer work moves (once per sweep period in a
    /// steady state), and reads the clock only when something needs the time. Without it
    /// core computes a `wait` timeout and reads the clock after every wait, which is always
    /// correct: every shim works either way, so the default needs no code.
    fn set_deadline(&mut self, at_ms: Option<u64>) -> Result<bool, Self::Error> {
        let _ = at_ms;
        Ok(false)
    }

    // ---- clock --------------------------------------------------------------------------

    /// Monotonic time in milliseconds from an arbitrary origin. Never goes backwards.
    fn now_ms(&mut self) -> u64;

    // ---- sockets ------------------------------------------------------------------------

    /// Opens a non-blocking listener and returns it (owned); core registers it.
    ///
    /// A unix-domain path already in use: a shim with a file system unlinks and reuses it only
    /// when it is a socket file nobody answers on (left by a listener that closed or died); a
    /// live listener's path fails with [`ErrorKind::AddrInUse`] (the live one keeps serving) and
    /// a file of another type is never removed. The file gets
    /// [`ListenOptions::unix_mode`]. A name with a leading NUL (Linux's abstract namespace) has
    /// no file: nothing is unlinked or chmod-ed.
    fn listen(
        &mut self,
        target: ListenTarget<'_>,
        options: ListenOptions,
    ) -> Result<Self::Fd, Self::Error>;
    /// Accepts one pending connection: `Ok(Some((fd, addr)))` (the caller owns `fd`), or
    /// `Ok(None)` when none is pending. The new descriptor is non-blocking, close-on-exec and
    /// (TCP) has `TCP_NODELAY`.
    ///
    /// Errors that concern only the pending connection (it was aborted or hit a network error
    /// before it was accepted; Linux lists ENETDOWN, EPROTO, ENOPROTOOPT, EHOSTDOWN, ENONET,
    /// EHOSTUNREACH, EOPNOTSUPP and ENETUNREACH besides ECONNABORTED) must be reported as
    /// [`ErrorKind::ConnectionAborted`]: core then accepts the next one. Running out of
    /// descriptors is [`ErrorKind::TooManyOpenFiles`], on which core backs the listener off. A
    /// shim that can shed pending connections then (close them at once, so each peer gets EOF
    /// or a reset instead of waiting) should, and report `Ok(None)` once none is left or
    /// `ConnectionAborted` while more may wait, so that core goes on and the backlog is
    /// refused promptly. On any other error core pauses the listener and retries after a
    /// back-off.
    fn accept(&mut self, listener: &Self::Fd) -> Result<Option<(Self::Fd, PeerAddr)>, Self::Error>;
    /// Starts a non-blocking connect and returns the new (owned) descriptor. The outcome is read
    /// with [`connect_result`](Self::connect_result) once the descriptor reports writable (or
    /// an error). An error here means it failed at once (name resolution, immediate refusal);
    /// core reports it through `on_connect_error`.
    fn connect(&mut self, target: ConnectTarget<'_>) -> Result<Self::Fd, Self::Error>;
    /// The socket's pending error (`SO_ERROR`), cleared by reading it: the outcome of a connect
    /// started by [`connect`](Self::connect), or why an established socket reported an error.
    /// `Ok(())` when there is none.
    fn connect_result(&mut self, fd: &Self::Fd) -> Result<(), Self::Error>;
    /// Prepares a descriptor opened elsewhere for use by core (non-blocking, `TCP_NODELAY`).
    fn adopt(&mut self, fd: &Self::Fd) -> Result<(), Self::Error>;
    /// Receives into `buf`. `Ok(0)` means the peer sent FIN.
    fn recv(&mut self, fd: &Self::Fd, buf: &mut [u8]) -> Result<usize, Self::Error>;
    /// Sends `data`; returns how many bytes the OS took. `more` hints that more data follows at
    /// once (`MSG_MORE`); a later [`flush`](Self::flush) withdraws the hint.
    ///
    /// Would-block is an error of kind [`ErrorKind::WouldBlock`]; any other error is a hard
    /// failure of the connection, on which core closes the socket.
    fn send(&mut self, fd: &Self::Fd, data: &[u8], more: bool) -> Result<usize, Self::Error>;
    /// Sends `header` then `payload` in one gathered write (`writev`); returns the bytes taken.
    ///
    /// The default sends `header`, then `payload` only if all of `header` was taken: correct,
    /// but two calls where a gathered write makes one.
    fn send2(
        &mut self,
        fd: &Self::Fd,
        header: &[u8],
        payload: &[u8],
    ) -> Result<usize, Self::Error> {
        let first = if header.is_empty() {
            0
        } else {
            self.send(fd, header, false)?
        };
        if first < header.len() || payload.is_empty() {
            return Ok(first);
        }
        match self.send(fd, payload, false) {
            Ok(n) => Ok(first + n),
            // The header is out: report it, and let the next write see the error again.
            Err(_) if first > 0 => Ok(first),
            Err(e) => Err(e),
        }
    }
    /// Withdraws a "more is coming" hold (clears `TCP_CORK` if it was set). The default does
    /// nothing, which is right for a shim that ignores the `more` hint.
    fn flush(&mut self, fd: &Self::Fd) -> Result<(), Self::Error> {
        let _ = fd;
        Ok(())
    }
    /// Sends FIN (`shutdown(SHUT_WR)`).
    fn shutdown_write(&mut self, fd: &Self::Fd) -> Result<(), Self::Error>;
    /// `shutdown(SHUT_RD)`: the next readiness report sees EOF.
    fn shutdown_read(&mut self, fd: &Self::Fd) -> Result<(), Self::Error>;
    /// Closes the descriptor, which also stops watching it: core does not call
    /// [`deregister`](Self::deregister) first (closing removes a descriptor from epoll and
    /// kqueue, and cancels an AFD poll). Events already collected for it are dropped by core
    /// through the token's generation. Never retried (on Linux the descriptor is gone even
    /// after EINTR).
    fn close(&mut self, fd: Self::Fd);
    /// The local address (for listeners: the bound port, also after an ephemeral bind).
    fn local_addr(&mut self, fd: &Self::Fd) -> Result<PeerAddr, Self::Error>;
    /// The remote address of a connected socket.
    fn remote_addr(&mut self, fd: &Self::Fd) -> Result<PeerAddr, Self::Error>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interest_bits_match_the_c_constants_on_every_platform() {
        // LIBUS_SOCKET_READABLE = 1 and LIBUS_SOCKET_WRITABLE = 2 in our header, everywhere.
        assert_eq!(Interest::READABLE.bits(), 1);
        assert_eq!(Interest::WRITABLE.bits(), 2);
        assert_eq!(Interest::from_bits(3), Interest::BOTH);
        assert_eq!(
            Interest::from_bits(4 | 1),
            Interest::READABLE,
            "epoll's EPOLLOUT (4) is not ours"
        );
        assert!(Interest::BOTH.without(Interest::READABLE).is_writable());
        assert!(!Interest::BOTH.without(Interest::READABLE).is_readable());
    }

    #[test]
    fn os_error_keeps_kind_and_raw_code() {
        let e = OsError::new(ErrorKind::ConnectionRefused, 111);
        assert_eq!(OsError::from_shim(e), e);
        assert_eq!(e.raw_os_error(), 111);
        let mut s = [0u8; 64];
        let mut w = Buf(&mut s, 0);
        core::fmt::write(&mut w, format_args!("{e}")).ok();
        let len = w.1;
        assert_eq!(&s[..len], b"ConnectionRefused (os error 111)");
    }

    struct Buf<'a>(&'a mut [u8], usize);
    impl core::fmt::Write for Buf<'_> {
        fn write_str(&mut self, s: &str) -> core::fmt::Result {
            let end = self.1 + s.len();
            self.0
                .get_mut(self.1..end)
                .ok_or(core::fmt::Error)?
                .copy_from_slice(s.as_bytes());
            self.1 = end;
            Ok(())
        }
    }
}
