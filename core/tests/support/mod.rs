//! Shared test scaffolding: a Vec-backed storage, a config macro and loop builders over shim-sim.
#![allow(dead_code)]

use usockets_core::{Config, Event, Loop, LoopCallbacks, Memory, Settings, Slot, SlotStore};
#[allow(unused_imports)]
pub use usockets_shim_sim::{FaultSource, Faults, NoFaults, SeededRng, SimNet, SimShim};

/// Fixed storage owned by a `Vec`, sized once (the test-side equivalent of a static array).
pub struct VecStore<T>(pub Vec<Slot<T>>);

impl<T> VecStore<T> {
    pub fn new(n: usize) -> Self {
        VecStore((0..n).map(|_| Slot::EMPTY).collect())
    }
}

impl<T> SlotStore<T> for VecStore<T> {
    fn len(&self) -> usize {
        self.0.len()
    }
    fn slot(&self, index: usize) -> Option<&Slot<T>> {
        self.0.get(index)
    }
    fn slot_mut(&mut self, index: usize) -> Option<&mut Slot<T>> {
        self.0.get_mut(index)
    }
}

/// Storage that grows in chunks that never move (what the C ABI needs).
pub struct ChunkStore<T> {
    chunks: Vec<Box<[Slot<T>]>>,
    chunk: usize,
}

impl<T> ChunkStore<T> {
    pub fn new(chunk: usize) -> Self {
        ChunkStore {
            chunks: Vec::new(),
            chunk: chunk.max(1),
        }
    }
}

impl<T> SlotStore<T> for ChunkStore<T> {
    fn len(&self) -> usize {
        self.chunks.len() * self.chunk
    }
    fn slot(&self, index: usize) -> Option<&Slot<T>> {
        self.chunks.get(index / self.chunk)?.get(index % self.chunk)
    }
    fn slot_mut(&mut self, index: usize) -> Option<&mut Slot<T>> {
        self.chunks
            .get_mut(index / self.chunk)?
            .get_mut(index % self.chunk)
    }
    fn grow(&mut self) -> usize {
        self.chunks
            .push((0..self.chunk).map(|_| Slot::EMPTY).collect());
        self.chunk
    }
}

/// Declares a test `Config` over shim-sim with the given ext types and `VecStore` storage.
#[macro_export]
macro_rules! sim_config {
    ($name:ident { loop_ext: $l:ty, context_ext: $c:ty, socket_ext: $s:ty, timer_ext: $t:ty, poll_ext: $p:ty $(,)? }) => {
        struct $name;
        impl usockets_core::Config for $name {
            type Shim = usockets_shim_sim::SimShim;
            type LoopExt = $l;
            type ContextExt = $c;
            type SocketExt = $s;
            type TimerExt = $t;
            type PollExt = $p;
            type Reason = u32;
            type Sockets = $crate::support::VecStore<usockets_core::SocketEntry<Self>>;
            type Listeners = $crate::support::VecStore<usockets_core::ListenEntry<Self>>;
            type Contexts = $crate::support::VecStore<usockets_core::ContextEntry<Self>>;
            type Timers = $crate::support::VecStore<usockets_core::TimerEntry<Self>>;
            type Polls = $crate::support::VecStore<usockets_core::PollEntry<Self>>;
            type RecvBuf = Vec<u8>;
            type EventBuf = Vec<usockets_core::Event>;
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

/// Builds a loop over `net` with `VecStore` storage of the given capacities.
pub fn new_loop<C>(
    net: &SimNet,
    caps: Caps,
    ext: C::LoopExt,
    callbacks: LoopCallbacks<C>,
    settings: Settings,
) -> Loop<C>
where
    C: Config<
        Shim = SimShim,
        Sockets = VecStore<usockets_core::SocketEntry<C>>,
        Listeners = VecStore<usockets_core::ListenEntry<C>>,
        Contexts = VecStore<usockets_core::ContextEntry<C>>,
        Timers = VecStore<usockets_core::TimerEntry<C>>,
        Polls = VecStore<usockets_core::PollEntry<C>>,
        RecvBuf = Vec<u8>,
        EventBuf = Vec<Event>,
    >,
{
    let memory = Memory {
        sockets: VecStore::new(caps.sockets),
        listeners: VecStore::new(caps.listeners),
        contexts: VecStore::new(caps.contexts),
        timers: VecStore::new(caps.timers),
        polls: VecStore::new(caps.polls),
        recv: vec![0u8; caps.recv + 2 * usockets_core::RECV_PADDING],
        events: vec![Event::EMPTY; caps.events],
    };
    match Loop::new(net.shim(), memory, ext, callbacks, settings) {
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
