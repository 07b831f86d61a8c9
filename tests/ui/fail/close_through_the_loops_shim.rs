//! The loop lends its shim only shared (`&Shim`): nothing reachable from a loop can close or
//! re-register a descriptor, not even one the caller owns.
#![forbid(unsafe_code)]

use std::net::TcpListener;
use std::os::fd::OwnedFd;

use usockets::{AppLoop, LoopCallbacks, OsShim, Settings};

fn main() {
    let l: AppLoop<(), (), ()> =
        usockets::new_loop((), LoopCallbacks::default(), Settings::default()).unwrap();
    let fd = OwnedFd::from(TcpListener::bind("127.0.0.1:0").unwrap());
    l.shim().close(fd);
}
