//! Growing storage (the `alloc` feature): each arena is a table of chunks of slots, allocated
//! when the arena needs slots and released when their slots are all free, up to a maximum.
//!
//! # Layout
//!
//! A chunk is a power of two of slots ([`Growing::CHUNK_SLOTS`]) that never moves once
//! allocated: a vector that grows by reallocating leaves its old copies in the allocator's heap,
//! which cost a third more than the slots themselves at 5,000 idle sockets. A chunk is written
//! only as far as its slots have been used, so its memory becomes resident a slot at a time.
//!
//! A lookup in chunk 0 is what a single vector's was: an index and a bounds check, because
//! chunk 0 is kept apart from the table. Beyond it, a lookup is `index >> SHIFT` into the table
//! and `index & MASK` into the chunk: a shift, a mask, one more load and bounds check, never a
//! division (`benches/slot_lookup.rs` measures both). Allocation prefers the lowest slots, so a
//! loop with up to a chunk of objects, and the busiest part of a bigger one, stays in chunk 0.
//!
//! A chunk is sized in bytes, not slots: the smallest power of two of slots that reaches 128
//! KiB. That is glibc's threshold for serving an allocation with an `mmap` of its own, so a
//! released chunk goes back to the OS rather than into the middle of the heap, which glibc never
//! returns (with 256-slot chunks, closing 4,950 of 5,000 idle sockets gave back nothing: the
//! survivors' chunk, allocated last, sat above the others). glibc raises that threshold the
//! first time such a block is freed, so chunks allocated after a release may come from the
//! heap: still reused, not always returned. An arena whose maximum is below a chunk gets one
//! chunk of exactly its maximum.
//!
//! # Allocation and release
//!
//! Each chunk keeps its own free list (threaded through its slots) and a count of occupants; a
//! two-level bitmap finds the lowest chunk with room. A new occupant goes to the lowest chunk
//! with a free slot (within it, the slot freed last, else the next never-used one); only when
//! every allocated chunk is full is a chunk allocated, at the lowest released position. So
//! objects concentrate in low chunks and high ones empty. A chunk whose last occupant leaves is
//! released at once, unless no other allocated chunk has room (then it stays, so that an arena
//! hovering at a chunk boundary does not allocate and free a chunk per connection): at most one
//! empty chunk is ever kept. Insert and remove are O(1): the bitmap's summary word covers 4,096
//! chunks, and a release drops one chunk's slots, each written by an insert.
//!
//! The worst case is survivors spread one per chunk: closing all but every
//! [`CHUNK_SLOTS`](Growing::CHUNK_SLOTS)-th object releases nothing, and the arena keeps a chunk
//! per survivor (of which only the pages written are resident).
//!
//! Indices stay where they are: a released chunk leaves a hole that lookups and walks over
//! `0..len()` find empty. `len()` is one past the highest slot written in an allocated chunk, so
//! it shrinks when the top chunk goes.
//!
//! # Generations
//!
//! A released chunk forgets its slots' generations, but its entry in the table keeps a base:
//! the generation past every handle its slots ever gave out (it tracks the furthest any slot
//! moved past the base). Re-created, the chunk's slots all start at that base, so a handle into
//! a released chunk stays stale after the chunk comes back and its slot is reused. Generations
//! wrap at 2^30 as everywhere else.
//!
//! The first `initial` slots of [`Growing::new`] are allocated at once and never released (all
//! of them for [`GrowingStorage::preallocated`]); [`GrowingStorage::new`] allocates nothing
//! until the first object.

use alloc::boxed::Box;
use alloc::vec;
use alloc::vec::Vec;
use core::mem::size_of;

use crate::event_loop::{
    Config, ContextEntry, ListenEntry, Parts, PollEntry, SocketEntry, Storage, TimerEntry,
};
use crate::handle::GEN_MASK;
use crate::recv::RECV_PADDING;
use crate::shim::Event;
use crate::slot::{Slot, SlotStore};

/// The bytes a chunk reaches at least: glibc's default `mmap` threshold (see the module docs).
const CHUNK_BYTES: usize = 128 * 1024;

/// Chunks hold between 2^4 and 2^16 slots, whatever the slot size.
const MIN_SHIFT: u32 = 4;
const MAX_SHIFT: u32 = 16;

