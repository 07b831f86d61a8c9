//! Lookup cost of the growing store's layout, measured side by side in one run: core's
//! `Growing` (chunks of a power of two of slots, chunk 0 apart from the chunk table) against one
//! contiguous vector (an index and a bounds check: `Growing` before it was chunked) and plain
//! chunk tables, with a run-time chunk size (a division per lookup, as the facade's old store
//! did) and with a power-of-two chunk size (a shift and a mask).
//!
//! `cargo bench -p usockets-core --bench slot_lookup` (never a CI gate). Prints nanoseconds per
//! lookup (the fastest of five rounds) for random and sequential indices over 100 000 slots,
//! and for random indices within the first 2,048 (where a loop's sockets are when it has no
//! more than that: allocation prefers the lowest slots).

use std::hint::black_box;
use std::time::Instant;

use usockets_core::{Growing, Slot, SlotStore};

const SLOTS: usize = 100_000;
const LOW: usize = 2_048;
const LOOKUPS: usize = 20_000_000;

/// One vector of slots grown at the end: `Growing` before chunks.
struct Contiguous<T>(Vec<Slot<T>>);

impl<T> SlotStore<T> for Contiguous<T> {
    fn len(&self) -> usize {
        self.0.len()
    }
    fn slot(&self, index: usize) -> Option<&Slot<T>> {
        self.0.get(index)
    }
    fn slot_mut(&mut self, index: usize) -> Option<&mut Slot<T>> {
        self.0.get_mut(index)
    }
    fn grow(&mut self) -> usize {
        self.0.push(Slot::EMPTY);
        1
    }
}

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

/// Grows `store` to at least `SLOTS` slots, through `take_free` if it keeps its free slots.
fn fill<S: SlotStore<u64>>(mut store: S) -> S {
    while store.len() < SLOTS {
        let more = if store.keeps_free_slots() {
            store.take_free().is_some()
        } else {
            store.grow() > 0
        };
        if !more {
            break;
        }
    }
    store
}

/// Nanoseconds per lookup of `indices` (repeated to `LOOKUPS`).
fn measure<S: SlotStore<u64>>(store: &S, indices: &[usize]) -> f64 {
    assert!(
        indices.iter().all(|&i| store.slot(i).is_some()),
        "every index has a slot"
    );
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
    let mut random = |below: usize| -> Vec<usize> {
        (0..65_536)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x % below as u64) as usize
            })
            .collect()
    };
    let random_all = random(SLOTS);
    let random_low = random(LOW);
    let sequential: Vec<usize> = (0..SLOTS).collect();
    let growing = fill(Growing::<u64>::new(0, SLOTS));
    let contiguous = fill(Contiguous::<u64>(Vec::new()));
    let chunked = fill(Chunked::<u64> {
        chunks: Vec::new(),
        chunk: 256,
    });
    let pow2 = fill(Pow2::<u64> {
        chunks: Vec::new(),
        shift: 8,
    });
    println!(
        "ns per lookup over {SLOTS} slots ({LOOKUPS} lookups each); Growing's chunks hold {} slots:",
        Growing::<u64>::CHUNK_SLOTS
    );
    println!(
        "{:<38} {:>8} {:>11} {:>12}",
        "store", "random", "sequential", "random<2048"
    );
    // The fastest of five rounds: the machine may be shared, and interference only slows.
    let mut best = [[f64::INFINITY; 3]; 4];
    for _ in 0..5 {
        let row = |store: &dyn Fn(&[usize]) -> f64| {
            [store(&random_all), store(&sequential), store(&random_low)]
        };
        let rows = [
            row(&|i| measure(&growing, i)),
            row(&|i| measure(&contiguous, i)),
            row(&|i| measure(&chunked, i)),
            row(&|i| measure(&pow2, i)),
        ];
        for (b, r) in best.iter_mut().zip(rows) {
            for (b, r) in b.iter_mut().zip(r) {
                *b = b.min(r);
            }
        }
    }
    let names = [
        "Growing (chunks, chunk 0 apart)",
        "contiguous vector (Growing before)",
        "chunks of 256, run-time division",
        "chunks of 2^8, shift and mask",
    ];
    for (name, [r, s, l]) in names.iter().zip(best) {
        println!("{name:<38} {r:>8.2} {s:>11.2} {l:>12.2}");
    }
}
