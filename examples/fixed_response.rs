//! The fixed-response workload of the benchmark suite (`benches/suite.sh`) on the Rust API, the
//! twin of `benches/c/fixed_response.c`: every data event is answered with one 89-byte HTTP
//! response, without parsing, and re-arms a 30 s idle timeout, as a minimal uWebSockets-style
//! server does. It measures the library's cost per request, not an HTTP server: use
//! `http_server` for one.
//!
//! `cargo run --release --example fixed_response -- --port 0` prints `listening on port N`
//! (127.0.0.1 only) and serves until killed; `wrk -c10 http://127.0.0.1:N/` drives it. With
//! `--requests N` it exits 0 right after answering the N-th data event, printing
//! `iterations I events E bytes B` to stderr, so that two callgrind runs at two values of N
//! give the instructions per request (start-up and exit cancel out).
//!
//! Safe against hostile clients: input is counted and dropped, never kept; there is no write
//! queue, so a client that asks faster than it reads is closed as soon as the kernel takes less
//! than a whole response (its send buffer is full); a connection silent for 30 s is closed, and
//! so is one whose client sends FIN.

#[path = "shared/bench.rs"]
mod bench;

use bench::Budget;
use usockets::{App, ContextCallbacks, Cx, LoopCallbacks, RecvBuf, Settings, SocketId};

/// The response to every data event (the same bytes as `benches/c/fixed_response.c`).
const RESPONSE: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\nContent-Type: text/plain\r\nServer: us\r\n\r\nHello World!";
const _: () = assert!(RESPONSE.len() == 89, "the response is 89 bytes");

/// A connection with no request for this long is closed.
const IDLE_SECONDS: u32 = 30;

/// Loop ext: the `--requests` budget; no context or socket state.
type Fixed = App<Budget, (), ()>;

fn on_open(cx: &mut Cx<Fixed>, s: SocketId, _is_client: bool, _ip: &[u8]) {
    cx.timeout(s, IDLE_SECONDS);
}

fn on_data(cx: &mut Cx<Fixed>, s: SocketId, data: &mut RecvBuf<'_>) {
    if cx.write(s, RESPONSE, false) < RESPONSE.len() {
        // Nothing queues the rest: a client that does not read its answers goes.
        cx.close(s, 0, None);
    } else {
        cx.timeout(s, IDLE_SECONDS);
    }
    Budget::spend(cx, data.len());
}

/// On the client's FIN, on the idle timeout.
fn close(cx: &mut Cx<Fixed>, s: SocketId) {
    cx.close(s, 0, None);
}

fn main() {
    let [port, requests] = bench::options("fixed_response", ["port", "requests"]);
    let port = bench::port("fixed_response", port);
    let mut l: usockets::AppLoop<Budget, (), ()> = usockets::new_loop(
        Budget::new(requests),
        LoopCallbacks::default(),
        Settings::default(),
    )
    .unwrap_or_else(|e| bench::fail("fixed_response", "loop", e));
    let callbacks = ContextCallbacks {
        on_open: Some(on_open),
        on_data: Some(on_data),
        on_end: Some(close),
        on_timeout: Some(close),
        ..ContextCallbacks::default()
    };
    bench::serve("fixed_response", &mut l, (), callbacks, port);
}
