//! Listen sockets and the accept loop, with back-off when slots or descriptors run out or the
//! OS fails in a way core does not know.
//!
//! A paused listener must stop being reported, or a level-triggered poller spins on it: pausing
//! drops its interest (`modify` to none) and, if the poller refuses that, deregisters it. If
//! even that fails, the listener cannot be silenced and is closed. Resuming re-arms it (or
//! registers it again); a refusal there pauses it for another back-off.

use crate::accepted::Accepted;
use crate::entry::{Listener, Paused, NIL};
use crate::error::{AdoptError, ListenError};
use crate::event_loop::{Config, Cx, FdOf, ListenEntry};
use crate::handle::{token, ContextId, Kind, ListenId};
use crate::shim::{
    ErrorKind, Interest, ListenOptions, ListenTarget, OsError, OsShim, PeerAddr, ShimError,
};

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
        let entry = Listener {
            fd: None,
            registered: true,
            context: c,
            new_ext,
            closed: false,
            paused: Paused::No,
            prev: NIL,
            next: head,
        };
        let Ok((index, generation)) = self.listeners.insert(entry) else {
            self.shim.close(fd);
            return Err(ListenError::Capacity);
        };
        let l = ListenId::new(index, generation);
        if let Err(e) = self.shim.register(
            &fd,
            token(Kind::Listen, index, generation),
            Interest::READABLE,
        ) {
            self.listeners.remove(index, generation);
            self.shim.close(fd);
            return Err(ListenError::Os(OsError::from_shim(e)));
        }
        if let Some(e) = self.listeners.get_mut(index, generation) {
            e.fd = Some(fd);
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
        let (prev, next, c, paused) = (e.prev, e.next, e.context, e.paused);
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
        let closed_head = self.closed_listeners;
        let mut fd = None;
        if let Some(e) = self.listeners.get_mut(l.index, l.generation) {
            e.closed = true;
            e.paused = Paused::No;
            e.next = closed_head;
            fd = e.fd.take();
        }
        if let Some(fd) = fd {
            self.shim.close(fd);
        }
        self.closed_listeners = l.index;
        self.add_chore(crate::chores::CLOSED);
        self.keepalive -= 1;
    }

    /// The port a listener is bound to (`us_socket_local_port` on a listen socket).
    pub fn listen_port(&mut self, l: ListenId) -> Option<u16> {
        let e = self.listeners.get(l.index, l.generation)?;
        let fd = e.fd.as_ref().filter(|_| !e.closed)?;
        match self.shim.local_addr(fd) {
            Ok(PeerAddr::Ip(a)) => Some(a.port()),
            _ => None,
        }
    }

    /// The listener's context.
    pub fn listen_context(&self, l: ListenId) -> Option<ContextId> {
        self.listener(l).map(|e| e.context)
    }

    /// The listener's descriptor, borrowed from the loop that owns it.
    pub fn listen_fd(&self, l: ListenId) -> Option<&FdOf<C>> {
        self.listener(l).and_then(|e| e.fd.as_ref())
    }

    /// Accepts up to the per-event cap; stops at would-block or when the listener closes.
    /// Errors that concern only the pending connection skip it; running out of descriptors or
    /// any error core does not know pauses the listener with back-off, so a level-triggered
    /// poller never spins on it.
    pub(crate) fn listen_event(&mut self, l: ListenId) {
        for _ in 0..self.settings.max_accepts_per_event.max(1) {
            // Field access, not `self.listener()`: the descriptor stays borrowed from the arena
            // while the shim accepts on it.
            let Some(e) = self.listeners.get(l.index, l.generation) else {
                return;
            };
            if e.closed || e.paused != Paused::No {
                return;
            }
            let (c, new_ext) = (e.context, e.new_ext);
            let Some(fd) = e.fd.as_ref() else { return };
            let (cfd, addr) = match self.shim.accept(fd) {
                Ok(Some(v)) => v,
                Ok(None) => return,
                Err(err) => match err.kind() {
                    ErrorKind::WouldBlock => return,
                    ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset => continue,
                    _ => {
                        crate::log::log_warn!("accept failed: {}", err.raw_os_error());
                        let until = self.backoff_end();
                        self.pause_listener(l, Paused::Until(until));
                        return;
                    }
                },
            };
            let mut raw = [0u8; 16];
            let n = addr.ip_bytes(&mut raw);
            let ip = &raw[..n];
            let mut accepted = Accepted::new(cfd);
            let pre_open = match C::SHARED_CALLBACKS {
                Some(shared) => shared.on_pre_open,
                None => self
                    .contexts
                    .get(c.index, c.generation)
                    .and_then(|x| x.callbacks.on_pre_open),
            };
            if let Some(cb) = pre_open {
                cb(self, c, &mut accepted, ip);
            }
            let Some(cfd) = accepted.take() else {
                continue;
            };
            if self.contexts.get(c.index, c.generation).is_none() {
                self.shim.close(cfd);
                return;
            }
            match self.open_accepted(c, cfd, new_ext(), Some(l), ip) {
                Ok(_) => {}
                Err(rejected) => {
                    let (error, cfd) = rejected.into_parts();
                    self.shim.close(cfd);
                    if error == AdoptError::Capacity {
                        // A full arena is treated like descriptor exhaustion: shed this
                        // connection and stop accepting until a slot is released.
                        self.pause_listener(l, Paused::Full);
                        return;
                    }
                }
            }
        }
    }

    /// Stops reporting the listener until it resumes. If the poller refuses to drop its
    /// interest it is deregistered; if that fails too it cannot be silenced and is closed.
    fn pause_listener(&mut self, l: ListenId, why: Paused) {
        if self.listeners.get(l.index, l.generation).is_none() {
            return;
        }
        if let Paused::Until(t) = why {
            self.lower_wake(t);
        }
        let Some(e) = self.listeners.get_mut(l.index, l.generation) else {
            return;
        };
        if e.paused == Paused::No {
            self.paused_listeners += 1;
        }
        e.paused = why;
        if !e.registered {
            return;
        }
        let Some(fd) = e.fd.as_ref() else { return };
        let t = token(Kind::Listen, l.index, l.generation);
        if self.shim.modify(fd, t, Interest::NONE).is_ok() {
            return;
        }
        if self.shim.deregister(fd).is_ok() {
            e.registered = false;
            return;
        }
        crate::log::log_warn!("a paused listener cannot be silenced: closing it");
        self.listen_close(l);
    }

    /// Resumes paused listeners: all of them when a socket slot was released (`released`), or
    /// those whose back-off has run out.
    pub(crate) fn resume_listeners(&mut self, released: bool) {
        // Fresh: from the timer phase, or unused (`released` resumes every paused listener).
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
            let Some(e) = self.listeners.get_mut(index, g) else {
                continue;
            };
            e.paused = Paused::No;
            self.paused_listeners -= 1;
            let Some(fd) = e.fd.as_ref() else { continue };
            let t = token(Kind::Listen, index, g);
            let armed = if e.registered {
                self.shim.modify(fd, t, Interest::READABLE)
            } else {
                self.shim.register(fd, t, Interest::READABLE)
            };
            match armed {
                Ok(()) => e.registered = true,
                Err(_) => {
                    // Try again after another back-off rather than give the listener up.
                    let until = self.backoff_end();
                    self.pause_listener(ListenId::new(index, g), Paused::Until(until));
                }
            }
        }
    }

    /// When a back-off that starts now ends: `accept_backoff_ms` after loop time, or with
    /// deadline events (where loop time may be stale) after the clock, read without touching
    /// loop time, so that a back-off found in the release of closed slots, after the timer
    /// phase, leaves no timer due by loop time unrun.
    fn backoff_end(&mut self) -> u64 {
        let from = if self.deadline_events {
            self.shim.now_ms().max(self.now)
        } else {
            self.now
        };
        from.saturating_add(self.settings.accept_backoff_ms)
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
