//! # usockets-shim-smoltcp
//!
//! [`OsShim`](usockets_core::OsShim) over [smoltcp](https://docs.rs/smoltcp): usockets-core's
//! loop with no operating system underneath, for microcontrollers and custom runtimes.
//! `no_std`, no allocator, no `unsafe`: the embedder supplies the network device (any
//! `smoltcp::phy::Device`: a board's Ethernet MAC driver, a tunnel, the [`LoopbackDevice`]
//! here), the configured `Interface`, the memory of the sockets, and a [`Platform`] (a
//! millisecond clock and a way to sleep).
//!
//! ```ignore
//! static WAKE: WakeFlag = WakeFlag::new();
//! let mut device = LoopbackDevice::<16, 1500>::new();
//! let mut iface = Interface::new(Config::new(HardwareAddress::Ip), &mut device, now);
//! iface.update_ip_addrs(|a| a.push(IpCidr::new(Ipv4Address::new(127, 0, 0, 1).into(), 8)).unwrap());
//! let shim: SmolShim<_, _, 8> =
//!     SmolShim::new(device, iface, MyPlatform, &WAKE, storage, buffers, SmolConfig::new())?;
//! let mut lp = Loop::new(shim, storage_of_the_loop, Settings::default(), callbacks)?;
//! ```
//!
//! ## Where a BSD socket world does not fit, and what the shim does instead
//!
//! * **Accepting.** smoltcp has no listening socket that accepts: a listening TCP socket *is*
//!   the connection once a SYN arrives. A listener is therefore a pool of
//!   [`SmolConfig::listen_pool`] smoltcp sockets listening on its endpoint. A pool socket whose connection is
//!   established is handed over by `accept`; a free socket takes the place of one that took
//!   a SYN at once, between polls. A SYN that finds no pool socket listening (a burst bigger
//!   than the pool, or no free socket) is answered by smoltcp with a reset: the peer's connect
//!   is refused, where a BSD backlog would queue it. Half-open connections are capped by the
//!   `backlog` listen option and time out ([`HANDSHAKE_TIMEOUT_MS`]), so SYNs that never
//!   complete hold no socket for good.
//! * **Sockets share one budget.** Connections, pool sockets, and sockets closed by core but
//!   still closing in smoltcp (a FIN to finish, TIME-WAIT) all use the `N` smoltcp sockets
//!   given to [`SmolShim::new`]. A closed socket lingers in the shim, never in core: core's
//!   slot is free at once. It lingers at most [`SmolConfig::linger_ms`], then it is reset
//!   (data arriving after the close resets it at once, as on a BSD socket); a socket in
//!   TIME-WAIT is taken back when no socket is free. A connect fails with `TimedOut` after
//!   [`SmolConfig::connect_timeout_ms`].
//! * **Names.** Literal IPv4 and IPv6 addresses only; a host name fails with
//!   [`ErrorKind::Unsupported`](usockets_core::ErrorKind::Unsupported) (no DNS socket is polled;
//!   resolve before connecting, e.g. with smoltcp's DNS socket in your own code).
//! * **No equivalent.** Unix-domain sockets and `shutdown_read` are `Unsupported`. There is
//!   no foreign descriptor to adopt ([`SmolFd`] is made only by the shim), so `adopt` of one
//!   of the shim's own connections succeeds and does nothing.
//! * **Errors.** smoltcp does not say why a connection ended; the shim infers what a BSD
//!   socket reports: closed before it was established is a refused connect, closed without
//!   both FINs is a reset. Raw codes are Linux errno values.
//! * **Waiting.** `wait` polls the interface until it settles, reports readiness from each
//!   socket's state (level-triggered, as core requires), and while nothing is ready sleeps
//!   through [`Platform::idle`] until smoltcp's next timer, core's timeout or an interrupt
//!   (`WFI` on hardware).
//! * **Waking.** The waker raises a [`WakeFlag`] in a `static`; `idle` must return when it is
//!   raised from another context (see [`Platform::idle`]).
//! * **The interface while the loop runs.** Core lends a running loop's shim to no one, so
//!   DHCP, link checks and other sockets of the embedder run in [`Platform::after_poll`],
//!   which gets the interface and the socket set after every poll
//!   ([`SmolShim::add_socket`] adds a socket of your own).
//! * **The `more` hint** of `send` is ignored; writes leave at the next poll.

#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod addr;
mod error;
mod loopback;
mod platform;
mod shim;
mod slot;

pub use error::SmolError;
pub use loopback::LoopbackDevice;
pub use platform::{Platform, SmolWaker, WakeFlag};
pub use shim::{SmolConfig, SmolFd, SmolShim, HANDSHAKE_TIMEOUT_MS};
/// The smoltcp this shim is built on, for naming its types (`Interface`, `SocketStorage`, ...).
pub use smoltcp;
