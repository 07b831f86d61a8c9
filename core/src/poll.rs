//! Polls on user descriptors (`us_poll_t`), each with its own ready callback.
//!
//! A poll owns the descriptor it watches from [`Cx::poll_init`] until [`Cx::poll_free`] gives
//! it back (or the loop is dropped, which closes it): the loop never watches a descriptor whose
//! owner might close it behind its back.

use crate::entry::Poll;
use crate::error::{CapacityError, PollError, WithFd};
use crate::event_loop::{Config, Cx, FdOf, PollCb, PollEntry};
use crate::handle::{token, Kind, PollId};
use crate::shim::{Event, Interest, OsError, OsShim};

impl<C: Config> Cx<C> {
    fn poll_entry(&self, p: PollId) -> Option<&PollEntry<C>> {
        self.polls.get(p.index, p.generation)
    }

    /// Creates a poll (`us_create_poll`). A non-fallthrough poll keeps
    /// [`Loop::run`](crate::Loop::run) going until it is freed.
    pub fn poll_create(
        &mut self,
        fallthrough: bool,
        ext: C::PollExt,
    ) -> Result<PollId, CapacityError> {
        let entry = Poll {
            ext,
            fd: None,
            fallthrough,
            interest: Interest::NONE,
            started: false,
            cb: None,
        };
        let (index, generation) = self.polls.insert(entry).map_err(|_| CapacityError)?;
        if !fallthrough {
            self.keepalive += 1;
        }
        Ok(PollId::new(index, generation))
    }

    /// Associates the poll with a descriptor (`us_poll_init`), taking ownership of it. A
    /// descriptor the poll held before is given back (`Ok(Some(old))`); on failure `fd` comes
    /// back in the error.
    pub fn poll_init(
        &mut self,
        p: PollId,
        fd: FdOf<C>,
    ) -> Result<Option<FdOf<C>>, WithFd<PollError, FdOf<C>>> {
        let Some(e) = self.polls.get_mut(p.index, p.generation) else {
            return Err(WithFd {
                error: PollError::InvalidHandle,
                fd,
            });
        };
        if e.started {
            return Err(WithFd {
                error: PollError::Started,
                fd,
            });
        }
        Ok(e.fd.replace(fd))
    }

    /// Sets the poll's ready callback (not in upstream's public C API; see the crate docs).
    pub fn poll_set_callback(&mut self, p: PollId, cb: PollCb<C>) -> Result<(), PollError> {
        let e = self
            .polls
            .get_mut(p.index, p.generation)
            .ok_or(PollError::InvalidHandle)?;
        e.cb = Some(cb);
        Ok(())
    }

    /// Starts polling for `interest` (`us_poll_start`).
    pub fn poll_start(&mut self, p: PollId, interest: Interest) -> Result<(), PollError> {
        let e = self
            .polls
            .get(p.index, p.generation)
            .ok_or(PollError::InvalidHandle)?;
        if e.started {
            return self.poll_change(p, interest);
        }
        let fd = e.fd.as_ref().ok_or(PollError::NotInitialized)?;
        self.shim
            .register(fd, token(Kind::Poll, p.index, p.generation), interest)
            .map_err(|e| PollError::Os(OsError::from_shim(e)))?;
        if let Some(e) = self.polls.get_mut(p.index, p.generation) {
            e.started = true;
            e.interest = interest;
        }
        Ok(())
    }

    /// Changes the interest (`us_poll_change`); no OS call when unchanged.
    pub fn poll_change(&mut self, p: PollId, interest: Interest) -> Result<(), PollError> {
        let e = self
            .polls
            .get(p.index, p.generation)
            .ok_or(PollError::InvalidHandle)?;
        if e.fd.is_none() {
            return Err(PollError::NotInitialized);
        }
        if !e.started {
            return self.poll_start(p, interest);
        }
        if e.interest == interest {
            return Ok(());
        }
        let fd = e.fd.as_ref().ok_or(PollError::NotInitialized)?;
        self.shim
            .modify(fd, token(Kind::Poll, p.index, p.generation), interest)
            .map_err(|e| PollError::Os(OsError::from_shim(e)))?;
        if let Some(e) = self.polls.get_mut(p.index, p.generation) {
            e.interest = interest;
        }
        Ok(())
    }

    /// Stops polling (`us_poll_stop`); events already collected for it this iteration are dropped.
    pub fn poll_stop(&mut self, p: PollId) -> Result<(), PollError> {
        let e = self
            .polls
            .get_mut(p.index, p.generation)
            .ok_or(PollError::InvalidHandle)?;
        if !e.started {
            return Ok(());
        }
        e.started = false;
        e.interest = Interest::NONE;
        match e.fd.as_ref() {
            Some(fd) => self
                .shim
                .deregister(fd)
                .map_err(|e| PollError::Os(OsError::from_shim(e))),
            None => Ok(()),
        }
    }

    /// The interest being polled for (`us_poll_events`).
    pub fn poll_events(&self, p: PollId) -> Option<Interest> {
        self.poll_entry(p).map(|e| e.interest)
    }
    /// Poll user data (`us_poll_ext`).
    pub fn poll_ext(&self, p: PollId) -> Option<&C::PollExt> {
        self.poll_entry(p).map(|e| &e.ext)
    }
    /// Poll user data, mutably.
    pub fn poll_ext_mut(&mut self, p: PollId) -> Option<&mut C::PollExt> {
        self.polls
            .get_mut(p.index, p.generation)
            .map(|e| &mut e.ext)
    }
    /// The descriptor (`us_poll_fd`), borrowed from the poll that owns it.
    pub fn poll_fd(&self, p: PollId) -> Option<&FdOf<C>> {
        self.poll_entry(p).and_then(|e| e.fd.as_ref())
    }
    /// Replaces the poll's ext (`us_poll_resize`: typed ext is resized by transforming it). The
    /// handle and the registration stay as they are.
    pub fn poll_resize(
        &mut self,
        p: PollId,
        transform: impl FnOnce(&mut C::PollExt),
    ) -> Option<PollId> {
        transform(&mut self.polls.get_mut(p.index, p.generation)?.ext);
        Some(p)
    }
    /// Stops (if needed) and frees the poll (`us_poll_free`); returns its ext and gives back
    /// its descriptor, unclosed (drop it to close it).
    pub fn poll_free(&mut self, p: PollId) -> Option<(C::PollExt, Option<FdOf<C>>)> {
        // Deregistering fails only for a descriptor the poller no longer holds; a late event
        // for this poll is dropped by the token's generation.
        let _ = self.poll_stop(p);
        let e = self.polls.remove(p.index, p.generation)?;
        if !e.fallthrough {
            self.keepalive -= 1;
        }
        Some((e.ext, e.fd))
    }

    pub(crate) fn poll_event(&mut self, p: PollId, ev: Event) {
        let Some(e) = self.poll_entry(p) else { return };
        if !e.started {
            return;
        }
        let mut ready = Interest::NONE;
        if ev.readable() && e.interest.is_readable() {
            ready = ready.with(Interest::READABLE);
        }
        if ev.writable() && e.interest.is_writable() {
            ready = ready.with(Interest::WRITABLE);
        }
        let error = ev.error() || ev.hangup();
        if ready.is_empty() && !error {
            return;
        }
        if let Some(cb) = e.cb {
            cb(self, p, ready, error);
        }
    }
}
