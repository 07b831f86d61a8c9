//! [`SmolShim`]: `OsShim` over a smoltcp interface, its socket set and the embedder's device.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use smoltcp::iface::{Interface, PollResult, SocketHandle, SocketSet, SocketStorage};
use smoltcp::phy::Device;
use smoltcp::socket::tcp::{self, RecvError, SendError, State};
use smoltcp::socket::AnySocket;
use smoltcp::storage::RingBuffer;
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::IpListenEndpoint;
use usockets_core::{
    ConnectTarget, ErrorKind, Event, Interest, ListenOptions, ListenTarget, OsShim, PeerAddr, Token,
};

use crate::addr::{parse_ip, to_smol, to_std};
use crate::platform::{Platform, SmolWaker, WakeFlag};
use crate::slot::{acceptable, Role, Slot, NO_DEADLINE};
use crate::SmolError;

/// How many times one `wait` polls the interface before it reports: each poll moves packets
/// one hop (through a loopback device, out and back in), and a few hops settle a burst.
const POLLS_PER_WAIT: usize = 16;

/// The ephemeral port range (IANA's), for listening on port 0 and for connects.
const EPHEMERAL: core::ops::RangeInclusive<u16> = 49152..=65535;

/// An owned descriptor of a [`SmolShim`]: a connection (one smoltcp socket) or a listener (a
/// pool of them). Not `Clone`; only the shim makes one.
///
/// Dropping one without handing it to `close` leaves its smoltcp socket held until the shim
/// is dropped (there is no allocator to reach the shim from here); core always closes what it
/// owns.
#[derive(Debug)]
pub struct SmolFd(FdKind);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FdKind {
    Conn(u16),
    Listen(u8),
}

/// A listener: an endpoint and the number of smoltcp sockets kept listening on it.
#[derive(Clone, Copy, Debug)]
struct Listener {
    used: bool,
    endpoint: IpListenEndpoint,
    pool: u8,
    /// At most this many half-open connections (the `backlog` listen option).
    backlog: u32,
    token: Option<Token>,
    interest: Interest,
}

impl Listener {
    const UNUSED: Listener = Listener {
        used: false,
        endpoint: IpListenEndpoint {
            addr: None,
            port: 0,
        },
        pool: 0,
        backlog: 0,
        token: None,
        interest: Interest::NONE,
    };
}

/// Construction-time choices of a [`SmolShim`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SmolConfig {
    /// smoltcp sockets kept listening per listener. At least 1. Half-open connections (SYN
    /// received, handshake not done) take sockets besides, at most the listen option
    /// `backlog` of them, and give up after [`HANDSHAKE_TIMEOUT_MS`].
    pub listen_pool: u8,
    /// How long a connect may take before it fails with `TimedOut` (ms).
    pub connect_timeout_ms: u64,
    /// How long a connection closed by core may go on closing in smoltcp (unacknowledged
    /// data or FIN, a peer that never sends its FIN) before it is reset and its socket
    /// forgotten (ms). TIME-WAIT ends sooner (smoltcp keeps it 10 s).
    pub linger_ms: u64,
}

/// How long a pool socket waits for the last ACK of a handshake before it gives up (smoltcp's
/// own timeout, set on every pool socket), so that SYNs from peers that vanish (or a SYN
/// flood) hold no socket for good.
pub const HANDSHAKE_TIMEOUT_MS: u64 = 10_000;

impl SmolConfig {
    /// Two listening sockets per listener; connects time out after 75 s (as BSD's); closed
    /// connections linger at most 60 s (Linux's `tcp_fin_timeout`).
    pub const fn new() -> SmolConfig {
        SmolConfig {
            listen_pool: 2,
            connect_timeout_ms: 75_000,
            linger_ms: 60_000,
        }
    }
    /// Sets [`connect_timeout_ms`](Self::connect_timeout_ms).
    pub const fn with_connect_timeout_ms(mut self, ms: u64) -> SmolConfig {
        self.connect_timeout_ms = ms;
        self
    }
    /// Sets [`linger_ms`](Self::linger_ms).
    pub const fn with_linger_ms(mut self, ms: u64) -> SmolConfig {
        self.linger_ms = ms;
        self
    }
    /// Sets [`listen_pool`](Self::listen_pool) (at least 1).
    pub const fn with_listen_pool(mut self, n: u8) -> SmolConfig {
        self.listen_pool = if n == 0 { 1 } else { n };
        self
    }
}

