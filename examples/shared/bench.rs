//! What the benchmark suite's budgeted servers (`fixed_response`, `bench_echo`) share:
//! their command line (`--name NUMBER` pairs) and the `--requests` budget, which makes a server
//! exit right after its N-th data event so that `benches/suite.sh` can difference two callgrind
//! runs (start-up, connection set-up and exit cancel out), as `benches/c/*.c` do.

use std::io::Write;

use usockets::{Config, ContextCallbacks, Cx, ListenOptions, ListenTarget, Loop};

/// The values of `--name NUMBER` options, in the order of `names` (`None`: absent). Exits 2 with
/// a usage message on an unknown option, a missing value or one that is not a number.
pub fn options<const N: usize>(program: &str, names: [&str; N]) -> [Option<u64>; N] {
    let usage = |problem: String| -> ! {
        let flags: Vec<String> = names.iter().map(|n| format!("[--{n} N]")).collect();
        eprintln!("{program}: {problem}\nusage: {program} {}", flags.join(" "));
        std::process::exit(2);
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut values = [None; N];
    for pair in args.chunks(2) {
        let Some(i) = pair[0]
            .strip_prefix("--")
            .and_then(|flag| names.iter().position(|n| *n == flag))
        else {
            usage(format!("unknown argument {:?}", pair[0]));
        };
        let Some(value) = pair.get(1) else {
            usage(format!("{} needs a value", pair[0]));
        };
        match value.parse() {
            Ok(v) => values[i] = Some(v),
            Err(_) => usage(format!("bad value {value:?} for {}", pair[0])),
        }
    }
    values
}

/// `--port`: a port number, 0 (an ephemeral one) when absent. Exits 2 if it does not fit.
pub fn port(program: &str, value: Option<u64>) -> u16 {
    u16::try_from(value.unwrap_or(0)).unwrap_or_else(|_| {
        eprintln!("{program}: --port must be below 65536");
        std::process::exit(2);
    })
}

/// The loop ext of a budgeted server: data events and bytes received, and the events left.
#[derive(Debug, Default)]
pub struct Budget {
    /// Data events left before exiting; 0: no limit.
    left: u64,
    events: u64,
    bytes: u64,
}

impl Budget {
    /// A budget of `requests` data events (`None` or 0: serve for ever).
    pub fn new(requests: Option<u64>) -> Self {
        Budget {
            left: requests.unwrap_or(0),
            ..Budget::default()
        }
    }

    /// Counts one data event of `len` bytes. When it was the budget's last, prints
    /// `iterations I events E bytes B` to stderr (the loop's iteration count, data events and
    /// bytes so far) and exits 0 at once: call it after the event's work is done.
    pub fn spend<C: Config<LoopExt = Budget>>(cx: &mut Cx<C>, len: usize) {
        let b = cx.ext_mut();
        b.events += 1;
        b.bytes += len as u64;
        if b.left > 0 {
            b.left -= 1;
            if b.left == 0 {
                let (events, bytes) = (b.events, b.bytes);
                let iterations = cx.iteration_number();
                eprintln!("iterations {iterations} events {events} bytes {bytes}");
                std::process::exit(0);
            }
        }
    }
}

/// Prints `program: what: e` to stderr and exits 1.
pub fn fail(program: &str, what: &str, e: impl std::fmt::Display) -> ! {
    eprintln!("{program}: {what}: {e}");
    std::process::exit(1);
}

/// Creates a context with `ext` and `callbacks` on `l`, listens on 127.0.0.1:`port`, prints
/// `listening on port N` and runs the loop until it ends; exits 1 with a message on failure.
pub fn serve<C: Config<SocketExt = ()>>(
    program: &str,
    l: &mut Loop<C>,
    ext: C::ContextExt,
    callbacks: ContextCallbacks<C>,
    port: u16,
) {
    let ctx = l
        .context_create(ext, callbacks)
        .unwrap_or_else(|e| fail(program, "context", e));
    let target = ListenTarget::Host {
        host: Some("127.0.0.1"),
        port,
    };
    let ls = l
        .listen(ctx, target, ListenOptions::default(), || ())
        .unwrap_or_else(|e| fail(program, &format!("cannot listen on port {port}"), e));
    println!("listening on port {}", l.listen_port(ls).unwrap_or(port));
    let _ = std::io::stdout().flush();
    if let Err(e) = l.run() {
        fail(program, "run", e);
    }
}
