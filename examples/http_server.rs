//! A keep-alive HTTP server: parses pipelined requests (each `\r\n\r\n` ends one; a request may be
//! split across reads) and answers each with a fixed `200 OK`. The hot path allocates nothing:
//! responses come from a prepared batch; only bytes the kernel refuses wait in a per-socket
//! backlog until `on_writable`.
//!
//! `cargo run --release --example http_server` (default port 3000; `--port 0` picks a free one
//! and prints it as `listening on port N`), then `curl http://localhost:3000/`.

#[path = "shared/http.rs"]
#[allow(dead_code)]
mod http;
#[path = "shared/http_app.rs"]
mod http_app;

use std::io::Write;

use http_app::Conn;
use usockets::{ListenOptions, ListenTarget, LoopCallbacks, Settings};

fn port_arg(default: u16) -> u16 {
    let args: Vec<String> = std::env::args().collect();
    match args.iter().position(|a| a == "--port") {
        Some(i) => match args.get(i + 1).and_then(|p| p.parse().ok()) {
            Some(p) => p,
            None => {
                eprintln!("usage: http_server [--port N]");
                std::process::exit(2);
            }
        },
        None => default,
    }
}

fn fail(what: &str, e: impl std::fmt::Display) -> ! {
    eprintln!("http_server: {what}: {e}");
    std::process::exit(1);
}

fn main() {
    let port = port_arg(3000);
    let mut l: http_app::HttpLoop<()> =
        usockets::new_loop((), LoopCallbacks::default(), Settings::default())
            .unwrap_or_else(|e| fail("loop", e));
    let ctx = l
        .context_create((), http_app::callbacks::<()>())
        .unwrap_or_else(|e| fail("context", e));
    let target = ListenTarget::Host { host: None, port };
    let ls = l
        .listen(ctx, target, ListenOptions::default(), Conn::default)
        .unwrap_or_else(|e| fail(&format!("listen on port {port}"), e));
    println!("listening on port {}", l.listen_port(ls).unwrap_or(port));
    let _ = std::io::stdout().flush();
    if let Err(e) = l.run() {
        fail("run", e);
    }
}
