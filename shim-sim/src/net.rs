//! The simulated network: descriptors, listeners, connections, pipes, the clock and the
//! counters, behind the cloneable [`SimNet`] handle.

use std::cell::{Ref, RefCell, RefMut};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::SocketAddr;
use std::rc::Rc;

use usockets_core::{Interest, PeerAddr, Token};

use crate::addr::Family;
use crate::fault::{FaultCounts, FaultKind, FaultSource, Faults};
use crate::fd::{Fd, SimFd};
use crate::peer::{PeerId, PeerRec};
use crate::readiness::Ready;
use crate::shim::SimShim;
use crate::stream::Conn;
use crate::SimError;

/// Where the virtual clock starts (non-zero on purpose, so "0 means unset" bugs show).
const START_MS: u64 = 1_000_000;
/// The first descriptor number handed out (0, 1 and 2 are stdio).
const FIRST_FD: Fd = 3;
/// Ephemeral listener ports: 40000..=49999.
const LISTEN_PORTS: (u16, u16) = (40_000, 49_999);
/// Ephemeral client ports: 50000..=65535, wrapping.
const CLIENT_PORTS: (u16, u16) = (50_000, u16::MAX);
/// The largest accept backlog a listener gets.
pub(crate) const MAX_BACKLOG: usize = 4096;

/// Counted shim calls, for hot-path assertions (e.g. "no `modify` per request").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SyscallCounts {
    /// `register` calls.
    pub register: u64,
    /// `modify` calls.
    pub modify: u64,
    /// `deregister` calls.
    pub deregister: u64,
    /// `wait` calls.
    pub wait: u64,
    /// `listen` calls.
    pub listen: u64,
    /// `accept` calls.
    pub accept: u64,
    /// `connect` calls.
    pub connect: u64,
    /// `recv` calls.
    pub recv: u64,
    /// `send` calls.
    pub send: u64,
    /// `send2` calls.
    pub send2: u64,
    /// `flush` calls.
    pub flush: u64,
    /// `shutdown_write` and `shutdown_read` calls.
    pub shutdown: u64,
    /// `close` calls (also on unknown descriptors).
    pub close: u64,
    /// `now_ms` calls (clock reads).
    pub clock: u64,
    /// `set_deadline` calls, also when the shim has no deadline events.
    pub set_deadline: u64,
}

/// A shim call whose next invocations [`SimNet::fail_next`] can make fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum SimCall {
    /// `register`.
    Register,
    /// `modify`.
    Modify,
    /// `deregister`.
    Deregister,
    /// `accept`; a pending connection stays queued, so the listener stays readable.
    Accept,
    /// `recv`.
    Recv,
    /// `send` and `send2`.
    Send,
}

/// What a listener is keyed by: a port (every loopback name shares one port space) or a path.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum ListenKey {
    Port(u16),
    Path(String),
}

/// Who listens on a key.
#[derive(Debug)]
pub(crate) enum Listening {
    /// A core-side listener descriptor.
    Core(Fd),
    /// A test-side listener and the peers connected to it, not yet taken.
    Peer(VecDeque<PeerId>),
}

/// A connection queued in a core listener's backlog.
#[derive(Debug)]
pub(crate) struct Pending {
    pub conn: u64,
    pub side: usize,
    /// The client's address (`None` for unix sockets).
    pub client: Option<SocketAddr>,
}

/// A core-side listener.
#[derive(Debug)]
pub(crate) struct Listener {
    pub key: ListenKey,
    pub local: PeerAddr,
    /// `None` for unix listeners.
    pub family: Option<Family>,
    pub backlog: VecDeque<Pending>,
    pub cap: usize,
}

/// Where a client socket's connect is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Connected; `visible` once a `wait` has passed since `connect`.
    Connecting { visible: bool },
    /// Refused; reported from the first `wait` after `connect` on.
    Refused { visible: bool },
    /// Established (accepted sockets start here).
    Connected,
}

/// A core-side connection socket.
#[derive(Debug)]
pub(crate) struct Sock {
    pub conn: Option<u64>,
    pub side: usize,
    pub local: PeerAddr,
    pub remote: PeerAddr,
    pub phase: Phase,
}

/// A user pipe: bytes from the write end to the read end.
#[derive(Debug, Default)]
pub(crate) struct Pipe {
    pub buf: VecDeque<u8>,
    pub read_open: bool,
    pub write_open: bool,
}

