//! The socket callbacks of every context: each checks the invariants of its event against the
//! model, updates the model and reacts with actions read from the input.

use usockets_core::{
    Accepted, CloseCause, ContextCallbacks, ContextId, OsError, RecvBuf, SocketId,
};
use usockets_shim_sim::SimFd;

use crate::actions::react;
use crate::config::{Cx, H};
use crate::model::{Life, Sock, World};

/// The checks every socket callback makes.
pub(crate) fn check_live(cx: &Cx, s: SocketId, what: &str) {
    let w = cx.ext();
    let sock = w
        .socks
        .get(s)
        .unwrap_or_else(|| panic!("{what} for a socket the model does not know: {s:?}"));
    assert!(
        matches!(sock.life, Life::Open | Life::Connecting),
        "{what} for {s:?}, which is {:?}",
        sock.life
    );
    assert_eq!(
        cx.is_closed(s),
        Some(false),
        "{what}: {s:?} reads as closed"
    );
    assert_eq!(
        cx.socket_ext(s),
        Some(&sock.serial),
        "{what}: the ext of {s:?} changed"
    );
    assert_eq!(
        cx.socket_context(s),
        Some(sock.ctx),
        "{what}: {s:?} is in the wrong context"
    );
}

pub(crate) fn callbacks(pre_open: bool) -> ContextCallbacks<H> {
    ContextCallbacks {
        on_pre_open: if pre_open { Some(on_pre_open) } else { None },
        on_open: Some(on_open),
        on_close: Some(on_close),
        on_data: Some(on_data),
        on_writable: Some(on_writable),
        on_timeout: Some(on_timeout),
        on_long_timeout: Some(on_long_timeout),
        on_end: Some(on_end),
        on_connect_error: Some(on_connect_error),
    }
}

pub(crate) fn on_pre_open(cx: &mut Cx, c: ContextId, accepted: &mut Accepted<SimFd>, ip: &[u8]) {
    let w = cx.ext_mut();
    w.stats.on_pre_open += 1;
    assert!(w.ctx_live(c), "on_pre_open for a freed context {c:?}");
    assert!(
        matches!(ip.len(), 0 | 4 | 16),
        "on_pre_open ip of {} bytes",
        ip.len()
    );
    let fd = accepted.fd().map(SimFd::number);
    assert!(
        fd.is_some_and(|fd| fd >= 3),
        "on_pre_open with descriptor {fd:?}"
    );
    react(cx, None);
    let w = cx.ext_mut();
    if !w.draining && w.ops.u8() % 4 == 3 {
        if let Some(fd) = accepted.take() {
            w.taken.push(fd);
        }
    }
}

pub(crate) fn on_open(cx: &mut Cx, s: SocketId, is_client: bool, ip: &[u8]) {
    cx.ext_mut().stats.on_open += 1;
    if is_client {
        assert!(ip.is_empty(), "on_open(client) with an ip");
        let sock = cx.ext_mut().sock(s, "on_open(client)");
        assert_eq!(
            sock.life,
            Life::Connecting,
            "on_open(client) twice for {s:?}"
        );
        sock.life = Life::Open;
        // A connect that completes resets both timeouts.
        sock.timeout = None;
        sock.long_timeout = None;
    } else {
        assert!(
            matches!(ip.len(), 0 | 4 | 16),
            "on_open(server) ip of {} bytes",
            ip.len()
        );
        let ctx = cx.socket_context(s).expect("context of an opening socket");
        let ext = cx.socket_ext(s).copied();
        let w = cx.ext_mut();
        assert!(
            !w.socks.contains(s),
            "on_open(server) for a socket the model knows: {s:?}"
        );
        assert!(w.ctx_live(ctx), "socket accepted into a freed context");
        let want_ext = w.adopting.take().unwrap_or(0);
        assert_eq!(ext, Some(want_ext), "ext of an accepted socket");
        let serial = w.next_serial();
        let out = w.new_stream();
        w.add_sock(s, Sock::new(serial, Life::Open, ctx, out));
        if let Some(e) = cx.socket_ext_mut(s) {
            *e = serial;
        }
    }
    check_live(cx, s, "on_open");
    react(cx, Some(s));
}

pub(crate) fn on_data(cx: &mut Cx, s: SocketId, data: &mut RecvBuf<'_>) {
    check_live(cx, s, "on_data");
    assert!(!data.is_empty(), "on_data with no bytes");
    let padded = data.padded();
    let last = padded.len() - 1;
    padded[0] = 0xEE;
    padded[last] = 0xEE;
    let w = cx.ext_mut();
    w.stats.on_data += 1;
    let World { socks, streams, .. } = w;
    let sock = socks.get_mut(s).expect("checked live");
    assert_eq!(sock.life, Life::Open, "on_data before on_open for {s:?}");
    assert!(!sock.got_end, "on_data after on_end for {s:?}");
    assert!(!sock.shut_rd, "on_data after shutdown_read for {s:?}");
    sock.inb.feed(streams, data, "on_data");
    react(cx, Some(s));
}

