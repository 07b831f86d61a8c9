//! Where socket blocks live: chunks of equal blocks, one pool of chunks per context and ext
//! size class, owned by the loop ([`Slab`], in `LoopState::slab`).
//!
//! # Why not malloc
//!
//! A socket is the one object a server has thousands of, and each needs a block C can point to
//! (see the `block` module). A malloc'd block cost 48 bytes for a 32-byte header (glibc's chunk
//! overhead and rounding) plus ~15 in the registry that let `us_loop_free` find it. Here a block
//! costs its stride: 8 bytes with no ext, `16 + ext` (rounded up to 16) otherwise, plus one bit
//! of its chunk's bitmap.
//!
//! # Layout
//!
//! A chunk is [`CHUNK`] bytes aligned to [`CHUNK`], so the chunk of any block is found by
//! rounding the block's address down: no pointer in the block leads to it. The chunk starts
//! with its header ([`Chunk`]), which holds what all its blocks share (the loop state, the
//! context's C callbacks ([`SocketHeader`]) and the ext size) and the chunk's bookkeeping,
//! then a bitmap of its blocks in use, one bit each. The blocks follow; with an ext each is at
//! an address that is 8 mod 16:
//!
//! ```text
//! block:  [ SocketId (8) ][ ext, 16-byte aligned, rounded up to 16 ][ 8 spare ]
//! ```
//!
//! With no ext the stride is 8 (the handle only), so blocks alternate between 8 and 0 mod 16,
//! and the ext pointer is the handle's end rounded up to 16: it has no bytes to read or write.
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
//! A block bigger than a chunk (an ext near 64 KiB or more, which `us_adopt_accepted_socket`
//! takes as any `unsigned int`) gets a chunk of its own, from zeroed memory over-allocated by
//! [`CHUNK`] so that the chunk can start at a multiple of it: the allocator's calloc maps
//! zero pages lazily, as the C library's calloc of such a socket does, and the block needs no
//! zeroing. Such a chunk goes as soon as its block is freed.
//!
//! # Allocation and giving back
//!
//! A chunk hands out its lowest free block. Its bitmap says which blocks are in use; blocks
//! from its bump index on have never been handed out, so only the pages of blocks ever used
//! become resident. Lowest first packs what survives of a shrinking server at the start of
//! the chunks and leaves whole pages free after it. A pool keeps a stack of its chunks that
//! have room. Freeing is O(1) (a bit, a marker: see "Stale pointers") and releases a chunk
//! only when nothing can use it again: a chunk of one big block, or a chunk of a freed
//! context ([`Slab::orphan`]) whose last block goes. Other empty chunks stay (a socket coming
//! and going would otherwise allocate a chunk each time) until [`Slab::collect`], which runs
//! when the live blocks fall to half their peak (with the heap trim of the `memory` module).
//! It releases the empty chunks and, in the others, hands every page that holds no block in
//! use back to the OS (`memory::discard`: `madvise(MADV_DONTNEED)` on Linux, after which the
//! pages read as zeros; other systems keep them). `us_loop_free` releases every chunk, live
//! blocks included: the slab is the registry of socket blocks.
//!
//! Giving pages back is why the bookkeeping is in the header and not in the blocks. A free
//! list linked through the freed blocks (as this module first had) would have to be read from
//! them, making their pages resident again, and would be lost with them; so would anything
//! else kept in a free block. The bitmap costs a bit per block in the header's page, which
//! stays resident anyway (every event reads the callbacks there), and a search for a clear
//! bit when allocating (a word at a time from the lowest one that may have one). Without it
//! a server down from 5,000 connections with a typical uWebSockets ext (256 to 1,024 bytes)
//! to 50 kept 1.1 to 2.2 MiB of chunks; with it, it keeps the header pages and the pages of
//! its 50 blocks (the test `collect_gives_back_the_pages_of_free_blocks`), as malloc'd blocks
//! with `malloc_trim` did. A block is zeroed when handed out anyway, so a page given back
//! needs nothing when it comes back into use.
//!
//! # Stale pointers
//!
//! A freed block's first 8 bytes read [`FREED`], which no socket handle does (its generation
//! is above 2^30), so a C pointer to a socket whose block moved (adoption) or was freed is
//! rejected by `block::peek` rather than read as a handle of some other socket, for as long as
//! its chunk and page are there. That is a guard against a common mistake, not a guarantee:
//! a block handed out again is another socket's, a page given back reads as zeros (the handle
//! {index 0, generation 0}) and a released chunk is gone. Using a pointer after its socket was
//! closed and released, or moved, breaks the C contract.
//!
//! # Aliasing
//!
//! Chunk memory is only ever reached through raw pointers derived from the pointer the
//! allocator returned (blocks by offset, headers by rounding a block's address down, which
//! keeps that provenance). The only references made into a chunk are shared ones: to its
//! header ([`Chunk`], whose changing fields are cells; its [`SocketHeader`] is written only
//! when the chunk is made and dropped only when it is released, with no block left) and to
//! its bitmap (cells). No reference covers a block.

