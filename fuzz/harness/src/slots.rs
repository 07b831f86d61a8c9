//! Where the model finds its live objects: by core slot index, in constant time.
//!
//! Core gives each arena slot to one object at a time, so a live handle's slot index is a key.
//! The histories in [`World`](crate::model::World) (every context, listener, timer and poll ever
//! made, which the input picks from, dead ones included) stay as they are; these indexes only
//! spare the harness a scan of them for every lookup and every check.

use usockets_core::{ContextId, PollId, SocketId, TimerId};

use crate::config::{SOCKETS, STALE};
use crate::model::{Ctx, Ends, Lis, Pol, Sock, Tmr, World};

/// The model's sockets (known and not yet released) by slot index. They iterate in slot order,
/// which is the order of a map keyed by handle (handles order by index first), so a pick by
/// position picks what it always picked. A bit mask of the occupied slots spares the walks
/// over the others.
#[derive(Debug)]
pub(crate) struct Socks {
    slots: [Option<(SocketId, Sock)>; SOCKETS],
    used: u32,
}

impl Socks {
    pub(crate) const fn new() -> Socks {
        const { assert!(SOCKETS <= 32, "one bit per slot") };
        Socks {
            slots: [const { None }; SOCKETS],
            used: 0,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.used.count_ones() as usize
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.used == 0
    }

    pub(crate) fn get(&self, s: SocketId) -> Option<&Sock> {
        match self.slots.get(slot(s))? {
            Some((id, x)) if *id == s => Some(x),
            _ => None,
        }
    }

    pub(crate) fn get_mut(&mut self, s: SocketId) -> Option<&mut Sock> {
        match self.slots.get_mut(slot(s))? {
            Some((id, x)) if *id == s => Some(x),
            _ => None,
        }
    }

    pub(crate) fn contains(&self, s: SocketId) -> bool {
        self.get(s).is_some()
    }

    /// Registers a socket core just handed out; its slot must be free in the model too.
    pub(crate) fn insert(&mut self, s: SocketId, sock: Sock) {
        let Some(entry) = self.slots.get_mut(slot(s)) else {
            panic!("{s:?} lies beyond the {SOCKETS} socket slots");
        };
        if let Some((old, _)) = entry {
            panic!("core handed out {s:?} while {old:?} still holds its slot");
        }
        *entry = Some((s, sock));
        self.used |= 1 << slot(s);
    }

    pub(crate) fn remove(&mut self, s: SocketId) -> Option<Sock> {
        let entry = self.slots.get_mut(slot(s))?;
        if entry.as_ref().is_some_and(|(id, _)| *id == s) {
            self.used &= !(1 << slot(s));
            entry.take().map(|(_, x)| x)
        } else {
            None
        }
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (SocketId, &Sock)> {
        Bits(self.used)
            .filter_map(|i| self.slots[i].as_ref())
            .map(|(s, x)| (*s, x))
    }

    pub(crate) fn ids(&self) -> impl Iterator<Item = SocketId> + '_ {
        self.iter().map(|(s, _)| s)
    }

    /// The handles for which `f` holds, without allocating: `None` in the other places.
    pub(crate) fn select(
        &self,
        f: impl Fn(SocketId, &Sock) -> bool,
    ) -> [Option<SocketId>; SOCKETS] {
        let mut out = [None; SOCKETS];
        for (s, x) in self.iter() {
            if f(s, x) {
                out[slot(s)] = Some(s);
            }
        }
        out
    }
}

fn slot(s: SocketId) -> usize {
    s.index() as usize
}

/// The indexes of the set bits of a mask, lowest first.
struct Bits(u32);

impl Iterator for Bits {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        if self.0 == 0 {
            return None;
        }
        let i = self.0.trailing_zeros() as usize;
        self.0 &= self.0 - 1;
        Some(i)
    }
}

/// The live objects of one kind: for each of the `N` slots of its arena, the position in the
/// kind's history of the object that holds it (valid where the slot's bit is set).
#[derive(Debug)]
pub(crate) struct Live<const N: usize> {
    at: [usize; N],
    used: u32,
}

