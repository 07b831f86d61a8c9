//! Memory the kernel reads or writes while operations are in flight: the provided buffer ring
//! that multishot receives fill, and the pool of send slabs. Both are allocated once, never
//! move and are reached only through raw pointers, so no Rust reference ever covers bytes the
//! kernel may be touching.

use std::io;
use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicU16, Ordering};

/// A fixed heap region the kernel may access: only raw pointers into it are made, each for
/// exactly the bytes the shim owns at that moment.
pub(crate) struct RawBuf {
    ptr: NonNull<u8>,
    len: usize,
    /// Never freed: the kernel may still use it (see [`RawBuf::leak`]).
    leaked: bool,
}

// SAFETY: a RawBuf owns its heap region like a `Box<[u8]>` (which is Send); nothing in it is
// tied to a thread.
unsafe impl Send for RawBuf {}

impl RawBuf {
    /// `len` zeroed bytes (calloc'd: large regions stay unresident until touched).
    pub(crate) fn new(len: usize) -> RawBuf {
        let boxed: Box<[u8]> = vec![0u8; len.max(1)].into_boxed_slice();
        let len = boxed.len();
        let ptr = NonNull::new(Box::into_raw(boxed).cast::<u8>()).unwrap_or(NonNull::dangling());
        RawBuf {
            ptr,
            len,
            leaked: false,
        }
    }

    /// Gives up the region for good: the shim could not make sure the kernel is done with it.
    pub(crate) fn leak(&mut self) {
        self.leaked = true;
    }

    /// The address of byte `off` (for a submission).
    pub(crate) fn addr(&self, off: usize) -> *mut u8 {
        assert!(off <= self.len, "offset within the region");
        // SAFETY: `off` is within the allocation (or one past its end), checked above.
        unsafe { self.ptr.as_ptr().add(off) }
    }

    /// Copies `src` to `off`; the range must be the caller's (no operation in flight on it).
    pub(crate) fn write(&self, off: usize, src: &[u8]) {
        assert!(off
            .checked_add(src.len())
            .is_some_and(|end| end <= self.len));
        let dst = self.addr(off);
        // SAFETY: `dst..dst + src.len()` is within the allocation (checked above), no reference
        // covers it, and `src` is a distinct borrow, so the two cannot overlap.
        unsafe { ptr::copy_nonoverlapping(src.as_ptr(), dst, src.len()) };
    }

    /// Copies `dst.len()` bytes from `off`; the range must be the caller's.
    pub(crate) fn read(&self, off: usize, dst: &mut [u8]) {
        assert!(off
            .checked_add(dst.len())
            .is_some_and(|end| end <= self.len));
        let src = self.addr(off);
        // SAFETY: as in `write`, with the roles swapped.
        unsafe { ptr::copy_nonoverlapping(src, dst.as_mut_ptr(), dst.len()) };
    }

    /// Moves `len` bytes from `from` to `to` within the region (ranges may overlap).
    pub(crate) fn shift(&self, from: usize, to: usize, len: usize) {
        let end = from.max(to).checked_add(len);
        assert!(end.is_some_and(|end| end <= self.len));
        let (src, dst) = (self.addr(from), self.addr(to));
        // SAFETY: both ranges are within the allocation (checked above); `copy` allows overlap.
        unsafe { ptr::copy(src, dst, len) };
    }
}

impl Drop for RawBuf {
    fn drop(&mut self) {
        if self.leaked {
            return;
        }
        let slice = ptr::slice_from_raw_parts_mut(self.ptr.as_ptr(), self.len);
        // SAFETY: `slice` is exactly the `Box<[u8]>` leaked in `new`, given back once. The
        // shim drops it only after every operation that could touch it has completed.
        drop(unsafe { Box::from_raw(slice) });
    }
}

/// The kernel's `struct io_uring_buf`: one entry of a provided buffer ring. Entry 0's `resv`
/// field is the ring's tail, which only [`RecvBuffers::publish`] writes (atomically).
#[repr(C)]
struct BufEntry {
    addr: u64,
    len: u32,
    bid: u16,
    resv: u16,
}