/// What a descriptor is.
#[derive(Debug)]
pub(crate) enum FdKind {
    Listener(Listener),
    Socket(Sock),
    PipeRead(u64),
    PipeWrite(u64),
}

/// A poller registration: which shim watches the descriptor, with what token and interest.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Registration {
    pub shim: u32,
    pub token: Token,
    pub interest: Interest,
}

/// An open descriptor.
#[derive(Debug)]
pub(crate) struct FdEntry {
    pub kind: FdKind,
    pub reg: Option<Registration>,
}

/// The whole simulated world.
pub(crate) struct NetState {
    pub now: u64,
    pub faults: Faults,
    source: Box<dyn FaultSource>,
    pub fault_counts: FaultCounts,
    pub syscalls: SyscallCounts,
    pub fds: BTreeMap<Fd, FdEntry>,
    free_fds: BTreeSet<Fd>,
    /// Open descriptors whose owner gave them up with `SimFd::into_number`.
    pub released: BTreeSet<Fd>,
    /// Scripted failures: the next `count` calls of a kind fail with the error.
    scripted: Vec<(SimCall, SimError, u32)>,
    next_fd: Fd,
    pub fd_limit: Option<usize>,
    pub listeners: BTreeMap<ListenKey, Listening>,
    pub conns: BTreeMap<u64, Conn>,
    next_conn: u64,
    pub peers: BTreeMap<PeerId, PeerRec>,
    next_peer: u32,
    pub pipes: BTreeMap<u64, Pipe>,
    next_pipe: u64,
    next_listen_port: u16,
    next_client_port: u16,
    pub next_shim: u32,
    /// Whether shims made from now on have deadline events.
    pub deadline_events: bool,
    /// Sockets whose connect outcome `wait` has not revealed yet (an upper bound: a closed one
    /// stays counted until the next reveal), so a `wait` with none skips the walk over every
    /// descriptor.
    pub hidden_connects: usize,
    /// The buffer `scan` fills, kept between waits so that a wait allocates nothing.
    pub scan_buf: Vec<(Fd, Registration, Ready)>,
}

impl NetState {
    /// Draws a fault of `kind`; consumes nothing when its probability is 0. Counts a hit.
    pub fn roll(&mut self, kind: FaultKind) -> bool {
        let per_mille = self.faults.per_mille(kind);
        if per_mille == 0 || !self.source.chance(per_mille) {
            return false;
        }
        self.fault_counts.bump(kind);
        true
    }

    /// A decision value below `n` (`n > 0`).
    pub fn below(&mut self, n: u32) -> u32 {
        self.source.next_u32() % n.max(1)
    }

    /// Fails with `EMFILE` when a new descriptor would pass the limit.
    pub fn check_fd_limit(&self) -> Result<(), SimError> {
        match self.fd_limit {
            Some(limit) if self.fds.len() >= limit => Err(SimError::TOO_MANY_OPEN_FILES),
            _ => Ok(()),
        }
    }

    /// Opens a descriptor: the lowest free number.
    pub fn open_fd(&mut self, kind: FdKind) -> Fd {
        let fd = match self.free_fds.pop_first() {
            Some(fd) => fd,
            None => {
                let fd = self.next_fd;
                self.next_fd += 1;
                fd
            }
        };
        self.fds.insert(fd, FdEntry { kind, reg: None });
        fd
    }

    /// The error a scripted failure gives this call of `call`, if one is due.
    pub fn scripted(&mut self, call: SimCall) -> Option<SimError> {
        let i = self.scripted.iter().position(|(c, _, _)| *c == call)?;
        let (_, error, left) = &mut self.scripted[i];
        let error = *error;
        *left -= 1;
        if *left == 0 {
            self.scripted.remove(i);
        }
        Some(error)
    }

