//! Counting the server thread's heap allocations, shared by the counted hot-path tests.
//!
//! A test installs [`CountingAlloc`] as its `#[global_allocator]`, calls [`count_here`] with
//! `true` on the thread whose allocations it asserts on, and reads [`allocations`]. Other
//! threads (the client driving the load, the test harness) are never counted.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

thread_local! {
    /// Set by the counted thread: its allocations are counted, nobody else's.
    static COUNTING: Cell<bool> = const { Cell::new(false) };
}

/// Allocations (and reallocations) made while [`COUNTING`] was set on the allocating thread.
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

/// Starts (`true`) or stops (`false`) counting this thread's allocations.
pub fn count_here(on: bool) {
    COUNTING.with(|c| c.set(on));
}

/// Allocations counted so far, over every counted stretch of every thread.
pub fn allocations() -> u64 {
    ALLOCATIONS.load(Ordering::Relaxed)
}

/// The system allocator, counting the allocations of threads that called [`count_here`].
pub struct CountingAlloc;

impl CountingAlloc {
    fn note() {
        // `try_with`: the slot may already be gone while a thread is being torn down. The
        // const-initialised `Cell<bool>` needs no destructor and never allocates itself.
        if COUNTING.try_with(Cell::get).unwrap_or(false) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
    }
}

// SAFETY: every method delegates to `System` with the caller's own arguments, so `System`'s
// guarantees are ours; the counting touches only an atomic and a thread-local `Cell<bool>`,
// neither of which allocates.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        Self::note();
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract, which `System` shares.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        Self::note();
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        Self::note();
        // SAFETY: `ptr` was allocated by `System` (every allocation goes through it) with
        // `layout`; the caller upholds the rest of `realloc`'s contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }
}
