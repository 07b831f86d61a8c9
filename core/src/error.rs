//! Small error enums, one per kind of operation.

use core::fmt;

use crate::shim::OsError;

macro_rules! display {
    ($t:ty, $($pat:pat => $msg:expr),+ $(,)?) => {
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self { $($pat => $msg(f)),+ }
            }
        }
        impl core::error::Error for $t {}
    };
}

/// The arena for this kind of object is full (and its storage cannot grow).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct CapacityError;
display!(CapacityError, CapacityError => |f: &mut fmt::Formatter<'_>| f.write_str("capacity exhausted"));

/// Why a context operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum ContextError {
    /// The context handle is stale or was never valid.
    InvalidContext,
    /// No free context slot.
    Capacity,
    /// The context still has sockets or listen sockets.
    Busy,
}
display!(ContextError,
    ContextError::InvalidContext => |f: &mut fmt::Formatter<'_>| f.write_str("invalid context"),
    ContextError::Capacity => |f: &mut fmt::Formatter<'_>| f.write_str("no free context slot"),
    ContextError::Busy => |f: &mut fmt::Formatter<'_>| f.write_str("context still has sockets"),
);

/// Why `listen` failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum ListenError {
    /// The context handle is stale or was never valid.
    InvalidContext,
    /// No free listen-socket slot.
    Capacity,
    /// The OS refused (address in use, path too long, ...).
    Os(OsError),
}
display!(ListenError,
    ListenError::InvalidContext => |f: &mut fmt::Formatter<'_>| f.write_str("invalid context"),
    ListenError::Capacity => |f: &mut fmt::Formatter<'_>| f.write_str("no free listen-socket slot"),
    ListenError::Os(e) => |f: &mut fmt::Formatter<'_>| write!(f, "listen failed: {e}"),
);

/// Why `connect` failed at once. Network failures of a connect are not errors here: they
/// arrive through `on_connect_error`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum ConnectError {
    /// The context handle is stale or was never valid.
    InvalidContext,
    /// No free socket slot.
    Capacity,
}
display!(ConnectError,
    ConnectError::InvalidContext => |f: &mut fmt::Formatter<'_>| f.write_str("invalid context"),
    ConnectError::Capacity => |f: &mut fmt::Formatter<'_>| f.write_str("no free socket slot"),
);

/// Why `adopt_accepted` failed (the descriptor comes back in a [`WithFd`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum AdoptError {
    /// The context handle is stale or was never valid.
    InvalidContext,
    /// No free socket slot.
    Capacity,
    /// The OS refused to prepare or register the descriptor (e.g. it is not a socket).
    Os(OsError),
}
display!(AdoptError,
    AdoptError::InvalidContext => |f: &mut fmt::Formatter<'_>| f.write_str("invalid context"),
    AdoptError::Capacity => |f: &mut fmt::Formatter<'_>| f.write_str("no free socket slot"),
    AdoptError::Os(e) => |f: &mut fmt::Formatter<'_>| write!(f, "adopting the descriptor failed: {e}"),
);

/// A failed call's error together with the descriptor it was given, handed back so it is
/// neither lost nor leaked: the caller owns it again (like std's `IntoInnerError`).
#[derive(Debug, PartialEq, Eq)]
pub struct WithFd<E, F> {
    /// Why the call failed.
    pub error: E,
    /// The descriptor the call took, returned to its owner.
    pub fd: F,
}

impl<E, F> WithFd<E, F> {
    /// The error and the descriptor.
    pub fn into_parts(self) -> (E, F) {
        (self.error, self.fd)
    }
    /// The descriptor, dropping the error.
    pub fn into_fd(self) -> F {
        self.fd
    }
}

impl<E: fmt::Display, F> fmt::Display for WithFd<E, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.error.fmt(f)
    }
}

/// Displays as the error it carries (its `source` is that error's source, not the error itself,
/// so a report does not print the message twice).
impl<E: core::error::Error, F: fmt::Debug> core::error::Error for WithFd<E, F> {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        self.error.source()
    }
}

/// Why a poll operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum PollError {
    /// The poll handle is stale or was never valid.
    InvalidHandle,
    /// `poll_init` was not called.
    NotInitialized,
    /// The poll is started; stop it first.
    Started,
    /// The poller refused.
    Os(OsError),
}
display!(PollError,
    PollError::InvalidHandle => |f: &mut fmt::Formatter<'_>| f.write_str("invalid poll"),
    PollError::NotInitialized => |f: &mut fmt::Formatter<'_>| f.write_str("poll has no descriptor"),
    PollError::Started => |f: &mut fmt::Formatter<'_>| f.write_str("poll is started"),
    PollError::Os(e) => |f: &mut fmt::Formatter<'_>| write!(f, "poller failed: {e}"),
);
