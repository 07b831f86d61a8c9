//! Socket timeouts and timers, measured on the shim's clock.

use std::time::Duration;

use usockets_core::{Event, OsShim, Settings, SocketId, TimerId, Token};

use crate::harness::*;
use crate::ShimUnderTest;

fn timeouts_of<S: ShimUnderTest>(l: &L<S>) -> Vec<Ev> {
    events(l, |e| {
        matches!(e, Ev::Timeout { .. } | Ev::LongTimeout { .. })
    })
}

fn timeout_fired_at<S: ShimUnderTest>(l: &L<S>, s: SocketId) -> Option<u64> {
    l.ext().log.iter().find_map(|e| match e {
        Ev::Timeout { s: x, at } if *x == s => Some(*at),
        _ => None,
    })
}

fn timeout_within_sweep<S: ShimUnderTest>(settings: Settings, bound: Bound) {
    let sweep = settings.sweep_period_ms;
    let mut f = Fixture::<S>::tcp_with(LOCAL4, settings, Caps::default());
    f.l.integrate();
    let (c, s) = f.pair();
    let t0 = f.l.clock_ms();
    f.l.timeout(s, 1);
    drive_bounded(&mut f.l, bound, "on_timeout", |l| {
        timeout_fired_at(l, s).is_some()
    });
    let at = timeout_fired_at(&f.l, s).expect("fired");
    assert_within(
        "on_timeout after timeout(s, 1), ms after the call",
        at - t0,
        1000,
        1000 + sweep + S::SLACK_MS,
    );
    assert_eq!(
        f.l.is_closed(s),
        Some(false),
        "on_timeout does not close by itself"
    );
    idle(&mut f.l, 2 * S::SWEEP_MS);
    assert_eq!(
        timeouts_of(&f.l),
        [Ev::Timeout { s, at }],
        "fires once, only for that socket"
    );
    assert_eq!(f.l.is_closed(c), Some(false));
}

/// `timeout(s, 1)` with the shim's short sweep ([`ShimUnderTest::SWEEP_MS`]): `on_timeout`
/// fires once, no sooner than 1 s of shim clock and at most one sweep period (plus
/// [`ShimUnderTest::SLACK_MS`]) later.
pub fn check_socket_timeout_short_sweep<S: ShimUnderTest>() {
    timeout_within_sweep::<S>(short_sweep::<S>(), Bound::of::<S>());
}

/// `timeout(s, 1)` with the default 4 s sweep: `on_timeout` fires between 1 s and 5 s (plus
/// slack) of shim clock.
pub fn check_socket_timeout_default_sweep<S: ShimUnderTest>() {
    let settings = Settings::default();
    let mut bound = Bound::of::<S>();
    bound.wall = bound.wall.max(Duration::from_millis(
        settings.sweep_period_ms + 1000 + S::SLACK_MS,
    )) * 2;
    timeout_within_sweep::<S>(settings, bound);
}

/// `timeout(s, 0)` and `long_timeout(s, 0)` disable what was set; adoption resets timeouts; a
/// long timeout of 1 minute does not fire early. A control socket's `timeout(s, 1)` fires in
/// the same window. (A long timeout firing is not checked: minutes of real time.)
pub fn check_timeouts_disabled_by_zero_and_adoption<S: ShimUnderTest>() {
    let mut f = Fixture::<S>::tcp_with(LOCAL4, short_sweep::<S>(), Caps::default());
    f.l.integrate();
    let (c1, s1) = f.pair();
    let (c2, s2) = f.pair();
    let child =
        f.l.context_create(Ctx::tag(CHILD), callbacks::<S>())
            .expect("context_create");
    let t0 = f.l.clock_ms();
    f.l.timeout(s1, 1);
    f.l.timeout(s1, 0);
    f.l.long_timeout(c1, 1);
    f.l.long_timeout(c1, 0);
    f.l.long_timeout(s1, 1);
    f.l.timeout(c2, 1);
    assert_eq!(f.l.adopt(c2, child), Some(c2));
    f.l.timeout(s2, 1);
    drive(&mut f.l, "the control timeout", |l| {
        timeout_fired_at(l, s2).is_some()
    });
    let until = t0 + 1000 + 2 * S::SWEEP_MS + S::SLACK_MS;
    drive(&mut f.l, "the timeout window to pass", |l| {
        l.clock_ms() >= until
    });
    let seen: Vec<SocketId> = timeouts_of(&f.l)
        .iter()
        .map(|e| match e {
            Ev::Timeout { s, .. } | Ev::LongTimeout { s, .. } => *s,
            _ => unreachable!(),
        })
        .collect();
    assert_eq!(
        seen,
        [s2],
        "only the control fires (s1 = {s1:?} disabled, c1 = {c1:?} long disabled, c2 = {c2:?} adopted)"
    );
}

