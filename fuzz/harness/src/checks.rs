//! The checks after every loop iteration and every top-level step: the model and the loop agree.

use usockets_core::Loop;

use crate::config::H;
use crate::model::Life;

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
    for (s, x) in &w.socks {
        assert!(
            matches!(x.life, Life::Open | Life::Connecting),
            "{s:?} ({:?}) not released at the end of the iteration",
            x.life
        );
    }
    for t in w.timers.iter().filter(|t| !t.closed) {
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

/// The checks after every top-level step.
pub(crate) fn check_world(l: &mut Loop<H>) {
    let w = l.ext();
    assert_eq!(w.depth, 0);
    for (&s, x) in &w.socks {
        assert_eq!(
            l.is_closed(s),
            Some(w.closed(s)),
            "{s:?} is {:?} in the model",
            x.life
        );
        assert_eq!(l.socket_ext(s), Some(&x.serial), "ext of {s:?}");
        if !w.closed(s) {
            assert_eq!(l.socket_context(s), Some(x.ctx), "context of {s:?}");
        }
    }
    for &s in &w.released {
        assert_eq!(l.is_closed(s), None, "released {s:?} still accepted");
    }
    for c in &w.ctxs {
        let want = (!c.freed).then_some(&c.serial);
        assert_eq!(l.context_ext(c.id), want, "context {:?}", c.id);
    }
    for x in &w.lis {
        assert_eq!(
            l.listen_context(x.id).is_some(),
            !x.closed,
            "listener {:?}",
            x.id
        );
    }
    for t in &w.timers {
        let want = (!t.closed).then_some(&t.serial);
        assert_eq!(l.timer_ext(t.id), want, "timer {:?}", t.id);
        if !t.closed {
            assert_eq!(
                l.timer_is_armed(t.id),
                Some(t.armed.is_some()),
                "timer {:?} armed",
                t.id
            );
        }
    }
    for p in &w.polls {
        let want = (!p.freed).then_some(&p.serial);
        assert_eq!(l.poll_ext(p.id), want, "poll {:?}", p.id);
    }
    let slots = [
        w.socks.len(),
        w.lis.iter().filter(|x| !x.closed).count() + w.lis_closing,
        w.ctxs.iter().filter(|x| !x.freed).count(),
        w.timers.iter().filter(|x| !x.closed).count(),
        w.polls.iter().filter(|x| !x.freed).count(),
    ];
    assert_eq!(
        l.slots_in_use(),
        slots,
        "arena occupancy differs from the model"
    );
    assert_eq!(
        l.is_alive(),
        w.keepalive() > 0,
        "is_alive differs from the model ({} keep it alive)",
        w.keepalive()
    );
}
