//! # usockets-core
//!
//! The heart of a Rust re-implementation of uSockets: the event loop, timers, polls, socket
//! contexts, listen sockets and socket state machines, as pure state machines over fixed arena
//! storage. `no_std`, no allocation, `forbid(unsafe_code)`, no OS: everything the OS does comes through the
//! [`OsShim`] trait (see [`shim`] for the readiness contract a shim author must meet).
//!
//! ## Shape
//!
//! * One type parameter, [`Config`], names the shim, the ext (user data) types and the storage.
//! * [`Loop`] owns everything; it dereferences to [`Cx`], the API every callback receives.
//!   Callbacks are plain `fn` pointers per context (as in C) and may call any API re-entrantly.
//! * Objects are named by generational handles ([`SocketId`], [`ContextId`], ...). A handle to a
//!   freed slot is rejected (`None`/error), never aliased. A closed socket stays readable
//!   (`is_closed() == Some(true)`, ext intact) until the end of the iteration; then its slot is
//!   released and [`LoopCallbacks::released`] reports it.
//! * Memory is handed in once, as the [`Storage`] the [`Config`] names: one arena of [`Slot`]s
//!   per kind of object, a receive buffer and an event buffer. [`FixedStorage`] is arrays sized
//!   by const generics, built by a `const fn`, so it can live in a `static` (e.g. through
//!   `static_cell`) and a loop's memory is known at link time; with the `alloc` feature,
//!   `GrowingStorage` grows each arena a chunk at a time up to a maximum and gives back chunks
//!   that empty.
//! * Descriptors have one owner ([`OsShim::Fd`] is owned, like std's `OwnedFd`): the loop owns
//!   those of its sockets, listen sockets and polls, lends them as `&Fd` ([`Cx::socket_fd`]),
//!   takes them owned ([`Cx::adopt_accepted`], [`Cx::poll_init`]) and gives them back
//!   ([`WithFd`] on failure, [`Cx::poll_free`], [`Accepted::take`] in `on_pre_open`). The
//!   shim is lent only shared ([`Cx::shim`]). So safe code never closes, reads or registers a
//!   descriptor it does not own, nor one closed and reused (std's I/O-safety rule).
//! * Dropping a [`Loop`] closes every descriptor it owns, drops every ext and runs no callback;
//!   [`Loop::into_descriptors`] hands the descriptors out instead.
//!
//! ## The C API, mapped
//!
//! | C function | Rust |
//! |---|---|
//! | `us_create_loop` | [`Loop::new`] (with [`LoopCallbacks`] `wakeup`/`pre`/`post` and the loop ext) |
//! | `us_loop_free` | drop the [`Loop`] (closes what it owns; the C ABI uses [`Loop::into_descriptors`] to close nothing, as C does) |
//! | `us_loop_ext` | [`Cx::ext`], [`Cx::ext_mut`] |
//! | `us_loop_run` | [`Loop::run`] |
//! | `us_wakeup_loop` | [`Cx::waker`] then [`Wake::wake`] (thread-safe), or [`Cx::wakeup`] |
//! | `us_loop_integrate` | [`Cx::integrate`] |
//! | `us_loop_iteration_number` | [`Cx::iteration_number`] |
//! | (foreign-loop driving) | [`Loop::run_once`], [`Cx::next_deadline`] |
//! | `us_create_socket_context` | [`Cx::context_create`] |
//! | `us_create_child_socket_context` | [`Cx::context_create_child`] |
//! | `us_socket_context_free` | [`Cx::context_free`] |
//! | `us_socket_context_ext` | [`Cx::context_ext`], [`Cx::context_ext_mut`] |
//! | `us_socket_context_loop` | implicit: the [`Cx`] you hold |
//! | `us_socket_context_timestamp` | [`Cx::context_timestamp`] |
//! | `us_socket_context_close` | [`Cx::context_close`] |
//! | `us_socket_context_on_pre_open` … `_on_connect_error` | fields of [`ContextCallbacks`], via [`Cx::context_create`] or [`Cx::context_callbacks_mut`]; `on_pre_open` gets an [`Accepted`], `on_close` a [`CloseCause`] |
//! | `us_socket_context_listen` | [`Cx::listen`] with [`ListenTarget::Host`] |
//! | `us_socket_context_listen_unix` | [`Cx::listen`] with [`ListenTarget::Unix`] |
//! | `us_listen_socket_close` | [`Cx::listen_close`] |
//! | `us_socket_context_connect` | [`Cx::connect`] with [`ConnectTarget::Host`] |
//! | `us_socket_context_connect_unix` | [`Cx::connect`] with [`ConnectTarget::Unix`] |
//! | `us_socket_context_adopt_socket` | [`Cx::adopt`], [`Cx::adopt_with`] |
//! | `us_adopt_accepted_socket` | [`Cx::adopt_accepted`] (takes an owned descriptor; gives it back in a [`WithFd`] on failure) |
//! | `us_socket_context` | [`Cx::socket_context`] |
//! | `us_socket_ext` | [`Cx::socket_ext`], [`Cx::socket_ext_mut`] |
//! | `us_socket_write` | [`Cx::write`] |
//! | `us_socket_write2` | [`Cx::write2`] |
//! | `us_socket_timeout` | [`Cx::timeout`] |
//! | `us_socket_long_timeout` | [`Cx::long_timeout`] |
//! | `us_socket_flush` | [`Cx::flush`] |
//! | `us_socket_shutdown` | [`Cx::shutdown`] |
//! | `us_socket_shutdown_read` | [`Cx::shutdown_read`] |
//! | `us_socket_is_shut_down` | [`Cx::is_shut_down`] |
//! | `us_socket_is_closed` | [`Cx::is_closed`] |
//! | `us_socket_is_established` | [`Cx::is_established`] |
//! | `us_socket_close_connecting` | [`Cx::close_connecting`] |
//! | `us_socket_close` | [`Cx::close`] |
//! | `us_socket_local_port` | [`Cx::local_port`]; on a listen socket [`Cx::listen_port`] |
//! | `us_socket_remote_port` | [`Cx::remote_port`] |
//! | `us_socket_remote_address` | [`Cx::remote_address`] |
//! | `us_socket_get_native_handle` | [`Cx::socket_fd`] (lends `&Fd`) |
//! | `us_create_timer` | [`Cx::timer_create`] |
//! | `us_timer_ext` | [`Cx::timer_ext`], [`Cx::timer_ext_mut`] |
//! | `us_timer_close` | [`Cx::timer_close`] |
//! | `us_timer_set` | [`Cx::timer_set`] |
//! | `us_timer_loop` | implicit: the [`Cx`] you hold |
//! | `us_create_poll` | [`Cx::poll_create`] |
//! | `us_poll_free` | [`Cx::poll_free`] (gives the descriptor back) |
//! | `us_poll_init` | [`Cx::poll_init`] (takes the descriptor; + [`Cx::poll_set_callback`], our addition) |
//! | `us_poll_start` / `_change` / `_stop` | [`Cx::poll_start`], [`Cx::poll_change`], [`Cx::poll_stop`] |
//! | `us_poll_events` | [`Cx::poll_events`]; on a socket [`Cx::socket_interest`] |
//! | `us_poll_change` on a socket (pause/resume) | [`Cx::set_socket_poll_interest`], [`Cx::pause`], [`Cx::resume`] |
//! | `us_poll_ext` | [`Cx::poll_ext`] |
//! | `us_poll_fd` | [`Cx::poll_fd`] |
//! | `us_poll_resize` | [`Cx::poll_resize`] |
//!
//! TLS, SNI and UDP functions belong to the `tls` and `capi` crates.
//!
//! ## Behaviour worth knowing before it surprises you
//!
//! * Level-triggered: one `recv` per readable event; writable interest only after a short write.
//! * [`Cx::write`] returns what the OS took; there is no write queue, the caller keeps the rest
//!   for `on_writable`. A hard send error is not backpressure: `write` returns 0, no writable
//!   interest is armed, and the socket closes with [`CloseCause::Os`] as soon as the running
//!   callback returns (a write outside any callback: at the start of the next iteration).
//! * `on_data` never gets an empty buffer; [`RecvBuf::padded`] exposes [`RECV_PADDING`] writable
//!   bytes on each side. A read that fills the buffer is read again, up to
//!   [`Settings::max_reads_per_event`].
//! * Peer FIN → `on_end` and reading stops; a FIN after our own [`Cx::shutdown`] (or a shutdown
//!   after the peer's FIN) closes. Data that arrived before a hang-up is delivered first.
//! * Socket timeouts are absolute: never early, at most one sweep period late.
//! * Over a shim with deadline events ([`OsShim::set_deadline`]: Linux's timerfd, the
//!   simulated shim) an iteration reads no clock of its own: loop time ([`Cx::now_ms`]) is read
//!   by the first thing that needs it after the wait (a timeout set, `now_ms`, the timer phase),
//!   so a server that re-arms a timeout per request reads the clock once per iteration, inside
//!   its callback. Without them (every other shim) the clock is read when each wait returns.
//! * A full socket arena sheds new connections and pauses the listener until a slot is released;
//!   descriptor exhaustion, and any accept error core does not know, pauses it for
//!   [`Settings::accept_backoff_ms`]; errors of the pending connection alone
//!   ([`ErrorKind::ConnectionAborted`]) skip it. A paused listener is never reported again
//!   until it resumes (its interest is dropped, or it is deregistered), so it cannot spin.
//! * [`Cx::connect`] fails only for a bad context or no capacity; every network failure arrives
//!   through `on_connect_error` with the raw OS code, and the socket is released without
//!   `on_close`.

