//! # usockets
//!
//! uSockets in Rust with the platform's shim chosen for you: re-exports [`usockets_core`]'s API
//! (with its `alloc` feature: [`GrowingStorage`]) and adds what a `std` program wants — a
//! ready-made [`Config`] ([`App`]), [`new_loop`], and [`Outbox`], the bounded write queue a
//! socket needs because the library has none.
//!
//! ```no_run
//! use usockets::{
//!     App, AppLoop, ContextCallbacks, Cx, ListenOptions, ListenTarget, LoopCallbacks, Outbox,
//!     RecvBuf, Settings, SocketId,
//! };
//!
//! /// Socket ext: the bytes the OS has not taken yet. There is no write queue in the library;
//! /// an [`Outbox`] keeps them in order, pauses reading while too many wait (so a client that
//! /// never reads costs bounded memory) and closes after the peer's FIN only once all is sent.
//! type Echo = App<(), (), Outbox>;
//!
//! fn on_data(cx: &mut Cx<Echo>, s: SocketId, data: &mut RecvBuf<'_>) {
//!     Outbox::write(cx, s, data);
//! }
//!
//! fn on_writable(cx: &mut Cx<Echo>, s: SocketId) {
//!     Outbox::flush(cx, s);
//! }
//!
//! fn on_end(cx: &mut Cx<Echo>, s: SocketId) {
//!     Outbox::end(cx, s);
//! }
//!
//! let callbacks = ContextCallbacks {
//!     on_data: Some(on_data),
//!     on_writable: Some(on_writable),
//!     on_end: Some(on_end),
//!     ..ContextCallbacks::default()
//! };
//! let mut l: AppLoop<(), (), Outbox> =
//!     usockets::new_loop((), LoopCallbacks::default(), Settings::default()).unwrap();
//! let ctx = l.context_create((), callbacks).unwrap();
//! let any = ListenTarget::Host { host: None, port: 3000 };
//! l.listen(ctx, any, ListenOptions::default(), Outbox::new).unwrap();
//! l.run().unwrap();
//! ```
//!
//! # Shims
//!
//! [`App`] and [`new_loop`] use the platform's shim, [`DefaultShim`] (epoll on Linux, kqueue
//! on the BSDs and Apple systems, an I/O completion port on Windows). The shim is `App`'s last
//! type parameter: on Linux, `uring::UringShim` runs the same program on io_uring
//! (`App<L, C, S, T, P, uring::UringShim>` with [`new_loop_on`], or [`new_loop_with`] for a
//! shim made by hand). Code generic over the shim ([`PlatformShim`]) is compiled once per
//! shim, so a program that picks at run time (`ShimChoice`, Linux) matches once at startup and
//! never dispatches per call.
//!
//! # Descriptors
//!
//! Descriptors are std's types: the loop owns each socket's `OwnedFd` (on Windows its
//! `OwnedSocket`) and lends it as `&OwnedFd` ([`Cx::socket_fd`], [`Cx::listen_fd`],
//! [`Cx::poll_fd`]), which gives a `BorrowedFd` through `AsFd` and the number through
//! `AsRawFd` (`BorrowedSocket`, `AsSocket` and `AsRawSocket` on Windows).
//! [`Cx::adopt_accepted`] and [`Cx::poll_init`] take an `OwnedFd` (convert a `TcpStream` or
//! a pipe with `OwnedFd::from`); a failed adoption hands it back, [`Cx::poll_free`] gives it
//! back, and `on_pre_open` may [`take`](Accepted::take) an accepted one. Safe code never
//! closes or reuses a descriptor the loop owns, and dropping the loop closes them all.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod app;
pub mod outbox;

pub use app::{
    new_loop, new_loop_on, new_loop_with, App, AppLoop, NewLoopError, RECV_BUFFER_LENGTH,
};
pub use outbox::{HasOutbox, Outbox};

pub use usockets_core::*;
/// TLS on rustls (the `usockets-tls` crate, feature `tls`): a `TlsContext` makes a context's
/// sockets speak TLS, `tls::info` tells what a session negotiated.
#[cfg(feature = "tls")]
pub use usockets_tls as tls;

/// The shim of this platform.
#[cfg(target_os = "linux")]
pub type DefaultShim = usockets_shim_linux::LinuxShim;

/// The platform shim crate, for its extras (e.g. syscall statistics).
#[cfg(target_os = "linux")]
pub use usockets_shim_linux as platform;

/// The io_uring shim (the `usockets-shim-uring` crate), **Linux only**: `uring::UringShim`
/// runs an [`App`] on io_uring instead of epoll (`App<L, C, S, T, P, uring::UringShim>`, built
/// by [`new_loop_on`] or, with a `UringConfig`, [`new_loop_with`]). Its `new` fails with
/// kind `Unsupported` where io_uring is missing, disabled or older than Linux 6.0.
/// [`ShimChoice`] picks between it and epoll at run time.
#[cfg(target_os = "linux")]
pub use usockets_shim_uring as uring;

/// Gives each item the `cfg` of the kqueue systems (those of `usockets-shim-bsd`, as the
/// root `Cargo.toml` lists them for its dependency), written once.
macro_rules! on_kqueue_systems {
    ($($item:item)*) => {
        $(
            #[cfg(any(
                target_os = "freebsd",
                target_os = "macos",
                target_os = "ios",
                target_os = "tvos",
                target_os = "watchos",
                target_os = "visionos",
                target_os = "netbsd",
                target_os = "openbsd",
                target_os = "dragonfly"
            ))]
            $item
        )*
    };
}

on_kqueue_systems! {
    /// The shim of this platform.
    pub type DefaultShim = usockets_shim_bsd::BsdShim;

    /// The platform shim crate, for its extras (e.g. syscall statistics).
    pub use usockets_shim_bsd as platform;
}

mod choice;
pub use choice::PlatformShim;
#[cfg(target_os = "linux")]
pub use choice::{ShimChoice, UnknownShim};

/// The shim of this platform.
#[cfg(windows)]
pub type DefaultShim = usockets_shim_windows::WindowsShim;

/// The platform shim crate, for its extras (e.g. whether unix sockets are available).
#[cfg(windows)]
pub use usockets_shim_windows as platform;

#[cfg(not(any(
    windows,
    target_os = "linux",
    target_os = "freebsd",
    target_os = "macos",
    target_os = "ios",
    target_os = "tvos",
    target_os = "watchos",
    target_os = "visionos",
    target_os = "netbsd",
    target_os = "openbsd",
    target_os = "dragonfly"
)))]
compile_error!(
    "usockets: no shim for this platform (Linux, the BSDs, Apple systems and Windows have one)"
);

/// The examples of the crate's README, run as doctests so they cannot go stale.
#[cfg(doctest)]
#[doc = include_str!("../README.crate.md")]
struct ReadmeDoctests;
