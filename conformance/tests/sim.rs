//! The conformance suite against the simulated OS (`usockets-shim-sim`). The virtual clock
//! jumps forward inside `wait`, so the time-based checks run in milliseconds.

use usockets_conformance::{conformance_suite, ShimUnderTest};
use usockets_shim_sim::{Faults, NoFaults, SimFd, SimNet, SimShim};

struct Sim;

impl ShimUnderTest for Sim {
    type Shim = SimShim;

    fn new_shim() -> SimShim {
        SimNet::new(Faults::NONE, Box::new(NoFaults)).shim()
    }

    // Virtual time is exact: no scheduling jitter to allow for.
    const SLACK_MS: u64 = 0;

    fn pipe(shim: &SimShim) -> Option<(SimFd, SimFd)> {
        Some(shim.net().user_pipe())
    }

    fn write_pipe(shim: &SimShim, write_end: &SimFd, data: &[u8]) {
        shim.net().pipe_write(write_end, data);
    }

    fn read_pipe(shim: &SimShim, read_end: &SimFd, buf: &mut [u8]) -> usize {
        shim.net().pipe_read(read_end, buf)
    }
}

conformance_suite!(Sim);

/// Every `pub fn check_*` written in `conformance/src/checks/` is in the list the suite macro
/// expands, once: a check that is written but not listed would silently never run on any shim.
#[test]
fn every_check_is_in_the_suite() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/checks");
    let mut written = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("read src/checks") {
        let path = entry.expect("dir entry").path();
        let src = std::fs::read_to_string(&path).expect("read check module");
        for line in src.lines() {
            if let Some(rest) = line.trim_start().strip_prefix("pub fn check_") {
                let name = rest.split(['<', '(']).next().unwrap_or_default();
                written.push(format!("check_{name}"));
            }
        }
    }
    written.sort();
    let mut listed: Vec<String> = usockets_conformance::CHECKS
        .iter()
        .map(|c| c.to_string())
        .collect();
    listed.sort();
    assert!(
        written.len() > 30,
        "found only {} checks in {dir:?}",
        written.len()
    );
    assert_eq!(listed, written, "checks written vs checks the suite runs");
}