use std::alloc::{alloc, alloc_zeroed, dealloc, Layout};
use std::cell::Cell;
use std::ptr::NonNull;
use std::rc::Rc;

use crate::state::LoopState;
use crate::types::ContextCbs;

/// Size and alignment of a chunk (bigger only for a block that does not fit in one).
pub(crate) const CHUNK: usize = 64 * 1024;

/// The first 8 bytes of a freed block: its generation is above 2^30, so no socket handle
/// reads so (module docs, "Stale pointers").
pub(crate) const FREED: [u32; 2] = [u32::MAX - 2; 2];

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

/// A chunk's header, at its start; its bitmap of blocks in use follows it (`used`). Reached
/// through shared references only (`chunk`): what changes is in cells, and `head` is written
/// only when the chunk is made and dropped only when it is released, with no block left.
#[repr(C)]
struct Chunk {
    head: SocketHeader,
    /// Bytes from one block to the next.
    stride: u32,
    /// How many blocks fit.
    cap: u32,
    /// Where block 0 starts, from the chunk's start (past the header and bitmap).
    first: u32,
    /// Blocks `bump..cap` have never been handed out.
    bump: Cell<u32>,
    /// Blocks handed out and not freed.
    live: Cell<u32>,
    /// Every block below it is in use: where the search for a free one starts.
    hint: Cell<u32>,
    /// Its pool's index in `Slab::pools`.
    pool: Cell<u32>,
    /// Its index in `Slab::chunks`.
    index: Cell<u32>,
    /// Whether it is on its pool's `with_room` stack.
    listed: Cell<bool>,
    /// A chunk of one block bigger than [`CHUNK`]: from zeroed memory (its block needs no
    /// zeroing the first time), released with its block.
    big: bool,
    /// What was allocated for it (it starts at or after `base`), for `release`.
    base: NonNull<u8>,
    layout: Layout,
}

