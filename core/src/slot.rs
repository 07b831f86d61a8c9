//! Arenas of generational slots over a small store trait: where every object of a loop lives.
//!
//! A [`SlotStore`] is a run of [`Slot`]s: an array or a slice of them (fixed), or chunks of them
//! allocated and released as the arena needs them (`Growing`, the `alloc` feature). A store may
//! move or release slots: core never keeps a reference into a store across a call that can grow
//! or shrink it (users hold handles, never references).
//!
//! Free slots are kept one of two ways. By default the arena threads one free list through the
//! slots, and a store only has to grow (or not: fixed storage). A store that releases memory
//! must know which of its slots are free, so it keeps them itself and the arena asks it
//! ([`SlotStore::keeps_free_slots`]).

use crate::handle::GEN_MASK;

const NO_SLOT: u32 = u32::MAX;

/// One arena slot: a generation counter and, while occupied, the object.
///
/// Build arrays of them with [`Slot::EMPTY`] (`[const { Slot::EMPTY }; N]`) or `Default`.
#[derive(Debug)]
pub struct Slot<T> {
    pub(crate) generation: u32,
    pub(crate) next_free: u32,
    pub(crate) value: Option<T>,
}

impl<T> Slot<T> {
    /// An empty slot.
    pub const EMPTY: Slot<T> = Slot {
        generation: 0,
        next_free: NO_SLOT,
        value: None,
    };

    /// An empty slot whose first occupant gets `generation`.
    #[cfg(feature = "alloc")]
    pub(crate) const fn free_at(generation: u32) -> Slot<T> {
        Slot {
            generation,
            next_free: NO_SLOT,
            value: None,
        }
    }
}

impl<T> Default for Slot<T> {
    fn default() -> Self {
        Slot::EMPTY
    }
}

/// Storage for the slots of one arena.
///
/// Implemented for arrays and slices of slots (fixed) and, with the `alloc` feature, for
/// `Growing` (chunks allocated as needed and released when empty). Implement it to give core
/// memory of your own: [`len`](Self::len), [`slot`](Self::slot), [`slot_mut`](Self::slot_mut)
/// and, if it can, [`grow`](Self::grow).
///
/// The last four methods ([`keeps_free_slots`](Self::keeps_free_slots) and the three it
/// enables) were added, with defaults, when `Growing` learnt to give memory back: a store can
/// only release a run of slots it knows to be all free, and must first take them off any free
/// list, which a list threaded through the slots by the arena does not allow. Their defaults
/// (the arena keeps the free list, the store only grows) leave arrays, slices and stores
/// written before them exactly as they were. Keep the defaults outside core: a store that
/// releases slots must re-create them with generations above every handle ever made for them,
/// and only core can set a slot's generation.
pub trait SlotStore<T> {
    /// How many slots exist now.
    fn len(&self) -> usize;
    /// Whether there are no slots at all.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The slot at `index`, if it exists.
    fn slot(&self, index: usize) -> Option<&Slot<T>>;
    /// The slot at `index`, if it exists.
    fn slot_mut(&mut self, index: usize) -> Option<&mut Slot<T>>;
    /// Adds empty slots at the end (it may move existing ones); returns how many were added.
    /// Fixed storage adds none, which core treats as "capacity exhausted".
    fn grow(&mut self) -> usize {
        0
    }
    /// Whether the store keeps its free slots itself. When true the arena takes free slots
    /// with [`take_free`](Self::take_free), gives them back with [`put_free`](Self::put_free)
    /// and checks for room with [`reserve_free`](Self::reserve_free), and never threads a list
    /// of its own through the slots nor calls [`grow`](Self::grow). Default: false.
    fn keeps_free_slots(&self) -> bool {
        false
    }
    /// Makes sure [`take_free`](Self::take_free) will find a slot, allocating if it must and
    /// can; false when the store is full. Only called when the store keeps its free slots.
    fn reserve_free(&mut self) -> bool {
        false
    }
    /// Takes a free slot (allocating if it must and can) and returns its index; the slot exists
    /// ([`slot_mut`](Self::slot_mut) finds it) and is empty, for the arena to fill. `None` when
    /// the store is full. Only called when the store keeps its free slots.
    fn take_free(&mut self) -> Option<usize> {
        None
    }
    /// Slot `index` was just emptied and its generation moved past every handle made for it:
    /// it is free again, and the store may release memory. Only called when the store keeps
    /// its free slots.
    fn put_free(&mut self, index: usize) {
        let _ = index;
    }
}

impl<T> SlotStore<T> for &mut [Slot<T>] {
    fn len(&self) -> usize {
        <[Slot<T>]>::len(self)
    }
    fn slot(&self, index: usize) -> Option<&Slot<T>> {
        self.get(index)
    }
    fn slot_mut(&mut self, index: usize) -> Option<&mut Slot<T>> {
        self.get_mut(index)
    }
}

impl<T, const N: usize> SlotStore<T> for [Slot<T>; N] {
    fn len(&self) -> usize {
        N
    }
    fn slot(&self, index: usize) -> Option<&Slot<T>> {
        self.get(index)
    }
    fn slot_mut(&mut self, index: usize) -> Option<&mut Slot<T>> {
        self.get_mut(index)
    }
}

