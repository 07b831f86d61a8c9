//! Fixed, `Vec`-backed storage for the loops the checks build.

use usockets_core::{Slot, SlotStore};

/// A fixed number of [`Slot`]s owned by a `Vec`, sized once and never grown: the test-side
/// equivalent of a `static` array. A full store makes core report "capacity exhausted", which
/// the capacity checks rely on.
#[derive(Debug)]
pub struct VecSlots<T>(Vec<Slot<T>>);

impl<T> VecSlots<T> {
    /// `n` empty slots.
    pub fn new(n: usize) -> Self {
        VecSlots((0..n).map(|_| Slot::EMPTY).collect())
    }
}

impl<T> SlotStore<T> for VecSlots<T> {
    fn len(&self) -> usize {
        self.0.len()
    }
    fn slot(&self, index: usize) -> Option<&Slot<T>> {
        self.0.get(index)
    }
    fn slot_mut(&mut self, index: usize) -> Option<&mut Slot<T>> {
        self.0.get_mut(index)
    }
}
