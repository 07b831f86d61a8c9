//! A load generator built on the library itself: client sockets on one loop, no threads. It keeps
//! `--pipeline` requests in flight on each of `--connections` connections to 127.0.0.1, checks
//! every byte that comes back, and prints requests per second every second.
//!
//! ```sh
//! cargo run --release --example http_server -- --port 3000
//! cargo run --release --example load -- --port 3000 --connections 100 --pipeline 16
//! cargo run --release --example echo_server -- --port 3001
//! cargo run --release --example load -- --port 3001 --mode echo --payload 64
//! cargo run --release --example bench_cert -- /tmp/certs
//! cargo run --release --example echo_server -- --port 3002 --cert /tmp/certs/cert.pem \
//!     --key /tmp/certs/key.pem
//! cargo run --release --example load -- --port 3002 --tls /tmp/certs/ca.pem --mode handshake
//! ```
//!
//! * `--port P` (required): the target port on 127.0.0.1.
//! * `--connections N` (default 100), `--pipeline D` (requests in flight per connection,
//!   default 1).
//! * `--mode http|echo|handshake` (default `http`). HTTP sends [`REQUEST`] and checks every byte
//!   of the answers with [`ResponseChecker`]. Echo sends `--payload BYTES` messages (default 64)
//!   of a known stream and checks that the bytes come back in order. Handshake (for an echo
//!   server) opens a connection, sends one byte, waits for it to come back, closes (sending
//!   close_notify first over TLS) and opens the next one: each response is a connection, and
//!   over TLS a full handshake.
//! * `--tls CA_FILE`: speak TLS 1.3 (rustls on ring, as the servers), trusting the CA
//!   certificates of the PEM file; the server's certificate must name 127.0.0.1. Session
//!   resumption is off, so every connection makes a full handshake; a resumed session is an
//!   error. Needs the `tls` feature (on by default).
//! * `--duration SECS` (default 5) or `--requests TOTAL`: stop after that many seconds or that
//!   many responses. With `--requests`, ten seconds without a single response count as an error
//!   and stop the run.
//!
//! Every second it prints `{secs}s: {n} req/s`; at the end
//! `summary: requests=R seconds=S rps=X errors=E` (echo mode adds `mbps=M`, the megabytes
//! (10^6) of payload echoed per second, one way). A byte that differs from what was expected
//! prints an error and exits 1 at once. Connect errors and closes the generator did not ask for
//! are errors. The exit code is 0 only if there were no errors and at least one response.
//!
//! In plain echo and HTTP runs the hot path allocates nothing: every byte sent is a slice of one
//! buffer prepared at start, and each connection only tracks offsets into its stream. (TLS
//! sessions, and the connections of handshake mode, allocate in rustls and the loop.)

#[path = "shared/http.rs"]
#[allow(dead_code)]
mod http;

use std::time::Instant;

use http::{ResponseChecker, REQUEST};
use usockets::{
    App, CloseCause, ConnectTarget, ContextCallbacks, ContextId, Cx, LoopCallbacks, OsError,
    RecvBuf, Settings, SocketId, TimerId,
};

/// The echo stream repeats with this period (a prime, so it never lines up with a message).
const ECHO_PERIOD: usize = 251;
/// Seconds without any response after which a `--requests` run gives up.
const STALL_SECONDS: u32 = 10;
/// Errors printed in detail; the rest are only counted.
const PRINTED_ERRORS: u64 = 10;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Http,
    Echo,
    /// A connection per response: connect, one byte there and back, close.
    Handshake,
}

