//! The shim under test, shared by this crate's Windows test binaries.

use std::os::windows::io::OwnedSocket;

use usockets_conformance::{windows_pipe, ShimUnderTest};
use usockets_shim_windows::WindowsShim;

/// The IOCP shim, as the conformance suite sees it.
pub struct Windows;

impl ShimUnderTest for Windows {
    type Shim = WindowsShim;

    fn new_shim() -> WindowsShim {
        WindowsShim::new().expect("WindowsShim::new")
    }

    // Wine forwards every socket call through its server: give timing a little more room.
    const SLACK_MS: u64 = 500;
    const BOUND_MS: u64 = 15_000;

    fn unix_sockets(shim: &WindowsShim) -> bool {
        shim.has_unix_sockets()
    }

    fn pipe(_shim: &WindowsShim) -> Option<(OwnedSocket, OwnedSocket)> {
        windows_pipe::pipe()
    }

    fn write_pipe(_shim: &WindowsShim, write_end: &OwnedSocket, data: &[u8]) {
        windows_pipe::write(write_end, data);
    }

    fn read_pipe(_shim: &WindowsShim, read_end: &OwnedSocket, buf: &mut [u8]) -> usize {
        windows_pipe::read(read_end, buf)
    }
}
