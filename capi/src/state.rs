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
use std::ptr::NonNull;
use std::rc::Rc;

use usockets_core::{Config, ContextCallbacks, Cx, GrowingStorage, ListenId, Loop, LoopCallbacks};

use crate::block::{Block, Header, ObjBlock};
use crate::types::{ContextCbs, LoopCb, PollReadyCb, TimerCb};

/// The shim under the C ABI: the platform's, or the simulated OS for Miri.
#[cfg(all(not(feature = "sim"), not(feature = "uring"), target_os = "linux"))]
pub(crate) type Shim = usockets_shim_linux::LinuxShim;
/// The shim under the C ABI: io_uring (feature `uring`), chosen at build time.
#[cfg(all(not(feature = "sim"), feature = "uring", target_os = "linux"))]
pub(crate) type Shim = usockets_shim_uring::UringShim;
#[cfg(all(feature = "uring", not(target_os = "linux")))]
compile_error!("usockets-capi: the `uring` feature (io_uring) is for Linux only");
/// The shim under the C ABI: the platform's, or the simulated OS for Miri.
#[cfg(all(not(feature = "sim"), kqueue))]
pub(crate) type Shim = usockets_shim_bsd::BsdShim;
/// The shim under the C ABI: the platform's, or the simulated OS for Miri.
#[cfg(all(not(feature = "sim"), windows))]
pub(crate) type Shim = usockets_shim_windows::WindowsShim;
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

/// A context's ext in core: its block and its C callbacks (shared with its sockets' headers).
pub(crate) struct CtxState {
    pub(crate) block: ObjBlock,
    pub(crate) cbs: Rc<ContextCbs>,
}

/// A listen socket: its block, and what the sockets it accepts get (ext size, callbacks).
pub(crate) struct Listener {
    pub(crate) block: ObjBlock,
    pub(crate) ext_size: u32,
    pub(crate) cbs: Rc<ContextCbs>,
}

/// A timer's ext in core: its block and the C callback.
pub(crate) struct TimerState {
    pub(crate) block: ObjBlock,
    pub(crate) cb: Option<TimerCb>,
}

/// A poll's ext in core: its block and the (non-upstream) ready callback.
pub(crate) struct PollState {
    pub(crate) block: ObjBlock,
    pub(crate) cb: Option<PollReadyCb>,
}

/// The capi configuration of core.
pub(crate) struct Capi;

impl Config for Capi {
    type Shim = Shim;
    type LoopExt = *mut LoopState;
    type ContextExt = CtxState;
    /// `None` only between accept and `on_open`, where the block is allocated with the listen
    /// socket's ext size. A slab block (the `slab` module): with the 80-byte slot, 88 bytes
    /// per socket without ext.
    type SocketExt = Option<Block>;
    type TimerExt = TimerState;
    type PollExt = PollState;
    type Reason = *mut c_void;
    type Storage = GrowingStorage<Self>;
    /// `ssl = 1` contexts speak TLS through the same layer as the Rust API.
    #[cfg(feature = "tls")]
    type Layer = usockets_tls::Tls;
    #[cfg(not(feature = "tls"))]
    type Layer = usockets_core::NoLayer;

    /// Every context forwards through the same trampolines.
    const SHARED_CALLBACKS: Option<ContextCallbacks<Self>> =
        Some(crate::trampoline::CONTEXT_CALLBACKS);

    /// Every loop forwards through the same trampolines.
    const SHARED_LOOP_CALLBACKS: Option<LoopCallbacks<Self>> =
        Some(crate::trampoline::LOOP_CALLBACKS);

    /// A closed listen socket's block is freed with its slot.
    fn listener_released(cx: &mut Cx<Self>, l: ListenId) {
        crate::trampoline::listener_released(cx, l);
    }

    /// The socket's block: the data trampoline hands it to C without looking the slot up.
    #[inline(always)]
    fn data_hint(ext: &Option<Block>) -> Option<NonNull<()>> {
        ext.as_ref().map(|b| b.raw().cast())
    }
}

