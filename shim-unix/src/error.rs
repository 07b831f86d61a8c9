//! The shims' error type: a portable [`ErrorKind`] plus the raw `errno` (or `EAI_*`) code.

use core::fmt;
use std::ffi::CStr;

use usockets_core::{ErrorKind, ShimError};

/// An error from a Unix shim: a portable kind and the raw code.
///
/// `code` is an `errno` value (e.g. 111 for `ECONNREFUSED`), except for
/// [`ErrorKind::NameResolution`], where it is the (negative) `EAI_*` code `getaddrinfo`
/// returned (e.g. -2 for `EAI_NONAME`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct UnixError {
    /// The portable kind.
    pub kind: ErrorKind,
    /// The `errno` value, or the `EAI_*` code for a name-resolution failure.
    pub code: i32,
}

impl UnixError {
    /// Classifies an `errno` value.
    pub fn from_errno(code: i32) -> UnixError {
        let kind = match code {
            libc::EAGAIN => ErrorKind::WouldBlock,
            // EWOULDBLOCK == EAGAIN on Linux; the guard keeps the mapping right anywhere else.
            c if c == libc::EWOULDBLOCK => ErrorKind::WouldBlock,
            libc::ECONNREFUSED => ErrorKind::ConnectionRefused,
            libc::ECONNRESET | libc::EPIPE => ErrorKind::ConnectionReset,
            libc::ECONNABORTED => ErrorKind::ConnectionAborted,
            libc::ETIMEDOUT => ErrorKind::TimedOut,
            libc::EADDRINUSE => ErrorKind::AddrInUse,
            libc::EADDRNOTAVAIL => ErrorKind::AddrNotAvailable,
            libc::ENETUNREACH | libc::EHOSTUNREACH => ErrorKind::Unreachable,
            libc::EMFILE | libc::ENFILE => ErrorKind::TooManyOpenFiles,
            libc::ENOMEM | libc::ENOBUFS => ErrorKind::OutOfMemory,
            libc::EINVAL | libc::EBADF | libc::ENAMETOOLONG => ErrorKind::InvalidInput,
            libc::EACCES | libc::EPERM => ErrorKind::PermissionDenied,
            _ => ErrorKind::Other,
        };
        UnixError { kind, code }
    }

    /// An error of `kind` with the raw `code` (for a shim that reclassifies an `errno`).
    pub fn with_kind(kind: ErrorKind, code: i32) -> UnixError {
        UnixError { kind, code }
    }

    /// A `getaddrinfo` failure: kind [`ErrorKind::NameResolution`], `code` = the `EAI_*` value.
    pub fn from_gai(code: i32) -> UnixError {
        UnixError {
            kind: ErrorKind::NameResolution,
            code,
        }
    }

    /// Whether this is a would-block error (`EAGAIN`).
    pub fn is_would_block(&self) -> bool {
        self.kind == ErrorKind::WouldBlock
    }
}

impl ShimError for UnixError {
    fn kind(&self) -> ErrorKind {
        self.kind
    }
    fn raw_os_error(&self) -> i32 {
        self.code
    }
}

impl fmt::Display for UnixError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.kind == ErrorKind::NameResolution {
            // SAFETY: gai_strerror accepts any int and touches no caller memory.
            let ptr = unsafe { libc::gai_strerror(self.code) };
            if ptr.is_null() {
                return write!(f, "name resolution failed (EAI {})", self.code);
            }
            // SAFETY: a non-null gai_strerror result is a static NUL-terminated string that
            // lives as long as the program.
            let msg = unsafe { CStr::from_ptr(ptr) };
            write!(
                f,
                "name resolution failed: {} (EAI {})",
                msg.to_string_lossy(),
                self.code
            )
        } else {
            let io = std::io::Error::from_raw_os_error(self.code);
            write!(f, "{:?}: {io}", self.kind)
        }
    }
}

impl std::error::Error for UnixError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errno_mapping() {
        let cases = [
            (libc::EAGAIN, ErrorKind::WouldBlock),
            (libc::EWOULDBLOCK, ErrorKind::WouldBlock),
            (libc::ECONNREFUSED, ErrorKind::ConnectionRefused),
            (libc::ECONNRESET, ErrorKind::ConnectionReset),
            (libc::EPIPE, ErrorKind::ConnectionReset),
            (libc::ECONNABORTED, ErrorKind::ConnectionAborted),
            (libc::ETIMEDOUT, ErrorKind::TimedOut),
            (libc::EADDRINUSE, ErrorKind::AddrInUse),
            (libc::EADDRNOTAVAIL, ErrorKind::AddrNotAvailable),
            (libc::ENETUNREACH, ErrorKind::Unreachable),
            (libc::EHOSTUNREACH, ErrorKind::Unreachable),
            (libc::EMFILE, ErrorKind::TooManyOpenFiles),
            (libc::ENFILE, ErrorKind::TooManyOpenFiles),
            (libc::ENOMEM, ErrorKind::OutOfMemory),
            (libc::ENOBUFS, ErrorKind::OutOfMemory),
            (libc::EINVAL, ErrorKind::InvalidInput),
            (libc::EBADF, ErrorKind::InvalidInput),
            (libc::ENAMETOOLONG, ErrorKind::InvalidInput),
            (libc::EACCES, ErrorKind::PermissionDenied),
            (libc::EPERM, ErrorKind::PermissionDenied),
            (libc::EIO, ErrorKind::Other),
        ];
        for (code, kind) in cases {
            let e = UnixError::from_errno(code);
            assert_eq!((e.kind(), e.raw_os_error()), (kind, code), "errno {code}");
        }
    }

    #[test]
    fn display() {
        let refused = UnixError::from_errno(libc::ECONNREFUSED).to_string();
        assert!(refused.starts_with("ConnectionRefused"), "{refused}");
        let gai = UnixError::from_gai(libc::EAI_NONAME).to_string();
        assert!(gai.contains("EAI -2"), "{gai}");
    }
}
