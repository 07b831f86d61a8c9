//! Outgoing connections (`us_socket_context_connect`, `_connect_unix`,
//! `us_socket_close_connecting`, `us_socket_is_established`, `on_connect_error`) and moving
//! sockets between contexts (`us_socket_context_adopt_socket`).

mod support;

mod api_harness;

use api_harness::*;
use support::{quiet_net, run_until, Caps, SimNet};
use usockets_core::{
    ConnectError, ConnectTarget, ContextId, Cx, ErrorKind, ListenOptions, ListenTarget, Loop,
    OsError, RecvBuf, Settings, SocketId,
};

sim_config!(A {
    loop_ext: World,
    context_ext: u32,
    socket_ext: u64,
    timer_ext: (),
    poll_ext: (),
});

fn host(host: &str, port: u16) -> ConnectTarget<'_> {
    ConnectTarget::Host {
        host,
        port,
        source: None,
    }
}

fn client_loop(net: &SimNet, caps: Caps) -> (Loop<A>, ContextId) {
    let mut l = make_loop::<A>(net, caps, Settings::default());
    let ctx = l.context_create(1, recorder()).unwrap();
    (l, ctx)
}

fn only_events_of(l: &Loop<A>, s: SocketId) -> Vec<Ev> {
    events(l, |e| match e {
        Ev::Open { s: x, .. }
        | Ev::Data { s: x, .. }
        | Ev::Close { s: x, .. }
        | Ev::ConnectError { s: x, .. }
        | Ev::End(x)
        | Ev::Writable(x) => *x == s,
        _ => false,
    })
}

/// Runs a few iterations, moving virtual time forward.
fn settle(l: &mut Loop<A>) {
    for _ in 0..4 {
        l.run_once(Some(10)).unwrap();
    }
}

// ---- connect ----------------------------------------------------------------------------

#[test]
fn connect_opens_on_the_next_iteration_never_synchronously() {
    let net = quiet_net();
    let mut sv = server::<A>(&net);
    let c = sv.l.connect(sv.ctx, host("127.0.0.1", sv.port), 5).unwrap();
    assert!(opened(&sv.l).is_empty(), "no on_open inside connect");
    assert_eq!(sv.l.is_established(c), Some(false));
    assert_eq!(sv.l.is_closed(c), Some(false));
    assert_eq!(sv.l.socket_ext(c), Some(&5));
    assert_eq!(
        sv.l.write(c, b"too early", false),
        0,
        "nothing to write to yet"
    );
    turn(&mut sv.l);
    assert!(sv.l.ext().log.contains(&Ev::Open {
        s: c,
        client: true,
        ip: vec![],
        ctx: 1
    }));
    assert_eq!(sv.l.is_established(c), Some(true));
    assert_eq!(sv.l.socket_listener(c), None);
    assert_eq!(opened(&sv.l).len(), 2, "the server side opened too");
}

#[test]
fn connect_to_a_peer_listener_exchanges_data() {
    let net = quiet_net();
    let (mut l, ctx) = client_loop(&net, Caps::default());
    let port = net.peer_listen(0);
    let c = l.connect(ctx, host("localhost", port), 0).unwrap();
    turn(&mut l);
    assert_eq!(opened(&l), [c]);
    let peer = net
        .peer_accept(port)
        .expect("the connection reached the peer");
    assert_eq!(l.write(c, b"hello server", false), 12);
    assert_eq!(net.peer_recv(peer), b"hello server");
    net.peer_send(peer, b"hello client");
    turn(&mut l);
    assert_eq!(data_of(&l, c), b"hello client");
}

