//! The whole conformance suite against the io_uring shim, on the loopback interface, in real
//! time. The pipe for the user-poll check is a real pipe (`usockets_conformance::unix_pipe`).
#![cfg(target_os = "linux")]

use std::os::fd::OwnedFd;

use usockets_conformance::{conformance_suite, unix_pipe, ShimUnderTest};
use usockets_shim_uring::UringShim;

struct Uring;

impl ShimUnderTest for Uring {
    type Shim = UringShim;

    fn new_shim() -> UringShim {
        UringShim::new().expect("UringShim::new (io_uring available on this kernel?)")
    }

    fn pipe(_shim: &UringShim) -> Option<(OwnedFd, OwnedFd)> {
        unix_pipe::pipe()
    }

    fn write_pipe(_shim: &UringShim, write_end: &OwnedFd, data: &[u8]) {
        unix_pipe::write(write_end, data);
    }

    fn read_pipe(_shim: &UringShim, read_end: &OwnedFd, buf: &mut [u8]) -> usize {
        unix_pipe::read(read_end, buf)
    }
}

conformance_suite!(Uring);
