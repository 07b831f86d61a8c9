//! The whole conformance suite over the kqueue shim, on the loopback interface, in real time.
//!
//! Compiled for every BSD and Apple target by this project's CI (`cargo check --tests`), and
//! run by `cargo test -p usockets-shim-bsd` on such a machine: no BSD or macOS machine runs it
//! here. Elsewhere this target is empty.
#![cfg(any(
    target_os = "freebsd",
    target_os = "macos",
    target_os = "ios",
    target_os = "netbsd",
    target_os = "openbsd",
    target_os = "dragonfly"
))]

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;

use usockets_conformance::{conformance_suite, ShimUnderTest};
use usockets_shim_bsd::BsdShim;

struct Bsd;

/// A `File` on a duplicate of `fd`, to read or write a descriptor the loop owns without
/// `unsafe` (the duplicate closes when the `File` drops).
fn dup(fd: &OwnedFd) -> File {
    File::from(fd.try_clone().expect("dup"))
}

impl ShimUnderTest for Bsd {
    type Shim = BsdShim;

    fn new_shim() -> BsdShim {
        BsdShim::new().expect("BsdShim::new")
    }

    fn pipe(_shim: &BsdShim) -> Option<(OwnedFd, OwnedFd)> {
        let (r, w) = std::io::pipe().expect("pipe");
        Some((r.into(), w.into()))
    }

    fn write_pipe(_shim: &BsdShim, write_end: &OwnedFd, data: &[u8]) {
        dup(write_end).write_all(data).expect("pipe write");
    }

    fn read_pipe(_shim: &BsdShim, read_end: &OwnedFd, buf: &mut [u8]) -> usize {
        dup(read_end).read(buf).expect("pipe read")
    }
}

conformance_suite!(Bsd);
