//! Shared test scaffolding: a config macro and loop builders over shim-sim, on core's own
//! storage with exactly the capacities a test asks for.
#![allow(dead_code)]

use usockets_core::{Capacity, Config, GrowingStorage, Loop, LoopCallbacks, Settings};
#[allow(unused_imports)]
pub use usockets_shim_sim::{FaultSource, Faults, NoFaults, SeededRng, SimNet, SimShim};

/// Declares a test `Config` over shim-sim with the given ext types and `GrowingStorage`.
#[macro_export]
///
/// Items after the ext types (in braces) go into the `Config` impl as they are: for the
/// trait's provided consts and methods.
macro_rules! sim_config {
    ($name:ident { loop_ext: $l:ty, context_ext: $c:ty, socket_ext: $s:ty, timer_ext: $t:ty, poll_ext: $p:ty $(,)? } $({ $($extra:item)* })?) => {
        struct $name;
        impl usockets_core::Config for $name {
            type Shim = usockets_shim_sim::SimShim;
            type LoopExt = $l;
            type ContextExt = $c;
            type SocketExt = $s;
            type TimerExt = $t;
            type PollExt = $p;
            type Reason = u32;
            type Storage = usockets_core::GrowingStorage<Self>;
            type Layer = usockets_core::NoLayer;
            $($($extra)*)?
        }
    };
}

/// Capacities of a test loop.
#[derive(Clone, Copy, Debug)]
pub struct Caps {
    pub sockets: usize,
    pub listeners: usize,
    pub contexts: usize,
    pub timers: usize,
    pub polls: usize,
    pub recv: usize,
    pub events: usize,
}

impl Default for Caps {
    fn default() -> Self {
        Caps {
            sockets: 64,
            listeners: 4,
            contexts: 4,
            timers: 8,
            polls: 4,
            recv: 4096,
            events: 64,
        }
    }
}

impl Caps {
    /// Core's storage with exactly these capacities.
    pub fn storage<C: Config>(self) -> GrowingStorage<C> {
        GrowingStorage::preallocated(
            Capacity::new()
                .with_sockets(self.sockets)
                .with_listeners(self.listeners)
                .with_contexts(self.contexts)
                .with_timers(self.timers)
                .with_polls(self.polls)
                .with_recv(self.recv)
                .with_events(self.events),
        )
    }
}

/// Builds a loop over `net` with exactly the capacities `caps`.
pub fn new_loop<C>(
    net: &SimNet,
    caps: Caps,
    ext: C::LoopExt,
    callbacks: LoopCallbacks<C>,
    settings: Settings,
) -> Loop<C>
where
    C: Config<Shim = SimShim, Storage = GrowingStorage<C>>,
{
    match Loop::new(net.shim(), caps.storage(), ext, callbacks, settings) {
        Ok(l) => l,
        Err(e) => panic!("loop construction failed: {e}"),
    }
}

/// A quiet network: no faults.
pub fn quiet_net() -> SimNet {
    SimNet::new(Faults::NONE, Box::new(NoFaults))
}

/// Runs iterations until `done` holds, failing after `max` iterations.
pub fn run_until<C: Config>(
    l: &mut Loop<C>,
    max: usize,
    mut done: impl FnMut(&mut Loop<C>) -> bool,
) {
    for _ in 0..max {
        if done(l) {
            return;
        }
        if let Err(e) = l.run_once(Some(1000)) {
            panic!("run_once failed: {e}");
        }
    }
    assert!(done(l), "condition not reached within {max} iterations");
}
