//! The conformance suite against the real Linux shim (`usockets-shim-linux`, epoll), on the
//! loopback interface, in real time.
//!
//! The pipe for the user-poll check comes from `std::io::pipe` (Rust 1.87), so this one test
//! target needs a newer toolchain than the workspace's MSRV; the library does not.
#![cfg(target_os = "linux")]

use std::cell::RefCell;
use std::collections::HashMap;
use std::io::{PipeReader, PipeWriter, Read, Write};
use std::os::fd::AsRawFd;

use usockets_conformance::{conformance_suite, ShimUnderTest};
use usockets_shim_linux::{Fd, LinuxShim};

/// The ends of the pipes handed out on this thread, by descriptor: the `std` objects own the
/// descriptors (reading and writing a raw descriptor would need `unsafe`), the suite only sees
/// the numbers.
enum End {
    Read(PipeReader),
    Write(PipeWriter),
}

thread_local! {
    static PIPES: RefCell<HashMap<Fd, End>> = RefCell::new(HashMap::new());
}

struct Linux;

impl ShimUnderTest for Linux {
    type Shim = LinuxShim;

    fn new_shim() -> LinuxShim {
        LinuxShim::new().expect("LinuxShim::new")
    }

    fn pipe(_shim: &mut LinuxShim) -> Option<(Fd, Fd)> {
        let (r, w) = std::io::pipe().expect("pipe");
        let fds = (r.as_raw_fd(), w.as_raw_fd());
        PIPES.with(|p| {
            let mut p = p.borrow_mut();
            p.insert(fds.0, End::Read(r));
            p.insert(fds.1, End::Write(w));
        });
        Some(fds)
    }

    fn write_pipe(_shim: &mut LinuxShim, write_end: Fd, data: &[u8]) {
        PIPES.with(|p| match p.borrow_mut().get_mut(&write_end) {
            Some(End::Write(w)) => w.write_all(data).expect("pipe write"),
            _ => panic!("{write_end} is not a pipe write end of this thread"),
        });
    }

    fn read_pipe(_shim: &mut LinuxShim, read_end: Fd, buf: &mut [u8]) -> usize {
        PIPES.with(|p| match p.borrow_mut().get_mut(&read_end) {
            Some(End::Read(r)) => r.read(buf).expect("pipe read"),
            _ => panic!("{read_end} is not a pipe read end of this thread"),
        })
    }

    fn close_pipe(_shim: &mut LinuxShim, read_end: Fd, write_end: Fd) {
        PIPES.with(|p| {
            let mut p = p.borrow_mut();
            p.remove(&read_end);
            p.remove(&write_end);
        });
    }
}

conformance_suite!(Linux);