    /// Closes descriptor `fd`: a listener resets what it never accepted, a socket closes its end
    /// of the connection, a pipe end closes. Unknown numbers are ignored.
    pub fn close_fd(&mut self, fd: Fd) {
        self.syscalls.close += 1;
        let now = self.now;
        self.released.remove(&fd);
        let Some(entry) = self.release_fd(fd) else {
            return;
        };
        match entry.kind {
            FdKind::Listener(l) => {
                if matches!(self.listeners.get(&l.key), Some(Listening::Core(owner)) if *owner == fd)
                {
                    self.listeners.remove(&l.key);
                }
                // Connections never accepted are reset, as when a real listener closes.
                for p in l.backlog {
                    if let Some(c) = self.conns.get_mut(&p.conn) {
                        c.do_reset();
                        c.ends[p.side].closed = true;
                    }
                    self.reap(p.conn);
                }
            }
            FdKind::Socket(k) => {
                if let Some(id) = k.conn {
                    if let Some(c) = self.conns.get_mut(&id) {
                        c.close_end(k.side, now);
                    }
                    self.reap(id);
                }
            }
            FdKind::PipeRead(id) | FdKind::PipeWrite(id) => {
                let read = matches!(entry.kind, FdKind::PipeRead(_));
                let done = match self.pipes.get_mut(&id) {
                    Some(p) => {
                        if read {
                            p.read_open = false;
                            p.buf.clear();
                        } else {
                            p.write_open = false;
                        }
                        !p.read_open && !p.write_open
                    }
                    None => false,
                };
                if done {
                    self.pipes.remove(&id);
                }
            }
        }
    }

    /// Forgets a descriptor number so it can be reused.
    pub fn release_fd(&mut self, fd: Fd) -> Option<FdEntry> {
        let entry = self.fds.remove(&fd)?;
        self.free_fds.insert(fd);
        while self.next_fd > FIRST_FD && self.free_fds.remove(&(self.next_fd - 1)) {
            self.next_fd -= 1;
        }
        Some(entry)
    }

    /// The next ephemeral listener port not in use.
    pub fn ephemeral_listen_port(&mut self) -> Option<u16> {
        let (lo, hi) = LISTEN_PORTS;
        for _ in lo..=hi {
            let port = self.next_listen_port;
            self.next_listen_port = if port >= hi { lo } else { port + 1 };
            if !self.listeners.contains_key(&ListenKey::Port(port)) {
                return Some(port);
            }
        }
        None
    }

    /// The next client port (wrapping).
    pub fn client_port(&mut self) -> u16 {
        let (lo, hi) = CLIENT_PORTS;
        let port = self.next_client_port;
        self.next_client_port = if port >= hi { lo } else { port + 1 };
        port
    }

    /// A new connection; its ends belong to core until [`new_peer`](Self::new_peer) says not.
    pub fn new_conn(&mut self) -> u64 {
        let id = self.next_conn;
        self.next_conn += 1;
        self.conns.insert(id, Conn::default());
        id
    }

    /// A new peer record for end `side` of `conn`.
    pub fn new_peer(&mut self, conn: u64, side: usize) -> PeerId {
        let id = PeerId(self.next_peer);
        self.next_peer = self.next_peer.wrapping_add(1);
        self.peers.insert(
            id,
            PeerRec {
                conn: Some(conn),
                side,
                got_fin: false,
                reset: false,
            },
        );
        if let Some(c) = self.conns.get_mut(&conn) {
            c.ends[side].peer = Some(id);
        }
        id
    }

    /// Connects to whoever listens on `key`. Returns the connection (the client is end 0), or
    /// `None` when refused: nobody listens, the backlog is full, or (when `faults`) the
    /// `refuse_connect` fault hit. A test-side client (`peer_client`) may only reach core.
    pub fn dial(
        &mut self,
        key: &ListenKey,
        client: Option<SocketAddr>,
        peer_client: bool,
        faults: bool,
    ) -> Option<u64> {
        let target = match self.listeners.get(key)? {
            Listening::Core(fd) => Some(*fd),
            Listening::Peer(_) => None,
        };
        match target {
            Some(lfd) => {
                let full = match self.fds.get(&lfd).map(|e| &e.kind) {
                    Some(FdKind::Listener(l)) => l.backlog.len() >= l.cap,
                    _ => true,
                };
                if full || (faults && self.roll(FaultKind::RefuseConnect)) {
                    return None;
                }
                let conn = self.new_conn();
                if let Some(FdKind::Listener(l)) = self.fds.get_mut(&lfd).map(|e| &mut e.kind) {
                    l.backlog.push_back(Pending {
                        conn,
                        side: 1,
                        client,
                    });
                }
                Some(conn)
            }
            None => {
                if peer_client || (faults && self.roll(FaultKind::RefuseConnect)) {
                    return None;
                }
                let conn = self.new_conn();
                let peer = self.new_peer(conn, 1);
                if let Some(Listening::Peer(q)) = self.listeners.get_mut(key) {
                    q.push_back(peer);
                }
                Some(conn)
            }
        }
    }

