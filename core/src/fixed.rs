//! Fixed storage: arrays sized by const generics and built by a `const fn`, so all of a loop's
//! memory is visible at link time and can live in a `static`.
//!
//! Arrays, not heapless containers: a generational arena needs every slot to exist from the
//! start (an index is stable and a freed slot keeps its generation for the next occupant), and
//! the free list runs through the slots themselves. A `heapless::Vec` grows and shrinks at its
//! end, which is not what an arena does; an array of [`Slot`]s is exactly the arena's memory.

use core::marker::PhantomData;

use crate::event_loop::{
    Config, ContextEntry, ListenEntry, Parts, PollEntry, SocketEntry, Storage, TimerEntry,
};
use crate::shim::Event;
use crate::slot::Slot;

/// All of a loop's memory in arrays: `SOCKETS`, `LISTENERS`, `CONTEXTS`, `TIMERS` and `POLLS`
/// slots, a receive buffer of `RECV` bytes **including** the padding on both sides (so `RECV`
/// must exceed `2 * RECV_PADDING`; the default 4160 gives 4 KiB of data) and `EVENTS` events
/// per wait (default 64). Nothing grows: a full arena makes the call that needed a slot fail
/// with a capacity error.
///
/// Use it by value (`type Storage = FixedStorage<Self, ...>`; the loop then holds the arrays)
/// or borrowed for the loop's life (`type Storage = &'static mut FixedStorage<Self, ...>`),
/// e.g. from a `static` through [`static_cell`](https://docs.rs/static_cell):
///
/// ```ignore
/// type Memory = FixedStorage<Demo, 8, 2, 2, 4, 2>;
/// static MEMORY: StaticCell<Memory> = StaticCell::new();
/// let lp = Loop::new(shim, MEMORY.init_with(Memory::new), ext, callbacks, settings)?;
/// ```
pub struct FixedStorage<
    C: Config,
    const SOCKETS: usize,
    const LISTENERS: usize,
    const CONTEXTS: usize,
    const TIMERS: usize,
    const POLLS: usize,
    const RECV: usize = 4160,
    const EVENTS: usize = 64,
> {
    sockets: [Slot<SocketEntry<C>>; SOCKETS],
    listeners: [Slot<ListenEntry<C>>; LISTENERS],
    contexts: [Slot<ContextEntry<C>>; CONTEXTS],
    timers: [Slot<TimerEntry<C>>; TIMERS],
    polls: [Slot<PollEntry<C>>; POLLS],
    recv: [u8; RECV],
    events: [Event; EVENTS],
    _config: PhantomData<fn() -> C>,
}

impl<
        C: Config,
        const SOCKETS: usize,
        const LISTENERS: usize,
        const CONTEXTS: usize,
        const TIMERS: usize,
        const POLLS: usize,
        const RECV: usize,
        const EVENTS: usize,
    > FixedStorage<C, SOCKETS, LISTENERS, CONTEXTS, TIMERS, POLLS, RECV, EVENTS>
{
    /// Empty storage, built at compile time if wanted (`const`).
    pub const fn new() -> Self {
        FixedStorage {
            sockets: [const { Slot::EMPTY }; SOCKETS],
            listeners: [const { Slot::EMPTY }; LISTENERS],
            contexts: [const { Slot::EMPTY }; CONTEXTS],
            timers: [const { Slot::EMPTY }; TIMERS],
            polls: [const { Slot::EMPTY }; POLLS],
            recv: [0; RECV],
            events: [Event::EMPTY; EVENTS],
            _config: PhantomData,
        }
    }
}

impl<
        C: Config,
        const SOCKETS: usize,
        const LISTENERS: usize,
        const CONTEXTS: usize,
        const TIMERS: usize,
        const POLLS: usize,
        const RECV: usize,
        const EVENTS: usize,
    > Default for FixedStorage<C, SOCKETS, LISTENERS, CONTEXTS, TIMERS, POLLS, RECV, EVENTS>
{
    fn default() -> Self {
        Self::new()
    }
}

/// By value: the loop owns the arrays.
impl<
        C: Config,
        const SOCKETS: usize,
        const LISTENERS: usize,
        const CONTEXTS: usize,
        const TIMERS: usize,
        const POLLS: usize,
        const RECV: usize,
        const EVENTS: usize,
    > Storage<C> for FixedStorage<C, SOCKETS, LISTENERS, CONTEXTS, TIMERS, POLLS, RECV, EVENTS>
{
    type Sockets = [Slot<SocketEntry<C>>; SOCKETS];
    type Listeners = [Slot<ListenEntry<C>>; LISTENERS];
    type Contexts = [Slot<ContextEntry<C>>; CONTEXTS];
    type Timers = [Slot<TimerEntry<C>>; TIMERS];
    type Polls = [Slot<PollEntry<C>>; POLLS];
    type Recv = [u8; RECV];
    type Events = [Event; EVENTS];

    fn into_parts(self) -> Parts<C, Self> {
        Parts {
            sockets: self.sockets,
            listeners: self.listeners,
            contexts: self.contexts,
            timers: self.timers,
            polls: self.polls,
            recv: self.recv,
            events: self.events,
        }
    }
}

/// Borrowed for the loop's life (typically `&'static mut`, from a `static`).
impl<
        'a,
        C: Config,
        const SOCKETS: usize,
        const LISTENERS: usize,
        const CONTEXTS: usize,
        const TIMERS: usize,
        const POLLS: usize,
        const RECV: usize,
        const EVENTS: usize,
    > Storage<C>
    for &'a mut FixedStorage<C, SOCKETS, LISTENERS, CONTEXTS, TIMERS, POLLS, RECV, EVENTS>
{
    type Sockets = &'a mut [Slot<SocketEntry<C>>];
    type Listeners = &'a mut [Slot<ListenEntry<C>>];
    type Contexts = &'a mut [Slot<ContextEntry<C>>];
    type Timers = &'a mut [Slot<TimerEntry<C>>];
    type Polls = &'a mut [Slot<PollEntry<C>>];
    type Recv = &'a mut [u8];
    type Events = &'a mut [Event];

    fn into_parts(self) -> Parts<C, Self> {
        Parts {
            sockets: &mut self.sockets,
            listeners: &mut self.listeners,
            contexts: &mut self.contexts,
            timers: &mut self.timers,
            polls: &mut self.polls,
            recv: &mut self.recv,
            events: &mut self.events,
        }
    }
}
