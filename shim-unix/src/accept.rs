//! `accept` for a level-triggered poller, with the shedding that keeps a descriptor shortage
//! (`EMFILE`/`ENFILE`) from spinning the loop or leaving peers unanswered.
//!
//! A level-triggered listener whose `accept` fails for want of a descriptor stays readable,
//! and the peer waits in the backlog with no answer. The [`Acceptor`] keeps a **reserve
//! descriptor** (`/dev/null`). When `accept` fails that way it closes the reserve, accepts
//! pending connections and closes each at once (the peer sees EOF or a reset instead of
//! hanging) until none is left or [`SHED_BATCH`] are shed, and reopens the reserve.

use std::os::fd::{OwnedFd, RawFd};

use usockets_core::{ErrorKind, PeerAddr};

use crate::addr::SockAddr;
use crate::error::UnixError;
use crate::net;
use crate::stats::Counters;
use crate::sys;

/// Most connections [`Acceptor::accept`] refuses per call, so that a flood cannot hold the
/// loop; core's per-event accept cap bounds the calls.
pub const SHED_BATCH: usize = 64;

/// What a shedding pass left in the backlog.
enum Shed {
    /// Nothing pending (some or none shed).
    Drained,
    /// A batch shed; more may wait.
    More,
    /// No descriptor could be freed: nothing shed.
    Failed,
}

/// What [`Acceptor::accept_or_shed`] did.
#[derive(Debug)]
pub enum Accepted {
    /// A connection (the caller owns the descriptor) and its peer's address.
    Connection(OwnedFd, PeerAddr),
    /// None was pending, and there were descriptors to take one.
    Empty,
    /// The process is out of descriptors: every pending connection was shed, none is left.
    ShedAll,
}

/// Accepts connections; sheds them while the process is out of descriptors.
#[derive(Debug)]
pub struct Acceptor {
    /// The spare descriptor given up to shed connections.
    reserve: Option<OwnedFd>,
}

impl Acceptor {
    /// Opens the reserve descriptor (close-on-exec).
    pub fn new(c: &mut Counters) -> Result<Acceptor, UnixError> {
        Ok(Acceptor {
            reserve: Some(sys::open_dev_null(c)?),
        })
    }

    /// Accepts one connection: `Ok(None)` when none is pending. Out of descriptors, it sheds
    /// what waits and returns `Ok(None)` once the backlog is empty, or
    /// [`ErrorKind::ConnectionAborted`] (code `EMFILE`) when more may wait, so that core goes
    /// on within its per-event cap; only if no descriptor could be freed at all (another
    /// thread took the reserve's number) does it return the `EMFILE` error itself, on which
    /// core backs the listener off. The network errors of a pending connection are
    /// [`ErrorKind::ConnectionAborted`] too (see [`net::accept_error`]).
    pub fn accept(
        &mut self,
        c: &mut Counters,
        listener: RawFd,
    ) -> Result<Option<(OwnedFd, PeerAddr)>, UnixError> {
        match self.accept_or_shed(c, listener)? {
            Accepted::Connection(fd, addr) => Ok(Some((fd, addr))),
            Accepted::Empty | Accepted::ShedAll => Ok(None),
        }
    }

    /// [`accept`](Self::accept), saying whether the process was out of descriptors: a shim
    /// that watches the listener for new connections only while it has descriptors (io_uring's
    /// multishot accept fails at once without one, pending connection or not) must know.
    /// Shedding with more waiting is [`ErrorKind::ConnectionAborted`] (code `EMFILE`), and
    /// no descriptor to shed with is the `EMFILE` error, as for `accept`.
    pub fn accept_or_shed(
        &mut self,
        c: &mut Counters,
        listener: RawFd,
    ) -> Result<Accepted, UnixError> {
        match net::accept(c, listener) {
            Ok((fd, addr)) => Ok(Accepted::Connection(fd, addr)),
            Err(e) if e.is_would_block() => Ok(Accepted::Empty),
            Err(e) if e.kind == ErrorKind::TooManyOpenFiles => match self.shed(c, listener) {
                Shed::Drained => Ok(Accepted::ShedAll),
                Shed::More => Err(UnixError::with_kind(ErrorKind::ConnectionAborted, e.code)),
                Shed::Failed => Err(e),
            },
            Err(e) => Err(net::accept_error(e)),
        }
    }

    /// Sheds pending connections (accepts each and closes it at once) with the reserve
    /// released for the moment, up to [`SHED_BATCH`]; then takes the reserve back. With the
    /// reserve's number free each `accept` succeeds, so a shed connection costs one `accept`
    /// and one `close`.
    fn shed(&mut self, c: &mut Counters, listener: RawFd) -> Shed {
        if let Some(reserve) = self.reserve.take() {
            sys::close_owned(c, reserve);
        }
        let mut addr = SockAddr::empty();
        let mut shed = 0;
        let outcome = loop {
            if shed == SHED_BATCH {
                break Shed::More;
            }
            match net::accept_raw(c, listener, &mut addr) {
                Ok(fd) => {
                    sys::close_owned(c, fd);
                    shed += 1;
                }
                Err(e) if e.is_would_block() => break Shed::Drained,
                // Gone before it could be taken: it needs no shedding.
                Err(e) if net::accept_error(e).kind == ErrorKind::ConnectionAborted => shed += 1,
                // No descriptor came free (another thread took the reserve's number, or there
                // was no reserve).
                Err(_) if shed == 0 => break Shed::Failed,
                Err(_) => break Shed::More,
            }
        };
        self.reserve = sys::open_dev_null(c).ok();
        outcome
    }
}
