//! Where socket blocks live: chunks of equal blocks, one pool of chunks per context and ext
//! size class, owned by the loop ([`Slab`], in `LoopState::slab`).
//!
//! # Why not malloc
//!
//! A socket is the one object a server has thousands of, and each needs a block C can point to
//! (see the `block` module). A malloc'd block cost 48 bytes for a 32-byte header (glibc's chunk
//! overhead and rounding) plus ~15 in the registry that let `us_loop_free` find it. Here a block
//! costs its stride: 8 bytes with no ext, `16 + ext` (rounded up to 16) otherwise.
//!
//! # Layout
//!
//! A chunk is [`CHUNK`] bytes (more for one block bigger than that), aligned to [`CHUNK`], so
//! the chunk of any block is found by rounding the block's address down: no pointer in the
//! block leads to it. The chunk starts with its header ([`Chunk`]), which holds what all its
//! blocks share: the loop state, the context's C callbacks ([`SocketHeader`]) and the ext size.
//! The blocks follow, each at an address that is 8 mod 16:
//!
//! ```text
//! block:  [ SocketId (8) ][ ext, 16-byte aligned, rounded up to 16 ][ 8 spare ]
//! ```
//!
//! With no ext the stride is 8 (the handle only) and the ext pointer is the handle's end,
//! rounded up to 16: it has no bytes to read or write.
//!
//! Keying pools by context is what lets the callbacks live in the chunk: a socket adopted into
//! another context moves to a block of that context's pool (C gets the new pointer, as from the
//! C library's adoption, which reallocates).
//!
//! Chunks are 64 KiB (some 8,000 blocks without ext). 16 KiB chunks measured 94 bytes per idle
//! connection where 64 KiB ones measure 90 (`benches/suite.sh`, section idle): glibc serves a
//! 64 KiB block aligned to 64 KiB with a mapping of its own (the request with its alignment
//! slack is over its mmap threshold), whose slack is never touched, while smaller aligned
//! requests come from the heap, where splitting off the slack writes to pages nothing else
//! uses. A context's first chunk makes only the pages its blocks use resident.
//!
//! # Allocation and giving back
//!
//! A chunk hands out blocks from a bump index (so only the pages of blocks ever used become
//! resident) and then from its list of freed blocks, linked through their first 8 bytes. A
//! pool keeps a stack of its chunks that have room. Freeing is O(1) and never releases a chunk
//! (a socket coming and going would otherwise allocate a chunk each time); [`Slab::collect`]
//! releases the empty ones, and runs when the live blocks fall to half their peak (with the
//! heap trim of the `memory` module) and when a context is freed. `us_loop_free` releases every
//! chunk, live blocks included: the slab is the registry of socket blocks.
//!
//! # Aliasing
//!
//! Chunk memory is only ever reached through raw pointers derived from the pointer the
//! allocator returned (blocks by offset, headers by rounding a block's address down, which
//! keeps that provenance). The only references made into a chunk are shared references to its
//! [`SocketHeader`], which nothing writes while a block of the chunk is alive.

use std::alloc::{alloc, dealloc, Layout};
use std::cell::Cell;
use std::ptr::NonNull;
use std::rc::Rc;

use crate::state::LoopState;
use crate::types::ContextCbs;

/// Size and alignment of a chunk (bigger only for a block that does not fit in one).
pub(crate) const CHUNK: usize = 64 * 1024;

/// What a socket block shares with the other blocks of its chunk: its loop and its context's
/// C callbacks (the trampolines read these on every event), and its ext size.
pub struct SocketHeader {
    /// The socket's context's C callbacks; `None` for a socket with no context's callbacks
    /// (never on the data path). The same `Rc` as the context's: `us_socket_context_on_*`
    /// reach these sockets at once.
    pub(crate) cbs: Option<Rc<ContextCbs>>,
    /// The loop's state: null or live for as long as the chunk (module docs of `block`).
    pub(crate) state: *mut LoopState,
    /// Ext bytes of every block of the chunk (the size class: a multiple of 16).
    pub(crate) ext_size: u32,
}

/// A chunk's header, at its start. Reached through shared references only (`chunk`): what
/// changes is in cells, and `head` is written only when the chunk is made and dropped only
/// when it is released, with no block left.
struct Chunk {
    head: SocketHeader,
    /// Bytes from one block to the next.
    stride: u32,
    /// How many blocks fit.
    cap: u32,
    /// The size it was allocated with.
    size: usize,
    /// Blocks `0..bump` have been handed out at least once.
    bump: Cell<u32>,
    /// Blocks handed out and not freed.
    live: Cell<u32>,
    /// Freed blocks, linked through their first 8 bytes; null when none.
    free: Cell<*mut u8>,
    /// Its pool's index in `Slab::pools`.
    pool: Cell<u32>,
    /// Whether it is on its pool's `with_room` stack.
    listed: Cell<bool>,
}