impl Chunk {
    /// Whether a block can be taken from it.
    fn has_room(&self) -> bool {
        self.live.get() < self.cap
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

/// The bitmap of chunk `c`: bit `i % 64` of word `i / 64` is set while block `i` is in use.
///
/// # Safety
/// `c` is a live chunk, not released while the reference is used.
unsafe fn used<'a>(c: NonNull<Chunk>) -> &'a [Cell<u64>] {
    // SAFETY: `c` is live (the caller's contract).
    let words = words(unsafe { chunk(c) }.cap);
    // SAFETY: `new_chunk` initialised `words` words right after the header, 8-aligned (the
    // header's alignment is at least 8) and within the chunk (before `first`), with `c`'s
    // provenance; like the header, they are only reached through shared references to cells.
    unsafe { std::slice::from_raw_parts(c.as_ptr().wrapping_add(1).cast::<Cell<u64>>(), words) }
}

/// Bitmap words for `cap` blocks.
fn words(cap: u32) -> usize {
    cap.div_ceil(64) as usize
}

/// The first block in `from..end` that is in use (`in_use`) or free (`!in_use`); `end` if none.
fn next(used: &[Cell<u64>], from: u32, end: u32, in_use: bool) -> u32 {
    let mut i = from;
    while i < end {
        let w = (i / 64) as usize;
        let Some(word) = used.get(w) else { break };
        let bits = if in_use { word.get() } else { !word.get() };
        let bits = bits & (u64::MAX << (i % 64));
        if bits != 0 {
            return (i - i % 64 + bits.trailing_zeros()).min(end);
        }
        i = i - i % 64 + 64;
    }
    end
}

/// Where block 0 starts in a chunk of `cap` blocks: past the header and its bitmap, at 8 mod
/// 16 (so that the ext after an 8-byte handle is 16-byte aligned).
fn first(cap: u32) -> usize {
    (std::mem::size_of::<Chunk>() + words(cap) * 8 + 8).next_multiple_of(16) - 8
}

const _: () = assert!(std::mem::align_of::<Chunk>() >= 8 && std::mem::align_of::<Chunk>() <= 16);

/// The size, first block offset and capacity of a chunk of `stride`-byte blocks.
fn geometry(stride: usize) -> Option<(usize, usize, u32)> {
    let one = first(1);
    if one.checked_add(stride)? > CHUNK {
        return Some((one + stride, one, 1));
    }
    // The bitmap for as many blocks as fit past a one-word bitmap; a bigger bitmap leaves
    // room for no more blocks, so it is big enough.
    let most = u32::try_from((CHUNK - one) / stride).ok()?;
    let first = first(most);
    let cap = u32::try_from((CHUNK - first) / stride).ok()?;
    Some((CHUNK, first, cap))
}

/// The chunks of one context (by its callbacks) and one ext size class.
struct Pool {
    /// The key: the context's callbacks (`Rc::as_ptr`), or null. The pool's chunks hold the
    /// `Rc` itself, which keeps the address from being reused while the pool has chunks, and
    /// a pool without chunks is removed when its context is freed ([`Slab::orphan`]).
    key: *const ContextCbs,
    ext_size: u32,
    /// Chunks that may have room (a chunk found full is dropped from it).
    with_room: Vec<NonNull<Chunk>>,
    /// How many chunks it has.
    chunks: usize,
    /// Its context was freed: each chunk goes when its last block does.
    orphaned: bool,
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
    // block, at `first`), so rounding down finds the chunk's start.
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
    /// whose callbacks are `cbs`, in the loop `state`; `None` when out of memory (or for an
    /// ext too big to address). The handle bytes are left for the caller to write.
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
                self.pools.try_reserve(1).ok()?;
                self.pools.push(Pool {
                    key,
                    ext_size,
                    with_room: Vec::new(),
                    chunks: 0,
                    orphaned: false,
                });
                self.pools.len() - 1
            }
        };
        let (p, zero) = loop {
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
        if zero {
            // The ext (and, with none, the handle's 8 bytes): zeroed, as the C library's calloc.
            let zeroed = if ext_size == 0 { 8 } else { ext_size as usize };
            let at = if ext_size == 0 { 0 } else { 8 };
            // SAFETY: `p` is a block of `stride` bytes in its chunk; its bytes `at..at + zeroed`
            // are within them (8 + ext_size <= stride), and nothing else refers to them.
            unsafe { std::ptr::write_bytes(p.as_ptr().wrapping_add(at), 0, zeroed) };
        }
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
        let (size, first, cap) = geometry(stride)?;
        let big = size > CHUNK;
        // A big chunk: over-allocated so that it can start at a multiple of CHUNK, and
        // zeroed by calloc (alignment 8: `alloc_zeroed` with a bigger one would zero eagerly).
        let layout = if big {
            Layout::from_size_align(size.checked_add(CHUNK)?, 8).ok()?
        } else {
            Layout::from_size_align(CHUNK, CHUNK).ok()?
        };
        let index = u32::try_from(self.chunks.len()).ok()?;
        let (stride, first, pool_index) = (
            u32::try_from(stride).ok()?,
            u32::try_from(first).ok()?,
            u32::try_from(pool).ok()?,
        );
        self.chunks.try_reserve(1).ok()?;
        self.pools[pool].with_room.try_reserve(1).ok()?;
        let base = if big {
            // SAFETY: `layout` has a non-zero size (more than CHUNK bytes).
            NonNull::new(unsafe { alloc_zeroed(layout) })?
        } else {
            // SAFETY: as above (CHUNK bytes).
            NonNull::new(unsafe { alloc(layout) })?
        };
        // The first multiple of CHUNK in the allocation: at most CHUNK - 1 bytes in, so the
        // chunk's `size` bytes are within it (`base` itself for a small chunk).
        let c = base
            .as_ptr()
            .map_addr(|a| a.next_multiple_of(CHUNK))
            .cast::<Chunk>();
        let c = NonNull::new(c)?;
        let chunk = Chunk {
            head: SocketHeader {
                cbs: cbs.cloned(),
                state,
                ext_size,
            },
            stride,
            cap,
            first,
            bump: Cell::new(0),
            live: Cell::new(0),
            hint: Cell::new(0),
            pool: Cell::new(pool_index),
            index: Cell::new(index),
            listed: Cell::new(true),
            big,
            base,
            layout,
        };
        // SAFETY: `c` is at a multiple of CHUNK with at least `size` bytes of the fresh
        // allocation from it, so aligned and big enough for the header and its bitmap (which
        // end by `first` < `size`); nothing else refers to them.
        unsafe { c.as_ptr().write(chunk) };
        let bits = c.as_ptr().wrapping_add(1).cast::<u64>();
        // SAFETY: as above: the bitmap's words follow the header, 8-aligned, before `first`.
        unsafe { std::ptr::write_bytes(bits, 0, words(cap)) };
        self.chunks.push(c);
        self.pools[pool].chunks += 1;
        Some(c)
    }

