//! Times the harness alone (no libFuzzer) over a directory of inputs, for profiling:
//! `cargo run --release -p usockets-fuzz-harness --example bench -- loop_ops DIR [rounds] [each]`
//!
//! It also prints a fingerprint of what the inputs did (every `Report`, in file-name order):
//! a change to the harness that should not change behaviour (a faster check, a cheaper model)
//! must leave it as it was. With `each`, it prints every input's `Report`, to find the ones
//! that changed.
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::time::Instant;

use usockets_fuzz_harness::{run, Target};

fn main() {
    let mut args = std::env::args().skip(1);
    let name = args.next().expect("target name");
    let dir = args.next().expect("input directory");
    let rounds: u32 = args.next().and_then(|a| a.parse().ok()).unwrap_or(1);
    let each = args.next().as_deref() == Some("each");
    let target = Target::ALL
        .into_iter()
        .find(|t| t.name() == name)
        .expect("loop_ops, adopt_close or timers");
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .expect("read input directory")
        .filter_map(|e| Some(e.ok()?.path()))
        .collect();
    paths.sort();
    // Files only (a subdirectory is skipped), each path kept beside its bytes.
    paths.retain(|p| p.is_file());
    let inputs: Vec<Vec<u8>> = paths
        .iter()
        .map(|p| std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
        .collect();
    let mut steps = 0;
    let mut fingerprint = DefaultHasher::new();
    let start = Instant::now();
    for round in 0..rounds {
        for (path, data) in paths.iter().zip(&inputs) {
            let report = run(target, data);
            steps += report.steps;
            if round == 0 {
                let line = format!("{report:?}");
                line.hash(&mut fingerprint);
                if each {
                    println!("{}: {line}", path.display());
                }
            }
        }
    }
    let runs = inputs.len() as f64 * f64::from(rounds);
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{name}: {runs} runs, {:.1} us per run, {:.0} steps per run, fingerprint {:016x}",
        secs * 1e6 / runs,
        steps as f64 / runs,
        fingerprint.finish()
    );
}