impl Chunk {
    /// Whether a block can be taken from it.
    fn has_room(&self) -> bool {
        !self.free.get().is_null() || self.bump.get() < self.cap
    }
}

/// The chunk `c`, shared.
///
/// # Safety
/// `c` is a live chunk, not released while the reference is used.
unsafe fn chunk<'a>(c: NonNull<Chunk>) -> &'a Chunk {
    // SAFETY: `c` is live and initialised (the caller's contract); chunks are only ever
    // reached through shared references, their changing fields being cells.
    unsafe { c.as_ref() }
}

/// Where the first block of a chunk starts: past the header, at 8 mod 16 (so that the ext
/// after an 8-byte handle is 16-byte aligned).
const FIRST: usize = (std::mem::size_of::<Chunk>() + 8).next_multiple_of(16) - 8;

const _: () = assert!(FIRST % 16 == 8 && FIRST >= std::mem::size_of::<Chunk>());
const _: () = assert!(std::mem::align_of::<Chunk>() <= 16);

/// The chunks of one context (by its callbacks) and one ext size class.
struct Pool {
    /// The key: the context's callbacks (`Rc::as_ptr`), or null. The pool's chunks hold the
    /// `Rc` itself, which keeps the address from being reused while the pool exists.
    key: *const ContextCbs,
    ext_size: u32,
    /// Chunks that may have room (a chunk found full is dropped from it).
    with_room: Vec<NonNull<Chunk>>,
    /// How many chunks it has.
    chunks: usize,
}

/// Every socket block of a loop, in chunks (module docs).
#[derive(Default)]
pub(crate) struct Slab {
    pools: Vec<Pool>,
    /// Every chunk, for `collect` and `release_all`.
    chunks: Vec<NonNull<Chunk>>,
    /// Blocks handed out and not freed.
    live: usize,
}

/// The ext size class of `ext_size`: rounded up to 16. `None` if that overflows.
pub(crate) fn class(ext_size: u32) -> Option<u32> {
    ext_size.checked_next_multiple_of(16)
}

/// Bytes per block of the class `ext_size` (a multiple of 16, or 0).
fn stride(ext_size: u32) -> Option<usize> {
    if ext_size == 0 {
        Some(8)
    } else {
        (ext_size as usize).checked_add(16)
    }
}

/// The chunk of the block at `p`: `p` rounded down to [`CHUNK`], with `p`'s provenance.
fn chunk_of(p: NonNull<u8>) -> NonNull<Chunk> {
    // The block is within the chunk's first CHUNK bytes (a chunk bigger than CHUNK has one
    // block, at FIRST), so rounding down finds the chunk's start.
    let c = chunk_ptr(p);
    NonNull::new(c).unwrap_or(p.cast())
}

/// [`chunk_of`] as a raw pointer: the hot path's form (the trampolines' `header().cbs`,
/// `peek`): one mask.
#[inline(always)]
fn chunk_ptr(p: NonNull<u8>) -> *mut Chunk {
    p.as_ptr().map_addr(|a| a & !(CHUNK - 1)).cast()
}

/// The shared header of the block at `p`.
///
/// # Safety
/// `p` is a live block of a slab; the reference is not used after the block is freed.
#[inline(always)]
pub(crate) unsafe fn header<'a>(p: NonNull<u8>) -> &'a SocketHeader {
    let c = chunk_ptr(p);
    // SAFETY: `p` is a live block (the caller's contract), so its chunk is live and
    // initialised, and stays so while the block does; chunks are only reached through shared
    // references (`chunk`).
    unsafe { &(*c).head }
}

impl Slab {
    /// Blocks handed out and not freed.
    pub(crate) fn live(&self) -> usize {
        self.live
    }

