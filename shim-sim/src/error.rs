//! The shim's error type: a portable kind plus a Linux errno value.

use core::fmt;

use usockets_core::{ErrorKind, ShimError};

/// An error from the simulated OS: a portable kind and the Linux errno it stands for, so
/// tests can assert on the same codes a real Linux shim would report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SimError {
    /// The portable kind.
    pub kind: ErrorKind,
    /// The Linux errno (or -2, `EAI_NONAME`, for a name that does not resolve).
    pub code: i32,
}

impl SimError {
    /// `EAGAIN` (11): the operation would block.
    pub const WOULD_BLOCK: SimError = SimError::new(ErrorKind::WouldBlock, 11);
    /// `ECONNREFUSED` (111): nobody listens there, or the backlog is full.
    pub const CONNECTION_REFUSED: SimError = SimError::new(ErrorKind::ConnectionRefused, 111);
    /// `ECONNRESET` (104): the connection was reset.
    pub const CONNECTION_RESET: SimError = SimError::new(ErrorKind::ConnectionReset, 104);
    /// `EPIPE` (32): writing to a connection whose far end is gone or whose write side is shut.
    pub const BROKEN_PIPE: SimError = SimError::new(ErrorKind::ConnectionReset, 32);
    /// `EMFILE` (24): the descriptor limit is reached.
    pub const TOO_MANY_OPEN_FILES: SimError = SimError::new(ErrorKind::TooManyOpenFiles, 24);
    /// `EADDRINUSE` (98): the port or path is already listened on.
    pub const ADDR_IN_USE: SimError = SimError::new(ErrorKind::AddrInUse, 98);
    /// `EADDRNOTAVAIL` (99): the address is not a loopback address of the simulated host.
    pub const ADDR_NOT_AVAILABLE: SimError = SimError::new(ErrorKind::AddrNotAvailable, 99);
    /// `EINVAL` (22): invalid argument (e.g. a unix path longer than 107 bytes).
    pub const INVALID: SimError = SimError::new(ErrorKind::InvalidInput, 22);
    /// `EBADF` (9): not an open descriptor.
    pub const BAD_FD: SimError = SimError::new(ErrorKind::InvalidInput, 9);
    /// `ENOENT` (2): the descriptor is open but not registered with this poller.
    pub const NOT_REGISTERED: SimError = SimError::new(ErrorKind::InvalidInput, 2);
    /// `EEXIST` (17): the descriptor is already registered.
    pub const ALREADY_REGISTERED: SimError = SimError::new(ErrorKind::InvalidInput, 17);
    /// `ENOTCONN` (107): the socket is not connected (a listener, or a connect that is pending
    /// or failed).
    pub const NOT_CONNECTED: SimError = SimError::new(ErrorKind::InvalidInput, 107);
    /// `ENOTSOCK` (88): the descriptor is not a socket (a user pipe).
    pub const NOT_SOCKET: SimError = SimError::new(ErrorKind::InvalidInput, 88);
    /// `EAI_NONAME` (-2): the host name does not resolve.
    pub const NAME_RESOLUTION: SimError = SimError::new(ErrorKind::NameResolution, -2);

    /// Builds an error from a kind and a code.
    pub const fn new(kind: ErrorKind, code: i32) -> SimError {
        SimError { kind, code }
    }
}

impl ShimError for SimError {
    fn kind(&self) -> ErrorKind {
        self.kind
    }
    fn raw_os_error(&self) -> i32 {
        self.code
    }
}

impl fmt::Display for SimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} (sim errno {})", self.kind, self.code)
    }
}

impl std::error::Error for SimError {}