    /// Gives the block at `p` back to its chunk, and releases the chunk if nothing can use it
    /// again (a big block's, or an orphaned pool's last).
    ///
    /// # Safety
    /// `p` is a live block of this slab, not used afterwards.
    pub(crate) unsafe fn free(&mut self, p: NonNull<u8>) {
        let cp = chunk_of(p);
        // SAFETY: `p` is a live block of this slab (the caller's contract), so its chunk is
        // live until released below, after the last use of `c`.
        let c = unsafe { chunk(cp) };
        // SAFETY: as above.
        let used = unsafe { used(cp) };
        let at = p.as_ptr().addr() - cp.as_ptr().addr() - c.first as usize;
        // A block index (below `cap`, a u32): `p` is one of the chunk's blocks.
        let i = (at / c.stride as usize) as u32;
        if let Some(word) = used.get((i / 64) as usize) {
            word.set(word.get() & !(1 << (i % 64)));
        }
        c.hint.set(c.hint.get().min(i));
        c.live.set(c.live.get() - 1);
        // SAFETY: the block's first 8 bytes are its own (8-byte aligned), free from now on.
        unsafe { p.as_ptr().cast::<[u32; 2]>().write(FREED) };
        self.live -= 1;
        // `pool` indexes `self.pools` (kept so by `collect` and `remove_pool`).
        let pool = c.pool.get() as usize;
        if c.live.get() == 0 && (c.big || self.pools[pool].orphaned) {
            // SAFETY: the chunk is live and its last block was just freed.
            unsafe { self.release_chunk(cp) };
            return;
        }
        if !c.listed.replace(true) {
            // A failed push only leaves the chunk's room unused until the next `collect`.
            if self.pools[pool].with_room.try_reserve(1).is_ok() {
                self.pools[pool].with_room.push(cp);
            } else {
                c.listed.set(false);
            }
        }
    }

    /// The context whose callbacks are `cbs` is freed: its pools' empty chunks go now, the
    /// others when their last block goes (its sockets are released after the context, at the
    /// end of the iteration).
    pub(crate) fn orphan(&mut self, cbs: &Rc<ContextCbs>) {
        let key = Rc::as_ptr(cbs);
        for p in self.pools.iter_mut().filter(|p| p.key == key) {
            p.orphaned = true;
        }
        // From the end: releasing chunk `i` moves the last chunk, already seen, to `i`.
        let mut i = self.chunks.len();
        while i > 0 {
            i -= 1;
            let cp = self.chunks[i];
            // SAFETY: every chunk in `chunks` is live; the reference ends with this statement.
            let c = unsafe { chunk(cp) };
            if c.live.get() == 0 && self.pools[c.pool.get() as usize].orphaned {
                // SAFETY: the chunk is live and has no live block.
                unsafe { self.release_chunk(cp) };
            }
        }
        // Pools of the context left without chunks (released with their last block before).
        while let Some(i) = self.pools.iter().position(|p| p.orphaned && p.chunks == 0) {
            self.remove_pool(i);
        }
    }

    /// Releases chunk `cp`, and its pool if orphaned and left without chunks.
    ///
    /// # Safety
    /// `cp` is a live chunk of this slab with no live block.
    unsafe fn release_chunk(&mut self, cp: NonNull<Chunk>) {
        // SAFETY: `cp` is live (the caller's contract); the reference is not used after the
        // release below.
        let c = unsafe { chunk(cp) };
        let (index, pool) = (c.index.get() as usize, c.pool.get() as usize);
        self.chunks.swap_remove(index);
        if let Some(&moved) = self.chunks.get(index) {
            // SAFETY: every chunk in `chunks` is live.
            unsafe { chunk(moved) }.index.set(index as u32);
        }
        let p = &mut self.pools[pool];
        if c.listed.get() {
            if let Some(at) = p.with_room.iter().position(|&x| x == cp) {
                p.with_room.remove(at);
            }
        }
        p.chunks -= 1;
        let gone = p.orphaned && p.chunks == 0;
        // SAFETY: live, with no live block (the caller's contract), and out of `chunks` and
        // `with_room`: nothing refers into it any more.
        unsafe { release(cp) };
        if gone {
            self.remove_pool(pool);
        }
    }

    /// Removes pool `i`, which has no chunks; the last pool takes its index.
    fn remove_pool(&mut self, i: usize) {
        let last = self.pools.len() - 1;
        self.pools.swap_remove(i);
        if i != last {
            for &cp in &self.chunks {
                // SAFETY: every chunk in `chunks` is live; the reference ends with this
                // statement.
                let c = unsafe { chunk(cp) };
                if c.pool.get() as usize == last {
                    c.pool.set(i as u32);
                }
            }
        }
    }

