//! Socket lifetime and state: hang-ups after data, `us_socket_close`, `is_closed` and release,
//! addresses, pause and resume, observed through the simulated network.

mod support;

mod api_harness;

use api_harness::*;
use support::{quiet_net, Caps};
use usockets_core::{Cx, Interest, LoopCallbacks, RecvBuf, Settings, SocketId};

sim_config!(A {
    loop_ext: World,
    context_ext: u32,
    socket_ext: u64,
    timer_ext: (),
    poll_ext: (),
});

// ---- close and release ------------------------------------------------------------------

#[test]
fn close_calls_on_close_synchronously_with_code_and_reason() {
    let net = quiet_net();
    let (mut sv, peer, s) = established::<A>(&net);
    let it = sv.l.iteration_number();
    sv.l.close(s, 4242, Some(9));
    assert_eq!(
        sv.l.ext().log.last(),
        Some(&Ev::Close {
            s,
            code: 4242,
            reason: Some(9)
        })
    );
    assert_eq!(sv.l.iteration_number(), it);
    assert!(net.peer_got_fin(peer), "the descriptor was closed");
}

#[test]
fn library_initiated_close_passes_zero_and_no_reason() {
    let net = quiet_net();
    let (mut sv, peer, s) = established::<A>(&net);
    net.peer_reset(peer);
    turn(&mut sv.l);
    assert_eq!(
        events(&sv.l, |e| matches!(e, Ev::Close { .. })),
        [Ev::Close {
            s,
            code: 0,
            reason: None
        }]
    );
}

#[test]
fn close_on_a_closed_socket_is_a_no_op() {
    let net = quiet_net();
    let (mut sv, _peer, s) = established::<A>(&net);
    let fds = net.open_fds();
    let closes = net.syscalls().close;
    sv.l.close(s, 1, None);
    sv.l.close(s, 2, Some(2));
    assert_eq!(closes_of(&sv.l, s), 1);
    assert_eq!(net.syscalls().close, closes + 1);
    assert_eq!(net.open_fds(), fds - 1);
    turn(&mut sv.l);
    sv.l.close(s, 3, None);
    assert_eq!(closes_of(&sv.l, s), 1, "a released handle is ignored too");
}

#[test]
fn closed_socket_stays_readable_until_end_of_iteration_then_is_released() {
    let net = quiet_net();
    let (mut sv, _peer, s) = established::<A>(&net);
    *sv.l.socket_ext_mut(s).unwrap() = 1234;
    sv.l.close(s, 0, None);
    assert_eq!(sv.l.is_closed(s), Some(true));
    assert_eq!(sv.l.socket_ext(s), Some(&1234));
    assert_eq!(sv.l.socket_context(s), Some(sv.ctx));
    assert_eq!(sv.l.socket_fd(s), None, "the descriptor is gone at once");
    assert_eq!(sv.l.socket_slots_in_use(), 1);
    assert_eq!(count(&sv.l, |e| matches!(e, Ev::Released { .. })), 0);
    turn(&mut sv.l);
    assert_eq!(sv.l.is_closed(s), None);
    assert_eq!(sv.l.socket_ext(s), None);
    assert_eq!(sv.l.socket_slots_in_use(), 0);
    turn(&mut sv.l);
    assert_eq!(
        events(&sv.l, |e| matches!(e, Ev::Released { .. })),
        [Ev::Released { s, ext: 1234 }],
        "released exactly once, with its ext"
    );
}

fn close_in_on_data(cx: &mut Cx<A>, s: SocketId, _buf: &mut RecvBuf<'_>) {
    cx.close(s, 5, None);
    if cx.is_closed(s) == Some(true) && cx.socket_ext(s) == Some(&ACCEPTED_EXT) {
        cx.ext_mut().log.push(Ev::Note("closed but readable", s));
    }
    cx.ext_mut().sockets.push(s);
}

fn post_checks_release(cx: &mut Cx<A>) {
    if let Some(&s) = cx.ext().sockets.last() {
        if cx.is_closed(s).is_none() && !cx.ext().flag {
            cx.ext_mut().flag = true;
            cx.ext_mut().log.push(Ev::Note("released before post", s));
        }
    }
}

