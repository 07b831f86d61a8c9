//! # usockets-conformance
//!
//! A conformance suite for [`OsShim`] implementations, written once and generic over the shim:
//! a shim author adds this crate as a dev-dependency, describes the shim with a few lines
//! ([`ShimUnderTest`]) and gets one `#[test]` per check from [`conformance_suite!`].
//!
//! Every check uses only `usockets-core`'s public API with **both ends in the same loop**: a
//! server context listening on port 0 of a loopback address (or a unique unix-domain path) and
//! a client context connecting to it. The loop is driven with `run_once(Some(ms))` in bounded
//! loops: a check fails after [`ShimUnderTest::BOUND_MS`] of wall clock (or a million
//! iterations, or 60 s of shim clock), it never hangs. `Loop::run` is bounded by a `pre`
//! callback that panics past the same bound. Tests may run in parallel: ports are always 0 and
//! unix paths unique.
//!
//! ## Running it against your shim
//!
//! ```toml
//! [dev-dependencies]
//! usockets-conformance = "0.1"
//! ```
//!
//! ```ignore
//! // tests/conformance.rs
//! use usockets_conformance::ShimUnderTest;
//!
//! struct Mine;
//!
//! impl ShimUnderTest for Mine {
//!     type Shim = my_shim::MyShim;
//!     fn new_shim() -> my_shim::MyShim {
//!         my_shim::MyShim::new().expect("shim")
//!     }
//!     // Optional: a pipe (read end, write end) for the user-poll check; see the trait.
//! }
//!
//! usockets_conformance::conformance_suite!(Mine);
//! ```
//!
//! `cargo test` then lists `check_ipv4_connect_and_accept`, `check_echo_1mib_both_ways`, ...
//! individually. To run the suite for two shims in one file, invoke the macro in two modules.
//! Each check is also a plain generic function ([`check_half_close`] etc.) to call by hand,
//! and [`CHECKS`] names them all. [`harness`] exposes the fixture the checks use, for writing
//! shim-specific checks in the same style.
//!
//! A complete example, the simulated OS with its pipe helpers (this crate's `tests/sim.rs`):
//!
//! ```
//! use usockets_conformance::ShimUnderTest;
//! use usockets_shim_sim::{Faults, NoFaults, SimFd, SimNet, SimShim};
//!
//! struct Sim;
//!
//! impl ShimUnderTest for Sim {
//!     type Shim = SimShim;
//!     fn new_shim() -> SimShim {
//!         SimNet::new(Faults::NONE, Box::new(NoFaults)).shim()
//!     }
//!     const SLACK_MS: u64 = 0; // a virtual clock has no jitter
//!     fn pipe(shim: &SimShim) -> Option<(SimFd, SimFd)> {
//!         Some(shim.net().user_pipe())
//!     }
//!     fn write_pipe(shim: &SimShim, write_end: &SimFd, data: &[u8]) {
//!         shim.net().pipe_write(write_end, data);
//!     }
//!     fn read_pipe(shim: &SimShim, read_end: &SimFd, buf: &mut [u8]) -> usize {
//!         shim.net().pipe_read(read_end, buf)
//!     }
//! }
//!
//! usockets_conformance::conformance_suite!(Sim);
//! # fn main() {
//! #     usockets_conformance::check_half_close::<Sim>();
//! # }
//! ```
//!
//! ## What is checked
//!
//! Everything core's API does without TLS, each behaviour a separate check. What a shim may
//! lack (unix sockets, name resolution, `shutdown_read`) it declares on [`ShimUnderTest`];
//! the check then asserts a clean refusal instead of the behaviour, and nothing is skipped.
//!
//! * **Addresses**: listening on port 0 gives an ephemeral port; IPv4 (`127.0.0.1`) and IPv6
//!   (`::1`, required: a shim without IPv6 fails) and unix-domain listen/connect (or, where
//!   the shim declares no unix sockets, a clean `Unsupported` error for both); `on_open`
//!   arguments (`is_client`, 0/4/16 IP bytes); `remote_address`, `remote_port` and
//!   `local_port` agree between the two ends.
//! * **Data**: 1 MiB echoed both ways, in order; short writes (forced with a paused
//!   receiver) completed through `on_writable`;
//!   `write2`; `write(.., more)` + `flush`; pause/resume; `shutdown_read` → `on_end` (or,
//!   where the shim declares no `shutdown_read`, no change at all); half-close with a reply;
//!   data written right before a close arrives before the peer's close.
//! * **Lifecycle**: `close(code, reason)` reaches `on_close` synchronously and the handle stays
//!   readable until the iteration ends; `close_connecting`; refused connects and unresolvable
//!   names (`Unsupported` where the shim declares it resolves none) reach `on_connect_error`
//!   only; adoption; `on_pre_open` + `adopt_accepted`;
//!   `context_close`; `listen_close` inside `on_open`; `Loop::run` returns once everything is
//!   closed; a full socket arena sheds connections and recovers; 200 connections leave no slot
//!   behind.
//! * **Time**: socket timeouts (short sweep and the default 4 s sweep), disabling timeouts,
//!   timers in deadline order, repeating timers closed in their callback, fallthrough timers.
//! * **Loop**: wake-ups from another thread, `pre`/`post` callbacks, user polls on a pipe (when
//!   [`ShimUnderTest::pipe`] provides one).
//!
//! Not checked: the long (minutes) timeout firing, which cannot be waited for in real time;
//! setting and disabling it is.
//!
//! ## Requirements on the environment
//!
//! The loopback interface with IPv4 and IPv6, a writable [`std::env::temp_dir`] for unix
//! sockets (paths longer than 100 bytes fall back to `/tmp`), name resolution that fails fast
//! for `no-such-host.invalid`, and about 450 descriptors for the 200-connection check.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod checks;
pub mod harness;
#[cfg(unix)]
pub mod unix_pipe;
#[cfg(windows)]
pub mod windows_pipe;