#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(feature = "alloc")]
extern crate alloc;

mod accepted;
mod chores;
mod close;
mod context;
mod entry;
mod error;
mod event_loop;
mod failing;
mod fixed;
#[cfg(feature = "alloc")]
mod growing;
mod handle;
pub mod layer;
mod listen;
mod log;
mod low_priority;
mod poll;
mod recv;
mod run;
mod settings;
pub mod shim;
mod slot;
mod socket;
mod sweep;
mod timer;
mod timer_heap;

pub use accepted::Accepted;
pub use close::CloseCause;
pub use error::{
    AdoptError, CapacityError, ConnectError, ContextError, ListenError, PollError, WithFd,
};
pub use event_loop::{
    CloseCb, Config, ConnectErrorCb, ContextCallbacks, ContextEntry, Cx, DataCb, FdOf,
    LayerContext, LayerSocket, ListenEntry, Loop, LoopCallbacks, LoopCb, LoopError, OpenCb, Parts,
    PollCb, PollEntry, PreOpenCb, ReleaseCb, SocketCb, SocketEntry, Storage, TimerCb, TimerEntry,
};
pub use fixed::FixedStorage;
#[cfg(feature = "alloc")]
pub use growing::{Capacity, Growing, GrowingStorage};
pub use handle::{ContextId, ListenId, PollId, SocketId, TimerId};
pub use layer::{Layer, NoLayer};
pub use recv::{RecvBuf, RECV_PADDING};
pub use settings::Settings;
pub use shim::{
    ConnectTarget, ErrorKind, Event, Interest, ListenOptions, ListenTarget, OsError, OsShim,
    PeerAddr, ShimError, Token, Wake,
};
pub use slot::{Slot, SlotStore};

/// The examples of the crate's README, run as doctests so they cannot go stale.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
