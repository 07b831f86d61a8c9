//! `us_poll_t`: polls on user descriptors. Socket pointers are accepted where a poll is
//! (events and change: pause and resume; ext; fd).

use std::ffi::{c_int, c_uint, c_void};

use usockets_core::Interest;

use super::on_obj;
use crate::block::{Obj, ObjBlock};
use crate::state::PollState;
use crate::trampoline;
use crate::types::{
    us_loop_t, us_poll_t, PollReadyCb, LIBUS_SOCKET_DESCRIPTOR, LIBUS_SOCKET_ERROR,
};

/// `us_create_poll`: a poll with `ext_size` bytes of ext. A non-fallthrough poll keeps
/// `us_loop_run` going until freed.
///
/// # Safety
/// `lp` is NULL or a live loop.
#[no_mangle]
pub unsafe extern "C" fn us_create_poll(
    lp: *mut us_loop_t,
    fallthrough: c_int,
    ext_size: c_uint,
) -> *mut us_poll_t {
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
            let Ok(p) = cx.poll_create(fallthrough != 0, PollState { block, cb: None }) else {
                return std::ptr::null_mut();
            };
            let _ = cx.poll_set_callback(p, trampoline::poll);
            cx.poll_ext_mut(p).map_or(std::ptr::null_mut(), |st| {
                st.block.set_obj(Obj::Poll(p));
                st.block.as_ptr()
            })
        })
    }
}

/// `us_poll_free`: stops (if needed) and frees the poll. The descriptor stays open.
///
/// # Safety
/// `p` is NULL or a live poll; it is not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn us_poll_free(p: *mut us_poll_t, _lp: *mut us_loop_t) {
    // SAFETY: `p` is NULL or a live poll: this function's contract.
    unsafe {
        on_obj(p, (), |cx, obj| {
            if let Obj::Poll(id) = obj {
                if let Some((st, fd)) = cx.poll_free(id) {
                    st.block.free();
                    // C's descriptor: back to C, open.
                    if let Some(fd) = fd {
                        crate::fd::into_c(fd);
                    }
                }
            }
        })
    }
}

/// `us_poll_init`: associates the descriptor. `poll_type` is upstream-internal and ignored. The
/// descriptor stays C's: it is watched, never closed (`us_poll_free` and `us_loop_free` leave
/// it open).
///
/// # Safety
/// `p` is NULL or a live poll; `fd` is open and stays open while the poll watches it.
#[no_mangle]
pub unsafe extern "C" fn us_poll_init(
    p: *mut us_poll_t,
    fd: LIBUS_SOCKET_DESCRIPTOR,
    _poll_type: c_int,
) {
    let init = |cx: &mut usockets_core::Cx<crate::state::Capi>, obj: Obj| {
        let Obj::Poll(id) = obj else { return };
        // SAFETY: C lends `fd`, open, for as long as the poll watches it (this function's
        // contract); core only watches it, and every way out of core hands it back to C.
        let Some(owned) = (unsafe { crate::fd::from_c(cx, fd) }) else {
            return;
        };
        match cx.poll_init(id, owned) {
            Ok(Some(previous)) => {
                crate::fd::into_c(previous);
            }
            Ok(None) => {}
            Err(refused) => {
                crate::fd::into_c(refused.into_fd());
            }
        }
    };
    // SAFETY: `p` is NULL or a live poll: this function's contract.
    unsafe { on_obj(p, (), init) }
}

/// Non-upstream: sets the poll's ready callback, called with the ready
/// `LIBUS_SOCKET_READABLE`/`WRITABLE` bits and `error = 1` on error or hang-up.
///
/// # Safety
/// `p` is NULL or a live poll; `cb` is NULL or a valid C function.
#[no_mangle]
pub unsafe extern "C" fn us_poll_set_ready_callback(p: *mut us_poll_t, cb: Option<PollReadyCb>) {
    // SAFETY: `p` is NULL or a live poll: this function's contract (`cb`, NULL or a valid C
    // function, is only stored here).
    unsafe {
        on_obj(p, (), |cx, obj| {
            if let Obj::Poll(id) = obj {
                if let Some(st) = cx.poll_ext_mut(id) {
                    st.cb = cb;
                }
            }
        })
    }
}

/// Starts or changes the interest of a poll or a socket.
///
/// # Safety
/// `p` is NULL or a live poll or socket, used on its loop's thread.
unsafe fn set_events(p: *mut us_poll_t, events: c_int, start: bool) {
    let interest = Interest::from_bits(events);
    // SAFETY: `p` is NULL or a live poll or socket: this function's contract.
    unsafe {
        on_obj(p, (), |cx, obj| match obj {
            Obj::Poll(id) if start => {
                let _ = cx.poll_start(id, interest);
            }
            Obj::Poll(id) => {
                let _ = cx.poll_change(id, interest);
            }
            Obj::Socket(id) => cx.set_socket_poll_interest(id, interest),
            _ => {}
        })
    }
}

