//! Arenas of generational slots over a small store trait: where every object of a loop lives.
//!
//! A [`SlotStore`] is a run of [`Slot`]s: an array or a slice of them (fixed), or a growing
//! vector (the `alloc` feature). Growing may move slots: core never keeps a reference into a
//! store across a call that can grow it (users hold handles, never references).

use crate::handle::GEN_MASK;

const NO_SLOT: u32 = u32::MAX;

/// One arena slot: a generation counter and, while occupied, the object.
///
/// Build arrays of them with [`Slot::EMPTY`] (`[const { Slot::EMPTY }; N]`) or `Default`.
#[derive(Debug)]
pub struct Slot<T> {
    generation: u32,
    next_free: u32,
    value: Option<T>,
}

impl<T> Slot<T> {
    /// An empty slot.
    pub const EMPTY: Slot<T> = Slot {
        generation: 0,
        next_free: NO_SLOT,
        value: None,
    };
}

impl<T> Default for Slot<T> {
    fn default() -> Self {
        Slot::EMPTY
    }
}

/// Storage for the slots of one arena.
///
/// Implemented for arrays and slices of slots (fixed) and, with the `alloc` feature, for
/// `Growing` (a vector that grows). Implement it to give core memory of your own.
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

/// An arena over a [`SlotStore`]: allocation through a free list, lookup by generation.
#[derive(Debug)]
pub(crate) struct Arena<T, S> {
    store: S,
    free_head: u32,
    /// Slots `0..linked` have been put on the free list (or are occupied).
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
        a.link_new_slots();
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
        self.ensure_free();
        let index = self.free_head;
        let Some(slot) = self.store.slot_mut(index as usize) else {
            return Err(value);
        };
        self.free_head = slot.next_free;
        slot.next_free = NO_SLOT;
        slot.value = Some(value);
        self.live += 1;
        Ok((index, slot.generation))
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
        let head = self.free_head;
        let s = self.store.slot_mut(index as usize)?;
        if s.generation != generation {
            return None;
        }
        let v = s.value.take()?;
        s.generation = (s.generation + 1) & GEN_MASK;
        s.next_free = head;
        self.free_head = index;
        self.live -= 1;
        Some(v)
    }

    /// Number of occupied slots.
    pub(crate) fn live(&self) -> usize {
        self.live
    }

    /// Number of slots (occupied or not); indices run below it.
    pub(crate) fn slots(&self) -> u32 {
        self.linked
    }

    /// Makes sure an insert will succeed, growing the store if it can; false when full.
    pub(crate) fn ensure_free(&mut self) -> bool {
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
