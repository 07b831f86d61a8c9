//! `hammer`: the scenario and invariants of `usockets-hammer` with every decision and every
//! simulated-OS fault taken from the input (`usockets_hammer::sim::run_bytes`, the function
//! `hammer/tests/bytes.rs` feeds from proptest). A broken invariant inside a callback panics;
//! one checked at the end of the run panics here.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let run = usockets_hammer::sim::run_bytes(data);
    assert!(
        run.outcome.problems.is_empty(),
        "end-of-run invariants: {:#?}",
        run.outcome.problems
    );
});
