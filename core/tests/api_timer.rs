//! Behaviour tests of timers (`us_create_timer`, `us_timer_set`, `us_timer_close`,
//! `us_timer_ext`) on the simulated clock.

mod support;

use support::{new_loop, quiet_net, Caps, SimNet};
use usockets_core::{CapacityError, Cx, Loop, LoopCallbacks, Settings, TimerId};

#[derive(Default)]
struct Rec {
    /// (timer label, loop time) of every fire.
    fires: Vec<(u32, u64)>,
    /// A timer to close from inside a callback (of any timer).
    close_target: Option<TimerId>,
    /// Close the firing timer itself after this many of its fires.
    close_self_after: u32,
    /// Re-arm the firing timer with this (ms, repeat_ms) from inside its callback.
    rearm: Option<(u64, u64)>,
    /// How many more re-arms are allowed (so a core that loops fails instead of hanging).
    rearm_budget: u32,
}

sim_config!(T {
    loop_ext: Rec,
    context_ext: (),
    socket_ext: (),
    timer_ext: u32,
    poll_ext: ()
});

fn record(cx: &mut Cx<T>, t: TimerId) -> usize {
    let label = cx.timer_ext(t).copied().unwrap_or(u32::MAX);
    let at = cx.now_ms();
    cx.ext_mut().fires.push((label, at));
    cx.ext().fires.iter().filter(|(l, _)| *l == label).count()
}

fn on_timer(cx: &mut Cx<T>, t: TimerId) {
    record(cx, t);
}

fn close_self(cx: &mut Cx<T>, t: TimerId) {
    let n = record(cx, t);
    if n as u32 >= cx.ext().close_self_after {
        let ext = cx.timer_close(t);
        assert!(ext.is_some(), "closing itself returns the ext");
        assert_eq!(cx.timer_ext(t), None, "gone at once");
    }
}

fn close_other(cx: &mut Cx<T>, t: TimerId) {
    record(cx, t);
    if let Some(other) = cx.ext_mut().close_target.take() {
        cx.timer_close(other);
    }
}

fn rearm(cx: &mut Cx<T>, t: TimerId) {
    record(cx, t);
    if cx.ext().rearm_budget == 0 {
        return;
    }
    cx.ext_mut().rearm_budget -= 1;
    if let Some((ms, repeat)) = cx.ext().rearm {
        cx.timer_set(t, rearm, ms, repeat);
    }
}

fn make(net: &SimNet, timers: usize) -> Loop<T> {
    new_loop::<T>(
        net,
        Caps {
            timers,
            ..Caps::default()
        },
        Rec::default(),
        LoopCallbacks::default(),
        Settings::default(),
    )
}

fn fires(l: &Loop<T>) -> Vec<(u32, u64)> {
    l.ext().fires.clone()
}

#[test]
fn timer_create_fallthrough_or_not_decides_liveness() {
    let net = quiet_net();
    let mut l = make(&net, 4);
    let ft = l.timer_create(true, 1).expect("fallthrough");
    assert!(
        !l.is_alive(),
        "a fallthrough timer does not keep the loop alive"
    );
    let kept = l.timer_create(false, 2).expect("non-fallthrough");
    assert!(
        l.is_alive(),
        "an unarmed non-fallthrough timer keeps the loop alive"
    );
    assert_eq!(l.timer_is_armed(kept), Some(false), "created disarmed");
    assert_eq!(l.timer_close(kept), Some(2));
    assert!(!l.is_alive());
    assert_eq!(l.timer_close(ft), Some(1));
    assert_eq!(l.slots_in_use()[3], 0);
}

#[test]
fn timer_create_fails_when_arena_is_full() {
    let net = quiet_net();
    let mut l = make(&net, 2);
    let a = l.timer_create(true, 1).expect("a");
    l.timer_create(false, 2).expect("b");
    assert_eq!(l.timer_create(true, 3), Err(CapacityError));
    assert_eq!(l.slots_in_use()[3], 2);
    l.timer_close(a);
    let c = l
        .timer_create(true, 4)
        .expect("a freed slot is usable again");
    assert_eq!(l.timer_ext(c), Some(&4));
}

#[test]
fn timer_fires_after_ms_then_every_repeat_ms() {
    let net = quiet_net();
    let mut l = make(&net, 4);
    let t0 = net.now_ms();
    let t = l.timer_create(true, 7).expect("timer");
    l.timer_set(t, on_timer, 30, 20);
    assert_eq!(l.timer_is_armed(t), Some(true));
    l.run_once(Some(29)).expect("run");
    assert!(fires(&l).is_empty(), "never early");
    for _ in 0..4 {
        l.run_once(None).expect("run");
    }
    assert_eq!(
        fires(&l),
        vec![(7, t0 + 30), (7, t0 + 50), (7, t0 + 70), (7, t0 + 90)]
    );
}

