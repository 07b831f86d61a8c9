//! Socket timeouts on the virtual clock: never early, at most one sweep tick late, any value;
//! re-armed from their own callback, periodic with exactly their period.

mod support;

use support::{new_loop, quiet_net, run_until, Caps, SimNet};
use usockets_core::{
    ContextCallbacks, Cx, ListenOptions, ListenTarget, Loop, LoopCallbacks, Settings, SocketId,
};

#[derive(Default)]
struct Fired {
    short: Option<u64>,
    long: Option<u64>,
    opened: Option<SocketId>,
    /// Re-arm the short timeout with this many seconds each time it fires (0: do not).
    rearm_short: u32,
    /// Re-arm the long timeout with this many minutes each time it fires (0: do not).
    rearm_long: u32,
    /// When each re-armed timeout fired.
    fired_at: Vec<u64>,
}

sim_config!(T {
    loop_ext: Fired,
    context_ext: (),
    socket_ext: (),
    timer_ext: (),
    poll_ext: ()
});

fn on_open(cx: &mut Cx<T>, s: SocketId, _: bool, _: &[u8]) {
    cx.ext_mut().opened = Some(s);
}
fn on_timeout(cx: &mut Cx<T>, s: SocketId) {
    let now = cx.now_ms();
    cx.ext_mut().short = Some(now);
    let n = cx.ext().rearm_short;
    if n > 0 {
        cx.ext_mut().fired_at.push(now);
        cx.timeout(s, n);
    }
}
fn on_long_timeout(cx: &mut Cx<T>, s: SocketId) {
    let now = cx.now_ms();
    cx.ext_mut().long = Some(now);
    let n = cx.ext().rearm_long;
    if n > 0 {
        cx.ext_mut().fired_at.push(now);
        cx.long_timeout(s, n);
    }
}

const TICK: u64 = 4000;

/// A loop with one accepted socket, the sweep armed, and the clock moved off the tick grid.
fn setup() -> (SimNet, Loop<T>, SocketId) {
    let net = quiet_net();
    let mut l = new_loop::<T>(
        &net,
        Caps::default(),
        Fired::default(),
        LoopCallbacks::default(),
        Settings::default(),
    );
    let cbs = ContextCallbacks {
        on_open: Some(on_open),
        on_timeout: Some(on_timeout),
        on_long_timeout: Some(on_long_timeout),
        ..ContextCallbacks::default()
    };
    let ctx = l.context_create((), cbs).expect("context");
    let ls = l
        .listen(
            ctx,
            ListenTarget::Host {
                host: None,
                port: 0,
            },
            ListenOptions::default(),
            || (),
        )
        .expect("listen");
    let port = l.listen_port(ls).expect("port");
    let _peer = net.peer_connect(port).expect("peer connect");
    l.integrate();
    run_until(&mut l, 10, |l| l.ext().opened.is_some());
    let s = l.ext().opened.expect("accepted");
    net.advance(1234);
    l.run_once(Some(0)).expect("run");
    (net, l, s)
}

/// Jumps the clock to just before the deadline (checking nothing fired), then runs until the
/// timeout fires; returns when it fired.
fn fire_time(
    net: &SimNet,
    l: &mut Loop<T>,
    deadline: u64,
    fired: fn(&Fired) -> Option<u64>,
) -> u64 {
    let before = deadline - 1;
    if net.now_ms() < before {
        net.advance(before - net.now_ms());
    }
    l.run_once(Some(0)).expect("run");
    assert_eq!(fired(l.ext()), None, "fired early (before {deadline})");
    for _ in 0..100 {
        if let Some(at) = fired(l.ext()) {
            return at;
        }
        l.run_once(None).expect("run");
    }
    panic!("timeout never fired");
}

fn check_short(seconds: u32) {
    let (net, mut l, s) = setup();
    let set_at = net.now_ms();
    l.timeout(s, seconds);
    let deadline = set_at + u64::from(seconds) * 1000;
    let at = fire_time(&net, &mut l, deadline, |f| f.short);
    assert!(
        at >= deadline,
        "{seconds} s: fired at {at}, before {deadline}"
    );
    assert!(
        at <= deadline + TICK,
        "{seconds} s: fired at {at}, more than a tick after {deadline}"
    );
}

fn check_long(minutes: u32) {
    let (net, mut l, s) = setup();
    let set_at = net.now_ms();
    l.long_timeout(s, minutes);
    let deadline = set_at + u64::from(minutes) * 60_000;
    let at = fire_time(&net, &mut l, deadline, |f| f.long);
    assert!(
        at >= deadline,
        "{minutes} min: fired at {at}, before {deadline}"
    );
    assert!(
        at <= deadline + TICK,
        "{minutes} min: fired at {at}, more than a tick after {deadline}"
    );
}

