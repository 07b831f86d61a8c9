//! The hammer example on real loopback sockets: 5000 connections with random operations on
//! every event must end with opens == closes on both sides and no leaked descriptor; and the
//! same when the process runs out of descriptors.

mod support;

use std::collections::HashMap;
use std::process::Command;

/// Raises the soft descriptor limit to the hard one, then runs the program (`$0`) with its
/// arguments: the example cannot call `setrlimit` without `unsafe`.
const RAISE_NOFILE: &str = r#"ulimit -n $(ulimit -Hn) && exec "$0" "$@""#;

/// Runs the hammer through `sh -c script` (with `extra` arguments), asserts it succeeded and
/// returns its summary.
fn hammer_with(script: &str, connections: u64, extra: &[&str]) -> HashMap<String, u64> {
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg(script).arg(support::example("hammer"));
    cmd.args(extra);
    support::hammer(cmd, connections, std::time::Duration::from_secs(50))
}

/// The hammer on the default shim (epoll).
fn hammer(script: &str, connections: u64) -> HashMap<String, u64> {
    hammer_with(script, connections, &[])
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

/// The same 5000 connections on the io_uring shim (`--shim uring`; the example fails, and so
/// this test, where io_uring is not available).
#[test]
fn hammer_5000_connections_on_io_uring() {
    const N: u64 = 5000;
    let f = hammer_with(RAISE_NOFILE, N, &["--shim", "uring"]);
    for k in ["adoptions", "timeouts", "bytes"] {
        assert!(f[k] > 0, "no {k}: {f:?}");
    }
    assert!(
        f["opens_server"] > N / 2,
        "most connections reached the server: {f:?}"
    );
}

/// Out of descriptors on the io_uring shim: the multishot accept ends on `EMFILE` and the
/// listener sheds through the syscall fallback; connects fail cleanly; nothing leaks.
#[test]
fn hammer_out_of_descriptors_on_io_uring() {
    let f = hammer_with(
        r#"ulimit -n 256 && exec "$0" "$@""#,
        2000,
        &["--shim", "uring"],
    );
    assert!(f["connect_errors"] > 0, "descriptors never ran out: {f:?}");
    assert!(f["opens_server"] > 0, "no connection at all: {f:?}");
}
