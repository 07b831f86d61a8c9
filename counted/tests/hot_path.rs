//! The hot path on real loopback sockets, counted rather than timed: in steady state a
//! keep-alive HTTP request costs the server one `recv`, one `send`, at most one `epoll_wait`,
//! no `epoll_ctl` and no allocation.
//!
//! One client thread drives 100 blocking connections in rounds (one request on each, then one
//! response from each: no pipelining). The server loop runs on the test thread and snapshots
//! the shim's syscall counters and its own allocation count when the warm-up rounds are done
//! and again after the last response.

mod alloc_count;
#[path = "../../examples/shared/http.rs"]
#[allow(dead_code)]
mod http;
#[path = "../../examples/shared/http_app.rs"]
#[allow(dead_code)]
mod http_app;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use http::{ResponseChecker, REQUEST, RESPONSE};
use usockets::platform::SyscallStats;
use usockets::{Cx, LoopCallbacks, Settings};

/// Counts the server thread's allocations (see `alloc_count`).
#[global_allocator]
static GLOBAL: alloc_count::CountingAlloc = alloc_count::CountingAlloc;

// ---- the server ------------------------------------------------------------------------------

const CONNECTIONS: usize = 100;
const ROUNDS: usize = 100;
const WARM_UP_ROUNDS: usize = 5;
const WARM_UP: u64 = (CONNECTIONS * WARM_UP_ROUNDS) as u64;
const TOTAL: u64 = (CONNECTIONS * ROUNDS) as u64;
const MEASURED: u64 = TOTAL - WARM_UP;

/// Counters and allocation count at one moment.
#[derive(Clone, Copy, Debug)]
struct Snapshot {
    stats: SyscallStats,
    allocations: u64,
}

/// The loop ext: responses sent and the two snapshots.
#[derive(Default)]
struct Server {
    served: u64,
    warm: Option<Snapshot>,
    end: Option<Snapshot>,
}

/// The example server's handler, with this test's loop ext.
type Http = http_app::Http<Server>;

fn snapshot(cx: &mut Cx<Http>) -> Snapshot {
    Snapshot {
        stats: cx.shim().stats(),
        allocations: alloc_count::allocations(),
    }
}

/// Counts responses and snapshots at the phase boundaries. The client sends nothing of round
/// `WARM_UP_ROUNDS + 1` before it has read every warm-up response, so the warm-up snapshot
/// separates the phases exactly.
impl http_app::Observe for Server {
    fn served(cx: &mut Cx<Http>, n: usize) {
        let before = cx.ext().served;
        let after = before + n as u64;
        cx.ext_mut().served = after;
        if before < WARM_UP && after >= WARM_UP {
            let snap = snapshot(cx);
            cx.ext_mut().warm = Some(snap);
        }
        if before < TOTAL && after >= TOTAL {
            let snap = snapshot(cx);
            cx.ext_mut().end = Some(snap);
        }
    }
}

// ---- the client ------------------------------------------------------------------------------

/// `ROUNDS` rounds over `CONNECTIONS` connections: a request on each, then a response from each.
fn client(port: u16) -> Result<(), String> {
    let mut conns = Vec::with_capacity(CONNECTIONS);
    for i in 0..CONNECTIONS {
        let s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("connect {i}: {e}"))?;
        s.set_nodelay(true).map_err(|e| format!("nodelay: {e}"))?;
        s.set_read_timeout(Some(Duration::from_secs(5)))
            .map_err(|e| format!("timeout: {e}"))?;
        s.set_write_timeout(Some(Duration::from_secs(5)))
            .map_err(|e| format!("timeout: {e}"))?;
        conns.push(s);
    }
    let mut buf = [0u8; 4096];
    for round in 0..ROUNDS {
        for (i, s) in conns.iter_mut().enumerate() {
            s.write_all(REQUEST)
                .map_err(|e| format!("round {round}: write on {i}: {e}"))?;
        }
        for (i, s) in conns.iter_mut().enumerate() {
            let mut checker = ResponseChecker::default();
            let mut got = 0;
            let mut bytes = 0;
            while bytes < RESPONSE.len() {
                // Never read past this response: there is no other in flight.
                let k = s
                    .read(&mut buf[..RESPONSE.len() - bytes])
                    .map_err(|e| format!("round {round}: read on {i}: {e}"))?;
                if k == 0 {
                    return Err(format!("round {round}: connection {i} closed"));
                }
                bytes += k;
                got += checker
                    .feed(&buf[..k])
                    .map_err(|at| format!("round {round}: bad response byte {at} on {i}"))?;
            }
            if got != 1 {
                return Err(format!("round {round}: {got} responses on {i}"));
            }
        }
    }
    Ok(())
}

