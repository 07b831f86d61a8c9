//! `us_loop_t`: create, free, ext, run, wakeup, integrate, iteration number.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use std::ffi::{c_longlong, c_uint, c_void};

use usockets_core::{Capacity, GrowingStorage, Loop, OsShim, Settings, Wake};

use crate::block::ObjBlock;
use crate::state::{new_shim, with_cx, LoopState};
use crate::trampoline;
use crate::types::{us_loop_t, LoopCb};

/// Data bytes of the shared receive buffer (`LIBUS_RECV_BUFFER_LENGTH`).
const RECV_LENGTH: usize = 524_288;

/// The state of a loop; `None` for NULL.
///
/// # Safety
/// `lp` is NULL or a live block of this library.
unsafe fn state(lp: *mut us_loop_t) -> Option<*mut LoopState> {
    // SAFETY: `lp` is NULL or a live block: this function's contract.
    unsafe { crate::block::peek(lp) }.map(|(_, st)| st)
}

/// `us_create_loop`: a loop with `ext_size` bytes of ext. `hint` (a foreign loop) is ignored.
///
/// # Safety
/// The callbacks are NULL or valid C functions.
#[no_mangle]
pub unsafe extern "C" fn us_create_loop(
    _hint: *mut c_void,
    wakeup_cb: Option<LoopCb>,
    pre_cb: Option<LoopCb>,
    post_cb: Option<LoopCb>,
    ext_size: c_uint,
) -> *mut us_loop_t {
    let Some(mut shim) = new_shim() else {
        return std::ptr::null_mut();
    };
    let waker = shim.waker();
    let Some(block) = ObjBlock::alloc_loop(ext_size) else {
        return std::ptr::null_mut();
    };
    let st = Box::into_raw(Box::new(LoopState {
        lp: std::ptr::null_mut(),
        active: Cell::new(std::ptr::null_mut()),
        block,
        wakeup: wakeup_cb,
        pre: pre_cb,
        post: post_cb,
        waker,
        close_ret: Cell::new(std::ptr::null_mut()),
        listeners: RefCell::new(HashMap::new()),
        blocks: RefCell::new(HashSet::new()),
        slab: RefCell::default(),
        blocks_peak: Cell::new(0),
        #[cfg(feature = "tls")]
        tls: RefCell::default(),
    }));
    let storage = GrowingStorage::new(Capacity::new().with_recv(RECV_LENGTH));
    let lp = match Loop::new(
        shim,
        storage,
        st,
        trampoline::LOOP_CALLBACKS,
        Settings::default(),
    ) {
        Ok(lp) => Box::into_raw(Box::new(lp)),
        Err(_) => {
            // SAFETY: `st` came from Box::into_raw above and nothing else refers to it.
            let st = unsafe { Box::from_raw(st) };
            st.block.dealloc();
            return std::ptr::null_mut();
        }
    };
    // SAFETY: `st` is the fresh state from Box::into_raw above; no reference to it is alive.
    let st_ref = unsafe { &mut *st };
    st_ref.lp = lp;
    // SAFETY: `st` is the live state of the loop this block belongs to; us_loop_free frees the
    // block before the state.
    unsafe { st_ref.block.set_state(st) };
    st_ref.block.as_ptr()
}

/// `us_loop_free`: frees the loop, its poller and its memory. As in the C library, it closes
/// no socket, listen socket or poll descriptor: those still open stay open (and are the
/// program's to close), and no callback runs. Unlike it, the memory of objects the program left
/// alive (contexts, sockets, timers, polls) is freed rather than leaked: no pointer of the loop
/// may be used afterwards either way.
///
/// # Safety
/// `lp` is NULL or a live loop not running, and no other pointer of it is used afterwards.
#[no_mangle]
pub unsafe extern "C" fn us_loop_free(lp: *mut us_loop_t) {
    // SAFETY: `lp` is NULL or a live loop: this function's contract.
    let Some(st) = (unsafe { state(lp) }) else {
        return;
    };
    // SAFETY: `st` is the live state of a live loop; only shared access is made.
    let state = unsafe { &*st };
    // SAFETY: `state.lp` is the loop `us_create_loop` boxed (Box::into_raw) for this state,
    // freed only here; `lp` is not running (this function's contract), so no `Cx` is lent.
    let lp = unsafe { Box::from_raw(state.lp) };
    // Consuming the loop drops the Blocks core held (a dropped Block frees nothing); their
    // memory is freed from the registry below. No callback runs here.
    lp.into_descriptors(|fd| {
        crate::fd::into_c(fd);
    });
    for (_, l) in state.listeners.take() {
        l.block.free();
    }
    // SAFETY: the owners of socket blocks were in core's loop, consumed above; C may use no
    // pointer of the loop after this call (this function's contract).
    unsafe { state.slab.borrow_mut().release_all() };
    for p in state.blocks.take() {
        // SAFETY: `p` was registered, so it is a live block. Its owner, if any is left, was in
        // core's loop, consumed above (listen sockets, the only blocks owned outside core, were
        // freed and unregistered just before): no other Block for it remains.
        unsafe { ObjBlock::from_registry(p) }.dealloc();
    }
    // SAFETY: `st` came from Box::into_raw in `us_create_loop`; every block of the loop that
    // pointed to it is freed, and nothing else refers to it any more.
    let st = unsafe { Box::from_raw(st) };
    st.block.dealloc();
}