    /// A block of `ext_size` zeroed ext bytes (rounded up to 16) for a socket of the context
    /// whose callbacks are `cbs`, in the loop `state`; `None` when out of memory. The handle
    /// bytes are left for the caller to write.
    pub(crate) fn alloc(
        &mut self,
        state: *mut LoopState,
        cbs: Option<&Rc<ContextCbs>>,
        ext_size: u32,
    ) -> Option<NonNull<u8>> {
        let ext_size = class(ext_size)?;
        let stride = stride(ext_size)?;
        let key = cbs.map_or(std::ptr::null(), Rc::as_ptr);
        let pool = match self
            .pools
            .iter()
            .position(|p| p.key == key && p.ext_size == ext_size)
        {
            Some(i) => i,
            None => {
                self.pools.push(Pool {
                    key,
                    ext_size,
                    with_room: Vec::new(),
                    chunks: 0,
                });
                self.pools.len() - 1
            }
        };
        let p = loop {
            let Some(&c) = self.pools[pool].with_room.last() else {
                let c = self.new_chunk(pool, state, cbs, ext_size, stride)?;
                self.pools[pool].with_room.push(c);
                continue;
            };
            // SAFETY: `c` is a live chunk of this slab (chunks leave `with_room` before they
            // are released).
            if let Some(p) = unsafe { take_block(c) } {
                break p;
            }
            self.pools[pool].with_room.pop();
            // SAFETY: as above.
            unsafe { chunk(c) }.listed.set(false);
        };
        self.live += 1;
        // The ext (and, with none, the handle's 8 bytes): zeroed, as the C library's calloc.
        let zeroed = if ext_size == 0 { 8 } else { ext_size as usize };
        let at = if ext_size == 0 { 0 } else { 8 };
        // SAFETY: `p` is a block of `stride` bytes in its chunk; its bytes `at..at + zeroed`
        // are within them (8 + ext_size <= stride), and nothing else refers to them.
        unsafe { std::ptr::write_bytes(p.as_ptr().wrapping_add(at), 0, zeroed) };
        Some(p)
    }

    /// Allocates and registers a chunk for `pool`.
    fn new_chunk(
        &mut self,
        pool: usize,
        state: *mut LoopState,
        cbs: Option<&Rc<ContextCbs>>,
        ext_size: u32,
        stride: usize,
    ) -> Option<NonNull<Chunk>> {
        let size = FIRST.checked_add(stride)?.max(CHUNK);
        let layout = Layout::from_size_align(size, CHUNK).ok()?;
        let cap = u32::try_from((size - FIRST) / stride).ok()?;
        self.chunks.try_reserve(1).ok()?;
        self.pools[pool].with_room.try_reserve(1).ok()?;
        // SAFETY: `layout` has a non-zero size (at least CHUNK bytes).
        let raw = NonNull::new(unsafe { alloc(layout) })?;
        let c = raw.cast::<Chunk>();
        let chunk = Chunk {
            head: SocketHeader {
                cbs: cbs.cloned(),
                state,
                ext_size,
            },
            stride: stride as u32,
            cap,
            size,
            bump: Cell::new(0),
            live: Cell::new(0),
            free: Cell::new(std::ptr::null_mut()),
            pool: Cell::new(pool as u32),
            listed: Cell::new(true),
        };
        // SAFETY: `c` is a fresh allocation of at least CHUNK bytes aligned to CHUNK, so
        // aligned and big enough for a `Chunk`; nothing else refers to it.
        unsafe { c.as_ptr().write(chunk) };
        self.chunks.push(c);
        self.pools[pool].chunks += 1;
        Some(c)
    }

    /// Gives the block at `p` back to its chunk.
    ///
    /// # Safety
    /// `p` is a live block of this slab, not used afterwards.
    pub(crate) unsafe fn free(&mut self, p: NonNull<u8>) {
        // SAFETY: `p` is a live block of this slab (the caller's contract), so its chunk is live
        // until `collect` finds it empty, after this call.
        let c = unsafe { chunk(chunk_of(p)) };
        // SAFETY: the block's first 8 bytes are its own (8-byte aligned), free from now on.
        unsafe { p.as_ptr().cast::<*mut u8>().write(c.free.get()) };
        c.free.set(p.as_ptr());
        c.live.set(c.live.get() - 1);
        if !c.listed.replace(true) {
            // `pool` indexes `self.pools` (kept so by `collect`).
            let pool = c.pool.get() as usize;
            // A failed push only leaves the chunk's room unused until the next `collect`.
            if self.pools[pool].with_room.try_reserve(1).is_ok() {
                self.pools[pool].with_room.push(chunk_of(p));
            } else {
                c.listed.set(false);
            }
        }
        self.live -= 1;
    }

