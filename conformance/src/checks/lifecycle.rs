//! Opening, closing, failing, adopting and context-wide operations.

use std::net::Ipv4Addr;

use usockets_core::{
    CloseCause, ConnectTarget, ContextError, ErrorKind, ListenOptions, ListenTarget, SocketId,
};

use crate::harness::*;
use crate::ShimUnderTest;

/// Closes `s` and checks everything `close` promises: `on_close(code, reason)` inside the
/// call, the handle readable (closed, ext intact) until the iteration ends, then released.
/// Returns nothing; panics on a violation.
fn close_and_check<S: ShimUnderTest>(l: &mut L<S>, s: SocketId, ctx: u32, ext: u64) {
    let mark = l.ext().log.len();
    l.close(s, 42, Some(7));
    assert_eq!(
        l.ext().log[mark..],
        [Ev::Close {
            s,
            cause: CloseCause::User {
                code: 42,
                reason: Some(7)
            },
            ctx
        }],
        "on_close runs inside close, once, with the code and reason given"
    );
    assert_eq!(
        l.ext().closed_in_on_close.last(),
        Some(&(s, Some(true))),
        "inside on_close the socket already reports closed"
    );
    assert_eq!(
        l.is_closed(s),
        Some(true),
        "closed until the iteration ends"
    );
    assert_eq!(
        l.socket_ext(s),
        Some(&ext),
        "ext readable until the iteration ends"
    );
    assert_eq!(l.is_established(s), Some(false));
    assert!(l.socket_fd(s).is_none(), "no descriptor once closed");
    l.close(s, 1, Some(1));
    assert_eq!(closes(l, s).len(), 1, "a second close is a no-op");
    assert_eq!(l.write(s, b"x", false), 0, "no writes once closed");
    l.run_once(Some(0)).expect("run_once");
    assert_eq!(l.is_closed(s), None, "released at the end of the iteration");
    assert_eq!(l.socket_ext(s), None);
    assert!(
        l.ext().log.contains(&Ev::Released { s, ext }),
        "the released callback hands the ext back"
    );
}

/// `close(code, reason)` calls `on_close(code, reason)` synchronously; `is_closed` stays
/// `Some(true)` (ext readable) until the iteration ends, then the handle is released
/// (`None`) and stale: every call on it is rejected, also once its slot is reused. The peer
/// sees EOF.
pub fn check_close_code_reason_and_handle_lifetime<S: ShimUnderTest>() {
    let mut f = Fixture::<S>::tcp(LOCAL4);
    f.knobs(f.server).close_on_end = true;
    let (c, s) = f.pair();
    close_and_check::<S>(&mut f.l, c, CLIENT, CLIENT_EXT);
    // Stale handle: rejected everywhere.
    f.l.close(c, 3, None);
    assert!(
        closes(&f.l, c).len() == 1,
        "closing a released handle does nothing"
    );
    assert_eq!(f.l.adopt(c, f.server), None);
    assert_eq!(f.l.socket_context(c), None);
    assert_eq!(f.l.is_shut_down(c), None);
    f.l.timeout(c, 1);
    f.l.shutdown(c);
    drive(&mut f.l, "the peer to see EOF and close", |l| {
        !closes(l, s).is_empty()
    });
    assert_eq!(ends(&f.l, s), 1, "the peer of a closed socket sees on_end");
    assert_eq!(
        closes(&f.l, s),
        [(0, None)],
        "library-initiated close is (0, None)"
    );
    assert!(
        f.l.ext().closed_in_on_close.contains(&(s, Some(true))),
        "closed inside a callback: is_closed is Some(true) in on_close"
    );
    // Slots get reused; the old handles must not alias the new sockets.
    let (c2, s2) = f.pair();
    for new in [c2, s2] {
        assert!(
            new != c && new != s,
            "a new socket never equals a stale handle"
        );
    }
    assert_eq!(f.l.is_closed(c), None);
    assert_eq!(f.l.is_closed(s), None);
    close_and_check::<S>(&mut f.l, s2, SERVER, ACCEPTED_EXT);
}

/// `close_connecting` aborts a pending connect with no callback at all (no `on_open`,
/// `on_close` or `on_connect_error`); the slot is released. On an established socket it does
/// nothing.
pub fn check_close_connecting<S: ShimUnderTest>() {
    let mut f = Fixture::<S>::tcp(LOCAL4);
    f.knobs(f.server).close_on_end = true;
    let c = f.connect();
    f.l.close_connecting(c);
    assert_eq!(f.l.is_closed(c), Some(true));
    assert_eq!(closes(&f.l, c), [], "no on_close for an aborted connect");
    idle(&mut f.l, 200);
    assert_eq!(
        events_of(&f.l, c),
        [Ev::Released {
            s: c,
            ext: CLIENT_EXT
        }],
        "nothing but the release"
    );
    assert_eq!(f.l.is_closed(c), None);
    let (c2, _s2) = f.pair();
    f.l.close_connecting(c2);
    assert_eq!(
        f.l.is_closed(c2),
        Some(false),
        "close_connecting leaves an established socket alone"
    );
}

