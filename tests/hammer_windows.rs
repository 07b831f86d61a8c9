//! The hammer example on real loopback sockets through the IOCP shim: 1000 connections with
//! random operations on every event must end with opens == closes on both sides and no leaked
//! handle. Run under Wine by `.ci/run` (`wine/ci.sh`), where every socket call goes through
//! Wine's server: 1000 connections, not the 5000 of Linux.
#![cfg(windows)]

mod support;

use std::process::Command;
use std::time::Duration;

#[test]
fn hammer_1000_connections_on_loopback() {
    const N: u64 = 1000;
    let f = support::hammer(
        Command::new(support::example("hammer")),
        N,
        Duration::from_secs(180),
    );
    for k in ["adoptions", "timeouts", "bytes"] {
        assert!(f[k] > 0, "no {k}: {f:?}");
    }
    assert!(
        f["opens_server"] > N / 2,
        "most connections reached the server: {f:?}"
    );
}
