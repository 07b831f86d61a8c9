//! Connections: their slot, the read/write hot path and the per-socket API.

use crate::config::Config;
use crate::handle::{token, ContextId, Kind, ListenId, SocketId};
use crate::recv::RecvBuf;
use crate::shim::{ErrorKind, Event, Interest, OsError, OsShim, PeerAddr, ShimError};
use crate::{Cx, NIL, RECV_PADDING};

/// A deadline that never comes.
pub(crate) const NEVER: u64 = u64::MAX;

/// The state of one connection in its arena slot. Opaque; public only so storage can be typed.
pub struct SocketEntry<C: Config> {
    /// `None` only for a connect that failed before a descriptor existed.
    pub(crate) fd: Option<<C::Shim as OsShim>::Fd>,
    pub(crate) context: ContextId,
    pub(crate) ext: C::SocketExt,
    pub(crate) listener: Option<ListenId>,
    /// Current registered interest.
    pub(crate) interest: Interest,
    pub(crate) connecting: bool,
    pub(crate) closed: bool,
    pub(crate) shut_down: bool,
    pub(crate) peer_fin: bool,
    pub(crate) last_write_failed: bool,
    pub(crate) corked: bool,
    pub(crate) low_priority: bool,
    /// Queued in the low-priority queue.
    pub(crate) queued: bool,
    /// Taken off the queue this iteration: may read once without spending budget.
    pub(crate) low_priority_turn: bool,
    /// Creation number, in the order sockets were made (see `context_close`).
    pub(crate) serial: u64,
    /// A connect that failed at once, reported in the next iteration.
    pub(crate) connect_error: Option<OsError>,
    /// Absolute sweep tick of the short and long timeout, [`NEVER`] when off.
    pub(crate) timeout_tick: u64,
    pub(crate) long_timeout_tick: u64,
    /// Context list links (or, once closed, the closed list).
    pub(crate) prev: u32,
    pub(crate) next: u32,
    /// Low-priority queue link.
    pub(crate) queue_next: u32,
}

impl<C: Config> SocketEntry<C> {
    pub(crate) fn new(
        fd: Option<<C::Shim as OsShim>::Fd>,
        context: ContextId,
        ext: C::SocketExt,
    ) -> Self {
        SocketEntry {
            fd,
            context,
            ext,
            listener: None,
            interest: Interest::NONE,
            connecting: false,
            closed: false,
            shut_down: false,
            peer_fin: false,
            last_write_failed: false,
            corked: false,
            low_priority: false,
            queued: false,
            low_priority_turn: false,
            serial: 0,
            connect_error: None,
            timeout_tick: NEVER,
            long_timeout_tick: NEVER,
            prev: NIL,
            next: NIL,
            queue_next: NIL,
        }
    }
}

/// Raw IP bytes as `on_open` and `remote_address` give them: 4 for IPv4, 16 for IPv6, none for
/// unix sockets.
pub(crate) fn ip_bytes(addr: &PeerAddr, out: &mut [u8; 16]) -> usize {
    match addr {
        PeerAddr::Ip(core::net::SocketAddr::V4(a)) => {
            out[..4].copy_from_slice(&a.ip().octets());
            4
        }
        PeerAddr::Ip(core::net::SocketAddr::V6(a)) => {
            out.copy_from_slice(&a.ip().octets());
            16
        }
        PeerAddr::Unix => 0,
    }
}

impl<C: Config> Cx<C> {
    pub(crate) fn socket(&self, s: SocketId) -> Option<&SocketEntry<C>> {
        self.sockets.get(s.index, s.generation)
    }
    pub(crate) fn socket_mut(&mut self, s: SocketId) -> Option<&mut SocketEntry<C>> {
        self.sockets.get_mut(s.index, s.generation)
    }
    fn open_socket(&self, s: SocketId) -> Option<&SocketEntry<C>> {
        self.socket(s).filter(|e| !e.closed)
    }

    /// Changes a socket's registered interest; a poller error closes the socket (it can no
    /// longer be served), so the error is never silently lost.
    pub(crate) fn set_socket_interest(&mut self, s: SocketId, interest: Interest) {
        let Some(e) = self.socket_mut(s) else { return };
        if e.closed || e.interest == interest {
            return;
        }
        e.interest = interest;
        let Some(fd) = e.fd else { return };
        let t = token(Kind::Socket, s.index, s.generation);
        if let Err(err) = self.shim.modify(fd, t, interest) {
            crate::log::log_warn!("modify failed: {}", err.raw_os_error());
            self.close(s, 0, None);
        }
    }

