//! The hammer against the real OS: the scenario and invariants of `usockets-hammer` (the same
//! code the seed, proptest and fuzz drivers run on the simulated OS) on loopback sockets, where
//! every fault comes from the kernel: resets, short writes, refused or failed connects,
//! descriptor exhaustion.
//!
//! It runs with [`Profile::loopback`]: at most 200 client connections at once (so it fits the
//! descriptor limit and the ephemeral port range), 1-2 s timeouts with a 200 ms sweep, a few
//! bulk clients whose writes fill the kernel's buffers.
//!
//! At the end it prints
//! `hammer: connections=N opens_client=.. closes_client=.. opens_server=.. closes_server=..
//! connect_errors=.. aborted=.. adoptions=.. timeouts=.. writables=.. bytes=.. fds_before=..
//! fds_after=..`
//! and exits 1 if an end-of-run invariant failed or a descriptor leaked (`/proc/self/fd`, on
//! Windows the process's handle count, before the loop is created and after it is dropped). A failed invariant inside a
//! callback panics (exit code 101).
//!
//! `cargo run --release --example hammer -- --connections 5000 --seed 1` (on Linux, add
//! `--shim uring` to hammer the io_uring shim instead of epoll)
//!
//! Server and client sockets live in the same process, so 200 connections need 400
//! descriptors; the shim sheds connections on `EMFILE` if the soft limit is lower. The tests run
//! it with the soft `RLIMIT_NOFILE` raised to the hard limit (safe Rust cannot call `setrlimit`):
//!
//! `sh -c 'ulimit -n $(ulimit -Hn) && exec "$0" "$@"' target/release/examples/hammer --connections 5000`

use usockets::DefaultShim;
use usockets_hammer::{Dice, Profile};

/// This process's open descriptors.
#[cfg(unix)]
fn open_fds() -> usize {
    match std::fs::read_dir("/proc/self/fd") {
        // The directory handle itself is one of them.
        Ok(dir) => dir.count().saturating_sub(1),
        Err(e) => fail("read /proc/self/fd", e),
    }
}

/// This process's open handles (sockets are handles on Windows).
#[cfg(windows)]
fn open_fds() -> usize {
    match usockets::platform::open_handles() {
        Ok(n) => n as usize,
        Err(e) => fail("GetProcessHandleCount", e),
    }
}

fn fail(what: &str, e: impl std::fmt::Display) -> ! {
    eprintln!("hammer: {what}: {e}");
    std::process::exit(1);
}

fn usage() -> ! {
    eprintln!("usage: hammer [--connections N] [--seed S] [--shim epoll|uring (Linux)]");
    std::process::exit(2);
}

/// Runs the hammer on the shim `--shim` names: the platform's by default; on Linux `uring`
/// for io_uring (a shim that cannot be made fails the run, it never falls back).
fn run_on_shim(
    args: &[String],
    profile: Profile,
    dice: Dice,
) -> Result<usockets_hammer::Outcome, String> {
    let name = match args.iter().position(|a| a == "--shim") {
        Some(i) => args
            .get(i + 1)
            .map(String::as_str)
            .unwrap_or_else(|| usage()),
        None => "",
    };
    let linux = cfg!(target_os = "linux");
    match name {
        "" => run_default(profile, dice),
        "epoll" if linux => run_default(profile, dice),
        #[cfg(target_os = "linux")]
        "uring" => {
            let shim =
                usockets::uring::UringShim::new().unwrap_or_else(|e| fail("io_uring shim", e));
            usockets_hammer::run(shim, profile, dice)
        }
        _ => usage(),
    }
}

/// The hammer on the platform's shim.
fn run_default(profile: Profile, dice: Dice) -> Result<usockets_hammer::Outcome, String> {
    let shim = DefaultShim::new().unwrap_or_else(|e| fail("shim", e));
    usockets_hammer::run(shim, profile, dice)
}

fn arg(args: &[String], name: &str, default: u64) -> u64 {
    match args.iter().position(|a| a == name) {
        Some(i) => args
            .get(i + 1)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| usage()),
        None => default,
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    for pair in args.chunks(2) {
        if !["--connections", "--seed", "--shim"].contains(&pair[0].as_str()) || pair.len() < 2 {
            usage();
        }
    }
    let connections = arg(&args, "--connections", 5000);
    let seed = arg(&args, "--seed", 1);

    // Winsock keeps a handle for the process from its first socket on (one, under Wine):
    // make a socket before counting, so that only what the run leaves counts.
    #[cfg(windows)]
    drop(std::net::TcpListener::bind("127.0.0.1:0"));
    let fds_before = open_fds();
    // The seed picks the operations; what the kernel does in between is not deterministic.
    let outcome = run_on_shim(&args, Profile::loopback(connections), Dice::seeded(seed))
        .unwrap_or_else(|e| fail("setup", e));
    let fds_after = open_fds();
    let c = outcome.counts;
    println!(
        "hammer: connections={connections} opens_client={} closes_client={} opens_server={} \
         closes_server={} connect_errors={} aborted={} adoptions={} timeouts={} writables={} \
         bytes={} fds_before={fds_before} fds_after={fds_after}",
        c.client_opens,
        c.client_closes,
        c.server_opens,
        c.server_closes,
        c.connect_errors,
        c.aborted,
        c.adoptions,
        c.timeouts,
        c.writables,
        c.bytes_echoed,
    );
    eprintln!(
        "hammer: also long_timeouts={} wakeups={} ends={} pauses={} timer_fires={} \
         released_checked={} iterations={}",
        c.long_timeouts,
        c.wakeups,
        c.ends,
        c.pauses,
        c.timer_fires,
        c.released_checked,
        outcome.iterations
    );
    let mut problems = outcome.problems;
    if fds_after != fds_before {
        problems.push(format!(
            "descriptors leaked: {fds_before} before, {fds_after} after"
        ));
    }
    if !problems.is_empty() {
        for p in problems {
            eprintln!("hammer: FAILED: {p}");
        }
        std::process::exit(1);
    }
}
