//! The memory behind every C pointer. Blocks are capi's, not core's: core keeps a block in the
//! object's typed ext and reports when a socket slot is released, which is when its block is
//! freed. Two kinds:
//!
//! * `Block`, a socket's: 8 bytes holding its `SocketId`, then its ext (16-byte aligned),
//!   in a chunk of the loop's `Slab` (the `slab` module) whose header holds what all the
//!   chunk's sockets share, their loop and their context's C callbacks (`SocketHeader`).
//!   The trampolines read the callbacks there on every event: one load from the chunk found by
//!   rounding the block's address down, no lookup. Sockets are what a server has thousands of,
//!   so theirs is the small block (the `slab` module says why and how).
//! * `ObjBlock`, for every other object (loop, context, listen socket, timer, poll): a
//!   malloc'd 32-byte `Header` (a marker, what the object is with its core handle, its ext
//!   size and its loop) followed by the ext bytes, 16-byte aligned.
//!
//! A C pointer tells which it is by its first 8 bytes (`peek`): a socket's handle has a
//! generation below 2^30 (core keeps generations in 30 bits, so that an event token carries
//! the object's kind in the other two), while a `Header` starts with 8 bytes of ones.
//!
//! # Ownership
//!
//! A `Block` or `ObjBlock` owns its block: neither is `Copy` nor `Clone`, and `free` (and
//! `dealloc`) consume it, so safe code cannot reach a block it freed. There is exactly one
//! owner per block: in core's typed ext (contexts, sockets, timers, polls), in
//! `LoopState::listeners` (listen sockets) or in `LoopState::block` (the loop's own). C only
//! holds the raw pointers `as_ptr` hands out; reading the block behind one (`peek`) is
//! `unsafe`, resting on the C contract that the pointer is live.
//!
//! A block never outlives its loop's `LoopState`: every owner is gone (core's loop dropped,
//! listen sockets freed) before `us_loop_free` frees the state. So the state pointer of a
//! header is null (only the loop's own block, before `us_create_loop` sets it) or live.
//!
//! # Registry
//!
//! `us_loop_free` frees whatever the program left alive. Socket blocks are all in the loop's
//! slab, which releases its chunks. Every other block but the loop's own is registered, by
//! address, in its `LoopState::blocks` from `alloc` to `free` (`ObjBlock::from_registry`).
//! Neither type has `Drop`: one dropped without `free` (core drops the ext of an object it
//! refuses to create) is not lost but stays allocated until `us_loop_free` frees it.

use std::alloc::{alloc_zeroed, dealloc, Layout};
use std::ptr::NonNull;
use std::rc::Rc;

use usockets_core::{ContextId, Cx, ListenId, PollId, SocketId, TimerId};

use crate::slab::{self, SocketHeader};
use crate::state::{Capi, LoopState};
use crate::types::ContextCbs;

/// Ext alignment (`LIBUS_EXT_ALIGNMENT`).
pub(crate) const EXT_ALIGN: usize = 16;

/// The largest generation core gives a handle (its generations are 30 bits).
const MAX_GENERATION: u32 = (1 << 30) - 1;

/// The first 8 bytes of every [`Header`]: no socket handle looks like this.
const MARKER: [u32; 2] = [u32::MAX; 2];

/// The first 8 bytes of a socket block before it has a handle: neither a handle nor a
/// [`Header`], so [`peek`] answers `None` for it.
const NO_HANDLE: [u32; 2] = [u32::MAX - 1; 2];

// A freed socket block reads as neither a handle (both words are above any generation,
// whichever of them holds it) nor a `Header`: `peek` answers `None` for it too.
const _: () = assert!(
    slab::FREED[0] > MAX_GENERATION
        && slab::FREED[1] > MAX_GENERATION
        && slab::FREED[0] != MARKER[0]
);

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

/// The header at the start of every block but sockets'; the ext follows it. C's opaque types
/// (`us_socket_t`, ...) name it, sockets' included: C never looks inside.
#[repr(C, align(16))]
pub struct Header {
    /// [`MARKER`]: tells this header from a socket block's handle.
    marker: [u32; 2],
    pub(crate) obj: Obj,
    pub(crate) ext_size: u32,
    pub(crate) state: *mut LoopState,
}

