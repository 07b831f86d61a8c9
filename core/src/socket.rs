//! Connections: their slot, the read/write hot path and the per-socket API.

use core::ptr::NonNull;

use crate::close::CloseCause;
use crate::entry::{Flags, NIL};
use crate::event_loop::{Config, Cx, FdOf, SocketEntry};
use crate::handle::{token, ContextId, Kind, ListenId, SocketId};
use crate::layer::Layer as _;
use crate::recv::{RecvBuf, RECV_PADDING};
use crate::shim::{ErrorKind, Event, Interest, OsError, OsShim, PeerAddr, ShimError};

impl<C: Config> Cx<C> {
    pub(crate) fn socket(&self, s: SocketId) -> Option<&SocketEntry<C>> {
        self.sockets.get(s.index, s.generation)
    }
    pub(crate) fn socket_mut(&mut self, s: SocketId) -> Option<&mut SocketEntry<C>> {
        self.sockets.get_mut(s.index, s.generation)
    }
    fn open_socket(&self, s: SocketId) -> Option<&SocketEntry<C>> {
        self.socket(s).filter(|e| !e.closed())
    }
    /// Runs `f` with the shim and the descriptor of the open socket `s` (borrowing both at
    /// once: the descriptor stays in its slot).
    fn with_socket_fd<R>(
        &mut self,
        s: SocketId,
        f: impl FnOnce(&mut C::Shim, &FdOf<C>) -> R,
    ) -> Option<R> {
        let e = self.sockets.get(s.index, s.generation)?;
        if e.closed() {
            return None;
        }
        let fd = e.fd.as_ref()?;
        Some(f(&mut self.shim, fd))
    }

    /// Changes a socket's registered interest. A poller error fails the socket (it can no longer
    /// be served): it closes with that error once the running callback returns, so the error is
    /// never silently lost and `on_close` never runs inside the caller's own call.
    pub(crate) fn set_socket_interest(&mut self, s: SocketId, interest: Interest) {
        let Some(e) = self.sockets.get_mut(s.index, s.generation) else {
            return;
        };
        if e.closed() || e.interest == interest {
            return;
        }
        e.interest = interest;
        let Some(fd) = e.fd.as_ref() else { return };
        let t = token(Kind::Socket, s.index, s.generation);
        if let Err(err) = self.shim.modify(fd, t, interest) {
            crate::log::log_warn!("modify failed: {}", err.raw_os_error());
            self.fail_socket(s, OsError::from_shim(err));
        }
    }

    // ---- the hot path ------------------------------------------------------------------

    pub(crate) fn socket_event(&mut self, recv: &mut [u8], s: SocketId, ev: Event) {
        // A field borrow, not `open_socket`: the fast path below calls the shim with it held.
        let Some(e) = self.sockets.get(s.index, s.generation) else {
            return;
        };
        // The hot path: data on an established socket, nothing else going on (open, not
        // connecting, not low priority, no pending error: one compare).
        if ev.only_readable() && e.interest.is_readable() && !e.flags.any(Flags::NOT_PLAIN_READ) {
            // The first read right here, with the slot already in hand.
            let (layered, context, hint) = (e.layered(), e.context, C::data_hint(&e.ext));
            let Some(fd) = e.fd.as_ref() else { return };
            let result = self.shim.recv(fd, data_area(recv));
            if self.received(recv, s, (context, hint), layered, result) {
                self.read_more(recv, s, 1);
            }
            return;
        }
        if e.closed() {
            return;
        }
        let (layered, fin_pending) = (e.layered(), e.fin_pending());
        if e.connecting() {
            self.connect_event(s);
            return;
        }
        if e.pending_error().is_some() {
            // Failing: it closes as soon as this event is dispatched.
            return;
        }
        let interest = e.interest;
        if ev.error() || ev.hangup() {
            // Deliver what already arrived before acting on the hang-up: one read per event,
            // and the level-triggered poller reports the rest (then EOF or the error) again.
            if ev.readable() && interest.is_readable() {
                self.read(recv, s);
            } else {
                let cause = self.hangup_cause(s);
                self.close_with(s, cause);
            }
            return;
        }
        if ev.writable() && interest.is_writable() {
            if let Some(e) = self.socket_mut(s) {
                e.set_last_write_failed(false);
            }
            // A layer sends its own pending bytes first; the application's turn comes after.
            // Shut down with the layer's last bytes pending: send them, then FIN.
            let user = if fin_pending {
                if C::Layer::shutting_down(self, s) {
                    self.send_held_fin(s);
                }
                false
            } else {
                !layered || C::Layer::writable(self, s)
            };
            if user && self.open_socket(s).is_some() {
                if let Some(cb) = self.callbacks_of(s).and_then(|c| c.on_writable) {
                    cb(self, s);
                }
            }
            match self.open_socket(s) {
                Some(e) if !e.last_write_failed() => {
                    let i = e.interest.without(Interest::WRITABLE);
                    self.set_socket_interest(s, i);
                }
                Some(_) => {}
                None => return,
            }
        }
        let Some(e) = self.open_socket(s) else { return };
        if !ev.readable() || !e.interest.is_readable() {
            return;
        }
        if e.low_priority() && !self.take_low_priority_turn(s) {
            return;
        }
        self.read(recv, s);
    }