    // ---- the hot path ------------------------------------------------------------------

    pub(crate) fn socket_event(&mut self, recv: &mut [u8], s: SocketId, ev: Event) {
        let Some(e) = self.open_socket(s) else { return };
        if e.connecting {
            self.connect_event(s);
            return;
        }
        let interest = e.interest;
        if ev.error || ev.hangup {
            // Deliver what already arrived before acting on the hang-up: one read per event,
            // and the level-triggered poller reports the rest (then EOF or the error) again.
            if ev.readable && interest.is_readable() {
                self.read(recv, s);
            } else {
                self.close(s, 0, None);
            }
            return;
        }
        if ev.writable && interest.is_writable() {
            if let Some(e) = self.socket_mut(s) {
                e.last_write_failed = false;
            }
            if let Some(cb) = self.callbacks_of(s).and_then(|c| c.on_writable) {
                cb(self, s);
            }
            match self.open_socket(s) {
                Some(e) if !e.last_write_failed => {
                    let i = e.interest.without(Interest::WRITABLE);
                    self.set_socket_interest(s, i);
                }
                Some(_) => {}
                None => return,
            }
        }
        let Some(e) = self.open_socket(s) else { return };
        if !ev.readable || !e.interest.is_readable() {
            return;
        }
        if e.low_priority && !self.take_low_priority_turn(s) {
            return;
        }
        self.read(recv, s);
    }