const _: () = assert!(std::mem::size_of::<BufEntry>() == 16);

/// The buffer group id of the one provided buffer ring.
pub(crate) const BGID: u16 = 0;

/// Marks the end of a chain of buffers.
pub(crate) const NO_BUF: u16 = u16::MAX;

/// The provided buffer ring: `count` buffers of `size` bytes that multishot receives draw
/// from; a buffer the kernel filled comes back in a completion and belongs to the shim (in a
/// connection's chain of received bytes) until it is given back here.
pub(crate) struct RecvBuffers {
    /// The ring of entries, page-aligned (mmap), shared with the kernel.
    ring: NonNull<BufEntry>,
    ring_bytes: usize,
    mask: u16,
    /// Our producer position; published to the kernel by `publish`.
    tail: u16,
    data: RawBuf,
    size: u32,
    /// The chain link of each buffer the shim holds (by buffer id).
    pub(crate) next: Vec<u16>,
    /// Bytes received into each buffer the shim holds.
    pub(crate) len: Vec<u32>,
    /// Buffers the kernel may take now.
    pub(crate) available: u32,
    count: u16,
    leaked: bool,
}

// SAFETY: the ring mapping and the data region are owned by this value alone and tied to no
// thread (the kernel reads the ring on behalf of whichever thread submits).
unsafe impl Send for RecvBuffers {}

