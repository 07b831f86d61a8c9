//! Where sockets come from: listening, connecting and adopting accepted descriptors.

use usockets_core::{
    AdoptError, ConnectError, ConnectTarget, ListenError, ListenOptions, ListenTarget, Loop,
};

use crate::config::{Cx, H, SOCKETS};
use crate::contexts::new_ext;
use crate::model::{Life, Lis, Sock};

pub(crate) const UNIX_PATHS: [&str; 3] = ["/fz/a", "/fz/b", "/fz/c"];

pub(crate) fn listen(cx: &mut Cx) {
    let w = cx.ext_mut();
    let Some(c) = w.pick_ctx() else { return };
    let kind = w.ops.u8() % 6;
    let live = w.ctx_live(c);
    let taken_port = w.lis.iter().filter_map(|l| l.port).next().unwrap_or(0);
    let path = UNIX_PATHS[usize::from(kind) % UNIX_PATHS.len()];
    let target = match kind {
        0 | 5 => ListenTarget::Host {
            host: Some("127.0.0.1"),
            port: 0,
        },
        1 => ListenTarget::Host {
            host: None,
            port: 0,
        },
        2 => ListenTarget::Host {
            host: Some("::1"),
            port: 0,
        },
        3 => ListenTarget::Unix(path),
        _ => ListenTarget::Host {
            host: Some("127.0.0.1"),
            port: taken_port,
        },
    };
    let backlog = 1 + u32::from(w.ops.u8() % 4);
    let options = ListenOptions::default().with_backlog(backlog);
    match cx.listen(c, target, options, new_ext) {
        Ok(l) => {
            assert!(live, "listen on a freed context");
            assert_eq!(cx.listen_context(l), Some(c));
            let port = cx.listen_port(l);
            let path = matches!(target, ListenTarget::Unix(_)).then_some(path);
            cx.ext_mut().add_lis(Lis::new(l, c, port, path));
        }
        Err(ListenError::InvalidContext) => assert!(!live, "listen refused a live context"),
        Err(ListenError::Capacity) | Err(ListenError::Os(_)) => {}
        Err(e) => panic!("listen: unexpected {e}"),
    }
}

pub(crate) fn listen_close(cx: &mut Cx, i: usize) {
    let l = cx.ext().lis[i].id;
    cx.listen_close(l);
    cx.ext_mut().close_lis(i);
    assert_eq!(cx.listen_context(l), None, "closed listener still answers");
}

pub(crate) fn connect(cx: &mut Cx) {
    let w = cx.ext_mut();
    let Some(c) = w.pick_ctx() else { return };
    let kind = w.ops.u8() % 8;
    let li = w.pick_lis();
    let live = w.ctx_live(c);
    let port = li.and_then(|i| w.lis[i].port).unwrap_or(1);
    let path = li.and_then(|i| w.lis[i].path).unwrap_or("/fz/none");
    let peer_port = match (kind, w.peer_port) {
        (1, None) => {
            let p = w.net.peer_listen(0);
            w.peer_port = Some(p);
            p
        }
        (_, p) => p.unwrap_or(1),
    };
    let target = match kind {
        0 | 6 => ConnectTarget::Host {
            host: "127.0.0.1",
            port,
            source: None,
        },
        1 => ConnectTarget::Host {
            host: "localhost",
            port: peer_port,
            source: None,
        },
        2 => ConnectTarget::Host {
            host: "127.0.0.1",
            port: 1,
            source: None,
        },
        3 => ConnectTarget::Host {
            host: "no.such.host.invalid",
            port,
            source: None,
        },
        4 => ConnectTarget::Unix(path),
        5 => ConnectTarget::Host {
            host: "::1",
            port,
            source: Some("10.1.2.3"),
        },
        _ => ConnectTarget::Host {
            host: "::1",
            port,
            source: None,
        },
    };
    let serial = w.next_serial();
    let in_use = w.socks.len();
    match cx.connect(c, target, serial) {
        Ok(s) => {
            assert!(live, "connect from a freed context");
            let w = cx.ext_mut();
            let out = w.new_stream();
            // Panics if the model still has a socket in that slot (a live handle reused).
            w.add_sock(s, Sock::new(serial, Life::Connecting, c, out));
        }
        Err(ConnectError::InvalidContext) => assert!(!live, "connect refused a live context"),
        Err(ConnectError::Capacity) => {
            assert!(live, "capacity error for a freed context");
            assert_eq!(in_use, SOCKETS, "capacity error with free slots");
        }
        Err(e) => panic!("connect failed synchronously: {e}"),
    }
}

pub(crate) fn adopt_accepted(l: &mut Loop<H>) {
    let w = l.ext_mut();
    if w.taken.is_empty() {
        return;
    }
    let fd = w.taken.remove(0);
    let Some(c) = w.pick_ctx() else {
        w.taken.push(fd);
        return;
    };
    let live = w.ctx_live(c);
    let in_use = w.socks.len();
    let serial = w.next_serial();
    w.adopting = Some(serial);
    let r = l.adopt_accepted(c, fd, serial, &[127, 0, 0, 1]);
    let w = l.ext_mut();
    w.adopting = None;
    match r {
        Ok(s) => {
            assert!(live, "adopted into a freed context");
            assert!(w.socks.contains(s), "adopt_accepted without on_open");
        }
        Err(rejected) => {
            let (error, fd) = rejected.into_parts();
            match error {
                AdoptError::InvalidContext => assert!(!live, "live context rejected"),
                AdoptError::Capacity => assert_eq!(in_use, SOCKETS, "capacity with free slots"),
                e => panic!("adopt_accepted of a fresh descriptor: {e}"),
            }
            // The descriptor comes back with the error: still the harness's to adopt or close.
            w.taken.push(fd);
        }
    }
}

/// Closes a listener the input picks, if there is one.
pub(crate) fn listen_close_picked(cx: &mut Cx) {
    if let Some(i) = cx.ext_mut().pick_lis() {
        listen_close(cx, i);
    }
}