    /// One `recv` per readable event (level-triggered: what is left is reported again), and
    /// another only while each read fills the whole buffer, up to the fairness cap.
    fn read(&mut self, recv: &mut [u8], s: SocketId) {
        let cap = self.recv_capacity;
        for _ in 0..self.settings.max_reads_per_event.max(1) {
            // Re-check before every read: a callback may have closed, paused or adopted it.
            let readable = self.open_socket(s).filter(|e| e.interest.is_readable());
            let Some(fd) = readable.and_then(|e| e.fd) else {
                return;
            };
            match self
                .shim
                .recv(fd, &mut recv[RECV_PADDING..RECV_PADDING + cap])
            {
                Ok(0) => {
                    self.peer_fin(s);
                    return;
                }
                Ok(n) => {
                    if let Some(cb) = self.callbacks_of(s).and_then(|c| c.on_data) {
                        let mut buf = RecvBuf::new(recv, n);
                        cb(self, s, &mut buf);
                    }
                    if n < cap {
                        return;
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(_) => {
                    self.close(s, 0, None);
                    return;
                }
            }
        }
    }

    /// EOF: after our own shutdown it closes; otherwise it half-closes and tells `on_end`.
    fn peer_fin(&mut self, s: SocketId) {
        let Some(e) = self.socket_mut(s) else { return };
        if e.shut_down {
            self.close(s, 0, None);
            return;
        }
        e.peer_fin = true;
        let i = e.interest.without(Interest::READABLE);
        self.set_socket_interest(s, i);
        if self.open_socket(s).is_none() {
            return;
        }
        if let Some(cb) = self.callbacks_of(s).and_then(|c| c.on_end) {
            cb(self, s);
        }
    }

    /// Records the outcome of a write: a short one arms writable interest.
    fn wrote(&mut self, s: SocketId, written: usize, wanted: usize) -> usize {
        if written < wanted {
            if let Some(e) = self.socket_mut(s) {
                e.last_write_failed = true;
                let i = e.interest.with(Interest::WRITABLE);
                self.set_socket_interest(s, i);
            }
        }
        written
    }

    fn writable_fd(&self, s: SocketId) -> Option<<C::Shim as OsShim>::Fd> {
        self.open_socket(s)
            .filter(|e| !e.shut_down && !e.connecting)
            .and_then(|e| e.fd)
    }

    // ---- socket API ----------------------------------------------------------------------

    /// Writes as much of `data` as the OS takes now and returns how many bytes that was
    /// (`us_socket_write`). 0 when closed, shut down, connecting or would-block. A short write
    /// arms `on_writable`. `more` hints that more data follows at once (`MSG_MORE`).
    pub fn write(&mut self, s: SocketId, data: &[u8], more: bool) -> usize {
        let Some(fd) = self.writable_fd(s) else {
            return 0;
        };
        if data.is_empty() {
            return 0;
        }
        let n = self.shim.send(fd, data, more).unwrap_or(0);
        if more {
            if let Some(e) = self.socket_mut(s) {
                e.corked = true;
            }
        }
        self.wrote(s, n, data.len())
    }

    /// Writes `header` then `payload` in one gathered write (`us_socket_write2`); same rules as
    /// [`write`](Self::write).
    pub fn write2(&mut self, s: SocketId, header: &[u8], payload: &[u8]) -> usize {
        let Some(fd) = self.writable_fd(s) else {
            return 0;
        };
        let wanted = header.len() + payload.len();
        if wanted == 0 {
            return 0;
        }
        let n = self.shim.send2(fd, header, payload).unwrap_or(0);
        self.wrote(s, n, wanted)
    }

    /// Withdraws a "more is coming" hold (`us_socket_flush`): a no-op unless `more` was used,
    /// and when shut down.
    pub fn flush(&mut self, s: SocketId) {
        let Some(fd) = self.writable_fd(s) else {
            return;
        };
        if let Some(e) = self.socket_mut(s) {
            if e.corked {
                e.corked = false;
                let _ = self.shim.flush(fd);
            }
        }
    }

    /// Sends FIN (`us_socket_shutdown`). Idempotent. If the peer had already sent FIN the
    /// connection is finished and closes now (`on_close(0, None)`).
    pub fn shutdown(&mut self, s: SocketId) {
        let Some(e) = self.open_socket(s) else { return };
        if e.shut_down || e.connecting {
            return;
        }
        let (fd, peer_fin, interest) = (e.fd, e.peer_fin, e.interest);
        if let Some(e) = self.socket_mut(s) {
            e.shut_down = true;
            e.last_write_failed = false;
        }
        if let Some(fd) = fd {
            let _ = self.shim.shutdown_write(fd);
        }
        if peer_fin {
            self.close(s, 0, None);
        } else {
            self.set_socket_interest(s, interest.without(Interest::WRITABLE));
        }
    }

    /// Shuts down the read side (`us_socket_shutdown_read`): the next iteration sees EOF.
    pub fn shutdown_read(&mut self, s: SocketId) {
        if let Some(fd) = self.open_socket(s).and_then(|e| e.fd) {
            let _ = self.shim.shutdown_read(fd);
        }
    }

    /// Whether the write side is shut down (`us_socket_is_shut_down`). `None` for a released handle.
    pub fn is_shut_down(&self, s: SocketId) -> Option<bool> {
        self.socket(s).map(|e| e.shut_down)
    }

    /// Whether the socket is closed (`us_socket_is_closed`): true from `close` until the end of
    /// the iteration, then the handle is released and this returns `None`.
    pub fn is_closed(&self, s: SocketId) -> Option<bool> {
        self.socket(s).map(|e| e.closed)
    }

    /// Whether the connection is established (`us_socket_is_established`): false while a client
    /// connect is pending.
    pub fn is_established(&self, s: SocketId) -> Option<bool> {
        self.socket(s)
            .map(|e| !e.connecting && !e.closed && e.fd.is_some())
    }

    /// The socket's user data (`us_socket_ext`); still there while closed, until released.
    pub fn socket_ext(&self, s: SocketId) -> Option<&C::SocketExt> {
        self.socket(s).map(|e| &e.ext)
    }
    /// The socket's user data, mutably.
    pub fn socket_ext_mut(&mut self, s: SocketId) -> Option<&mut C::SocketExt> {
        self.socket_mut(s).map(|e| &mut e.ext)
    }
    /// The socket's context (`us_socket_context`).
    pub fn socket_context(&self, s: SocketId) -> Option<ContextId> {
        self.socket(s).map(|e| e.context)
    }
    /// The listen socket that accepted this socket, if any.
    pub fn socket_listener(&self, s: SocketId) -> Option<ListenId> {
        self.socket(s).and_then(|e| e.listener)
    }
    /// The socket's descriptor (`us_poll_fd` on a socket, `us_socket_get_native_handle`).
    pub fn socket_fd(&self, s: SocketId) -> Option<<C::Shim as OsShim>::Fd> {
        self.open_socket(s).and_then(|e| e.fd)
    }

    /// Closes the socket now (`us_socket_close`): stops polling, closes the descriptor and calls
    /// `on_close(code, reason)` synchronously. A no-op when already closed. The handle stays
    /// valid (`is_closed() == Some(true)`, ext readable) until the end of the iteration.
    pub fn close(&mut self, s: SocketId, code: i32, reason: Option<C::Reason>) {
        if !self.close_quietly(s) {
            return;
        }
        if let Some(cb) = self.callbacks_of(s).and_then(|c| c.on_close) {
            cb(self, s, code, reason);
        }
    }

    /// Aborts a pending connect without `on_close` (`us_socket_close_connecting`).
    pub fn close_connecting(&mut self, s: SocketId) {
        if self.open_socket(s).is_some_and(|e| e.connecting) {
            self.close_quietly(s);
        }
    }

    /// Unlinks, stops polling, closes the descriptor and queues the slot for release. Returns
    /// whether the socket was open.
    pub(crate) fn close_quietly(&mut self, s: SocketId) -> bool {
        let Some(e) = self.open_socket(s) else {
            return false;
        };
        let (fd, had_error) = (e.fd, e.connect_error.is_some());
        self.unlink_socket(s);
        self.low_priority_remove(s);
        // Closing also removes the descriptor from the poller (OsShim::close), so no
        // deregister: that would be one more syscall per connection.
        if let Some(fd) = fd {
            self.shim.close(fd);
        }
        if had_error {
            self.pending_connect_errors -= 1;
        }
        let head = self.closed_sockets;
        if let Some(e) = self.socket_mut(s) {
            e.closed = true;
            // The descriptor number may be reused by the OS at once: forget it.
            e.fd = None;
            e.connect_error = None;
            e.next = head;
            e.prev = NIL;
        }
        self.closed_sockets = s.index;
        self.keepalive -= 1;
        true
    }

    /// Sets the socket's one short timeout (`us_socket_timeout`): `on_timeout` fires no sooner
    /// than `seconds` from now and at most one sweep period later. 0 turns it off.
    pub fn timeout(&mut self, s: SocketId, seconds: u32) {
        let tick = self.deadline_tick(u64::from(seconds) * 1000);
        if let Some(e) = self.socket_mut(s).filter(|e| !e.closed) {
            e.timeout_tick = tick;
        }
    }

    /// Sets the socket's long timeout in minutes (`us_socket_long_timeout`); 0 turns it off.
    pub fn long_timeout(&mut self, s: SocketId, minutes: u32) {
        let tick = self.deadline_tick(u64::from(minutes) * 60_000);
        if let Some(e) = self.socket_mut(s).filter(|e| !e.closed) {
            e.long_timeout_tick = tick;
        }
    }

    /// The remote IP address as raw bytes (`us_socket_remote_address`): copies 4 or 16 bytes
    /// into `out` and returns how many; 0 on failure or for unix sockets.
    pub fn remote_address(&mut self, s: SocketId, out: &mut [u8]) -> usize {
        let Some(fd) = self.socket_fd(s) else {
            return 0;
        };
        let Ok(addr) = self.shim.remote_addr(fd) else {
            return 0;
        };
        let mut raw = [0u8; 16];
        let n = ip_bytes(&addr, &mut raw);
        if n > out.len() {
            return 0;
        }
        out[..n].copy_from_slice(&raw[..n]);
        n
    }

    /// The remote port (`us_socket_remote_port`), `None` on failure or for unix sockets.
    pub fn remote_port(&mut self, s: SocketId) -> Option<u16> {
        let fd = self.socket_fd(s)?;
        match self.shim.remote_addr(fd) {
            Ok(PeerAddr::Ip(a)) => Some(a.port()),
            _ => None,
        }
    }

    /// The local port (`us_socket_local_port`), `None` on failure or for unix sockets.
    pub fn local_port(&mut self, s: SocketId) -> Option<u16> {
        let fd = self.socket_fd(s)?;
        match self.shim.local_addr(fd) {
            Ok(PeerAddr::Ip(a)) => Some(a.port()),
            _ => None,
        }
    }

    /// The socket's current poll interest (`us_poll_events` on a socket).
    pub fn socket_interest(&self, s: SocketId) -> Option<Interest> {
        self.open_socket(s).map(|e| e.interest)
    }

    /// Sets the socket's poll interest directly (`us_poll_change` on a socket): pausing is
    /// [`Interest::NONE`], resuming is [`Interest::READABLE`].
    pub fn set_socket_poll_interest(&mut self, s: SocketId, interest: Interest) {
        if self.open_socket(s).is_some_and(|e| !e.connecting) {
            self.set_socket_interest(s, interest);
        }
    }

    /// Stops reading from the socket (its writable interest stays).
    pub fn pause(&mut self, s: SocketId) {
        if let Some(i) = self.socket_interest(s) {
            self.set_socket_poll_interest(s, i.without(Interest::READABLE));
        }
    }

    /// Resumes reading from the socket (unless the peer already sent FIN).
    pub fn resume(&mut self, s: SocketId) {
        if let Some(e) = self.open_socket(s) {
            if !e.peer_fin {
                let i = e.interest.with(Interest::READABLE);
                self.set_socket_poll_interest(s, i);
            }
        }
    }
}
