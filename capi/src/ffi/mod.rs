//! The exported `us_*` functions, grouped as in the header. Every one reaches core through
//! `on_obj`, which turns a C pointer into its block and runs on the loop's `Cx`.
//!
//! Safety contract for C callers (the same as the C library's): every pointer argument is NULL
//! or a live object of this library of the kind the parameter names (a socket may stand for a
//! poll, a listen socket for a socket in `us_socket_local_port`), and all calls but
//! `us_wakeup_loop` come from the loop's thread. NULL is tolerated and gives the neutral result.

pub mod context;
pub mod loops;
pub mod poll;
pub mod socket;
pub mod stubs;
pub mod timer;

use usockets_core::Cx;

use crate::block::{Block, Header, Obj};
use crate::state::{state_of, with_cx, Capi};

/// Runs `f` with the `Cx` of the loop `p` belongs to and what `p` is; `default` for NULL.
///
/// # Safety
/// `p` is NULL or a live block of this library, and the caller is on its loop's thread.
pub(crate) unsafe fn on_obj<R>(
    p: *mut Header,
    default: R,
    f: impl FnOnce(&mut Cx<Capi>, Obj, Block) -> R,
) -> R {
    // SAFETY: the caller's contract.
    let Some(b) = (unsafe { Block::from_ptr(p) }) else {
        return default;
    };
    let obj = b.header().obj;
    // SAFETY: a live block's state pointer is its loop's live state; same thread.
    unsafe { with_cx(state_of(b), |cx| f(cx, obj, b)) }
}

/// The ext bytes of any block (`us_*_ext`); NULL for NULL.
///
/// # Safety
/// `p` is NULL or a live block of this library.
pub(crate) unsafe fn ext_of<T>(p: *mut T) -> *mut std::ffi::c_void {
    // SAFETY: the caller's contract.
    match unsafe { Block::from_ptr(p) } {
        Some(b) => b.ext().cast(),
        None => std::ptr::null_mut(),
    }
}

/// The loop a block belongs to (`us_*_loop`); NULL for NULL.
///
/// # Safety
/// `p` is NULL or a live block of this library.
pub(crate) unsafe fn loop_of<T>(p: *mut T) -> *mut crate::types::us_loop_t {
    // SAFETY: the caller's contract; a live block's state is its loop's live state.
    match unsafe { Block::from_ptr(p) } {
        Some(b) => unsafe { (*state_of(b)).block.as_ptr() },
        None => std::ptr::null_mut(),
    }
}

/// Reads a C string argument; `None` for NULL or invalid UTF-8.
///
/// # Safety
/// `p` is NULL or a NUL-terminated string that outlives the returned reference.
pub(crate) unsafe fn c_str<'a>(p: *const std::ffi::c_char) -> Option<&'a str> {
    if p.is_null() {
        return None;
    }
    // SAFETY: the caller's contract.
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
    // SAFETY: the caller's contract.
    unsafe { std::slice::from_raw_parts(p.cast::<u8>(), len as usize) }
}
