//! A loop on the io_uring shim for this crate's tests: core's growing storage, plain sockets,
//! a loop ext of the test's choosing.
#![allow(dead_code)]

use std::marker::PhantomData;
use std::time::{Duration, Instant};

use usockets_core::{
    Capacity, Config, ContextCallbacks, GrowingStorage, ListenOptions, ListenTarget, Loop,
    LoopCallbacks, NoLayer, Settings,
};
use usockets_shim_uring::{UringConfig, UringShim};

/// The configuration: loop ext `L`, socket ext `S`.
pub struct U<L, S>(PhantomData<fn() -> (L, S)>);

impl<L, S> Config for U<L, S> {
    type Shim = UringShim;
    type LoopExt = L;
    type ContextExt = ();
    type SocketExt = S;
    type TimerExt = ();
    type PollExt = ();
    type Reason = usize;
    type Storage = GrowingStorage<Self>;
    type Layer = NoLayer;
}

/// A loop on a shim of `config`, with a 64 KiB receive buffer.
pub fn new_loop<L, S>(config: UringConfig, ext: L) -> Loop<U<L, S>> {
    let shim = UringShim::with_config(config)
        .expect("UringShim::with_config (io_uring must be available to run these tests)");
    let storage = GrowingStorage::new(Capacity::new().with_recv(64 * 1024));
    Loop::new(
        shim,
        storage,
        ext,
        LoopCallbacks::default(),
        Settings::default(),
    )
    .expect("loop")
}

/// A context with `callbacks` listening on 127.0.0.1, an ephemeral port, with `options`;
/// returns the port.
pub fn listen_local<L, S: Default>(
    l: &mut Loop<U<L, S>>,
    callbacks: ContextCallbacks<U<L, S>>,
    options: ListenOptions,
) -> u16 {
    let ctx = l.context_create((), callbacks).expect("context");
    let target = ListenTarget::Host {
        host: Some("127.0.0.1"),
        port: 0,
    };
    let ls = l.listen(ctx, target, options, S::default).expect("listen");
    l.listen_port(ls).expect("port")
}

/// Runs `l` until `done` or `limit` passes; panics with `what` on the limit.
pub fn drive<L, S>(
    l: &mut Loop<U<L, S>>,
    limit: Duration,
    what: &str,
    mut done: impl FnMut(&mut Loop<U<L, S>>) -> bool,
) {
    let end = Instant::now() + limit;
    while !done(l) {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        l.run_once(Some(10)).expect("run_once");
    }
}

/// The byte at position `i` of the test streams: not periodic in any power of two.
pub fn pattern(i: u64) -> u8 {
    (i % 251) as u8 ^ (i / 251) as u8
}

/// This process's resident memory, from `/proc/self/status` (`VmRSS`), in bytes.
pub fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .expect("VmRSS");
    let kb: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .expect("VmRSS value");
    kb * 1024
}