    /// Why an error or hang-up event ends the socket: its pending error, if the OS has one.
    fn hangup_cause(&mut self, s: SocketId) -> CloseCause<C::Reason> {
        match self.with_socket_fd(s, |shim, fd| shim.connect_result(fd)) {
            Some(Err(e)) if e.kind() != ErrorKind::WouldBlock => {
                CloseCause::Os(OsError::from_shim(e))
            }
            _ => CloseCause::HangUp,
        }
    }

    /// One `recv` per readable event (level-triggered: what is left is reported again), and
    /// another only while each read fills the whole buffer, up to the fairness cap.
    fn read(&mut self, recv: &mut [u8], s: SocketId) {
        self.read_more(recv, s, 0);
    }

    /// Reads on while each read fills the buffer, `done` reads of this event already made.
    #[inline(never)]
    fn read_more(&mut self, recv: &mut [u8], s: SocketId, done: u32) {
        for _ in done..self.settings.max_reads_per_event.max(1) {
            // Re-check before every read: a callback may have closed, paused or adopted it, or
            // a write inside it may have failed.
            let Some(e) = self.sockets.get(s.index, s.generation) else {
                return;
            };
            if e.flags.any(Flags::CLOSED.with(Flags::ERRORED)) || !e.interest.is_readable() {
                return;
            }
            let (layered, context, hint) = (e.layered(), e.context, C::data_hint(&e.ext));
            let Some(fd) = e.fd.as_ref() else { return };
            let result = self.shim.recv(fd, data_area(recv));
            if !self.received(recv, s, (context, hint), layered, result) {
                return;
            }
        }
    }

