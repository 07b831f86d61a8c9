//! The reference model on inputs proptest makes up, in every `cargo test`: each target's
//! decoder turns arbitrary bytes into 50+ API calls and simulated-OS decisions, and the harness
//! checks every invariant inside every callback and after every step. `run` panics on the first
//! broken one: that panic is these tests' assertion.
//! The cargo-fuzz targets run the same `run` for hours; this keeps a broad random search in the
//! ordinary test run, beside the committed seeds of `replay.rs`.

use proptest::prelude::*;
use usockets_fuzz_harness::{run, Target};

/// 256 cases per target, or `PROPTEST_CASES` for a longer search.
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

/// Inputs long enough for 50 steps and more (a step takes one to a few bytes).
fn input() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 64..2048)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn loop_ops_against_the_model(data in input()) {
        run(Target::LoopOps, &data);
    }

    #[test]
    fn adopt_close_against_the_model(data in input()) {
        run(Target::AdoptClose, &data);
    }

    #[test]
    fn timers_against_the_model(data in input()) {
        run(Target::Timers, &data);
    }
}

/// The inputs above do run long: across a sample, most reach 50 steps.
#[test]
fn random_inputs_run_fifty_steps_and_more() {
    let mut rng = proptest::test_runner::TestRng::deterministic_rng(
        proptest::test_runner::RngAlgorithm::ChaCha,
    );
    for target in Target::ALL {
        let mut long = 0;
        for _ in 0..100 {
            let len = 64 + (rng.next_u32() % 1984) as usize;
            let data: Vec<u8> = (0..len).map(|_| rng.next_u32() as u8).collect();
            if run(target, &data).steps >= 50 {
                long += 1;
            }
        }
        assert!(
            long >= 50,
            "{}: only {long} of 100 inputs ran 50 steps",
            target.name()
        );
    }
}
