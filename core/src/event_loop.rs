//! The loop's types: what a loop is generic over ([`Config`], [`Storage`]), its state ([`Cx`],
//! [`Loop`]) and the callbacks it calls.
//!
//! These types name each other (a config names its storage, the storage holds callbacks, the
//! callbacks take the loop), so they live together here; every other module of core depends on
//! this one and none of them on each other's types. What the loop does is in the modules named
//! for it: `run` (an iteration), `socket`, `context`, `listen`, `timer`, `poll`, ...

use core::ops::{Deref, DerefMut};
use core::ptr::NonNull;

use crate::accepted::Accepted;
use crate::close::CloseCause;
use crate::entry::{self, NEVER, NIL};
use crate::handle::{ContextId, ListenId, PollId, SocketId, TimerId};
use crate::recv::{RecvBuf, RECV_PADDING};
use crate::settings::Settings;
use crate::shim::{Event, Interest, OsError, OsShim};
use crate::slot::{Arena, SlotStore};
use crate::timer_heap::TimerIndex;

/// Everything a [`Loop`] is generic over, gathered in one trait so user code names one type
/// (`Loop<MyApp>`, `Cx<MyApp>`): the shim, the ext (user data) types and the storage.
///
/// Ext data is typed: one type per kind of object for the whole loop. When contexts need
/// different socket data, make [`SocketExt`](Config::SocketExt) an enum; adoption keeps it or
/// transforms it with a closure.
///
/// ```ignore
/// struct Demo;
/// impl Config for Demo {
///     type Shim = MyShim;
///     type LoopExt = u32;
///     type ContextExt = ();
///     type SocketExt = ();
///     type TimerExt = ();
///     type PollExt = ();
///     type Reason = ();
///     type Storage = &'static mut FixedStorage<Self, 8, 2, 2, 4, 2>;
///     type Layer = usockets_core::NoLayer;
/// }
/// ```
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
    /// Where the loop keeps its objects: [`FixedStorage`](crate::FixedStorage) (arrays, in a
    /// `static` or anywhere), `GrowingStorage` (the `alloc` feature) or your own.
    type Storage: Storage<Self>;
    /// The per-socket transform between the kernel and the callbacks: [`NoLayer`](crate::NoLayer)
    /// for plain sockets, or a TLS layer (see the [`layer`](crate::layer) module).
    type Layer: crate::layer::Layer<Self>;

    /// Socket callbacks that every context of this configuration shares, when it has such (a
    /// C ABI whose contexts all forward to per-socket C callbacks through the same
    /// trampolines). With `Some`, core calls these for every socket and accept event, and
    /// never looks up the socket's context to find its callbacks (one slot lookup fewer per
    /// event); the callbacks contexts are given ([`Cx::context_create`],
    /// [`Cx::context_callbacks_mut`]) are then not used. `None` (the default): each context's
    /// own callbacks.
    const SHARED_CALLBACKS: Option<ContextCallbacks<Self>> = None;

    /// Loop callbacks that every loop of this configuration has, when it has such (a C ABI
    /// forwarding to each loop's C callbacks through the same trampolines). With `Some`, core
    /// calls these, known at compile time (so they can be inlined into the iteration), and
    /// the callbacks given to [`Loop::new`] are not used. `None` (the default): each loop's
    /// own.
    const SHARED_LOOP_CALLBACKS: Option<LoopCallbacks<Self>> = None;

    /// Called when the slot of a closed listen socket is released, at the end of the
    /// iteration it closed in (whether closed directly or by its context's close): for a
    /// configuration that keeps something per listen socket outside core (the C ABI frees
    /// the listen socket's block here, rather than checking every iteration whether one
    /// closed). The default does nothing.
    #[inline(always)]
    fn listener_released(cx: &mut Cx<Self>, l: ListenId) {
        let _ = (cx, l);
    }

    /// A pointer the `on_data` callback may want from the socket's ext, read by core from the
    /// slot it already holds for the `recv` and handed over in the [`RecvBuf`]
    /// ([`RecvBuf::hint`]), so that the callback need not look the slot up again (the C ABI
    /// hands C the socket's block pointer this way). Core only copies it, never reads through
    /// it. The default gives none.
    #[inline(always)]
    fn data_hint(ext: &Self::SocketExt) -> Option<NonNull<()>> {
        let _ = ext;
        None
    }
}

