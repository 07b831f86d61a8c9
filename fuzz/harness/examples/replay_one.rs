//! Runs one input file through one target, for reading a crash:
//! `USOCKETS_FUZZ_TRACE=1 cargo run -p usockets-fuzz-harness --example replay_one -- loop_ops FILE`
//! (`tls_session` traces its operations the same way; `tls_server` has nothing to trace).
use usockets_fuzz_harness::{run, run_tls_server, run_tls_session, Target};

fn main() {
    let mut args = std::env::args().skip(1);
    let name = args.next().expect("target name");
    let file = args.next().expect("input file");
    let data = std::fs::read(&file).expect("read input");
    match name.as_str() {
        "tls_server" => run_tls_server(&data),
        "tls_session" => println!("{:#?}", run_tls_session(&data)),
        _ => {
            let target = Target::ALL
                .into_iter()
                .find(|t| t.name() == name)
                .expect("loop_ops, adopt_close, timers, tls_server or tls_session");
            println!("{:#?}", run(target, &data));
        }
    }
}