#[test]
fn connect_refused_reports_econnrefused_without_on_close_and_releases() {
    let net = quiet_net();
    let (mut l, ctx) = client_loop(&net, Caps::default());
    let fds = net.open_fds();
    let c = l.connect(ctx, host("127.0.0.1", 1), 5).unwrap();
    settle(&mut l);
    assert_eq!(
        only_events_of(&l, c),
        [Ev::ConnectError {
            s: c,
            err: OsError::new(ErrorKind::ConnectionRefused, 111)
        }]
    );
    assert_eq!(l.is_closed(c), None, "released");
    assert_eq!(net.open_fds(), fds);
    assert_eq!(l.socket_slots_in_use(), 0);
    assert_eq!(
        events(&l, |e| matches!(e, Ev::Released { .. })),
        [Ev::Released { s: c, ext: 5 }]
    );
}

#[test]
fn connect_to_an_unresolvable_name_reports_name_resolution_never_on_open() {
    let net = quiet_net();
    let (mut l, ctx) = client_loop(&net, Caps::default());
    let c = l.connect(ctx, host("no-such-host.invalid", 80), 0).unwrap();
    assert!(l.ext().log.is_empty(), "reported later, not inside connect");
    settle(&mut l);
    let evs = only_events_of(&l, c);
    assert_eq!(evs.len(), 1, "{evs:?}");
    let Ev::ConnectError { err, .. } = evs[0] else {
        panic!("{evs:?}")
    };
    assert_eq!(err.kind, ErrorKind::NameResolution);
    assert_eq!(l.is_closed(c), None);
    assert!(!l.is_alive());
}

#[test]
fn connect_with_a_stale_context_fails_without_a_syscall() {
    let net = quiet_net();
    let (mut l, ctx) = client_loop(&net, Caps::default());
    l.context_free(ctx).unwrap();
    let connects = net.syscalls().connect;
    assert_eq!(
        l.connect(ctx, host("127.0.0.1", 1), 0),
        Err(ConnectError::InvalidContext)
    );
    assert_eq!(net.syscalls().connect, connects);
    assert_eq!(l.socket_slots_in_use(), 0);
}

#[test]
fn connect_with_a_full_socket_arena_fails_with_capacity() {
    let net = quiet_net();
    let caps = Caps {
        sockets: 1,
        ..Caps::default()
    };
    let (mut l, ctx) = client_loop(&net, caps);
    let port = net.peer_listen(0);
    let (connects, fds) = (net.syscalls().connect, net.open_fds());
    l.connect(ctx, host("127.0.0.1", port), 0).unwrap();
    assert_eq!(
        l.connect(ctx, host("127.0.0.1", port), 0),
        Err(ConnectError::Capacity)
    );
    assert_eq!(net.syscalls().connect, connects + 1);
    assert_eq!(net.open_fds(), fds + 1);
}

#[test]
fn close_connecting_aborts_without_on_close() {
    let net = quiet_net();
    let (mut l, ctx) = client_loop(&net, Caps::default());
    let port = net.peer_listen(0);
    let fds = net.open_fds();
    let c = l.connect(ctx, host("127.0.0.1", port), 0).unwrap();
    l.close_connecting(c);
    assert_eq!(l.is_closed(c), Some(true));
    assert_eq!(net.open_fds(), fds);
    settle(&mut l);
    assert_eq!(
        only_events_of(&l, c),
        [],
        "no on_open, on_close or on_connect_error"
    );
    assert_eq!(l.is_closed(c), None);
    let peer = net.peer_accept(port).unwrap();
    assert!(net.peer_got_fin(peer));
}

#[test]
fn close_connecting_on_an_established_socket_does_nothing() {
    let net = quiet_net();
    let (mut l, ctx) = client_loop(&net, Caps::default());
    let port = net.peer_listen(0);
    let c = l.connect(ctx, host("127.0.0.1", port), 0).unwrap();
    turn(&mut l);
    l.close_connecting(c);
    assert_eq!(l.is_closed(c), Some(false));
    assert_eq!(l.is_established(c), Some(true));
}

#[test]
fn connect_with_a_source_address_works() {
    let net = quiet_net();
    let (mut l, ctx) = client_loop(&net, Caps::default());
    let port = net.peer_listen(0);
    let target = ConnectTarget::Host {
        host: "127.0.0.1",
        port,
        source: Some("127.0.0.1"),
    };
    let c = l.connect(ctx, target, 0).unwrap();
    turn(&mut l);
    assert_eq!(opened(&l), [c]);
    assert!(net.peer_accept(port).is_some());
}

