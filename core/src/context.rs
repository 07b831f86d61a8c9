//! Socket contexts: groups of sockets sharing callbacks; connect, adopt and context close.

use crate::close::CloseCause;
use crate::entry::{Socket, NEVER, NIL};
use crate::error::{AdoptError, ConnectError, ContextError, WithFd};
use crate::event_loop::{Config, ContextCallbacks, ContextEntry, Cx, FdOf, SocketEntry};
use crate::handle::{token, ContextId, Kind, ListenId, SocketId};
use crate::layer::Layer as _;
use crate::shim::{ConnectTarget, ErrorKind, Interest, OsError, OsShim, ShimError};

impl<C: Config> Cx<C> {
    pub(crate) fn callbacks_of(&self, s: SocketId) -> Option<ContextCallbacks<C>> {
        if let Some(shared) = C::SHARED_CALLBACKS {
            return Some(shared);
        }
        let ctx = self.socket(s)?.context;
        self.contexts
            .get(ctx.index, ctx.generation)
            .map(|c| c.callbacks)
    }

    fn context_entry(&self, c: ContextId) -> Option<&ContextEntry<C>> {
        self.contexts.get(c.index, c.generation)
    }

    /// Creates a socket context (`us_create_socket_context`).
    pub fn context_create(
        &mut self,
        ext: C::ContextExt,
        callbacks: ContextCallbacks<C>,
    ) -> Result<ContextId, ContextError> {
        self.new_context(ext, callbacks, None)
    }

    /// The layer state of context `c` (see [`Layer::Context`](crate::Layer::Context)).
    pub fn layer_context(&self, c: ContextId) -> Option<&crate::LayerContext<C>> {
        self.context_entry(c).map(|e| &e.layer)
    }

    /// Sets the layer state of context `c` (a TLS configuration), for the sockets it opens from
    /// now on and for child contexts created later. Returns whether `c` exists.
    pub fn set_layer_context(&mut self, c: ContextId, state: crate::LayerContext<C>) -> bool {
        match self.contexts.get_mut(c.index, c.generation) {
            Some(e) => {
                e.layer = state;
                true
            }
            None => false,
        }
    }

    /// Creates a child context (`us_create_child_socket_context`): its own callbacks and ext,
    /// meant as an adoption target. Its callbacks start unset.
    pub fn context_create_child(
        &mut self,
        parent: ContextId,
        ext: C::ContextExt,
    ) -> Result<ContextId, ContextError> {
        if self.context_entry(parent).is_none() {
            return Err(ContextError::InvalidContext);
        }
        self.new_context(ext, ContextCallbacks::default(), Some(parent))
    }

    fn new_context(
        &mut self,
        ext: C::ContextExt,
        callbacks: ContextCallbacks<C>,
        parent: Option<ContextId>,
    ) -> Result<ContextId, ContextError> {
        // A child shares its parent's layer state (a TLS context's configuration).
        let layer = parent
            .and_then(|p| self.context_entry(p))
            .map(|p| p.layer.clone())
            .unwrap_or_default();
        let entry = ContextEntry {
            ext,
            callbacks,
            layer,
            parent,
            sockets: NIL,
            listeners: NIL,
        };
        let (index, generation) = self
            .contexts
            .insert(entry)
            .map_err(|_| ContextError::Capacity)?;
        Ok(ContextId::new(index, generation))
    }

    /// Frees a context (`us_socket_context_free`). Its sockets and listen sockets must be gone
    /// (closed) first; otherwise it is refused with [`ContextError::Busy`].
    pub fn context_free(&mut self, c: ContextId) -> Result<C::ContextExt, ContextError> {
        let e = self.context_entry(c).ok_or(ContextError::InvalidContext)?;
        if e.sockets != NIL || e.listeners != NIL {
            return Err(ContextError::Busy);
        }
        self.contexts
            .remove(c.index, c.generation)
            .map(|e| e.ext)
            .ok_or(ContextError::InvalidContext)
    }