    /// Resets a connection.
    pub fn reset_conn(&mut self, id: u64) {
        if let Some(c) = self.conns.get_mut(&id) {
            c.do_reset();
        }
    }

    /// Forgets a connection once both ends are closed, leaving its final state with its peers.
    pub fn reap(&mut self, id: u64) {
        let finished = self.conns.get(&id).is_some_and(Conn::finished);
        if !finished {
            return;
        }
        let Some(conn) = self.conns.remove(&id) else {
            return;
        };
        for side in 0..2 {
            if let Some(p) = conn.ends[side].peer.and_then(|p| self.peers.get_mut(&p)) {
                p.conn = None;
                p.got_fin = conn.dirs[1 - side].drained();
                p.reset = conn.reset;
            }
        }
    }

    /// The earliest time after now that an in-flight chunk towards a core-side end becomes
    /// visible.
    pub fn next_delivery(&self) -> Option<u64> {
        self.conns
            .values()
            .flat_map(|c| {
                (0..2)
                    .filter(|&s| c.ends[1 - s].peer.is_none())
                    .filter_map(|s| c.dirs[s].next_delivery_after(self.now))
            })
            .min()
    }
}

/// Handle to the simulated network. Cloning it is cheap (`Rc` inside); the shims hold one, the
/// test holds others, all see the same world. Not `Send`: a network lives on one thread.
///
/// Every method borrows the world for its duration only; a [`FaultSource`] must not call back
/// into the network.
#[derive(Clone)]
pub struct SimNet {
    inner: Rc<RefCell<NetState>>,
}

impl SimNet {
    /// A network with the given fault probabilities, drawing decisions from `source`.
    pub fn new(faults: Faults, source: Box<dyn FaultSource>) -> SimNet {
        let state = NetState {
            now: START_MS,
            faults,
            source,
            fault_counts: FaultCounts::default(),
            syscalls: SyscallCounts::default(),
            fds: BTreeMap::new(),
            free_fds: BTreeSet::new(),
            released: BTreeSet::new(),
            scripted: Vec::new(),
            next_fd: FIRST_FD,
            fd_limit: None,
            listeners: BTreeMap::new(),
            conns: BTreeMap::new(),
            next_conn: 0,
            peers: BTreeMap::new(),
            next_peer: 0,
            pipes: BTreeMap::new(),
            next_pipe: 0,
            next_listen_port: LISTEN_PORTS.0,
            next_client_port: CLIENT_PORTS.0,
            next_shim: 0,
            deadline_events: true,
            hidden_connects: 0,
            scan_buf: Vec::new(),
        };
        SimNet {
            inner: Rc::new(RefCell::new(state)),
        }
    }