/// The loop's state: the run's configuration and counters.
struct Load {
    mode: Mode,
    port: u16,
    /// Requests in flight per connection.
    pipeline: u64,
    /// Bytes per request (and per response).
    msg: usize,
    /// The send buffer: the request stream from offset 0, long enough for `pipeline` messages
    /// from any offset within one period.
    out: &'static [u8],
    /// The stream's period in `out`.
    period: usize,
    /// Requests still allowed to be issued (`--requests`), `None` without a limit.
    budget: Option<u64>,
    target: Option<u64>,
    duration: Option<u64>,
    responses: u64,
    this_second: u64,
    seconds: u64,
    idle_seconds: u32,
    errors: u64,
    /// Sockets created and not yet closed or failed.
    live: usize,
    stopping: bool,
    ctx: Option<ContextId>,
    timer: Option<TimerId>,
    started: Instant,
    elapsed: f64,
}

/// One connection: offsets into its request stream and the response check.
#[derive(Default)]
struct Conn {
    /// Stream offset of this connection (echo mode): its bytes differ from its neighbours'.
    salt: usize,
    /// Bytes of the request stream queued for sending (every issued request).
    queued: u64,
    /// Bytes of it the kernel took.
    sent: u64,
    /// Bytes received back.
    received: u64,
    /// Requests issued and not answered yet.
    in_flight: u64,
    checker: ResponseChecker,
    /// `on_connect_error` ran: closing the context inside it still reaches this socket (it is
    /// released only after the callback) and calls `on_close`, which must not count it again.
    failed: bool,
    /// Handshake mode: its byte came back and the generator closed it (not an error).
    finished: bool,
}

type Gen = App<Load, (), Conn, ()>;
type C = Cx<Gen>;

fn error(cx: &mut C, what: std::fmt::Arguments<'_>) {
    let w = cx.ext_mut();
    w.errors += 1;
    if w.errors <= PRINTED_ERRORS {
        eprintln!("load: error: {what}");
    }
}

/// Issues up to `n` requests on `s` (fewer when the `--requests` budget runs out).
fn issue(cx: &mut C, s: SocketId, n: u64) {
    let w = cx.ext_mut();
    if w.stopping {
        return;
    }
    let n = match &mut w.budget {
        Some(b) => {
            let k = n.min(*b);
            *b -= k;
            k
        }
        None => n,
    };
    let msg = w.msg as u64;
    if let Some(c) = cx.socket_ext_mut(s) {
        c.queued += n * msg;
        c.in_flight += n;
    }
}

/// Writes what is queued and not sent yet, until done or the kernel takes less.
fn pump(cx: &mut C, s: SocketId) {
    let (out, period) = (cx.ext().out, cx.ext().period);
    loop {
        let Some(c) = cx.socket_ext(s) else { return };
        let from = (c.sent as usize + c.salt) % period;
        let len = (c.queued - c.sent).min((out.len() - from) as u64) as usize;
        if len == 0 {
            return;
        }
        let n = cx.write(s, &out[from..from + len], false);
        if let Some(c) = cx.socket_ext_mut(s) {
            c.sent += n as u64;
        }
        if n < len {
            return;
        }
    }
}

fn stop(cx: &mut C) {
    let w = cx.ext_mut();
    if w.stopping {
        return;
    }
    w.stopping = true;
    w.elapsed = w.started.elapsed().as_secs_f64();
    let (ctx, timer) = (w.ctx, w.timer.take());
    if let Some(t) = timer {
        cx.timer_close(t);
    }
    if let Some(ctx) = ctx {
        cx.context_close(ctx);
    }
}

fn on_open(cx: &mut C, s: SocketId, _is_client: bool, _ip: &[u8]) {
    if cx.ext().stopping {
        cx.close(s, 0, None);
        return;
    }
    let pipeline = cx.ext().pipeline;
    issue(cx, s, pipeline);
    pump(cx, s);
}

