//! The conformance suite against the real Linux shim (`usockets-shim-linux`, epoll), on the
//! loopback interface, in real time.
//!
//! The pipe for the user-poll check is a real pipe (`usockets_conformance::unix_pipe`).
#![cfg(target_os = "linux")]

use std::os::fd::OwnedFd;

use usockets_conformance::{conformance_suite, unix_pipe, ShimUnderTest};
use usockets_shim_linux::LinuxShim;

struct Linux;

impl ShimUnderTest for Linux {
    type Shim = LinuxShim;

    fn new_shim() -> LinuxShim {
        LinuxShim::new().expect("LinuxShim::new")
    }

    fn pipe(_shim: &LinuxShim) -> Option<(OwnedFd, OwnedFd)> {
        unix_pipe::pipe()
    }

    fn write_pipe(_shim: &LinuxShim, write_end: &OwnedFd, data: &[u8]) {
        unix_pipe::write(write_end, data);
    }

    fn read_pipe(_shim: &LinuxShim, read_end: &OwnedFd, buf: &mut [u8]) -> usize {
        unix_pipe::read(read_end, buf)
    }
}

conformance_suite!(Linux);