/// No slot: the end of a free list.
const NO_SLOT: u32 = u32::MAX;

/// log2 of the slots per chunk for slots of `slot_bytes`: the smallest power of two of them
/// that reaches [`CHUNK_BYTES`].
const fn chunk_shift(slot_bytes: usize) -> u32 {
    let mut shift = MIN_SHIFT;
    while shift < MAX_SHIFT && slot_bytes.saturating_mul(1 << shift) < CHUNK_BYTES {
        shift += 1;
    }
    shift
}

/// What the table knows of a chunk, allocated or released.
#[derive(Debug)]
struct Chunk {
    /// The first free slot written (an arena index), linked through `next_free`.
    free: u32,
    /// Occupied slots.
    live: u32,
    /// The generation the chunk's slots start at when it is (re)allocated.
    base: u32,
    /// How far past `base` (mod 2^30) any slot's generation has moved in this allocation.
    span: u32,
}

impl Chunk {
    const NEW: Chunk = Chunk {
        free: NO_SLOT,
        live: 0,
        base: 0,
        span: 0,
    };
}

/// The slots of chunk `c`: `first` for chunk 0, else `rest[c]`.
fn slots_of<'a, T>(
    first: &'a mut Vec<Slot<T>>,
    rest: &'a mut [Vec<Slot<T>>],
    c: usize,
) -> Option<&'a mut Vec<Slot<T>>> {
    if c == 0 {
        Some(first)
    } else {
        rest.get_mut(c)
    }
}

/// A set of chunk numbers whose lowest member is found in a word or two: a bit per chunk and a
/// summary bit per word of them (one summary word covers 4,096 chunks).
#[derive(Debug, Default)]
struct Bits {
    words: Vec<u64>,
    summary: Vec<u64>,
    len: usize,
}

impl Bits {
    fn insert(&mut self, i: usize) {
        let (w, bit) = (i / 64, 1u64 << (i % 64));
        if w >= self.words.len() {
            self.words.resize(w + 1, 0);
            self.summary.resize(w / 64 + 1, 0);
        }
        if let (Some(word), Some(sum)) = (self.words.get_mut(w), self.summary.get_mut(w / 64)) {
            if *word & bit == 0 {
                *word |= bit;
                *sum |= 1 << (w % 64);
                self.len += 1;
            }
        }
    }

    fn remove(&mut self, i: usize) {
        let (w, bit) = (i / 64, 1u64 << (i % 64));
        if let (Some(word), Some(sum)) = (self.words.get_mut(w), self.summary.get_mut(w / 64)) {
            if *word & bit != 0 {
                *word &= !bit;
                if *word == 0 {
                    *sum &= !(1 << (w % 64));
                }
                self.len -= 1;
            }
        }
    }

    fn first(&self) -> Option<usize> {
        let (s, sum) = self.summary.iter().enumerate().find(|(_, s)| **s != 0)?;
        let w = s * 64 + sum.trailing_zeros() as usize;
        let word = self.words.get(w)?;
        Some(w * 64 + word.trailing_zeros() as usize)
    }

    fn len(&self) -> usize {
        self.len
    }
}

/// Slots in chunks of [`CHUNK_SLOTS`](Self::CHUNK_SLOTS), allocated as the arena needs them
/// and released when all their slots are free, up to `max` slots (see the module docs).
#[derive(Debug)]
pub struct Growing<T> {
    /// Chunk 0's slots (written so far; empty and unallocated while released), apart from the
    /// table so that a lookup there costs what one vector's does.
    first: Vec<Slot<T>>,
    /// Chunk `c`'s slots in `rest[c]`, for `c >= 1`; `rest[0]` stays empty.
    rest: Vec<Vec<Slot<T>>>,
    /// Every chunk's free list, count and generations, chunk 0 included.
    chunks: Vec<Chunk>,
    /// Allocated chunks with a free slot (on their list or never written).
    room: Bits,
    /// Released chunks below `chunks.len()`.
    released: Bits,
    /// Chunks below this one hold the `initial` slots: never released.
    pinned: usize,
    /// Slots of the allocated chunks.
    allocated: usize,
    /// One past the highest slot written in an allocated chunk (what `len` reports).
    end: usize,
    max: usize,
}