fn on_data(cx: &mut C, s: SocketId, data: &mut RecvBuf<'_>) {
    let (mode, out, period, msg) = {
        let w = cx.ext();
        (w.mode, w.out, w.period, w.msg as u64)
    };
    let Some(c) = cx.socket_ext_mut(s) else {
        return;
    };
    let before = c.received;
    let after = before + data.len() as u64;
    if mode != Mode::Http && after > c.sent {
        let (sent, got) = (c.sent, after);
        fail(format_args!(
            "{got} bytes received after sending only {sent}"
        ));
    }
    let done = match mode {
        Mode::Http => match c.checker.feed(data) {
            Ok(n) => n as u64,
            Err(at) => fail(format_args!(
                "response byte {} differs from the fixed response",
                before + at as u64
            )),
        },
        Mode::Echo | Mode::Handshake => {
            let mut i = 0;
            while i < data.len() {
                let from = (before as usize + i + c.salt) % period;
                let k = (data.len() - i).min(out.len() - from);
                if data[i..i + k] != out[from..from + k] {
                    let j = (0..k).find(|&j| data[i + j] != out[from + j]).unwrap_or(0);
                    fail(format_args!(
                        "echoed byte {} differs from the byte sent",
                        before + (i + j) as u64
                    ));
                }
                i += k;
            }
            after / msg - before / msg
        }
    };
    c.received = after;
    if done > c.in_flight {
        fail(format_args!("more responses than requests"));
    }
    c.in_flight -= done;
    if done == 0 {
        return;
    }
    if mode == Mode::Handshake {
        check_full_handshake(cx, s);
        if let Some(c) = cx.socket_ext_mut(s) {
            c.finished = true;
        }
        // Over TLS shutdown sends close_notify first: the server sees a clean end, not an
        // error.
        cx.shutdown(s);
        cx.close(s, 0, None);
    }
    let w = cx.ext_mut();
    w.responses += done;
    w.this_second += done;
    if w.target.is_some_and(|t| w.responses >= t) {
        stop(cx);
        return;
    }
    if mode != Mode::Handshake {
        issue(cx, s, done);
        pump(cx, s);
    }
}

/// Handshake mode over TLS: a resumed session would not measure a full handshake.
#[cfg(feature = "tls")]
fn check_full_handshake(cx: &mut C, s: SocketId) {
    // `info` is `None` for a plain socket.
    if usockets::tls::info(cx, s).is_some_and(|i| i.resumed) {
        fail(format_args!(
            "a TLS session was resumed: not a full handshake"
        ));
    }
}

/// Without TLS there is no session to resume.
#[cfg(not(feature = "tls"))]
fn check_full_handshake(_cx: &mut C, _s: SocketId) {}

/// Why the TLS session of `s` failed, if it did (for the error message).
#[cfg(feature = "tls")]
fn tls_error(cx: &C, s: SocketId) -> String {
    usockets::tls::info(cx, s)
        .and_then(|i| i.error)
        .map(|e| format!(", TLS: {e}"))
        .unwrap_or_default()
}

/// Without TLS there is no session to explain a close.
#[cfg(not(feature = "tls"))]
fn tls_error(_cx: &C, _s: SocketId) -> String {
    String::new()
}

/// Opens one more connection to the target (`on_connect_error` reports failures).
fn open(cx: &mut C, conn: Conn) {
    let (port, Some(ctx)) = (cx.ext().port, cx.ext().ctx) else {
        return;
    };
    let target = ConnectTarget::Host {
        host: "127.0.0.1",
        port,
        source: None,
    };
    match cx.connect(ctx, target, conn) {
        Ok(_) => cx.ext_mut().live += 1,
        Err(e) => fail(format_args!("connect: {e}")),
    }
}

fn on_writable(cx: &mut C, s: SocketId) {
    pump(cx, s);
}

fn on_end(cx: &mut C, s: SocketId) {
    cx.close(s, 0, None);
}

fn on_close(cx: &mut C, s: SocketId, cause: CloseCause<usize>) {
    let Some(c) = cx.socket_ext(s) else {
        return;
    };
    if c.failed {
        return;
    }
    let finished = c.finished;
    cx.ext_mut().live -= 1;
    if finished {
        // Handshake mode: this one is done; the next one takes its place.
        if !cx.ext().stopping {
            open(cx, Conn::default());
        }
    } else if !cx.ext().stopping {
        let tls = tls_error(cx, s);
        error(
            cx,
            format_args!("connection closed unexpectedly ({cause:?}{tls})"),
        );
    }
    if cx.ext().live == 0 {
        stop(cx);
    }
}

