//! Loop-level behaviour: wake-ups, `pre`/`post`, user polls.

use std::time::{Duration, Instant};

use usockets_core::{Interest, Settings, Wake};

use crate::harness::*;
use crate::ShimUnderTest;

fn wakeups<S: ShimUnderTest>(l: &L<S>) -> Vec<Ev> {
    events(l, |e| matches!(e, Ev::Wakeup { .. }))
}

/// A `Wake::wake` from another thread interrupts a waiting `run_once` (well before its 1 s
/// timeout) and runs the `wakeup` callback on the loop thread; `Cx::wakeup` works from the
/// loop thread; a waker outliving the loop is harmless.
pub fn check_wakeup_from_another_thread<S: ShimUnderTest>() {
    let mut l = new_loop::<S>(Settings::default(), Caps::default());
    let waker = l.waker();
    let start = Instant::now();
    let thread = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        waker.wake();
    });
    let bound = Bound {
        step_ms: 1000,
        shim_ms: u64::MAX,
        iterations: u64::MAX,
        ..Bound::of::<S>()
    };
    drive_bounded(&mut l, bound, "the wakeup callback", |l| {
        !wakeups(l).is_empty()
    });
    let waited = start.elapsed();
    thread.join().expect("waking thread");
    assert_eq!(
        wakeups(&l),
        [Ev::Wakeup {
            on_loop_thread: true
        }],
        "one wakeup callback, on the loop thread"
    );
    assert!(
        waited < Duration::from_millis(900),
        "a wake must interrupt a run_once waiting up to 1000 ms; took {waited:?}"
    );
    l.wakeup();
    drive(&mut l, "a wakeup from the loop thread", |l| {
        wakeups(l).len() >= 2
    });
    let late = l.waker();
    drop(l);
    late.wake();
}

/// `pre` and `post` run once per iteration, `iteration_number` counts iterations;
/// `next_deadline` reflects the sweep once integrated and the earliest timer.
pub fn check_pre_and_post_callbacks<S: ShimUnderTest>() {
    let mut l = new_loop::<S>(Settings::default(), Caps::default());
    assert_eq!(l.iteration_number(), 0);
    assert_eq!(l.next_deadline(), None, "nothing to wait for yet");
    for i in 1..=5u64 {
        l.run_once(Some(0)).expect("run_once");
        assert_eq!(l.iteration_number(), i);
        assert_eq!((l.ext().pre_runs, l.ext().post_runs), (i, i));
    }
    l.integrate();
    let now = l.clock_ms();
    let sweep = l
        .next_deadline()
        .expect("the sweep is armed once integrated");
    assert!(sweep > now && sweep <= now + Settings::default().sweep_period_ms);
    let t = l.timer_create(true, 0).expect("timer_create");
    l.timer_set(t, timer_log::<S>, 50, 0);
    let d = l.next_deadline().expect("deadline");
    assert!(d <= l.clock_ms() + 50, "the timer is the next deadline");
    l.timer_close(t);
}

/// A user poll on a pipe (when [`ShimUnderTest::pipe`] gives one): quiet while the pipe is
/// empty, readable once written, silent after `poll_stop` even with data pending, readable
/// again after `poll_start`; a poll on the write end reports writable; `poll_free` returns
/// the ext.
pub fn check_user_poll_on_pipe<S: ShimUnderTest>() {
    let mut l = new_loop::<S>(Settings::default(), Caps::default());
    let Some((r, w)) = S::pipe(l.shim()) else {
        eprintln!("note: check_user_poll_on_pipe not run: ShimUnderTest::pipe returns None");
        return;
    };
    let p = l.poll_create(false, READ_END).expect("poll_create");
    assert!(l.is_alive(), "a non-fallthrough poll keeps the loop alive");
    let r_number = format!("{r:?}");
    assert!(
        matches!(l.poll_init(p, r), Ok(None)),
        "poll_init takes the descriptor"
    );
    l.poll_set_callback(p, poll_cb::<S>)
        .expect("poll_set_callback");
    l.poll_start(p, Interest::READABLE).expect("poll_start");
    assert_eq!(l.poll_events(p), Some(Interest::READABLE));
    assert_eq!(
        l.poll_fd(p).map(|fd| format!("{fd:?}")),
        Some(r_number),
        "poll_fd lends the descriptor given"
    );
    let polls_of = |l: &L<S>, p| count(l, |e| matches!(e, Ev::Poll { p: x, .. } if *x == p));
    idle(&mut l, 50);
    assert_eq!(polls_of(&l, p), 0, "an empty pipe is not readable");
    S::write_pipe(l.shim(), &w, b"ping");
    drive(&mut l, "the poll to report readable", |l| {
        l.ext().pipe_rx.len() >= 4
    });
    assert_eq!(l.ext().pipe_rx, b"ping");
    assert!(
        l.ext().log.contains(&Ev::Poll {
            p,
            ready: Interest::READABLE,
            error: false
        }),
        "readable reported within the interest: {:?}",
        tail(&l.ext().log)
    );
    l.poll_stop(p).expect("poll_stop");
    assert_eq!(l.poll_events(p), Some(Interest::NONE));
    let before = polls_of(&l, p);
    S::write_pipe(l.shim(), &w, b"pong");
    idle(&mut l, 50);
    assert_eq!(polls_of(&l, p), before, "a stopped poll reports nothing");
    l.poll_start(p, Interest::READABLE)
        .expect("poll_start again");
    drive(&mut l, "the restarted poll to report", |l| {
        l.ext().pipe_rx.len() >= 8
    });
    assert_eq!(l.ext().pipe_rx, b"pingpong");
    let q = l.poll_create(true, WRITE_END).expect("poll_create");
    assert!(
        matches!(l.poll_init(q, w), Ok(None)),
        "poll_init takes the descriptor"
    );
    l.poll_set_callback(q, poll_cb::<S>)
        .expect("poll_set_callback");
    l.poll_start(q, Interest::WRITABLE).expect("poll_start");
    drive(&mut l, "the write end to report writable", |l| {
        polls_of(l, q) > 0
    });
    assert!(
        l.ext().log.contains(&Ev::Poll {
            p: q,
            ready: Interest::WRITABLE,
            error: false
        }),
        "writable reported"
    );
    let (ext, r) = l.poll_free(p).expect("poll_free");
    assert_eq!(ext, READ_END, "poll_free returns the ext");
    let r = r.expect("poll_free gives the descriptor back");
    let (ext, w) = l.poll_free(q).expect("poll_free");
    assert_eq!(ext, WRITE_END);
    let w = w.expect("poll_free gives the descriptor back");
    assert_eq!(l.poll_events(p), None, "stale poll handle");
    assert!(!l.is_alive());
    assert_eq!(l.slots_in_use()[4], 0);
    // Back with its owner and still open: what was written is still there to read.
    S::write_pipe(l.shim(), &w, b"!");
    let mut buf = [0u8; 8];
    assert_eq!(
        S::read_pipe(l.shim(), &r, &mut buf),
        1,
        "the pipe is still open"
    );
    assert_eq!(&buf[..1], b"!");
}
