//! The ring itself: setting it up (and saying clearly when this kernel cannot), queueing
//! submissions, entering the kernel and taking completions off the queue.

use std::io;

use io_uring::{cqueue, squeue, types, IoUring};

use crate::UringError;

/// Completions taken off the queue in one batch (then handled with the ring released).
pub(crate) const BATCH: usize = 64;

/// One completion, copied off the queue.
#[derive(Clone, Copy, Default)]
pub(crate) struct Completion {
    pub(crate) user_data: u64,
    pub(crate) result: i32,
    pub(crate) flags: u32,
}

/// The ring and its counters.
pub(crate) struct Ring {
    ring: IoUring,
    /// Made disabled (single issuer): enabled by the first enter, from the loop's thread.
    disabled: bool,
    /// The shim is being dropped: nothing new is queued (a completion handled while draining
    /// must not arm another operation, which nobody would cancel).
    closing: bool,
    /// `io_uring_enter` calls made.
    pub(crate) enters: u64,
    /// Submissions queued.
    pub(crate) submitted: u64,
    /// Completions handled.
    pub(crate) completions: u64,
    /// Operations whose last completion is still to come (the shim's drop waits for 0).
    pub(crate) in_flight: u64,
}

/// The oldest kernel with everything the shim uses: multishot receive (6.0), multishot
/// accept and provided buffer rings (5.19), `IORING_ENTER_EXT_ARG` (5.11).
const MIN_KERNEL: (u32, u32) = (6, 0);

impl Ring {
    /// A ring of `entries` submissions and four times as many completions. Fails with
    /// [`ErrorKind::Unsupported`](usockets_core::ErrorKind::Unsupported) where io_uring is
    /// missing, disabled (`kernel.io_uring_disabled`, seccomp) or older than 6.0.
    pub(crate) fn new(entries: u32) -> Result<Ring, UringError> {
        if let Some(release) = kernel_release() {
            if release < MIN_KERNEL {
                return Err(unsupported(libc::ENOSYS));
            }
        }
        let cq = entries.saturating_mul(4);
        // Deferred task running (6.1): the kernel's side of completions (copying received
        // bytes, posting the completion) runs only when the loop enters the kernel to wait,
        // in one batch, rather than interrupting the loop as data arrives. It needs a single
        // issuer, and the issuer is the thread that enables the ring: it starts disabled and
        // the first `wait` enables it, so a loop may be made on one thread and run on another.
        // Older kernels get cooperative task running (5.19), then neither.
        let deferred = IoUring::builder()
            .setup_cqsize(cq)
            .setup_single_issuer()
            .setup_defer_taskrun()
            .setup_taskrun_flag()
            .setup_r_disabled()
            .build(entries);
        let (ring, disabled) = match deferred {
            Ok(ring) => (ring, true),
            Err(_) => (
                IoUring::builder()
                    .setup_cqsize(cq)
                    .setup_coop_taskrun()
                    .setup_taskrun_flag()
                    .build(entries)
                    .or_else(|_| IoUring::builder().setup_cqsize(cq).build(entries))
                    .map_err(|e| match e.raw_os_error() {
                        Some(code @ (libc::ENOSYS | libc::EPERM | libc::EACCES)) => {
                            unsupported(code)
                        }
                        Some(code) => UringError::from_errno(code),
                        None => unsupported(0),
                    })?,
                false,
            ),
        };
        if !ring.params().is_feature_ext_arg() || !ring.params().is_feature_nodrop() {
            return Err(unsupported(libc::ENOSYS));
        }
        Ok(Ring {
            ring,
            disabled,
            closing: false,
            enters: 0,
            submitted: 0,
            completions: 0,
            in_flight: 0,
        })
    }

    /// Registers the provided buffer ring at `addr` (`count` entries) as group `bgid`.
    ///
    /// # Safety
    ///
    /// `addr` must point to `count` page-aligned `io_uring_buf` entries that stay valid until
    /// the ring is dropped.
    pub(crate) unsafe fn register_buffers(
        &self,
        addr: u64,
        count: u16,
        bgid: u16,
    ) -> Result<(), UringError> {
        // SAFETY: the caller's contract is the function's.
        unsafe {
            self.ring
                .submitter()
                .register_buf_ring_with_flags(addr, count, bgid, 0)
        }
        .map_err(|e| unsupported(e.raw_os_error().unwrap_or(0)))
    }

