//! The memory behind every C pointer: a 32-byte header (what the object is, its core handle,
//! its loop) followed by the ext bytes, 16-byte aligned. Blocks are capi's, not core's: core
//! keeps only a `Block` in the object's typed ext and reports when a socket slot is released,
//! which is when its block is freed.
//!
//! Every block of a loop but the loop's own is registered in its `LoopState` from `alloc` to
//! `free`, so `us_loop_free` can free the memory of whatever the program left alive.

use std::alloc::{alloc_zeroed, dealloc, Layout};
use std::ptr::NonNull;

use usockets_core::{ContextId, ListenId, PollId, SocketId, TimerId};

use crate::state::LoopState;

/// Ext alignment (`LIBUS_EXT_ALIGNMENT`).
pub(crate) const EXT_ALIGN: usize = 16;

/// What a block is, with the core handle it stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Obj {
    Loop,
    Context(ContextId),
    Socket(SocketId),
    Listen(ListenId),
    Timer(TimerId),
    Poll(PollId),
}

/// The header at the start of every block; the ext follows it.
#[repr(C, align(16))]
pub struct Header {
    pub(crate) obj: Obj,
    pub(crate) ext_size: u32,
    pub(crate) state: *mut LoopState,
}

const _: () = assert!(
    std::mem::size_of::<Header>() == 32,
    "ext starts 32 bytes in"
);

/// A block pointer, as C sees it (`us_socket_t *`, `us_poll_t *`, ...).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Block(NonNull<Header>);

fn layout(ext_size: u32) -> Option<Layout> {
    Layout::from_size_align(std::mem::size_of::<Header>() + ext_size as usize, EXT_ALIGN).ok()
}

impl Block {
    /// Allocates a block with `ext_size` zeroed ext bytes and registers it with its loop
    /// (`state`: the loop's live state, or null for the loop's own block); `None` when out of
    /// memory.
    pub(crate) fn alloc(obj: Obj, ext_size: u32, state: *mut LoopState) -> Option<Block> {
        let layout = layout(ext_size)?;
        // SAFETY: the layout has a non-zero size (the header alone is 32 bytes).
        let raw = unsafe { alloc_zeroed(layout) }.cast::<Header>();
        let ptr = NonNull::new(raw)?;
        // SAFETY: `ptr` is a fresh allocation, aligned and large enough for a Header.
        unsafe {
            ptr.as_ptr().write(Header {
                obj,
                ext_size,
                state,
            })
        };
        let block = Block(ptr);
        // SAFETY: every caller passes null (the loop's own block) or the state of a live block
        // of the same loop, and a loop's state outlives its blocks (us_loop_free frees them
        // first); the state is only ever accessed through shared references.
        if let Some(st) = unsafe { state.as_ref() } {
            st.blocks.borrow_mut().insert(block);
        }
        Some(block)
    }

    /// Unregisters the block from its loop and frees it. It must not be used again.
    pub(crate) fn free(self) {
        // SAFETY: the header's state is null or its loop's live state (see `alloc`).
        if let Some(st) = unsafe { self.header().state.as_ref() } {
            st.blocks.borrow_mut().remove(&self);
        }
        self.dealloc();
    }

    /// Frees the memory only (the caller has taken it out of the registry, or it was never in
    /// it). It must not be used again.
    pub(crate) fn dealloc(self) {
        let ext_size = self.header().ext_size;
        if let Some(layout) = layout(ext_size) {
            // SAFETY: allocated by `alloc` with this very layout (ext_size never changes).
            unsafe { dealloc(self.0.as_ptr().cast(), layout) };
        }
    }

    /// A block whose ext keeps the first `min(old, new)` bytes of this one's.
    pub(crate) fn resized(self, obj: Obj, ext_size: u32) -> Option<Block> {
        let old = self.header();
        let new = Block::alloc(obj, ext_size, old.state)?;
        let keep = old.ext_size.min(ext_size) as usize;
        // SAFETY: both ext areas are at least `keep` bytes long and belong to distinct blocks.
        unsafe { std::ptr::copy_nonoverlapping(self.ext(), new.ext(), keep) };
        Some(new)
    }

    /// The header.
    pub(crate) fn header(&self) -> &Header {
        // SAFETY: a Block always points to a live, initialised header (it is freed only by
        // `free`, after which no Block for it is used).
        unsafe { self.0.as_ref() }
    }

    /// Changes what the block stands for (a poll's handle after `us_poll_init` stays, a socket's
    /// handle after adoption stays; only a fresh block gets a new one).
    pub(crate) fn set_obj(&self, obj: Obj) {
        // SAFETY: the header is live; capi is single-threaded per loop, so no other reference
        // to the header is alive across this write.
        unsafe { (*self.0.as_ptr()).obj = obj };
    }

    /// The ext bytes, right after the header.
    pub(crate) fn ext(&self) -> *mut u8 {
        // SAFETY: the block is at least header-sized, so one header past its start is in bounds.
        unsafe { self.0.as_ptr().add(1).cast() }
    }

    /// The pointer C sees.
    pub(crate) fn as_ptr<T>(&self) -> *mut T {
        self.0.as_ptr().cast()
    }

    /// The block of a pointer C gave back; `None` for NULL.
    ///
    /// # Safety
    /// `p` is NULL or a pointer this library handed out whose block is still live.
    pub(crate) unsafe fn from_ptr<T>(p: *mut T) -> Option<Block> {
        NonNull::new(p.cast::<Header>()).map(Block)
    }
}
