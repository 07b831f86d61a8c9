//! # usockets-fuzz-harness
//!
//! The one harness behind the cargo-fuzz targets in `fuzz/` and the corpus replay test that
//! `cargo test` runs: it decodes an input into API calls and simulated-OS decisions, keeps a
//! reference model of every object, and checks invariants inside every callback and after
//! every step. A broken invariant panics (a crash to the fuzzer, a failure to the test).
//!
//! The input layout is in [`input`]; [`run`] runs one input for one [`Target`] and returns
//! what it reached ([`Report`]).
//!
//! ## Invariants checked
//!
//! * Exactly one `on_close` per socket that opened (and one at most for one whose connect
//!   failed: only if the application itself closes it inside `on_connect_error`, as in C).
//! * No callback for a closed or released socket; every callback's socket has the ext and the
//!   context the model expects (adoption moves it, and resets its timeouts).
//! * Bytes arrive in order and unaltered, each stream at one receiver only; when a receiver sees
//!   the sender's FIN, it has every byte the sender was told was written.
//! * `on_open` once; `on_writable` only after a short write; nothing read after `on_end`;
//!   `on_timeout` and timers never early, timers at most once per pass and never missed.
//! * Handles of released sockets, freed contexts, closed timers and freed polls are rejected.
//! * Arena occupancy and `is_alive` match the model at every step; after draining the loop
//!   every slot is free and no descriptor is left open.

#![forbid(unsafe_code)]

mod actions;
mod callbacks;
mod checks;
mod config;
mod connections;
mod contexts;
mod coverage;
mod drain;
pub mod input;
mod loop_callbacks;
mod memory;
mod model;
mod ops;
mod peers;
mod polls;
mod recycle;
mod run;
mod slots;
mod socket_actions;
mod streams;
mod target;
mod timers;
mod tls_server;
mod tls_session;

pub use config::H;
pub use coverage::{fault_kinds, Report, Stats};
pub use memory::{Buf, Memory};
pub use model::World;
pub use run::run;
pub use target::Target;
pub use tls_server::run_tls_server;
pub use tls_session::{run_tls_session, SessionReport};
