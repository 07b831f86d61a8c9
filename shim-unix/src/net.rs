//! Non-blocking socket operations, one small function per syscall pattern.
//!
//! Every socket is created non-blocking and close-on-exec (`SOCK_NONBLOCK | SOCK_CLOEXEC`; on
//! Apple systems, which have neither flag, `fcntl` right after, with `SO_NOSIGPIPE` since they
//! have no `MSG_NOSIGNAL` either) and returned as an `OwnedFd`. A
//! function that creates a descriptor and then fails half-way closes it before returning the
//! error. Functions that operate on an existing descriptor take its raw number, borrowed from
//! its owner for the duration of the call.

use core::net::{Ipv6Addr, SocketAddr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use usockets_core::{ErrorKind, PeerAddr};

use crate::addr::SockAddr;
use crate::error::UnixError;
use crate::stats::{Counters, Sys};
use crate::sys::{self, cvt, cvt_retry};

/// Runs `setup` on a freshly created `fd`; returns `fd` on success, or closes it (counted) and
/// passes the error on.
fn or_close(
    c: &mut Counters,
    fd: OwnedFd,
    setup: impl FnOnce(&mut Counters, i32) -> Result<(), UnixError>,
) -> Result<OwnedFd, UnixError> {
    match setup(c, fd.as_raw_fd()) {
        Ok(()) => Ok(fd),
        Err(e) => {
            sys::close_owned(c, fd);
            Err(e)
        }
    }
}

/// `send`'s flag that keeps a write to a reset connection from raising `SIGPIPE`: none on
/// Apple systems, whose sockets get `SO_NOSIGPIPE` when they are made instead.
#[cfg(not(target_vendor = "apple"))]
const NOSIGNAL: i32 = libc::MSG_NOSIGNAL;
#[cfg(target_vendor = "apple")]
const NOSIGNAL: i32 = 0;

/// A non-blocking, close-on-exec stream socket of `family`.
fn socket(c: &mut Counters, family: i32) -> Result<OwnedFd, UnixError> {
    #[cfg(not(target_vendor = "apple"))]
    let ty = libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
    #[cfg(target_vendor = "apple")]
    let ty = libc::SOCK_STREAM;
    // SAFETY: socket takes only integers and touches no memory.
    let raw = cvt_retry(c, Sys::Other, || unsafe { libc::socket(family, ty, 0) })?;
    // SAFETY: socket just returned `raw`, a new descriptor that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    #[cfg(target_vendor = "apple")]
    let fd = or_close(c, fd, apple_setup)?;
    Ok(fd)
}

/// What `SOCK_NONBLOCK | SOCK_CLOEXEC` and `MSG_NOSIGNAL` do elsewhere, for a new socket on
/// an Apple system: `fcntl` and `SO_NOSIGPIPE`. (A fork in another thread between the socket
/// call and this one can leak the descriptor into the child: Apple offers no way around it.)
#[cfg(target_vendor = "apple")]
fn apple_setup(c: &mut Counters, fd: i32) -> Result<(), UnixError> {
    sys::fcntl_add(c, fd, libc::F_GETFD, libc::F_SETFD, libc::FD_CLOEXEC)?;
    sys::fcntl_add(c, fd, libc::F_GETFL, libc::F_SETFL, libc::O_NONBLOCK)?;
    sys::setsockopt_int(c, fd, libc::SOL_SOCKET, libc::SO_NOSIGPIPE, 1)
}

fn bind(c: &mut Counters, fd: i32, addr: &SockAddr) -> Result<(), UnixError> {
    let (p, len) = (addr.as_ptr(), addr.len());
    // SAFETY: `p` points to `len` initialised bytes of a sockaddr that outlives the call.
    cvt_retry(c, Sys::Other, || unsafe { libc::bind(fd, p, len) }).map(drop)
}

fn listen(c: &mut Counters, fd: i32, backlog: u32) -> Result<(), UnixError> {
    let backlog = i32::try_from(backlog).unwrap_or(i32::MAX);
    // SAFETY: listen takes only integers and touches no memory.
    cvt_retry(c, Sys::Other, || unsafe { libc::listen(fd, backlog) }).map(drop)
}

/// Sets `TCP_NODELAY` (which also pushes out any data held back by `MSG_MORE`).
pub fn set_nodelay(c: &mut Counters, fd: i32) -> Result<(), UnixError> {
    sys::setsockopt_int(c, fd, libc::IPPROTO_TCP, libc::TCP_NODELAY, 1)
}

/// Whether `e` says "this option does not apply to this kind of socket" (a unix socket asked
/// for a TCP option).
pub fn not_applicable(e: &UnixError) -> bool {
    matches!(e.code, libc::EOPNOTSUPP | libc::ENOPROTOOPT)
}

/// A listening IP socket bound to `addr`: `SO_REUSEADDR` always, `SO_REUSEPORT` when
/// `reuse_port`, `IPV6_V6ONLY` off for IPv6 (dual-stack when bound to `::`).
pub fn listen_ip(
    c: &mut Counters,
    addr: &SockAddr,
    reuse_port: bool,
    backlog: u32,
) -> Result<OwnedFd, UnixError> {
    let fd = socket(c, addr.family())?;
    or_close(c, fd, |c, fd| {
        sys::setsockopt_int(c, fd, libc::SOL_SOCKET, libc::SO_REUSEADDR, 1)?;
        if reuse_port {
            sys::setsockopt_int(c, fd, libc::SOL_SOCKET, libc::SO_REUSEPORT, 1)?;
        }
        if addr.family() == libc::AF_INET6 {
            // Dual-stack matters for the wildcard only (and IPv4-mapped addresses). OpenBSD
            // has no dual-stack sockets and refuses the option: for a specific address that
            // is no loss; for the wildcard, `listen_any` falls back to 0.0.0.0.
            let dual = sys::setsockopt_int(c, fd, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, 0);
            if dual.is_err() && addr.is_unspecified() {
                dual?;
            }
        }
        bind(c, fd, addr)?;
        listen(c, fd, backlog)
    })
}

/// Whether a wildcard IPv6 listener failed for want of IPv6 (`EAFNOSUPPORT`) or of
/// dual-stack sockets: `IPV6_V6ONLY` off is refused with `EINVAL` on OpenBSD, `EOPNOTSUPP` on
/// DragonFly (`ENOPROTOOPT` on a kernel without the option).
fn dual_stack_refused(code: i32) -> bool {
    matches!(
        code,
        libc::EAFNOSUPPORT | libc::EINVAL | libc::EOPNOTSUPP | libc::ENOPROTOOPT
    )
}

/// A dual-stack listener on every interface: `[::]:port` with `IPV6_V6ONLY` off, or
/// `0.0.0.0:port` when the kernel has no IPv6 or no dual-stack sockets (see
/// `dual_stack_refused`).
pub fn listen_any(
    c: &mut Counters,
    port: u16,
    reuse_port: bool,
    backlog: u32,
) -> Result<OwnedFd, UnixError> {
    let v6 = SockAddr::from_std(&SocketAddr::new(Ipv6Addr::UNSPECIFIED.into(), port));
    match listen_ip(c, &v6, reuse_port, backlog) {
        Err(e) if dual_stack_refused(e.code) => {
            let v4 = SockAddr::from_std(&SocketAddr::from(([0, 0, 0, 0], port)));
            listen_ip(c, &v4, reuse_port, backlog)
        }
        r => r,
    }
}

/// A listening unix-domain socket bound to `path` (`addr` is its address).
///
/// A file-system socket file gets `mode` (less the umask, like any new file): the mode is set
/// on the socket before `bind`, which creates the file with it, so there is no moment when the
/// file has looser permissions (where `fchmod` on a socket is refused, the file is chmod-ed
/// after `bind` instead). If the path is taken, it is unlinked and bound again only when
/// it is a socket file nobody answers on (a server that died); a live server's path or a file
/// of any other type is left alone and listen fails with `EADDRINUSE`. Abstract names (leading
/// NUL) have no file: they are neither chmod-ed nor unlinked.
pub fn listen_unix(
    c: &mut Counters,
    path: &str,
    addr: &SockAddr,
    mode: u32,
    backlog: u32,
) -> Result<OwnedFd, UnixError> {
    let in_file_system = !path.starts_with('\0');
    let fd = socket(c, libc::AF_UNIX)?;
    or_close(c, fd, |c, fd| {
        // Best effort, as the C library's: a system that refuses fchmod on a socket gets the
        // mode set on the file after bind instead.
        let preset = in_file_system && sys::fchmod(c, fd, mode).is_ok();
        match bind(c, fd, addr) {
            Err(e) if e.code == libc::EADDRINUSE && in_file_system => {
                if !is_stale_socket_file(c, path, addr) {
                    return Err(e);
                }
                // Another process may have removed it first: not an error. (One that binds the
                // path between the probe and this unlink loses its file: a window no API
                // closes; the C library unlinks without even probing.)
                let _ = std::fs::remove_file(path);
                bind(c, fd, addr)?;
            }
            r => r?,
        }
        if in_file_system && !preset {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode));
        }
        listen(c, fd, backlog)
    })
}

