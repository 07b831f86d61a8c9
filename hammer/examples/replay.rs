//! Runs hammer inputs (files, or every file of a directory) through
//! `usockets_hammer::sim::run_bytes`, as the `hammer` fuzz target does, and prints what each
//! did: the counters, the iterations and any end-of-run problem. A broken invariant inside a
//! callback panics with its message.
//!
//! `cargo run -p usockets-hammer --example replay -- fuzz/artifacts/hammer/crash-<sha1>`

use std::path::PathBuf;

fn main() {
    let mut files: Vec<PathBuf> = Vec::new();
    for arg in std::env::args_os().skip(1) {
        let path = PathBuf::from(arg);
        match std::fs::read_dir(&path) {
            Ok(dir) => files.extend(dir.filter_map(|e| e.ok().map(|e| e.path()))),
            Err(_) => files.push(path),
        }
    }
    if files.is_empty() {
        eprintln!("usage: replay FILE|DIR...");
        std::process::exit(2);
    }
    files.sort();
    let mut failed = 0;
    for file in files {
        let data = match std::fs::read(&file) {
            Ok(d) => d,
            Err(e) => {
                eprintln!("{}: {e}", file.display());
                std::process::exit(2);
            }
        };
        let run = usockets_hammer::sim::run_bytes(&data);
        let o = &run.outcome;
        println!(
            "{}: {} bytes, {} iterations, {:?}",
            file.display(),
            data.len(),
            o.iterations,
            o.counts
        );
        for p in &o.problems {
            println!("  problem: {p}");
        }
        failed += usize::from(!o.problems.is_empty());
    }
    if failed > 0 {
        std::process::exit(1);
    }
}
