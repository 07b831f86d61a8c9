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

/// Why `connect` or `adopt_accepted` failed at once. Network failures of a connect are not
/// errors here: they arrive through `on_connect_error`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ConnectError {
    /// The context handle is stale or was never valid.
    InvalidContext,
    /// No free socket slot.
    Capacity,
    /// The OS refused to prepare or register an adopted descriptor.
    Os(OsError),
}
display!(ConnectError,
    ConnectError::InvalidContext => |f: &mut fmt::Formatter<'_>| f.write_str("invalid context"),
    ConnectError::Capacity => |f: &mut fmt::Formatter<'_>| f.write_str("no free socket slot"),
    ConnectError::Os(e) => |f: &mut fmt::Formatter<'_>| write!(f, "adopt failed: {e}"),
);

/// Why a poll operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
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
