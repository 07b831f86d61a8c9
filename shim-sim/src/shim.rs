//! [`SimShim`]: core's [`OsShim`] over the simulated network.

use std::net::SocketAddr;

use usockets_core::{
    ConnectTarget, Event, Interest, ListenOptions, ListenTarget, OsShim, PeerAddr, Token,
};

use crate::addr::{self, Family};
use crate::fault::FaultKind;
use crate::fd::{Fd, SimFd};
use crate::net::{
    FdKind, ListenKey, Listener, Listening, NetState, Pending, Phase, Registration, SimCall, Sock,
    MAX_BACKLOG,
};
use crate::readiness::Ready;
use crate::{SimError, SimNet, SimWaker};

/// An [`OsShim`] over a [`SimNet`], for one loop: its own registrations, its own waker and a
/// rotating scan position, over the shared world. Get one from [`SimNet::shim`].
///
/// Name resolution is synchronous (only loopback names resolve). Nothing ever blocks: a `wait`
/// with nothing ready moves the virtual clock instead.
///
/// It has deadline events ([`OsShim::set_deadline`]) unless they were turned off for it
/// ([`without_deadline_events`](Self::without_deadline_events)) or for its network
/// ([`SimNet::set_deadline_events`]): a `wait` with nothing ready moves the clock to the
/// deadline at most, and reports it with [`Token::DEADLINE`] once the clock has reached it.
/// Core's tests run both ways.
pub struct SimShim {
    net: SimNet,
    id: u32,
    waker: SimWaker,
    /// Where the next `wait` starts scanning (after the last descriptor of a truncated wait).
    cursor: Fd,
    /// Whether [`OsShim::set_deadline`] is supported.
    deadline_events: bool,
    /// The armed deadline (virtual ms).
    deadline: Option<u64>,
    /// How many ms before the armed deadline it is reported (a coarse timer).
    deadline_early_ms: u64,
}

impl SimShim {
    pub(crate) fn new(net: SimNet, id: u32, deadline_events: bool) -> SimShim {
        SimShim {
            net,
            id,
            waker: SimWaker::new(),
            cursor: 0,
            deadline_events,
            deadline: None,
            deadline_early_ms: 0,
        }
    }

    /// The network this shim runs on.
    pub fn net(&self) -> &SimNet {
        &self.net
    }

    /// This shim without deadline events: [`OsShim::set_deadline`] answers `Ok(false)`, as a
    /// shim that does not implement it, so core waits with timeouts. Before the shim goes into
    /// a loop.
    #[must_use]
    pub fn without_deadline_events(mut self) -> SimShim {
        self.deadline_events = false;
        self.deadline = None;
        self
    }

    /// This shim with a deadline timer `ms` milliseconds ahead of its clock: it reports the
    /// deadline `ms` milliseconds before its clock reaches it, as a timer on another clock
    /// may. Core must then arm it again rather than run timers early; armed again, it fires at
    /// once until the clock catches up (a busy wait), and in this model every such early
    /// report takes the clock 1 ms further, as a real spin takes time.
    #[must_use]
    pub fn with_deadline_early_by(mut self, ms: u64) -> SimShim {
        self.deadline_early_ms = ms;
        self
    }

    /// Whether this shim has deadline events.
    pub fn has_deadline_events(&self) -> bool {
        self.deadline_events
    }

    /// The deadline armed now, if any (virtual ms).
    pub fn armed_deadline(&self) -> Option<u64> {
        self.deadline
    }

    /// Reports the deadline into `events` if it has come and there is room: one event, and
    /// the deadline is spent. Returns how many events were written (0 or 1).
    fn take_deadline(&mut self, s: &mut NetState, events: &mut [Event]) -> usize {
        match (self.deadline, events.first_mut()) {
            (Some(d), Some(slot)) if s.now.saturating_add(self.deadline_early_ms) >= d => {
                *slot = Event::new(Token::DEADLINE).with_readable(true);
                self.deadline = None;
                if s.now < d {
                    s.now += 1;
                }
                1
            }
            _ => 0,
        }
    }