    /// Context user data (`us_socket_context_ext`).
    pub fn context_ext(&self, c: ContextId) -> Option<&C::ContextExt> {
        self.context_entry(c).map(|e| &e.ext)
    }
    /// Context user data, mutably.
    pub fn context_ext_mut(&mut self, c: ContextId) -> Option<&mut C::ContextExt> {
        self.contexts
            .get_mut(c.index, c.generation)
            .map(|e| &mut e.ext)
    }
    /// The context's callbacks, to set them (`us_socket_context_on_*`).
    pub fn context_callbacks_mut(&mut self, c: ContextId) -> Option<&mut ContextCallbacks<C>> {
        self.contexts
            .get_mut(c.index, c.generation)
            .map(|e| &mut e.callbacks)
    }
    /// The parent of a child context.
    pub fn context_parent(&self, c: ContextId) -> Option<ContextId> {
        self.context_entry(c).and_then(|e| e.parent)
    }
    /// The short-tick counter (0–239) the C library's timeouts count in
    /// (`us_socket_context_timestamp`).
    pub fn context_timestamp(&self, c: ContextId) -> Option<u16> {
        self.context_entry(c).map(|_| (self.tick % 240) as u16)
    }
    /// The first socket of the context, if any; with [`next_socket`](Self::next_socket) it walks
    /// the context's sockets.
    pub fn first_socket(&self, c: ContextId) -> Option<SocketId> {
        let head = self.context_entry(c)?.sockets;
        self.socket_at(head)
    }
    /// The socket after `s` in its context.
    pub fn next_socket(&self, s: SocketId) -> Option<SocketId> {
        let e = self.socket(s).filter(|e| !e.closed())?;
        self.socket_at(e.next)
    }
    fn socket_at(&self, index: u32) -> Option<SocketId> {
        self.sockets.at(index).map(|(g, _)| SocketId::new(index, g))
    }

    /// Closes every listen socket of the context, then every socket, each exactly once, even
    /// when an `on_close` closes others (`us_socket_context_close`); `on_close` gets
    /// [`CloseCause::ContextClosed`]. The context stays valid.
    pub fn context_close(&mut self, c: ContextId) {
        while let Some(l) = self
            .context_entry(c)
            .map(|e| e.listeners)
            .filter(|&h| h != NIL)
        {
            match self.listeners.at(l) {
                Some((g, _)) => self.listen_close(ListenId::new(l, g)),
                None => break,
            }
        }
        // Close every socket of the context that existed when the close began, taking the list
        // head again after every close rather than walking a snapshot: on_close may close,
        // adopt away or adopt in any socket, and may even close contexts itself. Sockets created
        // meanwhile (a reconnect in on_close) are born in a later close epoch and stay open, as
        // in the C library, so a reconnecting on_close cannot loop; each round closes one older
        // socket.
        let limit = self.begin_close_epoch();
        self.closes_running += 1;
        loop {
            let mut cur = self.context_entry(c).map_or(NIL, |e| e.sockets);
            let mut older = None;
            while let Some((g, e)) = self.sockets.at(cur) {
                if e.born < limit {
                    older = Some(SocketId::new(cur, g));
                    break;
                }
                cur = e.next;
            }
            match older {
                Some(s) => self.close_with(s, CloseCause::ContextClosed),
                None => break,
            }
        }
        self.closes_running -= 1;
    }

    /// Sets the close epoch, before any socket is made (core's tests: closes near the epoch's
    /// reset). Not part of the API.
    #[cfg(feature = "__test_hooks")]
    #[doc(hidden)]
    pub fn __set_close_epoch(&mut self, epoch: u32) {
        self.close_epoch = epoch;
    }

    /// Starts a close epoch for a context close beginning now and returns it: every socket
    /// born before (stamped with an earlier epoch) is older than this close, every socket born
    /// from now on is not.
    ///
    /// Only the order of births against the starts of context closes matters, so a socket
    /// keeps the epoch it was born in (4 bytes) rather than a creation number (8: a 32-bit one
    /// would wrap between sockets). The epoch counts context closes; before it could wrap, at
    /// the start of a close with none running, every live socket is re-stamped 0: with no
    /// close running every live socket is older than any close to come, which is all the
    /// stamps say.
    fn begin_close_epoch(&mut self) -> u32 {
        if self.closes_running == 0 && self.close_epoch >= 1 << 31 {
            for index in 0..self.sockets.slots() {
                if let Some(e) = self.sockets_at_mut(index) {
                    e.born = 0;
                }
            }
            self.close_epoch = 0;
        }
        // Past the reset, what counts up is closes started while another runs (from its
        // callbacks): any context, the one closing included, can be closed again that way,
        // but 2^31 of them take 2^31 calls inside one close. Even then, saturating keeps any
        // close from closing a socket born after it began, so a reconnecting on_close still
        // cannot loop; only, closes from then on share the epoch, and one of them may spare a
        // socket born after an earlier one began.
        self.close_epoch = self.close_epoch.saturating_add(1);
        self.close_epoch
    }