    /// Releases every empty chunk, and the pools left without chunks.
    pub(crate) fn collect(&mut self) {
        let before = self.chunks.len();
        self.chunks.retain(|&c| {
            // SAFETY: every chunk in `chunks` is live; the reference ends with this statement.
            let empty = unsafe { chunk(c) }.live.get() == 0;
            if empty {
                // SAFETY: the chunk is live and has no live block, so nothing refers into it;
                // it leaves `chunks` here and every `with_room` below.
                unsafe { release(c) };
            }
            !empty
        });
        if self.chunks.len() == before {
            return;
        }
        // Rebuild the pools from the chunks left: counts, stacks with room, indices.
        let mut pools: Vec<Pool> = Vec::new();
        let mut map = vec![usize::MAX; self.pools.len()];
        for &cp in &self.chunks {
            // SAFETY: every chunk in `chunks` is live, and none is released in this loop.
            let c = unsafe { chunk(cp) };
            let old = c.pool.get() as usize;
            if map[old] == usize::MAX {
                map[old] = pools.len();
                pools.push(Pool {
                    key: self.pools[old].key,
                    ext_size: self.pools[old].ext_size,
                    with_room: Vec::new(),
                    chunks: 0,
                });
            }
            let new = map[old];
            pools[new].chunks += 1;
            let has_room = c.has_room();
            c.pool.set(new as u32);
            c.listed.set(has_room);
            if has_room {
                pools[new].with_room.push(cp);
            }
        }
        self.pools = pools;
        self.chunks.shrink_to_fit();
    }

    /// Releases every chunk, live blocks included (`us_loop_free`).
    ///
    /// # Safety
    /// No block of this slab is used afterwards.
    pub(crate) unsafe fn release_all(&mut self) {
        for c in self.chunks.drain(..) {
            // SAFETY: `c` is live and, by the caller's contract, no block of it is used again.
            unsafe { release(c) };
        }
        self.pools.clear();
        self.live = 0;
    }
}

/// Takes a block from chunk `c`: a freed one, else the next never used; `None` when full.
///
/// # Safety
/// `c` is a live chunk; no reference to its bookkeeping fields is alive.
unsafe fn take_block(cp: NonNull<Chunk>) -> Option<NonNull<u8>> {
    // SAFETY: `cp` is live (the caller's contract) and stays so during this call.
    let c = unsafe { chunk(cp) };
    let p = if let Some(p) = NonNull::new(c.free.get()) {
        // SAFETY: a freed block holds the next free one in its first 8 bytes (`Slab::free`).
        c.free.set(unsafe { p.as_ptr().cast::<*mut u8>().read() });
        p
    } else if c.bump.get() < c.cap {
        let at = FIRST + c.bump.get() as usize * c.stride as usize;
        c.bump.set(c.bump.get() + 1);
        // Within the chunk's allocation: block `bump < cap` ends by FIRST + cap * stride.
        cp.cast::<u8>().map_addr(|a| a.saturating_add(at))
    } else {
        return None;
    };
    c.live.set(c.live.get() + 1);
    Some(p)
}