#[test]
fn one_shot_timer_fires_once_and_disarms() {
    let net = quiet_net();
    let mut l = make(&net, 4);
    let t0 = net.now_ms();
    let t = l.timer_create(true, 1).expect("timer");
    l.timer_set(t, on_timer, 15, 0);
    l.run_once(None).expect("run");
    assert_eq!(fires(&l), vec![(1, t0 + 15)]);
    assert_eq!(l.timer_is_armed(t), Some(false));
    assert_eq!(l.next_deadline(), None);
    net.advance(1000);
    l.run_once(Some(0)).expect("run");
    assert_eq!(fires(&l).len(), 1);
    assert_eq!(
        l.timer_ext(t),
        Some(&1),
        "a fired one-shot timer still exists"
    );
}

#[test]
fn several_timers_fire_in_deadline_order() {
    let net = quiet_net();
    let mut l = make(&net, 4);
    let t0 = net.now_ms();
    let a = l.timer_create(true, 1).expect("a");
    let b = l.timer_create(true, 2).expect("b");
    let c = l.timer_create(true, 3).expect("c");
    l.timer_set(a, on_timer, 50, 0);
    l.timer_set(b, on_timer, 20, 0);
    l.timer_set(c, on_timer, 35, 0);
    net.advance(100);
    l.run_once(Some(0)).expect("run");
    let order: Vec<u32> = fires(&l).iter().map(|(label, _)| *label).collect();
    assert_eq!(
        order,
        vec![2, 3, 1],
        "all due in one pass, earliest deadline first"
    );
    assert!(fires(&l).iter().all(|(_, at)| *at == t0 + 100));
}

#[test]
fn timers_fire_one_by_one_at_their_deadlines() {
    let net = quiet_net();
    let mut l = make(&net, 4);
    let t0 = net.now_ms();
    let a = l.timer_create(true, 1).expect("a");
    let b = l.timer_create(true, 2).expect("b");
    l.timer_set(a, on_timer, 40, 0);
    l.timer_set(b, on_timer, 10, 0);
    l.run_once(None).expect("run");
    l.run_once(None).expect("run");
    assert_eq!(fires(&l), vec![(2, t0 + 10), (1, t0 + 40)]);
}

#[test]
fn set_zero_zero_disarms() {
    let net = quiet_net();
    let mut l = make(&net, 4);
    let t = l.timer_create(true, 1).expect("timer");
    l.timer_set(t, on_timer, 10, 10);
    assert_eq!(l.timer_is_armed(t), Some(true));
    l.timer_set(t, on_timer, 0, 0);
    assert_eq!(l.timer_is_armed(t), Some(false));
    assert_eq!(l.next_deadline(), None);
    net.advance(100);
    for _ in 0..3 {
        l.run_once(Some(0)).expect("run");
    }
    assert!(fires(&l).is_empty());
}

#[test]
fn set_again_replaces_previous_setting() {
    let net = quiet_net();
    let mut l = make(&net, 4);
    let t0 = net.now_ms();
    let t = l.timer_create(true, 1).expect("timer");
    l.timer_set(t, on_timer, 10, 5);
    l.timer_set(t, on_timer, 50, 0);
    assert_eq!(l.next_deadline(), Some(t0 + 50));
    for _ in 0..3 {
        l.run_once(None).expect("run");
    }
    assert_eq!(
        fires(&l),
        vec![(1, t0 + 50)],
        "only the later setting counts"
    );
}

#[test]
fn any_repeat_value_is_allowed() {
    let net = quiet_net();
    let mut l = make(&net, 4);
    let t0 = net.now_ms();
    let t = l.timer_create(true, 9).expect("timer");
    l.timer_set(t, on_timer, 5, 7);
    for _ in 0..4 {
        l.run_once(None).expect("run");
    }
    assert_eq!(
        fires(&l),
        vec![(9, t0 + 5), (9, t0 + 12), (9, t0 + 19), (9, t0 + 26)]
    );
}

#[test]
fn repeating_timer_that_fell_behind_fires_once_per_pass() {
    let net = quiet_net();
    let mut l = make(&net, 4);
    let t0 = net.now_ms();
    let t = l.timer_create(true, 1).expect("timer");
    l.timer_set(t, on_timer, 10, 10);
    net.advance(95);
    l.run_once(Some(0)).expect("run");
    assert_eq!(fires(&l), vec![(1, t0 + 95)], "no burst of missed fires");
    assert_eq!(
        l.next_deadline(),
        Some(t0 + 105),
        "next fire one period later"
    );
}