    /// Scans this shim's descriptors from the rotating cursor.
    fn scan(&self, s: &mut NetState) -> Vec<(Fd, Registration, Ready)> {
        s.scan(self.id, self.cursor)
    }

    /// Reports a scan into `events` (see [`emit`](Self::emit)) and hands its buffer back.
    fn emit_and_recycle(
        &mut self,
        s: &mut NetState,
        scanned: Vec<(Fd, Registration, Ready)>,
        events: &mut [Event],
    ) -> usize {
        let n = self.emit(s, &scanned, events);
        s.recycle_scan(scanned);
        n
    }

    /// Reports a scan into `events`; a truncated report moves the cursor past its last entry.
    fn emit(
        &mut self,
        s: &mut NetState,
        scanned: &[(Fd, Registration, Ready)],
        events: &mut [Event],
    ) -> usize {
        let (n, last) = s.emit(scanned, events, true);
        self.cursor = match last {
            Some(fd) if n == events.len() => fd.saturating_add(1),
            _ => 0,
        };
        n
    }
}

/// The registration of `fd` made by shim `id`.
fn own_registration(
    s: &mut NetState,
    fd: Fd,
    id: u32,
) -> Result<&mut Option<Registration>, SimError> {
    let e = s.fds.get_mut(&fd).ok_or(SimError::BAD_FD)?;
    match e.reg {
        Some(r) if r.shim == id => Ok(&mut e.reg),
        _ => Err(SimError::NOT_REGISTERED),
    }
}

/// The connection socket behind `fd`: (connection, side, phase).
fn sock(s: &NetState, fd: Fd) -> Result<(Option<u64>, usize, Phase), SimError> {
    match s.fds.get(&fd).map(|e| &e.kind) {
        None => Err(SimError::BAD_FD),
        Some(FdKind::Socket(k)) => Ok((k.conn, k.side, k.phase)),
        Some(FdKind::Listener(_)) => Err(SimError::NOT_CONNECTED),
        Some(_) => Err(SimError::NOT_SOCKET),
    }
}

/// The live connection behind a connected socket.
fn established(s: &NetState, fd: Fd) -> Result<(u64, usize), SimError> {
    match sock(s, fd)? {
        (Some(id), side, Phase::Connected | Phase::Connecting { visible: true }) => Ok((id, side)),
        (_, _, Phase::Connecting { .. }) => Err(SimError::WOULD_BLOCK),
        _ => Err(SimError::NOT_CONNECTED),
    }
}

/// One write of `data` on `fd`, with every send-side fault.
fn send_bytes(s: &mut NetState, fd: Fd, data: &[u8]) -> Result<usize, SimError> {
    let (id, side) = established(s, fd)?;
    let other = 1 - side;
    {
        let c = s.conns.get_mut(&id).ok_or(SimError::NOT_CONNECTED)?;
        if c.reset {
            return Err(SimError::CONNECTION_RESET);
        }
        if c.ends[side].shut_wr {
            return Err(SimError::BROKEN_PIPE);
        }
        if data.is_empty() {
            return Ok(0);
        }
        if c.gone(other) {
            c.ends[side].broken = true;
            return Err(SimError::BROKEN_PIPE);
        }
    }
    if s.roll(FaultKind::Reset) {
        s.reset_conn(id);
        return Err(SimError::CONNECTION_RESET);
    }
    if s.roll(FaultKind::WouldBlockSend) {
        return Err(SimError::WOULD_BLOCK);
    }
    let room = s.conns.get(&id).map_or(0, |c| c.dirs[side].room());
    if room == 0 {
        return Err(SimError::WOULD_BLOCK);
    }
    let mut n = data.len().min(room);
    if n >= 2 && s.roll(FaultKind::PartialWrite) {
        let short = u32::try_from(n - 1).unwrap_or(u32::MAX);
        n = 1 + s.below(short) as usize;
    }
    let deliver_at = if s.roll(FaultKind::DelayDelivery) {
        Some(s.now + 1 + u64::from(s.below(50)))
    } else {
        None
    };
    let now = s.now;
    let hang_up = s.conns.get(&id).is_some_and(|c| !c.ends[other].closed);
    let hang_up = hang_up && s.roll(FaultKind::HangupWithUnread);
    if let Some(c) = s.conns.get_mut(&id) {
        c.dirs[side].push(&data[..n], deliver_at);
        if hang_up {
            // The far end goes away abruptly but gracefully: FIN after what it already sent,
            // nothing more received; this end sees hangup while that data is still unread.
            if c.ends[other].peer.is_some() {
                c.close_end(other, now);
            } else {
                c.ends[other].deaf = true;
                c.ends[other].shut_wr = true;
                c.dirs[other].fin = true;
            }
            c.ends[side].hup = true;
        }
    }
    Ok(n)
}

