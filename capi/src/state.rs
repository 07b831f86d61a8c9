//! The capi `Config`, the per-loop state the C pointers lead to, and the one way C calls reach
//! core: [`with_cx`].
//!
//! Re-entrancy without aliasing: while core runs a callback it lends that callback a `&mut Cx`.
//! The trampoline records it ([`enter`]) before calling into C, and every `us_*` function C calls
//! from inside goes through that recorded pointer — a reborrow of the lent `&mut`, never a second
//! `&mut` made from the loop's own pointer. Only when no callback is running does [`with_cx`]
//! start from the loop itself.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use std::ffi::c_void;

use usockets_core::{Config, Cx, GrowingStorage, ListenId, Loop};

use crate::block::Block;
use crate::types::{ContextCbs, LoopCb, PollReadyCb, TimerCb};

/// The shim under the C ABI: the platform's, or the simulated OS for Miri.
#[cfg(not(feature = "sim"))]
pub(crate) type Shim = usockets_shim_linux::LinuxShim;
/// The shim under the C ABI: the platform's, or the simulated OS for Miri.
#[cfg(feature = "sim")]
pub(crate) type Shim = usockets_shim_sim::SimShim;

#[cfg(not(feature = "sim"))]
pub(crate) fn new_shim() -> Option<Shim> {
    Shim::new().ok()
}
#[cfg(feature = "sim")]
pub(crate) fn new_shim() -> Option<Shim> {
    let net = usockets_shim_sim::SimNet::new(
        usockets_shim_sim::Faults::NONE,
        Box::new(usockets_shim_sim::NoFaults),
    );
    Some(net.shim())
}

/// A context's ext in core: its block and the C callbacks.
pub(crate) struct CtxState {
    pub(crate) block: Block,
    pub(crate) cbs: ContextCbs,
}

/// A timer's ext in core: its block and the C callback.
pub(crate) struct TimerState {
    pub(crate) block: Block,
    pub(crate) cb: Option<TimerCb>,
}

/// A poll's ext in core: its block and the (non-upstream) ready callback.
pub(crate) struct PollState {
    pub(crate) block: Block,
    pub(crate) cb: Option<PollReadyCb>,
}

/// The capi configuration of core.
pub(crate) struct Capi;

impl Config for Capi {
    type Shim = Shim;
    type LoopExt = *mut LoopState;
    type ContextExt = CtxState;
    /// `None` only between accept and `on_open`, where the block is allocated with the listen
    /// socket's ext size.
    type SocketExt = Option<Block>;
    type TimerExt = TimerState;
    type PollExt = PollState;
    type Reason = *mut c_void;
    type Storage = GrowingStorage<Self>;
}

/// Everything a loop block leads to. Lives in its own allocation, only ever accessed through
/// shared references (interior mutability), so the waker may be read from any thread.
pub(crate) struct LoopState {
    /// The loop (`Box::into_raw`), freed by `us_loop_free`.
    pub(crate) lp: *mut Loop<Capi>,
    /// The `Cx` lent to the callback running now, or null.
    pub(crate) active: Cell<*mut Cx<Capi>>,
    /// The `us_loop_t *` block.
    pub(crate) block: Block,
    pub(crate) wakeup: Option<LoopCb>,
    pub(crate) pre: Option<LoopCb>,
    pub(crate) post: Option<LoopCb>,
    /// Never written after creation: `us_wakeup_loop` reads it from other threads.
    pub(crate) waker: <Shim as usockets_core::OsShim>::Waker,
    /// What the last `on_close` returned, for `us_socket_close` to return.
    pub(crate) close_ret: Cell<*mut c_void>,
    /// Listen sockets: their block and the ext size of the sockets they accept. Blocks of
    /// closed listen sockets are freed at the end of the iteration.
    pub(crate) listeners: RefCell<HashMap<ListenId, (Block, u32)>>,
    /// Every live block of this loop but its own: freed by `us_loop_free` if still there.
    pub(crate) blocks: RefCell<HashSet<Block>>,
}

/// Runs `f` on the loop's `Cx`: the one lent to the running callback, or the loop itself when no
/// callback runs.
///
/// # Safety
/// `st` points to a live `LoopState`, and the caller is on the loop's thread.
pub(crate) unsafe fn with_cx<R>(st: *mut LoopState, f: impl FnOnce(&mut Cx<Capi>) -> R) -> R {
    // SAFETY: the caller guarantees `st` is live; only shared access is made.
    let st = unsafe { &*st };
    let active = st.active.get();
    if active.is_null() {
        // SAFETY: no callback is running, so nothing else borrows the loop: `lp` is the live
        // loop created by `us_create_loop`, and this is the only reference made from it now.
        f(unsafe { &mut *st.lp })
    } else {
        // SAFETY: `active` was recorded by `enter` from the `&mut Cx` core lent to the running
        // callback, which does not touch it until `enter` returns; this reborrows that loan.
        f(unsafe { &mut *active })
    }
}

/// Records `cx` as the loop's active context while `f` (a call into C) runs.
pub(crate) fn enter<R>(cx: &mut Cx<Capi>, f: impl FnOnce() -> R) -> R {
    let st = *cx.ext();
    let ptr: *mut Cx<Capi> = cx;
    // SAFETY: the loop ext always points to the live LoopState of this loop.
    let prev = unsafe { (*st).active.replace(ptr) };
    let r = f();
    // SAFETY: as above.
    unsafe { (*st).active.set(prev) };
    r
}

/// The loop state of a block.
pub(crate) fn state_of(b: Block) -> *mut LoopState {
    b.header().state
}
