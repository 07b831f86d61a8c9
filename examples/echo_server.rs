//! An echo server: every byte received is sent back, in order, none lost.
//!
//! Safe to copy against hostile clients: bytes the kernel does not take wait in the
//! connection's [`Outbox`], and once `--high-water` bytes wait (256 KiB by default) the server
//! stops reading from that client until they drain (a client that sends and never reads holds
//! bounded memory; the ring never moves bytes to drain). A connection idle for `--idle-timeout`
//! seconds (30 by default; 0: never) closes, where bytes going out count as activity, so a slow
//! reader is not cut off mid-transfer. A client's FIN is answered with the rest of its echo,
//! then our FIN and a close. (Over TLS a FIN closes the socket at once, as the C library does.)
//!
//! `cargo run --release --example echo_server -- --port 3001` (port 0 picks a free one; the port
//! is printed as `listening on port N`); `--cert cert.pem --key key.pem` echoes over TLS. On
//! Linux `--shim uring` runs it on io_uring instead of epoll (`--shim epoll`, the default); where
//! io_uring is not available it says so and exits 1.

#[path = "shared/args.rs"]
mod args;
#[path = "shared/echo_app.rs"]
mod echo_app;

use std::io::Write;

use usockets::{App, ListenOptions, ListenTarget, LoopCallbacks, Outbox, PlatformShim, Settings};

/// Context ext: the server's settings; socket ext: the bytes waiting to be echoed; on shim `Sh`.
type Echo<Sh> = App<(), echo_app::Echo, Outbox, (), (), Sh>;

fn fail(what: &str, e: impl std::fmt::Display) -> ! {
    eprintln!("echo_server: {what}: {e}");
    std::process::exit(1);
}

/// The server's options, run on the shim `--shim` picks.
struct EchoServer {
    port: u16,
    settings: echo_app::Echo,
}

impl args::Serve for EchoServer {
    fn serve<Sh: PlatformShim>(self, shim: Sh) {
        let port = self.port;
        let mut l: usockets::Loop<Echo<Sh>> =
            usockets::new_loop_with(shim, (), LoopCallbacks::default(), Settings::default())
                .unwrap_or_else(|e| fail("loop", e));
        let ctx = l
            .context_create(self.settings, echo_app::callbacks::<Echo<Sh>>())
            .unwrap_or_else(|e| fail("context", e));
        if let Some(tls) = args::tls("echo_server") {
            l.set_layer_context(ctx, tls);
        }
        let target = ListenTarget::Host { host: None, port };
        let ls = l
            .listen(ctx, target, ListenOptions::default(), Outbox::new)
            .unwrap_or_else(|e| fail(&format!("cannot listen on port {port}"), e));
        println!("listening on port {}", l.listen_port(ls).unwrap_or(port));
        let _ = std::io::stdout().flush();
        if let Err(e) = l.run() {
            fail("run", e);
        }
    }
}

fn main() {
    let port = args::option("echo_server", "port", 3001u16);
    let idle_seconds = args::option("echo_server", "idle-timeout", echo_app::IDLE_SECONDS);
    let high_water = args::option("echo_server", "high-water", Outbox::DEFAULT_HIGH);
    let settings = echo_app::Echo {
        idle_seconds,
        high_water,
    };
    args::run_on_shim("echo_server", EchoServer { port, settings });
}
