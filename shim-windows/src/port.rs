//! The I/O completion port and the waker that posts to it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use usockets_core::Wake;
use windows_sys::Win32::Foundation::{CloseHandle, HANDLE, INVALID_HANDLE_VALUE, WAIT_TIMEOUT};
use windows_sys::Win32::System::IO::{
    CreateIoCompletionPort, GetQueuedCompletionStatusEx, PostQueuedCompletionStatus,
    OVERLAPPED_ENTRY,
};

use crate::afd::last_win32_error;
use crate::error::WindowsError;

/// The completion key of every AFD poll completion.
pub(crate) const AFD_KEY: usize = 1;
/// The completion key of a wake-up.
pub(crate) const WAKER_KEY: usize = 2;

/// An I/O completion port, closed when the last owner (the shim or a waker) lets go.
#[derive(Debug)]
pub(crate) struct Port {
    handle: HANDLE,
    /// A wake-up is posted and not yet dequeued: further wakes post nothing.
    woken: AtomicBool,
}

// SAFETY: a completion port handle may be used from any thread (Windows' completion ports are
// made for many threads); `Port` only posts to it from other threads.
unsafe impl Send for Port {}
// SAFETY: as above; the only shared mutable state is an atomic.
unsafe impl Sync for Port {}

impl Port {
    /// A new completion port.
    pub(crate) fn new() -> Result<Arc<Port>, WindowsError> {
        // SAFETY: creating a port (no file handle, no existing port).
        let handle =
            unsafe { CreateIoCompletionPort(INVALID_HANDLE_VALUE, std::ptr::null_mut(), 0, 1) };
        if handle.is_null() {
            return Err(WindowsError::from_raw(last_win32_error()));
        }
        Ok(Arc::new(Port {
            handle,
            woken: AtomicBool::new(false),
        }))
    }

    /// The port's handle (owned by the port).
    pub(crate) fn handle(&self) -> HANDLE {
        self.handle
    }

    /// Dequeues up to `entries.len()` completions, waiting up to `timeout_ms` (`u32::MAX`:
    /// forever). Returns how many; a timeout is `Ok(0)`.
    pub(crate) fn dequeue(
        &self,
        entries: &mut [OVERLAPPED_ENTRY],
        timeout_ms: u32,
    ) -> Result<usize, WindowsError> {
        let mut removed: u32 = 0;
        let count = entries.len().min(u32::MAX as usize) as u32;
        // SAFETY: `entries` is writable for `count` entries; `removed` is a live local; not
        // alertable.
        let ok = unsafe {
            GetQueuedCompletionStatusEx(
                self.handle,
                entries.as_mut_ptr(),
                count,
                &mut removed,
                timeout_ms,
                0,
            )
        };
        if ok != 0 {
            return Ok(removed as usize);
        }
        match last_win32_error() {
            e if e == WAIT_TIMEOUT as i32 => Ok(0),
            e => Err(WindowsError::from_raw(e)),
        }
    }

    /// A wake-up was dequeued: the next [`WindowsWaker::wake`] posts again.
    pub(crate) fn woken(&self) {
        self.woken.store(false, Ordering::Release);
    }

    fn post_wake(&self) {
        if self.woken.swap(true, Ordering::AcqRel) {
            return;
        }
        // SAFETY: the handle is open while `self` lives; no overlapped.
        let ok = unsafe { PostQueuedCompletionStatus(self.handle, 0, WAKER_KEY, std::ptr::null()) };
        if ok == 0 {
            // Not posted (out of memory): let the next wake try again.
            self.woken.store(false, Ordering::Release);
        }
    }
}

impl Drop for Port {
    fn drop(&mut self) {
        // SAFETY: the handle is ours and nothing uses it after the last owner.
        unsafe { CloseHandle(self.handle) };
    }
}

/// Wakes a [`WindowsShim`](crate::WindowsShim)'s `wait` from any thread by posting a
/// completion (`PostQueuedCompletionStatus`). Wakes that come before the loop dequeues the
/// first one are merged into it. Safe to use after the loop is gone: the port lives as long
/// as a waker does, and nobody reads it any more.
#[derive(Clone, Debug)]
pub struct WindowsWaker {
    port: Arc<Port>,
}

impl WindowsWaker {
    pub(crate) fn new(port: Arc<Port>) -> WindowsWaker {
        WindowsWaker { port }
    }
}

impl Wake for WindowsWaker {
    fn wake(&self) {
        self.port.post_wake();
    }
}
