//! A handshake flood, counted on the simulated OS: 1,000 clients trickle ClientHellos one byte
//! per iteration, so 1,000 handshakes stay pending and readable. Handshaking sockets are low
//! priority: at most `low_priority_budget` of their reads run per iteration, and an established
//! TLS echo on the same server completes a round trip every iteration.

mod common;

use common::*;
use usockets_core::{Capacity, GrowingStorage, Loop, LoopCallbacks, Settings, SocketId};
use usockets_shim_sim::{Faults, NoFaults, PeerId, SimNet, SimShim};
use usockets_tls::Versions;

const FLOOD: usize = 1000;
const BUDGET: u32 = 5;
const ITERATIONS: usize = 60;

#[test]
fn a_thousand_pending_handshakes_get_the_budget_and_an_established_echo_keeps_its_pace() {
    let net = SimNet::new(Faults::NONE, Box::new(NoFaults));
    let settings = Settings::default().with_low_priority_budget(BUDGET);
    let mut l: Loop<T<SimShim>> = Loop::new(
        net.shim(),
        GrowingStorage::new(Capacity::new().with_recv(64 * 1024)),
        Log::default(),
        LoopCallbacks::default(),
        settings,
    )
    .expect("loop");
    let pki = Pki::new(&["127.0.0.1"]);
    l.ext_mut().echo = true;
    l.ext_mut().greeting = b"ping".to_vec();
    let (_, cc, port) = contexts(
        &mut l,
        pki.server(Versions::Both),
        pki.client(Versions::Both),
    );
    let c: SocketId = connect_local(&mut l, cc, port);
    for _ in 0..200 {
        if l.ext().received(c) == b"ping" {
            break;
        }
        l.run_once(Some(10)).expect("run");
    }
    assert_eq!(
        l.ext().received(c),
        b"ping",
        "the echo connection is established"
    );

    // The flood: every peer connected and accepted; each sends its ClientHello a byte at a time.
    let hello = client_hello();
    let mut peers: Vec<PeerId> = Vec::with_capacity(FLOOD);
    while peers.len() < FLOOD {
        // In batches the listen backlog (512) holds, accepted between batches.
        for _ in 0..100 {
            peers.push(net.peer_connect(port).expect("flood peer"));
        }
        l.run_once(Some(0)).expect("run");
    }
    let opened = |l: &Loop<T<SimShim>>| {
        l.ext()
            .count(|e| matches!(e, Ev::Open { client: false, .. }))
    };
    for _ in 0..100 {
        if opened(&l) == FLOOD + 1 {
            break;
        }
        l.run_once(Some(0)).expect("run");
    }
    assert_eq!(opened(&l), FLOOD + 1, "every flood connection accepted");

    let mut echoed = l.ext().received(c).len();
    let mut max_handshake_reads = 0;
    for i in 0..ITERATIONS {
        // Each flood peer sends its next byte: every pending handshake is readable again.
        for p in &peers {
            net.peer_send(*p, &hello[i..=i]);
        }
        // The echo client sends one message per iteration.
        let msg = format!("{i:04}");
        send(&mut l, c, msg.as_bytes());
        let before = net.syscalls().recv;
        l.run_once(Some(0)).expect("run");
        let reads = net.syscalls().recv - before;
        // At most the echo's two ends read; everything else is a handshake read.
        max_handshake_reads = max_handshake_reads.max(reads.saturating_sub(2));
        let now = l.ext().received(c).len();
        if i >= 2 {
            assert!(
                now >= echoed + 4,
                "iteration {i}: the established echo made no progress ({echoed} -> {now})"
            );
        }
        echoed = now;
    }
    println!(
        "{FLOOD} pending handshakes: at most {max_handshake_reads} handshake reads per \
         iteration (budget {BUDGET}); {} queued",
        l.low_priority_queue_len()
    );
    assert!(
        max_handshake_reads <= u64::from(BUDGET),
        "{max_handshake_reads} handshake reads in one iteration, budget {BUDGET}"
    );
    assert!(
        l.low_priority_queue_len() > 0,
        "the flood waited in the low-priority queue"
    );
    let closed = l.ext().count(|e| matches!(e, Ev::Close { .. }));
    assert_eq!(closed, 0, "every handshake is still pending (none refused)");
    let expected: String = (0..ITERATIONS).map(|i| format!("{i:04}")).collect();
    let got = &l.ext().received(c)[4..];
    assert!(
        expected.as_bytes().starts_with(got) && got.len() + 8 >= expected.len(),
        "the echo came back in order, at most two iterations behind"
    );
}
