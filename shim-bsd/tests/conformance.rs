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

use std::os::fd::OwnedFd;

use usockets_conformance::{conformance_suite, unix_pipe, ShimUnderTest};
use usockets_shim_bsd::BsdShim;

struct Bsd;

impl ShimUnderTest for Bsd {
    type Shim = BsdShim;

    fn new_shim() -> BsdShim {
        BsdShim::new().expect("BsdShim::new")
    }

    fn pipe(_shim: &BsdShim) -> Option<(OwnedFd, OwnedFd)> {
        unix_pipe::pipe()
    }

    fn write_pipe(_shim: &BsdShim, write_end: &OwnedFd, data: &[u8]) {
        unix_pipe::write(write_end, data);
    }

    fn read_pipe(_shim: &BsdShim, read_end: &OwnedFd, buf: &mut [u8]) -> usize {
        unix_pipe::read(read_end, buf)
    }
}

conformance_suite!(Bsd);