#[test]
fn connect_with_an_unusable_source_address_reports_the_os_error() {
    let net = quiet_net();
    let (mut l, ctx) = client_loop(&net, Caps::default());
    let port = net.peer_listen(0);
    let target = ConnectTarget::Host {
        host: "127.0.0.1",
        port,
        source: Some("10.9.8.7"),
    };
    let c = l.connect(ctx, target, 0).unwrap();
    settle(&mut l);
    assert_eq!(
        only_events_of(&l, c),
        [Ev::ConnectError {
            s: c,
            err: OsError::new(ErrorKind::AddrNotAvailable, 99)
        }]
    );
}

#[test]
fn connect_unix_reaches_a_unix_listener() {
    let net = quiet_net();
    let (mut l, ctx) = client_loop(&net, Caps::default());
    let path = "/tmp/api_connect.sock";
    l.listen(
        ctx,
        ListenTarget::Unix(path),
        ListenOptions::default(),
        accepted_ext,
    )
    .unwrap();
    let c = l.connect(ctx, ConnectTarget::Unix(path), 3).unwrap();
    run_until(&mut l, 5, |l| opened(l).len() == 2);
    let server_side = opened(&l).into_iter().find(|&s| s != c).unwrap();
    assert!(l.ext().log.contains(&Ev::Open {
        s: c,
        client: true,
        ip: vec![],
        ctx: 1
    }));
    assert_eq!(l.write(c, b"unix hello", false), 10);
    turn(&mut l);
    assert_eq!(data_of(&l, server_side), b"unix hello");
}

#[test]
fn connect_unix_to_a_path_nobody_listens_on_is_refused() {
    let net = quiet_net();
    let (mut l, ctx) = client_loop(&net, Caps::default());
    let c = l
        .connect(ctx, ConnectTarget::Unix("/tmp/nobody.sock"), 0)
        .unwrap();
    settle(&mut l);
    assert_eq!(
        only_events_of(&l, c),
        [Ev::ConnectError {
            s: c,
            err: OsError::new(ErrorKind::ConnectionRefused, 111)
        }]
    );
}

/// Runs the loop (sweep armed) over `ms` of virtual time.
fn run_for(net: &SimNet, l: &mut Loop<A>, ms: u64) {
    l.integrate();
    let end = net.now_ms() + ms;
    while net.now_ms() < end {
        l.run_once(Some(1000)).unwrap();
    }
}

#[test]
fn completed_connect_resets_timeouts() {
    let net = quiet_net();
    let (mut l, ctx) = client_loop(&net, Caps::default());
    let port = net.peer_listen(0);
    let c = l.connect(ctx, host("127.0.0.1", port), 0).unwrap();
    l.timeout(c, 4);
    l.long_timeout(c, 1);
    turn(&mut l);
    assert_eq!(opened(&l), [c]);
    run_for(&net, &mut l, 70_000);
    assert_eq!(
        count(&l, |e| matches!(e, Ev::Timeout(_) | Ev::LongTimeout(_))),
        0
    );
    l.timeout(c, 4);
    run_for(&net, &mut l, 9_000);
    assert_eq!(
        count(&l, |e| *e == Ev::Timeout(c)),
        1,
        "timeouts set after open work"
    );
}

// ---- adopt ------------------------------------------------------------------------------

fn b_on_data(cx: &mut Cx<A>, s: SocketId, buf: &mut RecvBuf<'_>) {
    cx.ext_mut().log.push(Ev::Note("b on_data", s));
    rec_data(cx, s, buf);
}

/// A server (context ext 1) with one accepted socket and a second context (ext 2) whose
/// `on_data` is distinct.
fn two_contexts(
    net: &SimNet,
    caps: Caps,
) -> (Server<A>, ContextId, usockets_shim_sim::PeerId, SocketId) {
    let mut sv = server_on::<A>(net, caps, Settings::default(), None);
    let mut cbs = recorder();
    cbs.on_data = Some(b_on_data);
    let b = sv.l.context_create(2, cbs).unwrap();
    let (peer, s) = accept(net, &mut sv.l, sv.port);
    (sv, b, peer, s)
}