impl<T> Growing<T> {
    /// log2 of [`CHUNK_SLOTS`](Self::CHUNK_SLOTS).
    const SHIFT: u32 = chunk_shift(size_of::<Slot<T>>());
    const MASK: usize = Self::CHUNK_SLOTS - 1;
    /// Slots per chunk: the smallest power of two of `Slot<T>` that reaches 128 KiB (between
    /// 16 and 65,536).
    pub const CHUNK_SLOTS: usize = 1 << Self::SHIFT;

    /// A store of up to `max` slots (at most 2^32 - 1) whose first `initial` slots are
    /// allocated now and kept for its life; the rest come and go a chunk at a time.
    pub fn new(initial: usize, max: usize) -> Self {
        let max = max.min(NO_SLOT as usize);
        let mut g = Growing {
            first: Vec::new(),
            rest: Vec::new(),
            chunks: Vec::new(),
            room: Bits::default(),
            released: Bits::default(),
            pinned: 0,
            allocated: 0,
            end: 0,
            max,
        };
        while g.allocated < initial.min(max) && g.add_chunk() {}
        g.pinned = g.chunks.len();
        g
    }

    /// A store of exactly `n` slots, allocated now, that never grows nor shrinks.
    pub fn exactly(n: usize) -> Self {
        Self::new(n, n)
    }

    /// The most slots it will hold.
    pub fn max(&self) -> usize {
        self.max
    }

    /// The slots of the chunks allocated now (only the pages of slots written so far are
    /// resident).
    pub fn allocated(&self) -> usize {
        self.allocated
    }

    /// The slots chunk `c` has when allocated: a whole chunk, or what is left below `max`.
    fn chunk_len(&self, c: usize) -> usize {
        let start = c.saturating_mul(Self::CHUNK_SLOTS);
        Self::CHUNK_SLOTS.min(self.max.saturating_sub(start))
    }

    /// Allocates a chunk at the lowest released position, else at the end of the table; false
    /// when the store is at its maximum.
    fn add_chunk(&mut self) -> bool {
        let c = self.released.first().unwrap_or(self.chunks.len());
        let n = self.chunk_len(c);
        if n == 0 {
            return false;
        }
        if c == self.chunks.len() {
            self.chunks.push(Chunk::NEW);
            self.rest.push(Vec::new());
        }
        let Some(slots) = slots_of(&mut self.first, &mut self.rest, c) else {
            return false;
        };
        *slots = Vec::with_capacity(n);
        self.released.remove(c);
        self.room.insert(c);
        self.allocated += n;
        true
    }

    /// Frees chunk `c`'s memory; its next allocation starts past every generation it gave out.
    fn release(&mut self, c: usize) {
        let n = self.chunk_len(c);
        let (Some(chunk), Some(slots)) = (
            self.chunks.get_mut(c),
            slots_of(&mut self.first, &mut self.rest, c),
        ) else {
            return;
        };
        *slots = Vec::new();
        chunk.free = NO_SLOT;
        chunk.base = chunk.base.wrapping_add(chunk.span) & GEN_MASK;
        chunk.span = 0;
        self.room.remove(c);
        self.released.insert(c);
        self.allocated -= n;
        if self.end.saturating_sub(1) >> Self::SHIFT == c {
            // The top chunk went: the end is that of the next allocated chunk down. Amortised
            // O(1): chunks are allocated lowest position first, so before this scan can pass a
            // released position again, that position must have been allocated again.
            self.end = (0..c)
                .rev()
                .find_map(|k| {
                    let slots = slots_of(&mut self.first, &mut self.rest, k)?;
                    (slots.capacity() > 0).then(|| (k << Self::SHIFT) + slots.len())
                })
                .unwrap_or(0);
        }
    }
}