const _: () = assert!(
    std::mem::size_of::<Header>() == 32,
    "ext starts 32 bytes in"
);
const _: () = assert!(std::mem::size_of::<SocketId>() == 8);

/// Owns the block of one socket (in its loop's slab); C sees it as
/// [`as_ptr`](Block::as_ptr) (`us_socket_t *`, also usable as a `us_poll_t *`).
#[derive(Debug)]
pub(crate) struct Block(NonNull<u8>);

impl Block {
    /// A socket block of the loop `cx` runs, for the socket `obj` (an `Obj::Socket`), with
    /// `ext_size` zeroed ext bytes and its context's callbacks; `None` when out of memory.
    pub(crate) fn alloc(obj: Obj, ext_size: u32, cx: &Cx<Capi>) -> Option<Block> {
        let cbs = match obj {
            Obj::Socket(s) => cx
                .socket_context(s)
                .and_then(|c| cx.context_ext(c))
                .map(|st| st.cbs.clone()),
            _ => None,
        };
        let mut block = Block::alloc_in(ext_size, cbs.as_ref(), cx)?;
        block.set_obj(obj);
        Some(block)
    }

    /// A socket block of the loop `cx` runs with `ext_size` zeroed ext bytes and the context
    /// callbacks `cbs`, for a socket core has not made yet: no handle until
    /// [`set_obj`](Block::set_obj). `None` when out of memory.
    pub(crate) fn alloc_in(
        ext_size: u32,
        cbs: Option<&Rc<ContextCbs>>,
        cx: &Cx<Capi>,
    ) -> Option<Block> {
        let state = *cx.ext();
        Block::alloc_at(crate::state::loop_state(cx), state, ext_size, cbs)
    }

    fn alloc_at(
        st: &LoopState,
        state: *mut LoopState,
        ext_size: u32,
        cbs: Option<&Rc<ContextCbs>>,
    ) -> Option<Block> {
        let p = st.slab.borrow_mut().alloc(state, cbs, ext_size)?;
        // SAFETY: `p` is a fresh block, at least 8 bytes and 8-byte aligned, nothing else
        // refers to it.
        unsafe { p.as_ptr().cast::<[u32; 2]>().write(NO_HANDLE) };
        Some(Block(p))
    }

    /// The loop state of this block (live: the block is).
    fn state(&self) -> &LoopState {
        // SAFETY: a socket block's state is its loop's live state, set at allocation from the
        // running loop's `Cx`, and the state outlives the block (module docs).
        unsafe { &*self.header().state }
    }

    /// Gives the block back to its loop's slab.
    pub(crate) fn free(self) {
        let st = self.state();
        // SAFETY: `self` owns a live block of this slab and is consumed here.
        unsafe { st.slab.borrow_mut().free(self.0) };
    }

    /// A new block of the same loop for the same socket, with `ext_size` ext bytes of which
    /// the first `min(old, new)` are this one's, and the callbacks `cbs`.
    pub(crate) fn moved(&self, ext_size: u32, cbs: Option<&Rc<ContextCbs>>) -> Option<Block> {
        let h = self.header();
        let new = Block::alloc_at(self.state(), h.state, ext_size, cbs)?;
        let keep = h.ext_size.min(ext_size) as usize;
        // SAFETY: both blocks are live and owned (`self`, `new`) and distinct, each starting
        // with its 8 handle bytes.
        unsafe { std::ptr::copy_nonoverlapping(self.0.as_ptr(), new.0.as_ptr(), 8) };
        // SAFETY: as above; both have at least `keep` ext bytes.
        unsafe { std::ptr::copy_nonoverlapping(self.ext(), new.ext(), keep) };
        Some(new)
    }

