//! What each arena slot holds: plain data, generic over the types that fill it (descriptor,
//! ext, callbacks), so these types depend on nothing of the loop. The loop names them with its
//! own types through the aliases `SocketEntry<C>`, `ListenEntry<C>`, ... of the `event_loop`
//! module.

use crate::handle::{ContextId, ListenId};
use crate::shim::{Interest, OsError};

/// "No slot" in the intrusive lists.
pub(crate) const NIL: u32 = u32::MAX;

/// A deadline that never comes.
pub(crate) const NEVER: u64 = u64::MAX;

/// A connection: descriptor `F`, ext `E`, layer state `L`. Opaque; public only so storage can
/// be typed.
pub struct Socket<F, E, L> {
    /// The owned descriptor. `None` for a connect that failed before a descriptor existed, and
    /// once closed.
    pub(crate) fd: Option<F>,
    pub(crate) context: ContextId,
    pub(crate) ext: E,
    /// The config's layer's state for this socket (`()` without a layer).
    pub(crate) layer: L,
    /// The listen socket that accepted it; index [`NIL`] for none (8 bytes, where an
    /// `Option<ListenId>` takes 12). Read through [`listener`](Socket::listener).
    listener: ListenId,
    /// Current registered interest.
    pub(crate) interest: Interest,
    /// Its yes/no states (see [`Flags`]; read through the accessors below).
    pub(crate) flags: Flags,
    /// The close epoch it was born in: how many context closes had begun when it was made
    /// (see `context_close`).
    pub(crate) born: u32,
    /// While connecting: a connect that failed at once, reported in the next iteration. Once
    /// established: a hard send error; the socket is failing and closes when the running
    /// callback returns (see the `failing` module).
    pending_error: Option<OsError>,
    /// When the short and the long timeout are due (shim clock, ms), [`NEVER`] when off. The
    /// first sweep whose tick time is at or past it fires it.
    pub(crate) timeout_at: u64,
    pub(crate) long_timeout_at: u64,
    /// Context list links (or, once closed, the closed list).
    pub(crate) prev: u32,
    pub(crate) next: u32,
    /// Low-priority queue link, or the failing-list link (a socket is in at most one of them).
    pub(crate) queue_next: u32,
}

impl<F, E, L> Socket<F, E, L> {
    /// The error it holds, if any: failing (closed with it once the running callback
    /// returns), or a connect that failed before reaching the poller.
    #[inline(always)]
    pub(crate) fn pending_error(&self) -> Option<OsError> {
        debug_assert_eq!(self.errored(), self.pending_error.is_some());
        self.pending_error
    }

    /// Sets or clears the pending error, and the [`Flags::ERRORED`] state with it.
    #[inline]
    pub(crate) fn set_pending_error(&mut self, err: Option<OsError>) {
        self.pending_error = err;
        self.set_errored(err.is_some());
    }

    /// The listen socket that accepted it, if any.
    #[inline]
    pub(crate) fn listener(&self) -> Option<ListenId> {
        (self.listener.index != NIL).then_some(self.listener)
    }

    /// Records the listen socket that accepted it (or none).
    pub(crate) fn set_listener(&mut self, l: Option<ListenId>) {
        self.listener = l.unwrap_or(ListenId {
            index: NIL,
            generation: 0,
        });
    }
}

impl<F, E, L: Default> Socket<F, E, L> {
    pub(crate) fn new(fd: Option<F>, context: ContextId, ext: E) -> Self {
        Socket {
            fd,
            context,
            ext,
            layer: L::default(),
            listener: ListenId {
                index: NIL,
                generation: 0,
            },
            interest: Interest::NONE,
            flags: Flags::NONE,
            born: 0,
            pending_error: None,
            timeout_at: NEVER,
            long_timeout_at: NEVER,
            prev: NIL,
            next: NIL,
            queue_next: NIL,
        }
    }
}

/// A socket's yes/no states, one bit each: 2 bytes instead of one per state, and the hot
/// path tests several in one compare ([`Flags::any`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Flags(u16);