/// Everything a loop block leads to. Lives in its own allocation, only ever accessed through
/// shared references (interior mutability), so the waker may be read from any thread.
pub(crate) struct LoopState {
    /// The loop (`Box::into_raw`), freed by `us_loop_free`.
    pub(crate) lp: *mut Loop<Capi>,
    /// The `Cx` lent to the callback running now, or null.
    pub(crate) active: Cell<*mut Cx<Capi>>,
    /// The `us_loop_t *` block.
    pub(crate) block: ObjBlock,
    pub(crate) wakeup: Option<LoopCb>,
    pub(crate) pre: Option<LoopCb>,
    pub(crate) post: Option<LoopCb>,
    /// Never written after creation: `us_wakeup_loop` reads it from other threads.
    pub(crate) waker: <Shim as usockets_core::OsShim>::Waker,
    /// What the last `on_close` returned, for `us_socket_close` to return.
    pub(crate) close_ret: Cell<*mut c_void>,
    /// Listen sockets (they own their blocks). Blocks of closed listen sockets are freed at the
    /// end of the iteration.
    pub(crate) listeners: RefCell<HashMap<ListenId, Listener>>,
    /// The address of every live block of this loop but its own and its sockets': freed by
    /// `us_loop_free` if still there (the registry of the `block` module).
    pub(crate) blocks: RefCell<HashSet<NonNull<Header>>>,
    /// The socket blocks (the `slab` module), all released by `us_loop_free`.
    pub(crate) slab: RefCell<crate::slab::Slab>,
    /// The most socket blocks alive since memory was last handed back (see
    /// `memory::after_free`).
    pub(crate) blocks_peak: Cell<usize>,
    /// The TLS contexts' SNI state, reachable without the `Cx` (see the `tls` module).
    #[cfg(feature = "tls")]
    pub(crate) tls: crate::tls::TlsContexts,
}

/// The state of the loop `cx` runs.
pub(crate) fn loop_state(cx: &Cx<Capi>) -> &LoopState {
    // SAFETY: the loop ext is the `LoopState` `us_create_loop` made for this loop, which
    // `us_loop_free` frees only after the loop; past creation it is only accessed through
    // shared references.
    unsafe { &**cx.ext() }
}

/// Runs `f` on the loop's `Cx`: the one lent to the running callback, or the loop itself when no
/// callback runs.
///
/// # Safety
/// `st` points to a live `LoopState`, and the caller is on the loop's thread.
pub(crate) unsafe fn with_cx<R>(st: *mut LoopState, f: impl FnOnce(&mut Cx<Capi>) -> R) -> R {
    // SAFETY: `st` is a live `LoopState` (this function's contract), only accessed through
    // shared references.
    let st = unsafe { &*st };
    let active = st.active.get();
    if active.is_null() {
        // SAFETY: `lp` is the live loop `us_create_loop` boxed for this state, and no callback
        // is running (no `Cx` is lent), so nothing else borrows it: the only `&mut` to it now.
        f(unsafe { &mut *st.lp })
    } else {
        // SAFETY: `active` was recorded by `enter` from the `&mut Cx` core lent to the running
        // callback, and core does not touch it until `enter` returns: this reborrows that loan,
        // on the loop's thread (the caller's contract), while no other reborrow is alive.
        f(unsafe { &mut *active })
    }
}

/// Records `cx` as the loop's active context while `f` (a call into C) runs.
#[inline(always)]
pub(crate) fn enter<R>(cx: &mut Cx<Capi>, f: impl FnOnce() -> R) -> R {
    // The state is found once, before the call: `cx` is lent to C meanwhile, so reading its
    // ext again afterwards would be one more load per callback.
    let state: *mut LoopState = *cx.ext();
    // SAFETY: the loop ext is the live `LoopState` of this loop, which outlives the loop and
    // is only accessed through shared references (as in `loop_state`); the reference is not
    // tied to the borrow of `cx`, which is lent to C meanwhile.
    let st: &LoopState = unsafe { &*state };
    let ptr: *mut Cx<Capi> = cx;
    let prev = st.active.replace(ptr);
    let r = f();
    st.active.set(prev);
    r
}
