//! The hammer example on real loopback sockets: 5000 connections with random operations on
//! every event must end with opens == closes on both sides and no leaked descriptor; and the
//! same when the process runs out of descriptors.

mod support;

use std::collections::HashMap;
use std::process::Command;
use std::time::{Duration, Instant};

/// Raises the soft descriptor limit to the hard one, then runs the program (`$0`) with its
/// arguments: the example cannot call `setrlimit` without `unsafe`.
const RAISE_NOFILE: &str = r#"ulimit -n $(ulimit -Hn) && exec "$0" "$@""#;

/// Runs the hammer through `sh -c script`, asserts it succeeded and returns its summary.
fn hammer(script: &str, connections: u64) -> HashMap<String, u64> {
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(script)
        .arg(support::example("hammer"))
        .args(["--connections", &connections.to_string()]);
    let started = Instant::now();
    let run = support::run_with_timeout(cmd, Duration::from_secs(50));
    eprintln!("hammer took {:?}: {}", started.elapsed(), run.stdout.trim());
    assert!(
        run.status.success(),
        "hammer failed ({}):\n{}",
        run.status,
        run.stdout
    );
    let f: HashMap<String, u64> = support::summary_fields(&run.stdout, "hammer:")
        .into_iter()
        .map(|(k, v)| {
            let n = v
                .parse()
                .unwrap_or_else(|_| panic!("{k}={v} is not a number"));
            (k, n)
        })
        .collect();
    let n = |k: &str| *f.get(k).unwrap_or_else(|| panic!("no {k} in {f:?}"));
    assert_eq!(n("connections"), connections);
    assert_eq!(
        n("opens_client"),
        n("closes_client"),
        "client opens == closes: {f:?}"
    );
    assert_eq!(
        n("opens_server"),
        n("closes_server"),
        "server opens == closes: {f:?}"
    );
    assert_eq!(
        n("opens_client") + n("connect_errors") + n("aborted"),
        connections,
        "every connect resolved once: {f:?}"
    );
    assert_eq!(
        n("fds_before"),
        n("fds_after"),
        "no descriptor leaked: {f:?}"
    );
    f
}

#[test]
fn hammer_5000_connections_on_loopback() {
    const N: u64 = 5000;
    let f = hammer(RAISE_NOFILE, N);
    for k in ["adoptions", "timeouts", "bytes"] {
        assert!(f[k] > 0, "no {k}: {f:?}");
    }
    assert!(
        f["opens_server"] > N / 2,
        "most connections reached the server: {f:?}"
    );
}

#[test]
fn hammer_out_of_descriptors() {
    // 200 connections in flight need 400 descriptors: with 256, `socket` and `accept` fail with
    // EMFILE, connects fail through on_connect_error and the listener sheds and backs off.
    let f = hammer(r#"ulimit -n 256 && exec "$0" "$@""#, 2000);
    assert!(f["connect_errors"] > 0, "descriptors never ran out: {f:?}");
    assert!(f["opens_server"] > 0, "no connection at all: {f:?}");
}
