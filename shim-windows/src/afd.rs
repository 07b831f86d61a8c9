//! The AFD device: one `\Device\Afd` handle per shim, associated with the shim's completion
//! port, on which every poll request is issued (`IOCTL_AFD_POLL`, the request beneath
//! `WSAPoll`; wepoll, libuv and mio use it the same way). Each slot index has a boxed
//! `IO_STATUS_BLOCK` and poll buffer that the kernel writes while its request is in flight.

use std::cell::UnsafeCell;
use std::ffi::c_void;

use windows_sys::Wdk::Foundation::OBJECT_ATTRIBUTES;
use windows_sys::Wdk::Storage::FileSystem::{NtCancelIoFileEx, NtCreateFile, FILE_OPEN};
use windows_sys::Wdk::System::IO::NtDeviceIoControlFile;
use windows_sys::Win32::Foundation::{
    CloseHandle, RtlNtStatusToDosError, HANDLE, NTSTATUS, STATUS_CANCELLED, STATUS_PENDING,
    UNICODE_STRING,
};
use windows_sys::Win32::Storage::FileSystem::{
    SetFileCompletionNotificationModes, FILE_SHARE_READ, FILE_SHARE_WRITE, SYNCHRONIZE,
};
use windows_sys::Win32::System::WindowsProgramming::FILE_SKIP_SET_EVENT_ON_HANDLE;
use windows_sys::Win32::System::IO::{CreateIoCompletionPort, IO_STATUS_BLOCK};

use crate::error::WindowsError;
use crate::port::AFD_KEY;
use crate::slots::{Outcome, PollIo};

/// `IOCTL_AFD_POLL`.
const IOCTL_AFD_POLL: u32 = 0x0001_2024;

/// One socket's entry in a poll request (`AFD_POLL_HANDLE_INFO`).
#[repr(C)]
#[derive(Clone, Copy)]
struct PollHandleInfo {
    handle: usize,
    events: u32,
    status: NTSTATUS,
}

/// A poll request's input and output (`AFD_POLL_INFO` with one handle).
#[repr(C)]
#[derive(Clone, Copy)]
struct PollInfo {
    timeout: i64,
    handles: u32,
    exclusive: u32,
    handle: PollHandleInfo,
}

/// What the kernel writes for one request: its status block and its poll buffer.
#[repr(C)]
struct PollBuf {
    iosb: IO_STATUS_BLOCK,
    info: PollInfo,
}

/// The AFD handle and the per-slot request memory.
pub(crate) struct Afd {
    handle: HANDLE,
    /// Indexed by slot. Boxed so that a request's memory never moves while the kernel holds
    /// its address (the `Vec` moves its elements when it grows; boxes stay put); never freed
    /// while a request is in flight (the slots' orphan rule, and the shim's drop drains every
    /// completion first).
    #[allow(clippy::vec_box)]
    bufs: Vec<Box<UnsafeCell<PollBuf>>>,
    /// No request is in flight: the buffers may be freed. Set by the shim's drop once it has
    /// drained the port; without it (a panic while draining) the buffers are leaked.
    drained: bool,
}

impl Afd {
    /// Opens `\Device\Afd\usockets` and associates it with `port` under [`AFD_KEY`].
    pub(crate) fn open(port: HANDLE) -> Result<Afd, WindowsError> {
        // The name only has to be under \Device\Afd; the last part is free (wepoll's rule).
        let name: Vec<u16> = r"\Device\Afd\usockets".encode_utf16().collect();
        let unicode = UNICODE_STRING {
            Length: (name.len() * 2) as u16,
            MaximumLength: (name.len() * 2) as u16,
            Buffer: name.as_ptr().cast_mut(),
        };
        let attributes = OBJECT_ATTRIBUTES {
            Length: size_of::<OBJECT_ATTRIBUTES>() as u32,
            RootDirectory: std::ptr::null_mut(),
            ObjectName: &unicode,
            Attributes: 0,
            SecurityDescriptor: std::ptr::null(),
            SecurityQualityOfService: std::ptr::null(),
        };
        let mut handle: HANDLE = std::ptr::null_mut();
        let mut iosb = IO_STATUS_BLOCK::default();
        // SAFETY: every pointer is to a live local for the call's duration (`name` outlives
        // `unicode`); no EA buffer.
        let status = unsafe {
            NtCreateFile(
                &mut handle,
                SYNCHRONIZE,
                &attributes,
                &mut iosb,
                std::ptr::null(),
                0,
                FILE_SHARE_READ | FILE_SHARE_WRITE,
                FILE_OPEN,
                0,
                std::ptr::null(),
                0,
            )
        };
        if status < 0 {
            return Err(nt_error(status));
        }
        let afd = Afd {
            handle,
            bufs: Vec::new(),
            drained: false,
        };
        // SAFETY: both handles are open; the association lasts as long as the AFD handle.
        if unsafe { CreateIoCompletionPort(afd.handle, port, AFD_KEY, 0) }.is_null() {
            return Err(WindowsError::from_raw(last_win32_error()));
        }
        // Completions go to the port only; the handle is never signalled (one less thing
        // for the kernel to do per request).
        let flags = FILE_SKIP_SET_EVENT_ON_HANDLE as u8;
        // SAFETY: the handle is open.
        if unsafe { SetFileCompletionNotificationModes(afd.handle, flags) } == 0 {
            return Err(WindowsError::from_raw(last_win32_error()));
        }
        Ok(afd)
    }