/// Whether `path` is a socket file that refuses connections: left behind by a listener that
/// closed or died. A probe connect tells; a live server sees that probe as a connection that
/// closes at once. Anything else (a regular file, a directory, a live or unreachable socket,
/// no permission to look) is not stale.
fn is_stale_socket_file(c: &mut Counters, path: &str, addr: &SockAddr) -> bool {
    use std::os::unix::fs::FileTypeExt;
    let is_socket = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket());
    if !is_socket {
        return false;
    }
    match connect(c, addr, None) {
        Ok(probe) => {
            sys::close_owned(c, probe);
            false
        }
        Err(e) => e.code == libc::ECONNREFUSED,
    }
}

/// One raw `accept4` (non-blocking, close-on-exec), filling `addr`.
pub fn accept_raw(
    c: &mut Counters,
    listener: i32,
    addr: &mut SockAddr,
) -> Result<OwnedFd, UnixError> {
    let (p, lenp) = addr.as_out();
    #[cfg(not(target_vendor = "apple"))]
    {
        let flags = libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
        // SAFETY: `p`/`lenp` point into `addr`, which outlives the call; `*lenp` is the full
        // size of the storage behind `p`, so the kernel never writes past it.
        let raw = cvt_retry(c, Sys::Accept, || unsafe {
            libc::accept4(listener, p, lenp, flags)
        })?;
        // SAFETY: accept4 just returned `raw`, a new descriptor that nothing else owns.
        Ok(unsafe { OwnedFd::from_raw_fd(raw) })
    }
    #[cfg(target_vendor = "apple")]
    {
        // SAFETY: as for accept4 above: `p`/`lenp` point into the live `addr` and `*lenp`
        // bounds the write.
        let raw = cvt_retry(c, Sys::Accept, || unsafe {
            libc::accept(listener, p, lenp)
        })?;
        // SAFETY: accept just returned `raw`, a new descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        or_close(c, fd, apple_setup)
    }
}

