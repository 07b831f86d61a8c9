//! The conformance suite against the real Linux shim (`usockets-shim-linux`, epoll), on the
//! loopback interface, in real time.
//!
//! The pipe for the user-poll check comes from `std::io::pipe` (Rust 1.87), so this one test
//! target needs a newer toolchain than the workspace's MSRV; the library does not.
#![cfg(target_os = "linux")]

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;

use usockets_conformance::{conformance_suite, ShimUnderTest};
use usockets_shim_linux::LinuxShim;

struct Linux;

/// A `File` on a duplicate of `fd`, to read or write a descriptor the loop owns without
/// `unsafe` (the duplicate closes when the `File` drops).
fn dup(fd: &OwnedFd) -> File {
    File::from(fd.try_clone().expect("dup"))
}

impl ShimUnderTest for Linux {
    type Shim = LinuxShim;

    fn new_shim() -> LinuxShim {
        LinuxShim::new().expect("LinuxShim::new")
    }

    fn pipe(_shim: &LinuxShim) -> Option<(OwnedFd, OwnedFd)> {
        let (r, w) = std::io::pipe().expect("pipe");
        Some((r.into(), w.into()))
    }

    fn write_pipe(_shim: &LinuxShim, write_end: &OwnedFd, data: &[u8]) {
        dup(write_end).write_all(data).expect("pipe write");
    }

    fn read_pipe(_shim: &LinuxShim, read_end: &OwnedFd, buf: &mut [u8]) -> usize {
        dup(read_end).read(buf).expect("pipe read")
    }
}

conformance_suite!(Linux);