    /// Releases every empty chunk and the pools left without chunks, and hands the pages of
    /// the other chunks that hold no block in use back to the OS (module docs).
    pub(crate) fn collect(&mut self) {
        let page = crate::memory::page_size();
        let before = self.chunks.len();
        self.chunks.retain(|&c| {
            // SAFETY: every chunk in `chunks` is live; the reference ends with this statement.
            let empty = unsafe { chunk(c) }.live.get() == 0;
            if empty {
                // SAFETY: the chunk is live and has no live block, so nothing refers into it;
                // it leaves `chunks` here and every `with_room` below.
                unsafe { release(c) };
            } else {
                // SAFETY: the chunk is live.
                unsafe { give_back(c, page) };
            }
            !empty
        });
        if self.chunks.len() == before && self.pools.iter().all(|p| p.chunks > 0) {
            return;
        }
        // Rebuild the pools from the chunks left: counts, stacks with room, indices.
        let mut pools: Vec<Pool> = Vec::new();
        let mut map = vec![usize::MAX; self.pools.len()];
        for (index, &cp) in self.chunks.iter().enumerate() {
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
                    orphaned: self.pools[old].orphaned,
                });
            }
            let new = map[old];
            pools[new].chunks += 1;
            let has_room = c.has_room();
            c.pool.set(new as u32);
            c.index.set(index as u32);
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

/// Takes chunk `cp`'s lowest free block; `None` when it is full. With it, whether it needs
/// zeroing (all but a big chunk's block handed out the first time).
///
/// # Safety
/// `cp` is a live chunk.
unsafe fn take_block(cp: NonNull<Chunk>) -> Option<(NonNull<u8>, bool)> {
    // SAFETY: `cp` is live (the caller's contract) and stays so during this call.
    let c = unsafe { chunk(cp) };
    // SAFETY: as above.
    let used = unsafe { used(cp) };
    let bump = c.bump.get();
    // A block below `bump` is free when fewer are live; none is below `hint`.
    let mut i = if c.live.get() < bump {
        next(used, c.hint.get(), bump, false)
    } else {
        bump
    };
    let fresh = i >= bump;
    if fresh {
        if bump >= c.cap {
            return None;
        }
        i = bump;
        c.bump.set(bump + 1);
    }
    if let Some(word) = used.get((i / 64) as usize) {
        word.set(word.get() | (1 << (i % 64)));
    }
    c.hint.set(i + 1);
    c.live.set(c.live.get() + 1);
    let at = c.first as usize + i as usize * c.stride as usize;
    // Within the chunk's allocation: block `i < cap` ends by first + cap * stride <= size.
    let p = cp.cast::<u8>().map_addr(|a| a.saturating_add(at));
    Some((p, !(fresh && c.big)))
}

/// Hands the pages of chunk `cp` that hold no block in use back to the OS (`page`: the page
/// size; 0 where pages are not given back). Its header's pages stay.
///
/// # Safety
/// `cp` is a live chunk.
unsafe fn give_back(cp: NonNull<Chunk>, page: usize) {
    if !page.is_power_of_two() || page > CHUNK {
        return;
    }
    // SAFETY: `cp` is live (the caller's contract) and stays so during this call.
    let c = unsafe { chunk(cp) };
    // SAFETY: as above.
    let used = unsafe { used(cp) };
    let bump = c.bump.get();
    let offset = |i: u32| c.first as usize + i as usize * c.stride as usize;
    let mut i = 0;
    while i < bump {
        // A run of free blocks, `from..to`.
        let from = next(used, i, bump, false);
        if from >= bump {
            break;
        }
        let to = next(used, from, bump, true);
        // A run up to `bump` takes the rest of the chunk with it (never handed out, so
        // nothing reads it before zeroing it); a big chunk's one block is never in a run.
        let end = if to == bump { CHUNK } else { offset(to) };
        let (start, end) = (offset(from).next_multiple_of(page), end & !(page - 1));
        if start < end {
            let p = cp.cast::<u8>().as_ptr().wrapping_add(start);
            // SAFETY: `start..end` is page-aligned and within the run of free blocks, in the
            // chunk's allocation and past its header (`start` >= `first`); nothing refers to
            // free blocks, and each is zeroed when handed out again.
            unsafe { crate::memory::discard(p, end - start) };
        }
        i = to;
    }
}

