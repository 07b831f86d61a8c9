//! Timers by the hundred thousand on the simulated clock: one pass fires exactly the due ones,
//! in deadline order, whatever else is armed; cancelled ones never fire; callbacks that close,
//! re-arm and create timers in the middle of a big pass keep the one-fire-per-pass rule.

mod support;

use std::collections::BTreeMap;

use support::{new_loop, quiet_net, Caps, SimNet};
use usockets_core::{Cx, Loop, LoopCallbacks, Settings, TimerId};

#[derive(Default)]
struct Rec {
    /// (timer label, loop time) of every fire.
    fires: Vec<(u32, u64)>,
    /// Timers by label, for callbacks that act on other timers.
    ids: BTreeMap<u32, TimerId>,
}

sim_config!(T {
    loop_ext: Rec,
    context_ext: (),
    socket_ext: (),
    timer_ext: u32,
    poll_ext: ()
});

fn record(cx: &mut Cx<T>, t: TimerId) -> u32 {
    let label = cx.timer_ext(t).copied().unwrap_or(u32::MAX);
    let at = cx.now_ms();
    cx.ext_mut().fires.push((label, at));
    label
}

fn on_timer(cx: &mut Cx<T>, t: TimerId) {
    record(cx, t);
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

/// A fixed pseudo-random sequence (xorshift): the same deadlines on every run.
struct Scramble(u64);

impl Scramble {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// One armed timer of the big test: its handle and deadline (absolute, ms).
#[derive(Clone, Copy)]
struct Armed {
    id: TimerId,
    deadline: u64,
}

/// The labels of `timers` in the order the loop must fire them: by deadline, ties by slot
/// index (the order the loop has always used).
fn firing_order(timers: &BTreeMap<u32, Armed>) -> Vec<u32> {
    let mut order: Vec<(u64, u32, u32)> = timers
        .iter()
        .map(|(&label, a)| (a.deadline, a.id.index(), label))
        .collect();
    order.sort_unstable();
    order.into_iter().map(|(_, _, label)| label).collect()
}

#[test]
fn hundred_thousand_armed_ten_thousand_due_fire_in_one_pass_in_order_then_cancels_hold() {
    const ARMED: u32 = 100_000;
    const DUE: u32 = 10_000;
    const DUE_WITHIN_MS: u64 = 1_000;
    const LATER_WITHIN_MS: u64 = 1_000_000;
    let net = quiet_net();
    let mut l = make(&net, ARMED as usize);
    let t0 = net.now_ms();
    let mut rng = Scramble(0x9E37_79B9_7F4A_7C15);
    let mut due = BTreeMap::new();
    let mut later = BTreeMap::new();
    // Due and later timers interleaved, deadlines scrambled and often tied (a due one every
    // tenth label; the due ones in 1..=1000 ms, the rest beyond).
    for label in 0..ARMED {
        let id = l
            .timer_create(true, label)
            .expect("capacity for every timer");
        let ms = if label % (ARMED / DUE) == 0 {
            1 + rng.below(DUE_WITHIN_MS)
        } else {
            DUE_WITHIN_MS + 1 + rng.below(LATER_WITHIN_MS - DUE_WITHIN_MS)
        };
        l.timer_set(id, on_timer, ms, 0);
        let armed = Armed {
            id,
            deadline: t0 + ms,
        };
        if ms <= DUE_WITHIN_MS {
            due.insert(label, armed);
        } else {
            later.insert(label, armed);
        }
    }
    assert_eq!(due.len(), DUE as usize);
    let earliest = due.values().map(|a| a.deadline).min();
    assert_eq!(
        l.next_deadline(),
        earliest,
        "the next deadline is the earliest armed"
    );

    net.advance(DUE_WITHIN_MS);
    let iteration = l.iteration_number();
    l.run_once(Some(0)).expect("run");
    assert_eq!(l.iteration_number(), iteration + 1, "one iteration");
    let fired: Vec<u32> = l.ext().fires.iter().map(|&(label, _)| label).collect();
    assert_eq!(fired.len(), DUE as usize, "exactly the due timers fired");
    assert_eq!(
        fired,
        firing_order(&due),
        "the due timers, each once, by deadline (ties by slot), none of the others"
    );
    assert!(l
        .ext()
        .fires
        .iter()
        .all(|&(_, at)| at == t0 + DUE_WITHIN_MS));
    for a in due.values() {
        assert_eq!(
            l.timer_is_armed(a.id),
            Some(false),
            "a fired one-shot is disarmed"
        );
    }
    for a in later.values() {
        assert_eq!(
            l.timer_is_armed(a.id),
            Some(true),
            "a later timer is still armed"
        );
    }
    assert_eq!(
        l.next_deadline(),
        later.values().map(|a| a.deadline).min(),
        "the next deadline is the earliest of the rest"
    );

    // Cancel half of the rest: every other one, alternately closed and disarmed.
    let (mut closed, mut disarmed) = (0, 0);
    let labels: Vec<u32> = later.keys().copied().collect();
    for (k, label) in labels.into_iter().enumerate() {
        if k % 2 == 1 {
            continue;
        }
        let a = later.remove(&label).expect("a later timer");
        if k % 4 == 0 {
            assert_eq!(l.timer_close(a.id), Some(label));
            closed += 1;
        } else {
            l.timer_set(a.id, on_timer, 0, 0);
            assert_eq!(l.timer_is_armed(a.id), Some(false));
            disarmed += 1;
        }
    }
    assert_eq!(closed + disarmed, later.len(), "half of the rest cancelled");
    assert_eq!(l.next_deadline(), later.values().map(|a| a.deadline).min());

    // Past every deadline: the remaining half fires, in one pass and in order; nothing else.
    l.ext_mut().fires.clear();
    net.advance(LATER_WITHIN_MS);
    l.run_once(Some(0)).expect("run");
    let fired: Vec<u32> = l.ext().fires.iter().map(|&(label, _)| label).collect();
    assert_eq!(
        fired,
        firing_order(&later),
        "only the timers left armed fire"
    );
    assert_eq!(l.next_deadline(), None, "nothing armed any more");
    l.ext_mut().fires.clear();
    net.advance(LATER_WITHIN_MS);
    l.run_once(Some(0)).expect("run");
    assert!(l.ext().fires.is_empty(), "and nothing fires again");
    assert_eq!(
        l.slots_in_use()[3],
        ARMED as usize - closed,
        "closed timers freed their slots, disarmed ones kept theirs"
    );
}

/// Labels at and above this belong to timers made inside callbacks.
const MADE: u32 = 1_000_000;
/// The repeat of timers armed inside callbacks: long enough never to come in these tests (a
/// repeat lets them be armed due at once, `ms == 0`, without disarming).
const LONG_MS: u64 = 1 << 40;

/// What a timer does when it fires, chosen by its label.
fn busy(cx: &mut Cx<T>, t: TimerId) {
    let label = record(cx, t);
    if label >= MADE {
        return;
    }
    match label % 10 {
        // Closes itself.
        0 | 5 => {
            assert_eq!(cx.timer_close(t), Some(label));
            assert_eq!(cx.timer_ext(t), None);
        }
        // Re-arms itself due at once: it waits for the next pass (every pass).
        1 | 6 => cx.timer_set(t, busy, 0, LONG_MS),
        // Closes a timer due later in this pass, which then never fires.
        2 => {
            let victim = cx.ext().ids.get(&(label + 2)).copied();
            if let Some(victim) = victim {
                assert_eq!(cx.timer_close(victim), Some(label + 2));
            }
        }
        // Makes a timer due at once: it waits for the next pass.
        3 | 8 => {
            let made = cx
                .timer_create(true, MADE + label)
                .expect("capacity for made timers");
            cx.timer_set(made, busy, 0, LONG_MS);
        }
        // Re-arms a one-shot timer that fired earlier in this pass, due at once: next pass.
        7 => {
            let earlier = label
                .checked_sub(8)
                .and_then(|e| cx.ext().ids.get(&e).copied());
            if let Some(earlier) = earlier {
                assert_eq!(cx.timer_is_armed(earlier), Some(false));
                cx.timer_set(earlier, busy, 0, LONG_MS);
            }
        }
        // Plain.
        _ => {}
    }
}

/// The labels fired in the last pass, sorted, and the fire log emptied.
fn take_fires(l: &mut Loop<T>, at: u64) -> Vec<u32> {
    let fires = std::mem::take(&mut l.ext_mut().fires);
    assert!(
        fires.iter().all(|&(_, t)| t == at),
        "all at the pass's time"
    );
    fires.into_iter().map(|(label, _)| label).collect()
}

#[test]
fn callbacks_that_close_rearm_and_create_mid_pass_keep_one_fire_per_pass() {
    const TIMERS: u32 = 20_000;
    let net = quiet_net();
    let mut l = make(&net, 2 * TIMERS as usize);
    let mut rng = Scramble(0x2545_F491_4F6C_DD1D);
    // Distinct deadlines in label order, armed in a scrambled order.
    let mut labels: Vec<u32> = (0..TIMERS).collect();
    for i in (1..labels.len()).rev() {
        labels.swap(i, rng.below(i as u64 + 1) as usize);
    }
    for &label in &labels {
        let t = l.timer_create(true, label).expect("timer");
        l.ext_mut().ids.insert(label, t);
    }
    for &label in &labels {
        let t = l.ext().ids[&label];
        l.timer_set(t, busy, 1 + u64::from(label), 0);
    }

    net.advance(u64::from(TIMERS) + 10);
    let now = net.now_ms();
    l.run_once(Some(0)).expect("run");
    assert_eq!(
        take_fires(&mut l, now),
        (0..TIMERS)
            .filter(|label| label % 10 != 4)
            .collect::<Vec<_>>(),
        "pass 1: every timer once, in deadline order, but those closed before their turn; \
         nothing armed or made during the pass"
    );
    assert_eq!(l.next_deadline(), Some(now), "what pass 1 armed is due");

    l.run_once(Some(0)).expect("run");
    assert_eq!(net.now_ms(), now, "no waiting: they were due");
    let mut second = take_fires(&mut l, now);
    second.sort_unstable();
    let mut want: Vec<u32> = (0..TIMERS)
        .flat_map(|label| match label % 10 {
            1 | 6 => vec![label],
            3 | 8 => vec![MADE + label],
            9 if label + 8 < TIMERS => vec![label],
            _ => vec![],
        })
        .collect();
    want.sort_unstable();
    assert_eq!(second, want, "pass 2: what pass 1 armed, once each");

    l.run_once(Some(0)).expect("run");
    let mut third = take_fires(&mut l, now);
    third.sort_unstable();
    assert_eq!(
        third,
        (0..TIMERS)
            .filter(|label| matches!(label % 10, 1 | 6))
            .collect::<Vec<_>>(),
        "pass 3: only the ones that re-arm themselves every pass"
    );
    assert_eq!(
        l.slots_in_use()[3],
        (TIMERS - TIMERS / 10 * 3) as usize + (TIMERS / 5) as usize,
        "closed timers (labels ending in 0, 4, 5) freed their slots; made ones hold theirs"
    );
}
