//! `us_socket_t`: write, timeouts, ext, shutdown, close, addresses.

use std::ffi::{c_char, c_int, c_uint, c_void};

use super::{bytes, on_obj};
use crate::block::Obj;
use crate::state::loop_state;
use crate::types::*;

/// `us_socket_context`: the socket's context.
///
/// # Safety
/// `s` is NULL or a live socket.
#[no_mangle]
pub unsafe extern "C" fn us_socket_context(
    _ssl: c_int,
    s: *mut us_socket_t,
) -> *mut us_socket_context_t {
    // SAFETY: `s` is NULL or a live socket: this function's contract.
    unsafe {
        sock(s, std::ptr::null_mut(), |cx, id| {
            cx.socket_context(id)
                .and_then(|c| cx.context_ext(c))
                .map_or(std::ptr::null_mut(), |st| st.block.as_ptr())
        })
    }
}

/// Runs `f` on a socket's handle; `default` for NULL or a non-socket pointer.
///
/// # Safety
/// `s` is NULL or a live block of this library, and the caller is on its loop's thread.
unsafe fn sock<R: Copy>(
    s: *mut us_socket_t,
    default: R,
    f: impl FnOnce(&mut usockets_core::Cx<crate::state::Capi>, usockets_core::SocketId) -> R,
) -> R {
    // SAFETY: `s` is NULL or a live block: this function's contract.
    let Some((id, st)) = (unsafe { crate::block::peek_socket(s) }) else {
        return default;
    };
    // SAFETY: `st` is the state of a live socket block, so its loop's live state (a block
    // never outlives it), and the caller is on the loop's thread.
    unsafe { crate::state::with_cx(st, |cx| f(cx, id)) }
}

/// `us_socket_ext`: the socket's ext, 16-byte aligned; valid until the socket is released.
///
/// # Safety
/// `s` is NULL or a live socket.
#[no_mangle]
pub unsafe extern "C" fn us_socket_ext(_ssl: c_int, s: *mut us_socket_t) -> *mut c_void {
    super::socket_ext_of(s)
}

/// `us_socket_write`: bytes accepted, never negative; 0 when closed, shut down or would-block.
/// A short write arms `on_writable`. `msg_more` hints that more data follows at once.
///
/// # Safety
/// `s` is NULL or a live socket; `data` is NULL or `length` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn us_socket_write(
    _ssl: c_int,
    s: *mut us_socket_t,
    data: *const c_char,
    length: c_int,
    msg_more: c_int,
) -> c_int {
    // Nothing to write writes nothing, whatever the socket (core's answer too): said first, in
    // two compares, so the hot path builds no slice for the NULL case.
    if data.is_null() || length <= 0 {
        return 0;
    }
    // SAFETY: `data` is non-NULL here and `length` (> 0) readable bytes: this function's
    // contract.
    let data = unsafe { std::slice::from_raw_parts(data.cast::<u8>(), length as usize) };
    // SAFETY: `s` is NULL or a live socket: this function's contract.
    unsafe { sock(s, 0, |cx, id| cx.write(id, data, msg_more != 0) as c_int) }
}

/// `us_socket_write2`: header then payload in one gathered write; same rules as write.
///
/// # Safety
/// `s` is NULL or a live socket; the buffers are NULL or readable for their lengths.
#[no_mangle]
pub unsafe extern "C" fn us_socket_write2(
    _ssl: c_int,
    s: *mut us_socket_t,
    header: *const c_char,
    header_length: c_int,
    payload: *const c_char,
    payload_length: c_int,
) -> c_int {
    // SAFETY: `header` is NULL or `header_length` readable bytes: this function's contract.
    let h = unsafe { bytes(header, header_length) };
    // SAFETY: `payload` is NULL or `payload_length` readable bytes: this function's contract.
    let p = unsafe { bytes(payload, payload_length) };
    // SAFETY: `s` is NULL or a live socket: this function's contract.
    unsafe { sock(s, 0, |cx, id| cx.write2(id, h, p) as c_int) }
}