macro_rules! socket_flags {
    ($($(#[$doc:meta])* $bit:ident = $n:literal, $get:ident, $set:ident;)*) => {
        impl Flags {
            $($(#[$doc])* pub(crate) const $bit: Flags = Flags(1 << $n);)*
        }

        impl<F, E, L> Socket<F, E, L> {
            $(
                $(#[$doc])*
                #[inline(always)]
                pub(crate) fn $get(&self) -> bool {
                    self.flags.any(Flags::$bit)
                }
                #[inline(always)]
                pub(crate) fn $set(&mut self, on: bool) {
                    self.flags.set(Flags::$bit, on);
                }
            )*
        }
    };
}

socket_flags! {
    /// A connect is in progress.
    CONNECTING = 0, connecting, set_connecting;
    /// Closed: the slot waits for the end of the iteration.
    CLOSED = 1, closed, set_closed;
    /// Shut down for writing by the application.
    SHUT_DOWN = 2, shut_down, set_shut_down;
    /// The peer's FIN arrived.
    PEER_FIN = 3, peer_fin, set_peer_fin;
    /// The last write was short: writable interest is wanted.
    LAST_WRITE_FAILED = 4, last_write_failed, set_last_write_failed;
    /// Sent with "more to come" since the last flush.
    CORKED = 5, corked, set_corked;
    /// Its bytes go through the config's layer (see the `layer` module).
    LAYERED = 6, layered, set_layered;
    /// Shut down by the application, FIN held back until the layer's last bytes went.
    FIN_PENDING = 7, fin_pending, set_fin_pending;
    /// Served by the low-priority queue.
    LOW_PRIORITY = 8, low_priority, set_low_priority;
    /// Queued in the low-priority queue.
    QUEUED = 9, queued, set_queued;
    /// Taken off the queue this iteration: may read once without spending budget.
    LOW_PRIORITY_TURN = 10, low_priority_turn, set_low_priority_turn;
    /// Holds a pending error (`pending_error` is `Some`): failing, or a connect that failed
    /// before reaching the poller. Mirrors the field so that the hot paths test it together
    /// with the other states, in one compare; only `set_pending_error` changes either.
    ERRORED = 11, errored, set_errored;
}

impl Flags {
    /// No state set.
    pub(crate) const NONE: Flags = Flags(0);

    /// The states in which a write does not go straight to the kernel: closed, shut down,
    /// connecting, or through a layer.
    pub(crate) const NOT_PLAIN_WRITE: Flags = Flags::CLOSED
        .with(Flags::SHUT_DOWN)
        .with(Flags::CONNECTING)
        .with(Flags::LAYERED)
        .with(Flags::ERRORED);

    /// The states in which a readable event does not go straight to `recv` and `on_data`:
    /// closed, connecting, low priority, or holding an error.
    pub(crate) const NOT_PLAIN_READ: Flags = Flags::CLOSED
        .with(Flags::CONNECTING)
        .with(Flags::LOW_PRIORITY)
        .with(Flags::ERRORED);

    /// Both sets of states together.
    #[inline(always)]
    pub(crate) const fn with(self, other: Flags) -> Flags {
        Flags(self.0 | other.0)
    }

    /// Whether any state of `which` is set.
    #[inline(always)]
    pub(crate) const fn any(self, which: Flags) -> bool {
        self.0 & which.0 != 0
    }

    /// Sets or clears the states of `which`.
    #[inline(always)]
    pub(crate) fn set(&mut self, which: Flags, on: bool) {
        if on {
            self.0 |= which.0;
        } else {
            self.0 &= !which.0;
        }
    }
}

/// Why a listener is not accepting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Paused {
    No,
    /// The socket arena is full: resumes when a socket slot is released.
    Full,
    /// The OS ran out of descriptors or failed: resumes at this time, or (for descriptors)
    /// earlier when a socket is released.
    Until(u64),
}

/// A listen socket: descriptor `F`, accepted sockets get ext `E`. Opaque; public only so
/// storage can be typed.
pub struct Listener<F, E> {
    /// The owned descriptor; `None` once closed.
    pub(crate) fd: Option<F>,
    /// Whether the descriptor is in the poller (a pause whose `modify` failed deregisters it).
    pub(crate) registered: bool,
    pub(crate) context: ContextId,
    /// Makes the ext of each accepted socket.
    pub(crate) new_ext: fn() -> E,
    pub(crate) closed: bool,
    pub(crate) paused: Paused,
    pub(crate) prev: u32,
    /// Context list link, or the closed list once closed.
    pub(crate) next: u32,
}

/// A socket context: ext `E`, callbacks `K`. Opaque; public only so storage can be typed.
pub struct Context<E, K, L> {
    pub(crate) ext: E,
    pub(crate) callbacks: K,
    /// The config's layer's state for this context (`()` without a layer); children copy it.
    pub(crate) layer: L,
    pub(crate) parent: Option<ContextId>,
    /// Heads of its socket and listen-socket lists.
    pub(crate) sockets: u32,
    pub(crate) listeners: u32,
}

/// A timer's links in the timer index, a pairing heap (see the `timer_heap` module): slot
/// indices, [`NIL`] for none. All [`NIL`] while the timer is in no heap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Links {
    /// Its leftmost child.
    pub(crate) child: u32,
    /// Its right sibling.
    pub(crate) next: u32,
    /// Its parent if it is the leftmost child, else its left sibling; [`NIL`] for a root.
    pub(crate) prev: u32,
}

impl Links {
    /// In no heap.
    pub(crate) const DETACHED: Links = Links {
        child: NIL,
        next: NIL,
        prev: NIL,
    };
}

/// A timer: ext `E`, callback `K`. Opaque; public only so storage can be typed.
pub struct Timer<E, K> {
    pub(crate) ext: E,
    pub(crate) fallthrough: bool,
    /// When it fires next; `Some` exactly while it is in the timer index.
    pub(crate) deadline: Option<u64>,
    pub(crate) repeat_ms: u64,
    pub(crate) cb: Option<K>,
    /// The timer pass in which it was last armed; one armed during a pass waits for the next
    /// (it sits in the index's `aside` heap until that pass ends).
    pub(crate) pass: u64,
    /// Its place in the timer index while armed.
    pub(crate) links: Links,
}

/// A poll on a user descriptor `F`: ext `E`, callback `K`. Opaque; public only so storage can
/// be typed.
pub struct Poll<F, E, K> {
    pub(crate) ext: E,
    /// The owned descriptor, once `poll_init` gave one.
    pub(crate) fd: Option<F>,
    pub(crate) fallthrough: bool,
    pub(crate) interest: Interest,
    pub(crate) started: bool,
    pub(crate) cb: Option<K>,
}