#[test]
fn adopt_moves_the_socket_and_the_new_contexts_callbacks_fire() {
    let net = quiet_net();
    let (mut sv, b, peer, s) = two_contexts(&net, Caps::default());
    assert_eq!(sv.l.adopt(s, b), Some(s), "the handle stays the same");
    assert_eq!(sv.l.socket_context(s), Some(b));
    assert_eq!(sv.l.first_socket(sv.ctx), None);
    assert_eq!(sv.l.first_socket(b), Some(s));
    net.peer_send(peer, b"to b");
    turn(&mut sv.l);
    assert_eq!(count(&sv.l, |e| *e == Ev::Note("b on_data", s)), 1);
    assert_eq!(
        events(&sv.l, |e| matches!(e, Ev::Data { .. })),
        [Ev::Data {
            s,
            bytes: b"to b".to_vec(),
            ctx: 2
        }]
    );
}

#[test]
fn adopt_keeps_the_ext_and_adopt_with_transforms_it() {
    let net = quiet_net();
    let (mut sv, b, _peer, s) = two_contexts(&net, Caps::default());
    *sv.l.socket_ext_mut(s).unwrap() = 1234;
    sv.l.adopt(s, b).unwrap();
    assert_eq!(sv.l.socket_ext(s), Some(&1234));
    sv.l.adopt_with(s, sv.ctx, |e| *e = *e * 10 + 1).unwrap();
    assert_eq!(sv.l.socket_ext(s), Some(&12341));
    assert_eq!(sv.l.socket_context(s), Some(sv.ctx));
}

#[test]
fn adopt_resets_pending_timeouts() {
    let net = quiet_net();
    let (mut sv, b, _peer, s) = two_contexts(&net, Caps::default());
    sv.l.timeout(s, 4);
    sv.l.long_timeout(s, 1);
    sv.l.adopt(s, b).unwrap();
    run_for(&net, &mut sv.l, 70_000);
    assert_eq!(
        count(&sv.l, |e| matches!(e, Ev::Timeout(_) | Ev::LongTimeout(_))),
        0
    );
    sv.l.timeout(s, 4);
    run_for(&net, &mut sv.l, 9_000);
    assert_eq!(
        count(&sv.l, |e| *e == Ev::Timeout(s)),
        1,
        "the new context's on_timeout"
    );
}

#[test]
fn adopting_a_closed_socket_returns_it_unchanged() {
    let net = quiet_net();
    let (mut sv, b, _peer, s) = two_contexts(&net, Caps::default());
    sv.l.close(s, 0, None);
    assert_eq!(sv.l.adopt_with(s, b, |e| *e = 0), Some(s));
    assert_eq!(sv.l.socket_context(s), Some(sv.ctx));
    assert_eq!(sv.l.socket_ext(s), Some(&ACCEPTED_EXT), "not transformed");
    turn(&mut sv.l);
    assert_eq!(sv.l.adopt(s, b), None, "a released handle");
}

#[test]
fn adopt_to_a_stale_context_returns_none_and_keeps_the_socket() {
    let net = quiet_net();
    let (mut sv, b, peer, s) = two_contexts(&net, Caps::default());
    sv.l.context_free(b).unwrap();
    assert_eq!(sv.l.adopt(s, b), None);
    assert_eq!(sv.l.socket_context(s), Some(sv.ctx));
    net.peer_send(peer, b"still a");
    turn(&mut sv.l);
    assert_eq!(data_of(&sv.l, s), b"still a");
}

fn adopt_on_data(cx: &mut Cx<A>, s: SocketId, buf: &mut RecvBuf<'_>) {
    rec_data(cx, s, buf);
    if let Some(target) = cx.ext().target {
        cx.adopt(s, target);
    }
}

