//! Growing storage (the `alloc` feature): each arena is one contiguous vector of slots that
//! grows when full, up to a maximum.
//!
//! It grows `STEP` (16) slots at a time: the vector's capacity still doubles (amortised O(1)),
//! but only the slots in use and at most one step more are written, so the pages of the
//! capacity beyond them are never touched and never become resident. Doubling the initialised
//! length made an arena of 5,000 sockets cost the memory of 8,192.
//!
//! One vector rather than chunks: a lookup is an index and a bounds check, no division, and
//! slots may move when the vector grows because nothing outside the arena points into it (users
//! hold handles; the C ABI keeps its own blocks). `benches/slot_lookup.rs` measures it against
//! chunked stores.

use alloc::boxed::Box;
use alloc::vec;
use alloc::vec::Vec;

use crate::event_loop::{
    Config, ContextEntry, ListenEntry, Parts, PollEntry, SocketEntry, Storage, TimerEntry,
};
use crate::recv::RECV_PADDING;
use crate::shim::Event;
use crate::slot::{Slot, SlotStore};

/// The slots a growing arena starts with (fewer if its maximum is lower).
const INITIAL_SLOTS: usize = 16;

/// The slots a full growing arena adds at a time.
const STEP: usize = 16;

/// Slots in one vector that grows 16 slots at a time when full (its capacity doubles),
/// up to `max` slots.
#[derive(Debug)]
pub struct Growing<T> {
    slots: Vec<Slot<T>>,
    max: usize,
}

impl<T> Growing<T> {
    /// A store of `initial` slots (at most `max`) that grows up to `max`.
    pub fn new(initial: usize, max: usize) -> Self {
        let mut slots = Vec::new();
        slots.resize_with(initial.min(max), || Slot::EMPTY);
        Growing { slots, max }
    }

    /// A store of exactly `n` slots, allocated now, that never grows.
    pub fn exactly(n: usize) -> Self {
        Self::new(n, n)
    }

    /// The most slots it will hold.
    pub fn max(&self) -> usize {
        self.max
    }
}

impl<T> SlotStore<T> for Growing<T> {
    fn len(&self) -> usize {
        self.slots.len()
    }
    fn slot(&self, index: usize) -> Option<&Slot<T>> {
        self.slots.get(index)
    }
    fn slot_mut(&mut self, index: usize) -> Option<&mut Slot<T>> {
        self.slots.get_mut(index)
    }
    fn grow(&mut self) -> usize {
        let len = self.slots.len();
        let add = STEP.min(self.max.saturating_sub(len));
        if add == 0 {
            return 0;
        }
        // `reserve` grows the capacity geometrically; only `add` slots are written.
        self.slots.reserve(add);
        self.slots.resize_with(len + add, || Slot::EMPTY);
        add
    }
}

/// How much a [`GrowingStorage`] may hold: slots per arena, receive-buffer data bytes (the
/// padding is added) and events per wait. [`Capacity::default`] is the C library's buffers and
/// arenas bounded only by memory; change it with the `with_*` setters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Capacity {
    /// Socket slots.
    pub sockets: usize,
    /// Listen-socket slots.
    pub listeners: usize,
    /// Context slots.
    pub contexts: usize,
    /// Timer slots.
    pub timers: usize,
    /// Poll slots.
    pub polls: usize,
    /// Receive-buffer data bytes (`LIBUS_RECV_BUFFER_LENGTH`), padding not included.
    pub recv: usize,
    /// Events collected per wait.
    pub events: usize,
}

impl Capacity {
    /// 2^24 slots of each kind (memory runs out first), a 512 KiB receive buffer and 1024
    /// events per wait.
    pub const fn new() -> Capacity {
        Capacity {
            sockets: 1 << 24,
            listeners: 1 << 24,
            contexts: 1 << 24,
            timers: 1 << 24,
            polls: 1 << 24,
            recv: 524_288,
            events: 1024,
        }
    }
    /// This capacity with `n` socket slots.
    #[must_use]
    pub const fn with_sockets(mut self, n: usize) -> Capacity {
        self.sockets = n;
        self
    }
    /// This capacity with `n` listen-socket slots.
    #[must_use]
    pub const fn with_listeners(mut self, n: usize) -> Capacity {
        self.listeners = n;
        self
    }
    /// This capacity with `n` context slots.
    #[must_use]
    pub const fn with_contexts(mut self, n: usize) -> Capacity {
        self.contexts = n;
        self
    }
    /// This capacity with `n` timer slots.
    #[must_use]
    pub const fn with_timers(mut self, n: usize) -> Capacity {
        self.timers = n;
        self
    }
    /// This capacity with `n` poll slots.
    #[must_use]
    pub const fn with_polls(mut self, n: usize) -> Capacity {
        self.polls = n;
        self
    }
    /// This capacity with `bytes` of receive-buffer data.
    #[must_use]
    pub const fn with_recv(mut self, bytes: usize) -> Capacity {
        self.recv = bytes;
        self
    }
    /// This capacity with `n` events per wait.
    #[must_use]
    pub const fn with_events(mut self, n: usize) -> Capacity {
        self.events = n;
        self
    }
}