fn on_connect_error(cx: &mut C, s: SocketId, err: OsError) {
    if let Some(c) = cx.socket_ext_mut(s) {
        c.failed = true;
    }
    cx.ext_mut().live -= 1;
    if !cx.ext().stopping {
        let port = cx.ext().port;
        error(cx, format_args!("connect to 127.0.0.1:{port}: {err}"));
    }
    if cx.ext().live == 0 {
        stop(cx);
    }
}

fn on_tick(cx: &mut C, _t: TimerId) {
    let w = cx.ext_mut();
    w.seconds += 1;
    println!("{}s: {} req/s", w.seconds, w.this_second);
    if w.this_second == 0 {
        w.idle_seconds += 1;
    } else {
        w.idle_seconds = 0;
    }
    w.this_second = 0;
    if w.duration.is_some_and(|d| w.seconds >= d) {
        stop(cx);
    } else if w.target.is_some() && w.idle_seconds >= STALL_SECONDS {
        error(cx, format_args!("no response for {STALL_SECONDS} s"));
        stop(cx);
    }
}

fn fail(what: std::fmt::Arguments<'_>) -> ! {
    eprintln!("load: error: {what}");
    std::process::exit(1);
}

fn usage() -> ! {
    eprintln!(
        "usage: load --port P [--connections N] [--mode http|echo|handshake] [--pipeline D] \
         [--duration SECS | --requests TOTAL] [--payload BYTES] [--tls CA_FILE]"
    );
    std::process::exit(2);
}

/// The value after `--name`, parsed; `None` when absent; usage on a bad value.
fn arg<T: std::str::FromStr>(args: &[String], name: &str) -> Option<T> {
    let i = args.iter().position(|a| a == name)?;
    match args.get(i + 1).map(|v| v.parse()) {
        Some(Ok(v)) => Some(v),
        _ => usage(),
    }
}

/// `--tls CA_FILE`: the context's connections speak TLS 1.3, trusting the file's
/// certificates, with session resumption off (each connection a full handshake). Exits if the
/// file is unusable.
#[cfg(feature = "tls")]
fn use_tls(cx: &mut C, ctx: ContextId, ca_file: &str) {
    use usockets::tls::{client_config, load_certs, rustls, Options, TlsContext, Verify, Versions};
    let config = load_certs(ca_file.as_ref())
        .and_then(|roots| client_config(Verify::Roots(roots), &Options::new(Versions::Tls13)))
        .unwrap_or_else(|e| fail(format_args!("--tls {ca_file}: {e}")));
    let mut config = rustls::ClientConfig::clone(&config);
    config.resumption = rustls::client::Resumption::disabled();
    cx.set_layer_context(ctx, TlsContext::client(std::sync::Arc::new(config)));
}