/// `us_poll_start`.
///
/// # Safety
/// `p` is NULL or a live poll or socket.
#[no_mangle]
pub unsafe extern "C" fn us_poll_start(p: *mut us_poll_t, _lp: *mut us_loop_t, events: c_int) {
    // SAFETY: `p` is NULL or a live poll or socket: this function's contract.
    unsafe { set_events(p, events, true) }
}

/// `us_poll_change`: on a socket this pauses (0) or resumes (`LIBUS_SOCKET_READABLE`) it.
///
/// # Safety
/// `p` is NULL or a live poll or socket.
#[no_mangle]
pub unsafe extern "C" fn us_poll_change(p: *mut us_poll_t, _lp: *mut us_loop_t, events: c_int) {
    // SAFETY: `p` is NULL or a live poll or socket: this function's contract.
    unsafe { set_events(p, events, false) }
}

/// `us_poll_stop`.
///
/// # Safety
/// `p` is NULL or a live poll or socket.
#[no_mangle]
pub unsafe extern "C" fn us_poll_stop(p: *mut us_poll_t, _lp: *mut us_loop_t) {
    // SAFETY: `p` is NULL or a live poll or socket: this function's contract.
    unsafe {
        on_obj(p, (), |cx, obj| match obj {
            Obj::Poll(id) => {
                let _ = cx.poll_stop(id);
            }
            Obj::Socket(id) => cx.set_socket_poll_interest(id, Interest::NONE),
            _ => {}
        })
    }
}

/// `us_poll_events`: the interest polled for, of a poll or a socket.
///
/// # Safety
/// `p` is NULL or a live poll or socket.
#[no_mangle]
pub unsafe extern "C" fn us_poll_events(p: *mut us_poll_t) -> c_int {
    // SAFETY: `p` is NULL or a live poll or socket: this function's contract.
    unsafe {
        on_obj(p, 0, |cx, obj| {
            let i = match obj {
                Obj::Poll(id) => cx.poll_events(id),
                Obj::Socket(id) => cx.socket_interest(id),
                _ => None,
            };
            i.map_or(0, Interest::bits)
        })
    }
}

/// `us_poll_ext`: the ext right after the header (a socket's ext for a socket).
///
/// # Safety
/// `p` is NULL or a live poll or socket.
#[no_mangle]
pub unsafe extern "C" fn us_poll_ext(p: *mut us_poll_t) -> *mut c_void {
    // SAFETY: `p` is NULL or a live poll or socket block: this function's contract.
    unsafe { crate::block::ext_of_ptr(p) }.cast()
}

/// `us_poll_fd`: the descriptor of a poll or a socket; `LIBUS_SOCKET_ERROR` (-1, on Windows
/// `INVALID_SOCKET`) when there is none.
///
/// # Safety
/// `p` is NULL or a live poll or socket.
#[no_mangle]
pub unsafe extern "C" fn us_poll_fd(p: *mut us_poll_t) -> LIBUS_SOCKET_DESCRIPTOR {
    // SAFETY: `p` is NULL or a live poll, socket or listen socket: this function's contract.
    unsafe {
        on_obj(p, LIBUS_SOCKET_ERROR, |cx, obj| {
            let fd = match obj {
                Obj::Poll(id) => cx.poll_fd(id),
                Obj::Socket(id) => cx.socket_fd(id),
                Obj::Listen(l) => cx.listen_fd(l),
                _ => None,
            };
            fd.map_or(LIBUS_SOCKET_ERROR, crate::fd::number)
        })
    }
}

/// `us_poll_resize`: a poll with `ext_size` bytes of ext keeping the prefix; it may move (use
/// the returned pointer). The registration stays.
///
/// # Safety
/// `p` is NULL or a live poll; after a move the old pointer is not used.
#[no_mangle]
pub unsafe extern "C" fn us_poll_resize(
    p: *mut us_poll_t,
    _lp: *mut us_loop_t,
    ext_size: c_uint,
) -> *mut us_poll_t {
    // SAFETY: `p` is NULL or a live poll: this function's contract.
    unsafe {
        on_obj(p, p, |cx, obj| {
            let Obj::Poll(id) = obj else { return p };
            let Some(old) = cx.poll_ext(id) else { return p };
            if ext_size <= old.block.header().ext_size {
                return p;
            }
            let Some(new) = old.block.resized(obj, ext_size) else {
                return p;
            };
            let np = new.as_ptr();
            let mut new = Some(new);
            let mut gone = None;
            let resized = cx.poll_resize(id, |st| {
                if let Some(b) = new.take() {
                    gone = Some(std::mem::replace(&mut st.block, b));
                }
            });
            if let Some(b) = gone.or(new) {
                b.free();
            }
            if resized.is_some() {
                np
            } else {
                p
            }
        })
    }
}