/// A port that was just listened on and closed: nothing listens there.
fn closed_port<S: ShimUnderTest>(f: &mut Fixture<S>) -> u16 {
    let l =
        f.l.listen(
            f.server,
            ListenTarget::Host {
                host: Some(LOCAL4),
                port: 0,
            },
            ListenOptions::default(),
            accepted_ext,
        )
        .unwrap_or_else(|e| panic!("listen on port 0: {e}"));
    let port = f.l.listen_port(l).expect("listen_port");
    f.l.listen_close(l);
    spin(&mut f.l, 1);
    port
}

/// Connects to `host:port` and expects exactly one `on_connect_error` (no `on_open`, no
/// `on_close`, slot released); returns the error.
fn expect_connect_error<S: ShimUnderTest>(
    f: &mut Fixture<S>,
    host: &str,
    port: u16,
) -> usockets_core::OsError {
    let c =
        f.l.connect(
            f.client,
            ConnectTarget::Host {
                host,
                port,
                source: None,
            },
            CLIENT_EXT,
        )
        .expect("connect fails synchronously only for a bad context or no capacity");
    let failed = |l: &L<S>| {
        l.ext().log.iter().find_map(|e| match e {
            Ev::ConnectError { s, err } if *s == c => Some(*err),
            _ => None,
        })
    };
    drive(&mut f.l, "on_connect_error", |l| {
        failed(l).is_some() || opened(l, c)
    });
    let err = failed(&f.l).unwrap_or_else(|| {
        panic!(
            "connect to {host}:{port} must fail, but it opened: {:?}",
            f.l.ext().log
        )
    });
    idle(&mut f.l, 50);
    let seen: Vec<_> = events_of(&f.l, c)
        .into_iter()
        .filter(|e| !matches!(e, Ev::Released { .. }))
        .collect();
    assert_eq!(
        seen,
        [Ev::ConnectError { s: c, err }],
        "only on_connect_error: never on_open, no on_close"
    );
    assert_eq!(f.l.is_closed(c), None, "the failed socket is released");
    err
}

/// A connect to a port nobody listens on reaches `on_connect_error` with
/// [`ErrorKind::ConnectionRefused`] and a nonzero raw code, never `on_open`, no `on_close`.
pub fn check_connect_refused<S: ShimUnderTest>() {
    let mut f = Fixture::<S>::tcp(LOCAL4);
    let port = closed_port(&mut f);
    let err = expect_connect_error(&mut f, LOCAL4, port);
    assert_eq!(err.kind, ErrorKind::ConnectionRefused, "{err:?}");
    assert_ne!(err.code, 0, "the raw OS code is reported");
    assert_eq!(f.l.socket_slots_in_use(), 0);
}

/// A connect to a name that cannot resolve (`no-such-host.invalid`) reaches
/// `on_connect_error` with [`ErrorKind::NameResolution`] (with
/// [`ErrorKind::Unsupported`] on a shim that declares it resolves no names:
/// [`ShimUnderTest::resolves_names`]), never `on_open`, no `on_close`.
pub fn check_unresolvable_name<S: ShimUnderTest>() {
    let mut f = Fixture::<S>::tcp(LOCAL4);
    let expected = if S::resolves_names(f.l.shim()) {
        ErrorKind::NameResolution
    } else {
        eprintln!("the shim declares it resolves no names: a name must be Unsupported");
        ErrorKind::Unsupported
    };
    let err = expect_connect_error(&mut f, "no-such-host.invalid", 80);
    assert_eq!(err.kind, expected, "{err:?}");
    assert_eq!(f.l.socket_slots_in_use(), 0);
}