/// The (owned) descriptor type of the shim of config `C`; the loop lends it as `&FdOf<C>`.
pub type FdOf<C> = <<C as Config>::Shim as OsShim>::Fd;

/// What a socket slot of config `C` holds (opaque; for typing storage).
pub type SocketEntry<C> = entry::Socket<FdOf<C>, <C as Config>::SocketExt, LayerSocket<C>>;
/// What a listen-socket slot of config `C` holds (opaque; for typing storage).
pub type ListenEntry<C> = entry::Listener<FdOf<C>, <C as Config>::SocketExt>;
/// What a context slot of config `C` holds (opaque; for typing storage).
pub type ContextEntry<C> =
    entry::Context<<C as Config>::ContextExt, ContextCallbacks<C>, LayerContext<C>>;
/// The per-socket state of config `C`'s [`Layer`](crate::Layer).
pub type LayerSocket<C> = <<C as Config>::Layer as crate::layer::Layer<C>>::Socket;
/// The per-context state of config `C`'s [`Layer`](crate::Layer).
pub type LayerContext<C> = <<C as Config>::Layer as crate::layer::Layer<C>>::Context;
/// What a timer slot of config `C` holds (opaque; for typing storage).
pub type TimerEntry<C> = entry::Timer<<C as Config>::TimerExt, TimerCb<C>>;
/// What a poll slot of config `C` holds (opaque; for typing storage).
pub type PollEntry<C> = entry::Poll<FdOf<C>, <C as Config>::PollExt, PollCb<C>>;

/// Where a loop keeps its objects: one arena of slots per kind of object, the receive buffer
/// shared by every socket and the event buffer handed to the shim. A [`Config`] names one
/// storage type; the loop takes it apart once, at [`Loop::new`].
///
/// Core ships [`FixedStorage`](crate::FixedStorage) (arrays sized by const generics, usable
/// by value or as a `&'static mut` from a `static`) and, with the `alloc` feature,
/// `GrowingStorage` (chunks of slots allocated up to a maximum and given back when they empty).
/// Implement it to bring memory of your own.
///
/// The ordered timer index lives in the timer slots themselves, as links: it needs no storage
/// of its own, and neither this trait nor [`Config`] knows of it.
pub trait Storage<C: Config>: Sized {
    /// Socket slots.
    type Sockets: SlotStore<SocketEntry<C>>;
    /// Listen-socket slots.
    type Listeners: SlotStore<ListenEntry<C>>;
    /// Context slots.
    type Contexts: SlotStore<ContextEntry<C>>;
    /// Timer slots.
    type Timers: SlotStore<TimerEntry<C>>;
    /// Poll slots.
    type Polls: SlotStore<PollEntry<C>>;
    /// The receive buffer: the data area plus [`RECV_PADDING`] bytes on each side; longer than
    /// twice the padding.
    type Recv: AsMut<[u8]>;
    /// The events collected per wait (at least one).
    type Events: AsMut<[Event]>;
    /// Takes the storage apart for a loop.
    fn into_parts(self) -> Parts<C, Self>;
}

/// A [`Storage`] taken apart: what [`Storage::into_parts`] returns.
pub struct Parts<C: Config, S: Storage<C>> {
    /// Socket slots.
    pub sockets: S::Sockets,
    /// Listen-socket slots.
    pub listeners: S::Listeners,
    /// Context slots.
    pub contexts: S::Contexts,
    /// Timer slots.
    pub timers: S::Timers,
    /// Poll slots.
    pub polls: S::Polls,
    /// The receive buffer.
    pub recv: S::Recv,
    /// The event buffer.
    pub events: S::Events,
}

/// The storage of config `C`, for short.
type StorageOf<C> = <C as Config>::Storage;

