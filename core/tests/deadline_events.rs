//! Timers over a shim with deadline events (`OsShim::set_deadline`, the simulated shim's
//! default), and the same scenarios over one without them (core waits with timeouts): timers
//! and socket timeouts fire on time (never early; socket timeouts at most a sweep late), the
//! deadline is armed again only when the next timer work moves, loop time is read when first
//! needed after a wait and never goes back, and a loop driven by `run_once` from a foreign loop
//! keeps all of that.

mod support;

use support::{new_loop, quiet_net, Caps, SimNet};
use usockets_core::{
    ContextCallbacks, ContextId, Cx, ListenOptions, ListenTarget, Loop, LoopCallbacks, RecvBuf,
    Settings, SocketId, TimerId,
};
use usockets_shim_sim::SimShim;

/// What the callbacks saw.
#[derive(Default)]
struct Seen {
    net: Option<SimNet>,
    /// (timer label, loop time, clock) of every timer fire.
    fires: Vec<(u32, u64, u64)>,
    /// Loop time and clock of every socket timeout.
    timeouts: Vec<(u64, u64)>,
    /// Sockets opened.
    sockets: Vec<SocketId>,
    /// Set a socket timeout of this many seconds in `on_data`.
    timeout_on_data: Option<u32>,
    /// Set this timer for this many ms in `on_data`.
    timer_on_data: Option<(TimerId, u64)>,
    /// In `on_data`: clock reads before, loop time, clock reads after a second `now_ms`, the
    /// clock.
    data_reads: Vec<(u64, u64, u64, u64)>,
    /// Ask loop time in `on_data`.
    ask_now_on_data: bool,
}

sim_config!(T {
    loop_ext: Seen,
    context_ext: (),
    socket_ext: (),
    timer_ext: u32,
    poll_ext: ()
});

fn net_of(cx: &Cx<T>) -> SimNet {
    cx.ext().net.clone().expect("net")
}

fn on_timer(cx: &mut Cx<T>, t: TimerId) {
    let label = cx.timer_ext(t).copied().unwrap_or(u32::MAX);
    let now = cx.now_ms();
    let clock = net_of(cx).now_ms();
    cx.ext_mut().fires.push((label, now, clock));
}

fn on_open(cx: &mut Cx<T>, s: SocketId, _: bool, _: &[u8]) {
    cx.ext_mut().sockets.push(s);
}

fn on_data(cx: &mut Cx<T>, s: SocketId, _: &mut RecvBuf<'_>) {
    if cx.ext().ask_now_on_data {
        let net = net_of(cx);
        let before = net.syscalls().clock;
        let now = cx.now_ms();
        assert_eq!(cx.now_ms(), now, "loop time moved within the iteration");
        let after = net.syscalls().clock;
        cx.ext_mut()
            .data_reads
            .push((before, now, after, net.now_ms()));
    }
    if let Some(secs) = cx.ext().timeout_on_data {
        cx.timeout(s, secs);
    }
    if let Some((t, ms)) = cx.ext_mut().timer_on_data.take() {
        cx.timer_set(t, on_timer, ms, 0);
    }
}

fn on_timeout(cx: &mut Cx<T>, s: SocketId) {
    let now = cx.now_ms();
    let clock = net_of(cx).now_ms();
    cx.ext_mut().timeouts.push((now, clock));
    cx.close(s, 0, None);
}

fn callbacks() -> ContextCallbacks<T> {
    ContextCallbacks {
        on_open: Some(on_open),
        on_data: Some(on_data),
        on_timeout: Some(on_timeout),
        ..ContextCallbacks::default()
    }
}

/// A loop over `net` (its shim with deadline events or not, as `deadline_events` says).
fn new(net: &SimNet, deadline_events: bool, settings: Settings) -> Loop<T> {
    net.set_deadline_events(deadline_events);
    let seen = Seen {
        net: Some(net.clone()),
        ..Seen::default()
    };
    let l = new_loop::<T>(
        net,
        Caps::default(),
        seen,
        LoopCallbacks::default(),
        settings,
    );
    assert_eq!(l.shim().has_deadline_events(), deadline_events);
    l
}

/// A loop with a listener and one peer connected and accepted.
fn served(
    net: &SimNet,
    deadline_events: bool,
    settings: Settings,
) -> (Loop<T>, usockets_shim_sim::PeerId) {
    let mut l = new(net, deadline_events, settings);
    l.integrate();
    let ctx: ContextId = l.context_create((), callbacks()).expect("context");
    let target = ListenTarget::Host {
        host: Some("127.0.0.1"),
        port: 0,
    };
    let ls = l
        .listen(ctx, target, ListenOptions::default(), || ())
        .expect("listen");
    let port = l.listen_port(ls).expect("port");
    let peer = net.peer_connect(port).expect("peer");
    for _ in 0..10 {
        if !l.ext().sockets.is_empty() {
            break;
        }
        l.run_once(Some(0)).expect("run_once");
    }
    assert_eq!(l.ext().sockets.len(), 1, "accepted");
    (l, peer)
}

