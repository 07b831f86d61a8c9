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

#[test]
fn every_check_is_in_the_suite() {
    assert_eq!(usockets_conformance::CHECKS.len(), 37);
}
