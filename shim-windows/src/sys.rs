//! Thin wrappers over the Winsock calls the shim makes: one `unsafe` call each, the error read
//! right after it.

use std::os::windows::io::{AsRawSocket, FromRawSocket, OwnedSocket};

use windows_sys::Win32::Foundation::{SetHandleInformation, HANDLE, HANDLE_FLAG_INHERIT};
use windows_sys::Win32::Networking::WinSock as ws;

use crate::error::{code, WindowsError};

/// The raw `SOCKET` of an owned socket.
pub(crate) fn raw(fd: &OwnedSocket) -> usize {
    fd.as_raw_socket() as usize
}

/// The calling thread's last Winsock error.
pub(crate) fn last_error() -> WindowsError {
    // SAFETY: no arguments; reads the thread's last-error value.
    WindowsError::from_raw(unsafe { ws::WSAGetLastError() })
}

/// `Ok` for Winsock's 0 result, the last error for `SOCKET_ERROR`.
fn check(result: i32) -> Result<(), WindowsError> {
    if result == ws::SOCKET_ERROR {
        Err(last_error())
    } else {
        Ok(())
    }
}

/// Initialises Winsock 2.2 for this process (reference-counted by Windows; std does the same
/// and never cleans up either, so neither do we).
pub(crate) fn startup() -> Result<(), WindowsError> {
    let mut data = ws::WSADATA::default();
    // SAFETY: `data` is a valid, writable WSADATA for the call's duration.
    let r = unsafe { ws::WSAStartup(0x0202, &mut data) };
    if r == 0 {
        Ok(())
    } else {
        Err(WindowsError::from_raw(r))
    }
}

/// A new stream socket of `family`, non-blocking and not inherited by child processes (the
/// Windows close-on-exec).
pub(crate) fn stream_socket(family: u16) -> Result<OwnedSocket, WindowsError> {
    let flags = ws::WSA_FLAG_OVERLAPPED | ws::WSA_FLAG_NO_HANDLE_INHERIT;
    // SAFETY: plain values; no protocol info (null) is allowed.
    let s = unsafe {
        ws::WSASocketW(
            i32::from(family),
            ws::SOCK_STREAM,
            0,
            std::ptr::null(),
            0,
            flags,
        )
    };
    if s == ws::INVALID_SOCKET {
        return Err(last_error());
    }
    // SAFETY: `s` was just created by WSASocketW and is owned by nothing else.
    let owned = unsafe { OwnedSocket::from_raw_socket(s as u64) };
    set_nonblocking(s)?;
    Ok(owned)
}

/// Makes `s` non-blocking (`FIONBIO`).
pub(crate) fn set_nonblocking(s: usize) -> Result<(), WindowsError> {
    let mut on: u32 = 1;
    // SAFETY: `on` is a valid u32 for the call's duration.
    check(unsafe { ws::ioctlsocket(s, ws::FIONBIO, &mut on) })
}

/// Keeps `s` from being inherited by child processes.
pub(crate) fn no_inherit(s: usize) -> Result<(), WindowsError> {
    // SAFETY: a socket is a kernel handle; the call only changes its inheritance flag.
    let ok = unsafe { SetHandleInformation(s as HANDLE, HANDLE_FLAG_INHERIT, 0) };
    if ok == 0 {
        Err(WindowsError::from_raw(code::ERROR_INVALID_PARAMETER))
    } else {
        Ok(())
    }
}

/// `setsockopt` with an `int` value.
pub(crate) fn setsockopt_int(
    s: usize,
    level: i32,
    name: i32,
    value: i32,
) -> Result<(), WindowsError> {
    let bytes = value.to_ne_bytes();
    // SAFETY: `bytes` is valid for its 4 bytes for the call's duration.
    check(unsafe { ws::setsockopt(s, level, name, bytes.as_ptr(), 4) })
}

