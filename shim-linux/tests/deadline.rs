//! The deadline: a timerfd that ends a blocking wait at an absolute time of `now_ms`'s clock.

mod common;

use std::time::{Duration, Instant};

use common::shim;
use usockets_core::{Event, OsShim, Token, Wake};

/// Waits (with a safety timeout) until the deadline is reported; returns how long it took.
fn wait_for_deadline(shim: &mut impl OsShim, events: &mut [Event]) -> Duration {
    let start = Instant::now();
    loop {
        let n = shim.wait(events, Some(5_000)).expect("wait");
        if events[..n].iter().any(|e| e.token == Token::DEADLINE) {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "the deadline never came"
        );
    }
}

#[test]
fn the_deadline_ends_a_blocking_wait_on_time_and_never_before_now_ms_reaches_it() {
    let mut shim = shim();
    let mut events = [Event::EMPTY; 8];
    let at = shim.now_ms() + 60;
    assert!(shim.set_deadline(Some(at)).expect("arm"), "supported");
    // No timeout: only the deadline ends this wait.
    let start = Instant::now();
    let n = shim.wait(&mut events, None).expect("wait");
    let took = start.elapsed();
    assert_eq!(n, 1);
    assert_eq!(events[0].token, Token::DEADLINE);
    assert!(events[0].readable());
    assert!(shim.now_ms() >= at, "reported before now_ms reached it");
    assert!(took >= Duration::from_millis(50), "woke after {took:?}");
    assert!(took < Duration::from_secs(2), "woke after {took:?}");
    // Level-triggered: reported again until it is set again (core always sets it after a
    // report); disarming it, with no read, clears it.
    let n = shim.wait(&mut events, Some(0)).expect("wait");
    assert_eq!((n, events[0].token), (1, Token::DEADLINE));
    shim.set_deadline(None).expect("disarm");
    assert_eq!(shim.wait(&mut events, Some(30)).expect("wait"), 0);
}

#[test]
fn re_arming_moves_the_deadline_and_disarming_cancels_it() {
    let mut shim = shim();
    let mut events = [Event::EMPTY; 8];
    let now = shim.now_ms();
    // Armed far away, then brought nearer: the nearer one counts.
    shim.set_deadline(Some(now + 60_000)).expect("arm");
    shim.set_deadline(Some(now + 40)).expect("re-arm");
    let took = wait_for_deadline(&mut shim, &mut events);
    assert!(
        took < Duration::from_secs(2),
        "the re-armed deadline took {took:?}"
    );
    // Armed, then disarmed: nothing comes.
    let soon = shim.now_ms() + 20;
    shim.set_deadline(Some(soon)).expect("arm");
    shim.set_deadline(None).expect("disarm");
    assert_eq!(shim.wait(&mut events, Some(80)).expect("wait"), 0);
    // A deadline already past is reported at once.
    let past = shim.now_ms().saturating_sub(10);
    shim.set_deadline(Some(past)).expect("arm");
    let n = shim.wait(&mut events, Some(1_000)).expect("wait");
    assert_eq!((n, events[0].token), (1, Token::DEADLINE));
    // Armed again after it fired (no read in between): not reported until the new time.
    let at = shim.now_ms() + 50;
    shim.set_deadline(Some(at)).expect("re-arm after firing");
    assert_eq!(
        shim.wait(&mut events, Some(0)).expect("wait"),
        0,
        "the old expiry is gone"
    );
    wait_for_deadline(&mut shim, &mut events);
    assert!(shim.now_ms() >= at);
    // Time 0 is past too: it arms (an all-zero timerfd value would disarm).
    shim.set_deadline(Some(0)).expect("arm at 0");
    let n = shim.wait(&mut events, Some(1_000)).expect("wait");
    assert_eq!((n, events[0].token), (1, Token::DEADLINE));
}

#[test]
fn the_deadline_and_the_waker_come_in_one_wait() {
    let mut shim = shim();
    let mut events = [Event::EMPTY; 8];
    let past = shim.now_ms().saturating_sub(1);
    shim.set_deadline(Some(past)).expect("arm");
    shim.waker().wake();
    std::thread::sleep(Duration::from_millis(5));
    let n = shim.wait(&mut events, Some(1_000)).expect("wait");
    let mut tokens: Vec<Token> = events[..n].iter().map(|e| e.token).collect();
    tokens.sort_by_key(|t| t.0);
    assert_eq!(tokens, [Token::DEADLINE, Token::WAKER]);
    shim.set_deadline(None).expect("disarm");
    assert_eq!(
        shim.wait(&mut events, Some(0)).expect("wait"),
        0,
        "drained and disarmed"
    );
}