/// Built without the `tls` feature: `--tls` is refused.
#[cfg(not(feature = "tls"))]
fn use_tls(_cx: &mut C, _ctx: ContextId, _ca_file: &str) {
    fail(format_args!("--tls: built without the `tls` feature"))
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let known = [
        "--port",
        "--connections",
        "--mode",
        "--pipeline",
        "--duration",
        "--requests",
        "--payload",
        "--tls",
    ];
    for pair in args.chunks(2) {
        if !known.contains(&pair[0].as_str()) || pair.len() < 2 {
            usage();
        }
    }
    let port: u16 = arg(&args, "--port").unwrap_or_else(|| usage());
    let connections: usize = arg(&args, "--connections").unwrap_or(100);
    let mode = match arg::<String>(&args, "--mode").as_deref() {
        None | Some("http") => Mode::Http,
        Some("echo") => Mode::Echo,
        Some("handshake") => Mode::Handshake,
        Some(_) => usage(),
    };
    let ca_file: Option<String> = arg(&args, "--tls");
    // Handshake mode: one byte each way on each connection.
    let (pipeline, payload): (usize, usize) = match mode {
        Mode::Handshake => (1, 1),
        _ => (
            arg(&args, "--pipeline").unwrap_or(1),
            arg(&args, "--payload").unwrap_or(64),
        ),
    };
    let target: Option<u64> = arg(&args, "--requests");
    let duration: Option<u64> = match (arg(&args, "--duration"), target) {
        (Some(_), Some(_)) => usage(),
        (d, None) => Some(d.unwrap_or(5)),
        (None, Some(_)) => None,
    };
    if connections == 0 || pipeline == 0 || payload == 0 || duration == Some(0) || target == Some(0)
    {
        usage();
    }

    // The one send buffer: the stream from offset 0, `period` bytes longer than a full pipeline
    // so a write may start at any offset within one period.
    let (msg, period, out) = match mode {
        Mode::Http => (REQUEST.len(), REQUEST.len(), REQUEST.repeat(pipeline + 1)),
        Mode::Echo | Mode::Handshake => {
            let len = ECHO_PERIOD + pipeline * payload;
            let bytes = (0..len).map(|i| (i % ECHO_PERIOD) as u8).collect();
            (payload, ECHO_PERIOD, bytes)
        }
    };
    let out: &'static [u8] = Vec::leak(out);

    let world = Load {
        mode,
        port,
        pipeline: pipeline as u64,
        msg,
        out,
        period,
        budget: target,
        target,
        duration,
        responses: 0,
        this_second: 0,
        seconds: 0,
        idle_seconds: 0,
        errors: 0,
        live: 0,
        stopping: false,
        ctx: None,
        timer: None,
        started: Instant::now(),
        elapsed: 0.0,
    };
    let mut l = usockets::new_loop(world, LoopCallbacks::default(), Settings::default())
        .unwrap_or_else(|e| fail(format_args!("loop: {e}")));
    let callbacks = ContextCallbacks {
        on_open: Some(on_open),
        on_data: Some(on_data),
        on_writable: Some(on_writable),
        on_end: Some(on_end),
        on_close: Some(on_close),
        on_connect_error: Some(on_connect_error),
        ..ContextCallbacks::default()
    };
    let ctx = l
        .context_create((), callbacks)
        .unwrap_or_else(|e| fail(format_args!("context: {e}")));
    if let Some(ca_file) = &ca_file {
        use_tls(&mut l, ctx, ca_file);
    }
    let timer = l
        .timer_create(false, ())
        .unwrap_or_else(|e| fail(format_args!("timer: {e}")));
    l.timer_set(timer, on_tick, 1000, 1000);
    l.ext_mut().ctx = Some(ctx);
    l.ext_mut().timer = Some(timer);
    for i in 0..connections {
        let conn = Conn {
            salt: if mode == Mode::Echo {
                i % ECHO_PERIOD
            } else {
                0
            },
            ..Conn::default()
        };
        open(&mut l, conn);
    }
    l.ext_mut().started = Instant::now();
    if let Err(e) = l.run() {
        fail(format_args!("run: {e}"));
    }
    let w = l.ext();
    let rps = if w.elapsed > 0.0 {
        w.responses as f64 / w.elapsed
    } else {
        0.0
    };
    let mbps = match mode {
        Mode::Echo => format!(" mbps={:.1}", rps * payload as f64 / 1e6),
        _ => String::new(),
    };
    println!(
        "summary: requests={} seconds={:.3} rps={:.0} errors={}{mbps}",
        w.responses, w.elapsed, rps, w.errors
    );
    let ok = w.errors == 0 && w.responses > 0;
    drop(l);
    std::process::exit(if ok { 0 } else { 1 });
}