    /// Acts on one `recv`'s outcome: data to the layer or `on_data`, 0 to `peer_fin`, an error
    /// closes. Whether the buffer came back full (read again).
    #[inline(always)]
    fn received(
        &mut self,
        recv: &mut [u8],
        s: SocketId,
        (context, hint): (ContextId, Option<NonNull<()>>),
        layered: bool,
        result: Result<usize, <C::Shim as OsShim>::Error>,
    ) -> bool {
        match result {
            Ok(0) => {
                self.peer_fin(s);
                false
            }
            Ok(n) => {
                if layered {
                    C::Layer::received(self, s, &recv[RECV_PADDING..RECV_PADDING + n]);
                } else if let Some(cb) = match C::SHARED_CALLBACKS {
                    Some(shared) => shared.on_data,
                    None => self
                        .contexts
                        .get(context.index, context.generation)
                        .and_then(|c| c.callbacks.on_data),
                } {
                    let mut buf = RecvBuf::new(recv, n, hint);
                    cb(self, s, &mut buf);
                }
                n >= self.recv_capacity
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => false,
            Err(e) => {
                self.close_with(s, CloseCause::Os(OsError::from_shim(e)));
                false
            }
        }
    }

    /// EOF: after our own shutdown it closes; otherwise it half-closes and tells `on_end`.
    fn peer_fin(&mut self, s: SocketId) {
        let Some(e) = self.socket_mut(s) else { return };
        if e.layered() {
            // A layered (TLS) socket closes on the peer's FIN: no on_end, as in the C library.
            self.close_with(s, CloseCause::HangUp);
            return;
        }
        if e.shut_down() {
            self.close_with(s, CloseCause::Finished);
            return;
        }
        e.set_peer_fin(true);
        let i = e.interest.without(Interest::READABLE);
        self.set_socket_interest(s, i);
        if self.open_socket(s).is_none() {
            return;
        }
        if let Some(cb) = self.callbacks_of(s).and_then(|c| c.on_end) {
            cb(self, s);
        }
    }

    /// Acts on a send's outcome and returns the bytes taken: a short write (would-block
    /// included) arms writable interest; a hard error takes nothing, arms nothing and marks the
    /// socket failing, to be closed when the running callback returns.
    #[inline(always)]
    fn wrote(
        &mut self,
        s: SocketId,
        result: Result<usize, <C::Shim as OsShim>::Error>,
        wanted: usize,
    ) -> usize {
        let written = match result {
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => 0,
            Err(e) => {
                self.fail_socket(s, OsError::from_shim(e));
                return 0;
            }
        };
        if written < wanted {
            if let Some(e) = self.socket_mut(s) {
                e.set_last_write_failed(true);
                let i = e.interest.with(Interest::WRITABLE);
                self.set_socket_interest(s, i);
            }
        }
        written
    }

    /// Sends through `send` on the socket's descriptor if it may be written to now, in the one
    /// arena lookup of a write: a layered socket is handed back (unless `past_layer`) for its
    /// layer to write instead.
    #[inline]
    fn send_with<R>(
        &mut self,
        s: SocketId,
        past_layer: bool,
        send: impl FnOnce(&mut C::Shim, &FdOf<C>) -> R,
    ) -> Outlet<R> {
        let Some(e) = self.sockets.get(s.index, s.generation) else {
            return Outlet::Refused;
        };
        // The hot path: an open, established, plain socket, not shut down nor failing.
        if !e.flags.any(Flags::NOT_PLAIN_WRITE) {
            return match e.fd.as_ref() {
                Some(fd) => Outlet::Kernel(send(&mut self.shim, fd)),
                None => Outlet::Refused,
            };
        }
        if e.layered() && !e.closed() && !past_layer {
            return Outlet::Layer;
        }
        // After shutdown only a layer still sending its last bytes writes (FIN waits for it).
        let shut = e.shut_down() && !e.fin_pending();
        if e.closed() || shut || e.connecting() || e.pending_error().is_some() {
            return Outlet::Refused;
        }
        match e.fd.as_ref() {
            Some(fd) => Outlet::Kernel(send(&mut self.shim, fd)),
            None => Outlet::Refused,
        }
    }

    // ---- socket API ----------------------------------------------------------------------

    /// Writes as much of `data` as the OS takes now and returns how many bytes that was
    /// (`us_socket_write`); on a layered (TLS) socket, how many the layer accepted (see
    /// [`Layer::write`](crate::Layer::write)). There is no write queue: **the caller keeps what was not taken**
    /// and writes it from `on_writable`, which a short write arms.
    ///
    /// 0 when closed, shut down, connecting or would-block. A hard error (a reset, a broken
    /// pipe) is not backpressure: it returns 0, arms nothing, and the socket closes with
    /// [`CloseCause::Os`] once the running callback returns. `more` hints that more data
    /// follows at once (`MSG_MORE`).
    ///
    /// ```ignore
    /// let n = cx.write(s, &out, false);
    /// if n < out.len() {
    ///     pending.extend_from_slice(&out[n..]); // sent from on_writable
    /// }
    /// ```
    #[must_use = "a short write leaves the rest with the caller, to send from on_writable"]
    pub fn write(&mut self, s: SocketId, data: &[u8], more: bool) -> usize {
        self.write_via(s, data, more, false)
    }

    /// [`write`](Self::write) straight to the kernel, past the socket's layer: for a
    /// [`Layer`](crate::Layer) sending its own bytes. Never call it on a layered socket from
    /// application code (the bytes would bypass TLS).
    #[must_use = "a short write leaves the rest with the caller, to send from on_writable"]
    pub fn write_raw(&mut self, s: SocketId, data: &[u8], more: bool) -> usize {
        self.write_via(s, data, more, true)
    }

    /// [`write`](Self::write) (`past_layer` false) or [`write_raw`](Self::write_raw).
    #[inline(always)]
    fn write_via(&mut self, s: SocketId, data: &[u8], more: bool, past_layer: bool) -> usize {
        // The hot path inline: a whole write, no hint, to an open plain socket. Everything
        // else (layer, refusal, short write, error, the hint) is handled out of line, so the
        // caller's frame stays small.
        if let Some(e) = self.sockets.get(s.index, s.generation) {
            if !more && !data.is_empty() && !e.flags.any(Flags::NOT_PLAIN_WRITE) {
                if let Some(fd) = e.fd.as_ref() {
                    let result = self.shim.send(fd, data, false);
                    if matches!(result, Ok(n) if n == data.len()) {
                        return data.len();
                    }
                    return self.wrote_out_of_line(s, result, data.len());
                }
            }
        }
        self.write_out_of_line(s, data, more, past_layer)
    }

    /// [`wrote`](Self::wrote), out of line: a short write or an error.
    #[inline(never)]
    fn wrote_out_of_line(
        &mut self,
        s: SocketId,
        result: Result<usize, <C::Shim as OsShim>::Error>,
        wanted: usize,
    ) -> usize {
        self.wrote(s, result, wanted)
    }

    /// [`write_via`](Self::write_via) off its hot path.
    #[inline(never)]
    fn write_out_of_line(
        &mut self,
        s: SocketId,
        data: &[u8],
        more: bool,
        past_layer: bool,
    ) -> usize {
        if data.is_empty() {
            return 0;
        }
        let result = match self.send_with(s, past_layer, |shim, fd| shim.send(fd, data, more)) {
            Outlet::Kernel(result) => result,
            Outlet::Layer => return C::Layer::write(self, s, data, more),
            Outlet::Refused => return 0,
        };
        if more && result.is_ok() {
            if let Some(e) = self.socket_mut(s) {
                e.set_corked(true);
            }
        }
        self.wrote(s, result, data.len())
    }

    /// Writes `header` then `payload` in one gathered write (`us_socket_write2`) and returns the
    /// bytes taken from both together; same rules as [`write`](Self::write).
    #[must_use = "a short write leaves the rest with the caller, to send from on_writable"]
    pub fn write2(&mut self, s: SocketId, header: &[u8], payload: &[u8]) -> usize {
        self.write2_via(s, header, payload, false)
    }

    /// [`write2`](Self::write2) straight to the kernel, past the socket's layer (see
    /// [`write_raw`](Self::write_raw)).
    #[must_use = "a short write leaves the rest with the caller, to send from on_writable"]
    pub fn write2_raw(&mut self, s: SocketId, header: &[u8], payload: &[u8]) -> usize {
        self.write2_via(s, header, payload, true)
    }

    /// [`write2`](Self::write2) (`past_layer` false) or [`write2_raw`](Self::write2_raw).
    fn write2_via(&mut self, s: SocketId, header: &[u8], payload: &[u8], past: bool) -> usize {
        let wanted = header.len() + payload.len();
        if wanted == 0 {
            return 0;
        }
        let send = |shim: &mut C::Shim, fd: &FdOf<C>| shim.send2(fd, header, payload);
        let result = match self.send_with(s, past, send) {
            Outlet::Kernel(result) => result,
            Outlet::Layer => return C::Layer::write2(self, s, header, payload),
            Outlet::Refused => return 0,
        };
        self.wrote(s, result, wanted)
    }

    /// Withdraws a "more is coming" hold (`us_socket_flush`): a no-op unless `more` was used,
    /// and when shut down.
    pub fn flush(&mut self, s: SocketId) {
        let Some(e) = self.sockets.get_mut(s.index, s.generation) else {
            return;
        };
        if e.closed() || e.shut_down() || e.connecting() || !e.corked() {
            return;
        }
        e.set_corked(false);
        if let Some(fd) = e.fd.as_ref() {
            // A failed flush loses nothing: the held bytes go out with the next send.
            let _ = self.shim.flush(fd);
        }
    }

    /// Sends FIN (`us_socket_shutdown`). Idempotent. If the peer had already sent FIN the
    /// connection is finished and closes now ([`CloseCause::Finished`]).
    pub fn shutdown(&mut self, s: SocketId) {
        let Some(e) = self.open_socket(s) else { return };
        if e.shut_down() || e.connecting() {
            return;
        }
        if e.layered() && !C::Layer::shutting_down(self, s) {
            // The layer's last bytes wait for the kernel: FIN follows them (writable path).
            let Some(e) = self.socket_mut(s) else { return };
            e.set_shut_down(true);
            e.set_fin_pending(true);
            e.set_last_write_failed(true);
            let i = e.interest.with(Interest::WRITABLE);
            self.set_socket_interest(s, i);
            return;
        }
        let Some(e) = self.open_socket(s) else { return };
        let (peer_fin, interest) = (e.peer_fin(), e.interest);
        if let Some(e) = self.socket_mut(s) {
            e.set_shut_down(true);
            e.set_last_write_failed(false);
        }
        // A failed shutdown (the connection is already gone) shows up as EOF or an error.
        let _ = self.with_socket_fd(s, |shim, fd| shim.shutdown_write(fd));
        if peer_fin {
            self.close_with(s, CloseCause::Finished);
        } else {
            self.set_socket_interest(s, interest.without(Interest::WRITABLE));
        }
    }

    /// Sends the FIN a layer held back (see [`Layer::shutting_down`](crate::Layer::shutting_down)).
    fn send_held_fin(&mut self, s: SocketId) {
        let Some(e) = self.socket_mut(s) else { return };
        e.set_fin_pending(false);
        e.set_last_write_failed(false);
        let peer_fin = e.peer_fin();
        // A failed shutdown (the connection is already gone) shows up as EOF or an error.
        let _ = self.with_socket_fd(s, |shim, fd| shim.shutdown_write(fd));
        if peer_fin {
            self.close_with(s, CloseCause::Finished);
        }
    }

    /// Whether the socket's bytes go through the config's [`Layer`](crate::Layer) (a TLS
    /// socket); `false` for a plain, closed or unknown one.
    pub fn is_layered(&self, s: SocketId) -> bool {
        self.open_socket(s).is_some_and(|e| e.layered())
    }

    /// Runs the socket's `on_data` with `data`: for a [`Layer`](crate::Layer) handing over
    /// what it made of the received bytes (plaintext). Nothing for a closed socket.
    pub fn deliver_data(&mut self, s: SocketId, data: &mut RecvBuf<'_>) {
        if self.open_socket(s).is_none() {
            return;
        }
        // A hint belongs to the socket whose read made the buffer: none for another one.
        data.clear_hint();
        if let Some(cb) = self.callbacks_of(s).and_then(|c| c.on_data) {
            cb(self, s, data);
        }
    }

    /// The layer state of socket `s` (see [`Layer::Socket`](crate::Layer::Socket)), while its
    /// slot exists (until the end of the iteration it closed in).
    pub fn layer_socket(&self, s: SocketId) -> Option<&crate::LayerSocket<C>> {
        self.socket(s).map(|e| &e.layer)
    }

    /// [`layer_socket`](Self::layer_socket), mutable.
    pub fn layer_socket_mut(&mut self, s: SocketId) -> Option<&mut crate::LayerSocket<C>> {
        self.socket_mut(s).map(|e| &mut e.layer)
    }

    /// Asks for `on_writable` (through the layer, for a layered socket) once the kernel takes
    /// bytes: for a layer that refused application bytes without a short write of its own.
    pub fn request_writable(&mut self, s: SocketId) {
        let Some(e) = self.open_socket(s) else { return };
        if e.shut_down() || e.connecting() {
            return;
        }
        let i = e.interest.with(Interest::WRITABLE);
        if let Some(e) = self.socket_mut(s) {
            e.set_last_write_failed(true);
        }
        self.set_socket_interest(s, i);
    }

    /// Shuts down the read side (`us_socket_shutdown_read`): the next iteration sees EOF.
    pub fn shutdown_read(&mut self, s: SocketId) {
        let _ = self.with_socket_fd(s, |shim, fd| shim.shutdown_read(fd));
    }

    /// Whether the write side is shut down (`us_socket_is_shut_down`). `None` for a released handle.
    pub fn is_shut_down(&self, s: SocketId) -> Option<bool> {
        self.socket(s).map(|e| e.shut_down())
    }

    /// Whether the socket is closed (`us_socket_is_closed`): true from `close` until the end of
    /// the iteration, then the handle is released and this returns `None`.
    pub fn is_closed(&self, s: SocketId) -> Option<bool> {
        self.socket(s).map(|e| e.closed())
    }

    /// Whether the connection is established (`us_socket_is_established`): false while a client
    /// connect is pending.
    pub fn is_established(&self, s: SocketId) -> Option<bool> {
        self.socket(s)
            .map(|e| !e.connecting() && !e.closed() && e.fd.is_some())
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
        self.socket(s).and_then(|e| e.listener())
    }
    /// The socket's descriptor, borrowed from the loop that owns it (`us_poll_fd` on a socket,
    /// `us_socket_get_native_handle`). `None` once closed.
    pub fn socket_fd(&self, s: SocketId) -> Option<&FdOf<C>> {
        self.open_socket(s).and_then(|e| e.fd.as_ref())
    }

    /// Closes the socket now (`us_socket_close`): stops polling, closes the descriptor and calls
    /// `on_close` synchronously with [`CloseCause::User`]`{ code, reason }`. A no-op when
    /// already closed. The handle stays valid (`is_closed() == Some(true)`, ext readable) until
    /// the end of the iteration.
    pub fn close(&mut self, s: SocketId, code: i32, reason: Option<C::Reason>) {
        self.close_with(s, CloseCause::User { code, reason });
    }

    /// Closes the socket and tells `on_close` why.
    pub(crate) fn close_with(&mut self, s: SocketId, cause: CloseCause<C::Reason>) {
        if !self.close_quietly(s) {
            return;
        }
        if let Some(cb) = self.callbacks_of(s).and_then(|c| c.on_close) {
            cb(self, s, cause);
        }
    }

    /// Aborts a pending connect without `on_close` (`us_socket_close_connecting`).
    pub fn close_connecting(&mut self, s: SocketId) {
        if self.open_socket(s).is_some_and(|e| e.connecting()) {
            self.close_quietly(s);
        }
    }

    /// Unlinks, stops polling, closes the descriptor and queues the slot for release. Returns
    /// whether the socket was open.
    pub(crate) fn close_quietly(&mut self, s: SocketId) -> bool {
        let Some(e) = self.open_socket(s) else {
            return false;
        };
        let had_connect_error = e.connecting() && e.pending_error().is_some();
        self.unlink_socket(s);
        self.low_priority_remove(s);
        if had_connect_error {
            self.pending_connect_errors -= 1;
        }
        let head = self.closed_sockets;
        let Some(e) = self.socket_mut(s) else {
            return false;
        };
        e.set_closed(true);
        e.set_pending_error(None);
        e.next = head;
        e.prev = NIL;
        let fd = e.fd.take();
        self.closed_sockets = s.index;
        self.add_chore(crate::chores::CLOSED);
        self.keepalive -= 1;
        // Closing also removes the descriptor from the poller (OsShim::close), so no
        // deregister: that would be one more syscall per connection.
        if let Some(fd) = fd {
            self.shim.close(fd);
        }
        true
    }

    /// Sets the socket's one short timeout (`us_socket_timeout`): `on_timeout` fires no sooner
    /// than `seconds` after "now" (loop time inside an iteration, see below) and at most one
    /// sweep period later. 0 turns it off. Set inside
    /// `on_timeout` (or anything the sweep calls), it counts from the sweep tick that fired, so
    /// re-arming there with n fires every n seconds.
    ///
    /// "Now" is loop time ([`now_ms`](Self::now_ms)) inside an iteration, so re-arming per
    /// request reads no clock: a callback that blocks for a long time before setting a timeout
    /// makes it fire that much sooner after the call (never sooner after the iteration's wait
    /// returned). Outside an iteration it is the clock.
    pub fn timeout(&mut self, s: SocketId, seconds: u32) {
        let at = self.deadline_at(u64::from(seconds) * 1000);
        if let Some(e) = self.socket_mut(s).filter(|e| !e.closed()) {
            e.timeout_at = at;
        }
    }

    /// Sets the socket's long timeout in minutes (`us_socket_long_timeout`); 0 turns it off.
    /// Like [`timeout`](Self::timeout): never early (from loop time inside an iteration), at
    /// most one sweep period late, and counted
    /// from the firing tick when set during the sweep.
    pub fn long_timeout(&mut self, s: SocketId, minutes: u32) {
        let at = self.deadline_at(u64::from(minutes) * 60_000);
        if let Some(e) = self.socket_mut(s).filter(|e| !e.closed()) {
            e.long_timeout_at = at;
        }
    }

    /// The remote IP address as raw bytes (`us_socket_remote_address`): copies 4 or 16 bytes
    /// into `out` and returns how many; 0 on failure or for unix sockets.
    #[must_use = "only the first n bytes of `out` are the address"]
    pub fn remote_address(&mut self, s: SocketId, out: &mut [u8]) -> usize {
        let Some(Ok(addr)) = self.with_socket_fd(s, |shim, fd| shim.remote_addr(fd)) else {
            return 0;
        };
        let mut raw = [0u8; 16];
        let n = addr.ip_bytes(&mut raw);
        if n > out.len() {
            return 0;
        }
        out[..n].copy_from_slice(&raw[..n]);
        n
    }

    /// The remote port (`us_socket_remote_port`), `None` on failure or for unix sockets.
    pub fn remote_port(&mut self, s: SocketId) -> Option<u16> {
        match self.with_socket_fd(s, |shim, fd| shim.remote_addr(fd))? {
            Ok(PeerAddr::Ip(a)) => Some(a.port()),
            _ => None,
        }
    }

    /// The local port (`us_socket_local_port`), `None` on failure or for unix sockets.
    pub fn local_port(&mut self, s: SocketId) -> Option<u16> {
        match self.with_socket_fd(s, |shim, fd| shim.local_addr(fd))? {
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
        if self.open_socket(s).is_some_and(|e| !e.connecting()) {
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
            if !e.peer_fin() {
                let i = e.interest.with(Interest::READABLE);
                self.set_socket_poll_interest(s, i);
            }
        }
    }
}

/// Where a write goes (see `Cx::send_with`).
enum Outlet<R> {
    /// The kernel was asked: its result.
    Kernel(R),
    /// A layered socket: its layer writes.
    Layer,
    /// Nothing may be written now (closed, shut down, connecting, failing).
    Refused,
}

/// The data area of the loop's receive buffer: all of it but the padding on each side. The
/// buffer is exactly the data area and both paddings (`Loop::new` sizes the area from it), so
/// this needs no capacity from the loop, and the bounds it checks are the buffer's own length.
#[inline(always)]
fn data_area(recv: &mut [u8]) -> &mut [u8] {
    let end = recv.len().saturating_sub(RECV_PADDING);
    recv.get_mut(RECV_PADDING..end).unwrap_or_default()
}