impl Default for Capacity {
    fn default() -> Self {
        Capacity::new()
    }
}

/// A loop's memory on the heap: every arena a [`Growing`] vector, the receive and event
/// buffers allocated once.
pub struct GrowingStorage<C: Config> {
    sockets: Growing<SocketEntry<C>>,
    listeners: Growing<ListenEntry<C>>,
    contexts: Growing<ContextEntry<C>>,
    timers: Growing<TimerEntry<C>>,
    polls: Growing<PollEntry<C>>,
    recv: Box<[u8]>,
    events: Box<[Event]>,
}

impl<C: Config> GrowingStorage<C> {
    /// Storage whose arenas start small and grow, each up to its maximum in `max`.
    pub fn new(max: Capacity) -> Self {
        Self::with_initial(max, INITIAL_SLOTS)
    }

    /// Storage with exactly `cap` slots of each kind, allocated now and never grown: the heap
    /// counterpart of [`FixedStorage`](crate::FixedStorage), capacities chosen at run time.
    /// Every slot is allocated at once, so set every capacity: [`Capacity::new`]'s maxima
    /// (2^24 slots) are meant for [`new`](Self::new), which only grows as far as it needs.
    pub fn preallocated(cap: Capacity) -> Self {
        Self::with_initial(cap, usize::MAX)
    }

    /// Arenas of `initial` slots (at most their maximum), growing up to `cap`.
    fn with_initial(cap: Capacity, initial: usize) -> Self {
        GrowingStorage {
            sockets: Growing::new(initial, cap.sockets),
            listeners: Growing::new(initial, cap.listeners),
            contexts: Growing::new(initial, cap.contexts),
            timers: Growing::new(initial, cap.timers),
            polls: Growing::new(initial, cap.polls),
            recv: vec![0u8; cap.recv + 2 * RECV_PADDING].into_boxed_slice(),
            events: vec![Event::EMPTY; cap.events].into_boxed_slice(),
        }
    }
}

impl<C: Config> Storage<C> for GrowingStorage<C> {
    type Sockets = Growing<SocketEntry<C>>;
    type Listeners = Growing<ListenEntry<C>>;
    type Contexts = Growing<ContextEntry<C>>;
    type Timers = Growing<TimerEntry<C>>;
    type Polls = Growing<PollEntry<C>>;
    type Recv = Box<[u8]>;
    type Events = Box<[Event]>;

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_a_step_at_a_time_up_to_the_maximum() {
        let mut g = Growing::<u8>::new(16, 40);
        assert_eq!(g.len(), 16);
        assert_eq!(g.grow(), STEP);
        assert_eq!(g.len(), 32);
        assert_eq!(g.grow(), 8, "capped at the maximum");
        assert_eq!(g.grow(), 0, "full");
        assert_eq!(g.len(), 40);
    }

    #[test]
    fn only_a_step_beyond_the_slots_in_use_is_initialised() {
        let mut g = Growing::<u64>::new(16, 1 << 20);
        while g.len() < 5_000 {
            g.grow();
        }
        assert_eq!(
            g.len(),
            5_008,
            "whole steps of {STEP}, not a doubling to 8,192"
        );
        assert!(g.slots.capacity() >= g.len());
    }

    #[test]
    fn exactly_n_is_allocated_at_once_and_never_grows() {
        let mut g = Growing::<u8>::exactly(5);
        assert_eq!(g.len(), 5);
        assert_eq!(g.grow(), 0);
        let mut empty = Growing::<u8>::exactly(0);
        assert_eq!(empty.grow(), 0, "a zero capacity stays zero");
    }
}