pub(crate) fn on_writable(cx: &mut Cx, s: SocketId) {
    check_live(cx, s, "on_writable");
    let w = cx.ext_mut();
    w.stats.on_writable += 1;
    let sock = w.sock(s, "on_writable");
    assert!(
        sock.want_writable,
        "on_writable for {s:?} without a short write"
    );
    sock.want_writable = false;
    react(cx, Some(s));
}

pub(crate) fn on_end(cx: &mut Cx, s: SocketId) {
    check_live(cx, s, "on_end");
    let w = cx.ext_mut();
    w.stats.on_end += 1;
    let World { socks, streams, .. } = w;
    let sock = socks.get_mut(s).expect("checked live");
    assert!(!sock.got_end, "on_end twice for {s:?}");
    assert_eq!(sock.life, Life::Open, "on_end before on_open for {s:?}");
    sock.got_end = true;
    if !sock.shut_rd {
        sock.inb.check_complete(streams, "on_end");
    }
    react(cx, Some(s));
}

pub(crate) fn on_timeout(cx: &mut Cx, s: SocketId) {
    timed_out(cx, s, false);
}

pub(crate) fn on_long_timeout(cx: &mut Cx, s: SocketId) {
    timed_out(cx, s, true);
}

/// `on_timeout` (or, if `long`, `on_long_timeout`): never early, never without a timeout set.
fn timed_out(cx: &mut Cx, s: SocketId, long: bool) {
    let (what, kind) = if long {
        ("on_long_timeout", "long timeout")
    } else {
        ("on_timeout", "timeout")
    };
    check_live(cx, s, what);
    let now = cx.now_ms();
    let w = cx.ext_mut();
    if long {
        w.stats.on_long_timeout += 1;
    } else {
        w.stats.on_timeout += 1;
    }
    w.after_timer_phase = true;
    // The sweep runs: until it ends, timeouts set count from the tick it sweeps.
    let ticks = now.saturating_sub(w.sweep_epoch) / w.sweep_period;
    w.sweep_tick_ms = Some(w.sweep_epoch + ticks * w.sweep_period);
    let sock = w.sock(s, what);
    let due = sock
        .timeout_mut(long)
        .take()
        .unwrap_or_else(|| panic!("{what} for {s:?} with no {kind} set"));
    assert!(now >= due, "{what} for {s:?} {} ms early", due - now);
    react(cx, Some(s));
}

pub(crate) fn on_close(cx: &mut Cx, s: SocketId, cause: CloseCause<u32>) {
    assert_eq!(
        cx.is_closed(s),
        Some(true),
        "on_close: {s:?} not marked closed"
    );
    let ext = cx.socket_ext(s).copied();
    let w = cx.ext_mut();
    w.stats.on_close += 1;
    let in_connect_error = w.in_connect_error.contains(&s);
    let sock = w.sock(s, "on_close");
    let allowed = match sock.life {
        Life::Open | Life::Connecting => true,
        // The application closed it inside its own on_connect_error (C does call on_close).
        Life::Failed => in_connect_error && sock.closes == 0,
        Life::Closed => false,
    };
    assert!(
        allowed,
        "on_close for {s:?}, which is {:?} (closes so far: {})",
        sock.life, sock.closes
    );
    sock.life = Life::Closed;
    sock.closes += 1;
    assert_eq!(ext, Some(sock.serial), "on_close: the ext of {s:?} changed");
    match sock.closing.take() {
        Some((c, r)) => assert_eq!(
            cause,
            CloseCause::User {
                code: c,
                reason: Some(r)
            },
            "on_close: code and reason not passed through"
        ),
        None => {
            assert!(
                !matches!(cause, CloseCause::User { .. }),
                "on_close: a close by the library reported as the user's: {cause:?}"
            );
            assert_eq!(
                cause.code_and_reason(),
                (0, None),
                "on_close: a close by the library passes (0, None) to C"
            );
            if let CloseCause::Os(e) = cause {
                assert_ne!(e.code, 0, "on_close: an OS error without a code");
            }
        }
    }
    react(cx, Some(s));
}

pub(crate) fn on_connect_error(cx: &mut Cx, s: SocketId, err: OsError) {
    check_live(cx, s, "on_connect_error");
    let w = cx.ext_mut();
    w.stats.on_connect_error += 1;
    assert_ne!(err.code, 0, "on_connect_error without an OS code");
    let sock = w.sock(s, "on_connect_error");
    assert_eq!(
        sock.life,
        Life::Connecting,
        "on_connect_error for {s:?} after on_open"
    );
    sock.life = Life::Failed;
    sock.unlinked = true;
    w.in_connect_error.push(s);
    react(cx, Some(s));
    let w = cx.ext_mut();
    w.in_connect_error.retain(|&x| x != s);
}