/// `on_open(socket, is_client, ip)`: `ip` is 4 or 16 raw bytes for accepted sockets, empty for
/// connected ones.
pub type OpenCb<C> = fn(&mut Cx<C>, SocketId, bool, &[u8]);
/// `on_close(socket, cause)`: why it closed; [`CloseCause::User`] carries the code and reason
/// given to `close`.
pub type CloseCb<C> = fn(&mut Cx<C>, SocketId, CloseCause<<C as Config>::Reason>);
/// `on_data(socket, data)`: `data` is never empty and has writable padding around it.
pub type DataCb<C> = fn(&mut Cx<C>, SocketId, &mut RecvBuf<'_>);
/// A socket event without arguments: `on_writable`, `on_timeout`, `on_long_timeout`, `on_end`.
pub type SocketCb<C> = fn(&mut Cx<C>, SocketId);
/// `on_connect_error(socket, error)`: the socket is then released without `on_close`.
pub type ConnectErrorCb<C> = fn(&mut Cx<C>, SocketId, OsError);
/// `on_pre_open(context, accepted, ip)`: runs for each accepted connection before it becomes a
/// socket. The callback may borrow the descriptor ([`Accepted::fd`]) or take it
/// ([`Accepted::take`]); if it is still there when the callback returns, the library adopts it
/// as usual, otherwise the application owns it.
pub type PreOpenCb<C> = fn(&mut Cx<C>, ContextId, &mut Accepted<FdOf<C>>, &[u8]);

/// The per-context callbacks (`us_socket_context_on_*`). Unset ones are skipped.
pub struct ContextCallbacks<C: Config> {
    /// `us_socket_context_on_pre_open`.
    pub on_pre_open: Option<PreOpenCb<C>>,
    /// `us_socket_context_on_open`.
    pub on_open: Option<OpenCb<C>>,
    /// `us_socket_context_on_close`.
    pub on_close: Option<CloseCb<C>>,
    /// `us_socket_context_on_data`.
    pub on_data: Option<DataCb<C>>,
    /// `us_socket_context_on_writable`.
    pub on_writable: Option<SocketCb<C>>,
    /// `us_socket_context_on_timeout`.
    pub on_timeout: Option<SocketCb<C>>,
    /// `us_socket_context_on_long_timeout`.
    pub on_long_timeout: Option<SocketCb<C>>,
    /// `us_socket_context_on_end`.
    pub on_end: Option<SocketCb<C>>,
    /// `us_socket_context_on_connect_error`.
    pub on_connect_error: Option<ConnectErrorCb<C>>,
}

impl<C: Config> Default for ContextCallbacks<C> {
    fn default() -> Self {
        ContextCallbacks {
            on_pre_open: None,
            on_open: None,
            on_close: None,
            on_data: None,
            on_writable: None,
            on_timeout: None,
            on_long_timeout: None,
            on_end: None,
            on_connect_error: None,
        }
    }
}

impl<C: Config> Clone for ContextCallbacks<C> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<C: Config> Copy for ContextCallbacks<C> {}

/// A timer callback (`us_timer_set`'s `cb`). The timer may close itself inside it.
pub type TimerCb<C> = fn(&mut Cx<C>, TimerId);

/// A poll's ready callback: the events that are ready (within its interest) and whether an
/// error or hang-up is pending.
///
/// Readiness is level-triggered: an error or hang-up is reported again on every iteration until
/// the callback stops the poll or the descriptor is closed, so a callback must act on it.
pub type PollCb<C> = fn(&mut Cx<C>, PollId, Interest, bool);

/// A loop-level callback (`wakeup_cb`, `pre_cb`, `post_cb`).
pub type LoopCb<C> = fn(&mut Cx<C>);
/// Called when a closed socket's slot is reclaimed at the end of an iteration, with the ext that
/// lived in it. The C ABI frees the socket's memory here.
pub type ReleaseCb<C> = fn(&mut Cx<C>, SocketId, <C as Config>::SocketExt);

/// The loop-level callbacks of `us_create_loop`.
pub struct LoopCallbacks<C: Config> {
    /// Runs on the loop thread after [`Wake::wake`](crate::Wake::wake) (`wakeup_cb`).
    pub wakeup: Option<LoopCb<C>>,
    /// Runs at the start of every iteration, before waiting (`pre_cb`).
    pub pre: Option<LoopCb<C>>,
    /// Runs at the end of every iteration, after closed sockets are released (`post_cb`).
    pub post: Option<LoopCb<C>>,
    /// Reports each released socket slot and hands back its ext.
    pub released: Option<ReleaseCb<C>>,
}

impl<C: Config> Default for LoopCallbacks<C> {
    fn default() -> Self {
        LoopCallbacks {
            wakeup: None,
            pre: None,
            post: None,
            released: None,
        }
    }
}

impl<C: Config> Clone for LoopCallbacks<C> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<C: Config> Copy for LoopCallbacks<C> {}

/// The low-priority queue's ends and budget (see the `low_priority` module).
#[derive(Debug)]
pub(crate) struct Queue {
    pub(crate) head: u32,
    pub(crate) tail: u32,
    pub(crate) budget: u32,
    pub(crate) len: usize,
    /// The iteration the budget was filled for: refilled on the first low-priority read of
    /// an iteration rather than at every iteration's start.
    pub(crate) iteration: u64,
}

impl Queue {
    pub(crate) const fn new() -> Self {
        Queue {
            head: NIL,
            tail: NIL,
            budget: 0,
            len: 0,
            iteration: 0,
        }
    }
}

/// The loop's whole state but the receive buffer: what every callback gets, and the API.
///
/// A callback receives `&mut Cx` and may call anything on it — close, write, adopt, connect,
/// timers — re-entrantly. Core never holds a slot borrow across a callback and re-checks every
/// handle after one returns. `on_data`'s buffer is lent separately, so an echo needs no copy.
pub struct Cx<C: Config> {
    pub(crate) shim: C::Shim,
    pub(crate) waker: <C::Shim as OsShim>::Waker,
    pub(crate) sockets: Arena<SocketEntry<C>, <StorageOf<C> as Storage<C>>::Sockets>,
    pub(crate) listeners: Arena<ListenEntry<C>, <StorageOf<C> as Storage<C>>::Listeners>,
    pub(crate) contexts: Arena<ContextEntry<C>, <StorageOf<C> as Storage<C>>::Contexts>,
    pub(crate) timers: Arena<TimerEntry<C>, <StorageOf<C> as Storage<C>>::Timers>,
    pub(crate) polls: Arena<PollEntry<C>, <StorageOf<C> as Storage<C>>::Polls>,
    pub(crate) events: <StorageOf<C> as Storage<C>>::Events,
    pub(crate) ext: C::LoopExt,
    pub(crate) callbacks: LoopCallbacks<C>,
    pub(crate) settings: Settings,
    pub(crate) iteration: u64,
    /// Loop time: the clock as of the last wait's return (or a later read, see
    /// [`Cx::now_ms`]); never before `epoch`.
    pub(crate) now: u64,
    /// Between the start and the end of an iteration.
    pub(crate) in_iteration: bool,
    /// A socket timeout set now counts from `now` with no further check: inside an iteration,
    /// outside the sweep, with `now` read since the iteration began (with deadline events:
    /// since its wait returned). The hot path (a request re-arming its timeout) tests this one
    /// byte.
    pub(crate) timeouts_from_now: bool,
    /// No timer work (user timers, the sweep, listener back-off) is due before this time.
    /// Without deadline events: the next deadline as of the wait, lowered by whatever is armed
    /// since, and the timer phase is skipped while `now` is below it. With them: kept at or
    /// below the next deadline at all times (lowered when something is armed, computed again
    /// after each timer phase), and it is what the shim's deadline is armed for.
    pub(crate) wake: u64,
    /// The shim reports [`wake`](Self::wake) as a [`Token::DEADLINE`](crate::Token::DEADLINE)
    /// event ([`OsShim::set_deadline`]): waits take no timeout and loop time is read when first
    /// needed after each wait (see the `run` module).
    pub(crate) deadline_events: bool,
    /// Rare work an iteration must do, one bit per kind (the `chores` module): one test per
    /// iteration while there is none.
    pub(crate) chores: u8,
    /// Origin of the sweep ticks.
    pub(crate) epoch: u64,
    /// Sweep ticks elapsed since `epoch` at the last sweep.
    pub(crate) tick: u64,
    /// When the next sweep runs; `None` until integrated.
    pub(crate) sweep_at: Option<u64>,
    /// Whether the sweep is running its callbacks: a timeout set then counts from `tick`.
    pub(crate) sweeping: bool,
    /// Sockets, listen sockets, non-fallthrough timers and polls that keep `run` going.
    pub(crate) keepalive: usize,
    /// Closed sockets waiting for the end of the iteration (linked through `next`).
    pub(crate) closed_sockets: u32,
    /// Closed listen sockets waiting for the end of the iteration.
    pub(crate) closed_listeners: u32,
    /// Failing sockets waiting for the running callback to return (linked through
    /// `queue_next`; see the `close` module).
    pub(crate) failing: u32,
    /// Sockets whose connect failed at once; their `on_connect_error` runs next iteration.
    pub(crate) pending_connect_errors: usize,
    /// Listen sockets paused for lack of slots or descriptors.
    pub(crate) paused_listeners: usize,
    pub(crate) low_priority: Queue,
    /// The armed timers, ordered by deadline (see the `timer_heap` module).
    pub(crate) timer_index: TimerIndex,
    /// How many context closes have begun (see `context_close`): sockets are stamped with
    /// it when born, and a close leaves sockets born after it began open.
    pub(crate) close_epoch: u32,
    /// How many `context_close` calls are running (nested in each other's callbacks).
    pub(crate) closes_running: u32,
    /// Total `recv` buffer capacity for data (without padding).
    pub(crate) recv_capacity: usize,
}

/// An event loop over a shim: owns all state, the receive buffer and drives the callbacks.
///
/// It dereferences to [`Cx`], so every API call works on the loop directly too.
///
/// Dropping it closes every descriptor it owns (sockets, listen sockets and the descriptors
/// given to polls), drops every ext and then the shim, and runs **no** callback: no `on_close`,
/// no `released`. Close sockets first for their callbacks to run.
pub struct Loop<C: Config> {
    pub(crate) cx: Cx<C>,
    pub(crate) recv: <StorageOf<C> as Storage<C>>::Recv,
}

/// Why a loop could not be built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum LoopError {
    /// The receive buffer has no room for data between its two paddings.
    RecvBufferTooSmall,
    /// The event buffer is empty.
    NoEventSlots,
}

