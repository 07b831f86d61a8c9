//! # usockets-shim-unix
//!
//! The socket plumbing usockets' Unix shims (`usockets-shim-linux` on epoll,
//! `usockets-shim-bsd` on kqueue) share: one gateway to libc ([`sys`]), errors ([`UnixError`]),
//! addresses ([`addr`]) and non-blocking socket calls ([`net`]), with the differences between
//! Linux, the BSDs and Apple systems kept here, each behind a `cfg`:
//!
//! * sockets are made non-blocking and close-on-exec with `SOCK_NONBLOCK | SOCK_CLOEXEC` (and
//!   `accept4`), except on Apple systems, which have neither: `fcntl` right after;
//! * writes never raise `SIGPIPE`: `MSG_NOSIGNAL`, or on Apple systems `SO_NOSIGPIPE` set on
//!   every socket;
//! * `send`'s "more is coming" hint is `MSG_MORE` on Linux; the BSDs have none, so their shim
//!   holds data back with `TCP_NOPUSH` itself;
//! * the BSDs' socket addresses lead with a length byte (`sin_len`, `sun_len`); their
//!   `sun_path` is 104 bytes (Linux: 108); only Linux has abstract unix names.
//!
//! It is not an `OsShim`: the poller, the waker and the clock are each shim's own. Its API
//! serves those two crates and may change with them.

#![cfg(unix)]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]
#![warn(
    clippy::undocumented_unsafe_blocks,
    clippy::multiple_unsafe_ops_per_block
)]

pub mod accept;
pub mod addr;
pub mod error;
pub mod fdset;
pub mod net;
pub mod stats;
pub mod sys;
pub mod targets;

pub use crate::addr::UNIX_PATH_MAX;
pub use crate::error::UnixError;
#[cfg(feature = "stats")]
pub use crate::stats::SyscallStats;
