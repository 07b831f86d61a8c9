//! The connection handling of `http_server`, shared with the tests that measure it
//! (`tests/hot_path.rs`, `tests/emfile.rs`), so they prove the example's own hot path. The
//! including file also includes `shared/http.rs` as `mod http`.

use usockets::{App, CloseCause, ContextCallbacks, Cx, RecvBuf, SocketId};

use crate::http::{responses, RequestCounter, BATCH};

/// Idle connections close after this many seconds.
pub const IDLE_SECONDS: u32 = 30;

/// Per connection: the parser state and bytes waiting for `on_writable`.
#[derive(Default)]
pub struct Conn {
    parser: RequestCounter,
    backlog: Vec<u8>,
}

/// The server's `Config`, with loop ext `L`.
pub type Http<L> = App<L, (), Conn>;

/// The server's loop.
pub type HttpLoop<L> = usockets::AppLoop<L, (), Conn>;

/// Hooks for a program that wants to watch the server (tests count with them).
pub trait Observe: Sized {
    /// A connection opened.
    fn opened(_cx: &mut Cx<Http<Self>>) {}
    /// A connection closed.
    fn closed(_cx: &mut Cx<Http<Self>>) {}
    /// `n` responses were written or queued.
    fn served(_cx: &mut Cx<Http<Self>>, _n: usize) {}
}

impl Observe for () {}

/// The server's context callbacks.
pub fn callbacks<L: Observe>() -> ContextCallbacks<Http<L>> {
    ContextCallbacks {
        on_open: Some(on_open::<L>),
        on_close: Some(on_close::<L>),
        on_data: Some(on_data::<L>),
        on_writable: Some(on_writable::<L>),
        on_end: Some(on_end::<L>),
        on_timeout: Some(on_timeout::<L>),
        ..ContextCallbacks::default()
    }
}

fn on_open<L: Observe>(cx: &mut Cx<Http<L>>, s: SocketId, _is_client: bool, _ip: &[u8]) {
    cx.timeout(s, IDLE_SECONDS);
    L::opened(cx);
}

fn on_close<L: Observe>(cx: &mut Cx<Http<L>>, _s: SocketId, _cause: CloseCause<usize>) {
    L::closed(cx);
}

/// Answers every complete request from the prepared batch: no allocation unless the kernel
/// refuses bytes, which then wait in the backlog (in order).
fn on_data<L: Observe>(cx: &mut Cx<Http<L>>, s: SocketId, data: &mut RecvBuf<'_>) {
    let Some(conn) = cx.socket_ext_mut(s) else {
        return;
    };
    let requests = conn.parser.feed(data);
    let mut queued = !conn.backlog.is_empty();
    if requests == 0 {
        return;
    }
    cx.timeout(s, IDLE_SECONDS);
    let mut left = requests;
    while left > 0 {
        let n = left.min(BATCH);
        left -= n;
        let bytes = responses(n);
        let written = if queued { 0 } else { cx.write(s, bytes, false) };
        if written < bytes.len() {
            queued = true;
            if let Some(conn) = cx.socket_ext_mut(s) {
                conn.backlog.extend_from_slice(&bytes[written..]);
            }
        }
    }
    L::served(cx, requests);
}

fn on_writable<L: Observe>(cx: &mut Cx<Http<L>>, s: SocketId) {
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

fn on_end<L: Observe>(cx: &mut Cx<Http<L>>, s: SocketId) {
    cx.shutdown(s);
    cx.close(s, 0, None);
}

fn on_timeout<L: Observe>(cx: &mut Cx<Http<L>>, s: SocketId) {
    cx.close(s, 0, None);
}