fn data_contexts(l: &Loop<A>) -> Vec<(u32, usize)> {
    events(l, |e| matches!(e, Ev::Data { .. }))
        .into_iter()
        .map(|e| match e {
            Ev::Data { ctx, bytes, .. } => (ctx, bytes.len()),
            _ => unreachable!(),
        })
        .collect()
}

#[test]
fn adopt_inside_on_data_sends_later_data_to_the_new_context() {
    let net = quiet_net();
    let (mut sv, b, peer, s) = two_contexts(&net, Caps::default());
    sv.l.context_callbacks_mut(sv.ctx).unwrap().on_data = Some(adopt_on_data);
    sv.l.ext_mut().target = Some(b);
    net.peer_send(peer, b"upgrade");
    turn(&mut sv.l);
    net.peer_send(peer, b"frame");
    turn(&mut sv.l);
    assert_eq!(data_contexts(&sv.l), [(1, 7), (2, 5)]);
    assert_eq!(count(&sv.l, |e| *e == Ev::Note("b on_data", s)), 1);
}

#[test]
fn adopt_inside_on_data_applies_to_the_rereads_of_the_same_event() {
    let net = quiet_net();
    let caps = Caps {
        recv: 64,
        ..Caps::default()
    };
    let (mut sv, b, peer, s) = two_contexts(&net, caps);
    sv.l.context_callbacks_mut(sv.ctx).unwrap().on_data = Some(adopt_on_data);
    sv.l.ext_mut().target = Some(b);
    let msg: Vec<u8> = (0..200u32).map(|i| i as u8).collect();
    net.peer_send(peer, &msg);
    turn(&mut sv.l);
    assert_eq!(data_contexts(&sv.l), [(1, 64), (2, 64), (2, 64), (2, 8)]);
    assert_eq!(data_of(&sv.l, s), msg);
}

#[test]
fn context_close_and_free_spare_sockets_adopted_away() {
    let net = quiet_net();
    let (mut sv, b, peer, s) = two_contexts(&net, Caps::default());
    sv.l.adopt(s, b).unwrap();
    sv.l.context_close(sv.ctx);
    assert_eq!(sv.l.is_closed(s), Some(false));
    assert_eq!(closes_of(&sv.l, s), 0);
    assert_eq!(sv.l.context_free(sv.ctx), Ok(1));
    assert_eq!(sv.l.write(s, b"alive", false), 5);
    assert_eq!(net.peer_recv(peer), b"alive");
}

#[test]
fn close_connecting_on_a_connect_that_failed_at_once_reports_nothing() {
    let net = quiet_net();
    let (mut l, ctx) = client_loop(&net, Caps::default());
    let c = l.connect(ctx, host("no-such-host.invalid", 80), 0).unwrap();
    l.close_connecting(c);
    settle(&mut l);
    assert_eq!(only_events_of(&l, c), []);
    assert_eq!(l.is_closed(c), None);
    assert!(!l.is_alive());
}

fn connect_error_then_context_close(cx: &mut Cx<A>, s: SocketId, err: OsError) {
    cx.ext_mut().log.push(Ev::ConnectError { s, err });
    if let Some(ctx) = cx.socket_context(s) {
        cx.context_close(ctx);
    }
}

#[test]
fn context_close_inside_on_connect_error_gives_the_failed_socket_no_on_close() {
    let net = quiet_net();
    let (mut l, ctx) = client_loop(&net, Caps::default());
    l.context_callbacks_mut(ctx).unwrap().on_connect_error = Some(connect_error_then_context_close);
    let failing = l.connect(ctx, host("127.0.0.1", 1), 2).unwrap();
    settle(&mut l);
    assert_eq!(
        only_events_of(&l, failing),
        [Ev::ConnectError {
            s: failing,
            err: OsError::new(ErrorKind::ConnectionRefused, 111)
        }],
        "on_connect_error only, no on_close: {:?}",
        l.ext().log
    );
    assert_eq!(l.socket_slots_in_use(), 0);
}