#[test]
fn short_timeouts_never_early_at_most_one_tick_late() {
    for n in [1, 4, 5, 959, 960, 961, 3600, u32::MAX] {
        check_short(n);
    }
}

#[test]
fn long_timeouts_never_early_at_most_one_tick_late() {
    for n in [1, 4, 15, 16, 60, 1440, u32::MAX] {
        check_long(n);
    }
}

#[test]
fn zero_disables_and_resetting_replaces() {
    let (net, mut l, s) = setup();
    l.timeout(s, 5);
    l.timeout(s, 0);
    net.advance(60_000);
    for _ in 0..5 {
        l.run_once(Some(0)).expect("run");
    }
    assert_eq!(l.ext().short, None, "a disabled timeout never fires");
    l.timeout(s, 100);
    l.timeout(s, 8);
    let set_at = net.now_ms();
    let at = fire_time(&net, &mut l, set_at + 8000, |f| f.short);
    assert!(
        at <= set_at + 8000 + TICK,
        "the later call replaced the earlier one"
    );
}

#[test]
fn context_timestamp_counts_ticks_modulo_240() {
    let (net, mut l, s) = setup();
    let ctx = l.socket_context(s).expect("ctx");
    let t0 = l.context_timestamp(ctx).expect("timestamp");
    net.advance(TICK * 239);
    l.run_once(Some(0)).expect("run");
    let t1 = l.context_timestamp(ctx).expect("timestamp");
    assert_eq!((u64::from(t0) + 239) % 240, u64::from(t1));
    assert!(t1 < 240);
}

/// How late after its tick the loop runs the sweep, as a real loop's wake-up is: a few ms.
const WAKE_LATE_MS: u64 = 3;

/// Sets a timeout with `arm`, which the callback re-arms as `rearm` says; runs the loop through
/// four firings, each sweep a few ms after its tick; returns when they fired.
fn periodic(rearm: impl FnOnce(&mut Fired), arm: impl FnOnce(&mut Loop<T>, SocketId)) -> Vec<u64> {
    let (net, mut l, s) = setup();
    rearm(l.ext_mut());
    arm(&mut l, s);
    for _ in 0..10_000 {
        if l.ext().fired_at.len() >= 4 {
            break;
        }
        let next = l.next_deadline().expect("the sweep is armed");
        net.advance(next + WAKE_LATE_MS - net.now_ms());
        l.run_once(Some(0)).expect("run");
    }
    let at = l.ext().fired_at.clone();
    assert_eq!(at.len(), 4, "a re-armed timeout stopped firing: {at:?}");
    at
}

/// The gaps between firings.
fn gaps(at: &[u64]) -> Vec<u64> {
    at.windows(2).map(|w| w[1] - w[0]).collect()
}

#[test]
fn short_timeout_rearmed_in_on_timeout_fires_every_n_seconds() {
    for n in [4u32, 16, 5] {
        let at = periodic(|f| f.rearm_short = n, |l, s| l.timeout(s, n));
        // Periods that are not a multiple of the 4 s tick round up to one: 5 s → every 8 s.
        let period = u64::from(n).div_ceil(4) * TICK;
        assert_eq!(
            gaps(&at),
            vec![period; 3],
            "timeout({n}) re-armed in on_timeout fired at {at:?}"
        );
    }
}

#[test]
fn long_timeout_rearmed_in_on_long_timeout_fires_every_n_minutes() {
    for n in [1u32, 3] {
        let at = periodic(|f| f.rearm_long = n, |l, s| l.long_timeout(s, n));
        assert_eq!(
            gaps(&at),
            vec![u64::from(n) * 60_000; 3],
            "long_timeout({n}) re-armed in on_long_timeout fired at {at:?}"
        );
    }
}

/// `sweep_now` (`us_internal_timer_sweep`) fires, without an iteration, the timeouts due by
/// the clock, and only those.
#[test]
fn sweep_now_fires_only_what_is_due() {
    let (net, mut l, s) = setup();
    l.timeout(s, 4);
    net.advance(2000);
    l.sweep_now();
    assert_eq!(l.ext().short, None, "fired before its deadline");
    net.advance(8000);
    l.sweep_now();
    assert!(l.ext().short.is_some(), "due, and not fired by sweep_now");
}
