//! The loop's memory: arrays inside the loop, of exactly the arena sizes in `config.rs`, and a
//! receive buffer and an event buffer of the sizes the input picks. A run allocates none of
//! it: heap allocations per input cost time, and far more under AddressSanitizer (a stack trace
//! per allocation, freed memory quarantined, so each run would touch fresh pages).

use usockets_core::{
    ContextEntry, Event, ListenEntry, Parts, PollEntry, Slot, SocketEntry, Storage, TimerEntry,
    RECV_PADDING,
};

use crate::config::{CONTEXTS, EVENTS_MAX, H, LISTENERS, POLLS, RECV_MAX, SOCKETS, TIMERS};

/// The receive buffer's bytes at most: data and the padding on both sides.
const RECV_BYTES: usize = RECV_MAX + 2 * RECV_PADDING;

/// Room for `N` items, of which the first few (as many as the run uses) are in use.
pub struct Buf<T, const N: usize> {
    items: [T; N],
    len: usize,
}

impl<T, const N: usize> AsMut<[T]> for Buf<T, N> {
    fn as_mut(&mut self) -> &mut [T] {
        &mut self.items[..self.len]
    }
}

/// The memory of the harness's loop: arenas of the harness's sizes inside the loop, and buffers
/// of the sizes an input picks. A run allocates none of it.
pub struct Memory {
    recv: usize,
    events: usize,
}

impl Memory {
    /// Memory whose receive buffer holds `recv` bytes of data (at most 512) and whose event
    /// buffer holds `events` events (at most 16).
    pub fn new(recv: usize, events: usize) -> Memory {
        Memory {
            recv: recv.min(RECV_MAX),
            events: events.min(EVENTS_MAX),
        }
    }
}

impl Storage<H> for Memory {
    type Sockets = [Slot<SocketEntry<H>>; SOCKETS];
    type Listeners = [Slot<ListenEntry<H>>; LISTENERS];
    type Contexts = [Slot<ContextEntry<H>>; CONTEXTS];
    type Timers = [Slot<TimerEntry<H>>; TIMERS];
    type Polls = [Slot<PollEntry<H>>; POLLS];
    type Recv = Buf<u8, RECV_BYTES>;
    type Events = Buf<Event, EVENTS_MAX>;

    fn into_parts(self) -> Parts<H, Self> {
        Parts {
            sockets: [const { Slot::EMPTY }; SOCKETS],
            listeners: [const { Slot::EMPTY }; LISTENERS],
            contexts: [const { Slot::EMPTY }; CONTEXTS],
            timers: [const { Slot::EMPTY }; TIMERS],
            polls: [const { Slot::EMPTY }; POLLS],
            recv: Buf {
                items: [0; RECV_BYTES],
                len: self.recv + 2 * RECV_PADDING,
            },
            events: Buf {
                items: [Event::EMPTY; EVENTS_MAX],
                len: self.events,
            },
        }
    }
}
