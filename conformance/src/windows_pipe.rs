//! [`ShimUnderTest`](crate::ShimUnderTest)'s pipe hooks for a shim whose descriptor is std's
//! `OwnedSocket` (the Windows shim). Windows cannot poll an anonymous pipe, so the "pipe" is
//! a connected pair of loopback TCP sockets, read and written through duplicates of its
//! ends, so that the test needs no `unsafe` and the loop keeps owning the sockets it was
//! given.
//!
//! ```ignore
//! fn pipe(_: &MyShim) -> Option<(OwnedSocket, OwnedSocket)> { usockets_conformance::windows_pipe::pipe() }
//! fn write_pipe(_: &MyShim, w: &OwnedSocket, data: &[u8]) { usockets_conformance::windows_pipe::write(w, data) }
//! fn read_pipe(_: &MyShim, r: &OwnedSocket, buf: &mut [u8]) -> usize { usockets_conformance::windows_pipe::read(r, buf) }
//! ```

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::os::windows::io::OwnedSocket;

/// A `TcpStream` on a duplicate of `socket` (closed when the stream drops).
fn dup(socket: &OwnedSocket) -> TcpStream {
    TcpStream::from(socket.try_clone().expect("WSADuplicateSocket"))
}

/// A connected pair of loopback sockets: (read end, write end).
pub fn pipe() -> Option<(OwnedSocket, OwnedSocket)> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
    let write = TcpStream::connect(listener.local_addr().expect("local_addr")).expect("connect");
    let (read, _) = listener.accept().expect("accept");
    Some((read.into(), write.into()))
}

/// Writes all of `data` to the write end.
pub fn write(write_end: &OwnedSocket, data: &[u8]) {
    dup(write_end).write_all(data).expect("pipe write");
}

/// Reads what the read end holds, up to `buf.len()` bytes (0 when nothing is there yet).
pub fn read(read_end: &OwnedSocket, buf: &mut [u8]) -> usize {
    match dup(read_end).read(buf) {
        Ok(n) => n,
        Err(e) if e.kind() == ErrorKind::WouldBlock => 0,
        Err(e) => panic!("pipe read: {e}"),
    }
}
