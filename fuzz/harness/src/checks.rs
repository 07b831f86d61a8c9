//! The checks after every loop iteration and every top-level step: the model and the loop agree.

use usockets_core::Loop;

use crate::config::H;
use crate::model::Life;
use crate::slots::{slot_bit, Changed};

pub(crate) fn run_once(l: &mut Loop<H>, timeout: Option<u64>) {
    let wake = l.ext().wake_outside;
    l.run_once(timeout).expect("run_once");
    let w = l.ext_mut();
    w.after_timer_phase = false;
    w.lis_closing = 0;
    assert!(!(wake && w.wake_outside), "a wake-up was not delivered");
    let now = l.now_ms();
    let iteration = l.iteration_number();
    let w = l.ext();
    for (s, x) in w.socks.iter() {
        assert!(
            matches!(x.life, Life::Open | Life::Connecting),
            "{s:?} ({:?}) not released at the end of the iteration",
            x.life
        );
    }
    for t in w.live_timers.iter().map(|i| &w.timers[i]) {
        if let Some(a) = t.armed {
            let waits = a.late && a.iteration == iteration;
            assert!(
                a.deadline > now || waits,
                "timer {:?} due at {} missed (now {now})",
                t.id,
                a.deadline
            );
        }
    }
}

/// The checks after every top-level step: every live object is as the model says, arena
/// occupancy and `is_alive` match the model, and dead handles are rejected.
///
/// A dead handle (of a released socket, a freed context or poll, a closed listener or timer) is
/// checked after the steps in which its slot gained or lost an object, rather than after every
/// step, which cost time in proportion to every object ever made. The two are the same: a handle
/// rejected once can only be accepted again through a change to its slot, and a change is
/// either one the model saw (which marks the slot in [`World::changed`]) or one it did not,
/// which the checks of live objects and of occupancy below catch at this very step (an object
/// appeared that the model does not have, or one the model has is gone or changed).
///
/// [`World::changed`]: crate::model::World
pub(crate) fn check_world(l: &mut Loop<H>) {
    let w = l.ext();
    assert_eq!(w.depth, 0);
    let mut keepalive = 0;
    for (s, x) in w.socks.iter() {
        let closed = w.is_closed(s, x);
        assert_eq!(
            l.is_closed(s),
            Some(closed),
            "{s:?} is {:?} in the model",
            x.life
        );
        assert_eq!(l.socket_ext(s), Some(&x.serial), "ext of {s:?}");
        if !closed {
            assert_eq!(l.socket_context(s), Some(x.ctx), "context of {s:?}");
        }
        if matches!(x.life, Life::Open | Life::Connecting) {
            keepalive += 1;
        }
    }
    for c in w.live_ctxs.iter().map(|i| &w.ctxs[i]) {
        assert_eq!(l.context_ext(c.id), Some(&c.serial), "context {:?}", c.id);
    }
    for x in w.live_lis.iter().map(|i| &w.lis[i]) {
        assert!(l.listen_context(x.id).is_some(), "listener {:?}", x.id);
        keepalive += 1;
    }
    for t in w.live_timers.iter().map(|i| &w.timers[i]) {
        assert_eq!(l.timer_ext(t.id), Some(&t.serial), "timer {:?}", t.id);
        assert_eq!(
            l.timer_is_armed(t.id),
            Some(t.armed.is_some()),
            "timer {:?} armed",
            t.id
        );
        keepalive += usize::from(!t.fallthrough);
    }
    for p in w.live_polls.iter().map(|i| &w.polls[i]) {
        assert_eq!(l.poll_ext(p.id), Some(&p.serial), "poll {:?}", p.id);
        keepalive += usize::from(!p.fallthrough);
    }
    check_dead(l, w.changed);
    let slots = [
        w.socks.len(),
        w.live_lis.len() + w.lis_closing,
        w.live_ctxs.len(),
        w.live_timers.len(),
        w.live_polls.len(),
    ];
    assert_eq!(
        l.slots_in_use(),
        slots,
        "arena occupancy differs from the model"
    );
    assert_eq!(
        l.is_alive(),
        keepalive > 0,
        "is_alive differs from the model ({keepalive} keep it alive)"
    );
    l.ext_mut().changed = Changed::default();
}

/// Every dead handle whose slot is marked in `changed` is rejected.
fn check_dead(l: &Loop<H>, changed: Changed) {
    let w = l.ext();
    if changed.sockets != 0 {
        for &s in w
            .released
            .iter()
            .filter(|s| changed.sockets & slot_bit(s.index()) != 0)
        {
            assert_eq!(l.is_closed(s), None, "released {s:?} still accepted");
        }
    }
    let dead = |mask: u32, dead: bool, index: u32| dead && mask & slot_bit(index) != 0;
    if changed.contexts != 0 {
        for c in w
            .ctxs
            .iter()
            .filter(|c| dead(changed.contexts, c.freed, c.id.index()))
        {
            assert_eq!(l.context_ext(c.id), None, "context {:?}", c.id);
        }
    }
    if changed.listeners != 0 {
        for x in w
            .lis
            .iter()
            .filter(|x| dead(changed.listeners, x.closed, x.id.index()))
        {
            assert!(l.listen_context(x.id).is_none(), "listener {:?}", x.id);
        }
    }
    if changed.timers != 0 {
        for t in w
            .timers
            .iter()
            .filter(|t| dead(changed.timers, t.closed, t.id.index()))
        {
            assert_eq!(l.timer_ext(t.id), None, "timer {:?}", t.id);
        }
    }
    if changed.polls != 0 {
        for p in w
            .polls
            .iter()
            .filter(|p| dead(changed.polls, p.freed, p.id.index()))
        {
            assert_eq!(l.poll_ext(p.id), None, "poll {:?}", p.id);
        }
    }
}
