//! # usockets-hammer
//!
//! The hammer: one randomised scenario and its invariants, generic over the OS shim like the
//! conformance suite, so the same code hammers the simulated OS and real sockets.
//!
//! One loop runs a server, a client and a child context (of the server), each with its own
//! context ext kind. Clients connect in chains, write a per-client byte stream the server echoes
//! back, and the client checks every byte. At the end of every socket event a random operation
//! runs: close with a code and reason, adoption into another context, a write of random length
//! (plain, gathered or corked), shutdown, a timeout with a wakeup, a long timeout, a pause that
//! a timeout resumes, a self-closing timer, or aborting another client's pending connect with
//! `close_connecting`. Some connects are aimed at a closed port, some are aborted at once.
//!
//! ## Invariants
//!
//! Checked in every callback (a violation panics):
//! * the socket is open, its ext is intact and its kind is its context's; `on_open` runs once,
//!   `on_close` once, and only after `on_open`; no `on_connect_error` after `on_open`;
//! * a connect to a closed port never opens; `on_open` and `on_connect_error` come only for a
//!   pending connect, never for one aborted with `close_connecting` (also when its outcome was
//!   already on its way), and an aborted socket reads as closed at once, its handle then checked
//!   like any released one;
//! * `on_data` is never empty, has `RECV_PADDING` writable bytes on each side, and the echo
//!   matches the stream byte for byte and never runs ahead of what was sent; nothing is read
//!   while paused;
//! * close codes and reasons pass through; the library's own closes pass `(0, None)`;
//! * timers never fire early;
//! * after each iteration, the handles of the last 64 released sockets are rejected.
//!
//! Checked at the end ([`Outcome::problems`]): every client connect resolved once (opened,
//! failed or aborted), opens == closes on both sides, only the contexts' slots remain and every
//! slot is free once they are; the simulated driver adds no descriptor left open.
//!
//! ## Drivers
//!
//! * [`sim::run_seed`]: by seed on the simulated OS with every fault kind (the seed tests in
//!   `hammer/tests/seeds.rs`);
//! * [`sim::run_bytes`]: from raw bytes, by proptest (`hammer/tests/bytes.rs`) and the `hammer`
//!   fuzz target (`fuzz/`);
//! * [`run`] on any shim: `examples/hammer.rs` runs it on real loopback sockets.

#![forbid(unsafe_code)]

mod callbacks;
mod client;
mod dice;
mod ops;
mod run;
pub mod sim;
mod world;

pub use dice::Dice;
pub use run::{run, Outcome};
pub use world::{Conn, Counts, Hammer, Kind, Profile, Role, Ticket, World};
