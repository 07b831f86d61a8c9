//! Storage that grows in fixed chunks, so slots never move once they exist.

use usockets_core::{Slot, SlotStore};

/// A [`SlotStore`] that adds a chunk of slots whenever the arena is full. Existing slots never
/// move (each chunk is its own allocation), which the C ABI relies on. Memory: one chunk of
/// `chunk × size_of::<Slot<T>>()` bytes per growth step; nothing is returned until drop.
pub struct GrowingStore<T> {
    chunks: Vec<Box<[Slot<T>]>>,
    chunk: usize,
    limit: usize,
}

impl<T> GrowingStore<T> {
    /// A store growing `chunk` slots at a time up to `limit` slots in all.
    pub fn new(chunk: usize, limit: usize) -> Self {
        GrowingStore {
            chunks: Vec::new(),
            chunk: chunk.max(1),
            limit,
        }
    }
}

impl<T> SlotStore<T> for GrowingStore<T> {
    fn len(&self) -> usize {
        self.chunks.len() * self.chunk
    }
    fn slot(&self, index: usize) -> Option<&Slot<T>> {
        self.chunks.get(index / self.chunk)?.get(index % self.chunk)
    }
    fn slot_mut(&mut self, index: usize) -> Option<&mut Slot<T>> {
        self.chunks
            .get_mut(index / self.chunk)?
            .get_mut(index % self.chunk)
    }
    fn grow(&mut self) -> usize {
        if self.len() + self.chunk > self.limit {
            return 0;
        }
        self.chunks
            .push((0..self.chunk).map(|_| Slot::EMPTY).collect());
        self.chunk
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_by_chunks_up_to_the_limit_without_moving_slots() {
        let mut s = GrowingStore::<u32>::new(4, 8);
        assert_eq!(s.len(), 0);
        assert_eq!(s.grow(), 4);
        let first = s.slot(0).map(|p| p as *const _);
        assert_eq!(s.grow(), 4);
        assert_eq!(
            s.slot(0).map(|p| p as *const _),
            first,
            "slot 0 did not move"
        );
        assert_eq!(s.grow(), 0, "limit reached");
        assert_eq!(s.len(), 8);
        assert!(s.slot(8).is_none());
    }
}