/// Drops chunk `c`'s header and frees its memory.
///
/// # Safety
/// `c` is a live chunk that nothing refers into, and is not used afterwards.
unsafe fn release(c: NonNull<Chunk>) {
    // SAFETY: `c` is live (the caller's contract); the reference is not used after the drop.
    let header = unsafe { chunk(c) };
    let (base, layout) = (header.base, header.layout);
    // SAFETY: as above; dropping the header releases its share of the callbacks, and nothing
    // reads it afterwards.
    unsafe { std::ptr::drop_in_place(c.as_ptr()) };
    // SAFETY: allocated by `new_chunk` at `base` with this very layout, and not used
    // afterwards.
    unsafe { dealloc(base.as_ptr(), layout) };
}

#[cfg(test)]
impl Slab {
    /// How many chunks it has.
    pub(crate) fn chunk_count(&self) -> usize {
        self.chunks.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cbs() -> Rc<ContextCbs> {
        Rc::new(ContextCbs::default())
    }

    fn read_bytes(p: NonNull<u8>, at: usize, n: usize) -> Vec<u8> {
        // SAFETY: the tests read only within blocks of live chunks of their slab.
        (0..n)
            .map(|i| unsafe { p.as_ptr().wrapping_add(at + i).read() })
            .collect()
    }

    /// Asserts the slab's bookkeeping agrees with itself: chunk indices, pool indices and
    /// counts, live counts.
    fn check(slab: &Slab) {
        let mut per_pool = vec![0; slab.pools.len()];
        let mut live = 0;
        for (i, &cp) in slab.chunks.iter().enumerate() {
            // SAFETY: every chunk in `chunks` is live.
            let c = unsafe { chunk(cp) };
            // SAFETY: as above.
            let used = unsafe { used(cp) };
            assert_eq!(c.index.get() as usize, i, "chunk index");
            per_pool[c.pool.get() as usize] += 1;
            let set: u32 = used.iter().map(|w| w.get().count_ones()).sum();
            assert_eq!(set, c.live.get(), "one bit per live block");
            live += c.live.get() as usize;
        }
        let counts: Vec<usize> = slab.pools.iter().map(|p| p.chunks).collect();
        assert_eq!(counts, per_pool, "pool chunk counts");
        assert_eq!(live, slab.live, "live blocks");
    }

    /// Blocks of a chunk of `ext`-byte blocks.
    fn per_chunk(ext: u32) -> usize {
        let (_, _, cap) = geometry(stride(class(ext).unwrap()).unwrap()).unwrap();
        cap as usize
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
        check(&slab);
        for p in blocks {
            // SAFETY: live, freed once.
            unsafe { slab.free(p) };
        }
        assert_eq!(slab.live(), 0);
        check(&slab);
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
    fn a_freed_block_reads_as_no_socket_handle() {
        let mut slab = Slab::default();
        for ext in [0u32, 16] {
            let p = slab.alloc(std::ptr::null_mut(), None, ext).expect("alloc");
            let q = slab.alloc(std::ptr::null_mut(), None, ext).expect("alloc");
            // SAFETY: live, freed once; its chunk stays (`q` is live), so it can be read.
            unsafe { slab.free(p) };
            let first: Vec<u8> = FREED.iter().flat_map(|w| w.to_ne_bytes()).collect();
            assert_eq!(read_bytes(p, 0, 8), first);
            // SAFETY: the 8 bytes are initialised; a `SocketId` is two `u32`s.
            let id = unsafe { p.as_ptr().cast::<usockets_core::SocketId>().read() };
            assert!(id.generation() >= 1 << 30, "no handle has this generation");
            // SAFETY: live, freed once.
            unsafe { slab.free(q) };
        }
        // SAFETY: nothing is used afterwards.
        unsafe { slab.release_all() };
    }

    #[test]
    fn the_lowest_free_block_is_handed_out_first() {
        let mut slab = Slab::default();
        let blocks: Vec<_> = (0..200)
            .map(|_| slab.alloc(std::ptr::null_mut(), None, 16).unwrap())
            .collect();
        for i in [150, 3, 70, 129] {
            // SAFETY: live, freed once.
            unsafe { slab.free(blocks[i]) };
        }
        for i in [3, 70, 129, 150] {
            let p = slab.alloc(std::ptr::null_mut(), None, 16).unwrap();
            assert_eq!(p, blocks[i], "block {i}");
        }
        let next = slab.alloc(std::ptr::null_mut(), None, 16).unwrap();
        assert_eq!(
            next.as_ptr() as usize - blocks[199].as_ptr() as usize,
            32,
            "then the next never used"
        );
        check(&slab);
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
        let n = per_chunk(100) * 3;
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
        check(&slab);
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
    fn an_orphaned_pool_releases_each_chunk_with_its_last_block() {
        let mut slab = Slab::default();
        let (a, b) = (cbs(), cbs());
        let a1 = slab.alloc(std::ptr::null_mut(), Some(&a), 0).unwrap();
        let a2 = slab.alloc(std::ptr::null_mut(), Some(&a), 0).unwrap();
        let a16 = slab.alloc(std::ptr::null_mut(), Some(&a), 16).unwrap();
        let b1 = slab.alloc(std::ptr::null_mut(), Some(&b), 0).unwrap();
        // SAFETY: live, freed once.
        unsafe { slab.free(a16) };
        assert_eq!(
            slab.chunks.len(),
            3,
            "an empty chunk stays while its context lives"
        );
        // `a`'s context is freed: its empty chunk goes at once, the other when it empties.
        slab.orphan(&a);
        assert_eq!(slab.chunks.len(), 2);
        assert_eq!(Rc::strong_count(&a), 2, "one chunk of `a` left");
        check(&slab);
        // SAFETY: live, freed once.
        unsafe { slab.free(a1) };
        assert_eq!(slab.chunks.len(), 2, "a block of it is still live");
        // SAFETY: live, freed once.
        unsafe { slab.free(a2) };
        assert_eq!(
            slab.chunks.len(),
            1,
            "gone with its last block, no collect needed"
        );
        assert_eq!(Rc::strong_count(&a), 1);
        assert_eq!(slab.pools.len(), 1, "only `b`'s pool is left");
        check(&slab);
        // `b`'s pool still works, in the chunk it had.
        let b2 = slab.alloc(std::ptr::null_mut(), Some(&b), 0).unwrap();
        assert_eq!(chunk_of(b2), chunk_of(b1));
        // SAFETY: nothing is used afterwards.
        unsafe { slab.release_all() };
        assert_eq!(Rc::strong_count(&b), 1);
    }

    #[test]
    fn an_ext_bigger_than_a_chunk_gets_a_chunk_of_its_own() {
        let mut slab = Slab::default();
        let big = 200 * 1024;
        let p = slab.alloc(std::ptr::null_mut(), None, big).unwrap();
        let q = slab.alloc(std::ptr::null_mut(), None, big).unwrap();
        assert_ne!(chunk_of(p), chunk_of(q));
        assert_eq!(chunk_of(p).as_ptr() as usize % CHUNK, 0);
        assert!(
            read_bytes(p, 8, big as usize).iter().all(|&b| b == 0),
            "zeroed by the allocator"
        );
        // SAFETY: `p` is live with `big` ext bytes at p + 8.
        unsafe { std::ptr::write_bytes(p.as_ptr().wrapping_add(8), 1, big as usize) };
        // SAFETY: `p` is live.
        assert_eq!(unsafe { header(p) }.ext_size, big);
        // SAFETY: live, freed once.
        unsafe { slab.free(p) };
        assert_eq!(slab.chunks.len(), 1, "released with its block");
        check(&slab);
        // SAFETY: nothing is used afterwards.
        unsafe { slab.release_all() };
    }

    #[test]
    fn an_ext_whose_block_size_overflows_fails_cleanly() {
        let mut slab = Slab::default();
        // The class is u32::MAX - 15: 16 more bytes per block do not fit in a u32 stride.
        assert!(slab
            .alloc(std::ptr::null_mut(), None, u32::MAX - 20)
            .is_none());
        assert!(slab.alloc(std::ptr::null_mut(), None, u32::MAX).is_none());
        assert!(slab.chunks.is_empty());
        assert_eq!(slab.live(), 0);
    }

    /// Frees all but `keep` of `blocks`, picked at random (a fixed seed).
    #[cfg(all(target_os = "linux", not(miri)))]
    fn free_all_but(
        slab: &mut Slab,
        mut blocks: Vec<NonNull<u8>>,
        keep: usize,
    ) -> Vec<NonNull<u8>> {
        let mut x: u64 = 12345;
        for i in (1..blocks.len()).rev() {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            blocks.swap(i, (x >> 33) as usize % (i + 1));
        }
        for p in blocks.drain(keep..) {
            // SAFETY: live, freed once.
            unsafe { slab.free(p) };
        }
        blocks
    }

    #[test]
    fn blocks_handed_out_again_after_their_page_went_back_are_zeroed() {
        let mut slab = Slab::default();
        // Stride 272: 100 blocks span seven pages of 4 KiB.
        let blocks: Vec<_> = (0..100)
            .map(|_| slab.alloc(std::ptr::null_mut(), None, 256).unwrap())
            .collect();
        for &p in &blocks {
            // SAFETY: `p` is live with 256 ext bytes at p + 8.
            unsafe { std::ptr::write_bytes(p.as_ptr().wrapping_add(8), 0xAB, 256) };
        }
        // Block 0 keeps the chunk; the pages of the others go back.
        for &p in &blocks[1..] {
            // SAFETY: live, freed once.
            unsafe { slab.free(p) };
        }
        slab.collect();
        if crate::memory::page_size() != 0 {
            // Block 50 is well inside the free run: its page was given back and reads zeros.
            assert!(read_bytes(blocks[50], 0, 272).iter().all(|&b| b == 0));
        }
        assert!(
            read_bytes(blocks[0], 8, 256).iter().all(|&b| b == 0xAB),
            "kept"
        );
        for &old in &blocks[1..] {
            let p = slab.alloc(std::ptr::null_mut(), None, 256).unwrap();
            assert_eq!(p, old, "the same blocks, lowest first");
            assert!(read_bytes(p, 8, 256).iter().all(|&b| b == 0), "zeroed");
            // SAFETY: `p` is live with 256 ext bytes at p + 8.
            unsafe { std::ptr::write_bytes(p.as_ptr().wrapping_add(8), 0xCD, 256) };
        }
        check(&slab);
        // SAFETY: nothing is used afterwards.
        unsafe { slab.release_all() };
    }

    /// Resident pages of the slab's chunks, up to the end of their last block ever used
    /// (`mincore`).
    #[cfg(all(target_os = "linux", not(miri)))]
    fn resident_pages(slab: &Slab) -> std::collections::HashSet<usize> {
        let page = crate::memory::page_size();
        let mut pages = std::collections::HashSet::new();
        for &cp in &slab.chunks {
            // SAFETY: every chunk in `chunks` is live.
            let c = unsafe { chunk(cp) };
            let len = (c.first as usize + c.bump.get() as usize * c.stride as usize)
                .next_multiple_of(page);
            let mut v = vec![0u8; len / page];
            // SAFETY: the range is page-aligned (a chunk starts at a multiple of CHUNK) and
            // within the chunk; mincore writes one byte per page into `v`, which has them.
            let r = unsafe { libc::mincore(cp.as_ptr().cast(), len, v.as_mut_ptr()) };
            assert_eq!(r, 0, "mincore");
            let at = cp.as_ptr() as usize / page;
            pages.extend((0..v.len()).filter(|&i| v[i] & 1 != 0).map(|i| at + i));
        }
        pages
    }

    #[test]
    #[cfg(all(target_os = "linux", not(miri)))]
    fn collect_gives_back_the_pages_of_free_blocks() {
        let page = crate::memory::page_size();
        for ext in [256u32, 1024] {
            let mut slab = Slab::default();
            let a = cbs();
            let blocks: Vec<_> = (0..5_000)
                .map(|_| slab.alloc(std::ptr::null_mut(), Some(&a), ext).unwrap())
                .collect();
            let before = resident_pages(&slab).len();
            let stride = stride(class(ext).unwrap()).unwrap();
            assert!(
                before * page >= 5_000 * stride,
                "every block was zeroed, so resident"
            );
            let survivors = free_all_but(&mut slab, blocks, 50);
            slab.collect();
            check(&slab);
            // What must stay: the pages of the 50 blocks and each chunk's header page.
            let mut theirs = std::collections::HashSet::new();
            for p in &survivors {
                let a = p.as_ptr() as usize;
                theirs.extend(a / page..=(a + stride - 1) / page);
            }
            let headers = slab.chunks.iter().map(|&c| c.as_ptr() as usize / page);
            let needed: std::collections::HashSet<usize> =
                theirs.iter().copied().chain(headers).collect();
            let resident = resident_pages(&slab);
            eprintln!(
                "ext {ext}: {before} pages resident for 5,000 blocks; for 50, {} ({} KiB) in {} \
                 chunks ({} KiB of chunks), the blocks' own pages {}",
                resident.len(),
                resident.len() * page / 1024,
                slab.chunks.len(),
                slab.chunks.len() * CHUNK / 1024,
                theirs.len(),
            );
            assert!(
                resident.is_subset(&needed),
                "only pages of live blocks and header pages stay: {} resident, {} needed",
                resident.len(),
                needed.len()
            );
            assert!(
                resident.len() <= theirs.len() + slab.chunks.len(),
                "the 50 blocks' pages and a header page per chunk, no more"
            );
            // The survivors are intact and the chunks keep working.
            for &p in &survivors {
                assert!(read_bytes(p, 8, 16).iter().all(|&b| b == 0));
            }
            for p in survivors {
                // SAFETY: live, freed once.
                unsafe { slab.free(p) };
            }
            slab.collect();
            assert!(slab.chunks.is_empty());
        }
    }
}