impl RecvBuffers {
    /// Maps the ring and fills it with every buffer.
    pub(crate) fn new(count: u16, size: u32) -> io::Result<RecvBuffers> {
        let ring_bytes = usize::from(count) * std::mem::size_of::<BufEntry>();
        // SAFETY: an anonymous private mapping takes no existing memory; the result is checked.
        let p = unsafe {
            libc::mmap(
                ptr::null_mut(),
                ring_bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ring = NonNull::new(p.cast::<BufEntry>()).ok_or(io::ErrorKind::Other)?;
        let mut b = RecvBuffers {
            ring,
            ring_bytes,
            mask: count - 1,
            tail: 0,
            data: RawBuf::new(usize::from(count) * size as usize),
            size,
            next: vec![NO_BUF; usize::from(count)],
            len: vec![0; usize::from(count)],
            available: 0,
            count,
            leaked: false,
        };
        for bid in 0..count {
            b.stage(bid);
        }
        b.publish();
        Ok(b)
    }

    /// The ring's address and entry count, for `IORING_REGISTER_PBUF_RING`.
    pub(crate) fn ring_addr(&self) -> (u64, u16) {
        (self.ring.as_ptr() as u64, self.count)
    }

    /// Writes buffer `bid` into the ring's next free entry (not yet visible to the kernel).
    fn stage(&mut self, bid: u16) {
        let idx = usize::from(self.tail & self.mask);
        let addr = self.data.addr(usize::from(bid) * self.size as usize) as u64;
        // `idx` < count, so the entry is within the mapping. The kernel reads only entries
        // between its head and the published tail, and this one is at or past the tail:
        // nobody else touches it. Fields are written one by one through raw pointers (entry
        // 0's `resv` is the tail, written only by `publish`).
        let e = self.ring.as_ptr().wrapping_add(idx).cast::<u8>();
        let field = |offset: usize| e.wrapping_add(offset);
        let addr_p = field(std::mem::offset_of!(BufEntry, addr)).cast::<u64>();
        let len_p = field(std::mem::offset_of!(BufEntry, len)).cast::<u32>();
        let bid_p = field(std::mem::offset_of!(BufEntry, bid)).cast::<u16>();
        // SAFETY: `addr_p` is a field of a valid entry of the mapping, aligned (the entry is
        // 16-aligned, the field at its natural offset), that only the shim writes now.
        unsafe { addr_p.write(addr) };
        // SAFETY: as above.
        unsafe { len_p.write(self.size) };
        // SAFETY: as above.
        unsafe { bid_p.write(bid) };
        self.tail = self.tail.wrapping_add(1);
        self.available += 1;
        self.len[usize::from(bid)] = 0;
        self.next[usize::from(bid)] = NO_BUF;
    }

    /// Makes the staged entries visible to the kernel.
    fn publish(&self) {
        // Entry 0's `resv` (offset 14, 2-aligned) is the ring's tail; the kernel reads it with
        // acquire semantics, so it is written as an atomic u16 with release.
        let p = self
            .ring
            .as_ptr()
            .cast::<u8>()
            .wrapping_add(std::mem::offset_of!(BufEntry, resv))
            .cast::<AtomicU16>();
        // SAFETY: `p` is within the live mapping, aligned for a u16, and only ever accessed
        // atomically (by the kernel and here).
        let tail = unsafe { &*p };
        tail.store(self.tail, Ordering::Release);
    }

    /// Gives buffer `bid` back to the kernel.
    pub(crate) fn give_back(&mut self, bid: u16) {
        self.stage(bid);
        self.publish();
    }

    /// The kernel took buffer `bid` and put `n` bytes in it.
    pub(crate) fn taken(&mut self, bid: u16, n: u32) -> bool {
        if bid >= self.count || n > self.size {
            return false;
        }
        self.available = self.available.saturating_sub(1);
        self.len[usize::from(bid)] = n;
        self.next[usize::from(bid)] = NO_BUF;
        true
    }

    /// Copies bytes `off..off + dst.len()` of buffer `bid` out.
    pub(crate) fn read(&self, bid: u16, off: u32, dst: &mut [u8]) {
        debug_assert!(off as usize + dst.len() <= self.len[usize::from(bid)] as usize);
        self.data
            .read(usize::from(bid) * self.size as usize + off as usize, dst);
    }
}

impl RecvBuffers {
    /// Gives up the ring and the buffers for good: the kernel may still use them.
    pub(crate) fn leak(&mut self) {
        self.leaked = true;
        self.data.leak();
    }
}

impl Drop for RecvBuffers {
    fn drop(&mut self) {
        if self.leaked {
            return;
        }
        // SAFETY: the mapping made in `new`, unmapped once; the shim drops this only after the
        // ring is gone or drained (nothing in flight draws from it).
        unsafe { libc::munmap(self.ring.as_ptr().cast(), self.ring_bytes) };
    }
}

/// The shared pool of send slabs: fixed-size chunks, one per connection with bytes queued or
/// in flight, handed out last-in first-out (the most recently used, likely cached, first).
pub(crate) struct SendPool {
    data: RawBuf,
    chunk: u32,
    free: Vec<u32>,
}

impl SendPool {
    pub(crate) fn new(chunks: u32, chunk: u32) -> SendPool {
        SendPool {
            data: RawBuf::new(chunks as usize * chunk as usize),
            chunk,
            free: (0..chunks).rev().collect(),
        }
    }

    /// The size of a slab.
    pub(crate) fn chunk(&self) -> u32 {
        self.chunk
    }

    /// Slabs free now.
    pub(crate) fn free_count(&self) -> u32 {
        self.free.len() as u32
    }

    /// Gives up the slabs for good: the kernel may still read them.
    pub(crate) fn leak(&mut self) {
        self.data.leak();
    }

    /// Whether a slab is free.
    pub(crate) fn has_free(&self) -> bool {
        !self.free.is_empty()
    }

    /// A free slab, if any.
    pub(crate) fn take(&mut self) -> Option<u32> {
        self.free.pop()
    }

    /// Gives slab `c` back.
    pub(crate) fn put(&mut self, c: u32) {
        self.free.push(c);
    }

    fn base(&self, c: u32) -> usize {
        c as usize * self.chunk as usize
    }

    /// Copies `src` into slab `c` at `off`.
    pub(crate) fn write(&self, c: u32, off: u32, src: &[u8]) {
        self.data.write(self.base(c) + off as usize, src);
    }

    /// Moves `len` bytes of slab `c` from `from` to its start.
    pub(crate) fn shift_to_start(&self, c: u32, from: u32, len: u32) {
        self.data
            .shift(self.base(c) + from as usize, self.base(c), len as usize);
    }

    /// The address of byte `off` of slab `c`, for a send.
    pub(crate) fn addr(&self, c: u32, off: u32) -> *const u8 {
        self.data.addr(self.base(c) + off as usize)
    }
}
