//! Lookup cost of the growing store's layout, measured side by side in one run: one contiguous
//! vector (core's `Growing`, an index and a bounds check) against chunked stores (a chunk per
//! growth step, so slots never move), with a run-time chunk size (a division per lookup, as the
//! facade's old store did) and with a power-of-two chunk size (a shift and a mask).
//!
//! `cargo bench -p usockets-core --bench slot_lookup` (never a CI gate). Prints nanoseconds per
//! lookup for random and sequential indices over 100 000 slots.

use std::hint::black_box;
use std::time::Instant;

use usockets_core::{Growing, Slot, SlotStore};

const SLOTS: usize = 100_000;
const LOOKUPS: usize = 20_000_000;

/// Chunks of a run-time size: `index / chunk`, `index % chunk`.
struct Chunked<T> {
    chunks: Vec<Box<[Slot<T>]>>,
    chunk: usize,
}

impl<T> SlotStore<T> for Chunked<T> {
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
        self.chunks
            .push((0..self.chunk).map(|_| Slot::EMPTY).collect());
        self.chunk
    }
}

/// Chunks of 2^shift slots: `index >> shift`, `index & mask`.
struct Pow2<T> {
    chunks: Vec<Box<[Slot<T>]>>,
    shift: u32,
}

impl<T> SlotStore<T> for Pow2<T> {
    fn len(&self) -> usize {
        self.chunks.len() << self.shift
    }
    fn slot(&self, index: usize) -> Option<&Slot<T>> {
        let mask = (1 << self.shift) - 1;
        self.chunks.get(index >> self.shift)?.get(index & mask)
    }
    fn slot_mut(&mut self, index: usize) -> Option<&mut Slot<T>> {
        let mask = (1 << self.shift) - 1;
        self.chunks
            .get_mut(index >> self.shift)?
            .get_mut(index & mask)
    }
    fn grow(&mut self) -> usize {
        self.chunks
            .push((0..1usize << self.shift).map(|_| Slot::EMPTY).collect());
        1 << self.shift
    }
}

/// Grows `store` to at least `SLOTS` slots.
fn fill<S: SlotStore<u64>>(mut store: S) -> S {
    while store.len() < SLOTS {
        if store.grow() == 0 {
            break;
        }
    }
    store
}

/// Nanoseconds per lookup of `indices` (repeated to `LOOKUPS`).
fn measure<S: SlotStore<u64>>(store: &S, indices: &[usize]) -> f64 {
    let start = Instant::now();
    let mut found = 0usize;
    for i in 0..LOOKUPS {
        let index = indices[i % indices.len()];
        if black_box(store).slot(black_box(index)).is_some() {
            found += 1;
        }
    }
    black_box(found);
    start.elapsed().as_nanos() as f64 / LOOKUPS as f64
}

fn main() {
    // A fixed pseudo-random order (xorshift), the same for every store.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let random: Vec<usize> = (0..65_536)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % SLOTS as u64) as usize
        })
        .collect();
    let sequential: Vec<usize> = (0..SLOTS).collect();
    let contiguous = fill(Growing::<u64>::new(16, SLOTS));
    let chunked = fill(Chunked::<u64> {
        chunks: Vec::new(),
        chunk: 256,
    });
    let pow2 = fill(Pow2::<u64> {
        chunks: Vec::new(),
        shift: 8,
    });
    println!("ns per lookup over {SLOTS} slots ({LOOKUPS} lookups each):");
    println!("{:<34} {:>8} {:>11}", "store", "random", "sequential");
    for round in 0..2 {
        let rows = [
            (
                "contiguous vector (Growing)",
                measure(&contiguous, &random),
                measure(&contiguous, &sequential),
            ),
            (
                "chunks of 256, run-time division",
                measure(&chunked, &random),
                measure(&chunked, &sequential),
            ),
            (
                "chunks of 2^8, shift and mask",
                measure(&pow2, &random),
                measure(&pow2, &sequential),
            ),
        ];
        if round == 1 {
            for (name, r, s) in rows {
                println!("{name:<34} {r:>8.2} {s:>11.2}");
            }
        }
    }
}
