//! Runs random inputs through every target (a quick harness self-check without libFuzzer).
//! `cargo run --release -p usockets-fuzz-harness --example smoke -- [count] [first-seed]`
use usockets_fuzz_harness::{run, Target};

fn main() {
    let mut args = std::env::args().skip(1);
    let count: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let first: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(0);
    for seed in first..first + count {
        for t in Target::ALL {
            let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (t as u64 + 1);
            let mut next = || {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x
            };
            let len = (next() % 3000) as usize;
            let data: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            let r = std::panic::catch_unwind(|| run(t, &data));
            if r.is_err() {
                let path = format!("/tmp/smoke-{}-{seed}", t.name());
                std::fs::write(&path, &data).expect("write");
                eprintln!("seed {seed} target {} failed; input in {path}", t.name());
                std::process::exit(1);
            }
        }
    }
    println!("ok");
}