/// Drops chunk `c`'s header and frees its memory.
///
/// # Safety
/// `c` is a live chunk that nothing refers into, and is not used afterwards.
unsafe fn release(c: NonNull<Chunk>) {
    // SAFETY: `c` is live (the caller's contract); the reference ends with this statement.
    let size = unsafe { chunk(c) }.size;
    // SAFETY: as above; dropping the header releases its share of the callbacks, and nothing
    // reads it afterwards.
    unsafe { std::ptr::drop_in_place(c.as_ptr()) };
    if let Ok(layout) = Layout::from_size_align(size, CHUNK) {
        // SAFETY: allocated by `new_chunk` with this very layout, and not used afterwards.
        unsafe { dealloc(c.as_ptr().cast(), layout) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cbs() -> Rc<ContextCbs> {
        Rc::new(ContextCbs::default())
    }

    fn read_bytes(p: NonNull<u8>, at: usize, n: usize) -> Vec<u8> {
        // SAFETY: the tests read only within live blocks of their slab.
        (0..n)
            .map(|i| unsafe { p.as_ptr().wrapping_add(at + i).read() })
            .collect()
    }

    #[test]
    fn blocks_are_zeroed_aligned_and_share_their_chunk_header() {
        let mut slab = Slab::default();
        let a = cbs();
        let mut blocks = Vec::new();
        for ext in [0u32, 1, 16, 24, 100] {
            let p = slab
                .alloc(std::ptr::null_mut(), Some(&a), ext)
                .expect("alloc");
            assert_eq!(p.as_ptr() as usize % 8, 0, "the handle is 8-byte aligned");
            if ext > 0 {
                assert_eq!((p.as_ptr() as usize + 8) % 16, 0, "ext is 16-byte aligned");
                assert!(read_bytes(p, 8, ext as usize).iter().all(|&b| b == 0));
            }
            // SAFETY: `p` is live.
            let h = unsafe { header(p) };
            assert_eq!(h.ext_size, class(ext).unwrap());
            assert!(Rc::ptr_eq(h.cbs.as_ref().unwrap(), &a));
            blocks.push(p);
        }
        assert_eq!(slab.live(), 5);
        for p in blocks {
            // SAFETY: live, freed once.
            unsafe { slab.free(p) };
        }
        assert_eq!(slab.live(), 0);
        // SAFETY: nothing is used afterwards.
        unsafe { slab.release_all() };
    }

    #[test]
    fn freed_blocks_are_reused_and_rezeroed() {
        let mut slab = Slab::default();
        let p = slab.alloc(std::ptr::null_mut(), None, 32).expect("alloc");
        // SAFETY: `p` is live with 32 ext bytes at p + 8.
        unsafe { std::ptr::write_bytes(p.as_ptr().wrapping_add(8), 0xAB, 32) };
        // SAFETY: live, freed once.
        unsafe { slab.free(p) };
        let q = slab.alloc(std::ptr::null_mut(), None, 20).expect("alloc");
        assert_eq!(p, q, "the freed block of the same class comes back first");
        assert!(read_bytes(q, 8, 32).iter().all(|&b| b == 0), "zeroed again");
        // SAFETY: nothing is used afterwards.
        unsafe { slab.release_all() };
    }

    #[test]
    fn contexts_and_classes_get_chunks_of_their_own() {
        let mut slab = Slab::default();
        let (a, b) = (cbs(), cbs());
        let pa = slab.alloc(std::ptr::null_mut(), Some(&a), 0).unwrap();
        let pb = slab.alloc(std::ptr::null_mut(), Some(&b), 0).unwrap();
        let pc = slab.alloc(std::ptr::null_mut(), Some(&a), 16).unwrap();
        let pd = slab.alloc(std::ptr::null_mut(), Some(&a), 0).unwrap();
        assert_ne!(chunk_of(pa), chunk_of(pb));
        assert_ne!(chunk_of(pa), chunk_of(pc));
        assert_eq!(chunk_of(pa), chunk_of(pd));
        assert_eq!(
            pd.as_ptr() as usize - pa.as_ptr() as usize,
            8,
            "no ext: 8 bytes each"
        );
        assert_eq!(Rc::strong_count(&a), 3, "one share per chunk");
        // SAFETY: nothing is used afterwards.
        unsafe { slab.release_all() };
        assert_eq!(Rc::strong_count(&a), 1, "released with the chunks");
    }

    #[test]
    fn collect_gives_back_empty_chunks_and_keeps_the_rest_working() {
        let mut slab = Slab::default();
        let a = cbs();
        // Three chunks' worth of 100-byte exts (stride 128).
        let per_chunk = (CHUNK - FIRST) / 128;
        let n = per_chunk * 3;
        let blocks: Vec<_> = (0..n)
            .map(|_| slab.alloc(std::ptr::null_mut(), Some(&a), 100).unwrap())
            .collect();
        assert_eq!(slab.chunks.len(), 3);
        // Free all but the last block: two chunks empty, one with a block left.
        for &p in &blocks[..n - 1] {
            // SAFETY: live, freed once.
            unsafe { slab.free(p) };
        }
        slab.collect();
        assert_eq!(slab.chunks.len(), 1, "empty chunks are given back");
        assert_eq!(Rc::strong_count(&a), 2);
        // The chunk left still hands out blocks, and a new pool still works.
        let q = slab.alloc(std::ptr::null_mut(), Some(&a), 100).unwrap();
        assert_eq!(chunk_of(q), chunk_of(blocks[n - 1]));
        let r = slab.alloc(std::ptr::null_mut(), None, 0).unwrap();
        for p in [q, r, blocks[n - 1]] {
            // SAFETY: live, freed once each.
            unsafe { slab.free(p) };
        }
        slab.collect();
        assert!(slab.chunks.is_empty() && slab.pools.is_empty());
        assert_eq!(Rc::strong_count(&a), 1);
    }

    #[test]
    fn an_ext_bigger_than_a_chunk_gets_a_chunk_of_its_own() {
        let mut slab = Slab::default();
        let big = 200 * 1024;
        let p = slab.alloc(std::ptr::null_mut(), None, big).unwrap();
        let q = slab.alloc(std::ptr::null_mut(), None, big).unwrap();
        assert_ne!(chunk_of(p), chunk_of(q));
        // SAFETY: `p` is live with `big` ext bytes at p + 8.
        unsafe { std::ptr::write_bytes(p.as_ptr().wrapping_add(8), 1, big as usize) };
        // SAFETY: `p` is live.
        assert_eq!(unsafe { header(p) }.ext_size, big);
        // SAFETY: nothing is used afterwards.
        unsafe { slab.release_all() };
    }
}