impl core::fmt::Display for LoopError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            LoopError::RecvBufferTooSmall => {
                write!(f, "receive buffer must exceed twice the padding")
            }
            LoopError::NoEventSlots => write!(f, "event buffer must hold at least one event"),
        }
    }
}

impl core::error::Error for LoopError {}

impl<C: Config> Loop<C> {
    /// Builds a loop (`us_create_loop`) in the storage given. Nothing is allocated.
    pub fn new(
        mut shim: C::Shim,
        storage: C::Storage,
        ext: C::LoopExt,
        callbacks: LoopCallbacks<C>,
        settings: Settings,
    ) -> Result<Self, LoopError> {
        let mut memory = storage.into_parts();
        let recv_len = memory.recv.as_mut().len();
        if recv_len <= 2 * RECV_PADDING {
            return Err(LoopError::RecvBufferTooSmall);
        }
        if memory.events.as_mut().is_empty() {
            return Err(LoopError::NoEventSlots);
        }
        let now = shim.now_ms();
        let waker = shim.waker();
        // The probe disarms nothing (no deadline is armed yet); a shim without deadline
        // events says so, and one that fails here is treated the same way.
        let deadline_events = matches!(shim.set_deadline(None), Ok(true));
        Ok(Loop {
            cx: Cx {
                shim,
                waker,
                sockets: Arena::new(memory.sockets),
                listeners: Arena::new(memory.listeners),
                contexts: Arena::new(memory.contexts),
                timers: Arena::new(memory.timers),
                polls: Arena::new(memory.polls),
                events: memory.events,
                ext,
                callbacks,
                settings: Settings {
                    sweep_period_ms: settings.sweep_period_ms.max(1),
                    ..settings
                },
                iteration: 0,
                now,
                in_iteration: false,
                timeouts_from_now: false,
                wake: NEVER,
                deadline_events,
                chores: if deadline_events {
                    0
                } else {
                    crate::chores::ON_TIMEOUTS
                },
                epoch: now,
                tick: 0,
                sweep_at: None,
                sweeping: false,
                keepalive: 0,
                closed_sockets: NIL,
                closed_listeners: NIL,
                failing: NIL,
                pending_connect_errors: 0,
                paused_listeners: 0,
                low_priority: Queue::new(),
                timer_index: TimerIndex::new(),
                close_epoch: 0,
                closes_running: 0,
                recv_capacity: recv_len - 2 * RECV_PADDING,
            },
            recv: memory.recv,
        })
    }
}

impl<C: Config> Deref for Loop<C> {
    type Target = Cx<C>;
    fn deref(&self) -> &Cx<C> {
        &self.cx
    }
}

impl<C: Config> DerefMut for Loop<C> {
    fn deref_mut(&mut self) -> &mut Cx<C> {
        &mut self.cx
    }
}
