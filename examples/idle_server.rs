//! The idle-connection workload of the benchmark suite (`benches/suite.sh`): a server that
//! accepts connections and holds them, to measure what an idle connection costs in memory on
//! the Rust API (`App` on growing storage, no socket ext). Its C twin is `benches/c/idle.c`.
//!
//! `cargo run --release --example idle_server -- --port 0` prints the size of one socket slot of
//! its arena (`socket slot: N bytes`, the library's own accounting: the growing storage keeps
//! these in chunks of 128 KiB or more, written a slot at a time and given back when they empty)
//! and `listening on port N` (127.0.0.1 only). The suite opens thousands of connections to it
//! and reads its resident memory from `/proc`. `--shim uring` holds them on io_uring instead of
//! epoll (Linux); `--cert FILE --key FILE` over TLS (what a connection costs with its rustls
//! state once its handshake is done).
//!
//! Safe against hostile clients: whatever a client sends is dropped, never kept; a client's FIN
//! closes its connection; with `--idle-timeout SECONDS` (0, the default, never: the suite holds
//! connections idle on purpose) a connection silent that long is closed.

#[path = "shared/args.rs"]
mod args;

use std::io::Write;

use usockets::{
    App, ContextCallbacks, Cx, ListenOptions, ListenTarget, LoopCallbacks, PlatformShim, RecvBuf,
    Settings, Slot, SocketEntry, SocketId,
};

/// Context ext: the idle timeout in seconds (0: none); no loop or socket state; on shim `Sh`.
type Idle<Sh> = App<(), u32, (), (), (), Sh>;

/// (Re)arms `s`'s idle timeout, if its context has one.
fn touch<Sh: PlatformShim>(cx: &mut Cx<Idle<Sh>>, s: SocketId) {
    let seconds = cx
        .socket_context(s)
        .and_then(|c| cx.context_ext(c))
        .copied()
        .unwrap_or(0);
    if seconds > 0 {
        cx.timeout(s, seconds);
    }
}

fn on_open<Sh: PlatformShim>(cx: &mut Cx<Idle<Sh>>, s: SocketId, _is_client: bool, _ip: &[u8]) {
    touch(cx, s);
}

/// Input is dropped; it counts as activity.
fn on_data<Sh: PlatformShim>(cx: &mut Cx<Idle<Sh>>, s: SocketId, _data: &mut RecvBuf<'_>) {
    touch(cx, s);
}

/// On the client's FIN, on the idle timeout.
fn close<Sh: PlatformShim>(cx: &mut Cx<Idle<Sh>>, s: SocketId) {
    cx.close(s, 0, None);
}

fn fail(what: &str, e: impl std::fmt::Display) -> ! {
    eprintln!("idle_server: {what}: {e}");
    std::process::exit(1);
}

/// The server's options, run on the shim `--shim` picks.
struct IdleServer {
    port: u16,
    idle_seconds: u32,
}

impl args::Serve for IdleServer {
    fn serve<Sh: PlatformShim>(self, shim: Sh) {
        let mut l: usockets::Loop<Idle<Sh>> =
            usockets::new_loop_with(shim, (), LoopCallbacks::default(), Settings::default())
                .unwrap_or_else(|e| fail("loop", e));
        let callbacks = ContextCallbacks {
            on_open: Some(on_open::<Sh>),
            on_data: Some(on_data::<Sh>),
            on_end: Some(close::<Sh>),
            on_timeout: Some(close::<Sh>),
            ..ContextCallbacks::default()
        };
        let ctx = l
            .context_create(self.idle_seconds, callbacks)
            .unwrap_or_else(|e| fail("context", e));
        if let Some(tls) = args::tls("idle_server") {
            l.set_layer_context(ctx, tls);
        }
        println!(
            "socket slot: {} bytes",
            std::mem::size_of::<Slot<SocketEntry<Idle<Sh>>>>()
        );
        let target = ListenTarget::Host {
            host: Some("127.0.0.1"),
            port: self.port,
        };
        let ls = l
            .listen(ctx, target, ListenOptions::default(), || ())
            .unwrap_or_else(|e| fail(&format!("cannot listen on port {}", self.port), e));
        println!(
            "listening on port {}",
            l.listen_port(ls).unwrap_or(self.port)
        );
        let _ = std::io::stdout().flush();
        if let Err(e) = l.run() {
            fail("run", e);
        }
    }
}

fn main() {
    let port = args::option("idle_server", "port", 0u16);
    let idle_seconds = args::option("idle_server", "idle-timeout", 0u32);
    args::run_on_shim("idle_server", IdleServer { port, idle_seconds });
}
