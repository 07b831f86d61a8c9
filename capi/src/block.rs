//! The memory behind every C pointer: a 32-byte header (what the object is, its core handle,
//! its loop, and for a socket its context's C callbacks) followed by the ext bytes, 16-byte
//! aligned. Blocks are capi's, not core's: core keeps a `Block` in the object's typed ext and
//! reports when a socket slot is released, which is when its block is freed.
//!
//! # Ownership
//!
//! A `Block` owns its block: it is neither `Copy` nor `Clone`, and `free` and
//! `dealloc` consume it, so safe code cannot reach a block it freed. There is
//! exactly one `Block` per block: in core's typed ext (contexts, sockets, timers, polls), in
//! `LoopState::listeners` (listen sockets) or in `LoopState::block` (the loop's own). C only
//! holds the raw pointers `as_ptr` hands out; reading the block behind one
//! (`peek`) is `unsafe`, resting on the C contract that the pointer is live.
//!
//! A block never outlives its loop's `LoopState`: every owner is gone (core's loop dropped,
//! listen sockets freed) before `us_loop_free` frees the state. So the state pointer of a
//! header is null (only the loop's own block, before `us_create_loop` sets it) or live.
//!
//! # Registry
//!
//! Every block of a loop but the loop's own is registered, by address, in its
//! `LoopState::blocks` from `alloc` to `free`, so `us_loop_free`
//! can free whatever the program left alive (`Block::from_registry`). `Block` has no `Drop`:
//! one dropped without `free` (core drops the ext of an object it refuses to create) is not
//! lost but stays registered until `us_loop_free` frees it.

use std::alloc::{alloc_zeroed, dealloc, Layout};
use std::ptr::NonNull;
use std::rc::Rc;

use usockets_core::{ContextId, Cx, ListenId, PollId, SocketId, TimerId};

use crate::state::{Capi, LoopState};
use crate::types::ContextCbs;

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
    /// A socket's context's C callbacks, shared with the context (set at creation and on
    /// adoption): the trampolines read the C callback here, with no context lookup. `None` for
    /// every other kind of block.
    pub(crate) cbs: Option<Rc<ContextCbs>>,
}

const _: () = assert!(
    std::mem::size_of::<Header>() == 32,
    "ext starts 32 bytes in"
);

/// Owns one block; C sees it as [`as_ptr`](Block::as_ptr) (`us_socket_t *`, `us_poll_t *`, ...).
#[derive(Debug)]
pub(crate) struct Block(NonNull<Header>);

fn layout(ext_size: u32) -> Option<Layout> {
    Layout::from_size_align(std::mem::size_of::<Header>() + ext_size as usize, EXT_ALIGN).ok()
}

/// The ext of the block at `p`: it starts right after the header. Only computes the address.
fn ext_at(p: *mut Header) -> *mut u8 {
    p.cast::<u8>().wrapping_add(std::mem::size_of::<Header>())
}

impl Block {
    /// A fresh block with `ext_size` zeroed ext bytes, its header pointing to `state`; `None`
    /// when out of memory. Not registered.
    ///
    /// # Safety
    /// `state` is null or a live `LoopState` that outlives the block.
    unsafe fn new(obj: Obj, ext_size: u32, state: *mut LoopState) -> Option<Block> {
        let layout = layout(ext_size)?;
        // SAFETY: `layout` has a non-zero size: the header alone is 32 bytes.
        let raw = unsafe { alloc_zeroed(layout) }.cast::<Header>();
        let ptr = NonNull::new(raw)?;
        let header = Header {
            obj,
            ext_size,
            state,
            cbs: None,
        };
        // SAFETY: `ptr` is a fresh allocation of `layout`, 16-byte aligned and at least a header
        // long; nothing else refers to it yet.
        unsafe { ptr.as_ptr().write(header) };
        Some(Block(ptr))
    }

    /// Allocates a block of the loop `cx` runs (`ext_size` zeroed ext bytes) and registers it
    /// with that loop; `None` when out of memory.
    pub(crate) fn alloc(obj: Obj, ext_size: u32, cx: &Cx<Capi>) -> Option<Block> {
        let state = *cx.ext();
        // SAFETY: the loop ext is the live state of `cx`'s loop, which outlives the loop's
        // blocks (module docs).
        let block = unsafe { Block::new(obj, ext_size, state) }?;
        crate::state::loop_state(cx)
            .blocks
            .borrow_mut()
            .insert(block.0);
        Some(block)
    }

    /// Allocates a loop's own block, with a null state until [`set_state`](Block::set_state);
    /// it is never registered.
    pub(crate) fn alloc_loop(ext_size: u32) -> Option<Block> {
        // SAFETY: `Block::new` takes a null state (its contract: null or a live state).
        unsafe { Block::new(Obj::Loop, ext_size, std::ptr::null_mut()) }
    }

