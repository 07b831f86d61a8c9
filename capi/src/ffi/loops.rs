//! `us_loop_t`: create, free, ext, run, wakeup, integrate, iteration number.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use std::ffi::{c_longlong, c_uint, c_void};

use usockets_core::{Capacity, GrowingStorage, Loop, OsShim, Settings, Wake};

use crate::block::{Block, Obj};
use crate::state::{new_shim, with_cx, LoopState};
use crate::trampoline;
use crate::types::{us_loop_t, LoopCb};

/// Data bytes of the shared receive buffer (`LIBUS_RECV_BUFFER_LENGTH`).
const RECV_LENGTH: usize = 524_288;

fn state(lp: *mut us_loop_t) -> Option<*mut LoopState> {
    // SAFETY: C passes NULL or a live loop block (the C contract of this module).
    unsafe { Block::from_ptr(lp) }.map(crate::state::state_of)
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
    let st = Box::into_raw(Box::new(LoopState {
        lp: std::ptr::null_mut(),
        active: Cell::new(std::ptr::null_mut()),
        block: match Block::alloc(Obj::Loop, ext_size, std::ptr::null_mut()) {
            Some(b) => b,
            None => return std::ptr::null_mut(),
        },
        wakeup: wakeup_cb,
        pre: pre_cb,
        post: post_cb,
        waker,
        close_ret: Cell::new(std::ptr::null_mut()),
        listeners: RefCell::new(HashMap::new()),
        blocks: RefCell::new(HashSet::new()),
    }));
    let storage = GrowingStorage::new(Capacity::new().with_recv(RECV_LENGTH));
    let lp = match Loop::new(
        shim,
        storage,
        st,
        trampoline::loop_callbacks(),
        Settings::default(),
    ) {
        Ok(lp) => Box::into_raw(Box::new(lp)),
        Err(_) => {
            // SAFETY: `st` came from Box::into_raw above and nothing else refers to it.
            let st = unsafe { Box::from_raw(st) };
            st.block.free();
            return std::ptr::null_mut();
        }
    };
    // SAFETY: `st` is the fresh, exclusively owned state; fill in the back pointers.
    unsafe {
        (*st).lp = lp;
        let block = (*st).block;
        set_loop_state(block, st);
        block.as_ptr()
    }
}

/// Points the loop block's header at its state (allocated before the state existed).
fn set_loop_state(block: Block, st: *mut LoopState) {
    // SAFETY: the loop block is live and exclusively ours during creation.
    unsafe { (*block.as_ptr::<crate::block::Header>()).state = st };
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
    let Some(st) = state(lp) else { return };
    // SAFETY: `st` is live and only read through shared references until it is freed below;
    // the loop is idle, so no callback holds a `Cx`, and `lp` came from Box::into_raw in
    // `us_create_loop` and is freed only here.
    let lp = unsafe { Box::from_raw((*st).lp) };
    // No callback runs here, so no block is freed meanwhile.
    lp.into_descriptors(|fd| {
        crate::fd::into_c(fd);
    });
    // SAFETY: as above.
    let registry = unsafe { &(*st).blocks };
    for block in registry.take() {
        block.dealloc();
    }
    // SAFETY: `st` came from Box::into_raw in `us_create_loop`; nothing refers to it any more.
    let st = unsafe { Box::from_raw(st) };
    st.block.dealloc();
}

/// `us_loop_ext`: the loop's ext, 16-byte aligned.
///
/// # Safety
/// `lp` is NULL or a live loop.
#[no_mangle]
pub unsafe extern "C" fn us_loop_ext(lp: *mut us_loop_t) -> *mut c_void {
    // SAFETY: C contract.
    unsafe { super::ext_of(lp) }
}

/// `us_loop_run`: runs until no socket, listen socket, non-fallthrough timer or poll is left.
/// Calling it from inside a callback of the same loop does nothing.
///
/// # Safety
/// `lp` is NULL or a live loop.
#[no_mangle]
pub unsafe extern "C" fn us_loop_run(lp: *mut us_loop_t) {
    let Some(st) = state(lp) else { return };
    // SAFETY: `st` is live; when no callback runs nothing else borrows the loop.
    unsafe {
        if !(*st).active.get().is_null() {
            return;
        }
        let _ = (*(*st).lp).run();
    }
}

/// `us_wakeup_loop`: thread-safe; the wakeup callback runs on the loop's thread soon.
///
/// # Safety
/// `lp` is NULL or a live loop (from any thread).
#[no_mangle]
pub unsafe extern "C" fn us_wakeup_loop(lp: *mut us_loop_t) {
    let Some(st) = state(lp) else { return };
    // SAFETY: only the waker field is read; it is never written after creation, and the waker
    // is Sync, so reading it from another thread while the loop runs is sound.
    let waker = unsafe { &(*st).waker };
    waker.wake();
}

/// `us_loop_integrate`: arms the timeout sweep for loops driven from outside.
///
/// # Safety
/// `lp` is NULL or a live loop.
#[no_mangle]
pub unsafe extern "C" fn us_loop_integrate(lp: *mut us_loop_t) {
    let Some(st) = state(lp) else { return };
    // SAFETY: live state, loop thread.
    unsafe { with_cx(st, |cx| cx.integrate()) }
}

/// `us_loop_iteration_number`.
///
/// # Safety
/// `lp` is NULL or a live loop.
#[no_mangle]
pub unsafe extern "C" fn us_loop_iteration_number(lp: *mut us_loop_t) -> c_longlong {
    let Some(st) = state(lp) else { return 0 };
    // SAFETY: live state, loop thread.
    unsafe { with_cx(st, |cx| cx.iteration_number() as c_longlong) }
}