#[test]
fn timer_close_inside_own_callback_stops_repeating_timer() {
    let net = quiet_net();
    let mut l = make(&net, 4);
    l.ext_mut().close_self_after = 2;
    let t0 = net.now_ms();
    let t = l.timer_create(false, 5).expect("timer");
    l.timer_set(t, close_self, 10, 10);
    l.run().expect("run returns once the timer closed itself");
    assert_eq!(fires(&l), vec![(5, t0 + 10), (5, t0 + 20)]);
    assert_eq!(l.slots_in_use()[3], 0, "slot freed");
    assert_eq!(l.timer_ext(t), None);
    assert_eq!(l.timer_is_armed(t), None);
    net.advance(1000);
    for _ in 0..3 {
        l.run_once(Some(0)).expect("run");
    }
    assert_eq!(fires(&l).len(), 2, "no further firing");
}

#[test]
fn timer_closed_by_earlier_timer_in_same_pass_does_not_fire() {
    let net = quiet_net();
    let mut l = make(&net, 4);
    let a = l.timer_create(true, 1).expect("a");
    let b = l.timer_create(true, 2).expect("b");
    l.timer_set(a, close_other, 10, 0);
    l.timer_set(b, on_timer, 20, 0);
    l.ext_mut().close_target = Some(b);
    net.advance(50);
    l.run_once(Some(0)).expect("run");
    let labels: Vec<u32> = fires(&l).iter().map(|(x, _)| *x).collect();
    assert_eq!(labels, vec![1]);
    assert_eq!(l.timer_ext(b), None);
}

#[test]
fn timer_ext_and_ext_mut() {
    let net = quiet_net();
    let mut l = make(&net, 4);
    let t = l.timer_create(true, 10).expect("timer");
    assert_eq!(l.timer_ext(t), Some(&10));
    *l.timer_ext_mut(t).expect("ext") += 5;
    assert_eq!(l.timer_ext(t), Some(&15));
    l.timer_set(t, on_timer, 1, 0);
    l.run_once(None).expect("run");
    assert_eq!(fires(&l)[0].0, 15, "the callback sees the changed ext");
    assert_eq!(l.timer_close(t), Some(15), "close hands the ext back");
}

#[test]
fn closed_timer_handle_is_rejected_and_never_aliases_new_timer() {
    let net = quiet_net();
    let mut l = make(&net, 1);
    let old = l.timer_create(true, 1).expect("old");
    assert_eq!(l.timer_close(old), Some(1));
    assert_eq!(l.timer_ext(old), None);
    assert_eq!(l.timer_ext_mut(old), None);
    assert_eq!(l.timer_is_armed(old), None);
    assert_eq!(l.timer_close(old), None, "double close is rejected");

    let new = l.timer_create(false, 2).expect("new");
    assert_eq!(new.index(), old.index(), "the slot is reused");
    assert_ne!(new.generation(), old.generation());
    assert_eq!(l.timer_ext(old), None);
    l.timer_set(old, on_timer, 5, 0);
    assert_eq!(
        l.timer_is_armed(new),
        Some(false),
        "old handle did not arm the new timer"
    );
    assert_eq!(l.timer_close(old), None);
    assert_eq!(
        l.timer_ext(new),
        Some(&2),
        "old handle did not close the new timer"
    );
    assert!(l.is_alive(), "keepalive untouched by the stale close");
    net.advance(100);
    l.run_once(Some(0)).expect("run");
    assert!(fires(&l).is_empty());
}

#[test]
fn timer_rearmed_with_zero_ms_in_callback_fires_next_pass_not_in_a_loop() {
    let net = quiet_net();
    let mut l = make(&net, 4);
    let t0 = net.now_ms();
    let t = l.timer_create(true, 3).expect("timer");
    l.ext_mut().rearm = Some((0, 1000));
    l.ext_mut().rearm_budget = 20;
    l.timer_set(t, rearm, 10, 0);
    for n in 1..=3 {
        l.run_once(None).expect("run");
        assert_eq!(fires(&l).len(), n, "exactly once per iteration");
        assert_eq!(net.now_ms(), t0 + 10, "no wait: it is due again at once");
        assert_eq!(l.next_deadline(), Some(t0 + 10));
    }
    l.ext_mut().rearm = None;
    l.run_once(None).expect("run");
    assert_eq!(fires(&l).len(), 4);
    assert!(fires(&l)
        .iter()
        .all(|(label, at)| (*label, *at) == (3, t0 + 10)));
    assert_eq!(
        l.next_deadline(),
        Some(t0 + 1010),
        "without a re-arm the repeat of the last setting applies"
    );
}

#[test]
fn stale_timer_set_after_close_inside_callback_is_ignored() {
    let net = quiet_net();
    let mut l = make(&net, 4);
    l.ext_mut().close_self_after = 1;
    let t = l.timer_create(true, 1).expect("timer");
    l.timer_set(t, close_self, 10, 10);
    l.run_once(None).expect("run");
    l.timer_set(t, on_timer, 1, 1);
    assert_eq!(l.timer_is_armed(t), None);
    assert_eq!(l.next_deadline(), None);
}