macro_rules! unit {
    ($(#[$doc:meta])* $name:ident, |$cx:ident, $id:ident $(, $arg:ident : $ty:ty)*| $body:expr) => {
        $(#[$doc])*
        ///
        /// # Safety
        /// `s` is NULL or a live socket.
        #[no_mangle]
        pub unsafe extern "C" fn $name(_ssl: c_int, s: *mut us_socket_t $(, $arg: $ty)*) {
            // SAFETY: `s` is NULL or a live socket: this function's contract.
            unsafe { sock(s, (), |$cx, $id| { $body; }) }
        }
    };
}

unit!(
    /// `us_socket_timeout`: the one short timeout, in seconds on the 4 s sweep; 0 disables.
    us_socket_timeout, |cx, id, seconds: c_uint| cx.timeout(id, seconds)
);
unit!(
    /// `us_socket_long_timeout`: the long timeout in minutes; 0 disables.
    us_socket_long_timeout, |cx, id, minutes: c_uint| cx.long_timeout(id, minutes)
);
unit!(
    /// `us_socket_flush`: withdraws a `msg_more` hold.
    us_socket_flush, |cx, id| cx.flush(id)
);
unit!(
    /// `us_socket_shutdown`: sends FIN. Idempotent.
    us_socket_shutdown, |cx, id| cx.shutdown(id)
);
unit!(
    /// `us_socket_shutdown_read`: the next iteration sees EOF.
    us_socket_shutdown_read, |cx, id| cx.shutdown_read(id)
);

/// `us_socket_is_shut_down`.
///
/// # Safety
/// `s` is NULL or a live socket.
#[no_mangle]
pub unsafe extern "C" fn us_socket_is_shut_down(_ssl: c_int, s: *mut us_socket_t) -> c_int {
    // SAFETY: `s` is NULL or a live socket: this function's contract.
    unsafe {
        sock(s, 0, |cx, id| {
            c_int::from(cx.is_shut_down(id).unwrap_or(true))
        })
    }
}

/// `us_socket_is_closed`: 1 from close until the memory is released at the end of the iteration.
///
/// # Safety
/// `s` is NULL or a socket not yet released.
#[no_mangle]
pub unsafe extern "C" fn us_socket_is_closed(_ssl: c_int, s: *mut us_socket_t) -> c_int {
    // SAFETY: `s` is NULL or a socket not yet released (its block is live until then): this
    // function's contract.
    unsafe { sock(s, 1, |cx, id| c_int::from(cx.is_closed(id).unwrap_or(true))) }
}

/// `us_socket_is_established`: 0 while a client connect is pending.
///
/// # Safety
/// `s` is NULL or a live socket.
#[no_mangle]
pub unsafe extern "C" fn us_socket_is_established(_ssl: c_int, s: *mut us_socket_t) -> c_int {
    // SAFETY: `s` is NULL or a live socket: this function's contract.
    unsafe {
        sock(s, 0, |cx, id| {
            c_int::from(cx.is_established(id).unwrap_or(false))
        })
    }
}

/// `us_socket_close_connecting`: aborts a pending connect without `on_close`.
///
/// # Safety
/// `s` is NULL or a live socket.
#[no_mangle]
pub unsafe extern "C" fn us_socket_close_connecting(
    _ssl: c_int,
    s: *mut us_socket_t,
) -> *mut us_socket_t {
    // SAFETY: `s` is NULL or a live socket: this function's contract.
    unsafe {
        sock(s, s, |cx, id| {
            cx.close_connecting(id);
            s
        })
    }
}

/// `us_socket_close`: closes now and calls `on_close(s, code, reason)` synchronously; returns
/// what `on_close` returned. A no-op returning `s` when already closed.
///
/// # Safety
/// `s` is NULL or a socket not yet released.
#[no_mangle]
pub unsafe extern "C" fn us_socket_close(
    _ssl: c_int,
    s: *mut us_socket_t,
    code: c_int,
    reason: *mut c_void,
) -> *mut us_socket_t {
    // SAFETY: `s` is NULL or a socket not yet released: this function's contract.
    unsafe {
        sock(s, s, |cx, id| {
            if cx.is_closed(id) != Some(false) {
                return s;
            }
            // What on_close returns replaces it (the trampoline sets it).
            loop_state(cx).close_ret.set(s.cast());
            cx.close(id, code, Some(reason));
            loop_state(cx).close_ret.get().cast()
        })
    }
}

/// `us_socket_local_port`; a listen socket may be passed too. -1 on failure.
///
/// # Safety
/// `s` is NULL or a live socket or listen socket.
#[no_mangle]
pub unsafe extern "C" fn us_socket_local_port(_ssl: c_int, s: *mut us_socket_t) -> c_int {
    // SAFETY: `s` is NULL or a live socket or listen socket: this function's contract.
    unsafe {
        on_obj(s, -1, |cx, obj| {
            let port = match obj {
                Obj::Socket(id) => cx.local_port(id),
                Obj::Listen(l) => cx.listen_port(l),
                _ => None,
            };
            port.map_or(-1, c_int::from)
        })
    }
}

/// `us_socket_remote_port`; -1 on failure.
///
/// # Safety
/// `s` is NULL or a live socket.
#[no_mangle]
pub unsafe extern "C" fn us_socket_remote_port(_ssl: c_int, s: *mut us_socket_t) -> c_int {
    // SAFETY: `s` is NULL or a live socket: this function's contract.
    unsafe { sock(s, -1, |cx, id| cx.remote_port(id).map_or(-1, c_int::from)) }
}

/// `us_socket_remote_address`: copies the 4 or 16 raw IP bytes; `*length` is the capacity going
/// in and the length coming out (0 on failure).
///
/// # Safety
/// `s` is NULL or a live socket; `buf` has `*length` writable bytes; `length` is valid.
#[no_mangle]
pub unsafe extern "C" fn us_socket_remote_address(
    _ssl: c_int,
    s: *mut us_socket_t,
    buf: *mut c_char,
    length: *mut c_int,
) {
    if length.is_null() {
        return;
    }
    // SAFETY: `length` is non-NULL here and a valid `int *`: this function's contract.
    let cap = unsafe { *length };
    let out: &mut [u8] = if buf.is_null() || cap <= 0 {
        &mut []
    } else {
        // SAFETY: `buf` is non-NULL here and has `cap` (> 0) writable bytes, not otherwise
        // accessed during this call: this function's contract.
        unsafe { std::slice::from_raw_parts_mut(buf.cast::<u8>(), cap as usize) }
    };
    // SAFETY: `s` is NULL or a live socket: this function's contract.
    let n = unsafe { sock(s, 0, |cx, id| cx.remote_address(id, out)) };
    // SAFETY: `length` is non-NULL here and a valid `int *`: this function's contract.
    unsafe { *length = n as c_int };
}

/// `us_socket_get_native_handle`: the descriptor cast to a pointer for ssl = 0 (on Windows the
/// `SOCKET`, as `(void *)(uintptr_t)s`); NULL for ssl = 1 (there is no OpenSSL `SSL *`).
///
/// # Safety
/// `s` is NULL or a live socket.
#[no_mangle]
pub unsafe extern "C" fn us_socket_get_native_handle(
    ssl: c_int,
    s: *mut us_socket_t,
) -> *mut c_void {
    if ssl != 0 {
        return std::ptr::null_mut();
    }
    // SAFETY: `s` is NULL or a live socket: this function's contract.
    unsafe {
        sock(s, std::ptr::null_mut(), |cx, id| {
            cx.socket_fd(id).map_or(std::ptr::null_mut(), |fd| {
                native_handle(crate::fd::number(fd))
            })
        })
    }
}

/// A descriptor as the pointer C compares with `(void *)(intptr_t)fd`: sign-extended on POSIX
/// (as upstream's cast of an `int`).
#[cfg(not(windows))]
fn native_handle(fd: crate::types::LIBUS_SOCKET_DESCRIPTOR) -> *mut c_void {
    fd as isize as *mut c_void
}

/// A `SOCKET` as the pointer C compares with `(void *)(uintptr_t)s` (upstream's Windows build
/// hands out the `SOCKET` the same way).
#[cfg(windows)]
fn native_handle(fd: crate::types::LIBUS_SOCKET_DESCRIPTOR) -> *mut c_void {
    fd as *mut c_void
}
