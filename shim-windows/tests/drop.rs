//! Dropping a loop whose sockets have AFD poll requests in flight: the shim cancels them and
//! drains the port before freeing their memory, and the process's handles come back to what
//! they were (sockets, the port and the AFD handle all closed). Alone in its test binary, so
//! that no other test opens handles while it counts.
#![cfg(windows)]

mod common;

use common::Windows;
use usockets_conformance::harness::{Fixture, LOCAL4};
use usockets_shim_windows::open_handles;

#[test]
fn dropping_a_loop_with_polls_in_flight_frees_every_handle() {
    // Winsock keeps a handle from the process's first socket on: open it before counting.
    drop(std::net::TcpListener::bind((LOCAL4, 0)));
    let before = open_handles().expect("handle count");
    for round in 0..3 {
        let mut f = Fixture::<Windows>::tcp(LOCAL4);
        let pairs: Vec<_> = (0..12).map(|_| f.pair()).collect();
        assert_eq!(pairs.len(), 12);
        let during = open_handles().expect("handle count");
        assert!(
            during >= before + 24,
            "round {round}: 24 sockets, a listener, a port and an AFD handle are open: \
             {during} handles, {before} before"
        );
        // Every socket is idle with a readable poll in flight: the drop cancels and drains.
        drop(f);
        let after = open_handles().expect("handle count");
        assert_eq!(after, before, "round {round}: every handle closed on drop");
    }
}
