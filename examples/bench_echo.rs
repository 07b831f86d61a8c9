//! The echo workload of the benchmark suite (`benches/suite.sh`) on the Rust API, the twin of
//! `benches/c/echo.c`: every data event is written back as it came, with no queue, so that the
//! suite measures the library's cost per message (the suite's load sends 12-byte messages, one
//! in flight per connection). For an echo server to copy, with a bounded queue and an idle
//! timeout, see `echo_server`.
//!
//! `cargo run --release --example bench_echo -- --port 0` prints `listening on port N`
//! (127.0.0.1 only) and echoes until killed; `cargo run --release --example load -- --port N
//! --mode echo --payload 12 --connections 10` drives it. With `--requests N` it exits 0 right
//! after echoing the N-th data event, printing `iterations I events E bytes B` to stderr, so
//! that two callgrind runs at two values of N give the instructions per message.
//!
//! Safe against hostile clients: nothing is kept between events, so a client that sends and
//! never reads is closed as soon as the kernel takes less than the whole echo (its send buffer
//! is full), and a client's FIN closes the connection. Like its C twin it has no idle timeout
//! (re-arming one per message would add to what the workload measures): a silent connection
//! holds one socket slot until its client goes. A server facing the internet wants
//! `echo_server`'s `--idle-timeout`.

#[path = "shared/bench.rs"]
mod bench;

use bench::Budget;
use usockets::{App, ContextCallbacks, Cx, LoopCallbacks, RecvBuf, Settings, SocketId};

/// Loop ext: the `--requests` budget; no context or socket state.
type Echo = App<Budget, (), ()>;

fn on_data(cx: &mut Cx<Echo>, s: SocketId, data: &mut RecvBuf<'_>) {
    if cx.write(s, data, false) < data.len() {
        // Nothing queues the rest: a client that does not read its echo goes.
        cx.close(s, 0, None);
    }
    Budget::spend(cx, data.len());
}

/// On the client's FIN.
fn close(cx: &mut Cx<Echo>, s: SocketId) {
    cx.close(s, 0, None);
}

fn main() {
    let [port, requests] = bench::options("bench_echo", ["port", "requests"]);
    let port = bench::port("bench_echo", port);
    let mut l: usockets::AppLoop<Budget, (), ()> = usockets::new_loop(
        Budget::new(requests),
        LoopCallbacks::default(),
        Settings::default(),
    )
    .unwrap_or_else(|e| bench::fail("bench_echo", "loop", e));
    let callbacks = ContextCallbacks {
        on_data: Some(on_data),
        on_end: Some(close),
        ..ContextCallbacks::default()
    };
    bench::serve("bench_echo", &mut l, (), callbacks, port);
}
