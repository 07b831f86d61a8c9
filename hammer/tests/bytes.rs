//! The hammer driven by proptest: arbitrary bytes choose the connection count, every decision
//! of the scenario and every fault of the simulated network (the `hammer` fuzz target feeds the
//! same function). Any invariant broken inside a callback panics; the end-of-run invariants
//! come back as problems.

use std::path::Path;

use proptest::prelude::*;
use usockets_hammer::sim::run_bytes;

/// 512 cases, or `PROPTEST_CASES` for a longer search.
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(512)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn hammer_from_arbitrary_bytes(data in proptest::collection::vec(any::<u8>(), 0..4096)) {
        let run = run_bytes(&data);
        prop_assert!(run.outcome.problems.is_empty(), "{:#?}", run.outcome.problems);
    }
}

/// Bytes steer the run: the same bytes make the same run, enough of them reach the echo, and
/// changing an early decision changes the run, so the fuzzer has something to steer.
#[test]
fn bytes_steer_the_run() {
    let mut data: Vec<u8> = (0u32..512)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    // 16 connections; decisions and faults split half and half.
    data[0] = 15;
    data[1] = 128;
    let a = run_bytes(&data);
    let b = run_bytes(&data);
    assert_eq!(a.outcome.counts, b.outcome.counts);
    assert_eq!(a.outcome.iterations, b.outcome.iterations);
    assert!(a.outcome.problems.is_empty(), "{:#?}", a.outcome.problems);
    let c = a.outcome.counts;
    assert!(c.client_opens > 0 && c.bytes_echoed > 0, "{c:?}");
    // Flip every byte, decisions (first half after the header) and faults (second half) apart:
    // both must steer.
    let split = 2 + (data.len() - 2) / 2;
    let changes = |range: std::ops::Range<usize>| {
        range
            .filter(|&i| {
                let mut other = data.clone();
                other[i] ^= 0xFF;
                let o = run_bytes(&other).outcome;
                (o.counts, o.iterations) != (c, a.outcome.iterations)
            })
            .count()
    };
    let (decisions, faults) = (changes(2..split), changes(split..data.len()));
    eprintln!("flips that changed the run: {decisions} decision bytes, {faults} fault bytes");
    assert!(
        decisions >= 10 && faults >= 10,
        "flips that changed the run: {decisions} decision bytes, {faults} fault bytes"
    );
}

/// The `hammer` fuzz target's committed seeds (`fuzz/seeds/hammer/`: seeds and minimised
/// regressions) replay cleanly here too, on stable, with every `cargo test`.
#[test]
fn committed_fuzz_seeds_replay_cleanly() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds/hammer");
    let mut replayed = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("directory entry").path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        assert!(
            name.starts_with("seed-") || name.starts_with("regression-"),
            "{}: only seed-* and regression-* files belong in seeds/",
            path.display()
        );
        let data = std::fs::read(&path).expect("read seed");
        let run = run_bytes(&data);
        assert!(
            run.outcome.problems.is_empty(),
            "{}: {:#?}",
            path.display(),
            run.outcome.problems
        );
        replayed += 1;
    }
    assert!(replayed >= 4, "only {replayed} seeds in {}", dir.display());
}
