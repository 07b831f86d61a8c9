//! Cost of user timers by the number armed, on the simulated OS: for N = 1 000, 10 000 and
//! 100 000 timers, 10% of them due, the nanoseconds per arm, re-arm, fired timer (one
//! `run_once`) and cancel. With the timer index the cost per fired timer should barely move
//! with N (O(log N) amortized); a scan of every slot per fire would grow it a hundredfold from
//! the first N to the last.
//!
//! `cargo bench -p usockets-core --bench timers` (never a CI gate). Each figure is the best of
//! `REPS` runs (env `REPS`, default 5). Needs the workspace's `usockets-shim-sim`, so it is
//! not part of the published package.

use std::hint::black_box;
use std::time::Instant;

use usockets_core::{
    Capacity, Config, Cx, GrowingStorage, Loop, LoopCallbacks, NoLayer, Settings, TimerId,
};
use usockets_shim_sim::{Faults, NoFaults, SimNet, SimShim};

struct Bench;

impl Config for Bench {
    type Shim = SimShim;
    /// How many timers fired.
    type LoopExt = u64;
    type ContextExt = ();
    type SocketExt = ();
    type TimerExt = ();
    type PollExt = ();
    type Reason = u32;
    type Storage = GrowingStorage<Self>;
    type Layer = NoLayer;
}

fn count(cx: &mut Cx<Bench>, _: TimerId) {
    *cx.ext_mut() += 1;
}

/// A fixed pseudo-random sequence (xorshift), the same on every run.
struct Scramble(u64);

impl Scramble {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// The first pass fires the timers due within this, 10% of them.
const WINDOW_MS: u64 = 1_000;

/// A delay: 1 in 10 within the first window, the rest spread over the nine windows after it
/// (so each later window holds about 10% too).
fn delay(rng: &mut Scramble, k: usize) -> u64 {
    if k.is_multiple_of(10) {
        1 + rng.below(WINDOW_MS)
    } else {
        WINDOW_MS + 1 + rng.below(9 * WINDOW_MS)
    }
}

/// Nanoseconds per operation of one run for N timers.
#[derive(Clone, Copy)]
struct Figures {
    arm: f64,
    rearm: f64,
    fire_first: f64,
    fire_next: f64,
    disarm: f64,
    close: f64,
}

fn per(start: Instant, ops: usize) -> f64 {
    start.elapsed().as_nanos() as f64 / ops.max(1) as f64
}

fn run(n: usize, seed: u64) -> Figures {
    let net = SimNet::new(Faults::NONE, Box::new(NoFaults));
    let storage = GrowingStorage::preallocated(
        Capacity::new()
            .with_sockets(1)
            .with_listeners(1)
            .with_contexts(1)
            .with_timers(n)
            .with_polls(1)
            .with_recv(4096)
            .with_events(16),
    );
    let mut l: Loop<Bench> = match Loop::new(
        net.shim(),
        storage,
        0,
        LoopCallbacks::default(),
        Settings::default(),
    ) {
        Ok(l) => l,
        Err(e) => panic!("loop: {e}"),
    };
    let ids: Vec<TimerId> = (0..n)
        .map(|_| l.timer_create(true, ()).expect("capacity"))
        .collect();
    let mut rng = Scramble(seed);
    let delays: Vec<u64> = (0..n).map(|k| delay(&mut rng, k)).collect();
    let redelays: Vec<u64> = (0..n).map(|k| delay(&mut rng, k)).collect();

    let start = Instant::now();
    for (&t, &ms) in ids.iter().zip(&delays) {
        l.timer_set(t, count, ms, 0);
    }
    let arm = per(start, n);

    // Every timer re-armed (out of the index and back in, at another deadline).
    let start = Instant::now();
    for (&t, &ms) in ids.iter().zip(&redelays) {
        l.timer_set(t, count, ms, 0);
    }
    let rearm = per(start, n);

    // The first pass pays for the tree that N inserts left flat; the next one is the steady
    // state.
    let mut fire = || {
        net.advance(WINDOW_MS);
        let before = *l.ext();
        let start = Instant::now();
        l.run_once(Some(0)).expect("run");
        let fired = (*l.ext() - before) as usize;
        assert!(fired >= n / 20, "about 10% due, {fired} fired of {n}");
        per(start, fired)
    };
    let fire_first = fire();
    let fire_next = fire();

    // Cancel what is still armed: half disarmed, half closed.
    let armed: Vec<TimerId> = ids
        .iter()
        .copied()
        .filter(|&t| l.timer_is_armed(t) == Some(true))
        .collect();
    let (to_disarm, to_close) = armed.split_at(armed.len() / 2);
    let start = Instant::now();
    for &t in to_disarm {
        l.timer_set(t, count, 0, 0);
    }
    let disarm = per(start, to_disarm.len());
    let start = Instant::now();
    for &t in to_close {
        black_box(l.timer_close(t));
    }
    let close = per(start, to_close.len());
    assert_eq!(l.next_deadline(), None, "nothing armed any more");
    Figures {
        arm,
        rearm,
        fire_first,
        fire_next,
        disarm,
        close,
    }
}

fn main() {
    let reps: usize = std::env::var("REPS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(5)
        .max(1);
    println!("ns per operation, best of {reps} runs (simulated OS; 10% of N due per pass):");
    println!(
        "{:>8} {:>8} {:>8} {:>11} {:>11} {:>8} {:>8}",
        "N", "arm", "re-arm", "fire (1st)", "fire (2nd)", "disarm", "close"
    );
    for n in [1_000, 10_000, 100_000] {
        let mut best: Option<Figures> = None;
        for rep in 0..reps {
            let f = run(n, 0x9E37_79B9_7F4A_7C15 ^ rep as u64);
            best = Some(match best {
                None => f,
                Some(b) => Figures {
                    arm: b.arm.min(f.arm),
                    rearm: b.rearm.min(f.rearm),
                    fire_first: b.fire_first.min(f.fire_first),
                    fire_next: b.fire_next.min(f.fire_next),
                    disarm: b.disarm.min(f.disarm),
                    close: b.close.min(f.close),
                },
            });
        }
        if let Some(b) = best {
            println!(
                "{n:>8} {:>8.1} {:>8.1} {:>11.1} {:>11.1} {:>8.1} {:>8.1}",
                b.arm, b.rearm, b.fire_first, b.fire_next, b.disarm, b.close
            );
        }
    }
}
