//! What the shim knows about each smoltcp TCP socket beyond smoltcp's own state: who holds it,
//! what core registered, and what a BSD socket would remember (a pending error, which FINs
//! were seen), from which readiness is read.

use core::net::SocketAddr;

use smoltcp::socket::tcp::{Socket, State};
use usockets_core::{ErrorKind, Event, Interest, Token};

/// Who holds a smoltcp socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    /// Unused: closed in smoltcp, ready for a listen or a connect.
    Free,
    /// Part of listener `n`'s accept pool: listening, or connected and not yet accepted.
    Pool(u8),
    /// A connection core owns (through a [`SmolFd`](crate::SmolFd)).
    Conn,
    /// Closed by core, still closing in smoltcp (a FIN to finish, TIME-WAIT, an RST to send):
    /// the smoltcp socket is kept until it is done, core's slot is already free.
    Linger,
}

/// One smoltcp socket's bookkeeping.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Slot {
    pub(crate) role: Role,
    /// What core registered (`None`: not registered).
    pub(crate) token: Option<Token>,
    pub(crate) interest: Interest,
    /// The error a BSD socket would hold in `SO_ERROR`: a refused connect, a reset.
    pub(crate) error: Option<ErrorKind>,
    /// The connection was established once (a connect that ends before is refused).
    pub(crate) established: bool,
    /// The peer's FIN was seen (so a later CLOSED is an orderly end, not a reset).
    pub(crate) peer_fin: bool,
    /// Our FIN was queued (`shutdown_write`).
    pub(crate) our_fin: bool,
    /// The end was already judged (orderly or reset): judged once.
    pub(crate) ended: bool,
    /// The endpoints, kept once established: smoltcp forgets them on a reset.
    pub(crate) local: Option<SocketAddr>,
    pub(crate) remote: Option<SocketAddr>,
    /// When the shim gives up on the socket (shim clock, ms; [`NO_DEADLINE`]: never): a
    /// connect not established by then times out, a closed connection still closing then is
    /// reset and forgotten.
    pub(crate) deadline: u64,
    /// A lingering socket was reset at its deadline and waits (briefly) for its RST to go.
    pub(crate) aborted: bool,
}

/// No deadline.
pub(crate) const NO_DEADLINE: u64 = u64::MAX;

impl Slot {
    pub(crate) const FREE: Slot = Slot {
        role: Role::Free,
        token: None,
        interest: Interest::NONE,
        error: None,
        established: false,
        peer_fin: false,
        our_fin: false,
        ended: false,
        local: None,
        remote: None,
        deadline: NO_DEADLINE,
        aborted: false,
    };

    /// Fresh bookkeeping for a socket now held as `role` (registration and history cleared).
    pub(crate) fn reset(&mut self, role: Role) {
        *self = Slot { role, ..Slot::FREE };
    }

    /// Updates the history from smoltcp's state: establishment, the peer's FIN, and how the
    /// connection ended. smoltcp does not say why a socket went to CLOSED; a BSD socket does,
    /// and core needs it: CLOSED before establishment is a refused connect, CLOSED without
    /// both FINs is a reset (or a retransmission time-out), CLOSED after both is orderly.
    pub(crate) fn observe(&mut self, socket: &Socket<'_>) {
        let state = socket.state();
        match state {
            State::Established | State::FinWait1 | State::FinWait2 => self.establish(socket),
            State::CloseWait | State::Closing | State::LastAck | State::TimeWait => {
                self.establish(socket);
                self.peer_fin = true;
            }
            State::Closed if !self.ended && self.role == Role::Conn => {
                self.ended = true;
                if !self.established {
                    self.error = Some(ErrorKind::ConnectionRefused);
                } else if !(self.peer_fin && self.our_fin) {
                    self.error = Some(ErrorKind::ConnectionReset);
                }
            }
            _ => {}
        }
    }

    fn establish(&mut self, socket: &Socket<'_>) {
        if !self.established {
            self.established = true;
            self.local = socket.local_endpoint().map(crate::addr::to_std);
            self.remote = socket.remote_endpoint().map(crate::addr::to_std);
        }
    }

    /// The readiness of a registered connection, level-triggered: `None` when there is
    /// nothing to report.
    pub(crate) fn event(&self, socket: &Socket<'_>) -> Option<Event> {
        let token = self.token?;
        let state = socket.state();
        let error = self.error.is_some();
        // Both directions finished (or reset): what epoll calls a hang-up.
        let hangup = self.established && matches!(state, State::Closed | State::TimeWait);
        let readable = self.interest.is_readable()
            && (socket.can_recv() || (self.established && !socket.may_recv()) || error);
        let writable = self.interest.is_writable() && socket.can_send();
        Event::ready(token, readable, writable, error, hangup)
    }
}

/// A pool socket holds a connection that can be accepted: established (or further: data or
/// even a FIN may have arrived before the accept, as on a BSD backlog).
pub(crate) fn acceptable(state: State) -> bool {
    !matches!(
        state,
        State::Listen | State::SynReceived | State::Closed | State::SynSent
    )
}