/// `adopt` moves a socket to a child context keeping its handle and ext; later data goes to
/// the new context's callbacks. `adopt_with` transforms the ext on the way. Adopting into a
/// dead context fails; adopting a closed socket leaves it as it is.
pub fn check_adopt_keeps_ext_and_switches_callbacks<S: ShimUnderTest>() {
    let mut f = Fixture::<S>::tcp(LOCAL4);
    let (c, s) = f.pair();
    *f.l.socket_ext_mut(s).expect("ext") = 4242;
    let child =
        f.l.context_create_child(f.server, Ctx::tag(CHILD))
            .expect("context_create_child");
    assert_eq!(f.l.context_parent(child), Some(f.server));
    *f.l.context_callbacks_mut(child).expect("child callbacks") = callbacks::<S>();
    assert_eq!(f.l.adopt(s, child), Some(s), "same handle after adoption");
    assert_eq!(f.l.socket_context(s), Some(child));
    assert_eq!(f.l.socket_ext(s), Some(&4242), "ext kept");
    assert_eq!(f.l.first_socket(child), Some(s));
    assert_eq!(
        f.l.first_socket(f.server),
        None,
        "gone from the old context"
    );
    let mark = f.l.ext().log.len();
    f.transfer(c, b"after adoption", s);
    let ctxs: Vec<u32> = f.l.ext().log[mark..]
        .iter()
        .filter_map(|e| match e {
            Ev::Data { s: x, ctx, .. } if *x == s => Some(*ctx),
            _ => None,
        })
        .collect();
    assert!(
        !ctxs.is_empty() && ctxs.iter().all(|&t| t == CHILD),
        "data after adoption goes to the new context: {ctxs:?}"
    );
    let other =
        f.l.context_create(Ctx::tag(OTHER), callbacks::<S>())
            .expect("context_create");
    assert_eq!(f.l.adopt_with(s, other, |e| *e += 1), Some(s));
    assert_eq!(
        f.l.socket_ext(s),
        Some(&4243),
        "adopt_with transforms the ext"
    );
    let mark = f.l.ext().log.len();
    f.transfer(c, b"again", s);
    assert!(
        f.l.ext().log[mark..]
            .iter()
            .any(|e| matches!(e, Ev::Data { s: x, ctx: OTHER, .. } if *x == s)),
        "data goes to the second context"
    );
    assert_eq!(
        f.l.context_free(child).map(|c| c.tag),
        Ok(CHILD),
        "an emptied context can be freed"
    );
    assert_eq!(
        f.l.adopt(c, child),
        None,
        "adoption into a freed context fails"
    );
    assert_eq!(
        f.l.socket_context(c),
        Some(f.client),
        "and leaves the socket alone"
    );
    f.l.close(s, 0, None);
    assert_eq!(
        f.l.adopt(s, f.server),
        Some(s),
        "a closed socket is returned unchanged"
    );
    assert_eq!(f.l.socket_context(s), Some(other));
}

/// `on_pre_open` may take an accepted descriptor (no `on_open` then); `adopt_accepted` turns
/// it into a socket of any context, calling `on_open(is_client = false, ip)` synchronously.
pub fn check_pre_open_take_and_adopt_accepted<S: ShimUnderTest>() {
    let mut f = Fixture::<S>::tcp(LOCAL4);
    f.l.ext_mut().take_on_pre_open = true;
    let c = f.connect();
    drive(&mut f.l, "on_pre_open to take the descriptor", |l| {
        !l.ext().taken.is_empty() && opened(l, c)
    });
    assert_eq!(
        count(&f.l, |e| matches!(e, Ev::Open { client: false, .. })),
        0,
        "a taken descriptor gets no on_open"
    );
    let localhost = Ipv4Addr::LOCALHOST.octets().to_vec();
    assert!(
        f.l.ext().log.contains(&Ev::PreOpen {
            ip: localhost.clone()
        }),
        "on_pre_open gets the peer's IP bytes"
    );
    f.l.ext_mut().take_on_pre_open = false;
    let (fd, ip) = f.l.ext_mut().taken.pop().expect("taken");
    let mark = f.l.ext().log.len();
    let s =
        f.l.adopt_accepted(f.server, fd, 555, &ip)
            .unwrap_or_else(|e| panic!("adopt_accepted: {e}"));
    assert_eq!(
        f.l.ext().log[mark..],
        [Ev::Open {
            s,
            client: false,
            ip: localhost,
            ctx: SERVER
        }],
        "adopt_accepted calls on_open synchronously"
    );
    assert_eq!(f.l.socket_ext(s), Some(&555));
    assert_eq!(f.l.socket_listener(s), None);
    f.transfer(c, b"to the adopted socket", s);
    f.transfer(s, b"from the adopted socket", c);
}