/// The addresses of a socket accepted by `l` from `client`: (local, remote).
fn accepted_addrs(l: &Listener, client: Option<SocketAddr>) -> (PeerAddr, PeerAddr) {
    let port = match l.local {
        PeerAddr::Ip(a) => a.port(),
        PeerAddr::Unix => return (PeerAddr::Unix, PeerAddr::Unix),
    };
    let Some(client) = client else {
        return (PeerAddr::Unix, PeerAddr::Unix);
    };
    match (l.family, client.is_ipv4()) {
        (Some(Family::V6), true) => (
            PeerAddr::Ip(addr::mapped_v4(port)),
            PeerAddr::Ip(addr::mapped_v4(client.port())),
        ),
        (Some(Family::V6), false) => (
            PeerAddr::Ip(addr::loopback(Family::V6, port)),
            PeerAddr::Ip(client),
        ),
        _ => (
            PeerAddr::Ip(addr::loopback(Family::V4, port)),
            PeerAddr::Ip(addr::loopback(Family::V4, client.port())),
        ),
    }
}

impl OsShim for SimShim {
    type Fd = SimFd;
    type Waker = SimWaker;
    type Error = SimError;

    fn register(&mut self, fd: &SimFd, token: Token, interest: Interest) -> Result<(), SimError> {
        let fd = self.net.number(fd)?;
        let mut s = self.net.state();
        s.syscalls.register += 1;
        if let Some(e) = s.scripted(SimCall::Register) {
            return Err(e);
        }
        let e = s.fds.get_mut(&fd).ok_or(SimError::BAD_FD)?;
        if e.reg.is_some() {
            return Err(SimError::ALREADY_REGISTERED);
        }
        e.reg = Some(Registration {
            shim: self.id,
            token,
            interest,
        });
        Ok(())
    }

    fn modify(&mut self, fd: &SimFd, token: Token, interest: Interest) -> Result<(), SimError> {
        let fd = self.net.number(fd)?;
        let mut s = self.net.state();
        s.syscalls.modify += 1;
        if let Some(e) = s.scripted(SimCall::Modify) {
            return Err(e);
        }
        *own_registration(&mut s, fd, self.id)? = Some(Registration {
            shim: self.id,
            token,
            interest,
        });
        Ok(())
    }

    fn deregister(&mut self, fd: &SimFd) -> Result<(), SimError> {
        let fd = self.net.number(fd)?;
        let mut s = self.net.state();
        s.syscalls.deregister += 1;
        if let Some(e) = s.scripted(SimCall::Deregister) {
            return Err(e);
        }
        *own_registration(&mut s, fd, self.id)? = None;
        Ok(())
    }

