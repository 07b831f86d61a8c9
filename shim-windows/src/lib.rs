//! # usockets-shim-windows
//!
//! The Windows [`OsShim`](usockets_core::OsShim) for `usockets-core`: an I/O completion port,
//! AFD poll requests for readiness, a `PostQueuedCompletionStatus` waker, a
//! `QueryPerformanceCounter` clock (std's `Instant`) and non-blocking Winsock sockets,
//! through `windows-sys`.
//!
//! The C library reaches Windows only through libuv, where its client sockets are broken
//! (connect blocks, a refused connection is reported as opened). Here connect is
//! non-blocking and a refused or unreachable peer reaches `on_connect_error` with the real
//! Winsock code (`WSAECONNREFUSED`, 10061), never `on_open`.
//!
//! Run by this project's CI under Wine (see `wine/README.md` at the repository's root), and
//! compile-checked for `x86_64-pc-windows-msvc`.
//!
//! # How it meets core's readiness contract
//!
//! Core needs level-triggered readiness and keeps one shared receive buffer, so the shim
//! polls for readiness rather than posting overlapped reads: each registered socket has one
//! **AFD poll request** (`IOCTL_AFD_POLL` on a `\Device\Afd` handle associated with the
//! port, the request beneath `WSAPoll`, as wepoll, libuv and mio use it). A request is
//! one-shot: when it completes, its events go to core, and the next `wait` issues a new one
//! with the interest of that moment. While the condition holds (unread bytes, a pending
//! connection, room to write), the new request completes at once, so core sees the socket
//! on every wait, as with epoll. An interest change cancels the request in flight and issues
//! the new one when the cancellation completes. Errors (a reset, a failed connect) are
//! always polled for, whatever the interest.
//!
//! * Readable: data, a pending connection (listeners) or the peer's FIN (a half-close, read
//!   as 0 bytes and `on_end`). A reset is an error and a hang-up (and readable under readable
//!   interest, so core reads and closes with `WSAECONNRESET`).
//! * Writable: room to send, or a finished non-blocking connect. A failed connect is an
//!   error, and [`connect_result`](usockets_core::OsShim::connect_result) returns the code
//!   the poll reported (`SO_ERROR` is read and cleared too).
//!
//! # Memory the kernel writes
//!
//! A request's `IO_STATUS_BLOCK` and poll buffer live in a box per slot and belong to the
//! kernel until the request's completion is dequeued: a socket closed (or deregistered)
//! with a request in flight keeps its slot, as an orphan, until then, so a late completion
//! finds only its orphan and is dropped, and a slot is never reused under the kernel. The
//! shim's `Drop` cancels every request and drains the port before freeing anything.
//!
//! # Decisions
//!
//! * **Listening**: never `SO_REUSEADDR` (on Windows it lets another socket take over the
//!   port); `SO_EXCLUSIVEADDRUSE` with [`exclusive_port`](usockets_core::ListenOptions).
//!   A wildcard listener is one dual-stack IPv6 socket (`IPV6_V6ONLY` off), IPv4 only
//!   where there is no IPv6.
//! * **Unix sockets**: `AF_UNIX` where Windows has it (10 1803 and later;
//!   `WindowsShim::has_unix_sockets`); elsewhere `listen` and `connect` on a unix path
//!   fail with `Unsupported`. No permission bits (`unix_mode` is ignored; the file gets its
//!   directory's ACL).
//! * **`shutdown_read`** is emulated: reads see EOF from then on and the socket is readable
//!   while readable interest is set. `shutdown(SD_RECEIVE)` itself would reset the
//!   connection on Windows when more data arrives, and report nothing to a poll.
//! * **`more`** is ignored: Winsock has no `MSG_MORE`, and toggling Nagle per send would cost
//!   a call each time.
//! * **Names** resolve synchronously (`getaddrinfo`, through std), as on Unix.
//! * **Descriptors** are std's `OwnedSocket`, non-blocking and not inherited by child
//!   processes (`WSA_FLAG_NO_HANDLE_INHERIT`, and `SetHandleInformation` on accepted ones).
//! * **Running out of sockets** (`WSAEMFILE`, `WSAENOBUFS`) is reported to core, which backs
//!   the listener off; there is no descriptor limit to shed connections against as on Unix.

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]
#![warn(
    clippy::undocumented_unsafe_blocks,
    clippy::multiple_unsafe_ops_per_block
)]

#[cfg_attr(not(windows), allow(dead_code))]
mod error;
// The AFD bits and the slot state machine are pure: they build and are tested on every
// host. Outside Windows nothing calls them.
#[cfg_attr(not(windows), allow(dead_code))]
mod readiness;
#[cfg_attr(not(windows), allow(dead_code))]
mod slots;

#[cfg(windows)]
mod addr;
#[cfg(windows)]
mod afd;
#[cfg(windows)]
mod net;
#[cfg(windows)]
mod port;
#[cfg(windows)]
mod shim;
#[cfg(windows)]
mod sys;

pub use crate::error::WindowsError;
#[cfg(windows)]
pub use crate::port::WindowsWaker;
#[cfg(windows)]
pub use crate::shim::{Fd, WindowsShim};
#[cfg(windows)]
pub use crate::sys::open_handles;