#[test]
fn socket_closed_in_a_callback_is_released_before_post() {
    let net = quiet_net();
    let mut l = support::new_loop::<A>(
        &net,
        Caps::default(),
        World::default(),
        LoopCallbacks {
            post: Some(post_checks_release),
            released: Some(rec_released),
            ..LoopCallbacks::default()
        },
        Settings::default(),
    );
    let ctx = l.context_create(1, recorder()).unwrap();
    l.context_callbacks_mut(ctx).unwrap().on_data = Some(close_in_on_data);
    let ls = l
        .listen(ctx, any_host(0), Default::default(), accepted_ext)
        .unwrap();
    let port = l.listen_port(ls).unwrap();
    let (peer, s) = accept(&net, &mut l, port);
    net.peer_send(peer, b"x");
    turn(&mut l);
    let notes: Vec<_> = events(&l, |e| matches!(e, Ev::Note(..) | Ev::Released { .. }));
    assert_eq!(
        notes,
        [
            Ev::Note("closed but readable", s),
            Ev::Released {
                s,
                ext: ACCEPTED_EXT
            },
            Ev::Note("released before post", s),
        ]
    );
}

#[test]
fn released_handle_never_aliases_a_newer_socket_in_the_same_slot() {
    let net = quiet_net();
    let caps = Caps {
        sockets: 1,
        ..Caps::default()
    };
    let (mut sv, _p1, old) = established_on::<A>(&net, caps, Settings::default());
    sv.l.close(old, 0, None);
    turn(&mut sv.l);
    let (p2, new) = accept(&net, &mut sv.l, sv.port);
    assert_eq!(new.index(), old.index(), "the slot is reused");
    assert_ne!(new, old);
    *sv.l.socket_ext_mut(new).unwrap() = 99;
    assert_eq!(sv.l.socket_ext(old), None);
    assert_eq!(sv.l.is_closed(old), None);
    assert_eq!(sv.l.socket_fd(old), None);
    assert_eq!(sv.l.write(old, b"stale", false), 0);
    sv.l.close(old, 7, None);
    sv.l.shutdown(old);
    assert_eq!(
        sv.l.is_closed(new),
        Some(false),
        "the stale handle touched nothing"
    );
    assert_eq!(sv.l.is_shut_down(new), Some(false));
    assert_eq!(closes_of(&sv.l, new), 0);
    assert!(net.peer_recv(p2).is_empty());
    assert_eq!(sv.l.socket_ext(new), Some(&99));
}

// ---- addresses --------------------------------------------------------------------------

#[test]
fn remote_address_on_dual_stack_listener_is_16_byte_ipv4_mapped() {
    let net = quiet_net();
    let (mut sv, _peer, s) = established::<A>(&net);
    let mut buf = [0u8; 16];
    assert_eq!(sv.l.remote_address(s, &mut buf), 16);
    assert_eq!(buf, std::net::Ipv4Addr::LOCALHOST.to_ipv6_mapped().octets());
}

#[test]
fn remote_address_on_ipv4_listener_is_4_bytes() {
    let net = quiet_net();
    let mut sv = server_on::<A>(
        &net,
        Caps::default(),
        Settings::default(),
        Some("127.0.0.1"),
    );
    let (_peer, s) = accept(&net, &mut sv.l, sv.port);
    let mut buf = [0xEEu8; 16];
    assert_eq!(sv.l.remote_address(s, &mut buf), 4);
    assert_eq!(&buf[..4], &[127, 0, 0, 1]);
    assert_eq!(&buf[4..], &[0xEE; 12], "nothing written past the address");
}

#[test]
fn remote_address_returns_zero_when_the_buffer_is_too_small() {
    let net = quiet_net();
    let (mut sv, _peer, s) = established::<A>(&net);
    let mut buf = [0xEEu8; 4];
    assert_eq!(sv.l.remote_address(s, &mut buf), 0);
    assert_eq!(buf, [0xEE; 4]);
}

#[test]
fn addresses_are_unavailable_after_close() {
    let net = quiet_net();
    let (mut sv, _peer, s) = established::<A>(&net);
    sv.l.close(s, 0, None);
    let mut buf = [0u8; 16];
    assert_eq!(sv.l.remote_address(s, &mut buf), 0);
    assert_eq!(sv.l.remote_port(s), None);
    assert_eq!(sv.l.local_port(s), None);
}

#[test]
fn local_port_of_accepted_socket_is_the_listen_port() {
    let net = quiet_net();
    let (mut sv, _peer, s) = established::<A>(&net);
    assert_eq!(sv.l.local_port(s), Some(sv.port));
}

