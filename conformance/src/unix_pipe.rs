//! [`ShimUnderTest`](crate::ShimUnderTest)'s pipe hooks for a shim whose descriptor is std's
//! `OwnedFd` (the Unix shims): a real pipe, read and written through duplicates of its ends,
//! so that the test needs no `unsafe` and the loop keeps owning the descriptors it was given.
//!
//! ```ignore
//! fn pipe(_: &MyShim) -> Option<(OwnedFd, OwnedFd)> { usockets_conformance::unix_pipe::pipe() }
//! fn write_pipe(_: &MyShim, w: &OwnedFd, data: &[u8]) { usockets_conformance::unix_pipe::write(w, data) }
//! fn read_pipe(_: &MyShim, r: &OwnedFd, buf: &mut [u8]) -> usize { usockets_conformance::unix_pipe::read(r, buf) }
//! ```

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;

/// A `File` on a duplicate of `fd` (closed when the `File` drops).
fn dup(fd: &OwnedFd) -> File {
    File::from(fd.try_clone().expect("dup"))
}

/// A new pipe: (read end, write end).
pub fn pipe() -> Option<(OwnedFd, OwnedFd)> {
    let (r, w) = std::io::pipe().expect("pipe");
    Some((r.into(), w.into()))
}

/// Writes all of `data` to the pipe's write end.
pub fn write(write_end: &OwnedFd, data: &[u8]) {
    dup(write_end).write_all(data).expect("pipe write");
}

/// Reads what the pipe holds, up to `buf.len()` bytes.
pub fn read(read_end: &OwnedFd, buf: &mut [u8]) -> usize {
    dup(read_end).read(buf).expect("pipe read")
}
