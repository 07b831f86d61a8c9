//! A keep-alive HTTP server: parses pipelined requests (each `\r\n\r\n` ends one; a request may be
//! split across reads) and answers each with a fixed `200 OK`. The hot path allocates nothing:
//! responses come from a prepared batch; only bytes the kernel refuses wait, in the connection's
//! [`usockets::Outbox`], until `on_writable`.
//!
//! Safe to copy against hostile clients: a client that pipelines and never reads gets its
//! connection paused once `--high-water` bytes of responses wait (256 KiB by default), so memory
//! stays bounded; a connection idle for `--idle-timeout` seconds (30 by default; 0: never)
//! closes, where responses going out count as activity; a client's FIN still gets every
//! response it asked for before the server shuts down and closes. (Over TLS a FIN closes the socket at once, as the C library does, so a TLS
//! server cannot answer after it.)
//!
//! `cargo run --release --example http_server` (default port 3000; `--port 0` picks a free one
//! and prints it as `listening on port N`), then `curl http://localhost:3000/`. With
//! `--cert cert.pem --key key.pem` it serves HTTPS (`curl --cacert ca.pem https://localhost:3000/`).
//! On Linux `--shim uring` runs it on io_uring instead of epoll (`--shim epoll`, the default);
//! where io_uring is not available it says so and exits 1.

#[path = "shared/http.rs"]
#[allow(dead_code)]
mod http;
#[path = "shared/http_app.rs"]
mod http_app;

#[path = "shared/args.rs"]
mod args;

use std::io::Write;

use http_app::Server;
use usockets::{LoopCallbacks, PlatformShim, Settings};

fn fail(what: &str, e: impl std::fmt::Display) -> ! {
    eprintln!("http_server: {what}: {e}");
    std::process::exit(1);
}

/// The server's options, run on the shim `--shim` picks.
struct HttpServer {
    port: u16,
    settings: Server,
}

impl args::Serve for HttpServer {
    fn serve<Sh: PlatformShim>(self, shim: Sh) {
        let mut l: http_app::HttpLoop<(), Sh> =
            usockets::new_loop_with(shim, (), LoopCallbacks::default(), Settings::default())
                .unwrap_or_else(|e| fail("loop", e));
        let (ctx, bound) = http_app::serve(&mut l, self.settings, None, self.port)
            .unwrap_or_else(|e| fail("serve", e));
        if let Some(tls) = args::tls("http_server") {
            l.set_layer_context(ctx, tls);
        }
        println!("listening on port {bound}");
        let _ = std::io::stdout().flush();
        if let Err(e) = l.run() {
            fail("run", e);
        }
    }
}

fn main() {
    let port = args::option("http_server", "port", 3000u16);
    let idle_seconds = args::option("http_server", "idle-timeout", http_app::IDLE_SECONDS);
    let high_water = args::option("http_server", "high-water", usockets::Outbox::DEFAULT_HIGH);
    let settings = Server {
        idle_seconds,
        high_water,
    };
    args::run_on_shim("http_server", HttpServer { port, settings });
}
