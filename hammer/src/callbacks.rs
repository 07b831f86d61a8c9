//! The hammer's callbacks, each checking its invariants before it acts.

use usockets_core::{
    CloseCause, ContextCallbacks, LoopCallbacks, OsError, OsShim, RecvBuf, SocketId, RECV_PADDING,
};

use crate::client::{
    client_done, client_progress, client_write, connected, resume_chain, roll, start_connect,
    stream_mismatch,
};
use crate::ops::random_op;
use crate::world::{magic, Conn, Hammer, Kind, Role, C, RELEASED_KEPT};

/// The checks every socket callback makes: the socket is open, its ext is intact and its kind
/// is its context's.
fn check_live<S: OsShim>(cx: &C<S>, s: SocketId, what: &str) {
    assert_eq!(
        cx.is_closed(s),
        Some(false),
        "{what} on a closed or released socket {s:?}"
    );
    let e = cx.socket_ext(s).expect("ext of a live socket");
    assert_eq!(e.magic, magic(e.id), "{what}: ext corrupted for {s:?}");
    let ctx = cx.socket_context(s).expect("context of a live socket");
    assert_eq!(
        cx.context_ext(ctx),
        Some(&e.ctx),
        "{what}: ext kind differs from its context's"
    );
}

/// [`check_live`], and the socket is not paused: nothing may be read from a paused socket.
fn check_reading<S: OsShim>(cx: &C<S>, s: SocketId, what: &str) {
    check_live(cx, s, what);
    let paused = cx.socket_ext(s).is_some_and(|e| e.paused);
    assert!(!paused, "{what} on paused socket {s:?}");
}

fn idle<S: OsShim>(cx: &C<S>) -> u32 {
    cx.ext().profile.idle_s
}

fn on_open<S: OsShim>(cx: &mut C<S>, s: SocketId, is_client: bool, ip: &[u8]) {
    let id = cx.iteration_number() * 1_000_003 + u64::from(s.index());
    let idle = idle(cx);
    if is_client {
        connected(cx, s, "on_open");
    }
    let e = cx.socket_ext_mut(s).expect("ext in on_open");
    assert!(!e.opened, "second on_open");
    e.opened = true;
    if is_client {
        assert_eq!(e.role, Role::Client);
        assert!(!e.doomed, "a connect to a closed port opened");
        assert!(ip.is_empty(), "connected sockets get no ip");
        cx.ext_mut().c.client_opens += 1;
        check_live(cx, s, "on_open(client)");
        cx.timeout(s, idle);
        client_write(cx, s);
        start_connect(cx);
    } else {
        assert!(
            ip.len() == 4 || ip.len() == 16,
            "accepted sockets get 4 or 16 ip bytes"
        );
        *e = Conn {
            magic: magic(id),
            id,
            role: Role::Server,
            ctx: Kind::Server,
            opened: true,
            ..Conn::default()
        };
        cx.ext_mut().c.server_opens += 1;
        check_live(cx, s, "on_open(server)");
        cx.timeout(s, idle);
    }
    random_op(cx, s);
}

fn on_data<S: OsShim>(cx: &mut C<S>, s: SocketId, data: &mut RecvBuf<'_>) {
    check_reading(cx, s, "on_data");
    assert!(!data.is_empty(), "on_data with no bytes");
    // RECV_PADDING writable bytes on each side of the data (C code writes a terminator there).
    let len = data.len();
    let padded = data.padded();
    assert_eq!(
        padded.len(),
        len + 2 * RECV_PADDING,
        "on_data's buffer lacks its padding"
    );
    let last = padded.len() - 1;
    padded[0] = 0xEE;
    padded[last] = 0xEE;
    let idle = idle(cx);
    if let Some(e) = cx.socket_ext_mut(s).filter(|e| e.role == Role::Client) {
        let end = e.received + data.len() as u64;
        assert!(end <= e.sent, "echo of bytes never sent");
        if let Some(k) = stream_mismatch(e.id, e.received, data) {
            let at = e.received + k as u64;
            panic!("echoed byte {at} of client {} differs", e.id);
        }
        e.received = end;
        cx.ext_mut().c.bytes_echoed += data.len() as u64;
        cx.timeout(s, idle);
        if roll(cx, 300) {
            client_write(cx, s);
        }
        client_progress(cx, s);
    } else {
        let has_backlog = cx.socket_ext(s).is_some_and(|e| !e.backlog.is_empty());
        let n = if has_backlog {
            0
        } else {
            cx.write(s, data, false)
        };
        if let Some(e) = cx.socket_ext_mut(s) {
            e.backlog.extend_from_slice(&data[n..]);
        }
        cx.timeout(s, idle);
    }
    random_op(cx, s);
}

fn on_writable<S: OsShim>(cx: &mut C<S>, s: SocketId) {
    check_live(cx, s, "on_writable");
    cx.ext_mut().c.writables += 1;
    if let Some(e) = cx.socket_ext_mut(s).filter(|e| e.role == Role::Server) {
        let backlog = std::mem::take(&mut e.backlog);
        let n = cx.write(s, &backlog, false);
        if let Some(e) = cx.socket_ext_mut(s) {
            e.backlog = backlog[n..].to_vec();
        }
    } else {
        client_write(cx, s);
    }
    random_op(cx, s);
}

