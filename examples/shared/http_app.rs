//! The connection handling of `http_server`, shared with the tests that measure it
//! (`counted/tests/hot_path.rs`, `counted/tests/emfile.rs`, `tests/hostile_clients.rs`), so they
//! prove the example's own code. The including file also includes `shared/http.rs` as
//! `mod http`.
//!
//! Generic over the shim `Sh` (the platform's by default): `http_server --shim uring` runs this
//! very code on io_uring, compiled for that shim.

use usockets::{
    App, CloseCause, ContextCallbacks, ContextId, Cx, DefaultShim, HasOutbox, ListenOptions,
    ListenTarget, OsShim, Outbox, RecvBuf, SocketId,
};

use crate::http::{responses, RequestCounter, BATCH};

/// Idle connections close after this many seconds unless the server says otherwise.
pub const IDLE_SECONDS: u32 = 30;

/// The server's settings (its context ext).
#[derive(Clone, Copy, Debug)]
pub struct Server {
    /// A connection that neither receives a request nor gets response bytes out for this long
    /// is closed (0: never).
    pub idle_seconds: u32,
    /// Response bytes waiting for a client above which the server stops reading from it.
    pub high_water: usize,
}

impl Default for Server {
    fn default() -> Self {
        Server {
            idle_seconds: IDLE_SECONDS,
            high_water: Outbox::DEFAULT_HIGH,
        }
    }
}

/// Per connection: the parser state and the responses the kernel has not taken yet.
#[derive(Debug, Default)]
pub struct Conn {
    parser: RequestCounter,
    /// Bounded: reading pauses while it holds more than its high-water mark.
    pub out: Outbox,
}

impl HasOutbox for Conn {
    fn outbox(&mut self) -> &mut Outbox {
        &mut self.out
    }
}

/// The server's `Config`, with loop ext `L`, on shim `Sh`.
pub type Http<L, Sh = DefaultShim> = App<L, Server, Conn, (), (), Sh>;

/// The server's loop.
pub type HttpLoop<L, Sh = DefaultShim> = usockets::AppLoop<L, Server, Conn, (), (), Sh>;

/// Hooks for a program that wants to watch the server on shim `Sh` (tests count with them).
pub trait Observe<Sh: OsShim = DefaultShim>: Sized {
    /// A connection opened.
    fn opened(_cx: &mut Cx<Http<Self, Sh>>) {}
    /// Connection `s` closed (its ext is still readable).
    fn closed(_cx: &mut Cx<Http<Self, Sh>>, _s: SocketId) {}
    /// `n` responses were written or queued.
    fn served(_cx: &mut Cx<Http<Self, Sh>>, _n: usize) {}
}

impl<Sh: OsShim> Observe<Sh> for () {}

/// Creates the server's context with `server`'s settings and listens on `host` (`None`: every
/// interface, dual-stack) at `port` (0: an ephemeral one). Returns the context and the port.
pub fn serve<L: Observe<Sh>, Sh: OsShim>(
    l: &mut HttpLoop<L, Sh>,
    server: Server,
    host: Option<&str>,
    port: u16,
) -> Result<(ContextId, u16), String> {
    let ctx = l
        .context_create(server, callbacks::<L, Sh>())
        .map_err(|e| format!("context: {e}"))?;
    let target = ListenTarget::Host { host, port };
    let ls = l
        .listen(ctx, target, ListenOptions::default(), Conn::default)
        .map_err(|e| format!("listen on port {port}: {e}"))?;
    Ok((ctx, l.listen_port(ls).unwrap_or(port)))
}

/// The server's context callbacks.
pub fn callbacks<L: Observe<Sh>, Sh: OsShim>() -> ContextCallbacks<Http<L, Sh>> {
    ContextCallbacks {
        on_open: Some(on_open::<L, Sh>),
        on_close: Some(on_close::<L, Sh>),
        on_data: Some(on_data::<L, Sh>),
        on_writable: Some(on_writable::<L, Sh>),
        on_end: Some(on_end::<L, Sh>),
        on_timeout: Some(on_timeout::<L, Sh>),
        ..ContextCallbacks::default()
    }
}

/// The settings of `s`'s server.
fn server<L, Sh: OsShim>(cx: &Cx<Http<L, Sh>>, s: SocketId) -> Server {
    cx.socket_context(s)
        .and_then(|c| cx.context_ext(c))
        .copied()
        .unwrap_or_default()
}

/// The idle timeout of `s`'s server.
fn idle<L, Sh: OsShim>(cx: &Cx<Http<L, Sh>>, s: SocketId) -> u32 {
    server(cx, s).idle_seconds
}

fn on_open<L: Observe<Sh>, Sh: OsShim>(
    cx: &mut Cx<Http<L, Sh>>,
    s: SocketId,
    _is_client: bool,
    _ip: &[u8],
) {
    let Server {
        idle_seconds,
        high_water,
    } = server(cx, s);
    if let Some(conn) = cx.socket_ext_mut(s) {
        conn.out = Outbox::with_marks(high_water, Outbox::DEFAULT_LOW);
    }
    cx.timeout(s, idle_seconds);
    L::opened(cx);
}

fn on_close<L: Observe<Sh>, Sh: OsShim>(
    cx: &mut Cx<Http<L, Sh>>,
    s: SocketId,
    _cause: CloseCause<usize>,
) {
    L::closed(cx, s);
}

/// Answers every complete request from the prepared batch. Responses the kernel does not take
/// wait in the connection's outbox, in order; past its high-water mark reading pauses, so a
/// client that sends and never reads holds a bounded amount of memory. No allocation while the
/// kernel takes everything.
fn on_data<L: Observe<Sh>, Sh: OsShim>(
    cx: &mut Cx<Http<L, Sh>>,
    s: SocketId,
    data: &mut RecvBuf<'_>,
) {
    let Some(conn) = cx.socket_ext_mut(s) else {
        return;
    };
    let requests = conn.parser.feed(data);
    if requests == 0 {
        return;
    }
    let idle = idle(cx, s);
    cx.timeout(s, idle);
    let mut left = requests;
    while left > 0 {
        let n = left.min(BATCH);
        left -= n;
        Outbox::write(cx, s, responses(n));
    }
    L::served(cx, requests);
}

/// Sends what waits; bytes going out count as activity for the idle timeout, so a client that
/// reads a long answer slowly is not cut off.
fn on_writable<L: Observe<Sh>, Sh: OsShim>(cx: &mut Cx<Http<L, Sh>>, s: SocketId) {
    if Outbox::flush(cx, s) > 0 {
        let idle = idle(cx, s);
        cx.timeout(s, idle);
    }
}

/// The client finished sending: answer what it asked, then shut down and close.
fn on_end<L: Observe<Sh>, Sh: OsShim>(cx: &mut Cx<Http<L, Sh>>, s: SocketId) {
    Outbox::end(cx, s);
}

fn on_timeout<L: Observe<Sh>, Sh: OsShim>(cx: &mut Cx<Http<L, Sh>>, s: SocketId) {
    cx.close(s, 0, None);
}