    /// What the socket shares with its chunk: its loop, its context's callbacks, its ext size.
    pub(crate) fn header(&self) -> &SocketHeader {
        // SAFETY: `self` owns a live block, which stays live for the borrow (only `free`,
        // consuming `self`, ends it).
        unsafe { slab::header(self.0) }
    }

    /// Records the socket's handle (once core has assigned it); any other `obj` is ignored.
    pub(crate) fn set_obj(&mut self, obj: Obj) {
        if let Obj::Socket(s) = obj {
            // `peek` tells a socket from a `Header` by this.
            assert!(s.generation() <= MAX_GENERATION, "core handle generation");
            // SAFETY: `self` owns the live block, whose first 8 bytes are its handle, and
            // `&mut self` means no reference to them is alive.
            unsafe { self.0.as_ptr().cast::<SocketId>().write(s) };
        }
    }

    /// Points the socket at its context's C callbacks. They live in the chunk, shared with
    /// the context's other sockets, so other callbacks move the socket to a block of that
    /// context (handle and ext kept): the pointer C knows changes, as on adoption in the C
    /// library. Nothing changes (and nothing is allocated) when they are the same. When out of
    /// memory the socket keeps its callbacks.
    pub(crate) fn set_cbs(&mut self, cbs: Option<Rc<ContextCbs>>) {
        let h = self.header();
        let same = match (&h.cbs, &cbs) {
            (Some(a), Some(b)) => Rc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        };
        if same {
            return;
        }
        if let Some(new) = self.moved(h.ext_size, cbs.as_ref()) {
            std::mem::replace(self, new).free();
        }
    }

    /// The ext bytes.
    pub(crate) fn ext(&self) -> *mut u8 {
        socket_ext(self.0.as_ptr())
    }

    /// The block's address, for handing through core (`Config::data_hint`).
    pub(crate) fn raw(&self) -> NonNull<u8> {
        self.0
    }

    /// The pointer C sees.
    pub(crate) fn as_ptr<T>(&self) -> *mut T {
        self.0.as_ptr().cast()
    }
}

/// The ext of the socket block at `p`: after the 8-byte handle, rounded up to 16 (no
/// rounding with an ext: blocks are at 8 mod 16). Only computes the address.
fn socket_ext(p: *mut u8) -> *mut u8 {
    let at = p.wrapping_add(8);
    at.wrapping_add(at.align_offset(EXT_ALIGN))
}

/// Owns one block of a kind other than a socket; C sees it as
/// [`as_ptr`](ObjBlock::as_ptr) (`us_loop_t *`, `us_poll_t *`, ...).
#[derive(Debug)]
pub(crate) struct ObjBlock(NonNull<Header>);

fn layout(ext_size: u32) -> Option<Layout> {
    Layout::from_size_align(std::mem::size_of::<Header>() + ext_size as usize, EXT_ALIGN).ok()
}

/// The ext of the block at `p`: it starts right after the header. Only computes the address.
fn ext_at(p: *mut Header) -> *mut u8 {
    p.cast::<u8>().wrapping_add(std::mem::size_of::<Header>())
}

impl ObjBlock {
    /// A fresh block with `ext_size` zeroed ext bytes, its header pointing to `state`; `None`
    /// when out of memory. Not registered.
    ///
    /// # Safety
    /// `state` is null or a live `LoopState` that outlives the block.
    unsafe fn new(obj: Obj, ext_size: u32, state: *mut LoopState) -> Option<ObjBlock> {
        let layout = layout(ext_size)?;
        // SAFETY: `layout` has a non-zero size: the header alone is 32 bytes.
        let raw = unsafe { alloc_zeroed(layout) }.cast::<Header>();
        let ptr = NonNull::new(raw)?;
        let header = Header {
            marker: MARKER,
            obj,
            ext_size,
            state,
        };
        // SAFETY: `ptr` is a fresh allocation of `layout`, 16-byte aligned and at least a header
        // long; nothing else refers to it yet.
        unsafe { ptr.as_ptr().write(header) };
        Some(ObjBlock(ptr))
    }

