//! The client side: chained connects and each client's byte stream.

use usockets_core::{ConnectError, ConnectTarget, OsShim, SocketId};

use crate::world::{magic, Conn, Kind, Role, C};

/// The bytes every client stream is cut from: a pseudo-random table, so bytes of one client
/// arriving at another (or out of place) differ from what is expected almost surely.
const STREAM_TABLE: [u8; STREAM_PERIOD] = stream_table();
const STREAM_PERIOD: usize = 4096;

const fn stream_table() -> [u8; STREAM_PERIOD] {
    let mut t = [0u8; STREAM_PERIOD];
    let mut x: u32 = 0x2545_F491;
    let mut i = 0;
    while i < STREAM_PERIOD {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        t[i] = (x >> 24) as u8;
        i += 1;
    }
    t
}

/// Where client `id`'s stream starts in the table: a hash of the id, so clients start at
/// scattered places (not in a pattern that pairs client `i` with client `i + 4096`).
fn stream_start(id: u64) -> u64 {
    id.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 52
}

/// Calls `f` with the pieces of client `id`'s stream from byte `from` on, `len` bytes in all,
/// each with its offset into that span. Whole slices, no loop per byte: the fuzz target runs
/// this instrumented, where every iteration is a traced comparison.
fn stream_pieces(id: u64, from: u64, len: usize, mut f: impl FnMut(usize, &[u8])) {
    let mut done = 0;
    while done < len {
        let at = ((stream_start(id) + from + done as u64) % STREAM_PERIOD as u64) as usize;
        let n = (STREAM_PERIOD - at).min(len - done);
        f(done, &STREAM_TABLE[at..at + n]);
        done += n;
    }
}

/// Fills `out` with client `id`'s stream from byte `from` on.
fn stream_fill(id: u64, from: u64, out: &mut [u8]) {
    stream_pieces(id, from, out.len(), |k, piece| {
        out[k..k + piece.len()].copy_from_slice(piece)
    });
}

/// The first byte of `data` that differs from client `id`'s stream at byte `from` on.
pub(crate) fn stream_mismatch(id: u64, from: u64, data: &[u8]) -> Option<usize> {
    let mut first = None;
    stream_pieces(id, from, data.len(), |k, piece| {
        let got = &data[k..k + piece.len()];
        if first.is_none() && got != piece {
            first = got
                .iter()
                .zip(piece)
                .position(|(a, b)| a != b)
                .map(|i| k + i);
        }
    });
    first
}

pub(crate) fn roll<S: OsShim>(cx: &mut C<S>, per_mille: u32) -> bool {
    cx.ext_mut().dice.roll(per_mille)
}

pub(crate) fn below<S: OsShim>(cx: &mut C<S>, n: u32) -> u32 {
    cx.ext_mut().dice.below(n)
}

pub(crate) fn is_client<S: OsShim>(cx: &C<S>, s: SocketId) -> bool {
    cx.socket_ext(s).is_some_and(|e| e.role == Role::Client)
}

/// Starts the next client connection, unless all are started or the profile's in-flight
/// limit is reached; goes on to the next one when a connect is aborted at once (which may have
/// been the last to resolve).
pub(crate) fn start_connect<S: OsShim>(cx: &mut C<S>) {
    while start_one(cx) {
        client_done(cx);
    }
}

/// Starts one connection; returns whether it was aborted at once (so another may start).
fn start_one<S: OsShim>(cx: &mut C<S>) -> bool {
    let w = cx.ext_mut();
    let p = w.profile;
    if w.started >= p.connections {
        return false;
    }
    if w.clients_in_flight() >= p.in_flight {
        // This chain waits for a client to end (see `resume_chain`).
        w.stalled_chains += 1;
        return false;
    }
    w.started += 1;
    let id = w.started;
    let (port, dead_port, ctx) = (w.port, w.dead_port, w.context(Kind::Client));
    let lazy = roll(cx, p.lazy);
    let bulk = roll(cx, p.bulk);
    let doomed = roll(cx, p.refused);
    let quota = if bulk {
        u64::from(p.bulk_quota) + u64::from(below(cx, p.bulk_quota))
    } else {
        u64::from(below(cx, 24 * 1024))
    };
    let conn = Conn {
        magic: magic(id),
        id,
        role: Role::Client,
        ctx: Kind::Client,
        quota,
        lazy,
        bulk,
        doomed,
        ..Conn::default()
    };
    let target = ConnectTarget::Host {
        host: "127.0.0.1",
        port: if doomed { dead_port } else { port },
        source: None,
    };
    let s = match cx.connect(ctx, target, conn) {
        Ok(s) => s,
        Err(ConnectError::Capacity) => panic!("socket arena refused a connect"),
        Err(e) => panic!("connect refused synchronously: {e}"),
    };
    let w = cx.ext_mut();
    if doomed {
        w.c.doomed += 1;
    }
    w.connecting.push(s);
    if !roll(cx, p.aborted) {
        return false;
    }
    abort(cx, s);
    true
}