/// Accepts one connection; TCP sockets get `TCP_NODELAY` (best effort).
pub fn accept(c: &mut Counters, listener: i32) -> Result<(OwnedFd, PeerAddr), UnixError> {
    let mut addr = SockAddr::empty();
    let fd = accept_raw(c, listener, &mut addr)?;
    if matches!(addr.family(), libc::AF_INET | libc::AF_INET6) {
        // Best effort, as in the C library: a socket without TCP_NODELAY still works.
        let _ = set_nodelay(c, fd.as_raw_fd());
    }
    Ok((fd, addr.peer_addr()))
}

/// An `accept4` error as core needs to see it: the network errors of the pending connection
/// become [`ErrorKind::ConnectionAborted`] (raw code kept), on which core accepts the next
/// one; every other error is passed on unchanged.
pub fn accept_error(e: UnixError) -> UnixError {
    if is_pending_connection_error(e.code) {
        UnixError {
            kind: ErrorKind::ConnectionAborted,
            ..e
        }
    } else {
        e
    }
}

/// Linux's "machine is not on the network"; no other system has it (-1 matches no errno).
#[cfg(target_os = "linux")]
const ENONET: i32 = libc::ENONET;
#[cfg(not(target_os = "linux"))]
const ENONET: i32 = -1;

/// Whether `code` is one of the network errors accept(2) passes on from the pending connection
/// ("For reliable operation the application should detect the network errors defined for the
/// protocol after accept() and treat them like EAGAIN by retrying", accept(2), Linux): the
/// connection is lost, the listener is fine.
fn is_pending_connection_error(code: i32) -> bool {
    matches!(
        code,
        libc::ENETDOWN
            | libc::EPROTO
            | libc::ENOPROTOOPT
            | libc::EHOSTDOWN
            | ENONET
            | libc::EHOSTUNREACH
            | libc::EOPNOTSUPP
            | libc::ENETUNREACH
            | libc::ECONNABORTED
    )
}

