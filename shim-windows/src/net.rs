//! The socket operations: listen, accept, connect, data and names, over Winsock.

use std::net::{SocketAddr, ToSocketAddrs};
use std::os::windows::io::{FromRawSocket, OwnedSocket};

use usockets_core::{ConnectTarget, ErrorKind, ListenOptions, ListenTarget, PeerAddr};
use windows_sys::Win32::Networking::WinSock as ws;

use crate::addr::RawAddr;
use crate::error::{code, WindowsError};
use crate::sys::{self, raw};

/// Resolves `host` (a name or a literal) and `port`, blocking (`getaddrinfo`, through std).
fn resolve(host: &str, port: u16) -> Result<Vec<SocketAddr>, WindowsError> {
    let addrs: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|e| {
            WindowsError::new(
                ErrorKind::NameResolution,
                e.raw_os_error().unwrap_or(code::WSAHOST_NOT_FOUND),
            )
        })?
        .collect();
    if addrs.is_empty() {
        return Err(WindowsError::new(
            ErrorKind::NameResolution,
            code::WSAHOST_NOT_FOUND,
        ));
    }
    Ok(addrs)
}

/// The address family of an IP address.
fn family_of(addr: SocketAddr) -> u16 {
    if addr.is_ipv4() {
        ws::AF_INET
    } else {
        ws::AF_INET6
    }
}

fn bind(s: usize, addr: &RawAddr) -> Result<(), WindowsError> {
    // SAFETY: `addr` holds a valid address of `addr.len` bytes.
    let r = unsafe { ws::bind(s, addr.as_ptr(), addr.len) };
    if r == ws::SOCKET_ERROR {
        Err(sys::last_error())
    } else {
        Ok(())
    }
}

fn listen_on(s: usize, backlog: u32) -> Result<(), WindowsError> {
    let backlog = backlog.min(i32::MAX as u32) as i32;
    // SAFETY: plain values.
    if unsafe { ws::listen(s, backlog) } == ws::SOCKET_ERROR {
        Err(sys::last_error())
    } else {
        Ok(())
    }
}

/// A TCP listener on `addr`. Never `SO_REUSEADDR`: on Windows it lets another socket take
/// over the port. `SO_EXCLUSIVEADDRUSE` with [`ListenOptions::exclusive_port`]. An IPv6
/// wildcard accepts IPv4 too (dual-stack).
fn tcp_listener(addr: SocketAddr, options: ListenOptions) -> Result<OwnedSocket, WindowsError> {
    let socket = sys::stream_socket(family_of(addr))?;
    let s = raw(&socket);
    if options.exclusive_port {
        sys::setsockopt_int(s, ws::SOL_SOCKET, ws::SO_EXCLUSIVEADDRUSE, 1)?;
    }
    if addr.is_ipv6() && addr.ip().is_unspecified() {
        sys::setsockopt_int(s, ws::IPPROTO_IPV6, ws::IPV6_V6ONLY, 0)?;
    }
    bind(s, &RawAddr::from_ip(addr))?;
    listen_on(s, options.backlog)?;
    Ok(socket)
}

/// Opens a listener for `target` (see [`OsShim::listen`](usockets_core::OsShim::listen)).
pub(crate) fn listen(
    target: ListenTarget<'_>,
    options: ListenOptions,
    unix: bool,
) -> Result<OwnedSocket, WindowsError> {
    match target {
        ListenTarget::Host { host: None, port } => {
            let any6 = SocketAddr::from(([0u16; 8], port));
            match tcp_listener(any6, options) {
                // No IPv6 on this machine: every IPv4 interface.
                Err(e) if e_is(e, ErrorKind::Unsupported) => {
                    tcp_listener(SocketAddr::from(([0u8; 4], port)), options)
                }
                r => r,
            }
        }
        ListenTarget::Host {
            host: Some(host),
            port,
        } => {
            let mut last = WindowsError::invalid();
            for addr in resolve(host, port)? {
                match tcp_listener(addr, options) {
                    Ok(s) => return Ok(s),
                    Err(e) => last = e,
                }
            }
            Err(last)
        }
        ListenTarget::Unix(path) => {
            if !unix {
                return Err(WindowsError::unsupported());
            }
            unix_listener(path, options)
        }
    }
}