impl<T> SlotStore<T> for Growing<T> {
    fn len(&self) -> usize {
        self.end
    }
    #[inline]
    fn slot(&self, index: usize) -> Option<&Slot<T>> {
        if let Some(s) = self.first.get(index) {
            return Some(s);
        }
        self.rest.get(index >> Self::SHIFT)?.get(index & Self::MASK)
    }
    #[inline]
    fn slot_mut(&mut self, index: usize) -> Option<&mut Slot<T>> {
        if let Some(s) = self.first.get_mut(index) {
            return Some(s);
        }
        self.rest
            .get_mut(index >> Self::SHIFT)?
            .get_mut(index & Self::MASK)
    }
    fn keeps_free_slots(&self) -> bool {
        true
    }
    fn reserve_free(&mut self) -> bool {
        self.room.len() > 0 || self.add_chunk()
    }
    fn take_free(&mut self) -> Option<usize> {
        if !self.reserve_free() {
            return None;
        }
        let c = self.room.first()?;
        let n = self.chunk_len(c);
        let chunk = self.chunks.get_mut(c)?;
        let slots = slots_of(&mut self.first, &mut self.rest, c)?;
        let index = if chunk.free != NO_SLOT {
            let index = chunk.free as usize;
            let slot = slots.get_mut(index & Self::MASK)?;
            chunk.free = slot.next_free;
            slot.next_free = NO_SLOT;
            index
        } else {
            let index = (c << Self::SHIFT) + slots.len();
            slots.push(Slot::free_at(chunk.base));
            self.end = self.end.max(index + 1);
            index
        };
        chunk.live += 1;
        if chunk.free == NO_SLOT && slots.len() >= n {
            self.room.remove(c);
        }
        Some(index)
    }
    fn put_free(&mut self, index: usize) {
        let c = index >> Self::SHIFT;
        let (Some(chunk), Some(slots)) = (
            self.chunks.get_mut(c),
            slots_of(&mut self.first, &mut self.rest, c),
        ) else {
            return;
        };
        let Some(slot) = slots.get_mut(index & Self::MASK) else {
            return;
        };
        slot.next_free = chunk.free;
        chunk.free = index as u32;
        let moved = slot.generation.wrapping_sub(chunk.base) & GEN_MASK;
        chunk.span = chunk.span.max(moved);
        chunk.live = chunk.live.saturating_sub(1);
        let empty = chunk.live == 0;
        self.room.insert(c);
        if empty && c >= self.pinned && self.room.len() > 1 {
            self.release(c);
        }
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

/// A loop's memory on the heap: every arena a [`Growing`] table of chunks, the receive and
/// event buffers allocated once.
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
    /// Storage whose arenas allocate nothing yet: each grows a chunk at a time as it needs
    /// slots, up to its maximum in `max`, and gives back chunks that empty.
    pub fn new(max: Capacity) -> Self {
        Self::with_initial(max, 0)
    }

    /// Storage with exactly `cap` slots of each kind, allocated now, never grown nor released:
    /// the heap counterpart of [`FixedStorage`](crate::FixedStorage), capacities chosen at run
    /// time. Every slot is allocated at once (and written as it is first used), so set every
    /// capacity: [`Capacity::new`]'s maxima (2^24 slots) are meant for [`new`](Self::new),
    /// which only grows as far as it needs.
    pub fn preallocated(cap: Capacity) -> Self {
        Self::with_initial(cap, usize::MAX)
    }

    /// Arenas whose first `initial` slots (at most their maximum) are allocated now and kept,
    /// growing up to `cap`.
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
    extern crate std;

    use super::*;
    use crate::slot::Arena;
    use proptest::prelude::*;
    use std::collections::BTreeMap;
    use std::vec::Vec;

    /// A value whose slot is 8,204 bytes: chunks of 16 slots, so tests cross chunks quickly.
    #[derive(Debug, PartialEq)]
    struct Big(u32, [u8; 8188]);

    fn big(id: u32) -> Big {
        Big(id, [0; 8188])
    }

    const C: usize = 16;

    type BigArena = Arena<Big, Growing<Big>>;

    fn arena(max: usize) -> BigArena {
        Arena::new(Growing::new(0, max))
    }

    fn allocated(a: &BigArena) -> usize {
        a.store().allocated()
    }

    #[test]
    fn chunks_are_the_smallest_power_of_two_of_slots_reaching_128_kib() {
        fn check<T>(expected: usize) {
            let n = Growing::<T>::CHUNK_SLOTS;
            let bytes = size_of::<Slot<T>>();
            assert_eq!(n, expected, "slots of {bytes} bytes");
            assert!(n * bytes >= CHUNK_BYTES);
            assert!(n / 2 * bytes < CHUNK_BYTES);
        }
        check::<Big>(C);
        check::<u64>(8192);
        check::<[u64; 11]>(2048);
        assert_eq!(chunk_shift(1), MAX_SHIFT, "tiny slots: capped");
        assert_eq!(
            chunk_shift(1 << 20),
            MIN_SHIFT,
            "huge slots: at least 16 per chunk"
        );
    }

    #[test]
    fn nothing_is_allocated_until_needed_and_then_a_chunk_at_a_time() {
        let mut a = arena(1 << 20);
        assert_eq!((allocated(&a), a.slots()), (0, 0));
        let handles: Vec<_> = (0..40).map(|i| a.insert(big(i)).unwrap()).collect();
        let indices: Vec<u32> = handles.iter().map(|h| h.0).collect();
        assert_eq!(indices, (0..40).collect::<Vec<u32>>(), "lowest slots first");
        assert_eq!(allocated(&a), 3 * C);
        assert_eq!(a.slots(), 40, "one past the highest slot written");
        for (i, &(index, generation)) in handles.iter().enumerate() {
            assert_eq!(a.get(index, generation).map(|b| b.0), Some(i as u32));
        }
        assert_eq!(a.at(40), None, "allocated, never written");
    }

    #[test]
    fn an_empty_chunk_is_released_and_its_slots_are_gone() {
        let mut a = arena(1 << 20);
        let handles: Vec<_> = (0..40).map(|i| a.insert(big(i)).unwrap()).collect();
        for &(index, generation) in &handles[C..2 * C] {
            assert!(a.remove(index, generation).is_some());
        }
        assert_eq!(allocated(&a), 2 * C, "chunk 1 released");
        assert_eq!(a.live(), 40 - C);
        assert_eq!(a.slots(), 40, "indices keep their meaning");
        for &(index, generation) in &handles[C..2 * C] {
            assert_eq!(a.at(index), None);
            assert_eq!(a.get(index, generation), None);
            assert_eq!(a.remove(index, generation), None);
        }
        for &(index, generation) in handles[..C].iter().chain(&handles[2 * C..]) {
            assert_eq!(a.get(index, generation).map(|b| b.0), Some(index));
        }
        // Room in chunk 0, then the top chunk empties: walks over `0..slots()` shrink with it.
        for &(index, generation) in handles[..1].iter().chain(&handles[2 * C..]) {
            assert!(a.remove(index, generation).is_some());
        }
        assert_eq!(allocated(&a), C);
        assert_eq!(
            a.slots(),
            C as u32,
            "chunk 0's end: chunks 1 and 2 are released"
        );
    }

    #[test]
    fn new_occupants_fill_allocated_chunks_before_a_released_one_comes_back() {
        let mut a = arena(1 << 20);
        let handles: Vec<_> = (0..40).map(|i| a.insert(big(i)).unwrap()).collect();
        for &(index, generation) in &handles[C..2 * C] {
            a.remove(index, generation);
        }
        let refill: Vec<u32> = (0..8).map(|i| a.insert(big(100 + i)).unwrap().0).collect();
        assert_eq!(
            refill,
            (40..48).collect::<Vec<u32>>(),
            "chunk 2's room first"
        );
        assert_eq!(allocated(&a), 2 * C);
        let (index, _) = a.insert(big(200)).unwrap();
        assert_eq!(
            index, C as u32,
            "then chunk 1, re-created, not a new chunk 3"
        );
        assert_eq!(allocated(&a), 3 * C);
    }

    #[test]
    fn a_handle_into_a_released_chunk_stays_stale_after_the_chunk_comes_back() {
        let mut a = arena(1 << 20);
        // Chunk 0 full; in chunk 1, slot 17 is reused five times, slot 16 never.
        let first: Vec<_> = (0..16).map(|i| a.insert(big(i)).unwrap()).collect();
        let h16 = a.insert(big(16)).unwrap();
        let mut old17 = Vec::new();
        for round in 0..6 {
            let h = a.insert(big(17)).unwrap();
            assert_eq!(h.0, 17, "round {round}");
            old17.push(h);
            if round < 5 {
                a.remove(h.0, h.1);
            }
        }
        let last = old17[5];
        assert_eq!(last.1, 5);
        // Room in chunk 0, then chunk 1 empties: it is released.
        a.remove(first[0].0, first[0].1);
        a.remove(h16.0, h16.1);
        a.remove(last.0, last.1);
        assert_eq!(allocated(&a), C, "chunk 1 released");
        // Fill chunk 0 again; the next occupants re-create chunk 1 from its start.
        assert_eq!(a.insert(big(20)).unwrap().0, 0);
        let again: Vec<_> = (0..3).map(|i| a.insert(big(30 + i)).unwrap()).collect();
        assert_eq!(allocated(&a), 2 * C);
        assert_eq!(again.iter().map(|h| h.0).collect::<Vec<_>>(), [16, 17, 18]);
        for stale in old17.iter().chain([&h16]) {
            assert_eq!(a.get(stale.0, stale.1), None, "stale {stale:?}");
            assert_eq!(a.get_mut(stale.0, stale.1), None, "stale {stale:?}");
            assert_eq!(a.remove(stale.0, stale.1), None, "stale {stale:?}");
        }
        for (i, fresh) in again.iter().enumerate() {
            assert_eq!(fresh.1, 6, "{fresh:?}: past slot 17's last handle (5)");
            assert_eq!(a.get(fresh.0, fresh.1).map(|b| b.0), Some(30 + i as u32));
        }
    }

    #[test]
    fn at_most_one_empty_chunk_is_kept() {
        let mut a = arena(1 << 20);
        let h = a.insert(big(0)).unwrap();
        a.remove(h.0, h.1);
        assert_eq!(allocated(&a), C, "the only chunk stays: no thrash at zero");
        let full: Vec<_> = (0..C as u32).map(|i| a.insert(big(i)).unwrap()).collect();
        let over = a.insert(big(99)).unwrap();
        assert_eq!(allocated(&a), 2 * C);
        a.remove(over.0, over.1);
        assert_eq!(
            allocated(&a),
            2 * C,
            "a boundary: chunk 1 kept while chunk 0 is full"
        );
        let over = a.insert(big(99)).unwrap();
        assert_eq!(over.0, C as u32, "the kept chunk is reused");
        let extra: Vec<_> = (0..2 * C as u32 - 1)
            .map(|i| a.insert(big(i)).unwrap())
            .collect();
        assert_eq!(allocated(&a), 3 * C);
        for h in extra.iter().chain([&over]) {
            a.remove(h.0, h.1);
        }
        assert_eq!(
            allocated(&a),
            2 * C,
            "two chunks emptied: one kept, one released"
        );
        for h in &full {
            a.remove(h.0, h.1);
        }
        assert_eq!(
            allocated(&a),
            C,
            "chunk 0 emptied with room elsewhere: released"
        );
        assert_eq!(a.live(), 0);
    }

    #[test]
    fn the_initial_slots_are_never_released_and_the_maximum_holds() {
        let mut a = Arena::new(Growing::<Big>::new(20, 40));
        assert_eq!(
            a.store().allocated(),
            2 * C,
            "the chunks holding the first 20 slots"
        );
        let handles: Vec<_> = (0..40).map(|i| a.insert(big(i)).unwrap()).collect();
        assert_eq!(
            a.store().allocated(),
            40,
            "the last chunk holds only up to the maximum"
        );
        assert_eq!(a.insert(big(40)).map(|h| h.0), Err(big(40)), "full");
        assert!(!a.ensure_free());
        for h in &handles {
            a.remove(h.0, h.1);
        }
        assert_eq!(
            a.store().allocated(),
            2 * C,
            "chunk 2 released, the pinned two kept"
        );
        assert!(a.ensure_free());
        let exact: BigArena = Arena::new(Growing::exactly(5));
        assert_eq!(exact.store().allocated(), 5);
        assert_eq!(exact.slots(), 0, "allocated, none written yet");
        let mut none: BigArena = Arena::new(Growing::exactly(0));
        assert!(!none.ensure_free(), "a zero capacity stays zero");
        assert_eq!(none.insert(big(0)).map(|h| h.0), Err(big(0)));
    }

    #[test]
    fn the_bitmap_finds_the_lowest_member_across_words() {
        let mut b = Bits::default();
        assert_eq!(b.first(), None);
        for i in [70_000, 5_000, 64, 4_096] {
            b.insert(i);
        }
        b.insert(64);
        assert_eq!((b.first(), b.len()), (Some(64), 4));
        b.remove(64);
        assert_eq!(b.first(), Some(4_096));
        b.remove(4_096);
        b.remove(4_096);
        assert_eq!((b.first(), b.len()), (Some(5_000), 2));
        b.remove(5_000);
        b.remove(70_000);
        assert_eq!((b.first(), b.len()), (None, 0));
    }

    #[derive(Clone, Debug)]
    enum Op {
        /// Insert a new value.
        Insert,
        /// Remove the `n`-th live value (mod the live count).
        Remove(usize),
        /// Remove every live value in chunk `n` (mod the chunks in use).
        EmptyChunk(usize),
        /// Try a stale handle (the `n`-th dead one) on get, get_mut, remove.
        Stale(usize),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => Just(Op::Insert),
            3 => any::<usize>().prop_map(Op::Remove),
            1 => any::<usize>().prop_map(Op::EmptyChunk),
            2 => any::<usize>().prop_map(Op::Stale),
        ]
    }