/// Aborts pending connect `s` with `close_connecting`: it must read as closed at once and get
/// no callback at all from now on (`connected` checks that for `on_open` and
/// `on_connect_error`; its handle joins the released ones).
fn abort<S: OsShim>(cx: &mut C<S>, s: SocketId) {
    cx.close_connecting(s);
    assert_eq!(
        cx.is_closed(s),
        Some(true),
        "close_connecting leaves the socket closed"
    );
    let w = cx.ext_mut();
    w.connecting.retain(|&c| c != s);
    w.aborted.push(s);
    w.c.aborted += 1;
    w.closed_now.push(s);
}

/// Aborts one of the connects still pending, if any: later than at once, so its outcome may
/// already be on its way (an event in the batch being dispatched). The chain goes on.
pub(crate) fn abort_pending<S: OsShim>(cx: &mut C<S>) {
    let n = cx.ext().connecting.len();
    if n == 0 {
        return;
    }
    let i = below(cx, n as u32) as usize;
    let s = cx.ext().connecting[i];
    abort(cx, s);
    start_connect(cx);
    client_done(cx);
}

/// `on_open` or `on_connect_error` of client `s`: it must be a pending connect, never one
/// the hammer aborted; it is pending no more.
pub(crate) fn connected<S: OsShim>(cx: &mut C<S>, s: SocketId, what: &str) {
    let w = cx.ext_mut();
    assert!(
        !w.aborted.contains(&s),
        "{what} for {s:?}, whose connect was aborted with close_connecting"
    );
    let Some(i) = w.connecting.iter().position(|&c| c == s) else {
        panic!("{what} for {s:?}, which is not a pending connect");
    };
    w.connecting.swap_remove(i);
}

/// A client ended: a chain stalled by the in-flight limit goes on.
pub(crate) fn resume_chain<S: OsShim>(cx: &mut C<S>) {
    let w = cx.ext_mut();
    if w.stalled_chains > 0 {
        w.stalled_chains -= 1;
        start_connect(cx);
    }
}

/// Once every client resolved, closes the listener so the run can end.
pub(crate) fn client_done<S: OsShim>(cx: &mut C<S>) {
    if cx.ext().clients_done() {
        if let Some(l) = cx.ext_mut().listener.take() {
            cx.listen_close(l);
        }
    }
}

/// Client: writes the next part of its stream, sometimes gathered, sometimes corked; a bulk
/// client goes on until the kernel takes less than offered.
pub(crate) fn client_write<S: OsShim>(cx: &mut C<S>, s: SocketId) {
    while client_write_once(cx, s) && cx.socket_ext(s).is_some_and(|e| e.bulk) {}
}

/// Writes one chunk; returns whether all of it was taken.
fn client_write_once<S: OsShim>(cx: &mut C<S>, s: SocketId) -> bool {
    let (id, sent, quota, bulk) = match cx.socket_ext(s) {
        Some(e) => (e.id, e.sent, e.quota, e.bulk),
        None => return false,
    };
    if sent >= quota || cx.is_shut_down(s) != Some(false) {
        return false;
    }
    let most = if bulk {
        cx.ext().profile.bulk_chunk
    } else {
        4096
    };
    let len = (u64::from(below(cx, most)) + 1).min(quota - sent) as usize;
    // One scratch buffer, lent out of the loop ext while the socket writes from it.
    let mut chunk = std::mem::take(&mut cx.ext_mut().scratch);
    chunk.resize(len, 0);
    stream_fill(id, sent, &mut chunk);
    let n = match below(cx, 3) {
        0 => {
            let split = below(cx, len as u32 + 1) as usize;
            cx.write2(s, &chunk[..split], &chunk[split..])
        }
        1 => {
            let n = cx.write(s, &chunk, true);
            cx.flush(s);
            n
        }
        _ => cx.write(s, &chunk, false),
    };
    cx.ext_mut().scratch = chunk;
    assert!(n <= len, "wrote {n} of {len} bytes");
    if let Some(e) = cx.socket_ext_mut(s) {
        e.sent += n as u64;
    }
    n == len
}

/// Client: once everything sent came back, writes more, or shuts down when its quota is done.
/// Lazy clients leave it to the dice.
pub(crate) fn client_progress<S: OsShim>(cx: &mut C<S>, s: SocketId) {
    let Some(e) = cx.socket_ext(s) else { return };
    if e.lazy || e.received < e.sent || cx.is_shut_down(s) != Some(false) {
        return;
    }
    if e.sent < e.quota {
        client_write(cx, s);
    } else {
        cx.shutdown(s);
        let idle = cx.ext().profile.idle_s;
        cx.timeout(s, idle);
    }
}
