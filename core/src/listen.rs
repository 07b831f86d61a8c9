//! Listen sockets and the accept loop, with back-off when slots or descriptors run out.

use crate::config::Config;
use crate::context::PreOpen;
use crate::error::ListenError;
use crate::handle::{token, ContextId, Kind, ListenId};
use crate::shim::{
    ErrorKind, Interest, ListenOptions, ListenTarget, OsError, OsShim, PeerAddr, ShimError,
};
use crate::socket::ip_bytes;
use crate::{Cx, NIL};

/// Why a listener is not accepting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Paused {
    No,
    /// The socket arena is full: resumes when a socket slot is released.
    Full,
    /// The OS ran out of descriptors: resumes at this time, or earlier when a socket is released.
    Until(u64),
}

/// A listen socket in its arena slot. Opaque; public only so storage can be typed.
pub struct ListenEntry<C: Config> {
    pub(crate) fd: <C::Shim as OsShim>::Fd,
    pub(crate) context: ContextId,
    /// Makes the ext of each accepted socket.
    pub(crate) new_ext: fn() -> C::SocketExt,
    pub(crate) closed: bool,
    pub(crate) paused: Paused,
    pub(crate) prev: u32,
    /// Context list link, or the closed list once closed.
    pub(crate) next: u32,
}

impl<C: Config> Cx<C> {
    fn listener(&self, l: ListenId) -> Option<&ListenEntry<C>> {
        self.listeners
            .get(l.index, l.generation)
            .filter(|e| !e.closed)
    }

    /// Listens on `target` (`us_socket_context_listen`, `_listen_unix`). Accepted sockets join
    /// context `c` with ext made by `new_ext`. Port 0 picks an ephemeral port; read it with
    /// [`listen_port`](Self::listen_port).
    pub fn listen(
        &mut self,
        c: ContextId,
        target: ListenTarget<'_>,
        options: ListenOptions,
        new_ext: fn() -> C::SocketExt,
    ) -> Result<ListenId, ListenError> {
        let head = self
            .contexts
            .get(c.index, c.generation)
            .map(|e| e.listeners)
            .ok_or(ListenError::InvalidContext)?;
        if !self.listeners.ensure_free() {
            // Try before touching the OS, so a full arena never costs a descriptor.
            return Err(ListenError::Capacity);
        }
        let fd = self
            .shim
            .listen(target, options)
            .map_err(|e| ListenError::Os(OsError::from_shim(e)))?;
        let entry = ListenEntry {
            fd,
            context: c,
            new_ext,
            closed: false,
            paused: Paused::No,
            prev: NIL,
            next: head,
        };
        let (index, generation) = match self.listeners.insert(entry) {
            Ok(v) => v,
            Err(_) => {
                self.shim.close(fd);
                return Err(ListenError::Capacity);
            }
        };
        let l = ListenId::new(index, generation);
        if let Err(e) = self.shim.register(
            fd,
            token(Kind::Listen, index, generation),
            Interest::READABLE,
        ) {
            self.listeners.remove(index, generation);
            self.shim.close(fd);
            return Err(ListenError::Os(OsError::from_shim(e)));
        }
        if let Some((g, _)) = self.listeners.at(head) {
            if let Some(h) = self.listeners.get_mut(head, g) {
                h.prev = index;
            }
        }
        if let Some(ctx) = self.contexts.get_mut(c.index, c.generation) {
            ctx.listeners = index;
        }
        self.keepalive += 1;
        Ok(l)
    }

    /// Stops listening (`us_listen_socket_close`); safe inside the accept loop. The slot is
    /// reclaimed at the end of the iteration.
    pub fn listen_close(&mut self, l: ListenId) {
        let Some(e) = self.listener(l) else { return };
        let (fd, prev, next, c, paused) = (e.fd, e.prev, e.next, e.context, e.paused);
        if let Some((g, _)) = self.listeners.at(prev) {
            if let Some(p) = self.listeners.get_mut(prev, g) {
                p.next = next;
            }
        } else if let Some(ctx) = self.contexts.get_mut(c.index, c.generation) {
            if ctx.listeners == l.index {
                ctx.listeners = next;
            }
        }
        if let Some((g, _)) = self.listeners.at(next) {
            if let Some(n) = self.listeners.get_mut(next, g) {
                n.prev = prev;
            }
        }
        if paused != Paused::No {
            self.paused_listeners -= 1;
        }
        self.shim.close(fd);
        let closed_head = self.closed_listeners;
        if let Some(e) = self.listeners.get_mut(l.index, l.generation) {
            e.closed = true;
            e.paused = Paused::No;
            e.next = closed_head;
        }
        self.closed_listeners = l.index;
        self.keepalive -= 1;
    }