/// A unix-domain listener (Windows 10 1803 and later). A path left by a listener that is gone
/// (a connect to it is refused) is removed and bound again; a live listener's path gives
/// `AddrInUse`; anything that is not a socket file is never removed. No permission bits: the
/// file gets the directory's ACL ([`ListenOptions::unix_mode`] is a Unix notion).
fn unix_listener(path: &str, options: ListenOptions) -> Result<OwnedSocket, WindowsError> {
    let addr = RawAddr::from_unix(path).ok_or_else(WindowsError::invalid)?;
    let socket = sys::stream_socket(ws::AF_UNIX)?;
    let s = raw(&socket);
    match bind(s, &addr) {
        Err(e) if e_is(e, ErrorKind::AddrInUse) && stale_unix_path(path, &addr) => {
            std::fs::remove_file(path).map_err(|_| e)?;
            bind(s, &addr)?;
        }
        r => r?,
    }
    listen_on(s, options.backlog)?;
    Ok(socket)
}

/// Whether `path` is a socket file nobody answers on.
fn stale_unix_path(path: &str, addr: &RawAddr) -> bool {
    use std::os::windows::fs::MetadataExt;
    // A unix socket file is a reparse point on Windows.
    const FILE_ATTRIBUTE_REPARSE_POINT: u32 = 0x400;
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return false;
    };
    if meta.file_attributes() & FILE_ATTRIBUTE_REPARSE_POINT == 0 {
        return false;
    }
    let Ok(probe) = sys::stream_socket(ws::AF_UNIX) else {
        return false;
    };
    matches!(connect_raw(raw(&probe), addr), Err(e) if e_is(e, ErrorKind::ConnectionRefused))
}

fn e_is(e: WindowsError, kind: ErrorKind) -> bool {
    usockets_core::ShimError::kind(&e) == kind
}

/// `connect`, with "in progress" as success (the outcome comes through the poll).
fn connect_raw(s: usize, addr: &RawAddr) -> Result<(), WindowsError> {
    // SAFETY: `addr` holds a valid address of `addr.len` bytes.
    if unsafe { ws::connect(s, addr.as_ptr(), addr.len) } == ws::SOCKET_ERROR {
        let e = sys::last_error();
        if !e_is(e, ErrorKind::WouldBlock) {
            return Err(e);
        }
    }
    Ok(())
}

/// Starts a non-blocking connect (see [`OsShim::connect`](usockets_core::OsShim::connect)).
/// Names resolve synchronously; the first address is used.
pub(crate) fn connect(target: ConnectTarget<'_>, unix: bool) -> Result<OwnedSocket, WindowsError> {
    match target {
        ConnectTarget::Host { host, port, source } => {
            let addr = resolve(host, port)?[0];
            let socket = sys::stream_socket(family_of(addr))?;
            let s = raw(&socket);
            if let Some(source) = source {
                let local = resolve(source, 0)?
                    .into_iter()
                    .find(|a| a.is_ipv4() == addr.is_ipv4())
                    .ok_or_else(|| {
                        WindowsError::new(ErrorKind::AddrNotAvailable, code::WSAEADDRNOTAVAIL)
                    })?;
                bind(s, &RawAddr::from_ip(local))?;
            }
            sys::setsockopt_int(s, ws::IPPROTO_TCP, ws::TCP_NODELAY, 1)?;
            connect_raw(s, &RawAddr::from_ip(addr))?;
            Ok(socket)
        }
        ConnectTarget::Unix(path) => {
            if !unix {
                return Err(WindowsError::unsupported());
            }
            let addr = RawAddr::from_unix(path).ok_or_else(WindowsError::invalid)?;
            let socket = sys::stream_socket(ws::AF_UNIX)?;
            connect_raw(raw(&socket), &addr)?;
            Ok(socket)
        }
    }
}

/// Accepts one pending connection (see [`OsShim::accept`](usockets_core::OsShim::accept)).
pub(crate) fn accept(listener: usize) -> Result<Option<(OwnedSocket, PeerAddr)>, WindowsError> {
    let mut addr = RawAddr::empty();
    // SAFETY: `addr` is writable for `addr.len` bytes, and `len` is updated in place.
    let s = unsafe { ws::accept(listener, addr.as_mut_ptr(), &mut addr.len) };
    if s == ws::INVALID_SOCKET {
        let e = sys::last_error();
        if e_is(e, ErrorKind::WouldBlock) {
            return Ok(None);
        }
        return Err(e.for_accept());
    }
    // SAFETY: `s` was just returned by accept and is owned by nothing else.
    let socket = unsafe { OwnedSocket::from_raw_socket(s as u64) };
    // The connection is taken: a failure from here on is this connection's alone (it is
    // closed), never the listener's, so core goes on to the next one.
    sys::set_nonblocking(s).map_err(|e| WindowsError::new(ErrorKind::ConnectionAborted, e.code))?;
    // Best effort: a layered provider's socket may refuse either, and neither is worth the
    // connection.
    let _ = sys::no_inherit(s);
    let peer = addr.to_peer().unwrap_or(PeerAddr::Unix);
    if matches!(peer, PeerAddr::Ip(_)) {
        let _ = sys::setsockopt_int(s, ws::IPPROTO_TCP, ws::TCP_NODELAY, 1);
    }
    Ok(Some((socket, peer)))
}

