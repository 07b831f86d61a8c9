//! `timers`: see [`Target::Timers`]. The harness decodes the input, checks every invariant and
//! panics on the first broken one.
#![no_main]

use libfuzzer_sys::fuzz_target;
use usockets_fuzz_harness::{run, Target};

fuzz_target!(|data: &[u8]| {
    run(Target::Timers, data);
});