/// A socket ready to connect to `addr`: of its family, with `TCP_NODELAY` for TCP, bound
/// first to `source` if given. For a shim that starts the connect itself (io_uring's
/// `IORING_OP_CONNECT`); [`connect`] starts it with the syscall.
pub fn connect_socket(
    c: &mut Counters,
    addr: &SockAddr,
    source: Option<&SockAddr>,
) -> Result<OwnedFd, UnixError> {
    let fd = socket(c, addr.family())?;
    or_close(c, fd, |c, fd| {
        if addr.family() != libc::AF_UNIX {
            set_nodelay(c, fd)?;
        }
        if let Some(source) = source {
            bind(c, fd, source)?;
        }
        Ok(())
    })
}

/// Starts a non-blocking connect to `addr`, optionally bound first to `source`.
/// `EINPROGRESS` (and `EINTR`, after which the connect goes on asynchronously) is success.
pub fn connect(
    c: &mut Counters,
    addr: &SockAddr,
    source: Option<&SockAddr>,
) -> Result<OwnedFd, UnixError> {
    let fd = connect_socket(c, addr, source)?;
    or_close(c, fd, |c, fd| {
        let (p, len) = (addr.as_ptr(), addr.len());
        // SAFETY: `p` points to `len` initialised bytes of a sockaddr that outlives the call.
        match cvt(c, Sys::Connect, || unsafe { libc::connect(fd, p, len) }) {
            Ok(_) => Ok(()),
            Err(e) if e.code == libc::EINPROGRESS || e.code == libc::EINTR => Ok(()),
            Err(e) => Err(e),
        }
    })
}

/// The pending error of a socket (`SO_ERROR`), as a result.
pub fn take_error(c: &mut Counters, fd: i32) -> Result<(), UnixError> {
    match sys::getsockopt_int(c, fd, libc::SOL_SOCKET, libc::SO_ERROR)? {
        0 => Ok(()),
        code => Err(UnixError::from_errno(code)),
    }
}

/// Makes a foreign descriptor non-blocking and close-on-exec, with `TCP_NODELAY` for TCP (and,
/// on Apple systems, `SO_NOSIGPIPE`, which stands in for `MSG_NOSIGNAL` there).
pub fn adopt(c: &mut Counters, fd: i32) -> Result<(), UnixError> {
    sys::fcntl_add(c, fd, libc::F_GETFL, libc::F_SETFL, libc::O_NONBLOCK)?;
    sys::fcntl_add(c, fd, libc::F_GETFD, libc::F_SETFD, libc::FD_CLOEXEC)?;
    #[cfg(target_vendor = "apple")]
    {
        // Best effort: a descriptor that is no socket cannot raise SIGPIPE on send anyway.
        let _ = sys::setsockopt_int(c, fd, libc::SOL_SOCKET, libc::SO_NOSIGPIPE, 1);
    }
    match set_nodelay(c, fd) {
        Err(e) if !not_applicable(&e) => Err(e),
        _ => Ok(()),
    }
}

#[inline]
/// `recv` into `buf`; 0 is end of stream.
pub fn recv(c: &mut Counters, fd: i32, buf: &mut [u8]) -> Result<usize, UnixError> {
    let (p, len) = (buf.as_mut_ptr(), buf.len());
    // SAFETY: `p` is valid for writes of `len` bytes (it is `buf`, borrowed for the call).
    cvt_retry(c, Sys::Recv, || unsafe { libc::recv(fd, p.cast(), len, 0) }).map(|n| n as usize)
}

/// `send` with `MSG_NOSIGNAL` (no `SIGPIPE`), plus, on Linux, `MSG_MORE` when `more`. The
/// BSDs have no `MSG_MORE`: there `more` is ignored here and the shim holds the data back
/// with `TCP_NOPUSH` around the call.
#[inline]
pub fn send(c: &mut Counters, fd: i32, data: &[u8], more: bool) -> Result<usize, UnixError> {
    #[cfg(target_os = "linux")]
    let flags = NOSIGNAL | if more { libc::MSG_MORE } else { 0 };
    #[cfg(not(target_os = "linux"))]
    let flags = {
        let _ = more;
        NOSIGNAL
    };
    let (p, len) = (data.as_ptr(), data.len());
    // SAFETY: `p` is valid for reads of `len` bytes (it is `data`, borrowed for the call).
    cvt_retry(c, Sys::Send, || unsafe {
        libc::send(fd, p.cast(), len, flags)
    })
    .map(|n| n as usize)
}