    pub(crate) fn link_socket(&mut self, s: SocketId, c: ContextId) {
        let Some(head) = self.context_entry(c).map(|e| e.sockets) else {
            return;
        };
        if let Some(e) = self.socket_mut(s) {
            e.context = c;
            e.prev = NIL;
            e.next = head;
        }
        if let Some(h) = self.sockets_at_mut(head) {
            h.prev = s.index;
        }
        if let Some(ctx) = self.contexts.get_mut(c.index, c.generation) {
            ctx.sockets = s.index;
        }
    }

    fn sockets_at_mut(&mut self, index: u32) -> Option<&mut SocketEntry<C>> {
        let (g, _) = self.sockets.at(index)?;
        self.sockets.get_mut(index, g)
    }

    pub(crate) fn unlink_socket(&mut self, s: SocketId) {
        let Some(e) = self.socket(s) else { return };
        let (prev, next, c) = (e.prev, e.next, e.context);
        if let Some(p) = self.sockets_at_mut(prev) {
            p.next = next;
        } else if let Some(ctx) = self.contexts.get_mut(c.index, c.generation) {
            if ctx.sockets == s.index {
                ctx.sockets = next;
            }
        }
        if let Some(n) = self.sockets_at_mut(next) {
            n.prev = prev;
        }
        if let Some(e) = self.socket_mut(s) {
            e.prev = NIL;
            e.next = NIL;
        }
    }

    /// Starts a non-blocking connect (`us_socket_context_connect` and `_connect_unix`).
    ///
    /// Fails only for a bad context or exhausted capacity. Every network or name failure, an
    /// immediate refusal included, arrives later through `on_connect_error`; success through
    /// `on_open(is_client = true)`.
    pub fn connect(
        &mut self,
        c: ContextId,
        target: ConnectTarget<'_>,
        ext: C::SocketExt,
    ) -> Result<SocketId, ConnectError> {
        if self.context_entry(c).is_none() {
            return Err(ConnectError::InvalidContext);
        }
        let mut entry = Socket::new(None, c, ext);
        entry.born = self.close_epoch;
        let (index, generation) = self
            .sockets
            .insert(entry)
            .map_err(|_| ConnectError::Capacity)?;
        let s = SocketId::new(index, generation);
        self.keepalive += 1;
        self.link_socket(s, c);
        let result =
            match C::Layer::connecting(self, s, &target).map(|()| self.shim.connect(target)) {
                Err(layer) => Err(layer),
                Ok(Err(e)) => Err(OsError::from_shim(e)),
                Ok(Ok(fd)) => {
                    let t = token(Kind::Socket, index, generation);
                    match self.shim.register(&fd, t, Interest::WRITABLE) {
                        Ok(()) => Ok(fd),
                        Err(e) => {
                            self.shim.close(fd);
                            Err(OsError::from_shim(e))
                        }
                    }
                }
            };
        if let Some(e) = self.socket_mut(s) {
            e.set_connecting(true);
            e.interest = Interest::WRITABLE;
            match result {
                Ok(fd) => e.fd = Some(fd),
                Err(err) => {
                    e.set_pending_error(Some(err));
                    self.pending_connect_errors += 1;
                    self.add_chore(crate::chores::CONNECT_ERRORS);
                }
            }
        }
        Ok(s)
    }

