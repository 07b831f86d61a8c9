//! The io_uring shim's hot path on real loopback sockets, counted rather than timed: in steady
//! state a keep-alive request costs the server no `recv`, no `send`, no `epoll_*` (no syscall
//! at all outside the ring), no allocation, and at most one `io_uring_enter` per loop
//! iteration. The `io_uring_enter` calls per request are printed.
//!
//! One client thread drives 100 blocking connections in rounds (one request on each, then one
//! response from each: no pipelining). The server, core on `UringShim` answering each data
//! event with the fixed HTTP response, runs on the test thread and snapshots the shim's
//! counters, its own allocation count and the loop's iterations when the warm-up rounds are
//! done and again after the last response.
#![cfg(target_os = "linux")]

mod alloc_count;
#[path = "../../examples/shared/http.rs"]
#[allow(dead_code)]
mod http;

use std::io::{Read, Write};
use std::marker::PhantomData;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use http::{ResponseChecker, REQUEST, RESPONSE};
use usockets_core::{
    Capacity, Config, ContextCallbacks, Cx, GrowingStorage, ListenOptions, ListenTarget, Loop,
    LoopCallbacks, NoLayer, RecvBuf, Settings, SocketId,
};
use usockets_shim_uring::{UringShim, UringStats};

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

/// Counters, allocations and iterations at one moment.
#[derive(Clone, Copy, Debug)]
struct Snapshot {
    stats: UringStats,
    allocations: u64,
    iterations: u64,
}

/// The loop ext.
#[derive(Default)]
struct Server {
    served: u64,
    iterations: u64,
    warm: Option<Snapshot>,
    end: Option<Snapshot>,
}

struct Http(PhantomData<()>);

impl Config for Http {
    type Shim = UringShim;
    type LoopExt = Server;
    type ContextExt = ();
    type SocketExt = ();
    type TimerExt = ();
    type PollExt = ();
    type Reason = usize;
    type Storage = GrowingStorage<Self>;
    type Layer = NoLayer;
}

fn snapshot(cx: &mut Cx<Http>) -> Snapshot {
    Snapshot {
        stats: cx.shim().stats(),
        allocations: alloc_count::allocations(),
        iterations: cx.ext().iterations,
    }
}

fn pre(cx: &mut Cx<Http>) {
    cx.ext_mut().iterations += 1;
}

/// One response per data event (the client never pipelines), the idle timeout re-armed.
fn on_data(cx: &mut Cx<Http>, s: SocketId, _data: &mut RecvBuf<'_>) {
    let n = cx.write(s, RESPONSE, false);
    assert_eq!(n, RESPONSE.len(), "a response is taken whole");
    cx.timeout(s, 30);
    let before = cx.ext().served;
    cx.ext_mut().served = before + 1;
    if before + 1 == WARM_UP {
        let snap = snapshot(cx);
        cx.ext_mut().warm = Some(snap);
    }
    if before + 1 == TOTAL {
        let snap = snapshot(cx);
        cx.ext_mut().end = Some(snap);
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
            let mut bytes = 0;
            let mut got = 0;
            while bytes < RESPONSE.len() {
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
fn steady_state_requests_cost_no_syscall_but_at_most_one_enter_per_iteration() {
    let started = Instant::now();
    alloc_count::count_here(true);
    let shim = UringShim::new().expect("UringShim::new (io_uring must be available)");
    let storage = GrowingStorage::new(Capacity::new().with_recv(512 * 1024));
    let callbacks = LoopCallbacks {
        pre: Some(pre),
        ..LoopCallbacks::default()
    };
    let mut l = Loop::<Http>::new(
        shim,
        storage,
        Server::default(),
        callbacks,
        Settings::default(),
    )
    .expect("loop");
    let ctx = l
        .context_create(
            (),
            ContextCallbacks {
                on_data: Some(on_data),
                ..ContextCallbacks::default()
            },
        )
        .expect("context");
    let target = ListenTarget::Host {
        host: Some("127.0.0.1"),
        port: 0,
    };
    let ls = l
        .listen(ctx, target, ListenOptions::default(), || ())
        .expect("listen");
    let port = l.listen_port(ls).expect("port");
    let client = std::thread::spawn(move || client(port));

    let deadline = started + Duration::from_secs(20);
    // Until the client has read the last response: the shim sends what an iteration wrote
    // in the next iteration's enter, after the snapshot.
    while !client.is_finished() && Instant::now() < deadline {
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
            "only {} of {TOTAL} responses within the deadline",
            server.served
        )
    });
    assert!(
        warm.allocations > 0,
        "the allocation counter saw none of the loop's own allocations"
    );
    let (a, b) = (&warm.stats, &end.stats);
    let enters = b.enters - a.enters;
    let iterations = end.iterations - warm.iterations;
    let syscalls = b.syscalls.total() - a.syscalls.total();
    let allocations = end.allocations - warm.allocations;
    println!(
        "uring hot path over {MEASURED} requests ({CONNECTIONS} connections): \
         io_uring_enter/req {:.4}, iterations/req {:.4}, submissions/req {:.4}, \
         completions/req {:.4}, other syscalls {syscalls}, allocations {allocations}; {:?}",
        per_request(enters),
        per_request(iterations),
        per_request(b.submitted - a.submitted),
        per_request(b.completions - a.completions),
        started.elapsed(),
    );
    // Over the whole life of the shim, not only the steady state: it has none of these.
    let s = &b.syscalls;
    assert_eq!(
        (s.recv, s.send, s.writev, s.epoll_wait, s.epoll_ctl),
        (0, 0, 0, 0, 0),
        "recv, send, writev, epoll_wait, epoll_ctl"
    );
    assert_eq!(
        syscalls, 0,
        "syscalls outside the ring in steady state: {:?}",
        b.syscalls
    );
    assert!(
        enters <= iterations,
        "{enters} io_uring_enter calls in {iterations} loop iterations"
    );
    assert!(enters > 0, "the ring was never entered");
    assert_eq!(
        allocations, 0,
        "allocations on the server thread in steady state"
    );
}