// ---- the test --------------------------------------------------------------------------------

fn per_request(n: u64) -> f64 {
    n as f64 / MEASURED as f64
}

#[test]
fn steady_state_requests_cost_one_recv_one_send_and_no_allocation() {
    let started = Instant::now();
    // Count from here on: the loop's own buffers are allocated on this thread, which shows the
    // counter works; only the difference between the two snapshots is asserted.
    alloc_count::count_here(true);
    let mut l = usockets::new_loop(
        Server::default(),
        LoopCallbacks::default(),
        Settings::default(),
    )
    .expect("loop");
    let (_, port) =
        http_app::serve(&mut l, http_app::Server::default(), Some("127.0.0.1"), 0).expect("serve");

    let client = std::thread::spawn(move || client(port));

    l.integrate();
    let deadline = started + Duration::from_secs(8);
    while l.ext().end.is_none() && !client.is_finished() && Instant::now() < deadline {
        l.run_once(Some(50)).expect("run_once");
    }
    alloc_count::count_here(false);

    let client = client.join().expect("client thread panicked");
    let server = l.ext();
    if let Err(e) = client {
        panic!("client failed after {} responses: {e}", server.served);
    }
    let warm = server.warm.expect("warm-up never ended");
    let end = server.end.unwrap_or_else(|| {
        panic!(
            "only {} of {TOTAL} responses sent within the deadline",
            server.served
        )
    });
    assert_eq!(server.served, TOTAL, "responses sent");
    assert!(
        warm.allocations > 0,
        "the allocation counter saw none of the loop's own allocations"
    );

    let d = |f: fn(&SyscallStats) -> u64| f(&end.stats) - f(&warm.stats);
    let recv = d(|s| s.recv);
    let sends = d(|s| s.send) + d(|s| s.writev);
    let waits = d(|s| s.epoll_wait);
    let ctls = d(|s| s.epoll_ctl);
    let accepts = d(|s| s.accept);
    let allocations = end.allocations - warm.allocations;
    println!(
        "hot path over {MEASURED} requests ({CONNECTIONS} connections, {} measured rounds): \
         recv/req {:.4}, send+writev/req {:.4}, epoll_wait/req {:.4}, epoll_ctl {ctls}, \
         accept {accepts}, allocations {allocations}, total syscalls/req {:.4}; {:?} in all",
        ROUNDS - WARM_UP_ROUNDS,
        per_request(recv),
        per_request(sends),
        per_request(waits),
        per_request(end.stats.total() - warm.stats.total()),
        started.elapsed(),
    );
    assert!(
        per_request(recv) <= 1.01,
        "recv per request {:.4} ({recv} calls)",
        per_request(recv)
    );
    assert!(
        per_request(sends) <= 1.01,
        "send+writev per request {:.4} ({sends} calls)",
        per_request(sends)
    );
    assert!(
        per_request(waits) <= 1.0,
        "epoll_wait per request {:.4} ({waits} calls)",
        per_request(waits)
    );
    assert_eq!(ctls, 0, "epoll_ctl calls in steady state");
    assert_eq!(
        allocations, 0,
        "allocations on the server thread in steady state"
    );
}
