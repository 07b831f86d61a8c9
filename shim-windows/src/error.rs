//! [`WindowsError`]: a Winsock (`WSAE*`) or Win32 code with its portable kind. Pure: the
//! tables are tested on every host.

use core::fmt;

use usockets_core::{ErrorKind, ShimError};

/// The Windows shim's error: a portable [`ErrorKind`] and the raw Winsock or Win32 code
/// (`WSAGetLastError`, e.g. 10061 for `WSAECONNREFUSED`).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct WindowsError {
    /// The portable kind.
    pub kind: ErrorKind,
    /// The Winsock (`WSAE*`) or Win32 code.
    pub code: i32,
}

/// The Winsock and Win32 codes the shim names.
pub(crate) mod code {
    pub const ERROR_NOT_ENOUGH_MEMORY: i32 = 8;
    pub const ERROR_INVALID_PARAMETER: i32 = 87;
    pub const ERROR_NO_SYSTEM_RESOURCES: i32 = 1450;
    pub const WSAEBADF: i32 = 10009;
    pub const WSAEACCES: i32 = 10013;
    pub const WSAEFAULT: i32 = 10014;
    pub const WSAEINVAL: i32 = 10022;
    pub const WSAEMFILE: i32 = 10024;
    pub const WSAEWOULDBLOCK: i32 = 10035;
    pub const WSAEINPROGRESS: i32 = 10036;
    pub const WSAEALREADY: i32 = 10037;
    pub const WSAENOTSOCK: i32 = 10038;
    pub const WSAEPROTONOSUPPORT: i32 = 10043;
    pub const WSAESOCKTNOSUPPORT: i32 = 10044;
    pub const WSAEOPNOTSUPP: i32 = 10045;
    pub const WSAEPFNOSUPPORT: i32 = 10046;
    pub const WSAEAFNOSUPPORT: i32 = 10047;
    pub const WSAEADDRINUSE: i32 = 10048;
    pub const WSAEADDRNOTAVAIL: i32 = 10049;
    pub const WSAENETDOWN: i32 = 10050;
    pub const WSAENETUNREACH: i32 = 10051;
    pub const WSAENETRESET: i32 = 10052;
    pub const WSAECONNABORTED: i32 = 10053;
    pub const WSAECONNRESET: i32 = 10054;
    pub const WSAENOBUFS: i32 = 10055;
    pub const WSAESHUTDOWN: i32 = 10058;
    pub const WSAETIMEDOUT: i32 = 10060;
    pub const WSAECONNREFUSED: i32 = 10061;
    pub const WSAEHOSTDOWN: i32 = 10064;
    pub const WSAEHOSTUNREACH: i32 = 10065;
    pub const WSAHOST_NOT_FOUND: i32 = 11001;
    pub const WSATRY_AGAIN: i32 = 11002;
    pub const WSANO_RECOVERY: i32 = 11003;
    pub const WSANO_DATA: i32 = 11004;
}

/// The portable kind of a Winsock or Win32 code.
pub(crate) fn kind_of(raw: i32) -> ErrorKind {
    use code::*;
    match raw {
        WSAEWOULDBLOCK | WSAEINPROGRESS | WSAEALREADY => ErrorKind::WouldBlock,
        WSAECONNREFUSED => ErrorKind::ConnectionRefused,
        WSAECONNRESET | WSAENETRESET | WSAESHUTDOWN => ErrorKind::ConnectionReset,
        WSAECONNABORTED => ErrorKind::ConnectionAborted,
        WSAETIMEDOUT => ErrorKind::TimedOut,
        WSAEADDRINUSE => ErrorKind::AddrInUse,
        WSAEADDRNOTAVAIL => ErrorKind::AddrNotAvailable,
        WSAENETUNREACH | WSAEHOSTUNREACH | WSAENETDOWN | WSAEHOSTDOWN => ErrorKind::Unreachable,
        WSAEMFILE => ErrorKind::TooManyOpenFiles,
        WSAENOBUFS | ERROR_NOT_ENOUGH_MEMORY | ERROR_NO_SYSTEM_RESOURCES => ErrorKind::OutOfMemory,
        WSAHOST_NOT_FOUND | WSATRY_AGAIN | WSANO_RECOVERY | WSANO_DATA => ErrorKind::NameResolution,
        WSAEINVAL | WSAEFAULT | WSAEBADF | WSAENOTSOCK | ERROR_INVALID_PARAMETER => {
            ErrorKind::InvalidInput
        }
        WSAEACCES => ErrorKind::PermissionDenied,
        WSAEAFNOSUPPORT | WSAEPFNOSUPPORT | WSAEOPNOTSUPP | WSAEPROTONOSUPPORT
        | WSAESOCKTNOSUPPORT => ErrorKind::Unsupported,
        _ => ErrorKind::Other,
    }
}