impl<const N: usize> Live<N> {
    pub(crate) const fn new() -> Self {
        const { assert!(N <= 32, "one bit per slot") };
        Live {
            at: [0; N],
            used: 0,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.used.count_ones() as usize
    }

    /// Slot `index` now holds history entry `i`; the slot must be free in the model.
    pub(crate) fn insert(&mut self, index: u32, i: usize, what: &str) {
        let Some(at) = self.at.get_mut(index as usize) else {
            panic!("{what} in slot {index}, beyond the {N} slots");
        };
        if self.used & (1 << index) != 0 {
            panic!("{what} in slot {index}, which still holds entry {at}");
        }
        *at = i;
        self.used |= 1 << index;
    }

    /// Slot `index` was freed.
    pub(crate) fn remove(&mut self, index: u32) {
        if (index as usize) < N {
            self.used &= !(1 << index);
        }
    }

    /// The history entry holding slot `index`, if any.
    pub(crate) fn get(&self, index: u32) -> Option<usize> {
        let held = (index as usize) < N && self.used & (1 << index) != 0;
        held.then(|| self.at[index as usize])
    }

    /// The history entries of every live object, in slot order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        Bits(self.used).map(|s| self.at[s])
    }

    /// The same as [`iter`](Self::iter), as they are now: for changing the model while going
    /// through them.
    pub(crate) fn snapshot(&self) -> impl Iterator<Item = usize> {
        let at = self.at;
        Bits(self.used).map(move |s| at[s])
    }
}

/// The slots of each arena (a bit per slot index) that gained or lost an object since the dead
/// handles were last checked (see [`check_world`](crate::checks::check_world)).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Changed {
    pub(crate) sockets: u32,
    pub(crate) listeners: u32,
    pub(crate) contexts: u32,
    pub(crate) timers: u32,
    pub(crate) polls: u32,
}

/// The bit of slot `index` in a [`Changed`] mask (the arenas have far fewer than 32 slots; any
/// index past 31 shares the top bit).
pub(crate) fn slot_bit(index: u32) -> u32 {
    1 << index.min(31)
}

/// Registering and retiring objects: every change to a history goes through here, so that the
/// indexes above and the [`Changed`] masks stay in step with it.
impl World {
    pub(crate) fn ctx_live(&self, c: ContextId) -> bool {
        self.live_ctx(c).is_some()
    }

    /// The history entry of context `c`, if it is live.
    pub(crate) fn live_ctx(&self, c: ContextId) -> Option<usize> {
        self.live_ctxs
            .get(c.index())
            .filter(|&i| self.ctxs[i].id == c)
    }

    /// The history entry of timer `t`, if it is open.
    pub(crate) fn live_timer(&self, t: TimerId) -> Option<usize> {
        self.live_timers
            .get(t.index())
            .filter(|&i| self.timers[i].id == t)
    }

    /// The history entry of poll `p`, if it is not freed.
    pub(crate) fn live_poll(&self, p: PollId) -> Option<usize> {
        self.live_polls
            .get(p.index())
            .filter(|&i| self.polls[i].id == p)
    }

    /// A context core just made.
    pub(crate) fn add_ctx(&mut self, c: ContextId, serial: u64) {
        self.live_ctxs.insert(c.index(), self.ctxs.len(), "context");
        self.ctxs.push(Ctx::new(c, serial));
        self.changed.contexts |= slot_bit(c.index());
    }

    /// Context entry `i` was freed.
    pub(crate) fn free_ctx(&mut self, i: usize) {
        let x = &mut self.ctxs[i];
        x.freed = true;
        self.live_ctxs.remove(x.id.index());
        self.changed.contexts |= slot_bit(x.id.index());
    }

    /// A listener core just opened.
    pub(crate) fn add_lis(&mut self, l: Lis) {
        self.live_lis
            .insert(l.id.index(), self.lis.len(), "listener");
        self.changed.listeners |= slot_bit(l.id.index());
        self.lis.push(l);
    }

