//! Runs one input file through one target, for reading a crash:
//! `USOCKETS_FUZZ_TRACE=1 cargo run -p usockets-fuzz-harness --example replay_one -- loop_ops FILE`
use usockets_fuzz_harness::{run, Target};

fn main() {
    let mut args = std::env::args().skip(1);
    let name = args.next().expect("target name");
    let file = args.next().expect("input file");
    let target = Target::ALL
        .into_iter()
        .find(|t| t.name() == name)
        .expect("loop_ops, adopt_close or timers");
    let data = std::fs::read(&file).expect("read input");
    println!("{:#?}", run(target, &data));
}