    fn wait(&mut self, events: &mut [Event], timeout_ms: Option<u64>) -> Result<usize, SimError> {
        let net = self.net.clone();
        let mut s = net.state();
        s.syscalls.wait += 1;
        if events.is_empty() {
            return Ok(0);
        }
        s.reveal_connects(self.id);
        let mut n = 0;
        if self.waker.take() {
            events[0] = Event::new(Token::WAKER);
            n = 1;
        }
        n += self.take_deadline(&mut s, &mut events[n..]);
        // Spurious events never count as "something is ready": they may ride along with real
        // events or with a wake-up after the clock moved, but never stop time from passing.
        let scanned = self.scan(&mut s);
        if n > 0 || timeout_ms == Some(0) || scanned.iter().any(|(_, _, r)| r.any()) {
            return Ok(n + self.emit_and_recycle(&mut s, scanned, &mut events[n..]));
        }
        s.recycle_scan(scanned);
        // Let time pass delivery by delivery until something is ready, the armed deadline
        // comes or the timeout is up: a delivery may make nothing ready (its reader is not
        // watched, or not even accepted).
        let deadline = timeout_ms.map(|t| s.now.saturating_add(t));
        loop {
            let early = self.deadline_early_ms;
            let armed = self.deadline.map(|d| d.saturating_sub(early));
            let target = [deadline, s.next_delivery(), armed]
                .into_iter()
                .flatten()
                .min();
            // Nothing will ever happen: a real wait would block forever.
            let Some(target) = target else {
                return Ok(0);
            };
            s.now = s.now.max(target);
            let n = self.take_deadline(&mut s, events);
            let scanned = self.scan(&mut s);
            let timed_out = deadline.is_some_and(|d| s.now >= d);
            if n > 0 || timed_out || scanned.iter().any(|(_, _, r)| r.any()) {
                return Ok(n + self.emit_and_recycle(&mut s, scanned, &mut events[n..]));
            }
            s.recycle_scan(scanned);
        }
    }

    fn waker(&mut self) -> SimWaker {
        self.waker.clone()
    }

    fn set_deadline(&mut self, at_ms: Option<u64>) -> Result<bool, SimError> {
        self.net.state().syscalls.set_deadline += 1;
        if !self.deadline_events {
            return Ok(false);
        }
        self.deadline = at_ms;
        Ok(true)
    }

    fn now_ms(&mut self) -> u64 {
        let mut s = self.net.state();
        s.syscalls.clock += 1;
        s.now
    }

    fn listen(
        &mut self,
        target: ListenTarget<'_>,
        options: ListenOptions,
    ) -> Result<SimFd, SimError> {
        let mut s = self.net.state();
        s.syscalls.listen += 1;
        let (key, local, family) = match target {
            ListenTarget::Host { host, port } => {
                let (ip, family) = addr::listen_host(host)?;
                s.check_fd_limit()?;
                let port = match port {
                    0 => s.ephemeral_listen_port().ok_or(SimError::ADDR_IN_USE)?,
                    p => p,
                };
                (
                    ListenKey::Port(port),
                    PeerAddr::Ip(SocketAddr::new(ip, port)),
                    Some(family),
                )
            }
            ListenTarget::Unix(path) => {
                addr::check_unix_path(path)?;
                s.check_fd_limit()?;
                (ListenKey::Path(path.to_owned()), PeerAddr::Unix, None)
            }
        };
        if s.listeners.contains_key(&key) {
            return Err(SimError::ADDR_IN_USE);
        }
        let cap = usize::try_from(options.backlog)
            .unwrap_or(MAX_BACKLOG)
            .clamp(1, MAX_BACKLOG);
        let listener = Listener {
            key: key.clone(),
            local,
            family,
            backlog: Default::default(),
            cap,
        };
        let fd = s.open_fd(FdKind::Listener(listener));
        s.listeners.insert(key, Listening::Core(fd));
        Ok(self.net.owned(fd))
    }

    fn accept(&mut self, listener: &SimFd) -> Result<Option<(SimFd, PeerAddr)>, SimError> {
        let listener = self.net.number(listener)?;
        let mut s = self.net.state();
        s.syscalls.accept += 1;
        match s.fds.get(&listener).map(|e| &e.kind) {
            None => return Err(SimError::BAD_FD),
            Some(FdKind::Listener(l)) if l.backlog.is_empty() => return Ok(None),
            Some(FdKind::Listener(_)) => {}
            Some(_) => return Err(SimError::INVALID),
        }
        if let Some(e) = s.scripted(SimCall::Accept) {
            return Err(e);
        }
        if s.roll(FaultKind::EmfileAccept) {
            return Err(SimError::TOO_MANY_OPEN_FILES);
        }
        s.check_fd_limit()?;
        let Some(FdKind::Listener(l)) = s.fds.get_mut(&listener).map(|e| &mut e.kind) else {
            return Err(SimError::BAD_FD);
        };
        let Some(Pending { conn, side, client }) = l.backlog.pop_front() else {
            return Ok(None);
        };
        let (local, remote) = accepted_addrs(l, client);
        let fd = s.open_fd(FdKind::Socket(Sock {
            conn: Some(conn),
            side,
            local,
            remote,
            phase: Phase::Connected,
        }));
        Ok(Some((self.net.owned(fd), remote)))
    }