#[test]
fn remote_port_is_the_connecting_sockets_local_port() {
    let net = quiet_net();
    let mut sv = server::<A>(&net);
    let c =
        sv.l.connect(
            sv.ctx,
            usockets_core::ConnectTarget::Host {
                host: "127.0.0.1",
                port: sv.port,
                source: None,
            },
            5,
        )
        .unwrap();
    support::run_until(&mut sv.l, 10, |l| opened(l).len() == 2);
    let srv = opened(&sv.l).into_iter().find(|&x| x != c).unwrap();
    let client_port = sv.l.local_port(c).expect("client local port");
    assert_ne!(client_port, sv.port);
    assert_eq!(sv.l.remote_port(srv), Some(client_port));
    assert_eq!(sv.l.remote_port(c), Some(sv.port));
}

// ---- pause / resume ---------------------------------------------------------------------

#[test]
fn paused_socket_gets_no_data_until_resumed() {
    let net = quiet_net();
    let (mut sv, peer, s) = established::<A>(&net);
    sv.l.pause(s);
    assert_eq!(sv.l.socket_interest(s), Some(Interest::NONE));
    net.peer_send(peer, b"queued while paused");
    let recv0 = net.syscalls().recv;
    for _ in 0..3 {
        turn(&mut sv.l);
    }
    assert!(data_of(&sv.l, s).is_empty());
    assert_eq!(net.syscalls().recv, recv0, "not even read");
    sv.l.resume(s);
    assert_eq!(sv.l.socket_interest(s), Some(Interest::READABLE));
    turn(&mut sv.l);
    assert_eq!(data_of(&sv.l, s), b"queued while paused");
}

#[test]
fn pause_keeps_writable_interest_and_resume_restores_readable() {
    let net = quiet_net();
    let (mut sv, _peer, s) = established::<A>(&net);
    assert!(
        sv.l.write(s, &vec![0u8; 300 * 1024], false) < 300 * 1024,
        "a short write arms writable interest"
    );
    assert_eq!(sv.l.socket_interest(s), Some(Interest::BOTH));
    sv.l.pause(s);
    assert_eq!(sv.l.socket_interest(s), Some(Interest::WRITABLE));
    sv.l.resume(s);
    assert_eq!(sv.l.socket_interest(s), Some(Interest::BOTH));
}

#[test]
fn set_socket_poll_interest_changes_interest_with_one_modify_each() {
    let net = quiet_net();
    let (mut sv, peer, s) = established::<A>(&net);
    let m0 = net.syscalls().modify;
    sv.l.set_socket_poll_interest(s, Interest::NONE);
    assert_eq!(net.syscalls().modify, m0 + 1);
    sv.l.set_socket_poll_interest(s, Interest::NONE);
    assert_eq!(net.syscalls().modify, m0 + 1, "same interest: no syscall");
    assert_eq!(sv.l.socket_interest(s), Some(Interest::NONE));
    net.peer_send(peer, b"z");
    turn(&mut sv.l);
    assert!(data_of(&sv.l, s).is_empty());
    sv.l.set_socket_poll_interest(s, Interest::from_bits(1));
    assert_eq!(net.syscalls().modify, m0 + 2);
    turn(&mut sv.l);
    assert_eq!(data_of(&sv.l, s), b"z");
    sv.l.close(s, 0, None);
    sv.l.set_socket_poll_interest(s, Interest::NONE);
    assert_eq!(net.syscalls().modify, m0 + 2, "closed: no-op");
    assert_eq!(sv.l.socket_interest(s), None);
}

#[test]
fn paused_socket_still_closes_on_reset() {
    let net = quiet_net();
    let (mut sv, peer, s) = established::<A>(&net);
    sv.l.pause(s);
    net.peer_reset(peer);
    turn(&mut sv.l);
    assert_eq!(
        events(&sv.l, |e| matches!(e, Ev::Close { .. })),
        [Ev::Close {
            s,
            code: 0,
            reason: None
        }]
    );
}

#[test]
fn resume_after_peer_fin_does_not_rearm_reading() {
    let net = quiet_net();
    let (mut sv, peer, s) = established::<A>(&net);
    net.peer_shutdown(peer);
    turn(&mut sv.l);
    sv.l.resume(s);
    assert_eq!(sv.l.socket_interest(s), Some(Interest::NONE));
    for _ in 0..3 {
        turn(&mut sv.l);
    }
    assert_eq!(ends_of(&sv.l, s), 1);
}