/// `us_loop_ext`: the loop's ext, 16-byte aligned.
///
/// # Safety
/// `lp` is NULL or a live loop.
#[no_mangle]
pub unsafe extern "C" fn us_loop_ext(lp: *mut us_loop_t) -> *mut c_void {
    super::ext_of(lp)
}

/// `us_loop_run`: runs until no socket, listen socket, non-fallthrough timer or poll is left.
/// Calling it from inside a callback of the same loop does nothing.
///
/// # Safety
/// `lp` is NULL or a live loop.
#[no_mangle]
pub unsafe extern "C" fn us_loop_run(lp: *mut us_loop_t) {
    // SAFETY: `lp` is NULL or a live loop: this function's contract.
    let Some(st) = (unsafe { state(lp) }) else {
        return;
    };
    // SAFETY: `st` is the live state of a live loop; only shared access is made.
    let st = unsafe { &*st };
    if !st.active.get().is_null() {
        return;
    }
    // SAFETY: `st.lp` is the live loop `us_create_loop` boxed, and no callback is running (no
    // `Cx` is lent), so this is the only reference to it; calls C makes from the callbacks of
    // this run reach it through the `Cx` lent to them, never through `st.lp`.
    let lp = unsafe { &mut *st.lp };
    let _ = lp.run();
}

/// `us_wakeup_loop`: thread-safe; the wakeup callback runs on the loop's thread soon.
///
/// # Safety
/// `lp` is NULL or a live loop (from any thread).
#[no_mangle]
pub unsafe extern "C" fn us_wakeup_loop(lp: *mut us_loop_t) {
    // SAFETY: `lp` is NULL or a live loop (from any thread): this function's contract. The
    // header is never written after `us_create_loop` returned it.
    let Some(st) = (unsafe { state(lp) }) else {
        return;
    };
    // SAFETY: `st` is the live state; only the waker field is read, it is never written after
    // creation, and the waker is Sync, so reading it from another thread while the loop runs
    // is sound.
    let waker = unsafe { &(*st).waker };
    waker.wake();
}

/// `us_loop_integrate`: arms the timeout sweep for loops driven from outside.
///
/// # Safety
/// `lp` is NULL or a live loop.
#[no_mangle]
pub unsafe extern "C" fn us_loop_integrate(lp: *mut us_loop_t) {
    // SAFETY: `lp` is NULL or a live loop: this function's contract.
    let Some(st) = (unsafe { state(lp) }) else {
        return;
    };
    // SAFETY: `st` is the live state of a live loop, and we are on its thread (the contract).
    unsafe { with_cx(st, |cx| cx.integrate()) }
}

/// `us_loop_iteration_number`.
///
/// # Safety
/// `lp` is NULL or a live loop.
#[no_mangle]
pub unsafe extern "C" fn us_loop_iteration_number(lp: *mut us_loop_t) -> c_longlong {
    // SAFETY: `lp` is NULL or a live loop: this function's contract.
    let Some(st) = (unsafe { state(lp) }) else {
        return 0;
    };
    // SAFETY: `st` is the live state of a live loop, and we are on its thread (the contract).
    unsafe { with_cx(st, |cx| cx.iteration_number() as c_longlong) }
}

/// `us_internal_timer_sweep`: runs the socket-timeout sweep now, firing `on_timeout` and
/// `on_long_timeout` of the sockets whose timeout is due, and only those (upstream's
/// `peer_verify_test` calls it). Does nothing from inside a sweep.
///
/// # Safety
/// `lp` is NULL or a live loop.
#[no_mangle]
pub unsafe extern "C" fn us_internal_timer_sweep(lp: *mut us_loop_t) {
    // SAFETY: `lp` is NULL or a live loop: this function's contract.
    let Some(st) = (unsafe { state(lp) }) else {
        return;
    };
    // SAFETY: `st` is the live state of a live loop, and we are on its thread (the contract).
    unsafe { with_cx(st, |cx| cx.sweep_now()) }
}
