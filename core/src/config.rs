//! The one type parameter of a loop: which shim, which ext types, which storage.

use crate::context::ContextEntry;
use crate::listen::ListenEntry;
use crate::poll::PollEntry;
use crate::shim::{Event, OsShim};
use crate::socket::SocketEntry;
use crate::storage::SlotStore;
use crate::timer::TimerEntry;

/// Everything a [`Loop`](crate::Loop) is generic over, gathered in one trait so user code names
/// one type (`Loop<MyApp>`, `Cx<MyApp>`).
///
/// Ext data is typed: one type per kind of object for the whole loop. When contexts need
/// different socket data, make [`SocketExt`](Config::SocketExt) an enum; adoption keeps it or
/// transforms it with a closure.
///
/// Storage types choose where the arenas live. With fixed storage they are slices of
/// [`Slot`](crate::Slot)s that the embedder owns, e.g. `&'a mut [Slot<SocketEntry<Self>>]`.
pub trait Config: Sized {
    /// The OS (or simulated OS) underneath.
    type Shim: OsShim;
    /// Loop user data (`us_loop_ext`).
    type LoopExt;
    /// Context user data (`us_socket_context_ext`).
    type ContextExt;
    /// Socket user data (`us_socket_ext`).
    type SocketExt;
    /// Timer user data (`us_timer_ext`).
    type TimerExt;
    /// Poll user data (`us_poll_ext`).
    type PollExt;
    /// The `reason` a user passes to `close` and gets back in `on_close` (C: `void *`).
    type Reason: Copy;
    /// Socket arena storage.
    type Sockets: SlotStore<SocketEntry<Self>>;
    /// Listen-socket arena storage.
    type Listeners: SlotStore<ListenEntry<Self>>;
    /// Context arena storage.
    type Contexts: SlotStore<ContextEntry<Self>>;
    /// Timer arena storage.
    type Timers: SlotStore<TimerEntry<Self>>;
    /// Poll arena storage.
    type Polls: SlotStore<PollEntry<Self>>;
    /// The loop's one receive buffer, shared by every socket (padding included).
    type RecvBuf: AsMut<[u8]>;
    /// The event slice handed to [`OsShim::wait`].
    type EventBuf: AsMut<[Event]>;
}

/// The (owned) descriptor type of the shim of config `C`; the loop lends it as `&FdOf<C>`.
pub type FdOf<C> = <<C as Config>::Shim as OsShim>::Fd;

/// The memory a loop runs in, handed over once at construction. Nothing grows unless a storage
/// type grows by itself.
pub struct Memory<C: Config> {
    /// Socket slots.
    pub sockets: C::Sockets,
    /// Listen-socket slots.
    pub listeners: C::Listeners,
    /// Context slots.
    pub contexts: C::Contexts,
    /// Timer slots.
    pub timers: C::Timers,
    /// Poll slots.
    pub polls: C::Polls,
    /// Receive buffer: the data area plus [`RECV_PADDING`](crate::RECV_PADDING) bytes on each
    /// side. Must be longer than twice the padding.
    pub recv: C::RecvBuf,
    /// Events per wait.
    pub events: C::EventBuf,
}

/// Tunables of a loop. [`Settings::default`] (or [`new`](Settings::new)) gives the C library's
/// values; change them with the `with_*` setters (the struct may gain settings, so it cannot be
/// written as a literal outside core).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub struct Settings {
    /// Period of the timeout sweep in milliseconds (`LIBUS_TIMEOUT_GRANULARITY` = 4 s). Tests
    /// shorten it; socket timeouts are always measured in real seconds and minutes.
    pub sweep_period_ms: u64,
    /// Low-priority sockets served per iteration (the C library serves 5).
    pub low_priority_budget: u32,
    /// Reads of one socket per readable event when each read fills the whole buffer.
    pub max_reads_per_event: u32,
    /// Connections accepted per listener per readable event.
    pub max_accepts_per_event: u32,
    /// How long a listener stops accepting after the OS ran out of descriptors or failed an
    /// accept in a way core does not know.
    pub accept_backoff_ms: u64,
}

impl Settings {
    /// The C library's values: a 4 s sweep, 5 low-priority reads per iteration, up to 4 reads
    /// per readable event, 256 accepts per event, a 250 ms accept back-off.
    pub const fn new() -> Settings {
        Settings {
            sweep_period_ms: 4000,
            low_priority_budget: 5,
            max_reads_per_event: 4,
            max_accepts_per_event: 256,
            accept_backoff_ms: 250,
        }
    }
    /// These settings with [`sweep_period_ms`](Settings::sweep_period_ms) = `ms`.
    #[must_use]
    pub const fn with_sweep_period_ms(mut self, ms: u64) -> Settings {
        self.sweep_period_ms = ms;
        self
    }
    /// These settings with [`low_priority_budget`](Settings::low_priority_budget) = `n`.
    #[must_use]
    pub const fn with_low_priority_budget(mut self, n: u32) -> Settings {
        self.low_priority_budget = n;
        self
    }
    /// These settings with [`max_reads_per_event`](Settings::max_reads_per_event) = `n`.
    #[must_use]
    pub const fn with_max_reads_per_event(mut self, n: u32) -> Settings {
        self.max_reads_per_event = n;
        self
    }
    /// These settings with [`max_accepts_per_event`](Settings::max_accepts_per_event) = `n`.
    #[must_use]
    pub const fn with_max_accepts_per_event(mut self, n: u32) -> Settings {
        self.max_accepts_per_event = n;
        self
    }
    /// These settings with [`accept_backoff_ms`](Settings::accept_backoff_ms) = `ms`.
    #[must_use]
    pub const fn with_accept_backoff_ms(mut self, ms: u64) -> Settings {
        self.accept_backoff_ms = ms;
        self
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings::new()
    }
}
