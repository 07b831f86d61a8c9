//! The idle-connection workload of the benchmark suite (`benches/suite.sh`): a server that
//! accepts connections and holds them, to measure what an idle connection costs in memory on
//! the Rust API (`App` on the default shim and growing storage, no socket ext). Its C twin is
//! `benches/c/idle.c`.
//!
//! `cargo run --release --example idle_server -- --port 0` prints the size of one socket slot of
//! its arena (`socket slot: N bytes`, the library's own accounting: the growing storage keeps
//! these in chunks of 128 KiB or more, written a slot at a time and given back when they empty)
//! and `listening on port N` (127.0.0.1 only). The
//! suite opens thousands of connections to it and reads its resident memory from `/proc`.
//!
//! Safe against hostile clients: whatever a client sends is dropped, never kept; a client's FIN
//! closes its connection; with `--idle-timeout SECONDS` (0, the default, never: the suite holds
//! connections idle on purpose) a connection silent that long is closed.

#[path = "shared/bench.rs"]
#[allow(dead_code)]
mod bench;

use usockets::{
    App, ContextCallbacks, Cx, LoopCallbacks, RecvBuf, Settings, Slot, SocketEntry, SocketId,
};

/// Context ext: the idle timeout in seconds (0: none); no loop or socket state.
type Idle = App<(), u32, ()>;

/// (Re)arms `s`'s idle timeout, if its context has one.
fn touch(cx: &mut Cx<Idle>, s: SocketId) {
    let seconds = cx
        .socket_context(s)
        .and_then(|c| cx.context_ext(c))
        .copied()
        .unwrap_or(0);
    if seconds > 0 {
        cx.timeout(s, seconds);
    }
}

fn on_open(cx: &mut Cx<Idle>, s: SocketId, _is_client: bool, _ip: &[u8]) {
    touch(cx, s);
}

/// Input is dropped; it counts as activity.
fn on_data(cx: &mut Cx<Idle>, s: SocketId, _data: &mut RecvBuf<'_>) {
    touch(cx, s);
}

/// On the client's FIN, on the idle timeout.
fn close(cx: &mut Cx<Idle>, s: SocketId) {
    cx.close(s, 0, None);
}

fn main() {
    let [port, idle_seconds] = bench::options("idle_server", ["port", "idle-timeout"]);
    let port = bench::port("idle_server", port);
    let idle_seconds = u32::try_from(idle_seconds.unwrap_or(0)).unwrap_or(u32::MAX);
    let mut l: usockets::AppLoop<(), u32, ()> =
        usockets::new_loop((), LoopCallbacks::default(), Settings::default())
            .unwrap_or_else(|e| bench::fail("idle_server", "loop", e));
    let callbacks = ContextCallbacks {
        on_open: Some(on_open),
        on_data: Some(on_data),
        on_end: Some(close),
        on_timeout: Some(close),
        ..ContextCallbacks::default()
    };
    println!(
        "socket slot: {} bytes",
        std::mem::size_of::<Slot<SocketEntry<Idle>>>()
    );
    bench::serve("idle_server", &mut l, idle_seconds, callbacks, port);
}