    fn connect(&mut self, target: ConnectTarget<'_>) -> Result<SimFd, SimError> {
        let mut s = self.net.state();
        s.syscalls.connect += 1;
        let (conn, local, remote) = match target {
            ConnectTarget::Host { host, port, source } => {
                let family = addr::connect_host(host)?;
                if source.is_some_and(|src| !addr::source_ok(src)) {
                    return Err(SimError::ADDR_NOT_AVAILABLE);
                }
                s.check_fd_limit()?;
                let client = addr::loopback(family, s.client_port());
                let conn = s.dial(&ListenKey::Port(port), Some(client), false, true);
                (
                    conn,
                    PeerAddr::Ip(client),
                    PeerAddr::Ip(addr::loopback(family, port)),
                )
            }
            ConnectTarget::Unix(path) => {
                addr::check_unix_path(path)?;
                s.check_fd_limit()?;
                let conn = s.dial(&ListenKey::Path(path.to_owned()), None, false, true);
                (conn, PeerAddr::Unix, PeerAddr::Unix)
            }
        };
        let phase = match conn {
            Some(_) => Phase::Connecting { visible: false },
            None => Phase::Refused { visible: false },
        };
        s.hidden_connects += 1;
        let fd = s.open_fd(FdKind::Socket(Sock {
            conn,
            side: 0,
            local,
            remote,
            phase,
        }));
        Ok(self.net.owned(fd))
    }

    fn connect_result(&mut self, fd: &SimFd) -> Result<(), SimError> {
        let fd = self.net.number(fd)?;
        let mut s = self.net.state();
        let Some(FdKind::Socket(k)) = s.fds.get_mut(&fd).map(|e| &mut e.kind) else {
            return Err(sock(&s, fd).err().unwrap_or(SimError::BAD_FD));
        };
        match k.phase {
            Phase::Connecting { visible: false } | Phase::Refused { visible: false } => {
                Err(SimError::WOULD_BLOCK)
            }
            Phase::Connecting { visible: true } => {
                k.phase = Phase::Connected;
                Ok(())
            }
            // An established socket's pending error (`SO_ERROR`): a reset, or a broken pipe.
            Phase::Connected => {
                let (conn, side) = (k.conn, k.side);
                match conn.and_then(|id| s.conns.get(&id)) {
                    Some(c) if c.reset => Err(SimError::CONNECTION_RESET),
                    Some(c) if c.ends[side].broken => Err(SimError::BROKEN_PIPE),
                    _ => Ok(()),
                }
            }
            Phase::Refused { visible: true } => Err(SimError::CONNECTION_REFUSED),
        }
    }

    fn adopt(&mut self, fd: &SimFd) -> Result<(), SimError> {
        let fd = self.net.number(fd)?;
        sock(&self.net.state(), fd).map(|_| ())
    }

    fn recv(&mut self, fd: &SimFd, buf: &mut [u8]) -> Result<usize, SimError> {
        let fd = self.net.number(fd)?;
        let mut s = self.net.state();
        s.syscalls.recv += 1;
        if let Some(e) = s.scripted(SimCall::Recv) {
            return Err(e);
        }
        if let Some(FdKind::PipeRead(id)) = s.fds.get(&fd).map(|e| &e.kind) {
            let id = *id;
            let p = s.pipes.get_mut(&id).ok_or(SimError::BAD_FD)?;
            let n = buf.len().min(p.buf.len());
            for (dst, src) in buf.iter_mut().zip(p.buf.drain(..n)) {
                *dst = src;
            }
            return if n > 0 || !p.write_open || buf.is_empty() {
                Ok(n)
            } else {
                Err(SimError::WOULD_BLOCK)
            };
        }
        let (id, side) = established(&s, fd)?;
        let now = s.now;
        {
            let c = s.conns.get(&id).ok_or(SimError::NOT_CONNECTED)?;
            if c.reset {
                return Err(SimError::CONNECTION_RESET);
            }
            if c.ends[side].shut_rd {
                return Ok(0);
            }
        }
        if s.roll(FaultKind::Reset) {
            s.reset_conn(id);
            return Err(SimError::CONNECTION_RESET);
        }
        let c = s.conns.get_mut(&id).ok_or(SimError::NOT_CONNECTED)?;
        let incoming = &mut c.dirs[1 - side];
        incoming.settle(now);
        if !incoming.visible.is_empty() || buf.is_empty() {
            return Ok(incoming.read_into(buf));
        }
        if incoming.fin_arrived() {
            return Ok(0);
        }
        Err(SimError::WOULD_BLOCK)
    }