#[test]
fn timers_fire_when_due_never_before_in_both_modes() {
    for deadline_events in [true, false] {
        let net = quiet_net();
        let mut l = new(&net, deadline_events, Settings::default());
        l.integrate();
        let start = net.now_ms();
        let a = l.timer_create(false, 1).expect("timer");
        let b = l.timer_create(false, 2).expect("timer");
        let c = l.timer_create(false, 3).expect("timer");
        l.timer_set(a, on_timer, 250, 0);
        l.timer_set(b, on_timer, 1_000, 0);
        l.timer_set(c, on_timer, 70, 300);
        for _ in 0..100 {
            if l.ext().fires.len() >= 6 {
                break;
            }
            l.run_once(None).expect("run_once");
        }
        let fires: Vec<(u32, u64)> = l
            .ext()
            .fires
            .iter()
            .map(|&(label, now, clock)| {
                assert_eq!(now, clock, "loop time is the clock at a timer's fire");
                (label, now - start)
            })
            .collect();
        // The simulated clock jumps to each deadline: each fires exactly when due.
        assert_eq!(
            fires,
            [(3, 70), (1, 250), (3, 370), (3, 670), (3, 970), (2, 1_000)],
            "deadline events: {deadline_events}"
        );
        l.timer_close(a);
        l.timer_close(b);
        l.timer_close(c);
    }
}

#[test]
fn the_deadline_is_armed_again_only_when_the_next_timer_work_moves() {
    let net = quiet_net();
    let (mut l, peer) = served(&net, true, Settings::default());
    l.ext_mut().timeout_on_data = Some(30);
    // The sweep's next tick is armed.
    l.run_once(Some(0)).expect("run_once");
    let sweep = l
        .shim()
        .armed_deadline()
        .expect("the sweep's tick is armed");
    let before = net.syscalls();
    let iterations = 100;
    for i in 0..iterations {
        assert_eq!(net.peer_send(peer, b"ping"), 4);
        let clock = net.syscalls().clock;
        l.run_once(None).expect("run_once");
        // One clock read per iteration, for the timeout its callback set.
        assert_eq!(net.syscalls().clock - clock, 1, "iteration {i}");
    }
    let after = net.syscalls();
    assert_eq!(
        after.set_deadline, before.set_deadline,
        "armed again per request"
    );
    assert_eq!(after.wait - before.wait, iterations);
    assert_eq!(l.shim().armed_deadline(), Some(sweep));
    // An iteration that sets no timeout reads no clock at all.
    l.ext_mut().timeout_on_data = None;
    assert_eq!(net.peer_send(peer, b"ping"), 4);
    let clock = net.syscalls().clock;
    l.run_once(None).expect("run_once");
    assert_eq!(net.syscalls().clock, clock, "a clock read nothing needed");
    // The sweep's tick comes: armed again for the next one, once.
    let set = net.syscalls().set_deadline;
    for _ in 0..100 {
        if net.now_ms() >= sweep {
            break;
        }
        l.run_once(None).expect("run_once");
    }
    l.run_once(Some(0)).expect("run_once");
    assert_eq!(net.syscalls().set_deadline, set + 1);
    let next = l.shim().armed_deadline().expect("the next tick");
    assert_eq!(next, sweep + Settings::default().sweep_period_ms);
}

#[test]
fn loop_time_is_read_when_first_needed_after_the_wait_and_never_goes_back() {
    let net = quiet_net();
    let (mut l, peer) = served(&net, true, Settings::default().with_sweep_period_ms(60_000));
    l.ext_mut().ask_now_on_data = true;
    let stale = l.now_ms();
    // Time passes between iterations, as it does while a loop waits.
    net.advance(5_000);
    assert_eq!(
        l.now_ms(),
        stale,
        "outside an iteration loop time reads no clock"
    );
    assert_eq!(net.peer_send(peer, b"x"), 1);
    l.run_once(Some(0)).expect("run_once");
    let &(before, now, after, clock) = l.ext().data_reads.last().expect("on_data ran");
    assert_eq!(now, clock, "the first call after the wait reads the clock");
    assert!(now >= stale + 5_000);
    assert_eq!(after, before + 1, "one read, then loop time is kept");
    assert_eq!(l.now_ms(), now, "loop time as the iteration left it");
    // Never back, whatever is asked when.
    net.advance(1);
    assert_eq!(net.peer_send(peer, b"y"), 1);
    l.run_once(Some(0)).expect("run_once");
    let &(_, later, _, _) = l.ext().data_reads.last().expect("on_data ran");
    assert_eq!(later, now + 1);
}

