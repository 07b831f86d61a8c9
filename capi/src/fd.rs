//! C descriptors: the one place a C `LIBUS_SOCKET_DESCRIPTOR` becomes an owned descriptor and
//! back.
//!
//! Core owns every descriptor it holds ([`usockets_core::OsShim::Fd`]: std's `OwnedFd` on the
//! Unix shims, `OwnedSocket` on the Windows shim, `SimFd` on the simulated OS). C hands
//! descriptors over as plain numbers (an `int` on POSIX, a `SOCKET` on Windows) and gets them
//! back the same way; these functions keep the ownership story straight: [`into_c`] gives one to
//! C for good (it is never closed by us), [`from_c`] takes one C gives us. The number that means
//! "no descriptor" is [`LIBUS_SOCKET_ERROR`] (-1 on POSIX, `INVALID_SOCKET` on Windows).

use usockets_core::{Cx, OsShim};

use crate::state::{Capi, Shim};
use crate::types::LIBUS_SOCKET_DESCRIPTOR;
#[cfg(windows)]
use crate::types::LIBUS_SOCKET_ERROR;

/// The descriptor type core holds under the C ABI.
pub(crate) type Fd = <Shim as OsShim>::Fd;

/// The number C sees for a descriptor core owns (still owned by core).
#[cfg(all(not(feature = "sim"), unix))]
pub(crate) fn number(fd: &Fd) -> LIBUS_SOCKET_DESCRIPTOR {
    use std::os::fd::AsRawFd;
    fd.as_raw_fd()
}

/// Gives the descriptor to C: it stays open and is C's to close.
#[cfg(all(not(feature = "sim"), unix))]
pub(crate) fn into_c(fd: Fd) -> LIBUS_SOCKET_DESCRIPTOR {
    use std::os::fd::IntoRawFd;
    fd.into_raw_fd()
}

/// Takes ownership of descriptor `raw` from C; `None` for a negative number.
///
/// # Safety
/// `raw` is an open descriptor that C hands over: nothing else closes it while core holds it
/// (core gives it back with [`into_c`] where the C contract says C keeps it).
#[cfg(all(not(feature = "sim"), unix))]
pub(crate) unsafe fn from_c(_cx: &Cx<Capi>, raw: LIBUS_SOCKET_DESCRIPTOR) -> Option<Fd> {
    use std::os::fd::FromRawFd;
    if raw < 0 {
        return None;
    }
    // SAFETY: `raw` is non-negative here, open, and handed over by the caller (this function's
    // contract): nothing else closes it while the `OwnedFd` lives.
    Some(unsafe { std::os::fd::OwnedFd::from_raw_fd(raw) })
}

/// `SOCKET` (`UINT_PTR`) from std's `RawSocket` (`u64` on 64-bit Windows, `u32` on 32-bit):
/// the same width on each, so nothing is lost.
#[cfg(all(not(feature = "sim"), windows))]
fn socket_to_c(raw: std::os::windows::io::RawSocket) -> LIBUS_SOCKET_DESCRIPTOR {
    raw as LIBUS_SOCKET_DESCRIPTOR
}

/// The number C sees for a socket core owns (still owned by core).
#[cfg(all(not(feature = "sim"), windows))]
pub(crate) fn number(fd: &Fd) -> LIBUS_SOCKET_DESCRIPTOR {
    use std::os::windows::io::AsRawSocket;
    socket_to_c(fd.as_raw_socket())
}

/// Gives the socket to C: it stays open and is C's to close (`closesocket`).
#[cfg(all(not(feature = "sim"), windows))]
pub(crate) fn into_c(fd: Fd) -> LIBUS_SOCKET_DESCRIPTOR {
    use std::os::windows::io::IntoRawSocket;
    socket_to_c(fd.into_raw_socket())
}

/// Takes ownership of socket `raw` from C; `None` for `INVALID_SOCKET`.
///
/// # Safety
/// `raw` is an open socket that C hands over: nothing else closes it while core holds it (core
/// gives it back with [`into_c`] where the C contract says C keeps it).
#[cfg(all(not(feature = "sim"), windows))]
pub(crate) unsafe fn from_c(_cx: &Cx<Capi>, raw: LIBUS_SOCKET_DESCRIPTOR) -> Option<Fd> {
    use std::os::windows::io::{FromRawSocket, OwnedSocket, RawSocket};
    if raw == LIBUS_SOCKET_ERROR {
        return None;
    }
    // SAFETY: `raw` is not INVALID_SOCKET here (which `OwnedSocket` may not hold), is an open
    // socket, and is handed over by the caller (this function's contract): nothing else closes
    // it while the `OwnedSocket` lives. `SOCKET` and `RawSocket` have the same width.
    Some(unsafe { OwnedSocket::from_raw_socket(raw as RawSocket) })
}

/// The simulated OS's descriptor number as C sees it: the same `int` on POSIX.
#[cfg(all(feature = "sim", not(windows)))]
fn sim_to_c(number: i32) -> LIBUS_SOCKET_DESCRIPTOR {
    number
}

/// The simulated OS's number for what C passes: the same `int` on POSIX.
#[cfg(all(feature = "sim", not(windows)))]
fn sim_from_c(raw: LIBUS_SOCKET_DESCRIPTOR) -> Option<i32> {
    Some(raw)
}

/// The simulated OS's descriptor number as C sees it: as a `SOCKET` on Windows (the simulated
/// OS's numbers are never negative, so never `INVALID_SOCKET`).
#[cfg(all(feature = "sim", windows))]
fn sim_to_c(number: i32) -> LIBUS_SOCKET_DESCRIPTOR {
    LIBUS_SOCKET_DESCRIPTOR::try_from(number).unwrap_or(LIBUS_SOCKET_ERROR)
}

/// The simulated OS's number for what C passes: `None` for one no `int` holds (such as
/// `INVALID_SOCKET`), which the simulated OS never gave out.
#[cfg(all(feature = "sim", windows))]
fn sim_from_c(raw: LIBUS_SOCKET_DESCRIPTOR) -> Option<i32> {
    i32::try_from(raw).ok()
}

/// The number C sees for a descriptor core owns (still owned by core).
#[cfg(feature = "sim")]
pub(crate) fn number(fd: &Fd) -> LIBUS_SOCKET_DESCRIPTOR {
    sim_to_c(fd.number())
}

/// Gives the descriptor to C: it stays open until [`from_c`] takes it back.
#[cfg(feature = "sim")]
pub(crate) fn into_c(fd: Fd) -> LIBUS_SOCKET_DESCRIPTOR {
    sim_to_c(fd.into_number())
}

/// Takes back a descriptor that [`into_c`] gave to C; the simulated OS refuses any other number.
///
/// # Safety
/// None needed on the simulated OS (it checks); `unsafe` only to match the platform version.
#[cfg(feature = "sim")]
pub(crate) unsafe fn from_c(cx: &Cx<Capi>, raw: LIBUS_SOCKET_DESCRIPTOR) -> Option<Fd> {
    cx.shim().net().reclaim_fd(sim_from_c(raw)?)
}
