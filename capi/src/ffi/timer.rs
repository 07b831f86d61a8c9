//! `us_timer_t`: timers live in core and set the loop's wait timeout.

use std::ffi::{c_int, c_uint, c_void};

use super::on_obj;
use crate::block::{Obj, ObjBlock};
use crate::state::TimerState;
use crate::trampoline;
use crate::types::{us_loop_t, us_timer_t, TimerCb};

/// `us_create_timer`: a disarmed timer with `ext_size` bytes of ext. A non-fallthrough timer
/// keeps `us_loop_run` going until closed.
///
/// # Safety
/// `lp` is NULL or a live loop.
#[no_mangle]
pub unsafe extern "C" fn us_create_timer(
    lp: *mut us_loop_t,
    fallthrough: c_int,
    ext_size: c_uint,
) -> *mut us_timer_t {
    // SAFETY: `lp` is NULL or a live loop: this function's contract.
    unsafe {
        on_obj(lp, std::ptr::null_mut(), |cx, obj| {
            if obj != Obj::Loop {
                return std::ptr::null_mut();
            }
            let Some(block) = ObjBlock::alloc(Obj::Loop, ext_size, cx) else {
                return std::ptr::null_mut();
            };
            // On failure core drops the block: it stays registered until us_loop_free.
            let Ok(t) = cx.timer_create(fallthrough != 0, TimerState { block, cb: None }) else {
                return std::ptr::null_mut();
            };
            cx.timer_ext_mut(t).map_or(std::ptr::null_mut(), |st| {
                st.block.set_obj(Obj::Timer(t));
                st.block.as_ptr()
            })
        })
    }
}

/// `us_timer_ext`.
///
/// # Safety
/// `t` is NULL or a live timer.
#[no_mangle]
pub unsafe extern "C" fn us_timer_ext(t: *mut us_timer_t) -> *mut c_void {
    super::ext_of(t)
}

/// `us_timer_close`: stops and frees the timer now; allowed inside its own callback.
///
/// # Safety
/// `t` is NULL or a live timer; it is not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn us_timer_close(t: *mut us_timer_t) {
    // SAFETY: `t` is NULL or a live timer: this function's contract.
    unsafe {
        on_obj(t, (), |cx, obj| {
            if let Obj::Timer(id) = obj {
                if let Some(st) = cx.timer_close(id) {
                    st.block.free();
                }
            }
        })
    }
}

/// `us_timer_set`: fire `cb` after `ms`, then every `repeat_ms` (0: once); `ms = repeat_ms = 0`
/// disarms. Any values on every platform.
///
/// # Safety
/// `t` is NULL or a live timer; `cb` is NULL or a valid C function.
#[no_mangle]
pub unsafe extern "C" fn us_timer_set(
    t: *mut us_timer_t,
    cb: Option<TimerCb>,
    ms: c_int,
    repeat_ms: c_int,
) {
    // SAFETY: `t` is NULL or a live timer: this function's contract (`cb`, NULL or a valid C
    // function, is only stored here).
    unsafe {
        on_obj(t, (), |cx, obj| {
            let Obj::Timer(id) = obj else { return };
            if let Some(st) = cx.timer_ext_mut(id) {
                st.cb = cb;
            }
            let ms = u64::try_from(ms).unwrap_or(0);
            let repeat = u64::try_from(repeat_ms).unwrap_or(0);
            cx.timer_set(id, trampoline::timer, ms, repeat);
        })
    }
}

/// `us_timer_loop`.
///
/// # Safety
/// `t` is NULL or a live timer.
#[no_mangle]
pub unsafe extern "C" fn us_timer_loop(t: *mut us_timer_t) -> *mut us_loop_t {
    // SAFETY: `t` is NULL or a live timer: this function's contract.
    unsafe { super::loop_of(t) }
}