    /// How slot `index`'s request ended. Call only once its completion was dequeued (then the
    /// kernel is done with the memory).
    pub(crate) fn outcome(&self, index: usize) -> Option<Outcome> {
        let buf = self.bufs.get(index)?;
        // SAFETY: the request's completion was dequeued, so the kernel no longer writes here
        // and no other reference to the buffer exists (the shim is `&mut` here).
        let buf = unsafe { &*buf.get() };
        // SAFETY: the kernel sets the status variant of the union.
        let status = unsafe { buf.iosb.Anonymous.Status };
        Some(if status == STATUS_CANCELLED {
            Outcome::Cancelled
        } else if status < 0 {
            Outcome::Failed(usockets_core::ShimError::raw_os_error(&nt_error(status)))
        } else if buf.info.handles == 0 {
            // Completed without a handle (its timeout): nothing happened.
            Outcome::Events {
                events: 0,
                connect_status: 0,
            }
        } else {
            Outcome::Events {
                events: buf.info.handle.events,
                connect_status: buf.info.handle.status,
            }
        })
    }
}

impl Afd {
    /// Gives up the request memory without freeing it: for a drop that could not drain every
    /// completion, so the kernel never writes into freed memory.
    pub(crate) fn leak(&mut self) {
        for buf in self.bufs.drain(..) {
            std::mem::forget(buf);
        }
    }

    /// Every request's completion was dequeued: the buffers may be freed with the handle.
    pub(crate) fn drained(&mut self) {
        self.drained = true;
    }
}

impl PollIo for Afd {
    fn submit(&mut self, index: usize, base: usize, mask: u32) -> Result<(), WindowsError> {
        while self.bufs.len() <= index {
            self.bufs.push(Box::new(UnsafeCell::new(PollBuf {
                iosb: IO_STATUS_BLOCK::default(),
                info: PollInfo {
                    timeout: 0,
                    handles: 0,
                    exclusive: 0,
                    handle: PollHandleInfo {
                        handle: 0,
                        events: 0,
                        status: 0,
                    },
                },
            })));
        }
        let buf = self.bufs[index].get();
        // The status block first (offset 0 of the repr(C) buffer), then the poll buffer:
        // field addresses without dereferencing anything.
        let iosb = buf.cast::<IO_STATUS_BLOCK>();
        let info_ptr = buf
            .wrapping_byte_add(std::mem::offset_of!(PollBuf, info))
            .cast::<c_void>();
        let mut fresh = PollBuf {
            iosb: IO_STATUS_BLOCK::default(),
            info: PollInfo {
                // No timeout (the largest positive: an absolute time never reached).
                timeout: i64::MAX,
                handles: 1,
                exclusive: 0,
                handle: PollHandleInfo {
                    handle: base,
                    events: mask,
                    status: 0,
                },
            },
        };
        fresh.iosb.Anonymous.Status = STATUS_PENDING;
        // SAFETY: no request is in flight for `index` (one per slot, `Slots`' invariant), so
        // nothing else reads or writes the buffer, and it is valid for a whole `PollBuf`.
        unsafe { buf.write(fresh) };
        // SAFETY: the buffer is boxed and stays put until the request's completion is
        // dequeued (the slot is not freed before, and the shim's drop drains). The context
        // is the slot index plus one (never null), handed back by the port as the
        // completion's "overlapped" value; the kernel never dereferences it.
        let status = unsafe {
            NtDeviceIoControlFile(
                self.handle,
                std::ptr::null_mut(),
                None,
                (index + 1) as *const c_void,
                iosb,
                IOCTL_AFD_POLL,
                info_ptr,
                size_of::<PollInfo>() as u32,
                info_ptr,
                size_of::<PollInfo>() as u32,
            )
        };
        // Only an error status (severity 3, 0xC...) returned at once queues no completion;
        // success, pending, an informational or a warning status all get one.
        if (status as u32) >> 30 == 3 {
            return Err(nt_error(status));
        }
        Ok(())
    }

    fn cancel(&mut self, index: usize) {
        let Some(buf) = self.bufs.get(index) else {
            return;
        };
        let mut iosb = IO_STATUS_BLOCK::default();
        // SAFETY: the status block's address identifies the request; the call does not read
        // through it. `iosb` is a live local. A request already completed gives
        // STATUS_NOT_FOUND, which is fine: its completion is queued either way.
        unsafe {
            NtCancelIoFileEx(
                self.handle,
                buf.get().cast::<IO_STATUS_BLOCK>().cast_const(),
                &mut iosb,
            )
        };
    }
}

impl Drop for Afd {
    fn drop(&mut self) {
        if !self.drained {
            // Not known to be drained (the shim's drop did not finish): never free under the
            // kernel.
            self.leak();
        }
        // SAFETY: the handle is open and ours; the shim drained every request before this.
        unsafe { CloseHandle(self.handle) };
    }
}

/// A Win32 error for an `NTSTATUS`.
fn nt_error(status: NTSTATUS) -> WindowsError {
    // SAFETY: a pure translation.
    WindowsError::from_raw(unsafe { RtlNtStatusToDosError(status) } as i32)
}

/// The calling thread's last Win32 error.
pub(crate) fn last_win32_error() -> i32 {
    // SAFETY: no arguments.
    unsafe { windows_sys::Win32::Foundation::GetLastError() as i32 }
}
