//! The hammer's state: its `Config`, the loop ext ([`World`]), the socket ext ([`Conn`]) and
//! the knobs that differ between a simulated and a real network ([`Profile`]).

use std::collections::VecDeque;
use std::marker::PhantomData;

use usockets_core::{Config, ContextId, Cx, GrowingStorage, ListenId, OsShim, SocketId};

use crate::dice::Dice;

/// The hammer's loop configuration over shim `S`: every object on the heap, close reasons are
/// `u32`.
pub struct Hammer<S>(PhantomData<fn() -> S>);

impl<S: OsShim> Config for Hammer<S> {
    type Shim = S;
    type LoopExt = World;
    type ContextExt = Kind;
    type SocketExt = Conn;
    type TimerExt = Ticket;
    type PollExt = ();
    type Reason = u32;
    type Storage = GrowingStorage<Self>;
    type Layer = usockets_core::NoLayer;
}

/// What callbacks get.
pub(crate) type C<S> = Cx<Hammer<S>>;

/// The knobs of a run. [`Profile::simulated`] suits a virtual clock and a simulated network
/// with injected faults; [`Profile::loopback`] keeps a run on real sockets short and within
/// the descriptor limit and the ephemeral port range.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct Profile {
    /// Client connections to make in all.
    pub connections: u64,
    /// Client connections that may exist at once: a chain that would exceed it stalls, and a
    /// client that ends while chains are stalled resumes one of them.
    pub in_flight: u64,
    /// Connection chains started at the beginning (every client that opens starts the next).
    pub chains: u64,
    /// Idle timeout (seconds) re-armed on every event.
    pub idle_s: u32,
    /// Longest random timeout (seconds) an operation sets.
    pub longest_timeout_s: u32,
    /// Per mille of clients that are lazy: they write only when the dice say so and so usually
    /// idle into their timeout. The others write their stream as fast as it is echoed, then
    /// shut down.
    pub lazy: u32,
    /// Per mille of clients that are bulk: writes of up to [`bulk_chunk`](Self::bulk_chunk)
    /// bytes until the kernel takes less, so buffers fill and both sides wait for
    /// `on_writable`.
    pub bulk: u32,
    /// A bulk client's stream is 1-2 times this long.
    pub bulk_quota: u32,
    /// A bulk client's longest write.
    pub bulk_chunk: u32,
    /// Per mille of connects aimed at a closed port: they must fail, never open.
    pub refused: u32,
    /// Per mille of connects aborted at once with `close_connecting` (operations abort pending
    /// ones later too): no callback may follow.
    pub aborted: u32,
    /// The timeout sweep's period (`None`: the default).
    pub sweep_period_ms: Option<u64>,
    /// Socket slots the loop may grow to.
    pub socket_slots: usize,
    /// Iterations after which the run counts as hung.
    pub max_iterations: u64,
}

impl Profile {
    /// For a simulated network: every connection may be in flight at once, long timeouts (the
    /// clock is virtual), most clients lazy.
    pub fn simulated(connections: u64) -> Profile {
        Profile {
            connections,
            in_flight: u64::MAX,
            chains: 16,
            idle_s: 10,
            longest_timeout_s: 12,
            lazy: 800,
            bulk: 0,
            bulk_quota: 0,
            bulk_chunk: 4096,
            refused: 10,
            aborted: 10,
            sweep_period_ms: None,
            socket_slots: (2 * connections + 64) as usize,
            max_iterations: 5_000_000,
        }
    }

    /// For real loopback sockets: at most 200 clients at once, 1-2 s timeouts with a 200 ms
    /// sweep, a few lazy and a few bulk clients. No connects to closed ports: on loopback one
    /// could connect to itself (TCP simultaneous open) when its source port is the target.
    pub fn loopback(connections: u64) -> Profile {
        Profile {
            connections,
            in_flight: 200,
            chains: 16,
            idle_s: 2,
            longest_timeout_s: 2,
            lazy: 50,
            bulk: 5,
            bulk_quota: 4 << 20,
            bulk_chunk: 256 << 10,
            refused: 0,
            aborted: 10,
            sweep_period_ms: Some(200),
            socket_slots: 1 << 20,
            max_iterations: u64::MAX,
        }
    }
}

/// The context a socket is in; also each context's ext, so a socket's ext names its context.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Kind {
    /// The listening context.
    #[default]
    Server,
    /// The connecting context.
    Client,
    /// A child context of the server.
    Child,
}

/// Which end of a connection a socket is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Role {
    /// Accepted: echoes what it reads.
    #[default]
    Server,
    /// Connected: writes its stream and checks the echo.
    Client,
}