    /// Listener entry `i` was closed (its slot is released at the end of the iteration).
    pub(crate) fn close_lis(&mut self, i: usize) {
        let x = &mut self.lis[i];
        if !x.closed {
            x.closed = true;
            self.live_lis.remove(x.id.index());
            self.lis_closing += 1;
            self.changed.listeners |= slot_bit(x.id.index());
        }
    }

    /// A timer core just made.
    pub(crate) fn add_timer(&mut self, t: Tmr) {
        self.live_timers
            .insert(t.id.index(), self.timers.len(), "timer");
        self.changed.timers |= slot_bit(t.id.index());
        self.timers.push(t);
    }

    /// Timer entry `i` was closed.
    pub(crate) fn close_timer(&mut self, i: usize) {
        let x = &mut self.timers[i];
        x.closed = true;
        self.live_timers.remove(x.id.index());
        self.changed.timers |= slot_bit(x.id.index());
    }

    /// A poll core just made, with the pipe ends it does not own.
    pub(crate) fn add_poll(&mut self, p: Pol, ends: Ends) {
        self.live_polls
            .insert(p.id.index(), self.polls.len(), "poll");
        self.changed.polls |= slot_bit(p.id.index());
        self.polls.push(p);
        self.ends.push(ends);
    }

    /// Poll entry `i` was freed.
    pub(crate) fn free_poll(&mut self, i: usize) {
        let x = &mut self.polls[i];
        x.freed = true;
        x.started = false;
        self.live_polls.remove(x.id.index());
        self.changed.polls |= slot_bit(x.id.index());
    }

    /// A socket core just made (connecting or accepted).
    pub(crate) fn add_sock(&mut self, s: SocketId, sock: Sock) {
        self.socks.insert(s, sock);
        self.changed.sockets |= slot_bit(s.index());
    }

    /// Core released socket `s`: the model forgets it and keeps its handle as a stale one.
    pub(crate) fn release_sock(&mut self, s: SocketId) -> Option<Sock> {
        let sock = self.socks.remove(s)?;
        self.changed.sockets |= slot_bit(s.index());
        if self.released.len() == STALE {
            self.released.remove(0);
        }
        self.released.push(s);
        Some(sock)
    }
}

#[cfg(test)]
mod tests {
    // Only core makes handles, so `Socks` is tested through the corpus replay (and the bench
    // fingerprint); these cover the index arithmetic below it.
    use super::*;

    #[test]
    fn bits_come_lowest_first() {
        assert_eq!(Bits(0).collect::<Vec<_>>(), Vec::<usize>::new());
        assert_eq!(Bits(0b1011_0001).collect::<Vec<_>>(), [0, 4, 5, 7]);
        assert_eq!(Bits(1 << 31).collect::<Vec<_>>(), [31]);
    }

    #[test]
    fn live_entries_by_slot() {
        let mut live = Live::<5>::new();
        assert_eq!(live.len(), 0);
        live.insert(3, 10, "x");
        live.insert(0, 11, "x");
        assert_eq!(
            (live.len(), live.get(3), live.get(0), live.get(1)),
            (2, Some(10), Some(11), None)
        );
        assert_eq!(live.iter().collect::<Vec<_>>(), [11, 10], "slot order");
        let before: Vec<_> = live.snapshot().collect();
        live.remove(0);
        live.remove(4);
        live.remove(40);
        assert_eq!(before, [11, 10]);
        assert_eq!((live.len(), live.get(0), live.get(40)), (1, None, None));
        live.insert(0, 12, "x");
        assert_eq!(live.iter().collect::<Vec<_>>(), [12, 10]);
    }

    #[test]
    #[should_panic(expected = "which still holds entry 10")]
    fn a_live_slot_is_not_given_twice() {
        let mut live = Live::<5>::new();
        live.insert(3, 10, "x");
        live.insert(3, 11, "x");
    }

    #[test]
    #[should_panic(expected = "beyond the 5 slots")]
    fn slots_past_the_arena_are_refused() {
        Live::<5>::new().insert(5, 0, "x");
    }
}