pub use checks::*;

use usockets_core::OsShim;

/// Describes a shim to the suite. Implement it on a marker type in your test crate and pass
/// that type to [`conformance_suite!`].
pub trait ShimUnderTest: 'static {
    /// The shim.
    type Shim: OsShim;

    /// A fresh shim for one loop. Called once per check (checks run in parallel, on different
    /// threads).
    fn new_shim() -> Self::Shim;

    /// The sweep period (`Settings::sweep_period_ms`) the timeout checks use. Real-time shims
    /// keep it short (the default, 100 ms); the checks wait at least 1 s plus this.
    const SWEEP_MS: u64 = 100;

    /// How late, beyond the documented bound, a timeout or timer may run on this shim
    /// (scheduling jitter). A simulated clock can use 0.
    const SLACK_MS: u64 = 300;

    /// Wall-clock limit of each bounded wait in a check, in milliseconds. The check with the
    /// default 4 s sweep waits up to twice `max(BOUND_MS, 5000 + SLACK_MS)`.
    const BOUND_MS: u64 = 5_000;

    /// How many bytes one write on a fresh connection is sure to take whole (its send
    /// buffer): the check that bytes written right before a close arrive writes this much.
    /// 32 KiB by default (every OS's socket buffers are larger); a stack with small,
    /// embedder-sized buffers declares its own.
    const FRESH_SEND_BYTES: usize = 32 * 1024;

    /// Whether the shim has unix-domain sockets: a capability the shim declares, asked with a
    /// shim at hand because it may depend on the OS at run time (Windows has them from 10
    /// 1803 on, some stacks never). `true` by default.
    ///
    /// A shim that declares none must refuse a unix listen and a unix connect with
    /// [`ErrorKind::Unsupported`](usockets_core::ErrorKind::Unsupported) (a clean error, no
    /// slot or descriptor left behind): the unix checks then assert exactly that, instead of
    /// the round trip. Nothing is skipped either way.
    fn unix_sockets(shim: &Self::Shim) -> bool {
        let _ = shim;
        true
    }

    /// Whether the shim resolves host names: a capability the shim declares, `true` by
    /// default. A shim that resolves none (a bare-metal stack with literal addresses only) must
    /// refuse a connect to a name with [`ErrorKind::Unsupported`](usockets_core::ErrorKind::Unsupported)
    /// through `on_connect_error`; the name check then asserts exactly that instead of
    /// `NameResolution`.
    fn resolves_names(shim: &Self::Shim) -> bool {
        let _ = shim;
        true
    }

    /// Whether the shim can shut down the receive half alone (`shutdown_read`): a capability
    /// the shim declares, `true` by default. A shim that cannot must fail it with
    /// [`ErrorKind::Unsupported`](usockets_core::ErrorKind::Unsupported) and leave the socket
    /// as it was. Core ignores the result (as the C library's `void` function does), so the
    /// shutdown-read check then asserts what can be seen: no `on_end`, the socket open and
    /// working both ways.
    fn shutdown_read(shim: &Self::Shim) -> bool {
        let _ = shim;
        true
    }

    /// A `(read end, write end)` pair of plain descriptors the shim can `register` for the
    /// user-poll check, e.g. a pipe; both owned (dropping one must close it). `None` (the
    /// default) skips that one check with a note on stderr; every other check runs regardless.
    fn pipe(shim: &Self::Shim) -> Option<(Fd<Self>, Fd<Self>)> {
        let _ = shim;
        None
    }

    /// Writes `data` into the write end of a [`pipe`](Self::pipe).
    fn write_pipe(shim: &Self::Shim, write_end: &Fd<Self>, data: &[u8]) {
        let _ = (shim, write_end, data);
        panic!("ShimUnderTest::pipe returned a pipe but write_pipe is not implemented");
    }

    /// Reads what is available (up to `buf.len()` bytes) from the read end of a
    /// [`pipe`](Self::pipe); returns how many bytes were read.
    fn read_pipe(shim: &Self::Shim, read_end: &Fd<Self>, buf: &mut [u8]) -> usize {
        let _ = (shim, read_end, buf);
        panic!("ShimUnderTest::pipe returned a pipe but read_pipe is not implemented");
    }
}