impl Default for SmolConfig {
    fn default() -> Self {
        Self::new()
    }
}

/// `OsShim` over smoltcp: `N` TCP sockets (connections, listening pools and sockets still
/// closing share them) and up to `L` listeners, on the embedder's `Interface` and device `D`,
/// with the embedder's clock and sleep (`P`). No allocation: every socket's buffers come from
/// one byte slice given to [`new`](Self::new).
pub struct SmolShim<'a, D: Device, P: Platform, const N: usize, const L: usize = 4> {
    iface: Interface,
    device: D,
    set: SocketSet<'a>,
    platform: P,
    wake: &'static WakeFlag,
    handles: [SocketHandle; N],
    slots: [Slot; N],
    listeners: [Listener; L],
    config: SmolConfig,
    /// Entries of the socket storage beyond the `N` TCP sockets, for [`add_socket`](Self::add_socket).
    extra_sockets: usize,
    next_port: u16,
    /// Where the next `wait` starts reporting, so that a short event buffer serves every
    /// socket in turn.
    cursor: usize,
}

impl<D: Device, P: Platform, const N: usize, const L: usize> core::fmt::Debug
    for SmolShim<'_, D, P, N, L>
{
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SmolShim")
            .field("sockets", &N)
            .field("in_use", &self.sockets_in_use())
            .finish_non_exhaustive()
    }
}

type Result<T> = core::result::Result<T, SmolError>;

fn err<T>(kind: ErrorKind) -> Result<T> {
    Err(SmolError::new(kind))
}

