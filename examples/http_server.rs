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

use std::io::Write;

use http::{responses, RequestCounter, BATCH};
use usockets::{
    App, ContextCallbacks, Cx, ListenOptions, ListenTarget, LoopCallbacks, RecvBuf, Settings,
    SocketId,
};

/// Per connection: the parser state and bytes waiting for `on_writable`.
#[derive(Default)]
struct Conn {
    parser: RequestCounter,
    backlog: Vec<u8>,
}

type Http = App<(), (), Conn>;

const IDLE_SECONDS: u32 = 30;

fn on_open(cx: &mut Cx<Http>, s: SocketId, _is_client: bool, _ip: &[u8]) {
    cx.timeout(s, IDLE_SECONDS);
}

fn on_data(cx: &mut Cx<Http>, s: SocketId, data: &mut RecvBuf<'_>) {
    let Some(conn) = cx.socket_ext_mut(s) else {
        return;
    };
    let mut requests = conn.parser.feed(data);
    let mut queued = !conn.backlog.is_empty();
    if requests == 0 {
        return;
    }
    cx.timeout(s, IDLE_SECONDS);
    while requests > 0 {
        let n = requests.min(BATCH);
        requests -= n;
        let bytes = responses(n);
        let written = if queued { 0 } else { cx.write(s, bytes, false) };
        if written < bytes.len() {
            queued = true;
            if let Some(conn) = cx.socket_ext_mut(s) {
                conn.backlog.extend_from_slice(&bytes[written..]);
            }
        }
    }
}

fn on_writable(cx: &mut Cx<Http>, s: SocketId) {
    let backlog = match cx.socket_ext_mut(s) {
        Some(c) => std::mem::take(&mut c.backlog),
        None => return,
    };
    let written = cx.write(s, &backlog, false);
    if let Some(c) = cx.socket_ext_mut(s) {
        c.backlog = backlog;
        c.backlog.drain(..written);
    }
}

fn on_end(cx: &mut Cx<Http>, s: SocketId) {
    cx.shutdown(s);
    cx.close(s, 0, None);
}

fn on_timeout(cx: &mut Cx<Http>, s: SocketId) {
    cx.close(s, 0, None);
}

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
    let mut l = usockets::new_loop((), LoopCallbacks::default(), Settings::default())
        .unwrap_or_else(|e| fail("loop", e));
    let callbacks = ContextCallbacks {
        on_open: Some(on_open),
        on_data: Some(on_data),
        on_writable: Some(on_writable),
        on_end: Some(on_end),
        on_timeout: Some(on_timeout),
        ..ContextCallbacks::default()
    };
    let ctx = l
        .context_create((), callbacks)
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
