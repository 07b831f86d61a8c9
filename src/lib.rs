//! # usockets
//!
//! uSockets in Rust with the platform's shim chosen for you: re-exports [`usockets_core`]'s API
//! (with its `alloc` feature: [`GrowingStorage`]) and adds what a `std` program wants — a
//! ready-made [`Config`] ([`App`]) and [`new_loop`].
//!
//! ```no_run
//! use usockets::{
//!     App, AppLoop, ContextCallbacks, Cx, ListenOptions, ListenTarget, LoopCallbacks, RecvBuf,
//!     Settings, SocketId,
//! };
//!
//! /// Socket ext: the bytes the OS has not taken yet.
//! type Echo = App<(), (), Vec<u8>>;
//!
//! fn on_data(cx: &mut Cx<Echo>, s: SocketId, data: &mut RecvBuf<'_>) {
//!     send_or_keep(cx, s, data);
//! }
//!
//! fn on_writable(cx: &mut Cx<Echo>, s: SocketId) {
//!     let pending = cx.socket_ext_mut(s).map(std::mem::take).unwrap_or_default();
//!     send_or_keep(cx, s, &pending);
//! }
//!
//! /// Writes `data` after whatever is still pending. There is no write queue in the library:
//! /// what the OS does not take stays here, reading pauses until `on_writable` drains it, so a
//! /// client that never reads costs bounded memory.
//! fn send_or_keep(cx: &mut Cx<Echo>, s: SocketId, data: &[u8]) {
//!     let backlogged = cx.socket_ext(s).is_some_and(|p| !p.is_empty());
//!     let n = if backlogged { 0 } else { cx.write(s, data, false) };
//!     if n < data.len() {
//!         if let Some(pending) = cx.socket_ext_mut(s) {
//!             pending.extend_from_slice(&data[n..]);
//!         }
//!         cx.pause(s);
//!     } else {
//!         cx.resume(s);
//!     }
//! }
//!
//! let callbacks = ContextCallbacks {
//!     on_data: Some(on_data),
//!     on_writable: Some(on_writable),
//!     ..ContextCallbacks::default()
//! };
//! let mut l: AppLoop<(), (), Vec<u8>> =
//!     usockets::new_loop((), LoopCallbacks::default(), Settings::default()).unwrap();
//! let ctx = l.context_create((), callbacks).unwrap();
//! let any = ListenTarget::Host { host: None, port: 3000 };
//! l.listen(ctx, any, ListenOptions::default(), Vec::new).unwrap();
//! l.run().unwrap();
//! ```
//!
//! # Descriptors
//!
//! Descriptors are std's types: the loop owns each socket's [`OwnedFd`](std::os::fd::OwnedFd)
//! and lends it as `&OwnedFd` ([`Cx::socket_fd`], [`Cx::listen_fd`], [`Cx::poll_fd`]), which
//! gives a `BorrowedFd` through `AsFd` and the number through `AsRawFd`.
//! [`Cx::adopt_accepted`] and [`Cx::poll_init`] take an `OwnedFd` (convert a `TcpStream` or
//! a pipe with `OwnedFd::from`); a failed adoption hands it back, [`Cx::poll_free`] gives it
//! back, and `on_pre_open` may [`take`](Accepted::take) an accepted one. Safe code never
//! closes or reuses a descriptor the loop owns, and dropping the loop closes them all.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod app;

pub use app::{new_loop, App, AppLoop, NewLoopError, RECV_BUFFER_LENGTH};
pub use usockets_core::*;

/// The shim of this platform.
#[cfg(target_os = "linux")]
pub type DefaultShim = usockets_shim_linux::LinuxShim;

/// The platform shim crate, for its extras (e.g. syscall statistics).
#[cfg(target_os = "linux")]
pub use usockets_shim_linux as platform;

#[cfg(not(target_os = "linux"))]
compile_error!("usockets: no shim for this platform yet (BSD and Windows shims are planned)");

/// The examples of the crate's README, run as doctests so they cannot go stale.
#[cfg(doctest)]
#[doc = include_str!("../README.crate.md")]
struct ReadmeDoctests;
