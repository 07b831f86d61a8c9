//! The shim's error: a portable kind and an errno-style code, since smoltcp has no error
//! numbers of its own and C callers of `on_connect_error` expect a nonzero code.

use usockets_core::{ErrorKind, ShimError};

/// An error of the smoltcp shim.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SmolError {
    kind: ErrorKind,
}

impl SmolError {
    /// An error of `kind`.
    pub const fn new(kind: ErrorKind) -> SmolError {
        SmolError { kind }
    }
}

impl From<ErrorKind> for SmolError {
    fn from(kind: ErrorKind) -> SmolError {
        SmolError { kind }
    }
}

impl ShimError for SmolError {
    fn kind(&self) -> ErrorKind {
        self.kind
    }
    /// The Linux errno of the kind (what a C program compares with), 0 for would-block.
    fn raw_os_error(&self) -> i32 {
        match self.kind {
            ErrorKind::WouldBlock => 0,
            ErrorKind::ConnectionRefused => 111,
            ErrorKind::ConnectionReset => 104,
            ErrorKind::ConnectionAborted => 103,
            ErrorKind::TimedOut => 110,
            ErrorKind::AddrInUse => 98,
            ErrorKind::AddrNotAvailable => 99,
            ErrorKind::Unreachable => 113,
            ErrorKind::TooManyOpenFiles => 24,
            ErrorKind::OutOfMemory => 105,
            ErrorKind::NameResolution => -2, // EAI_NONAME, as getaddrinfo reports it
            ErrorKind::InvalidInput => 22,
            ErrorKind::PermissionDenied => 13,
            ErrorKind::Unsupported => 95,
            _ => 5,
        }
    }
}