#[test]
fn socket_timeouts_are_never_early_and_at_most_a_sweep_late_in_both_modes() {
    let period = Settings::default().sweep_period_ms;
    for deadline_events in [true, false] {
        for offset in [0, 1, 1_999, 3_999] {
            let net = quiet_net();
            let (mut l, peer) = served(&net, deadline_events, Settings::default());
            l.ext_mut().timeout_on_data = Some(3);
            // Idle for a while with a stale loop time, then a request arms the timeout.
            net.advance(offset);
            assert_eq!(net.peer_send(peer, b"req"), 3);
            l.run_once(Some(0)).expect("run_once");
            let armed_at = net.now_ms();
            for _ in 0..100 {
                if !l.ext().timeouts.is_empty() {
                    break;
                }
                l.run_once(None).expect("run_once");
            }
            let (fired, clock) = *l.ext().timeouts.first().expect("the timeout fired");
            assert_eq!(fired, clock);
            let due = armed_at + 3_000;
            let case = format!("deadline events {deadline_events}, offset {offset}");
            assert!(fired >= due, "{case}: fired at {fired}, before {due}");
            assert!(
                fired <= due + period,
                "{case}: fired at {fired}, a sweep after {due}"
            );
        }
    }
}

#[test]
fn a_timer_set_in_a_callback_before_the_armed_deadline_arms_it_again() {
    let net = quiet_net();
    let (mut l, peer) = served(&net, true, Settings::default());
    l.run_once(Some(0)).expect("run_once");
    let sweep = l.shim().armed_deadline().expect("the sweep is armed");
    let t = l.timer_create(true, 7).expect("timer");
    l.ext_mut().timer_on_data = Some((t, 30));
    assert_eq!(net.peer_send(peer, b"x"), 1);
    l.run_once(Some(0)).expect("run_once");
    let due = net.now_ms() + 30;
    assert!(due < sweep);
    // The next wait sleeps until the timer, not the sweep: nothing else happens meanwhile.
    l.run_once(None).expect("run_once");
    assert_eq!(l.ext().fires, [(7, due, due)]);
    // And then the sweep's tick is armed again.
    l.run_once(Some(0)).expect("run_once");
    assert_eq!(l.shim().armed_deadline(), Some(sweep));
}

#[test]
fn run_once_from_a_foreign_loop_fires_on_its_deadline_in_both_modes() {
    for deadline_events in [true, false] {
        let net = quiet_net();
        let mut l = new(&net, deadline_events, Settings::default());
        l.integrate();
        let start = net.now_ms();
        let t = l.timer_create(false, 1).expect("timer");
        l.timer_set(t, on_timer, 1_500, 500);
        // The foreign loop sleeps until core's next deadline (its own clock moving), then
        // polls with `run_once(Some(0))`.
        for _ in 0..40 {
            let next = l.next_deadline().expect("a timer and the sweep are armed");
            let now = net.now_ms();
            net.advance(next.saturating_sub(now));
            l.run_once(Some(0)).expect("run_once");
            if l.ext().fires.len() == 4 {
                break;
            }
        }
        let at: Vec<u64> = l.ext().fires.iter().map(|f| f.1 - start).collect();
        assert_eq!(
            at,
            [1_500, 2_000, 2_500, 3_000],
            "deadline events: {deadline_events}"
        );
        l.timer_close(t);
    }
}

#[test]
fn a_deadline_reported_before_the_clock_reaches_it_is_armed_again_not_run_early() {
    let net = quiet_net();
    // The shim's timer runs 5 ms ahead of its clock (a coarser clock).
    let shim: SimShim = net.shim().with_deadline_early_by(5);
    let seen = Seen {
        net: Some(net.clone()),
        ..Seen::default()
    };
    let mut l = match Loop::<T>::new(
        shim,
        Caps::default().storage(),
        seen,
        LoopCallbacks::default(),
        Settings::default(),
    ) {
        Ok(l) => l,
        Err(e) => panic!("loop: {e}"),
    };
    l.integrate();
    let t = l.timer_create(false, 9).expect("timer");
    let due = net.now_ms() + 100;
    l.timer_set(t, on_timer, 100, 0);
    let waits = net.syscalls().wait;
    for _ in 0..20 {
        if !l.ext().fires.is_empty() {
            break;
        }
        l.run_once(None).expect("run_once");
    }
    let (_, fired, clock) = *l.ext().fires.first().expect("fired, no hang");
    assert_eq!(fired, clock);
    assert!(fired >= due, "fired at {fired}, before {due}");
    // Reported with the clock at due - 5, and again at once on every wait after core armed it
    // again (each taking the clock 1 ms further): five waits until the clock got there.
    assert_eq!(net.syscalls().wait - waits, 5);
    l.timer_close(t);
}

#[test]
fn without_deadline_events_core_never_arms_a_deadline_and_reads_the_clock_per_wait() {
    let net = quiet_net();
    let (mut l, peer) = served(&net, false, Settings::default());
    let set = net.syscalls().set_deadline;
    assert_eq!(set, 1, "only the probe of Loop::new");
    for _ in 0..10 {
        assert_eq!(net.peer_send(peer, b"x"), 1);
        let clock = net.syscalls().clock;
        l.run_once(None).expect("run_once");
        // At the start of `run_once` and when its wait returns.
        assert_eq!(net.syscalls().clock - clock, 2);
    }
    assert_eq!(net.syscalls().set_deadline, set);
    assert_eq!(l.shim().armed_deadline(), None);
}