/// Non-blocking and `TCP_NODELAY` (where it applies) for a socket opened elsewhere.
pub(crate) fn adopt(s: usize) -> Result<(), WindowsError> {
    sys::set_nonblocking(s)?;
    // Not a TCP socket (a unix one): no Nagle to turn off.
    let _ = sys::setsockopt_int(s, ws::IPPROTO_TCP, ws::TCP_NODELAY, 1);
    Ok(())
}

/// The pending error (`SO_ERROR`), cleared by reading it.
pub(crate) fn take_error(s: usize) -> Result<(), WindowsError> {
    match sys::getsockopt_int(s, ws::SOL_SOCKET, ws::SO_ERROR)? {
        0 => Ok(()),
        e => Err(WindowsError::from_raw(e)),
    }
}

/// `recv`: `Ok(0)` is the peer's FIN.
pub(crate) fn recv(s: usize, buf: &mut [u8]) -> Result<usize, WindowsError> {
    let len = buf.len().min(i32::MAX as usize) as i32;
    // SAFETY: `buf` is writable for `len` bytes.
    let n = unsafe { ws::recv(s, buf.as_mut_ptr(), len, 0) };
    if n == ws::SOCKET_ERROR {
        Err(sys::last_error())
    } else {
        Ok(n as usize)
    }
}

/// `send`.
pub(crate) fn send(s: usize, data: &[u8]) -> Result<usize, WindowsError> {
    let len = data.len().min(i32::MAX as usize) as i32;
    // SAFETY: `data` is readable for `len` bytes.
    let n = unsafe { ws::send(s, data.as_ptr(), len, 0) };
    if n == ws::SOCKET_ERROR {
        Err(sys::last_error())
    } else {
        Ok(n as usize)
    }
}

/// One gathered send of `header` then `payload` (`WSASend` with two buffers).
pub(crate) fn send2(s: usize, header: &[u8], payload: &[u8]) -> Result<usize, WindowsError> {
    let buf = |b: &[u8]| ws::WSABUF {
        len: b.len().min(u32::MAX as usize / 2) as u32,
        buf: b.as_ptr().cast_mut(),
    };
    let bufs = [buf(header), buf(payload)];
    let mut sent: u32 = 0;
    // SAFETY: both buffers are readable for their lengths (Winsock only reads them for a
    // send); `sent` is a live local; no overlapped I/O, so the call completes here.
    let r = unsafe {
        ws::WSASend(
            s,
            bufs.as_ptr(),
            2,
            &mut sent,
            0,
            std::ptr::null_mut(),
            None,
        )
    };
    if r == ws::SOCKET_ERROR {
        Err(sys::last_error())
    } else {
        Ok(sent as usize)
    }
}

/// `shutdown` with `SD_SEND` or `SD_RECEIVE`.
pub(crate) fn shutdown(s: usize, how: i32) -> Result<(), WindowsError> {
    // SAFETY: plain values.
    if unsafe { ws::shutdown(s, how) } == ws::SOCKET_ERROR {
        Err(sys::last_error())
    } else {
        Ok(())
    }
}

/// The local (`peer = false`) or remote address.
pub(crate) fn name(s: usize, peer: bool) -> Result<PeerAddr, WindowsError> {
    let mut addr = RawAddr::empty();
    let r = if peer {
        // SAFETY: `addr` is writable for `addr.len` bytes, and `len` is updated in place.
        unsafe { ws::getpeername(s, addr.as_mut_ptr(), &mut addr.len) }
    } else {
        // SAFETY: as above.
        unsafe { ws::getsockname(s, addr.as_mut_ptr(), &mut addr.len) }
    };
    if r == ws::SOCKET_ERROR {
        return Err(sys::last_error());
    }
    addr.to_peer().ok_or_else(WindowsError::invalid)
}

/// Whether this Windows has unix-domain sockets (10 1803 and later): a probe socket.
pub(crate) fn has_unix_sockets() -> bool {
    sys::stream_socket(ws::AF_UNIX).is_ok()
}