/// `getsockopt` with an `int` value.
pub(crate) fn getsockopt_int(s: usize, level: i32, name: i32) -> Result<i32, WindowsError> {
    let mut value = [0u8; 4];
    let mut len: i32 = 4;
    // SAFETY: `value` is writable for `len` bytes, `len` is a valid i32.
    check(unsafe { ws::getsockopt(s, level, name, value.as_mut_ptr(), &mut len) })?;
    Ok(i32::from_ne_bytes(value))
}

/// The base service provider's socket under `s`, which AFD polls: a layered provider (LSP)
/// may wrap it. `SIO_BASE_HANDLE` first; where a layer refuses that query (some VPN and
/// filtering LSPs do, on purpose), the socket its provider hands out for polling
/// (`SIO_BSP_HANDLE_POLL`, then `SIO_BSP_HANDLE_SELECT`), as wepoll and mio do; `s` itself
/// where every query is refused (then there is no layer).
pub(crate) fn base_socket(s: usize) -> usize {
    /// `SIO_BSP_HANDLE_SELECT` and `SIO_BSP_HANDLE_POLL` (mswsock.h).
    const SIO_BSP_HANDLE_SELECT: u32 = 0x4800_001C;
    const SIO_BSP_HANDLE_POLL: u32 = 0x4800_001D;
    [
        ws::SIO_BASE_HANDLE,
        SIO_BSP_HANDLE_POLL,
        SIO_BSP_HANDLE_SELECT,
    ]
    .into_iter()
    .find_map(|code| socket_query(s, code))
    .unwrap_or(s)
}

/// A `WSAIoctl` that answers with a socket.
fn socket_query(s: usize, code: u32) -> Option<usize> {
    let mut out: usize = ws::INVALID_SOCKET;
    let mut bytes: u32 = 0;
    // SAFETY: the output buffer is `out`, writable for its size; no overlapped I/O.
    let r = unsafe {
        ws::WSAIoctl(
            s,
            code,
            std::ptr::null(),
            0,
            (&mut out as *mut usize).cast(),
            size_of::<usize>() as u32,
            &mut bytes,
            std::ptr::null_mut(),
            None,
        )
    };
    (r != ws::SOCKET_ERROR && out != ws::INVALID_SOCKET).then_some(out)
}

/// How many handles this process has open: sockets are handles, so a count that grows across
/// a run that should have closed everything is a leak. For tests and diagnostics (the hammer
/// compares it before and after, as it counts `/proc/self/fd` on Linux).
///
/// `GetProcessHandleCount`, or, where that reports none at all (Wine 8 answers 0), a scan of
/// the handle table with `GetHandleInformation`, up to 4096 values past the highest handle in
/// use (tables hand out the lowest free entry, so open handles are dense and a leak shows).
pub fn open_handles() -> Result<u32, WindowsError> {
    use windows_sys::Win32::Foundation::GetHandleInformation;
    use windows_sys::Win32::System::Threading::{GetCurrentProcess, GetProcessHandleCount};
    let mut count: u32 = 0;
    // SAFETY: no arguments; the pseudo-handle of the current process needs no closing.
    let process = unsafe { GetCurrentProcess() };
    // SAFETY: `process` is valid for this process's life; `count` is a live local.
    let ok = unsafe { GetProcessHandleCount(process, &mut count) };
    if ok == 0 {
        return Err(WindowsError::from_raw(crate::afd::last_win32_error()));
    }
    if count > 0 {
        return Ok(count);
    }
    // Handle values are multiples of 4, handed out from the lowest free entry of the table:
    // the scan ends 4096 values past the last open one (each query is a round trip to Wine's
    // server, so the whole range would take seconds).
    const GAP: usize = 4096;
    let (mut open, mut misses, mut i) = (0u32, 0usize, 1usize);
    let mut flags: u32 = 0;
    while misses < GAP && i < 1 << 24 {
        // SAFETY: querying a handle value that may not be open only fails the call.
        if unsafe { GetHandleInformation((i * 4) as HANDLE, &mut flags) } != 0 {
            open += 1;
            misses = 0;
        } else {
            misses += 1;
        }
        i += 1;
    }
    Ok(open)
}