    /// A connecting socket became writable or errored: read the outcome.
    pub(crate) fn connect_event(&mut self, s: SocketId) {
        let Some(fd) = self
            .sockets
            .get(s.index, s.generation)
            .and_then(|e| e.fd.as_ref())
        else {
            return;
        };
        match self.shim.connect_result(fd) {
            Ok(()) => {
                if let Some(e) = self.socket_mut(s) {
                    e.set_connecting(false);
                    e.timeout_at = NEVER;
                    e.long_timeout_at = NEVER;
                }
                self.set_socket_interest(s, Interest::READABLE);
                self.layer_opened(s, true);
                if self.is_closed(s) == Some(false) {
                    if let Some(cb) = self.callbacks_of(s).and_then(|c| c.on_open) {
                        cb(self, s, true, &[]);
                    }
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) => self.connect_failed(s, OsError::from_shim(e)),
        }
    }

    /// Reports a failed connect, then releases the socket without `on_close`.
    fn connect_failed(&mut self, s: SocketId, err: OsError) {
        // Out of its context's list first: a `context_close` inside the callback must not
        // give this socket an `on_close` it is promised not to get.
        self.unlink_socket(s);
        if let Some(cb) = self.callbacks_of(s).and_then(|c| c.on_connect_error) {
            cb(self, s, err);
        }
        self.close_quietly(s);
    }

    /// Runs `on_connect_error` for connects that failed before reaching the OS poller.
    pub(crate) fn report_failed_connects(&mut self) {
        let mut index = 0;
        while self.pending_connect_errors > 0 && index < self.sockets.slots() {
            let found = self.sockets.at(index).and_then(|(g, e)| {
                e.pending_error()
                    .filter(|_| e.connecting() && !e.closed())
                    .map(|err| (g, err))
            });
            if let Some((g, err)) = found {
                let s = SocketId::new(index, g);
                if let Some(e) = self.socket_mut(s) {
                    e.set_pending_error(None);
                }
                self.pending_connect_errors -= 1;
                self.connect_failed(s, err);
                self.close_failed();
            }
            index += 1;
        }
    }

    /// Moves an open socket to another context (`us_socket_context_adopt_socket`), keeping its
    /// ext. Timeouts are reset. A closed socket is returned unchanged. The handle stays the same.
    pub fn adopt(&mut self, s: SocketId, target: ContextId) -> Option<SocketId> {
        self.adopt_with(s, target, |_| {})
    }

    /// Like [`adopt`](Self::adopt), transforming the ext on the way (e.g. from an HTTP state to
    /// a WebSocket state).
    pub fn adopt_with(
        &mut self,
        s: SocketId,
        target: ContextId,
        transform: impl FnOnce(&mut C::SocketExt),
    ) -> Option<SocketId> {
        let e = self.socket(s)?;
        if e.closed() {
            return Some(s);
        }
        self.context_entry(target)?;
        self.unlink_socket(s);
        self.link_socket(s, target);
        if let Some(e) = self.socket_mut(s) {
            e.timeout_at = NEVER;
            e.long_timeout_at = NEVER;
            transform(&mut e.ext);
        }
        Some(s)
    }

    /// Wraps a descriptor accepted elsewhere (`us_adopt_accepted_socket`), taking ownership of
    /// it: prepares it, starts reading and calls `on_open(is_client = false, ip)`
    /// synchronously. On failure the descriptor comes back in the error, still open.
    pub fn adopt_accepted(
        &mut self,
        c: ContextId,
        fd: FdOf<C>,
        ext: C::SocketExt,
        ip: &[u8],
    ) -> Result<SocketId, WithFd<AdoptError, FdOf<C>>> {
        if self.context_entry(c).is_none() {
            return Err(WithFd {
                error: AdoptError::InvalidContext,
                fd,
            });
        }
        if let Err(e) = self.shim.adopt(&fd) {
            return Err(WithFd {
                error: AdoptError::Os(OsError::from_shim(e)),
                fd,
            });
        }
        self.open_accepted(c, fd, ext, None, ip)
    }

    /// Registers an accepted descriptor as a socket of `c` and calls `on_open`; on failure the
    /// descriptor comes back.
    pub(crate) fn open_accepted(
        &mut self,
        c: ContextId,
        fd: FdOf<C>,
        ext: C::SocketExt,
        listener: Option<ListenId>,
        ip: &[u8],
    ) -> Result<SocketId, WithFd<AdoptError, FdOf<C>>> {
        let mut entry = Socket::new(None, c, ext);
        entry.set_listener(listener);
        entry.interest = Interest::READABLE;
        let Ok((index, generation)) = self.sockets.insert(entry) else {
            return Err(WithFd {
                error: AdoptError::Capacity,
                fd,
            });
        };
        let s = SocketId::new(index, generation);
        let t = token(Kind::Socket, index, generation);
        if let Err(e) = self.shim.register(&fd, t, Interest::READABLE) {
            self.sockets.remove(index, generation);
            return Err(WithFd {
                error: AdoptError::Os(OsError::from_shim(e)),
                fd,
            });
        }
        let born = self.close_epoch;
        match self.sockets.get_mut(index, generation) {
            Some(e) => {
                e.fd = Some(fd);
                e.born = born;
            }
            None => {
                return Err(WithFd {
                    error: AdoptError::Capacity,
                    fd,
                })
            }
        }
        self.keepalive += 1;
        self.link_socket(s, c);
        self.layer_opened(s, false);
        if self.is_closed(s) == Some(false) {
            if let Some(cb) = self.callbacks_of(s).and_then(|c| c.on_open) {
                cb(self, s, false, ip);
            }
        }
        Ok(s)
    }

    /// Offers a socket that just opened to the config's layer, which may take it.
    fn layer_opened(&mut self, s: SocketId, is_client: bool) {
        if C::Layer::opened(self, s, is_client) {
            if let Some(e) = self.socket_mut(s) {
                e.set_layered(true);
            }
        }
    }
}
