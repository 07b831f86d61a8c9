//! Replays the committed fuzz inputs (`fuzz/seeds/<target>/`) through the harness the fuzz
//! targets run, with every invariant checked, and asserts that together they reach every
//! callback kind and every fault kind of the simulated OS.
//!
//! Only the committed inputs: the fuzzer's working corpus (`fuzz/corpus/<target>/`, git-ignored,
//! as large as a long run makes it) is not read here. A crash the fuzzer finds is committed as
//! `fuzz/seeds/<target>/regression-<name>` and so becomes part of this test.
//! `generate_seed_corpus` (ignored) rewrites the `seed-*` files:
//! `cargo test -p usockets-fuzz-harness --release --test replay -- --ignored generate_seed_corpus`

use std::collections::BTreeSet;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use usockets_fuzz_harness::input::join;
use usockets_fuzz_harness::{fault_kinds, run, Report, Target};

/// Where the committed inputs of target `t` are.
fn seeds_dir(t: Target) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../seeds")
        .join(t.name())
}

fn seed_files(t: Target) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(seeds_dir(t))
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.retain(|p| p.is_file());
    files.sort();
    files
}

/// The name of a committed input: `seed-*` (written by the generator below) or `regression-*`
/// (a crash or corpus entry promoted by hand, see fuzz/README.md).
fn committed_name(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with("seed-") || n.starts_with("regression-"))
}

/// The kinds an input reached: callback kinds and fault kinds with a non-zero count.
fn kinds(r: &Report) -> BTreeSet<&'static str> {
    r.stats
        .kinds()
        .into_iter()
        .chain(fault_kinds(&r.faults))
        .filter(|(_, n)| *n > 0)
        .map(|(k, _)| k)
        .collect()
}

fn all_kinds() -> BTreeSet<&'static str> {
    let r = Report::default();
    r.stats
        .kinds()
        .into_iter()
        .chain(fault_kinds(&r.faults))
        .map(|(k, _)| k)
        .collect()
}

#[test]
fn seeds_replay_cleanly_and_reach_every_callback_and_fault_kind() {
    let mut reached = BTreeSet::new();
    let mut totals = std::collections::BTreeMap::new();
    for t in Target::ALL {
        let files = seed_files(t);
        assert!(!files.is_empty(), "no seeds for {}", t.name());
        let mut bytes = 0;
        for f in files {
            assert!(
                committed_name(&f),
                "{} is neither seed-* nor regression-*: name it after what it is (fuzz/README.md)",
                f.display()
            );
            let data = std::fs::read(&f).expect("read seed");
            bytes += data.len();
            let r = catch_unwind(AssertUnwindSafe(|| run(t, &data))).unwrap_or_else(|e| {
                eprintln!(
                    "{} fails; reproduce with `cargo run -p usockets-fuzz-harness --example \
                     replay_one -- {} {}`",
                    f.display(),
                    t.name(),
                    f.display()
                );
                std::panic::resume_unwind(e)
            });
            reached.extend(kinds(&r));
            for (k, n) in r.stats.kinds().into_iter().chain(fault_kinds(&r.faults)) {
                *totals.entry(k).or_insert(0u64) += n;
            }
        }
        // Seeds stay small: a few KB per target.
        assert!(bytes < 16 * 1024, "{} seeds are {bytes} bytes", t.name());
    }
    eprintln!("callbacks and faults reached by the seeds: {totals:?}");
    let missing: Vec<_> = all_kinds().difference(&reached).copied().collect();
    assert!(
        missing.is_empty(),
        "the seeds never reach {missing:?}; regenerate them (see the top of this file)"
    );
}

/// A small xorshift generator, so the seeds are reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// A random input with the harness's layout: settings, modest fault rates, operations, and
/// fault bytes.
fn candidate(rng: &mut Rng) -> Vec<u8> {
    let mut ops: Vec<u8> = (0..7).map(|_| rng.next() as u8).collect();
    // Fault rates of 0..=15 %, so that runs live long enough to do things.
    ops.extend((0..8).map(|_| (rng.below(40)) as u8));
    let n = 60 + rng.below(400) as usize;
    ops.extend((0..n).map(|_| rng.next() as u8));
    let f = rng.below(300) as usize;
    let faults: Vec<u8> = (0..f).map(|_| rng.next() as u8).collect();
    join(&ops, &faults)
}

#[test]
#[ignore = "rewrites fuzz/seeds/*/seed-*; run on demand"]
fn generate_seed_corpus() {
    let mut covered = BTreeSet::new();
    for t in Target::ALL {
        let mut rng = Rng(0x5EED_0000 + t as u64 * 7919);
        let mut found: Vec<(BTreeSet<&'static str>, Vec<u8>)> = Vec::new();
        for _ in 0..4000 {
            let data = candidate(&mut rng);
            match catch_unwind(AssertUnwindSafe(|| run(t, &data))) {
                Ok(r) => found.push((kinds(&r), data)),
                Err(_) => {
                    let path = format!("/tmp/{}-generator-crash", t.name());
                    std::fs::write(&path, &data).expect("write");
                    panic!("a generated input breaks an invariant: {path}");
                }
            }
        }
        // Greedy cover: the input reaching most kinds not yet covered, then the next, ...
        // then a few of the richest inputs so every target has variety to mutate.
        let mut chosen: Vec<Vec<u8>> = Vec::new();
        loop {
            let best = found
                .iter()
                .enumerate()
                .map(|(i, (k, d))| {
                    (
                        k.difference(&covered).count(),
                        k.len(),
                        usize::MAX - d.len(),
                        i,
                    )
                })
                .max();
            match best {
                Some((new, _, _, i)) if new > 0 => {
                    let (k, d) = found.swap_remove(i);
                    covered.extend(k);
                    chosen.push(d);
                }
                _ => break,
            }
        }
        found.sort_by_key(|(k, d)| (usize::MAX - k.len(), d.len()));
        for (_, d) in found
            .into_iter()
            .take(6usize.saturating_sub(chosen.len()).max(3))
        {
            chosen.push(d);
        }
        let dir = seeds_dir(t);
        std::fs::create_dir_all(&dir).expect("seeds dir");
        for old in seed_files(t) {
            let seed = old
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("seed-"));
            if seed {
                std::fs::remove_file(old).expect("remove old seed");
            }
        }
        for (i, d) in chosen.iter().enumerate() {
            std::fs::write(dir.join(format!("seed-{i:02}")), d).expect("write seed");
        }
        eprintln!(
            "{}: {} seeds, {} bytes",
            t.name(),
            chosen.len(),
            chosen.iter().map(Vec::len).sum::<usize>()
        );
    }
    let missing: Vec<_> = all_kinds().difference(&covered).copied().collect();
    eprintln!("not reached: {missing:?}");
}
