//! The hammer by seed on the simulated OS, every fault kind injected.
//!
//! `HAMMER_SEEDS=1000 HAMMER_CONNS=500 cargo test --release -p usockets-hammer --test seeds -- --ignored hammer_env`
//! runs as many seeds as you like; `HAMMER_SEED=1234` replays one.

use std::panic::{catch_unwind, AssertUnwindSafe};

use usockets_hammer::sim::{run_seed, SimOutcome};
use usockets_hammer::Counts;

/// Runs one seed and checks what a seed run of this size must show besides the invariants:
/// every fault kind injected, the common operations done, most connections served.
fn check_seed(seed: u64, connections: u64) -> Counts {
    let SimOutcome { outcome, faults } = run_seed(seed, connections);
    assert!(
        outcome.problems.is_empty(),
        "seed {seed}: {:#?}",
        outcome.problems
    );
    for (name, n) in [
        ("partial_write", faults.partial_write),
        ("would_block_send", faults.would_block_send),
        ("reset", faults.reset),
        ("refuse_connect", faults.refuse_connect),
        ("emfile_accept", faults.emfile_accept),
        ("spurious_readiness", faults.spurious_readiness),
        ("delay_delivery", faults.delay_delivery),
        ("hangup_with_unread", faults.hangup_with_unread),
    ] {
        assert!(n > 0, "seed {seed}: fault {name} never injected");
    }
    let c = outcome.counts;
    assert!(
        c.adoptions > 0 && c.timeouts > 0 && c.writables > 0 && c.bytes_echoed > 0,
        "seed {seed}: {c:?}"
    );
    assert!(
        c.server_opens > connections / 2,
        "seed {seed}: most connections reached the server: {c:?}"
    );
    c
}

/// Replays one seed: its invariants only (a small or odd run need not show every fault kind).
fn replay_seed(seed: u64, connections: u64) {
    let outcome = run_seed(seed, connections).outcome;
    assert!(
        outcome.problems.is_empty(),
        "seed {seed}: {:#?}",
        outcome.problems
    );
    eprintln!("seed {seed}: {:?}", outcome.counts);
}

/// Runs every seed, then checks that the rarer operations happened somewhere in the range.
fn run_seeds(seeds: std::ops::Range<u64>, connections: u64) {
    let mut seen = [0u64; 5];
    for seed in seeds {
        match catch_unwind(AssertUnwindSafe(|| check_seed(seed, connections))) {
            Ok(c) => {
                let kinds = [
                    c.aborted,
                    c.doomed,
                    c.pauses,
                    c.timer_fires,
                    c.released_checked,
                ];
                for (total, n) in seen.iter_mut().zip(kinds) {
                    *total += n;
                }
            }
            Err(e) => {
                eprintln!(
                    "hammer failed for seed {seed} with {connections} connections; \
                     rerun with HAMMER_SEED={seed} HAMMER_CONNS={connections}"
                );
                std::panic::resume_unwind(e);
            }
        }
    }
    let names = [
        "aborted",
        "doomed",
        "pauses",
        "timer_fires",
        "released_checked",
    ];
    for (name, total) in names.iter().zip(seen) {
        assert!(total > 0, "no {name} in any seed");
    }
}

#[test]
fn hammer_200_seeds_500_connections() {
    run_seeds(0..200, 500);
}

#[test]
fn hammer_5000_connections() {
    run_seeds(1000..1003, 5000);
}

/// The same seed makes the same run: a failing seed can be replayed.
#[test]
fn a_seed_replays_exactly() {
    let a = run_seed(77, 300);
    let b = run_seed(77, 300);
    assert_eq!(a.outcome.counts, b.outcome.counts);
    assert_eq!(a.outcome.iterations, b.outcome.iterations);
    assert_ne!(run_seed(78, 300).outcome.counts, a.outcome.counts);
}

/// `HAMMER_SEEDS`, `HAMMER_CONNS` and `HAMMER_SEED` (a single seed, replayed with its
/// invariants only) choose the run.
#[test]
#[ignore = "long run on demand: set HAMMER_SEEDS / HAMMER_CONNS / HAMMER_SEED"]
fn hammer_env() {
    let var = |k: &str, d: u64| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let connections = var("HAMMER_CONNS", 500);
    match std::env::var("HAMMER_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        Some(seed) => replay_seed(seed, connections),
        None => run_seeds(0..var("HAMMER_SEEDS", 1000), connections),
    }
}