    pub(crate) fn state(&self) -> RefMut<'_, NetState> {
        self.inner.borrow_mut()
    }

    /// Wraps descriptor number `fd` of this network as an owned handle.
    pub(crate) fn owned(&self, fd: Fd) -> SimFd {
        SimFd::new(fd, &self.inner)
    }

    /// The number of `fd` if it belongs to this network.
    pub(crate) fn number(&self, fd: &SimFd) -> Result<Fd, SimError> {
        if fd.is_of(&self.inner) {
            Ok(fd.number())
        } else {
            Err(SimError::BAD_FD)
        }
    }

    /// Takes back ownership of a descriptor given up with [`SimFd::into_number`], like
    /// `FromRawFd::from_raw_fd`, but checked: `None` unless `number` is an open descriptor of
    /// this network that was given up that way and not reclaimed since. For code that gets
    /// descriptors back across a C boundary.
    pub fn reclaim_fd(&self, number: i32) -> Option<SimFd> {
        let mut s = self.state();
        if !s.fds.contains_key(&number) || !s.released.remove(&number) {
            return None;
        }
        drop(s);
        Some(self.owned(number))
    }

    /// Makes the next `times` calls of `call` (on any shim of this network) fail with `error`,
    /// for tests of error paths (an `accept` error core does not know, a poller that refuses an
    /// interest change). Scripts for different calls run side by side; a new script for the
    /// same call replaces the old one.
    pub fn fail_next(&self, call: SimCall, error: SimError, times: u32) {
        let mut s = self.state();
        s.scripted.retain(|(c, _, _)| *c != call);
        if times > 0 {
            s.scripted.push((call, error, times));
        }
    }

    fn view(&self) -> Ref<'_, NetState> {
        self.inner.borrow()
    }

    /// A new [`OsShim`](usockets_core::OsShim) over this network, for one loop. Each shim has
    /// its own registrations and its own waker.
    pub fn shim(&self) -> SimShim {
        let (id, deadline_events) = {
            let mut s = self.state();
            let id = s.next_shim;
            s.next_shim += 1;
            (id, s.deadline_events)
        };
        SimShim::new(self.clone(), id, deadline_events)
    }

    /// Whether the shims made from now on by [`shim`](Self::shim) have deadline events
    /// ([`OsShim::set_deadline`](usockets_core::OsShim::set_deadline)); on by default. Off,
    /// a loop over them waits with timeouts, as over a shim that does not implement them.
    pub fn set_deadline_events(&self, on: bool) {
        self.state().deadline_events = on;
    }

    /// The virtual clock in milliseconds; starts at 1 000 000.
    pub fn now_ms(&self) -> u64 {
        self.view().now
    }

    /// Moves the virtual clock forward by `ms` (a clock jump, as a test sees it).
    pub fn advance(&self, ms: u64) {
        let mut s = self.state();
        s.now = s.now.saturating_add(ms);
    }

    /// Changes the fault probabilities from now on (e.g. [`Faults::NONE`] to drain a run).
    pub fn set_faults(&self, faults: Faults) {
        self.state().faults = faults;
    }

    /// How often each fault kind was injected so far.
    pub fn fault_counts(&self) -> FaultCounts {
        self.view().fault_counts
    }

    /// How often each shim call was made so far.
    pub fn syscalls(&self) -> SyscallCounts {
        self.view().syscalls
    }

    /// Descriptors currently open on the core side (listeners, sockets and user pipes), for
    /// leak checks.
    pub fn open_fds(&self) -> usize {
        self.view().fds.len()
    }

    /// Limits open descriptors like `RLIMIT_NOFILE`: creating one beyond it fails with `EMFILE`
    /// (`listen`, `accept` and `connect`; user pipes are exempt). `None` = unlimited.
    pub fn set_fd_limit(&self, limit: Option<usize>) {
        self.state().fd_limit = limit;
    }

    /// A `(read_end, write_end)` pair of plain descriptors a user poll can watch: the read end is
    /// readable while bytes are pending (and reports hangup once the write end is closed); the
    /// write end is always writable. Dropping an end closes it. Not subject to the descriptor
    /// limit.
    pub fn user_pipe(&self) -> (SimFd, SimFd) {
        let mut s = self.state();
        let id = s.next_pipe;
        s.next_pipe += 1;
        s.pipes.insert(
            id,
            Pipe {
                buf: VecDeque::new(),
                read_open: true,
                write_open: true,
            },
        );
        let r = s.open_fd(FdKind::PipeRead(id));
        let w = s.open_fd(FdKind::PipeWrite(id));
        drop(s);
        (self.owned(r), self.owned(w))
    }

    /// Writes into a user pipe through its write end; ignored when `write_end` is not an open
    /// pipe write end or the read end is closed.
    pub fn pipe_write(&self, write_end: &SimFd, data: &[u8]) {
        let Ok(write_end) = self.number(write_end) else {
            return;
        };
        let mut s = self.state();
        let Some(FdKind::PipeWrite(id)) = s.fds.get(&write_end).map(|e| &e.kind) else {
            return;
        };
        let id = *id;
        if let Some(p) = s.pipes.get_mut(&id).filter(|p| p.read_open) {
            p.buf.extend(data.iter().copied());
        }
    }

    /// Reads from a user pipe through its read end; returns how many bytes were copied (0 when
    /// empty or when `read_end` is not an open pipe read end).
    pub fn pipe_read(&self, read_end: &SimFd, buf: &mut [u8]) -> usize {
        let Ok(read_end) = self.number(read_end) else {
            return 0;
        };
        let mut s = self.state();
        let Some(FdKind::PipeRead(id)) = s.fds.get(&read_end).map(|e| &e.kind) else {
            return 0;
        };
        let id = *id;
        let Some(p) = s.pipes.get_mut(&id) else {
            return 0;
        };
        let n = buf.len().min(p.buf.len());
        for (dst, src) in buf.iter_mut().zip(p.buf.drain(..n)) {
            *dst = src;
        }
        n
    }
}