/// The Winsock code of an `NTSTATUS` that an AFD poll reports for its socket (why a connect
/// failed, with `AFD_POLL_CONNECT_FAIL`; why the connection ended, with `AFD_POLL_ABORT`), as
/// Winsock itself translates them; `default` for 0 or any other status.
pub(crate) fn wsa_of_status(status: i32, default: i32) -> i32 {
    // NTSTATUS values are defined as u32 bit patterns; compared as such.
    match status as u32 {
        0xC000_00B5 => code::WSAETIMEDOUT,    // STATUS_IO_TIMEOUT
        0xC000_023C => code::WSAENETUNREACH,  // STATUS_NETWORK_UNREACHABLE
        0xC000_023D => code::WSAEHOSTUNREACH, // STATUS_HOST_UNREACHABLE
        0xC000_023E => code::WSAENETUNREACH,  // STATUS_PROTOCOL_UNREACHABLE
        0xC000_023F => code::WSAECONNREFUSED, // STATUS_PORT_UNREACHABLE
        0xC000_0236 => code::WSAECONNREFUSED, // STATUS_CONNECTION_REFUSED
        0xC000_020D => code::WSAECONNRESET,   // STATUS_CONNECTION_RESET
        0xC000_020C => code::WSAECONNRESET,   // STATUS_CONNECTION_DISCONNECTED
        0xC000_0241 => code::WSAECONNABORTED, // STATUS_CONNECTION_ABORTED
        0xC000_009A => code::WSAENOBUFS,      // STATUS_INSUFFICIENT_RESOURCES
        _ => default,
    }
}

impl WindowsError {
    /// An error from a raw Winsock or Win32 code.
    pub fn from_raw(raw: i32) -> WindowsError {
        WindowsError {
            kind: kind_of(raw),
            code: raw,
        }
    }

    /// An error of `kind` with raw code `code` (0 when there is none).
    pub const fn new(kind: ErrorKind, code: i32) -> WindowsError {
        WindowsError { kind, code }
    }

    /// [`ErrorKind::Unsupported`], with `WSAEAFNOSUPPORT` as its code.
    pub(crate) const fn unsupported() -> WindowsError {
        WindowsError::new(ErrorKind::Unsupported, code::WSAEAFNOSUPPORT)
    }

    /// [`ErrorKind::InvalidInput`], with `WSAEINVAL` as its code.
    pub(crate) const fn invalid() -> WindowsError {
        WindowsError::new(ErrorKind::InvalidInput, code::WSAEINVAL)
    }

    /// The error of an accept: a failure of the pending connection alone (reset or aborted
    /// before it was taken, or a network error) is [`ErrorKind::ConnectionAborted`], on which
    /// core accepts the next one (the trait's contract).
    pub(crate) fn for_accept(self) -> WindowsError {
        use code::*;
        match self.code {
            WSAECONNRESET | WSAENETDOWN | WSAENETUNREACH | WSAEHOSTUNREACH | WSAENETRESET
            | WSAETIMEDOUT => WindowsError::new(ErrorKind::ConnectionAborted, self.code),
            _ => self,
        }
    }
}