    /// Points a loop's own block at its state, once the state exists.
    ///
    /// # Safety
    /// `st` is the live `LoopState` of this block's loop, and outlives the block.
    pub(crate) unsafe fn set_state(&mut self, st: *mut LoopState) {
        // SAFETY: `self` owns the live header, and `&mut self` means no reference to it is alive.
        unsafe { (*self.0.as_ptr()).state = st };
    }

    /// Takes back a registered block whose owner is gone without having freed it.
    ///
    /// # Safety
    /// `p` was in its loop's registry (so it is a live block), and no other `Block` for it will
    /// be used again.
    pub(crate) unsafe fn from_registry(p: NonNull<Header>) -> Block {
        Block(p)
    }

    /// Unregisters the block from its loop and frees it.
    pub(crate) fn free(self) {
        // SAFETY: the header's state is null or its loop's live state (module docs).
        if let Some(st) = unsafe { self.header().state.as_ref() } {
            st.blocks.borrow_mut().remove(&self.0);
        }
        self.dealloc();
    }

    /// Frees the memory only: the block was taken out of the registry, or never was in it.
    pub(crate) fn dealloc(self) {
        let ext_size = self.header().ext_size;
        // SAFETY: `self` owns the live, initialised header; dropping it in place releases its
        // share of the context's callbacks. Nothing reads it afterwards.
        unsafe { std::ptr::drop_in_place(self.0.as_ptr()) };
        if let Some(layout) = layout(ext_size) {
            // SAFETY: allocated by `Block::new` with this very layout (`ext_size` never
            // changes), and `self`, its only owner, is consumed here.
            unsafe { dealloc(self.0.as_ptr().cast(), layout) };
        }
    }

    /// A new block of the same loop whose ext keeps the first `min(old, new)` bytes of this
    /// one's; no callbacks in its header yet.
    pub(crate) fn resized(&self, obj: Obj, ext_size: u32) -> Option<Block> {
        let state = self.header().state;
        // SAFETY: `state` is this live block's, so null or its loop's live state (module docs).
        let new = unsafe { Block::new(obj, ext_size, state) }?;
        // SAFETY: the same state pointer: null or live, as just said.
        if let Some(st) = unsafe { state.as_ref() } {
            st.blocks.borrow_mut().insert(new.0);
        }
        let keep = self.header().ext_size.min(ext_size) as usize;
        // SAFETY: both blocks are live and owned (`self`, `new`), their ext areas are at least
        // `keep` bytes long, and they are distinct allocations.
        unsafe { std::ptr::copy_nonoverlapping(self.ext(), new.ext(), keep) };
        Some(new)
    }

    /// The header.
    pub(crate) fn header(&self) -> &Header {
        // SAFETY: `self` owns the block, live and initialised until `free`/`dealloc` consume
        // `self`; headers are written only through `&mut Block`, so not during this borrow.
        unsafe { self.0.as_ref() }
    }

    /// Changes what the block stands for (set once core has assigned the handle).
    pub(crate) fn set_obj(&mut self, obj: Obj) {
        // SAFETY: `self` owns the live header, and `&mut self` means no reference to it is alive.
        unsafe { (*self.0.as_ptr()).obj = obj };
    }

    /// Points a socket's block at its context's C callbacks.
    pub(crate) fn set_cbs(&mut self, cbs: Option<Rc<ContextCbs>>) {
        // SAFETY: `self` owns the live header, and `&mut self` means no reference to it is
        // alive; the assignment drops the previous `Rc` in place.
        unsafe { (*self.0.as_ptr()).cbs = cbs };
    }

    /// The ext bytes, right after the header.
    pub(crate) fn ext(&self) -> *mut u8 {
        ext_at(self.0.as_ptr())
    }

    /// The header's address, for handing through core (`Config::data_hint`).
    pub(crate) fn raw(&self) -> NonNull<Header> {
        self.0
    }

    /// The pointer C sees.
    pub(crate) fn as_ptr<T>(&self) -> *mut T {
        self.0.as_ptr().cast()
    }
}

/// What the block behind a C pointer is, and its loop's state; `None` for NULL.
///
/// # Safety
/// `p` is NULL or a pointer [`Block::as_ptr`] handed out for a block not yet freed.
pub(crate) unsafe fn peek<T>(p: *mut T) -> Option<(Obj, *mut LoopState)> {
    let p = NonNull::new(p.cast::<Header>())?;
    // SAFETY: by the caller's contract `p` points to a live, initialised header; the shared
    // reference lives only for these two copies, during which nothing writes the header.
    let h = unsafe { p.as_ref() };
    Some((h.obj, h.state))
}

/// The ext of the block behind a C pointer; NULL for NULL. Computes the address only.
pub(crate) fn ext_of_ptr<T>(p: *mut T) -> *mut u8 {
    if p.is_null() {
        std::ptr::null_mut()
    } else {
        ext_at(p.cast())
    }
}