impl<'a, D: Device, P: Platform, const N: usize, const L: usize> SmolShim<'a, D, P, N, L> {
    /// A shim over `iface` (configured by the embedder: addresses, routes) and its `device`.
    ///
    /// `storage` holds smoltcp's socket set (at least `N` entries; more for
    /// [`add_socket`](Self::add_socket)) and `buffers` every
    /// socket's receive and send buffers, split evenly: each of the `N` sockets gets
    /// `buffers.len() / (2 * N)` bytes each way. `wake` is the flag behind the loop's waker
    /// (a `static`). Fails with `InvalidInput` when `storage` is too short or the buffers are
    /// under 64 bytes per direction.
    pub fn new(
        device: D,
        iface: Interface,
        platform: P,
        wake: &'static WakeFlag,
        storage: &'a mut [SocketStorage<'a>],
        buffers: &'a mut [u8],
        config: SmolConfig,
    ) -> Result<Self> {
        let each = buffers.len() / (2 * N.max(1));
        if storage.len() < N || each < 64 || N > usize::from(u16::MAX) || L > 255 {
            return err(ErrorKind::InvalidInput);
        }
        let extra_sockets = storage.len() - N;
        let mut set = SocketSet::new(storage);
        let mut rest = buffers;
        let handles = core::array::from_fn(|_| {
            let (rx, tail) = core::mem::take(&mut rest).split_at_mut(each);
            let (tx, tail) = tail.split_at_mut(each);
            rest = tail;
            set.add(tcp::Socket::new(RingBuffer::new(rx), RingBuffer::new(tx)))
        });
        Ok(SmolShim {
            iface,
            device,
            set,
            platform,
            wake,
            handles,
            slots: [Slot::FREE; N],
            listeners: [Listener::UNUSED; L],
            config,
            extra_sockets,
            next_port: *EPHEMERAL.start(),
            cursor: 0,
        })
    }

    /// The interface, to change addresses or routes before the shim goes to a loop (core
    /// lends a running loop's shim to no one; [`Platform::after_poll`] reaches the interface
    /// then).
    pub fn interface_mut(&mut self) -> &mut Interface {
        &mut self.iface
    }
    /// Adds a socket of the embedder's own (a DHCP or DNS socket) to the set, beside the `N`
    /// TCP sockets of the shim, which never touches it: drive it from
    /// [`Platform::after_poll`]. `OutOfMemory` when the socket storage given to
    /// [`new`](Self::new) has no entry left.
    pub fn add_socket<T: AnySocket<'a>>(&mut self, socket: T) -> Result<SocketHandle> {
        if self.extra_sockets == 0 {
            return err(ErrorKind::OutOfMemory);
        }
        self.extra_sockets -= 1;
        Ok(self.set.add(socket))
    }
    /// The embedder's platform (reachable through [`Cx::shim`](usockets_core::Cx::shim) while
    /// a loop runs).
    pub fn platform(&self) -> &P {
        &self.platform
    }
    /// The device.
    pub fn device(&self) -> &D {
        &self.device
    }
    /// The device, mutably (a driver's statistics, a link-state check), before the shim goes
    /// to a loop.
    pub fn device_mut(&mut self) -> &mut D {
        &mut self.device
    }
    /// smoltcp sockets not free: connections, listening pools and sockets still closing
    /// (TIME-WAIT). For tests and diagnostics.
    pub fn sockets_in_use(&self) -> usize {
        self.slots.iter().filter(|s| s.role != Role::Free).count()
    }
    /// smoltcp sockets held by closed connections still closing in smoltcp.
    pub fn sockets_lingering(&self) -> usize {
        self.slots.iter().filter(|s| s.role == Role::Linger).count()
    }

    fn now(&mut self) -> Instant {
        // smoltcp counts microseconds in an i64: clamp where that would overflow.
        let ms = self.platform.now_ms().min(i64::MAX as u64 / 1000);
        Instant::from_millis(ms as i64)
    }

    fn socket(&self, i: usize) -> &tcp::Socket<'a> {
        self.set.get::<tcp::Socket>(self.handles[i])
    }

    fn socket_mut(&mut self, i: usize) -> &mut tcp::Socket<'a> {
        self.set.get_mut::<tcp::Socket>(self.handles[i])
    }

    /// The connection slot `fd` names (`InvalidInput` for a listener, or a slot no longer a
    /// connection, which an owned descriptor of this shim never is).
    fn conn(&self, fd: &SmolFd) -> Result<usize> {
        match fd.0 {
            FdKind::Conn(i)
                if self.slots.get(usize::from(i)).map(|s| s.role) == Some(Role::Conn) =>
            {
                Ok(usize::from(i))
            }
            _ => err(ErrorKind::InvalidInput),
        }
    }

    /// Listener `l` (`InvalidInput` for one closed, which an owned descriptor never is).
    fn listener_mut(&mut self, l: u8) -> Result<&mut Listener> {
        self.listeners
            .get_mut(usize::from(l))
            .filter(|l| l.used)
            .ok_or(SmolError::new(ErrorKind::InvalidInput))
    }

    /// Polls the interface until it settles (or [`POLLS_PER_WAIT`] times), topping the
    /// listening pools up between polls: each poll may take a batch of SYNs. Returns whether
    /// it settled (the last poll changed nothing).
    fn poll(&mut self) -> bool {
        for _ in 0..POLLS_PER_WAIT {
            let now = self.now();
            let result = self.iface.poll(now, &mut self.device, &mut self.set);
            self.platform.after_poll(&mut self.iface, &mut self.set);
            if result == PollResult::None {
                return true;
            }
            self.refill_all();
        }
        false
    }

    /// A free socket, or `None` when all `N` are in use. When none is free, a closed
    /// connection waiting out TIME-WAIT is taken back (its connection is over; only the
    /// protection against stray old segments goes, as Linux's `tcp_tw_reuse` accepts).
    fn take_free(&mut self) -> Option<usize> {
        if let Some(i) = self.slots.iter().position(|s| s.role == Role::Free) {
            return Some(i);
        }
        let i = (0..N).find(|&i| {
            self.slots[i].role == Role::Linger && self.socket(i).state() == State::TimeWait
        })?;
        // `listen` and `connect` start over from TIME-WAIT (it is not "open"): nothing to
        // send, nothing to wait for.
        self.slots[i].reset(Role::Free);
        Some(i)
    }

    /// Whether a local port is taken (by a listener or by any socket bound to it).
    fn port_in_use(&self, port: u16) -> bool {
        self.listeners
            .iter()
            .any(|l| l.used && l.endpoint.port == port)
            || (0..N).any(|i| {
                self.slots[i].role != Role::Free
                    && self.socket(i).local_endpoint().map(|e| e.port) == Some(port)
            })
    }

    /// The next ephemeral port nobody uses (`AddrInUse` when all are).
    fn ephemeral_port(&mut self) -> Result<u16> {
        let span = u32::from(EPHEMERAL.end() - EPHEMERAL.start()) + 1;
        for _ in 0..span {
            let port = self.next_port;
            self.next_port = if port == *EPHEMERAL.end() {
                *EPHEMERAL.start()
            } else {
                port + 1
            };
            if !self.port_in_use(port) {
                return Ok(port);
            }
        }
        err(ErrorKind::AddrInUse)
    }

    /// Keeps `listen_pool` sockets of listener `l` listening: a pool socket that took a SYN
    /// is replaced at once, not only when its connection is accepted, so that a burst of up
    /// to `listen_pool` SYNs within one poll finds listeners (smoltcp answers a SYN nobody
    /// listens for with a reset). Half-open sockets (SYN received) are capped at the
    /// listener's `backlog`, so that SYNs that never complete cannot take every socket;
    /// sockets listening beyond the pool (a half-open one that smoltcp put back to listening
    /// after a reset) are closed. Fewer when no socket is free; the next `wait` tries again.
    fn refill(&mut self, l: usize) {
        let listener = self.listeners[l];
        if !listener.used {
            return;
        }
        let pool = usize::from(listener.pool);
        let (mut listening, mut half_open) = (0, 0);
        for i in 0..N {
            if self.slots[i].role != Role::Pool(l as u8) {
                continue;
            }
            match self.socket(i).state() {
                State::Listen if listening == pool => {
                    self.socket_mut(i).close();
                    self.slots[i].reset(Role::Free);
                }
                State::Listen => listening += 1,
                State::SynReceived => half_open += 1,
                _ => {}
            }
        }
        while listening < pool && half_open < listener.backlog as usize {
            let Some(i) = self.take_free() else { return };
            let socket = self.socket_mut(i);
            if socket.listen(listener.endpoint).is_err() {
                return;
            }
            configure_pool(socket);
            self.slots[i].reset(Role::Pool(l as u8));
            listening += 1;
        }
    }

    /// After a poll: updates every socket's history, enforces the deadlines (connects that
    /// take too long, closed connections that go on closing), frees sockets done closing and
    /// pool sockets whose connection died before it was accepted, refills pools.
    fn settle(&mut self) {
        let now = self.platform.now_ms();
        for i in 0..N {
            let handle = self.handles[i];
            let socket = self.set.get_mut::<tcp::Socket>(handle);
            let slot = &mut self.slots[i];
            match slot.role {
                Role::Conn => {
                    slot.observe(socket);
                    if !slot.established && !slot.ended && now >= slot.deadline {
                        socket.abort();
                        slot.ended = true;
                        slot.error = Some(ErrorKind::TimedOut);
                    }
                }
                Role::Linger => {
                    if socket.state() == State::Closed && socket.remote_endpoint().is_none() {
                        // Done: closed, and any RST it owed sent (smoltcp forgets the peer
                        // then).
                        slot.reset(Role::Free);
                    } else if slot.aborted && now >= slot.deadline {
                        // Its RST could not go (a device that takes no frame): forget it.
                        forget(socket);
                        slot.reset(Role::Free);
                    } else if !slot.aborted && (socket.can_recv() || now >= slot.deadline) {
                        // Data after close gets a reset, as from a BSD socket; so does a
                        // close that takes longer than `linger_ms`.
                        socket.abort();
                        slot.aborted = true;
                        slot.deadline = now.saturating_add(ABORT_GRACE_MS);
                    }
                }
                Role::Pool(_) => {
                    // Reset or timed out before it was accepted; `refill` puts a socket back.
                    if socket.state() == State::Closed && socket.remote_endpoint().is_none() {
                        slot.reset(Role::Free);
                    }
                }
                Role::Free => {}
            }
        }
        self.refill_all();
    }

    /// The earliest deadline of the shim's own (a connect's time-out, a lingering socket's
    /// end), so that a sleep ends in time to enforce it.
    fn next_deadline(&self) -> Option<u64> {
        self.slots
            .iter()
            .filter(|s| {
                s.role == Role::Linger || (s.role == Role::Conn && !s.established && !s.ended)
            })
            .map(|s| s.deadline)
            .filter(|&d| d != NO_DEADLINE)
            .min()
    }

    /// Hands socket `i` to the shim to finish closing: reset (`aborted`, it waits only for its
    /// RST to go) or closing in order, for at most `linger_ms`.
    fn linger(&mut self, i: usize, aborted: bool, now: u64) {
        let slot = &mut self.slots[i];
        slot.reset(Role::Linger);
        slot.aborted = aborted;
        let wait = if aborted {
            ABORT_GRACE_MS
        } else {
            self.config.linger_ms
        };
        slot.deadline = now.saturating_add(wait);
    }

    fn refill_all(&mut self) {
        for l in 0..L {
            self.refill(l);
        }
    }

    /// Fills `events` with the readiness of everything registered, starting at the cursor.
    fn collect(&mut self, events: &mut [Event]) -> usize {
        let mut n = 0;
        for l in 0..L {
            if n == events.len() {
                return n;
            }
            let listener = self.listeners[l];
            let (true, Some(token)) = (listener.used, listener.token) else {
                continue;
            };
            if listener.interest.is_readable()
                && (0..N).any(|i| {
                    self.slots[i].role == Role::Pool(l as u8) && acceptable(self.socket(i).state())
                })
            {
                events[n] = Event::new(token).with_readable(true);
                n += 1;
            }
        }
        let start = self.cursor;
        for k in 0..N {
            if n == events.len() {
                break;
            }
            let i = (start + k) % N;
            if self.slots[i].role != Role::Conn {
                continue;
            }
            if let Some(ev) = self.slots[i].event(self.socket(i)) {
                events[n] = ev;
                n += 1;
                self.cursor = (i + 1) % N;
            }
        }
        n
    }

    fn listen_on(&mut self, endpoint: IpListenEndpoint, backlog: u32) -> Result<SmolFd> {
        let l = self
            .listeners
            .iter()
            .position(|l| !l.used)
            .ok_or(SmolError::new(ErrorKind::TooManyOpenFiles))?;
        let pool = self.config.listen_pool.max(1);
        // The first listening socket must exist for the listener to be any use.
        let Some(first) = self.take_free() else {
            return err(ErrorKind::TooManyOpenFiles);
        };
        self.socket_mut(first)
            .listen(endpoint)
            .map_err(|_| SmolError::new(ErrorKind::InvalidInput))?;
        configure_pool(self.socket_mut(first));
        self.slots[first].reset(Role::Pool(l as u8));
        self.listeners[l] = Listener {
            used: true,
            endpoint,
            pool,
            backlog: backlog.max(1),
            token: None,
            interest: Interest::NONE,
        };
        self.refill(l);
        Ok(SmolFd(FdKind::Listen(l as u8)))
    }

    /// Whether `ip` is one of the interface's addresses.
    fn is_local(&self, ip: IpAddr) -> bool {
        let ip = to_smol(ip);
        self.iface.ip_addrs().iter().any(|c| c.address() == ip)
    }
}