/// Socket ext. `magic` ties it to its id, so a mixed-up ext is caught.
#[derive(Default)]
pub struct Conn {
    pub(crate) magic: u64,
    pub(crate) id: u64,
    pub(crate) role: Role,
    pub(crate) ctx: Kind,
    pub(crate) opened: bool,
    /// `on_close` ran: a second one is a bug.
    pub(crate) closed: bool,
    /// Paused by an operation: no `on_data` or `on_end` until resumed.
    pub(crate) paused: bool,
    /// Aimed at a closed port: must never open.
    pub(crate) doomed: bool,
    pub(crate) lazy: bool,
    pub(crate) bulk: bool,
    pub(crate) sent: u64,
    pub(crate) received: u64,
    pub(crate) quota: u64,
    /// What the server read but could not echo yet.
    pub(crate) backlog: Vec<u8>,
    /// The code and reason the hammer closed it with, if it did.
    pub(crate) closing: Option<(i32, u32)>,
}

/// Timer ext: when it may fire at the earliest.
#[derive(Clone, Copy, Debug, Default)]
pub struct Ticket {
    pub(crate) due: u64,
    pub(crate) repeat_ms: u64,
    pub(crate) fired: u32,
}

/// What happened in a run.
#[derive(Default, Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Counts {
    /// Accepted sockets opened.
    pub server_opens: u64,
    /// Accepted sockets closed.
    pub server_closes: u64,
    /// Client sockets opened.
    pub client_opens: u64,
    /// Client sockets closed.
    pub client_closes: u64,
    /// Connects that failed (`on_connect_error`).
    pub connect_errors: u64,
    /// Connects aborted with `close_connecting`.
    pub aborted: u64,
    /// Connects aimed at a closed port.
    pub doomed: u64,
    /// Adoptions into another context.
    pub adoptions: u64,
    /// `on_timeout` calls.
    pub timeouts: u64,
    /// `on_long_timeout` calls.
    pub long_timeouts: u64,
    /// `on_writable` calls.
    pub writables: u64,
    /// Bytes the clients got back, checked.
    pub bytes_echoed: u64,
    /// Loop wakeups seen.
    pub wakeups: u64,
    /// `on_end` calls.
    pub ends: u64,
    /// Pauses (each resumed by a timeout or ended by a close).
    pub pauses: u64,
    /// Timer callbacks.
    pub timer_fires: u64,
    /// Released socket handles checked to be rejected.
    pub released_checked: u64,
}

/// Released handles kept for checking: the most recent ones.
pub(crate) const RELEASED_KEPT: usize = 64;

/// The loop ext.
pub struct World {
    pub(crate) dice: Dice,
    pub(crate) profile: Profile,
    /// The listener's port.
    pub(crate) port: u16,
    /// A port whose listener was closed: connects to it are refused.
    pub(crate) dead_port: u16,
    pub(crate) started: u64,
    /// Chains stopped by the in-flight limit, each waiting for a client to end.
    pub(crate) stalled_chains: u64,
    pub(crate) listener: Option<ListenId>,
    /// Server, client and child context.
    pub(crate) ctx: [Option<ContextId>; 3],
    pub(crate) c: Counts,
    /// Where clients build their writes.
    pub(crate) scratch: Vec<u8>,
    /// Client connects neither opened, failed nor aborted yet.
    pub(crate) connecting: Vec<SocketId>,
    /// Connects the hammer aborted with `close_connecting`: none may get a callback.
    pub(crate) aborted: Vec<SocketId>,
    /// Sockets closed (or failed or aborted) this iteration: released at its end.
    pub(crate) closed_now: Vec<SocketId>,
    /// The last [`RELEASED_KEPT`] released handles, which must stay rejected.
    pub(crate) released: VecDeque<SocketId>,
}

impl World {
    pub(crate) fn new(profile: Profile, dice: Dice) -> World {
        World {
            dice,
            profile,
            port: 0,
            dead_port: 0,
            started: 0,
            stalled_chains: 0,
            listener: None,
            ctx: [None; 3],
            c: Counts::default(),
            scratch: Vec::new(),
            connecting: Vec::new(),
            aborted: Vec::new(),
            closed_now: Vec::new(),
            released: VecDeque::with_capacity(RELEASED_KEPT),
        }
    }

    /// Context `k`.
    pub(crate) fn context(&self, k: Kind) -> ContextId {
        let i = match k {
            Kind::Server => 0,
            Kind::Client => 1,
            Kind::Child => 2,
        };
        self.ctx[i].expect("contexts are created before any socket")
    }

    /// Client connections started and not yet closed, failed or aborted.
    pub(crate) fn clients_in_flight(&self) -> u64 {
        let ended = self.c.client_closes + self.c.connect_errors + self.c.aborted;
        self.started
            .checked_sub(ended)
            .expect("more clients ended than were started")
    }

    /// Whether every client connection has resolved.
    pub(crate) fn clients_done(&self) -> bool {
        self.c.client_closes + self.c.connect_errors + self.c.aborted == self.profile.connections
    }
}

/// The magic of socket `id`'s ext.
pub(crate) fn magic(id: u64) -> u64 {
    id.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xA5A5
}
