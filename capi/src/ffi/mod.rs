//! The exported `us_*` functions, grouped as in the header. Every one reaches core through
//! `on_obj`, which reads what a C pointer's block is and runs on the loop's `Cx`.
//!
//! Safety contract for C callers (the same as the C library's): every pointer argument is NULL
//! or a live object of this library of the kind the parameter names (a socket may stand for a
//! poll, a listen socket for a socket in `us_socket_local_port`), and all calls but
//! `us_wakeup_loop` come from the loop's thread. NULL is tolerated and gives the neutral result.

pub mod context;
pub mod loops;
pub mod poll;
pub mod sni;
pub mod socket;
pub mod stubs;
pub mod timer;

use usockets_core::Cx;

use crate::block::{self, Header, Obj};
use crate::state::{with_cx, Capi};

/// Runs `f` with the `Cx` of the loop `p` belongs to and what `p` is; `default` for NULL.
///
/// # Safety
/// `p` is NULL or a live block of this library, and the caller is on its loop's thread.
pub(crate) unsafe fn on_obj<R>(
    p: *mut Header,
    default: R,
    f: impl FnOnce(&mut Cx<Capi>, Obj) -> R,
) -> R {
    // SAFETY: `p` is NULL or a live block of this library: this function's contract.
    let Some((obj, st)) = (unsafe { block::peek(p) }) else {
        return default;
    };
    // SAFETY: `st` is the state of a live block, so its loop's live state (a block never
    // outlives it), and the caller is on the loop's thread.
    unsafe { with_cx(st, |cx| f(cx, obj)) }
}

/// The ext bytes of a loop, context or timer block (`us_*_ext`); NULL for NULL. Meaningful for
/// a live block only, but computing it reads nothing.
pub(crate) fn ext_of<T>(p: *mut T) -> *mut std::ffi::c_void {
    block::header_ext_of_ptr(p).cast()
}

/// The ext bytes of a socket block (`us_socket_ext`); NULL for NULL. Meaningful for a live
/// socket only, but computing it reads nothing.
pub(crate) fn socket_ext_of<T>(p: *mut T) -> *mut std::ffi::c_void {
    block::socket_ext_of_ptr(p).cast()
}

/// The loop a block belongs to (`us_*_loop`); NULL for NULL.
///
/// # Safety
/// `p` is NULL or a live block of this library.
pub(crate) unsafe fn loop_of<T>(p: *mut T) -> *mut crate::types::us_loop_t {
    // SAFETY: `p` is NULL or a live block of this library: this function's contract.
    let Some((_, st)) = (unsafe { block::peek(p) }) else {
        return std::ptr::null_mut();
    };
    // SAFETY: `st` is the state of a live block, so its loop's live state (a block never
    // outlives it); only shared access is made.
    let st = unsafe { &*st };
    st.block.as_ptr()
}

/// Reads a C string argument; `None` for NULL or invalid UTF-8.
///
/// # Safety
/// `p` is NULL or a NUL-terminated string that outlives the returned reference.
pub(crate) unsafe fn c_str<'a>(p: *const std::ffi::c_char) -> Option<&'a str> {
    if p.is_null() {
        return None;
    }
    // SAFETY: `p` is non-NULL here and a NUL-terminated string that outlives the result: this
    // function's contract.
    unsafe { std::ffi::CStr::from_ptr(p) }.to_str().ok()
}

/// A byte slice argument; empty for NULL or a non-positive length.
///
/// # Safety
/// `p` is NULL or points to `len` readable bytes that outlive the returned slice.
pub(crate) unsafe fn bytes<'a>(p: *const std::ffi::c_char, len: std::ffi::c_int) -> &'a [u8] {
    if p.is_null() || len <= 0 {
        return &[];
    }
    // SAFETY: `p` is non-NULL here and points to `len` (> 0) readable bytes that outlive the
    // slice: this function's contract.
    unsafe { std::slice::from_raw_parts(p.cast::<u8>(), len as usize) }
}