/// The earlier of two optional times.
fn earliest(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// [`configure`], and the handshake's time-out of a pool socket.
fn configure_pool(socket: &mut tcp::Socket<'_>) {
    configure(socket);
    socket.set_timeout(Some(Duration::from_millis(HANDSHAKE_TIMEOUT_MS)));
}

/// How long an aborted socket may wait for its RST to leave before it is forgotten anyway.
const ABORT_GRACE_MS: u64 = 1_000;

/// Makes a closed socket forget its peer (an RST it could not send): `listen` starts it over
/// from CLOSED, `close` takes it back out of LISTEN; port 1 is never seen by anyone, since
/// nothing is polled in between.
fn forget(socket: &mut tcp::Socket<'_>) {
    if socket.listen(1).is_ok() {
        socket.close();
    }
}

/// What every socket gets (TCP_NODELAY's counterpart, and no delayed ACK: a request-response
/// loop must not wait on either).
fn configure(socket: &mut tcp::Socket<'_>) {
    socket.set_nagle_enabled(false);
    socket.set_ack_delay(None);
}

impl<'a, D: Device, P: Platform, const N: usize, const L: usize> OsShim
    for SmolShim<'a, D, P, N, L>
{
    type Fd = SmolFd;
    type Waker = SmolWaker;
    type Error = SmolError;

    fn register(&mut self, fd: &SmolFd, token: Token, interest: Interest) -> Result<()> {
        self.modify(fd, token, interest)
    }

    fn modify(&mut self, fd: &SmolFd, token: Token, interest: Interest) -> Result<()> {
        match fd.0 {
            FdKind::Listen(l) => {
                let listener = self.listener_mut(l)?;
                listener.token = Some(token);
                listener.interest = interest;
            }
            FdKind::Conn(_) => {
                let i = self.conn(fd)?;
                self.slots[i].token = Some(token);
                self.slots[i].interest = interest;
            }
        }
        Ok(())
    }

    fn deregister(&mut self, fd: &SmolFd) -> Result<()> {
        match fd.0 {
            FdKind::Listen(l) => {
                if let Some(listener) = self.listeners.get_mut(usize::from(l)) {
                    listener.token = None;
                }
            }
            FdKind::Conn(_) => {
                let i = self.conn(fd)?;
                self.slots[i].token = None;
            }
        }
        Ok(())
    }

    /// Polls the interface until it settles, reports what is ready; while nothing is (and the
    /// timeout allows), sleeps through [`Platform::idle`] until smoltcp's next timer, the
    /// timeout or an interrupt, and polls again.
    fn wait(&mut self, events: &mut [Event], timeout_ms: Option<u64>) -> Result<usize> {
        if events.is_empty() {
            return err(ErrorKind::InvalidInput);
        }
        let deadline = timeout_ms.map(|t| self.platform.now_ms().saturating_add(t));
        loop {
            let settled = self.poll();
            self.settle();
            let mut n = 0;
            if self.wake.take() {
                events[0] = Event::new(Token::WAKER).with_readable(true);
                n = 1;
            }
            n += self.collect(&mut events[n..]);
            let now_ms = self.platform.now_ms();
            if n > 0 || deadline.is_some_and(|d| now_ms >= d) {
                return Ok(n);
            }
            if !settled {
                // The last poll still moved packets (frames may wait in the device that
                // smoltcp's timers do not know of): poll again before any sleep.
                continue;
            }
            // Sleep until smoltcp needs polling (a retransmission, TIME-WAIT's end), a
            // deadline of the shim's own, or the caller's, whichever is first.
            let now = self.now();
            let stack = self
                .iface
                .poll_delay(now, &self.set)
                .map(|d| now_ms.saturating_add(d.total_millis()));
            let until = earliest(earliest(stack, deadline), self.next_deadline());
            if self.wake.is_raised() {
                // Raised since it was taken: report it rather than sleep past it.
                continue;
            }
            match until {
                // smoltcp wants a poll now but the last one changed nothing (a device that
                // takes no frame, its queue full or its link down): sleep a millisecond
                // rather than spin.
                Some(u) if u <= now_ms => self.platform.idle(Some(now_ms + 1)),
                _ => self.platform.idle(until),
            }
        }
    }

    fn waker(&mut self) -> SmolWaker {
        SmolWaker(self.wake)
    }

    fn now_ms(&mut self) -> u64 {
        self.platform.now_ms()
    }

    /// A listener is a pool of [`SmolConfig::listen_pool`] listening sockets on the endpoint,
    /// with at most `options.backlog` half-open connections besides. Port 0 picks an unused ephemeral port. Any host is
    /// dual-stack. A host must be one of the interface's addresses (else `AddrNotAvailable`),
    /// and a name is `Unsupported`; so are unix-domain paths.
    fn listen(&mut self, target: ListenTarget<'_>, options: ListenOptions) -> Result<SmolFd> {
        let (host, port) = match target {
            ListenTarget::Host { host, port } => (host, port),
            ListenTarget::Unix(_) => return err(ErrorKind::Unsupported),
        };
        let addr = match host {
            None => None,
            Some(h) => {
                let ip = parse_ip(h).map_err(SmolError::new)?;
                if ip.is_unspecified() {
                    None
                } else if !self.is_local(ip) {
                    return err(ErrorKind::AddrNotAvailable);
                } else {
                    Some(to_smol(ip))
                }
            }
        };
        let port = if port == 0 {
            self.ephemeral_port()?
        } else if self
            .listeners
            .iter()
            .any(|l| l.used && l.endpoint.port == port)
        {
            return err(ErrorKind::AddrInUse);
        } else {
            port
        };
        self.listen_on(IpListenEndpoint { addr, port }, options.backlog)
    }

    /// Hands over a pool socket whose connection is established, and refills the pool.
    fn accept(&mut self, listener: &SmolFd) -> Result<Option<(SmolFd, PeerAddr)>> {
        let FdKind::Listen(l) = listener.0 else {
            return err(ErrorKind::InvalidInput);
        };
        let Some(i) = (0..N)
            .find(|&i| self.slots[i].role == Role::Pool(l) && acceptable(self.socket(i).state()))
        else {
            return Ok(None);
        };
        self.slots[i].reset(Role::Conn);
        // The handshake's time-out is the pool's; a connection has none.
        self.socket_mut(i).set_timeout(None);
        self.slots[i].observe(self.set.get::<tcp::Socket>(self.handles[i]));
        let remote = self.slots[i].remote;
        self.refill(usize::from(l));
        let Some(remote) = remote else {
            // Established without a peer cannot happen; treat it as a connection gone.
            self.close(SmolFd(FdKind::Conn(i as u16)));
            return err(ErrorKind::ConnectionAborted);
        };
        Ok(Some((SmolFd(FdKind::Conn(i as u16)), PeerAddr::Ip(remote))))
    }

    /// Literal addresses only (a name is `Unsupported`); `source` binds the local address.
    /// The outcome arrives as writable (established) or an error (refused).
    fn connect(&mut self, target: ConnectTarget<'_>) -> Result<SmolFd> {
        let (host, port, source) = match target {
            ConnectTarget::Host { host, port, source } => (host, port, source),
            ConnectTarget::Unix(_) => return err(ErrorKind::Unsupported),
        };
        let remote = parse_ip(host).map_err(SmolError::new)?;
        let local = match source {
            None => None,
            Some(s) => {
                let ip = parse_ip(s).map_err(SmolError::new)?;
                if !ip.is_unspecified() && !self.is_local(ip) {
                    return err(ErrorKind::AddrNotAvailable);
                }
                (!ip.is_unspecified()).then(|| to_smol(ip))
            }
        };
        let local_port = self.ephemeral_port()?;
        let Some(i) = self.take_free() else {
            return err(ErrorKind::TooManyOpenFiles);
        };
        let handle = self.handles[i];
        let socket = self.set.get_mut::<tcp::Socket>(handle);
        configure(socket);
        let local = IpListenEndpoint {
            addr: local,
            port: local_port,
        };
        socket
            .connect(self.iface.context(), (to_smol(remote), port), local)
            .map_err(|e| match e {
                tcp::ConnectError::Unaddressable => SmolError::new(ErrorKind::Unreachable),
                tcp::ConnectError::InvalidState => SmolError::new(ErrorKind::InvalidInput),
            })?;
        self.slots[i].reset(Role::Conn);
        self.slots[i].deadline = self
            .platform
            .now_ms()
            .saturating_add(self.config.connect_timeout_ms);
        Ok(SmolFd(FdKind::Conn(i as u16)))
    }

    fn connect_result(&mut self, fd: &SmolFd) -> Result<()> {
        let i = self.conn(fd)?;
        match self.slots[i].error.take() {
            Some(kind) => err(kind),
            None if self.slots[i].established => Ok(()),
            None => err(ErrorKind::WouldBlock),
        }
    }

    /// Every descriptor of this shim is already a non-blocking smoltcp socket: nothing to do.
    /// (A descriptor from elsewhere cannot be named: [`SmolFd`] is made only here.)
    fn adopt(&mut self, fd: &SmolFd) -> Result<()> {
        self.conn(fd).map(|_| ())
    }

    fn recv(&mut self, fd: &SmolFd, buf: &mut [u8]) -> Result<usize> {
        let i = self.conn(fd)?;
        match self.socket_mut(i).recv_slice(buf) {
            Ok(0) if !buf.is_empty() => err(ErrorKind::WouldBlock),
            Ok(n) => Ok(n),
            Err(RecvError::Finished) => {
                self.slots[i].peer_fin = true;
                Ok(0)
            }
            Err(RecvError::InvalidState) => match self.slots[i].error {
                Some(kind) => err(kind),
                None if !self.slots[i].established => err(ErrorKind::WouldBlock),
                None => err(ErrorKind::ConnectionReset),
            },
        }
    }

    /// Copies into the socket's send buffer; the bytes leave at the next poll. The `more`
    /// hint is ignored (smoltcp sends what the window allows).
    fn send(&mut self, fd: &SmolFd, data: &[u8], more: bool) -> Result<usize> {
        let _ = more;
        let i = self.conn(fd)?;
        match self.socket_mut(i).send_slice(data) {
            Ok(0) if !data.is_empty() => err(ErrorKind::WouldBlock),
            Ok(n) => Ok(n),
            Err(SendError::InvalidState) => match self.slots[i].error {
                Some(kind) => err(kind),
                None if !self.slots[i].established => err(ErrorKind::WouldBlock),
                None => err(ErrorKind::ConnectionReset),
            },
        }
    }

    /// Queues a FIN after the bytes already sent.
    fn shutdown_write(&mut self, fd: &SmolFd) -> Result<()> {
        let i = self.conn(fd)?;
        self.slots[i].our_fin = true;
        self.socket_mut(i).close();
        Ok(())
    }

    /// smoltcp cannot stop the receive half alone: `Unsupported`.
    fn shutdown_read(&mut self, fd: &SmolFd) -> Result<()> {
        self.conn(fd)?;
        err(ErrorKind::Unsupported)
    }

    /// A connection: an orderly close (FIN after the queued bytes) when everything received
    /// was read, a reset otherwise (or while connecting), as a BSD socket does. The smoltcp
    /// socket lingers until it is done (TIME-WAIT included), core's slot does not. A listener:
    /// its pool closes, and connections not yet accepted are reset.
    fn close(&mut self, fd: SmolFd) {
        match fd.0 {
            FdKind::Conn(_) => {
                let Ok(i) = self.conn(&fd) else {
                    return;
                };
                let now = self.platform.now_ms();
                let socket = self.socket_mut(i);
                let unread = socket.recv_queue() > 0;
                let aborted = match socket.state() {
                    State::SynSent | State::SynReceived => true,
                    _ => unread,
                };
                if aborted {
                    socket.abort();
                } else {
                    socket.close();
                }
                self.linger(i, aborted, now);
            }
            FdKind::Listen(l) => {
                let Some(listener) = self.listeners.get_mut(usize::from(l)) else {
                    return;
                };
                *listener = Listener::UNUSED;
                let now = self.platform.now_ms();
                for i in 0..N {
                    if self.slots[i].role == Role::Pool(l) {
                        let socket = self.socket_mut(i);
                        let aborted = socket.state() != State::Listen;
                        if aborted {
                            socket.abort();
                        } else {
                            socket.close();
                        }
                        self.linger(i, aborted, now);
                    }
                }
            }
        }
    }

    fn local_addr(&mut self, fd: &SmolFd) -> Result<PeerAddr> {
        match fd.0 {
            FdKind::Listen(l) => {
                let listener = *self.listener_mut(l)?;
                let ip = match listener.endpoint.addr {
                    Some(a) => IpAddr::from(a),
                    None => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
                };
                Ok(PeerAddr::Ip(SocketAddr::new(ip, listener.endpoint.port)))
            }
            FdKind::Conn(_) => {
                let i = self.conn(fd)?;
                let local = self.slots[i]
                    .local
                    .or_else(|| self.socket(i).local_endpoint().map(to_std));
                match local {
                    Some(a) => Ok(PeerAddr::Ip(a)),
                    // Connecting, before smoltcp picked the source address.
                    None => Ok(PeerAddr::Ip(SocketAddr::new(
                        IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                        0,
                    ))),
                }
            }
        }
    }

    fn remote_addr(&mut self, fd: &SmolFd) -> Result<PeerAddr> {
        let i = self.conn(fd)?;
        self.slots[i]
            .remote
            .or_else(|| self.socket(i).remote_endpoint().map(to_std))
            .map(PeerAddr::Ip)
            .ok_or(SmolError::new(ErrorKind::InvalidInput))
    }
}
