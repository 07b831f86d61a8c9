//! Giving memory back when a server shrinks.
//!
//! Every socket of the C ABI owns a block in its loop's slab (the `slab` module) besides its
//! core slot. Core's growing storage releases its chunks when they empty; the slab keeps its
//! empty chunks until told (a socket coming and going would otherwise allocate a chunk each
//! time), and both allocate from malloc's heap, from which glibc returns memory to the OS only
//! from its top: after 5,000 connections fall to 50 almost nothing would come back. So when
//! the live socket blocks have fallen to half of their peak (and the peak was worth it), the
//! slab releases its empty chunks and hands back the pages of the others that hold no block in
//! use ([`discard`]), the block registry is shrunk and glibc is asked to release its free
//! pages (`malloc_trim`, which also drops whole free pages inside the heap). That costs a walk
//! of the slab's bitmaps and of the heap (glibc locks its arenas meanwhile, so other threads
//! of the program wait too), done at most once per halving: amortised O(1) per freed block.
//! It runs where closed sockets are released, at the end of an iteration, so it delays that
//! iteration's `post` and the next wait, never a callback in the middle of an iteration.

use crate::state::LoopState;

/// Below this many blocks at the peak, trimming is not worth a heap walk.
const TRIM_FLOOR: usize = 1024;

/// Notes a freed block of the loop `st`; hands memory back when half the peak is gone.
pub(crate) fn after_free(st: &LoopState) {
    let live = st.slab.borrow().live();
    let (trim, peak) = policy(st.blocks_peak.get(), live);
    st.blocks_peak.set(peak);
    if trim {
        st.slab.borrow_mut().collect();
        st.blocks.borrow_mut().shrink_to_fit();
        trim_heap();
    }
}

/// Given the peak so far and the blocks alive right after a free: whether to hand memory back
/// now, and the peak to remember (after a trim, counting starts again from what is alive).
fn policy(peak: usize, live: usize) -> (bool, usize) {
    // The block just freed was alive a moment ago: the peak is at least one more than now.
    let peak = peak.max(live + 1);
    if peak >= TRIM_FLOOR && live <= peak / 2 {
        (true, live)
    } else {
        (false, peak)
    }
}

/// Asks the C allocator to return free memory to the OS.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim_heap() {
    // SAFETY: malloc_trim only walks and releases the allocator's own free memory; it takes
    // no pointer and is safe to call at any time from any thread.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Other C libraries return memory on their own terms; nothing to ask. On Windows, Rust's
/// allocator is the process heap (`HeapAlloc`), which decommits large free ranges by itself.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim_heap() {}

/// The size of the OS's memory pages, for [`discard`]; 0 where pages are not handed back.
#[cfg(all(any(target_os = "linux", target_os = "android"), not(miri)))]
pub(crate) fn page_size() -> usize {
    // SAFETY: sysconf reads a configuration value; it takes no pointer.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(n).unwrap_or(0)
}

/// Under Miri, pages are "handed back" by zeroing them (what Linux makes them read as), so
/// that the tests check nothing relies on what a given-back page held.
#[cfg(miri)]
pub(crate) fn page_size() -> usize {
    4096
}

/// Elsewhere pages are not handed back one by one: BSD's and macOS's `MADV_FREE` would do,
/// untested so far; Windows' allocator decommits large free ranges by itself.
#[cfg(not(any(miri, target_os = "linux", target_os = "android")))]
pub(crate) fn page_size() -> usize {
    0
}

/// Hands the pages `p..p + len` back to the OS: not resident any more, they read as zeros
/// from then on.
///
/// # Safety
/// `p` and `len` are multiples of [`page_size`] (not 0), the range is within one allocation
/// of ours, and nothing refers to it or needs what it holds.
#[cfg(all(any(target_os = "linux", target_os = "android"), not(miri)))]
pub(crate) unsafe fn discard(p: *mut u8, len: usize) {
    // SAFETY: the range is page-aligned and within memory we own that nothing uses (the
    // caller's contract); private anonymous memory, as the allocator's is, reads as zeros
    // after MADV_DONTNEED. A failure only leaves the pages resident.
    unsafe { libc::madvise(p.cast(), len, libc::MADV_DONTNEED) };
}

/// Under Miri: zeroes the range, as Linux's `madvise(MADV_DONTNEED)` makes it read.
///
/// # Safety
/// As on Linux.
#[cfg(miri)]
pub(crate) unsafe fn discard(p: *mut u8, len: usize) {
    // SAFETY: the range is within one allocation of ours that nothing refers to (the
    // caller's contract).
    unsafe { std::ptr::write_bytes(p, 0, len) };
}

/// Elsewhere [`page_size`] is 0, so nothing is handed back.
///
/// # Safety
/// As on Linux.
#[cfg(not(any(miri, target_os = "linux", target_os = "android")))]
pub(crate) unsafe fn discard(_p: *mut u8, _len: usize) {}

#[cfg(test)]
mod tests {
    use super::{policy, TRIM_FLOOR};

    /// Replays frees from `from` live blocks down to `to`, starting with `peak`; returns the
    /// live counts at which memory was handed back, and the final peak.
    fn replay(mut peak: usize, from: usize, to: usize) -> (Vec<usize>, usize) {
        let mut trims = Vec::new();
        for live in (to..from).rev() {
            let (trim, p) = policy(peak, live);
            peak = p;
            if trim {
                trims.push(live);
            }
        }
        (trims, peak)
    }

    #[test]
    fn memory_goes_back_once_per_halving_of_a_large_peak() {
        // 5,000 blocks falling to 50: trims at 2,500, 1,250 and 625; a peak of 625 is under
        // the floor, so no more.
        let (trims, peak) = replay(0, 5_000, 50);
        assert_eq!(trims, vec![2_500, 1_250, 625]);
        assert_eq!(peak, 625, "counting starts again after each trim");
    }

    #[test]
    fn small_loops_never_walk_the_heap() {
        let (trims, _) = replay(0, TRIM_FLOOR - 1, 0);
        assert!(
            trims.is_empty(),
            "a peak below the floor is not worth a heap walk"
        );
    }

    #[test]
    fn a_new_peak_after_a_trim_counts_from_there() {
        let (_, peak) = replay(0, 4_000, 2_000);
        assert_eq!(peak, 2_000, "trimmed at 2,000");
        // Growing again to 3,000 blocks and falling: the next trim is at half of 3,000.
        let (trims, _) = replay(peak, 3_000, 1_000);
        assert_eq!(trims, vec![1_500]);
    }
}
