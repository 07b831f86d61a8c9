//! The loop configuration the harness runs ([`H`]) and the limits of a run: arena sizes, steps
//! and callback nesting.

use usockets_core::Config;
use usockets_shim_sim::SimShim;

use crate::memory::Memory;
use crate::model::World;

/// The loop configuration the harness runs: shim-sim underneath, the model as loop ext, and a
/// serial number as the ext of every other object.
pub struct H;

impl Config for H {
    type Shim = SimShim;
    type LoopExt = World;
    type ContextExt = u64;
    type SocketExt = u64;
    type TimerExt = u64;
    type PollExt = u64;
    type Reason = u32;
    /// Exactly the arena sizes below, inside the loop, with buffer sizes the input picks.
    type Storage = Memory;
    type Layer = usockets_core::NoLayer;
}

pub(crate) type Cx = usockets_core::Cx<H>;

/// Arena sizes: small, so that full arenas (shed connections, paused listeners, capacity
/// errors) are reached often.
pub(crate) const SOCKETS: usize = 12;
pub(crate) const LISTENERS: usize = 3;
pub(crate) const CONTEXTS: usize = 5;
pub(crate) const TIMERS: usize = 6;
pub(crate) const POLLS: usize = 3;
/// The receive buffer's data bytes and the events per wait, at most (the input picks each run's).
pub(crate) const RECV_MAX: usize = 512;
pub(crate) const EVENTS_MAX: usize = 16;
/// At most this many steps per input (an input is a few KB at most anyway).
pub(crate) const MAX_STEPS: usize = 600;
/// Callbacks nest (a close inside an `on_close` inside a `context_close` ...) up to this depth.
pub(crate) const MAX_DEPTH: u32 = 6;
/// Released socket handles remembered for stale-handle checks.
pub(crate) const STALE: usize = 16;
