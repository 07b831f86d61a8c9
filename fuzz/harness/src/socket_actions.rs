//! The actions on one socket (write, close, adopt, timeouts, shutdown, addresses), each checked
//! against the model.

use usockets_core::SocketId;

use crate::actions::Act;
use crate::config::Cx;
use crate::model::Life;

pub(crate) fn write(cx: &mut Cx, s: SocketId, how: Act) {
    let w = cx.ext_mut();
    let len = 1 + usize::from(w.ops.u8()) * 4;
    let Some(sock) = w.socks.get(s) else {
        // A released handle: nothing may be written.
        assert_eq!(cx.write(s, b"x", false), 0, "write on released {s:?}");
        return;
    };
    let writable = sock.life == Life::Open && !sock.shut_wr;
    let out = sock.out;
    let chunk = w.next_chunk(out, len);
    let n = match how {
        Act::Write2 => {
            let at = w.ops.below(len + 1);
            cx.write2(s, &chunk[..at], &chunk[at..])
        }
        Act::WriteMore => {
            let flush = w.ops.u8() & 1 == 0;
            let n = cx.write(s, &chunk, true);
            if flush {
                cx.flush(s);
            }
            n
        }
        _ => cx.write(s, &chunk, false),
    };
    assert!(n <= len, "write of {len} bytes returned {n}");
    if !writable {
        assert_eq!(
            n, 0,
            "a closed, connecting or shut-down {s:?} took {n} bytes"
        );
    }
    let w = cx.ext_mut();
    w.chunk = chunk;
    w.wrote(out, n);
    if writable && n < len {
        w.sock(s, "write").want_writable = true;
    }
}

pub(crate) fn close(cx: &mut Cx, s: SocketId) {
    let w = cx.ext_mut();
    let code = i32::from(w.ops.u8()) - 16;
    let reason = u32::from(w.ops.u8());
    let live = !w.closed(s) && w.socks.contains(s);
    if live {
        w.sock(s, "close").closing = Some((code, reason));
    }
    // Only a socket inside its on_connect_error can have lost its context (freed there).
    let orphan = live && w.socks.get(s).is_some_and(|x| !w.ctx_live(x.ctx));
    cx.close(s, code, Some(reason));
    if orphan {
        assert_eq!(cx.is_closed(s), Some(true), "close left {s:?} open");
        let w = cx.ext_mut();
        let sock = w.sock(s, "close");
        assert_ne!(sock.life, Life::Closed, "on_close from a freed context");
        sock.life = Life::Failed;
        sock.closing = None;
        w.in_connect_error.retain(|&x| x != s);
    } else if live {
        let life = cx.ext().socks.get(s).map(|x| x.life);
        assert_eq!(life, Some(Life::Closed), "close of {s:?} gave no on_close");
    }
}

pub(crate) fn close_connecting(cx: &mut Cx, s: SocketId) {
    let w = cx.ext();
    let life = w.socks.get(s).map(|x| x.life);
    // A connecting socket, or one whose on_connect_error is running (still connecting to core).
    let connecting = life == Some(Life::Connecting)
        || life == Some(Life::Failed) && w.in_connect_error.contains(&s);
    cx.close_connecting(s);
    if connecting {
        assert_eq!(
            cx.is_closed(s),
            Some(true),
            "close_connecting left {s:?} open"
        );
        let w = cx.ext_mut();
        w.sock(s, "close_connecting").life = Life::Failed;
        w.in_connect_error.retain(|&x| x != s);
    }
}

pub(crate) fn adopt(cx: &mut Cx, s: SocketId) {
    let Some(to) = cx.ext_mut().pick_ctx() else {
        return;
    };
    let transform = cx.ext_mut().ops.u8() & 1 == 0;
    let w = cx.ext();
    let known = w.socks.get(s).map(|x| x.serial);
    let closed = w.closed(s);
    let target_live = w.ctx_live(to);
    let r = if transform {
        cx.adopt_with(s, to, |e| {
            assert_eq!(Some(*e), known, "adopt_with got another ext");
        })
    } else {
        cx.adopt(s, to)
    };
    let want = match known {
        None => None,
        Some(_) if closed => Some(s),
        Some(_) if !target_live => None,
        Some(_) => Some(s),
    };
    assert_eq!(r, want, "adopt of {s:?} into {to:?}");
    if known.is_some() && !closed && target_live {
        let sock = cx.ext_mut().sock(s, "adopt");
        sock.ctx = to;
        sock.unlinked = false;
        sock.timeout = None;
        sock.long_timeout = None;
    }
    if let Some(sock) = cx.ext().socks.get(s) {
        assert_eq!(cx.socket_context(s), Some(sock.ctx), "context after adopt");
    } else {
        assert_eq!(cx.socket_context(s), None, "released {s:?} has a context");
    }
}

pub(crate) fn timeout(cx: &mut Cx, s: SocketId, long: bool) {
    let w = cx.ext_mut();
    let n = u32::from(w.ops.u8());
    let (amount, unit) = if long {
        (n % 3, 60_000)
    } else {
        (n % 16, 1000)
    };
    // Set while the sweep runs, a timeout counts from the swept tick (re-armed in on_timeout,
    // it is periodic); otherwise from now.
    let now = w.sweep_tick_ms.unwrap_or_else(|| w.net.now_ms());
    if long {
        cx.long_timeout(s, amount);
    } else {
        cx.timeout(s, amount);
    }
    let w = cx.ext_mut();
    if w.closed(s) {
        return;
    }
    if let Some(sock) = w.socks.get_mut(s) {
        *sock.timeout_mut(long) = (amount > 0).then(|| now + u64::from(amount) * unit);
    }
}

pub(crate) fn shutdown(cx: &mut Cx, s: SocketId) {
    let w = cx.ext_mut();
    let mut closes = false;
    if let Some(sock) = w.socks.get_mut(s) {
        if sock.life == Life::Open && !sock.shut_wr {
            sock.shut_wr = true;
            sock.want_writable = false;
            closes = sock.got_end;
        }
    }
    cx.shutdown(s);
    if closes {
        let life = cx.ext().socks.get(s).map(|x| x.life);
        assert_eq!(
            life,
            Some(Life::Closed),
            "shutdown after the peer's FIN did not close {s:?}"
        );
    }
}

pub(crate) fn addr(cx: &mut Cx, s: SocketId) {
    let mut buf = [0u8; 16];
    let n = cx.remote_address(s, &mut buf);
    let port = cx.remote_port(s);
    let local = cx.local_port(s);
    assert!(matches!(n, 0 | 4 | 16), "remote_address gave {n} bytes");
    if cx.ext().closed(s) || !cx.ext().socks.contains(s) {
        assert_eq!((n, port, local), (0, None, None), "address of closed {s:?}");
    }
}
