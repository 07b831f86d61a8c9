//! The simulated OS's descriptor does not convert from an integer either (the platform's is
//! std's `OwnedFd`, whose only way from a number is the `unsafe fn from_raw_fd`).
#![forbid(unsafe_code)]

use usockets_shim_sim::SimFd;

fn main() {
    let _sim: SimFd = 7.into();
}
