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
    pub(crate) listener: Option<ListenId>,
    /// Current registered interest.
    pub(crate) interest: Interest,
    pub(crate) connecting: bool,
    pub(crate) closed: bool,
    pub(crate) shut_down: bool,
    pub(crate) peer_fin: bool,
    pub(crate) last_write_failed: bool,
    pub(crate) corked: bool,
    /// Its bytes go through the config's layer (see the `layer` module).
    pub(crate) layered: bool,
    /// Shut down by the application, FIN held back until the layer's last bytes went.
    pub(crate) fin_pending: bool,
    pub(crate) low_priority: bool,
    /// Queued in the low-priority queue.
    pub(crate) queued: bool,
    /// Taken off the queue this iteration: may read once without spending budget.
    pub(crate) low_priority_turn: bool,
    /// Creation number, in the order sockets were made (see `context_close`).
    pub(crate) serial: u64,
    /// While connecting: a connect that failed at once, reported in the next iteration. Once
    /// established: a hard send error; the socket is failing and closes when the running
    /// callback returns (see the `failing` module).
    pub(crate) pending_error: Option<OsError>,
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

impl<F, E, L: Default> Socket<F, E, L> {
    pub(crate) fn new(fd: Option<F>, context: ContextId, ext: E) -> Self {
        Socket {
            fd,
            context,
            ext,
            layer: L::default(),
            listener: None,
            interest: Interest::NONE,
            connecting: false,
            closed: false,
            shut_down: false,
            peer_fin: false,
            last_write_failed: false,
            corked: false,
            layered: false,
            fin_pending: false,
            low_priority: false,
            queued: false,
            low_priority_turn: false,
            serial: 0,
            pending_error: None,
            timeout_at: NEVER,
            long_timeout_at: NEVER,
            prev: NIL,
            next: NIL,
            queue_next: NIL,
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