fn timer_fires<S: ShimUnderTest>(l: &L<S>) -> Vec<(TimerId, u64)> {
    l.ext()
        .log
        .iter()
        .filter_map(|e| match e {
            Ev::Timer { t, at } => Some((*t, *at)),
            _ => None,
        })
        .collect()
}

/// Three one-shot timers of 30, 10 and 20 ms fire in deadline order (10, 20, 30), each no
/// sooner than its delay, once.
pub fn check_timers_fire_in_deadline_order<S: ShimUnderTest>() {
    let mut l = new_loop::<S>(Settings::default(), Caps::default());
    let t30 = l.timer_create(false, 30).expect("timer_create");
    let t10 = l.timer_create(false, 10).expect("timer_create");
    let t20 = l.timer_create(false, 20).expect("timer_create");
    let t0 = l.clock_ms();
    l.timer_set(t30, timer_log::<S>, 30, 0);
    l.timer_set(t10, timer_log::<S>, 10, 0);
    l.timer_set(t20, timer_log::<S>, 20, 0);
    assert_eq!(l.timer_is_armed(t10), Some(true));
    drive(&mut l, "three timers", |l| timer_fires(l).len() >= 3);
    let fires = timer_fires(&l);
    let order: Vec<TimerId> = fires.iter().map(|f| f.0).collect();
    assert_eq!(order, [t10, t20, t30], "deadline order");
    for (t, at) in &fires {
        let ms = u64::from(*l.timer_ext(*t).expect("ext"));
        assert!(
            *at >= t0 + ms,
            "a {ms} ms timer fired early: {} ms",
            at - t0
        );
    }
    idle(&mut l, 60);
    assert_eq!(timer_fires(&l).len(), 3, "one-shot timers fire once");
    assert_eq!(l.timer_is_armed(t30), Some(false));
    assert_eq!(l.timer_close(t30), Some(30), "timer_close returns the ext");
    assert_eq!(l.timer_ext(t30), None);
    assert_eq!(l.timer_close(t30), None, "stale timer handle");
    l.timer_close(t10);
    l.timer_close(t20);
    assert_eq!(l.slots_in_use()[3], 0);
}

/// A repeating timer (20 ms, then every 20 ms) fires on schedule and closes itself inside its
/// third callback: no fourth fire. A timer armed then disarmed (`timer_set(.., 0, 0)`) never
/// fires.
pub fn check_timer_repeat_and_close_in_callback<S: ShimUnderTest>() {
    let mut l = new_loop::<S>(Settings::default(), Caps::default());
    let t = l.timer_create(false, 0).expect("timer_create");
    let d = l.timer_create(true, 0).expect("timer_create");
    let t0 = l.clock_ms();
    l.timer_set(t, timer_close_at_3::<S>, 20, 20);
    l.timer_set(d, timer_log::<S>, 30, 0);
    l.timer_set(d, timer_log::<S>, 0, 0);
    assert_eq!(l.timer_is_armed(d), Some(false), "0, 0 disarms");
    drive(&mut l, "the repeating timer to close itself", |l| {
        l.timer_ext(t).is_none()
    });
    idle(&mut l, 100);
    let fires = timer_fires(&l);
    assert_eq!(
        fires.iter().map(|f| f.0).collect::<Vec<_>>(),
        [t, t, t],
        "three fires, none after timer_close in the callback, none of the disarmed timer"
    );
    for (k, (_, at)) in fires.iter().enumerate() {
        let due = t0 + 20 * (k as u64 + 1);
        assert!(*at >= due, "repeat {k} fired early: {} < {due}", at);
    }
    assert_eq!(l.slots_in_use()[3], 1, "only the disarmed timer is left");
    l.timer_close(d);
    assert_eq!(l.slots_in_use()[3], 0);
}

