//! Socket timeouts on the virtual clock: never early, at most one sweep tick late, any value.

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
fn on_timeout(cx: &mut Cx<T>, _: SocketId) {
    let now = cx.now_ms();
    cx.ext_mut().short = Some(now);
}
fn on_long_timeout(cx: &mut Cx<T>, _: SocketId) {
    let now = cx.now_ms();
    cx.ext_mut().long = Some(now);
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