/// The descriptor type of a [`ShimUnderTest`]'s shim.
pub type Fd<S> = <<S as ShimUnderTest>::Shim as OsShim>::Fd;

/// Expands to one `#[test]` per conformance check for the [`ShimUnderTest`] type given:
///
/// ```ignore
/// usockets_conformance::conformance_suite!(MyShimUnderTest);
/// ```
///
/// Each test is named after its check (`check_half_close`, ...) and calls
/// `usockets_conformance::check_half_close::<MyShimUnderTest>()`.
#[macro_export]
macro_rules! conformance_suite {
    ($shim:ty) => {
        $crate::__with_checks!(__emit_tests $shim);
    };
}

/// The names of every check, in the order [`conformance_suite!`] emits them.
pub const CHECKS: &[&str] = crate::__with_checks!(__emit_names);

#[doc(hidden)]
#[macro_export]
macro_rules! __emit_tests {
    ($shim:ty; $($check:ident),* $(,)?) => {
        $(
            #[test]
            fn $check() {
                $crate::$check::<$shim>();
            }
        )*
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __emit_names {
    ($($check:ident),* $(,)?) => {
        &[$(stringify!($check)),*]
    };
}

/// The one list of checks: passes it to the emitter macro named first.
#[doc(hidden)]
#[macro_export]
macro_rules! __with_checks {
    ($emit:ident $($arg:ty)?) => {
        $crate::$emit! { $($arg;)?
            check_listen_port_zero_is_ephemeral,
            check_connect_opens_both_ends,
            check_ipv4_connect_and_accept,
            check_ipv6_connect_and_accept,
            check_unix_connect_and_accept,
            check_unix_relisten_after_close,
            check_listen_any_host_is_dual_stack,
            check_connect_with_source_address,
            check_addresses_agree_between_ends,
            check_echo_1mib_both_ways,
            check_backpressure_short_write_then_writable,
            check_write2,
            check_write_more_then_flush,
            check_pause_and_resume,
            check_shutdown_read_gives_end,
            check_half_close,
            check_data_before_close_is_delivered,
            check_gone_peer_closes_with_the_os_error,
            check_close_code_reason_and_handle_lifetime,
            check_close_connecting,
            check_connect_refused,
            check_unresolvable_name,
            check_adopt_keeps_ext_and_switches_callbacks,
            check_pre_open_take_and_adopt_accepted,
            check_context_close_closes_everything_once,
            check_listen_close_inside_on_open,
            check_run_returns_when_everything_is_closed,
            check_full_arena_sheds_and_recovers,
            check_many_connections_leave_no_slots,
            check_socket_timeout_short_sweep,
            check_socket_timeout_default_sweep,
            check_timeouts_disabled_by_zero_and_adoption,
            check_timers_fire_in_deadline_order,
            check_deadline_events,
            check_timer_repeat_and_close_in_callback,
            check_fallthrough_timer_does_not_keep_run_alive,
            check_wakeup_from_another_thread,
            check_pre_and_post_callbacks,
            check_user_poll_on_pipe,
        }
    };
}