/// An arena over a [`SlotStore`]: allocation through a free list (its own, or the store's when
/// the store keeps its free slots), lookup by generation.
#[derive(Debug)]
pub(crate) struct Arena<T, S> {
    store: S,
    /// The arena's free list (unused when the store keeps its free slots).
    free_head: u32,
    /// Slots `0..linked` have been put on the arena's free list (or are occupied).
    linked: u32,
    live: usize,
    _t: core::marker::PhantomData<T>,
}

impl<T, S: SlotStore<T>> Arena<T, S> {
    pub(crate) fn new(store: S) -> Self {
        let mut a = Arena {
            store,
            free_head: NO_SLOT,
            linked: 0,
            live: 0,
            _t: core::marker::PhantomData,
        };
        if !a.store.keeps_free_slots() {
            a.link_new_slots();
        }
        a
    }

    /// Puts slots the store gained (initially, or by growing) on the free list, lowest first.
    fn link_new_slots(&mut self) {
        let len = u32::try_from(self.store.len())
            .unwrap_or(NO_SLOT - 1)
            .min(NO_SLOT - 1);
        let mut i = len;
        while i > self.linked {
            i -= 1;
            let head = self.free_head;
            if let Some(s) = self.store.slot_mut(i as usize) {
                s.value = None;
                s.next_free = head;
                self.free_head = i;
            }
        }
        self.linked = len;
    }

    /// Stores `value`; returns its (index, generation), or gives the value back when full.
    pub(crate) fn insert(&mut self, value: T) -> Result<(u32, u32), T> {
        let Some(index) = self.take_free() else {
            return Err(value);
        };
        let Some(slot) = self.store.slot_mut(index as usize) else {
            return Err(value);
        };
        slot.value = Some(value);
        self.live += 1;
        Ok((index, slot.generation))
    }

    /// Takes a free slot off the store's lists or the arena's own, growing the store if it
    /// must and can.
    fn take_free(&mut self) -> Option<u32> {
        if self.store.keeps_free_slots() {
            return self.store.take_free().and_then(|i| u32::try_from(i).ok());
        }
        self.ensure_free();
        let index = self.free_head;
        let slot = self.store.slot_mut(index as usize)?;
        self.free_head = slot.next_free;
        slot.next_free = NO_SLOT;
        Some(index)
    }

    pub(crate) fn get(&self, index: u32, generation: u32) -> Option<&T> {
        let s = self.store.slot(index as usize)?;
        if s.generation == generation {
            s.value.as_ref()
        } else {
            None
        }
    }

    pub(crate) fn get_mut(&mut self, index: u32, generation: u32) -> Option<&mut T> {
        let s = self.store.slot_mut(index as usize)?;
        if s.generation == generation {
            s.value.as_mut()
        } else {
            None
        }
    }

    /// The occupant of slot `index` and its generation, whatever the generation.
    pub(crate) fn at(&self, index: u32) -> Option<(u32, &T)> {
        let s = self.store.slot(index as usize)?;
        s.value.as_ref().map(|v| (s.generation, v))
    }

    /// Frees the slot, bumping its generation so every old handle is rejected from now on.
    pub(crate) fn remove(&mut self, index: u32, generation: u32) -> Option<T> {
        let keeps = self.store.keeps_free_slots();
        let head = self.free_head;
        let s = self.store.slot_mut(index as usize)?;
        if s.generation != generation {
            return None;
        }
        let v = s.value.take()?;
        s.generation = (s.generation + 1) & GEN_MASK;
        if keeps {
            self.store.put_free(index as usize);
        } else {
            s.next_free = head;
            self.free_head = index;
        }
        self.live -= 1;
        Some(v)
    }

    /// The store (tests look at what it allocated).
    #[cfg(test)]
    pub(crate) fn store(&self) -> &S {
        &self.store
    }

    /// Number of occupied slots.
    pub(crate) fn live(&self) -> usize {
        self.live
    }

    /// Number of slots (occupied, free or released); indices run below it. A walk over
    /// `0..slots()` finds nothing ([`at`](Self::at) is `None`) where the store released slots.
    pub(crate) fn slots(&self) -> u32 {
        if self.store.keeps_free_slots() {
            u32::try_from(self.store.len()).unwrap_or(NO_SLOT)
        } else {
            self.linked
        }
    }

    /// Makes sure an insert will succeed, growing the store if it can; false when full.
    pub(crate) fn ensure_free(&mut self) -> bool {
        if self.store.keeps_free_slots() {
            return self.store.reserve_free();
        }
        if self.free_head == NO_SLOT && self.store.grow() > 0 {
            self.link_new_slots();
        }
        self.free_head != NO_SLOT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn freed_handles_are_rejected_and_slots_reused() {
        let mut backing = [Slot::<u8>::EMPTY, Slot::EMPTY];
        let mut a = Arena::new(&mut backing[..]);
        let (i0, g0) = a.insert(1).unwrap();
        let (i1, _) = a.insert(2).unwrap();
        assert_eq!(a.insert(3), Err(3), "full fixed storage refuses");
        assert_eq!(a.remove(i0, g0), Some(1));
        assert_eq!(a.get(i0, g0), None, "stale handle rejected");
        let (i2, g2) = a.insert(4).unwrap();
        assert_eq!(i2, i0);
        assert_ne!(g2, g0);
        assert_eq!(a.get(i2, g2), Some(&4));
        assert_eq!(a.remove(i0, g0), None, "stale remove rejected");
        assert_eq!(a.live(), 2);
        assert_ne!(i1, i2);
    }
}
