//! # usockets-shim-sim
//!
//! A deterministic simulated operating system for `usockets-core`: an in-memory loopback
//! network, a virtual millisecond clock and seeded fault injection, behind core's
//! [`OsShim`](usockets_core::OsShim) trait.
//!
//! * [`SimNet`] is the network (a cheap, cloneable handle). Tests keep one handle and drive
//!   external peers with it ([`SimNet::peer_connect`], [`SimNet::peer_send`], ...); each loop
//!   gets its own [`SimShim`] from [`SimNet::shim`].
//! * Readiness is **level-triggered**, exactly as core's readiness contract asks: every
//!   [`wait`](usockets_core::OsShim::wait) reports every registered descriptor that is ready,
//!   in ascending descriptor order (rotating after a truncated wait so no descriptor starves).
//! * Faults ([`Faults`]) are drawn from a [`FaultSource`]: a seeded RNG ([`SeededRng`]), raw
//!   fuzzer bytes ([`ByteSource`]) or nothing ([`NoFaults`]). A fault kind whose probability is
//!   0 never consumes a decision, so [`Faults::NONE`] is perfectly deterministic.
//! * Time never passes by itself: [`SimNet::advance`] moves it, and a `wait` with a timeout
//!   jumps it forward when nothing is ready.
//!
//! The same seed and the same sequence of calls always give the same results: all state lives
//! in ordered maps and is iterated in descriptor order.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod addr;
mod error;
mod fault;
mod fd;
mod net;
mod peer;
mod readiness;
mod shim;
mod stream;
mod waker;

pub use error::SimError;
pub use fault::{ByteSource, FaultCounts, FaultSource, Faults, NoFaults, SeededRng};
pub use fd::SimFd;
pub use net::{SimCall, SimNet, SyscallCounts};
pub use peer::PeerId;
pub use shim::SimShim;
pub use waker::SimWaker;

/// The examples of the crate's README, run as doctests so they cannot go stale.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