impl ShimError for WindowsError {
    fn kind(&self) -> ErrorKind {
        self.kind
    }
    fn raw_os_error(&self) -> i32 {
        self.code
    }
}

impl fmt::Debug for WindowsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WindowsError({:?}, os error {})", self.kind, self.code)
    }
}

impl fmt::Display for WindowsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} (os error {})", self.kind, self.code)
    }
}

impl std::error::Error for WindowsError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn winsock_codes_have_their_kinds() {
        // https://learn.microsoft.com/windows/win32/winsock/windows-sockets-error-codes-2
        let table = [
            (10035, ErrorKind::WouldBlock),        // WSAEWOULDBLOCK
            (10061, ErrorKind::ConnectionRefused), // WSAECONNREFUSED
            (10054, ErrorKind::ConnectionReset),   // WSAECONNRESET
            (10053, ErrorKind::ConnectionAborted), // WSAECONNABORTED
            (10060, ErrorKind::TimedOut),          // WSAETIMEDOUT
            (10048, ErrorKind::AddrInUse),         // WSAEADDRINUSE
            (10049, ErrorKind::AddrNotAvailable),  // WSAEADDRNOTAVAIL
            (10065, ErrorKind::Unreachable),       // WSAEHOSTUNREACH
            (10024, ErrorKind::TooManyOpenFiles),  // WSAEMFILE
            (10055, ErrorKind::OutOfMemory),       // WSAENOBUFS
            (11001, ErrorKind::NameResolution),    // WSAHOST_NOT_FOUND
            (10047, ErrorKind::Unsupported),       // WSAEAFNOSUPPORT
            (10013, ErrorKind::PermissionDenied),  // WSAEACCES
            (10038, ErrorKind::InvalidInput),      // WSAENOTSOCK
            (12345, ErrorKind::Other),
        ];
        for (raw, kind) in table {
            let e = WindowsError::from_raw(raw);
            assert_eq!((e.kind(), e.raw_os_error()), (kind, raw), "code {raw}");
        }
    }

    #[test]
    fn a_failed_pending_connection_is_aborted_for_accept() {
        let reset = WindowsError::from_raw(code::WSAECONNRESET).for_accept();
        assert_eq!(reset.kind(), ErrorKind::ConnectionAborted);
        assert_eq!(reset.raw_os_error(), code::WSAECONNRESET);
        let emfile = WindowsError::from_raw(code::WSAEMFILE).for_accept();
        assert_eq!(emfile.kind(), ErrorKind::TooManyOpenFiles);
    }

    #[test]
    fn poll_statuses_become_winsock_codes() {
        // ntstatus.h values.
        let refused = code::WSAECONNREFUSED;
        let table = [
            (0xC000_0236_u32, code::WSAECONNREFUSED), // STATUS_CONNECTION_REFUSED
            (0xC000_00B5, code::WSAETIMEDOUT),        // STATUS_IO_TIMEOUT
            (0xC000_023D, code::WSAEHOSTUNREACH),     // STATUS_HOST_UNREACHABLE
            (0xC000_023C, code::WSAENETUNREACH),      // STATUS_NETWORK_UNREACHABLE
            (0xC000_020C, code::WSAECONNRESET),       // STATUS_CONNECTION_DISCONNECTED
            (0xC000_020D, code::WSAECONNRESET),       // STATUS_CONNECTION_RESET
            (0xC000_0241, code::WSAECONNABORTED),     // STATUS_CONNECTION_ABORTED
            (0xC000_0001, refused),                   // anything else: the default
            (0, refused),
        ];
        for (status, wsa) in table {
            assert_eq!(wsa_of_status(status as i32, refused), wsa, "{status:#x}");
        }
        assert_eq!(wsa_of_status(0, code::WSAECONNRESET), code::WSAECONNRESET);
    }
}
