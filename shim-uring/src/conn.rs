//! What the shim knows about each descriptor, in a table indexed by the descriptor's number.
//!
//! A number's state lives as long as the shim has business with it: from `listen`, `accept`,
//! `connect`, `adopt` or `register` until its last operation has completed after `close`. A
//! socket's real close waits for that (see [`Conn::closing`]), so the kernel cannot hand the
//! number to a new descriptor while a completion for the old one may still arrive.

use std::collections::VecDeque;
use std::os::fd::OwnedFd;

use usockets_core::{Interest, Token};
use usockets_shim_unix::addr::SockAddr;

use crate::memory::NO_BUF;
use crate::op::GEN_MASK;

/// What a descriptor is to the shim.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Nothing: the number is not the shim's.
    Free,
    /// A stream socket: multishot receives, slab sends.
    Stream,
    /// A listening socket: multishot accept.
    Listener,
    /// Any other descriptor core polls for the user (a pipe, an eventfd...): one-shot polls,
    /// re-armed every iteration while it has interest, for level-triggered readiness.
    Poll,
}

/// No send slab.
pub(crate) const NO_CHUNK: u32 = u32::MAX;

/// One descriptor's state.
pub(crate) struct Conn {
    pub(crate) kind: Kind,
    /// Changes with every new life of the number (see the `op` module).
    pub(crate) generation: u32,
    pub(crate) token: Token,
    pub(crate) interest: Interest,
    pub(crate) registered: bool,
    /// Queued for the next `wait`'s readiness pass.
    pub(crate) in_ready: bool,
    /// Operations in flight whose completion is still to come (deferred close waits for 0).
    pub(crate) ops: u16,
    /// The owned descriptor after core closed it, while operations are still in flight.
    pub(crate) closing: Option<OwnedFd>,
    /// A pending error (an errno), reported as an error event; from a failed send, a failed
    /// receive or a failed connect.
    pub(crate) error: i32,

    // ---- receive ----
    /// A multishot receive (or accept, for a listener; or a poll) is armed.
    pub(crate) armed: bool,
    /// Its cancel is queued (or it should stop at its next completion).
    pub(crate) cancelling: bool,
    /// The receive ended for want of buffers: re-arm once some are given back.
    pub(crate) starved: bool,
    /// The peer's FIN arrived (after the bytes in the chain).
    pub(crate) fin: bool,
    /// The chain of filled buffers, oldest first, and the read offset into the first.
    pub(crate) rx_head: u16,
    pub(crate) rx_tail: u16,
    pub(crate) rx_off: u32,
    /// Bytes received and not yet read.
    pub(crate) rx_bytes: u32,

    // ---- send ----
    /// The slab, or [`NO_CHUNK`].
    pub(crate) chunk: u32,
    /// Bytes of the slab the kernel has taken (sent).
    pub(crate) tx_done: u32,
    /// End of the bytes in flight (a send is in flight when it is past `tx_done`).
    pub(crate) tx_flight: u32,
    /// End of the bytes queued.
    pub(crate) tx_fill: u32,
    /// On the list of connections with bytes to submit.
    pub(crate) tx_queued: bool,
    /// `shutdown_write` waits for the queued bytes.
    pub(crate) shut_pending: bool,

    // ---- connect ----
    pub(crate) connecting: bool,
    /// The address a connect in flight reads (the kernel reads it when the connect is
    /// submitted): boxed so it never moves.
    pub(crate) connect_to: Option<Box<SockAddr>>,

    // ---- listener ----
    /// Accepted descriptors waiting for core's `accept`.
    pub(crate) accepted: VecDeque<OwnedFd>,
    /// The multishot accept failed (out of descriptors, or another error): `accept` goes
    /// through the plain syscall, with shim-unix's shedding, until the backlog is empty.
    pub(crate) accept_fallback: bool,
    /// In the fallback: a connection may be waiting (reported readable until `accept` finds
    /// none and arms the poll below).
    pub(crate) fallback_ready: bool,
    /// In the fallback: a one-shot poll for a new connection is armed (counted in `ops`).
    pub(crate) fallback_poll: bool,

    // ---- poll ----
    /// The events the last poll completion reported (`POLLIN`...), not yet delivered.
    pub(crate) revents: u32,
}

impl Conn {
    pub(crate) fn new() -> Conn {
        Conn {
            kind: Kind::Free,
            generation: 0,
            token: Token(0),
            interest: Interest::NONE,
            registered: false,
            in_ready: false,
            ops: 0,
            closing: None,
            error: 0,
            armed: false,
            cancelling: false,
            starved: false,
            fin: false,
            rx_head: NO_BUF,
            rx_tail: NO_BUF,
            rx_off: 0,
            rx_bytes: 0,
            chunk: NO_CHUNK,
            tx_done: 0,
            tx_flight: 0,
            tx_fill: 0,
            tx_queued: false,
            shut_pending: false,
            connecting: false,
            connect_to: None,
            accepted: VecDeque::new(),
            accept_fallback: false,
            fallback_ready: false,
            fallback_poll: false,
            revents: 0,
        }
    }

    /// Starts a new life of the number as `kind`: everything reset, a new generation. The
    /// caller has given back what the previous life held (buffers, slab, descriptors).
    pub(crate) fn open(&mut self, kind: Kind) {
        let generation = self.generation.wrapping_add(1) & GEN_MASK;
        let accepted = std::mem::take(&mut self.accepted);
        // The readiness queue holds the number, not the life: still queued, it must not be
        // queued twice.
        let in_ready = self.in_ready;
        *self = Conn::new();
        self.in_ready = in_ready;
        // Keep the queue's allocation for the next listener on this number.
        self.accepted = accepted;
        self.accepted.clear();
        self.kind = kind;
        self.generation = generation;
    }

    /// Whether a send is in flight.
    pub(crate) fn sending(&self) -> bool {
        self.tx_flight > self.tx_done
    }

    /// Bytes queued or in flight.
    pub(crate) fn tx_pending(&self) -> bool {
        self.tx_fill > self.tx_done
    }

    /// Whether the socket is past `close` (waiting for its operations).
    pub(crate) fn is_closing(&self) -> bool {
        self.closing.is_some()
    }
}

/// The table: one [`Conn`] per descriptor number the shim has seen, grown (rarely, never per
/// request) to the highest number.
pub(crate) struct Table {
    conns: Vec<Conn>,
}

impl Table {
    pub(crate) fn new() -> Table {
        Table { conns: Vec::new() }
    }

    /// The state of `fd`, made if the table is too short.
    pub(crate) fn at(&mut self, fd: u32) -> &mut Conn {
        let i = fd as usize;
        if i >= self.conns.len() {
            let len = (i + 1).next_power_of_two().max(64);
            self.conns.resize_with(len, Conn::new);
        }
        &mut self.conns[i]
    }

    /// The state of `fd` if the table has it.
    pub(crate) fn get(&self, fd: u32) -> Option<&Conn> {
        self.conns.get(fd as usize)
    }

    /// The state of `fd` if the table has it.
    pub(crate) fn get_mut(&mut self, fd: u32) -> Option<&mut Conn> {
        self.conns.get_mut(fd as usize)
    }

    /// How many numbers the table has room for.
    pub(crate) fn len(&self) -> usize {
        self.conns.len()
    }

    /// Every number's state, for the shim's drop.
    pub(crate) fn all_mut(&mut self) -> impl Iterator<Item = &mut Conn> {
        self.conns.iter_mut()
    }
}