/// A gathered write of `header` then `payload`.
///
/// Done with `sendmsg` rather than `writev`: the same gathered write, but it takes
/// `MSG_NOSIGNAL`, so writing to a reset connection returns `EPIPE` instead of raising
/// `SIGPIPE` (which would kill a process that has not ignored it).
pub fn send2(c: &mut Counters, fd: i32, header: &[u8], payload: &[u8]) -> Result<usize, UnixError> {
    let mut iov = [
        libc::iovec {
            iov_base: header.as_ptr().cast_mut().cast(),
            iov_len: header.len(),
        },
        libc::iovec {
            iov_base: payload.as_ptr().cast_mut().cast(),
            iov_len: payload.len(),
        },
    ];
    // SAFETY: msghdr is a plain C struct of integers and raw pointers; all-zero (no name, no
    // control data) is valid.
    let mut msg = unsafe { std::mem::zeroed::<libc::msghdr>() };
    msg.msg_iov = iov.as_mut_ptr();
    msg.msg_iovlen = iov.len() as _;
    let m: *const libc::msghdr = &msg;
    // SAFETY: `m` points to a live msghdr whose two iovecs describe `header` and `payload`,
    // both borrowed for the call; sendmsg only reads them.
    cvt_retry(c, Sys::Writev, || unsafe { libc::sendmsg(fd, m, NOSIGNAL) }).map(|n| n as usize)
}

/// `shutdown(how)`.
pub fn shutdown(c: &mut Counters, fd: i32, how: i32) -> Result<(), UnixError> {
    // SAFETY: shutdown takes only integers and touches no memory.
    cvt_retry(c, Sys::Other, || unsafe { libc::shutdown(fd, how) }).map(drop)
}

/// `getsockname` (`peer == false`) or `getpeername` (`peer == true`).
pub fn name(c: &mut Counters, fd: i32, peer: bool) -> Result<PeerAddr, UnixError> {
    let mut addr = SockAddr::empty();
    let (p, lenp) = addr.as_out();
    let r = if peer {
        // SAFETY: `p`/`lenp` point into `addr`, which outlives the call; `*lenp` is the full
        // size of the storage behind `p`, so the kernel never writes past it.
        cvt_retry(c, Sys::Other, || unsafe { libc::getpeername(fd, p, lenp) })
    } else {
        // SAFETY: as for getpeername above: `p`/`lenp` point into the live `addr` and `*lenp`
        // bounds the write.
        cvt_retry(c, Sys::Other, || unsafe { libc::getsockname(fd, p, lenp) })
    };
    r?;
    Ok(addr.peer_addr())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// accept(2), Linux, "Error handling": "Linux accept() passes already-pending network
    /// errors on the new socket as an error code from accept() [...] In the case of TCP/IP,
    /// these are ENETDOWN, EPROTO, ENOPROTOOPT, EHOSTDOWN, ENONET, EHOSTUNREACH, EOPNOTSUPP,
    /// and ENETUNREACH." ECONNABORTED: "A connection has been aborted."
    #[test]
    fn accept_network_errors_are_the_pending_connections_not_the_listeners() {
        for code in [
            libc::ENETDOWN,
            libc::EPROTO,
            libc::ENOPROTOOPT,
            libc::EHOSTDOWN,
            ENONET,
            libc::EHOSTUNREACH,
            libc::EOPNOTSUPP,
            libc::ENETUNREACH,
            libc::ECONNABORTED,
        ] {
            let e = accept_error(UnixError::from_errno(code));
            assert_eq!(e.kind, ErrorKind::ConnectionAborted, "errno {code}");
            assert_eq!(e.code, code, "the raw code is kept");
        }
    }

    /// Descriptor exhaustion, would-block and errors of the listener itself keep their kind:
    /// core backs off on those (or stops at would-block).
    #[test]
    fn other_accept_errors_keep_their_kind() {
        for (code, kind) in [
            (libc::EMFILE, ErrorKind::TooManyOpenFiles),
            (libc::ENFILE, ErrorKind::TooManyOpenFiles),
            (libc::EAGAIN, ErrorKind::WouldBlock),
            (libc::ENOBUFS, ErrorKind::OutOfMemory),
            (libc::EPERM, ErrorKind::PermissionDenied),
            (libc::EINVAL, ErrorKind::InvalidInput),
        ] {
            assert_eq!(
                accept_error(UnixError::from_errno(code)).kind,
                kind,
                "errno {code}"
            );
        }
    }
}