    proptest! {
        /// Random inserts, removes (single and whole chunks) and stale accesses against a model
        /// (a map from live handles to values, a list of dead handles). After every step: every
        /// live handle finds its value, every dead one nothing; `at` over all indices sees
        /// exactly the live ones; at most one allocated chunk has no live slot; the maximum
        /// (100 slots, not a whole number of chunks) holds.
        #[test]
        fn the_arena_matches_a_model(ops in proptest::collection::vec(op(), 1..400)) {
            const MAX: usize = 100;
            let mut a = arena(MAX);
            let mut live: BTreeMap<(u32, u32), u32> = BTreeMap::new();
            let mut dead: Vec<(u32, u32)> = Vec::new();
            let mut next = 0u32;
            for op in ops {
                match op {
                    Op::Insert => match a.insert(big(next)) {
                        Ok(h) => {
                            let fresh = live.insert(h, next).is_none();
                            prop_assert!(fresh, "{:?} handed out twice", h);
                            next += 1;
                        }
                        Err(v) => {
                            prop_assert_eq!(v.0, next);
                            prop_assert_eq!(live.len(), MAX, "refused below the maximum");
                        }
                    },
                    Op::Remove(n) => {
                        if let Some(&h) = live.keys().nth(n % live.len().max(1)) {
                            let v = live.remove(&h);
                            prop_assert_eq!(a.remove(h.0, h.1).map(|b| b.0), v);
                            dead.push(h);
                        }
                    }
                    Op::EmptyChunk(n) => {
                        let mut chunks: Vec<u32> = live.keys().map(|h| h.0 / C as u32).collect();
                        chunks.dedup();
                        if let Some(&c) = chunks.get(n % chunks.len().max(1)) {
                            let gone: Vec<_> =
                                live.keys().copied().filter(|h| h.0 / C as u32 == c).collect();
                            for h in gone {
                                let v = live.remove(&h);
                                prop_assert_eq!(a.remove(h.0, h.1).map(|b| b.0), v);
                                dead.push(h);
                            }
                        }
                    }
                    Op::Stale(n) => {
                        if let Some(&h) = dead.get(n % dead.len().max(1)) {
                            prop_assert!(a.get(h.0, h.1).is_none());
                            prop_assert!(a.get_mut(h.0, h.1).is_none());
                            prop_assert!(a.remove(h.0, h.1).is_none());
                        }
                    }
                }
                prop_assert_eq!(a.live(), live.len());
                for (h, v) in &live {
                    prop_assert_eq!(a.get(h.0, h.1).map(|b| b.0), Some(*v));
                }
                for h in &dead {
                    prop_assert!(a.get(h.0, h.1).is_none(), "dead {:?} found", h);
                }
                let seen: Vec<(u32, u32)> = (0..a.slots())
                    .filter_map(|i| a.at(i).map(|(g, _)| (i, g)))
                    .collect();
                prop_assert_eq!(seen, live.keys().copied().collect::<Vec<_>>());
                let mut used: Vec<u32> = live.keys().map(|h| h.0 / C as u32).collect();
                used.dedup();
                prop_assert!(
                    allocated(&a) <= (used.len() + 1) * C,
                    "{} slots allocated for {} chunks in use", allocated(&a), used.len()
                );
            }
        }
    }
}