    /// The port a listener is bound to (`us_socket_local_port` on a listen socket).
    pub fn listen_port(&mut self, l: ListenId) -> Option<u16> {
        let fd = self.listener(l)?.fd;
        match self.shim.local_addr(fd) {
            Ok(PeerAddr::Ip(a)) => Some(a.port()),
            _ => None,
        }
    }

    /// The listener's context.
    pub fn listen_context(&self, l: ListenId) -> Option<ContextId> {
        self.listener(l).map(|e| e.context)
    }

    /// The listener's descriptor.
    pub fn listen_fd(&self, l: ListenId) -> Option<<C::Shim as OsShim>::Fd> {
        self.listener(l).map(|e| e.fd)
    }

    /// Accepts up to the per-event cap; stops at would-block or when the listener closes.
    pub(crate) fn listen_event(&mut self, l: ListenId) {
        for _ in 0..self.settings.max_accepts_per_event.max(1) {
            let Some(e) = self.listener(l) else { return };
            if e.paused != Paused::No {
                return;
            }
            let (fd, c, new_ext) = (e.fd, e.context, e.new_ext);
            let (cfd, addr) = match self.shim.accept(fd) {
                Ok(Some(v)) => v,
                Ok(None) => return,
                Err(err) => match err.kind() {
                    ErrorKind::WouldBlock => return,
                    ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset => continue,
                    ErrorKind::TooManyOpenFiles | ErrorKind::OutOfMemory => {
                        let until = self.now + self.settings.accept_backoff_ms;
                        self.pause_listener(l, Paused::Until(until));
                        return;
                    }
                    _ => return,
                },
            };
            let mut raw = [0u8; 16];
            let n = ip_bytes(&addr, &mut raw);
            let ip = &raw[..n];
            if let Some(cb) = self
                .contexts
                .get(c.index, c.generation)
                .and_then(|x| x.callbacks.on_pre_open)
            {
                if cb(self, c, cfd, ip) == PreOpen::Taken {
                    continue;
                }
            }
            if self.contexts.get(c.index, c.generation).is_none() {
                self.shim.close(cfd);
                return;
            }
            match self.open_accepted(c, cfd, new_ext(), Some(l), ip) {
                Ok(_) => {}
                Err(crate::ConnectError::Capacity) => {
                    // A full arena is treated like descriptor exhaustion: shed this connection
                    // and stop accepting until a slot is released.
                    self.shim.close(cfd);
                    self.pause_listener(l, Paused::Full);
                    return;
                }
                Err(_) => self.shim.close(cfd),
            }
        }
    }

    fn pause_listener(&mut self, l: ListenId, why: Paused) {
        let Some(e) = self.listeners.get_mut(l.index, l.generation) else {
            return;
        };
        if e.paused == Paused::No {
            self.paused_listeners += 1;
        }
        e.paused = why;
        let fd = e.fd;
        let _ = self.shim.modify(
            fd,
            token(Kind::Listen, l.index, l.generation),
            Interest::NONE,
        );
    }

    /// Resumes paused listeners: all of them when a socket slot was released (`released`), or
    /// those whose back-off has run out.
    pub(crate) fn resume_listeners(&mut self, released: bool) {
        let now = self.now;
        for index in 0..self.listeners.slots() {
            let Some((g, e)) = self.listeners.at(index) else {
                continue;
            };
            let due = match e.paused {
                Paused::No => false,
                Paused::Full => released,
                Paused::Until(t) => released || t <= now,
            };
            if !due || e.closed {
                continue;
            }
            let fd = e.fd;
            if let Some(e) = self.listeners.get_mut(index, g) {
                e.paused = Paused::No;
            }
            self.paused_listeners -= 1;
            if self
                .shim
                .modify(fd, token(Kind::Listen, index, g), Interest::READABLE)
                .is_err()
            {
                self.listen_close(ListenId::new(index, g));
            }
        }
    }

    /// The earliest back-off end among paused listeners.
    pub(crate) fn next_listener_resume(&self) -> Option<u64> {
        if self.paused_listeners == 0 {
            return None;
        }
        (0..self.listeners.slots())
            .filter_map(|i| match self.listeners.at(i) {
                Some((_, e)) => match e.paused {
                    Paused::Until(t) => Some(t),
                    _ => None,
                },
                None => None,
            })
            .min()
    }
}
