//! # usockets-shim-bsd
//!
//! The [`OsShim`](usockets_core::OsShim) of FreeBSD, macOS (and Apple's other systems),
//! NetBSD, OpenBSD and DragonFly for `usockets-core`: level-triggered kqueue, an
//! `EVFILT_USER` (or pipe) waker, a `CLOCK_MONOTONIC` clock and non-blocking BSD sockets,
//! through `libc`. The socket calls are the ones the Linux shim makes too
//! (`usockets-shim-unix`), with the BSD and Apple differences there.
//!
//! **Compile-checked, not run, by this project's CI**: no BSD or macOS machine runs here.
//! The kqueue logic (change lists, receipts, kevents → core events) is pure and unit-tested
//! on every host; the conformance suite over this shim (`tests/conformance.rs`) is
//! compiled for every target and runs with `cargo test -p usockets-shim-bsd` on a BSD or
//! macOS machine. Please run it there and report what fails.
//!
//! # How it meets core's readiness contract
//!
//! * A descriptor carries `EVFILT_READ` and `EVFILT_WRITE` exactly as core's interest says:
//!   each change adds (`EV_ADD | EV_ENABLE`) the wanted filters and deletes the others in one
//!   `kevent` call, so it needs no memory of the previous interest, and a descriptor never
//!   carries a filter it may refuse (a listening socket, a pipe's read end). Never
//!   `EV_CLEAR`: the filters are level-triggered, as core requires.
//! * Every change goes with `EV_RECEIPT`, and each receipt's error is checked and returned
//!   (`ENOENT` for deleting a filter that was not there excepted).
//! * `EV_EOF` on the read filter (the peer's FIN) is **readable**: pending bytes are read
//!   first, then `recv` returns 0 and core runs `on_end`; the write side stays usable. (The C
//!   library takes `EV_EOF` for an error, so on these systems a half-close never reaches its
//!   `on_end` and unread bytes can be lost.) A socket error reported with it (`fflags`) is an
//!   error event. The read and write kevents of one descriptor are merged into one core event.
//! * The waker triggers an `EVFILT_USER` event where the kernel has one (registration is
//!   tried; NetBSD before 10 and older OpenBSD refuse it) and writes to a pipe otherwise.
//!
//! # `more` and `flush`
//!
//! The BSDs have no `MSG_MORE`. `send(.., more: true)` sets `TCP_NOPUSH` on the socket (once,
//! until the hint is withdrawn), so that the kernel holds back partial segments; after a send
//! without the hint, and on [`flush`](usockets_core::OsShim::flush), it is cleared, which
//! sends what was held (FreeBSD, OpenBSD and DragonFly push on the clear). The hint is
//! ignored where that does not hold: NetBSD has no `TCP_NOPUSH`, and Apple's kernel does not
//! push when it is cleared (held bytes would wait for the next send or a timer).
//!
//! # Limits
//!
//! * 64-bit targets only: core's tokens travel in kevent's pointer-sized `udata`.
//! * `SO_REUSEPORT` (set unless a port is exclusive) lets several sockets bind a port, but the
//!   BSD kernels do not balance connections across them as Linux does.
//! * Taking over a stale unix socket path probes it with a connect: a BSD kernel refuses a
//!   connect to a live listener whose backlog is full with `ECONNREFUSED` (Linux returns
//!   `EAGAIN`), so a live but overloaded server's path may be taken over.
//!
//! # Descriptors, errors, names, listening, the accept storm
//!
//! As on Linux (see `usockets-shim-linux`): owned descriptors (`Fd` is std's `OwnedFd`),
//! close-on-exec and non-blocking (`SOCK_CLOEXEC | SOCK_NONBLOCK`, or `fcntl` on Apple
//! systems, which also get `SO_NOSIGPIPE` since they have no `MSG_NOSIGNAL`), `EINTR`
//! retried, blocking `getaddrinfo` for host names, dual-stack wildcard listeners, unix
//! socket files with a mode and stale-file recovery (no abstract names), and connections
//! shed with a reserve descriptor when the process runs out of them.

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]
#![warn(
    clippy::undocumented_unsafe_blocks,
    clippy::multiple_unsafe_ops_per_block
)]

// The kqueue logic is pure: it builds and is tested on every host. Outside the kqueue
// systems nothing calls it.
#[cfg_attr(not(kqueue), allow(dead_code))]
mod kev;

#[cfg(kqueue)]
mod kqueue;
#[cfg(kqueue)]
mod shim;
#[cfg(kqueue)]
mod waker;

// Core's tokens are 64 bits and travel in kevent's pointer-sized `udata`.
#[cfg(all(kqueue, not(target_pointer_width = "64")))]
compile_error!(
    "usockets-shim-bsd keeps core's 64-bit tokens in kevent's udata: 32-bit targets are not supported"
);

#[cfg(kqueue)]
pub use crate::shim::{BsdError, BsdShim, Fd};
#[cfg(kqueue)]
pub use crate::waker::BsdWaker;
#[cfg(all(kqueue, feature = "stats"))]
pub use usockets_shim_unix::SyscallStats;
#[cfg(kqueue)]
pub use usockets_shim_unix::UNIX_PATH_MAX;