    /// Allocates a block of the loop `cx` runs (`ext_size` zeroed ext bytes) and registers it
    /// with that loop; `None` when out of memory.
    pub(crate) fn alloc(obj: Obj, ext_size: u32, cx: &Cx<Capi>) -> Option<ObjBlock> {
        let state = *cx.ext();
        // SAFETY: the loop ext is the live state of `cx`'s loop, which outlives the loop's
        // blocks (module docs).
        let block = unsafe { ObjBlock::new(obj, ext_size, state) }?;
        crate::state::loop_state(cx)
            .blocks
            .borrow_mut()
            .insert(block.0);
        Some(block)
    }

    /// Allocates a loop's own block, with a null state until
    /// [`set_state`](ObjBlock::set_state); it is never registered.
    pub(crate) fn alloc_loop(ext_size: u32) -> Option<ObjBlock> {
        // SAFETY: `ObjBlock::new` takes a null state (its contract: null or a live state).
        unsafe { ObjBlock::new(Obj::Loop, ext_size, std::ptr::null_mut()) }
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
    /// `p` was in its loop's registry (so it is a live block), and no other `ObjBlock` for it
    /// will be used again.
    pub(crate) unsafe fn from_registry(p: NonNull<Header>) -> ObjBlock {
        ObjBlock(p)
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
        // SAFETY: `self` owns the live, initialised header; nothing reads it afterwards (the
        // header has no drop glue; this ends its life before the memory goes).
        unsafe { std::ptr::drop_in_place(self.0.as_ptr()) };
        if let Some(layout) = layout(ext_size) {
            // SAFETY: allocated by `ObjBlock::new` with this very layout (`ext_size` never
            // changes), and `self`, its only owner, is consumed here.
            unsafe { dealloc(self.0.as_ptr().cast(), layout) };
        }
    }

    /// A new block of the same loop whose ext keeps the first `min(old, new)` bytes of this
    /// one's.
    pub(crate) fn resized(&self, obj: Obj, ext_size: u32) -> Option<ObjBlock> {
        let state = self.header().state;
        // SAFETY: `state` is this live block's, so null or its loop's live state (module docs).
        let new = unsafe { ObjBlock::new(obj, ext_size, state) }?;
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
        // `self`; headers are written only through `&mut ObjBlock`, so not during this borrow.
        unsafe { self.0.as_ref() }
    }

    /// Changes what the block stands for (set once core has assigned the handle).
    pub(crate) fn set_obj(&mut self, obj: Obj) {
        // SAFETY: `self` owns the live header, and `&mut self` means no reference to it is alive.
        unsafe { (*self.0.as_ptr()).obj = obj };
    }

    /// The ext bytes, right after the header.
    pub(crate) fn ext(&self) -> *mut u8 {
        ext_at(self.0.as_ptr())
    }

    /// The pointer C sees.
    pub(crate) fn as_ptr<T>(&self) -> *mut T {
        self.0.as_ptr().cast()
    }
}

/// What a live block's first 8 bytes say it is.
enum Kind {
    /// A socket block with a handle.
    Socket,
    /// An [`ObjBlock`]: a [`Header`].
    Header,
    /// A socket block without a handle yet, or a freed one (`slab::FREED`).
    Unborn,
}

/// Reads what the block at `p` is.
///
/// # Safety
/// `p` is a pointer [`Block::as_ptr`] or [`ObjBlock::as_ptr`] handed out for a block not yet
/// freed.
unsafe fn kind(p: NonNull<u8>) -> Kind {
    // SAFETY: every live block starts with 8 initialised bytes at an 8-aligned address (a
    // handle, `NO_HANDLE` or a `Header`'s marker): the caller's contract.
    let raw = unsafe { p.as_ptr().cast::<[u32; 2]>().read() };
    if raw == MARKER {
        return Kind::Header;
    }
    // SAFETY: as above; a `SocketId` is two `u32`s, so any 8 bytes read as one.
    let id = unsafe { p.as_ptr().cast::<SocketId>().read() };
    if id.generation() <= MAX_GENERATION {
        Kind::Socket
    } else {
        Kind::Unborn
    }
}

/// What the block behind a C pointer is, and its loop's state; `None` for NULL (and for a
/// socket block C cannot have yet, without a handle).
///
/// # Safety
/// `p` is NULL or a pointer [`Block::as_ptr`] or [`ObjBlock::as_ptr`] handed out for a block
/// not yet freed.
#[inline(always)]
pub(crate) unsafe fn peek<T>(p: *mut T) -> Option<(Obj, *mut LoopState)> {
    let p = NonNull::new(p.cast::<u8>())?;
    // Sockets first, with no other test: nearly every call is about a socket.
    // SAFETY: every live block starts with 8 initialised bytes at an 8-aligned address (a
    // handle, `NO_HANDLE` or a `Header`'s marker): this function's contract. A `SocketId` is
    // two `u32`s, so any 8 bytes read as one.
    let id = unsafe { p.as_ptr().cast::<SocketId>().read() };
    if id.generation() <= MAX_GENERATION {
        // SAFETY: `p` is a live socket block; the reference lives only for this copy.
        let st = unsafe { slab::header(p) }.state;
        return Some((Obj::Socket(id), st));
    }
    // SAFETY: as above.
    unsafe { peek_other(p) }
}

/// [`peek`] for a socket only: its handle and loop state; `None` for NULL and for any other
/// kind of block, without looking further (the `us_socket_*` hot paths: no call out of line,
/// so no frame for one).
///
/// # Safety
/// As for [`peek`].
#[inline(always)]
pub(crate) unsafe fn peek_socket<T>(p: *mut T) -> Option<(SocketId, *mut LoopState)> {
    let p = NonNull::new(p.cast::<u8>())?;
    // SAFETY: as in `peek`: a live block starts with 8 initialised, 8-aligned bytes.
    let id = unsafe { p.as_ptr().cast::<SocketId>().read() };
    if id.generation() > MAX_GENERATION {
        return None;
    }
    // SAFETY: `p` is a live socket block; the reference lives only for this copy.
    Some((id, unsafe { slab::header(p) }.state))
}

/// [`peek`] for anything but a socket with a handle.
///
/// # Safety
/// As for [`peek`], `p` not NULL.
#[inline(never)]
unsafe fn peek_other(p: NonNull<u8>) -> Option<(Obj, *mut LoopState)> {
    // SAFETY: `p` is a live block: this function's contract.
    match unsafe { kind(p) } {
        Kind::Header => {
            // SAFETY: `p` points to a live, initialised `Header`; the shared reference lives
            // only for these two copies, during which nothing writes the header.
            let h = unsafe { p.cast::<Header>().as_ref() };
            Some((h.obj, h.state))
        }
        Kind::Socket | Kind::Unborn => None,
    }
}

/// The ext of the [`ObjBlock`] behind a C pointer; NULL for NULL. Computes the address only.
pub(crate) fn header_ext_of_ptr<T>(p: *mut T) -> *mut u8 {
    if p.is_null() {
        std::ptr::null_mut()
    } else {
        ext_at(p.cast())
    }
}

/// The ext of the socket [`Block`] behind a C pointer; NULL for NULL. Computes the address
/// only.
pub(crate) fn socket_ext_of_ptr<T>(p: *mut T) -> *mut u8 {
    if p.is_null() {
        std::ptr::null_mut()
    } else {
        socket_ext(p.cast())
    }
}

/// The ext of the block behind a C pointer, whichever kind it is; NULL for NULL.
///
/// # Safety
/// `p` is NULL or a pointer [`Block::as_ptr`] or [`ObjBlock::as_ptr`] handed out for a block
/// not yet freed.
pub(crate) unsafe fn ext_of_ptr<T>(p: *mut T) -> *mut u8 {
    let Some(nn) = NonNull::new(p.cast::<u8>()) else {
        return std::ptr::null_mut();
    };
    // SAFETY: `p` is a live block: this function's contract.
    match unsafe { kind(nn) } {
        Kind::Header => ext_at(p.cast()),
        Kind::Socket | Kind::Unborn => socket_ext(p.cast()),
    }
}