    fn send(&mut self, fd: &SimFd, data: &[u8], _more: bool) -> Result<usize, SimError> {
        let fd = self.net.number(fd)?;
        let mut s = self.net.state();
        s.syscalls.send += 1;
        if let Some(e) = s.scripted(SimCall::Send) {
            return Err(e);
        }
        send_bytes(&mut s, fd, data)
    }

    fn send2(&mut self, fd: &SimFd, header: &[u8], payload: &[u8]) -> Result<usize, SimError> {
        let fd = self.net.number(fd)?;
        let mut s = self.net.state();
        s.syscalls.send2 += 1;
        if let Some(e) = s.scripted(SimCall::Send) {
            return Err(e);
        }
        let mut both = Vec::with_capacity(header.len() + payload.len());
        both.extend_from_slice(header);
        both.extend_from_slice(payload);
        send_bytes(&mut s, fd, &both)
    }

    fn flush(&mut self, fd: &SimFd) -> Result<(), SimError> {
        let fd = self.net.number(fd)?;
        let mut s = self.net.state();
        s.syscalls.flush += 1;
        sock(&s, fd).map(|_| ())
    }

    fn shutdown_write(&mut self, fd: &SimFd) -> Result<(), SimError> {
        let fd = self.net.number(fd)?;
        let mut s = self.net.state();
        s.syscalls.shutdown += 1;
        let (id, side) = established(&s, fd).map_err(|_| SimError::NOT_CONNECTED)?;
        if let Some(c) = s.conns.get_mut(&id) {
            c.ends[side].shut_wr = true;
            if !c.reset {
                c.dirs[side].fin = true;
            }
        }
        Ok(())
    }

    fn shutdown_read(&mut self, fd: &SimFd) -> Result<(), SimError> {
        let fd = self.net.number(fd)?;
        let mut s = self.net.state();
        s.syscalls.shutdown += 1;
        let (id, side) = established(&s, fd).map_err(|_| SimError::NOT_CONNECTED)?;
        if let Some(c) = s.conns.get_mut(&id) {
            c.ends[side].shut_rd = true;
        }
        Ok(())
    }

    fn close(&mut self, fd: SimFd) {
        if self.net.number(&fd).is_err() {
            // Another network's descriptor: dropping it closes it there.
            return;
        }
        let fd = fd.disarm();
        self.net.state().close_fd(fd);
    }

    fn local_addr(&mut self, fd: &SimFd) -> Result<PeerAddr, SimError> {
        let fd = self.net.number(fd)?;
        match self.net.state().fds.get(&fd).map(|e| &e.kind) {
            None => Err(SimError::BAD_FD),
            Some(FdKind::Listener(l)) => Ok(l.local),
            Some(FdKind::Socket(k)) => Ok(k.local),
            Some(_) => Err(SimError::NOT_SOCKET),
        }
    }

    fn remote_addr(&mut self, fd: &SimFd) -> Result<PeerAddr, SimError> {
        let fd = self.net.number(fd)?;
        match self.net.state().fds.get(&fd).map(|e| &e.kind) {
            None => Err(SimError::BAD_FD),
            Some(FdKind::Socket(k))
                if matches!(
                    k.phase,
                    Phase::Connected | Phase::Connecting { visible: true }
                ) =>
            {
                Ok(k.remote)
            }
            Some(FdKind::Socket(_)) | Some(FdKind::Listener(_)) => Err(SimError::NOT_CONNECTED),
            Some(_) => Err(SimError::NOT_SOCKET),
        }
    }
}