/// An armed fallthrough timer does not keep `Loop::run` going (it returns at once, without
/// firing it); a non-fallthrough timer does, armed or not, until it is closed (here by its
/// own callback on its third fire).
pub fn check_fallthrough_timer_does_not_keep_run_alive<S: ShimUnderTest>() {
    let mut l = new_loop::<S>(Settings::default(), Caps::default());
    let ft = l.timer_create(true, 0).expect("timer_create");
    l.timer_set(ft, timer_log::<S>, 60_000, 0);
    assert!(
        !l.is_alive(),
        "a fallthrough timer does not keep the loop alive"
    );
    run_guarded(&mut l);
    assert_eq!(timer_fires(&l), [], "run returned without waiting for it");
    let idle_timer = l.timer_create(false, 0).expect("timer_create");
    assert!(
        l.is_alive(),
        "an unarmed non-fallthrough timer keeps the loop alive"
    );
    l.timer_close(idle_timer);
    assert!(!l.is_alive());
    let keep = l.timer_create(false, 0).expect("timer_create");
    let t0 = l.clock_ms();
    l.timer_set(keep, timer_close_at_3::<S>, 10, 10);
    run_guarded(&mut l);
    let fires = timer_fires(&l);
    assert_eq!(
        fires.iter().map(|f| f.0).collect::<Vec<_>>(),
        [keep, keep, keep],
        "run kept going until the timer closed itself"
    );
    assert!(l.clock_ms() >= t0 + 30);
    assert!(!l.is_alive());
    assert_eq!(l.timer_close(ft), Some(0));
    assert_eq!(l.slots_in_use()[3], 0);
}

/// Waits (in steps of at most 50 ms) until the shim reports its deadline, for at most
/// `limit_ms` of its clock; the time of the report, or `None`.
fn deadline_reported<S: ShimUnderTest>(shim: &mut S::Shim, limit_ms: u64) -> Option<u64> {
    let mut events = [Event::EMPTY; 8];
    let end = shim.now_ms() + limit_ms;
    loop {
        let n = shim.wait(&mut events, Some(50)).expect("wait");
        if events[..n].iter().any(|e| e.token == Token::DEADLINE) {
            return Some(shim.now_ms());
        }
        if shim.now_ms() >= end {
            return None;
        }
    }
}

/// The shim's deadline ([`OsShim::set_deadline`]), when it has deadline events: `wait`
/// reports [`Token::DEADLINE`] once its clock reaches the deadline and never before, a time
/// already past at once; arming again replaces the deadline (an earlier one comes first) and
/// `None` disarms it. A shim without deadline events answers `Ok(false)` and is not checked
/// further (core then computes its waits' timeouts itself).
pub fn check_deadline_events<S: ShimUnderTest>() {
    let mut shim = S::new_shim();
    if !shim.set_deadline(None).expect("set_deadline(None)") {
        return;
    }
    let t0 = shim.now_ms();
    assert!(
        shim.set_deadline(Some(t0 + 30)).expect("arm"),
        "support is for life"
    );
    let at = deadline_reported::<S>(&mut shim, 2_000).expect("a deadline 30 ms away is reported");
    assert!(at >= t0 + 30, "reported {} ms early", t0 + 30 - at);
    // Reported, then disarmed: no report any more.
    shim.set_deadline(None).expect("disarm");
    assert_eq!(
        deadline_reported::<S>(&mut shim, 120),
        None,
        "a disarmed deadline is quiet"
    );
    // Armed far, then again nearer: the nearer one replaces it.
    let t1 = shim.now_ms();
    shim.set_deadline(Some(t1 + 10_000)).expect("arm far");
    shim.set_deadline(Some(t1 + 20)).expect("arm near");
    let at = deadline_reported::<S>(&mut shim, 2_000).expect("the nearer deadline is reported");
    assert!(
        at >= t1 + 20 && at < t1 + 10_000,
        "the second arming replaced the first"
    );
    // A time already past is reported by the next wait.
    let now = shim.now_ms();
    shim.set_deadline(Some(now.saturating_sub(5)))
        .expect("arm in the past");
    let mut events = [Event::EMPTY; 8];
    let n = shim.wait(&mut events, Some(1_000)).expect("wait");
    assert!(
        events[..n].iter().any(|e| e.token == Token::DEADLINE),
        "a deadline already past is reported by the next wait"
    );
    shim.set_deadline(None).expect("disarm");
}