fn on_end<S: OsShim>(cx: &mut C<S>, s: SocketId) {
    check_reading(cx, s, "on_end");
    cx.ext_mut().c.ends += 1;
    let echoing = cx
        .socket_ext(s)
        .is_some_and(|e| e.role == Role::Server && !e.backlog.is_empty());
    if echoing {
        // Finish echoing first; the idle timeout closes it if the peer stops reading.
        let idle = idle(cx);
        cx.timeout(s, idle);
        return;
    }
    cx.shutdown(s);
    cx.close(s, 0, None);
}

fn on_timeout<S: OsShim>(cx: &mut C<S>, s: SocketId) {
    check_live(cx, s, "on_timeout");
    cx.ext_mut().c.timeouts += 1;
    let paused = cx.socket_ext(s).is_some_and(|e| e.paused);
    if paused {
        // The pause's timeout: resume and give it another idle period.
        cx.resume(s);
        if let Some(e) = cx.socket_ext_mut(s) {
            e.paused = false;
        }
        let idle = idle(cx);
        cx.timeout(s, idle);
        return;
    }
    if roll(cx, 100) {
        random_op(cx, s);
    }
    if cx.is_closed(s) == Some(false) {
        cx.close(s, 0, None);
    }
}

fn on_long_timeout<S: OsShim>(cx: &mut C<S>, s: SocketId) {
    check_live(cx, s, "on_long_timeout");
    cx.ext_mut().c.long_timeouts += 1;
}

fn on_close<S: OsShim>(cx: &mut C<S>, s: SocketId, cause: CloseCause<u32>) {
    let (code, reason) = cause.code_and_reason();
    assert_eq!(
        cx.is_closed(s),
        Some(true),
        "on_close on a socket not marked closed"
    );
    let e = cx
        .socket_ext_mut(s)
        .expect("ext stays until the end of the iteration");
    assert_eq!(e.magic, magic(e.id), "ext corrupted at close");
    assert!(e.opened, "on_close for a socket never opened");
    assert!(!e.closed, "second on_close for {s:?}");
    e.closed = true;
    match e.closing {
        Some((c, r)) => assert_eq!(
            (code, reason),
            (c, Some(r)),
            "close code/reason not passed through"
        ),
        // Unrecorded closes are the library's or the hammer's own `close(s, 0, None)`.
        None => assert_eq!(
            (code, reason),
            (0, None),
            "library-initiated close must pass (0, None)"
        ),
    }
    let role = e.role;
    let w = cx.ext_mut();
    w.closed_now.push(s);
    match role {
        Role::Server => w.c.server_closes += 1,
        Role::Client => {
            w.c.client_closes += 1;
            resume_chain(cx);
            client_done(cx);
        }
    }
}

fn on_connect_error<S: OsShim>(cx: &mut C<S>, s: SocketId, err: OsError) {
    connected(cx, s, "on_connect_error");
    let e = cx.socket_ext(s).expect("ext in on_connect_error");
    assert_eq!(e.magic, magic(e.id), "ext corrupted at connect error");
    assert!(!e.opened, "connect error after on_open");
    assert_ne!(err.code, 0, "connect errors carry the OS code");
    let w = cx.ext_mut();
    w.c.connect_errors += 1;
    w.closed_now.push(s);
    start_connect(cx);
    client_done(cx);
}

fn on_wakeup<S: OsShim>(cx: &mut C<S>) {
    cx.ext_mut().c.wakeups += 1;
}

/// End of an iteration: what closed in it was just released. Every recently released handle
/// must be rejected from now on (no state, no ext), even once its slot holds a new socket.
fn on_post<S: OsShim>(cx: &mut C<S>) {
    let w = cx.ext_mut();
    while let Some(s) = w.closed_now.pop() {
        if w.released.len() == RELEASED_KEPT {
            w.released.pop_front();
        }
        w.released.push_back(s);
    }
    let mut checked = 0;
    for &s in &cx.ext().released {
        assert_eq!(
            cx.is_closed(s),
            None,
            "released handle {s:?} still accepted"
        );
        assert!(
            cx.socket_ext(s).is_none(),
            "released handle {s:?} reaches a slot"
        );
        checked += 1;
    }
    cx.ext_mut().c.released_checked += checked;
}

/// The socket callbacks of every hammer context.
pub(crate) fn context_callbacks<S: OsShim>() -> ContextCallbacks<Hammer<S>> {
    ContextCallbacks {
        on_open: Some(on_open::<S>),
        on_data: Some(on_data::<S>),
        on_writable: Some(on_writable::<S>),
        on_end: Some(on_end::<S>),
        on_timeout: Some(on_timeout::<S>),
        on_long_timeout: Some(on_long_timeout::<S>),
        on_close: Some(on_close::<S>),
        on_connect_error: Some(on_connect_error::<S>),
        ..ContextCallbacks::default()
    }
}

/// The hammer's loop callbacks.
pub(crate) fn loop_callbacks<S: OsShim>() -> LoopCallbacks<Hammer<S>> {
    LoopCallbacks {
        wakeup: Some(on_wakeup::<S>),
        post: Some(on_post::<S>),
        ..LoopCallbacks::default()
    }
}