    /// Queues `entry`; when the queue is full, hands it to the kernel first (an extra enter,
    /// counted). Whether it was queued (false only if the kernel refuses submissions).
    ///
    /// # Safety
    ///
    /// Every pointer in `entry` must stay valid (and the memory it names untouched by the
    /// shim, for a send's bytes or a receive's buffer) until the operation's last completion.
    pub(crate) unsafe fn push(&mut self, entry: &squeue::Entry) -> bool {
        if self.closing {
            return false;
        }
        for _ in 0..3 {
            // SAFETY: the caller's contract is `push`'s.
            if unsafe { self.ring.submission().push(entry) }.is_ok() {
                self.submitted += 1;
                self.in_flight += 1;
                return true;
            }
            if self.enable().is_err() {
                break;
            }
            self.enters += 1;
            if self.ring.submit().is_err() {
                break;
            }
        }
        false
    }

    /// Queues nothing more from now on (the shim is being dropped).
    pub(crate) fn refuse_new(&mut self) {
        self.closing = true;
    }

    /// Whether submissions are queued.
    pub(crate) fn has_queued(&mut self) -> bool {
        !self.ring.submission().is_empty()
    }

    /// Enables a ring made disabled: the calling thread becomes its one issuer.
    #[inline]
    fn enable(&mut self) -> Result<(), UringError> {
        if self.disabled {
            self.ring
                .submitter()
                .register_enable_rings()
                .map_err(|e| UringError::from_errno(e.raw_os_error().unwrap_or(libc::EIO)))?;
            self.disabled = false;
        }
        Ok(())
    }

    /// Whether nothing was ever submitted (the ring is still disabled): nothing is in flight.
    pub(crate) fn never_entered(&self) -> bool {
        self.disabled
    }

    /// Hands queued submissions to the kernel (and lets it post completions) without waiting.
    pub(crate) fn submit(&mut self) -> Result<(), UringError> {
        self.enable()?;
        self.enters += 1;
        match self.ring.submit() {
            Ok(_) => Ok(()),
            Err(e) => tolerated(e),
        }
    }

    /// Hands queued submissions to the kernel and waits for one completion, up to
    /// `timeout_ms` (`None`: forever).
    pub(crate) fn submit_and_wait(&mut self, timeout_ms: Option<u64>) -> Result<(), UringError> {
        self.enable()?;
        self.enters += 1;
        let r = match timeout_ms {
            None => self.ring.submit_and_wait(1),
            Some(ms) => {
                let ts = types::Timespec::new()
                    .sec(ms / 1000)
                    .nsec((ms % 1000) as u32 * 1_000_000);
                let args = types::SubmitArgs::new().timespec(&ts);
                self.ring.submitter().submit_with_args(1, &args)
            }
        };
        match r {
            Ok(_) => Ok(()),
            Err(e) => tolerated(e),
        }
    }

    /// Copies up to [`BATCH`] completions off the queue into `out`; how many.
    pub(crate) fn take(&mut self, out: &mut [Completion; BATCH]) -> usize {
        let mut n = 0;
        for cqe in self.ring.completion().take(BATCH) {
            out[n] = Completion {
                user_data: cqe.user_data(),
                result: cqe.result(),
                flags: cqe.flags(),
            };
            n += 1;
        }
        self.completions += n as u64;
        n
    }
}

/// Whether a completion's multishot operation goes on.
#[inline]
pub(crate) fn more(flags: u32) -> bool {
    cqueue::more(flags)
}

/// The provided buffer a completion used, if any.
#[inline]
pub(crate) fn buffer(flags: u32) -> Option<u16> {
    cqueue::buffer_select(flags)
}

/// A wait that ended without completions is no failure: timed out (`ETIME`), interrupted
/// (`EINTR`) or the completion queue is backed up (`EBUSY`: the next pass empties it).
fn tolerated(e: io::Error) -> Result<(), UringError> {
    match e.raw_os_error() {
        Some(libc::ETIME | libc::EINTR | libc::EBUSY | libc::EAGAIN) => Ok(()),
        Some(code) => Err(UringError::from_errno(code)),
        None => Err(UringError::from_errno(libc::EIO)),
    }
}

/// "io_uring is not available here", with the OS code that said so.
fn unsupported(code: i32) -> UringError {
    UringError::with_kind(usockets_core::ErrorKind::Unsupported, code)
}

/// The running kernel's (major, minor), if `uname` can tell.
fn kernel_release() -> Option<(u32, u32)> {
    // SAFETY: utsname is a plain C struct of byte arrays; all-zero is a valid value.
    let mut u = unsafe { std::mem::zeroed::<libc::utsname>() };
    let p: *mut libc::utsname = &mut u;
    // SAFETY: `p` points to a live utsname for the call.
    if unsafe { libc::uname(p) } != 0 {
        return None;
    }
    let bytes: Vec<u8> = u
        .release
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    let s = std::str::from_utf8(&bytes).ok()?;
    let mut parts = s.split(|c: char| !c.is_ascii_digit());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_kernel_release_parses() {
        let (major, _) = super::kernel_release().expect("uname");
        assert!(major >= 2, "a Linux major version");
    }
}