/// `context_close` closes the context's listen sockets and every socket exactly once (even
/// when an `on_close` closes the others), synchronously, with `on_close(0, None)` as C sees it
/// ([`CloseCause::ContextClosed`] in Rust); the
/// context stays valid and can then be freed. The peers see EOF; the port is closed.
pub fn check_context_close_closes_everything_once<S: ShimUnderTest>() {
    let mut f = Fixture::<S>::tcp(LOCAL4);
    f.knobs(f.client).close_on_end = true;
    let port = f.port();
    let pairs: Vec<_> = (0..3).map(|_| f.pair()).collect();
    let mut servers: Vec<SocketId> = pairs.iter().map(|p| p.1).collect();
    let mut walked = Vec::new();
    let mut cur = f.l.first_socket(f.server);
    while let Some(x) = cur {
        walked.push(x);
        cur = f.l.next_socket(x);
    }
    walked.sort();
    servers.sort();
    assert_eq!(walked, servers, "first_socket/next_socket walk the context");
    assert_eq!(
        f.l.context_free(f.server).map(|c| c.tag),
        Err(ContextError::Busy),
        "a context with sockets cannot be freed"
    );
    f.l.ext_mut().close_on_close = servers.clone();
    let mark = f.l.ext().log.len();
    f.l.context_close(f.server);
    assert_eq!(f.l.listen_port(f.listener), None, "listener closed");
    for &s in &servers {
        assert_eq!(
            closes(&f.l, s),
            [(0, None)],
            "each socket closed exactly once"
        );
        assert_eq!(f.l.is_closed(s), Some(true));
    }
    assert!(
        servers
            .iter()
            .any(|&s| close_causes(&f.l, s) == [CloseCause::ContextClosed]),
        "the socket context_close closed first learns why (the rest were closed by on_close)"
    );
    assert_eq!(
        f.l.ext().log.len() - mark,
        servers.len(),
        "only the closes, synchronously: {:?}",
        &f.l.ext().log[mark..]
    );
    f.l.ext_mut().close_on_close.clear();
    assert_eq!(
        f.l.context_ext(f.server).map(|c| c.tag),
        Some(SERVER),
        "the context stays valid"
    );
    assert_eq!(f.l.first_socket(f.server), None);
    assert_eq!(f.l.context_free(f.server).map(|c| c.tag), Ok(SERVER));
    let clients: Vec<SocketId> = pairs.iter().map(|p| p.0).collect();
    drive(&mut f.l, "every client to see EOF and close", |l| {
        clients.iter().all(|&c| !closes(l, c).is_empty())
    });
    let err = expect_connect_error(&mut f, LOCAL4, port);
    assert_eq!(
        err.kind,
        ErrorKind::ConnectionRefused,
        "the listen socket is really closed"
    );
}

/// `listen_close` inside the accepted socket's `on_open` is safe: the listener closes, the
/// accepted socket works, later connects are refused.
pub fn check_listen_close_inside_on_open<S: ShimUnderTest>() {
    let mut f = Fixture::<S>::tcp(LOCAL4);
    let port = f.port();
    f.l.ext_mut().listen_close_on_open = Some(f.listener);
    let (c, s) = f.pair();
    assert_eq!(f.l.listen_port(f.listener), None, "closed inside on_open");
    f.transfer(s, b"accepted socket works", c);
    f.transfer(c, b"both ways", s);
    spin(&mut f.l, 1);
    assert_eq!(f.l.slots_in_use()[1], 0, "listen slot released");
    let err = expect_connect_error(&mut f, LOCAL4, port);
    assert_eq!(err.kind, ErrorKind::ConnectionRefused);
}

/// `Loop::run` returns once nothing keeps it alive: the listener closes in `on_open`, the
/// client sends and shuts down, the server closes on EOF, the client closes on the FIN.
pub fn check_run_returns_when_everything_is_closed<S: ShimUnderTest>() {
    let mut f = Fixture::<S>::tcp(LOCAL4);
    f.l.ext_mut().listen_close_on_open = Some(f.listener);
    let client = f.knobs(f.client);
    client.send_on_open = Some(b"bye".to_vec());
    client.shutdown_on_open = true;
    f.knobs(f.server).close_on_end = true;
    let c = f.connect();
    assert!(f.l.is_alive());
    run_guarded(&mut f.l);
    assert!(!f.l.is_alive());
    let s =
        f.l.ext()
            .log
            .iter()
            .find_map(|e| match e {
                Ev::Open {
                    s, client: false, ..
                } => Some(*s),
                _ => None,
            })
            .expect("the server end opened");
    assert_eq!(rx(&f.l, s), b"bye");
    assert_eq!(closes(&f.l, s), [(0, None)]);
    assert_eq!(closes(&f.l, c), [(0, None)]);
    assert_eq!(
        f.l.slots_in_use(),
        [0, 0, 2, 0, 0],
        "only the two contexts remain"
    );
    f.l.context_free(f.server).expect("context_free");
    f.l.context_free(f.client).expect("context_free");
    assert_eq!(f.l.slots_in_use(), [0; 5]);
}
