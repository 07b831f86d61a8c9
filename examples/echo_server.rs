//! An echo server: every byte received is sent back. Bytes the kernel does not take at once wait
//! in a per-socket backlog that `on_writable` flushes; idle connections close after 30 s; a peer's
//! FIN is answered with our own and a close.
//!
//! `cargo run --release --example echo_server -- --port 3001` (port 0 picks a free one; the port
//! is printed as `listening on port N`).

use std::io::Write;

use usockets::{
    App, ContextCallbacks, Cx, ListenOptions, ListenTarget, LoopCallbacks, RecvBuf, Settings,
    SocketId,
};

/// Bytes waiting to be echoed (backpressure).
type Backlog = Vec<u8>;
type Echo = App<(), (), Backlog>;

const IDLE_SECONDS: u32 = 30;

fn on_open(cx: &mut Cx<Echo>, s: SocketId, _is_client: bool, _ip: &[u8]) {
    cx.timeout(s, IDLE_SECONDS);
}

fn on_data(cx: &mut Cx<Echo>, s: SocketId, data: &mut RecvBuf<'_>) {
    cx.timeout(s, IDLE_SECONDS);
    let queued = cx.socket_ext(s).is_some_and(|b| !b.is_empty());
    // Keep order: once something waits, new bytes queue behind it.
    let written = if queued { 0 } else { cx.write(s, data, false) };
    if written < data.len() {
        if let Some(backlog) = cx.socket_ext_mut(s) {
            backlog.extend_from_slice(&data[written..]);
        }
    }
}

fn on_writable(cx: &mut Cx<Echo>, s: SocketId) {
    let backlog = match cx.socket_ext_mut(s) {
        Some(b) => std::mem::take(b),
        None => return,
    };
    let written = cx.write(s, &backlog, false);
    if let Some(b) = cx.socket_ext_mut(s) {
        *b = backlog;
        b.drain(..written);
    }
}

fn on_end(cx: &mut Cx<Echo>, s: SocketId) {
    cx.shutdown(s);
    cx.close(s, 0, None);
}

fn on_timeout(cx: &mut Cx<Echo>, s: SocketId) {
    cx.close(s, 0, None);
}

fn port_arg(default: u16) -> u16 {
    let args: Vec<String> = std::env::args().collect();
    match args.iter().position(|a| a == "--port") {
        Some(i) => match args.get(i + 1).and_then(|p| p.parse().ok()) {
            Some(p) => p,
            None => {
                eprintln!("usage: echo_server [--port N]");
                std::process::exit(2);
            }
        },
        None => default,
    }
}

fn main() {
    let port = port_arg(3001);
    let mut l = match usockets::new_loop((), LoopCallbacks::default(), Settings::default()) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("echo_server: {e}");
            std::process::exit(1);
        }
    };
    let callbacks = ContextCallbacks {
        on_open: Some(on_open),
        on_data: Some(on_data),
        on_writable: Some(on_writable),
        on_end: Some(on_end),
        on_timeout: Some(on_timeout),
        ..ContextCallbacks::default()
    };
    let ctx = match l.context_create((), callbacks) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("echo_server: {e}");
            std::process::exit(1);
        }
    };
    let target = ListenTarget::Host { host: None, port };
    let ls = match l.listen(ctx, target, ListenOptions::default(), Backlog::new) {
        Ok(ls) => ls,
        Err(e) => {
            eprintln!("echo_server: cannot listen on port {port}: {e}");
            std::process::exit(1);
        }
    };
    println!("listening on port {}", l.listen_port(ls).unwrap_or(port));
    let _ = std::io::stdout().flush();
    if let Err(e) = l.run() {
        eprintln!("echo_server: {e}");
        std::process::exit(1);
    }
}
