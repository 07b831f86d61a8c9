//! C descriptors: the one place a C `int` becomes an owned descriptor and back.
//!
//! Core owns every descriptor it holds ([`usockets_core::OsShim::Fd`]: std's `OwnedFd` on the
//! platform shim, `SimFd` on the simulated OS). C hands descriptors over as plain ints and gets
//! them back the same way; these functions keep the ownership story straight: [`into_c`] gives
//! one to C for good (it is never closed by us), [`from_c`] takes one C gives us.

use std::ffi::c_int;

use usockets_core::{Cx, OsShim};

use crate::state::{Capi, Shim};

/// The descriptor type core holds under the C ABI.
pub(crate) type Fd = <Shim as OsShim>::Fd;

/// The number C sees for a descriptor core owns (still owned by core).
#[cfg(not(feature = "sim"))]
pub(crate) fn number(fd: &Fd) -> c_int {
    use std::os::fd::AsRawFd;
    fd.as_raw_fd()
}

/// Gives the descriptor to C: it stays open and is C's to close.
#[cfg(not(feature = "sim"))]
pub(crate) fn into_c(fd: Fd) -> c_int {
    use std::os::fd::IntoRawFd;
    fd.into_raw_fd()
}

/// Takes ownership of descriptor `raw` from C; `None` for a negative number.
///
/// # Safety
/// `raw` is an open descriptor that C hands over: nothing else closes it while core holds it
/// (core gives it back with [`into_c`] where the C contract says C keeps it).
#[cfg(not(feature = "sim"))]
pub(crate) unsafe fn from_c(_cx: &Cx<Capi>, raw: c_int) -> Option<Fd> {
    use std::os::fd::FromRawFd;
    if raw < 0 {
        return None;
    }
    // SAFETY: `raw` is non-negative here, open, and handed over by the caller (this function's
    // contract): nothing else closes it while the `OwnedFd` lives.
    Some(unsafe { std::os::fd::OwnedFd::from_raw_fd(raw) })
}

/// The number C sees for a descriptor core owns (still owned by core).
#[cfg(feature = "sim")]
pub(crate) fn number(fd: &Fd) -> c_int {
    fd.number()
}

/// Gives the descriptor to C: it stays open until [`from_c`] takes it back.
#[cfg(feature = "sim")]
pub(crate) fn into_c(fd: Fd) -> c_int {
    fd.into_number()
}

/// Takes back a descriptor that [`into_c`] gave to C; the simulated OS refuses any other number.
///
/// # Safety
/// None needed on the simulated OS (it checks); `unsafe` only to match the platform version.
#[cfg(feature = "sim")]
pub(crate) unsafe fn from_c(cx: &Cx<Capi>, raw: c_int) -> Option<Fd> {
    cx.shim().net().reclaim_fd(raw)
}
