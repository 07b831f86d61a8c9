//! Listen sockets (`us_socket_context_listen`, `_listen_unix`, `us_listen_socket_close`), the
//! accept path (`on_pre_open`, `on_open` arguments, `us_adopt_accepted_socket`) and how the
//! listener copes with a full socket arena and with descriptor exhaustion.

mod support;

mod api_harness;

use api_harness::*;
use support::{quiet_net, Caps, SimNet};
use usockets_core::{
    AdoptError, Cx, ErrorKind, ListenError, ListenOptions, ListenTarget, OsError, Settings,
    SocketId,
};
use usockets_shim_sim::{SimCall, SimError, SimFd};

sim_config!(A {
    loop_ext: World,
    context_ext: u32,
    socket_ext: u64,
    timer_ext: (),
    poll_ext: (),
});

fn mapped_localhost() -> Vec<u8> {
    std::net::Ipv4Addr::LOCALHOST
        .to_ipv6_mapped()
        .octets()
        .to_vec()
}

fn open_event(l: &usockets_core::Loop<A>, s: SocketId) -> Ev {
    events(l, |e| matches!(e, Ev::Open { s: o, .. } if *o == s))
        .pop()
        .expect("on_open")
}

// ---- listen -----------------------------------------------------------------------------

#[test]
fn listen_on_port_zero_picks_an_ephemeral_port_peers_can_reach() {
    let net = quiet_net();
    let mut sv = server::<A>(&net);
    assert_ne!(sv.port, 0);
    let (_peer, s) = accept(&net, &mut sv.l, sv.port);
    assert_eq!(sv.l.local_port(s), Some(sv.port));
}

#[test]
fn listen_on_every_interface_is_dual_stack_with_ipv4_mapped_peers() {
    let net = quiet_net();
    let mut sv = server_on::<A>(&net, Caps::default(), Settings::default(), None);
    let (_peer, s) = accept(&net, &mut sv.l, sv.port);
    assert_eq!(
        open_event(&sv.l, s),
        Ev::Open {
            s,
            client: false,
            ip: mapped_localhost(),
            ctx: 1
        }
    );
}

#[test]
fn listen_on_ipv6_loopback_gives_16_byte_ip() {
    let net = quiet_net();
    let mut sv = server_on::<A>(&net, Caps::default(), Settings::default(), Some("::1"));
    let (_peer, s) = accept(&net, &mut sv.l, sv.port);
    let Ev::Open { client, ip, .. } = open_event(&sv.l, s) else {
        unreachable!()
    };
    assert!(!client);
    assert_eq!(ip, mapped_localhost());
}

#[test]
fn listen_on_ipv4_gives_4_byte_ip() {
    let net = quiet_net();
    let mut sv = server_on::<A>(
        &net,
        Caps::default(),
        Settings::default(),
        Some("127.0.0.1"),
    );
    let (_peer, s) = accept(&net, &mut sv.l, sv.port);
    let Ev::Open { client, ip, .. } = open_event(&sv.l, s) else {
        unreachable!()
    };
    assert!(!client);
    assert_eq!(ip, [127, 0, 0, 1]);
}

#[test]
fn accepted_socket_is_established_with_its_listener_and_accepted_ext() {
    let net = quiet_net();
    let mut sv = server::<A>(&net);
    let (_peer, s) = accept(&net, &mut sv.l, sv.port);
    assert_eq!(sv.l.is_established(s), Some(true));
    assert_eq!(sv.l.socket_listener(s), Some(sv.ls));
    assert_eq!(sv.l.socket_context(s), Some(sv.ctx));
    assert_eq!(sv.l.socket_ext(s), Some(&ACCEPTED_EXT));
    assert_eq!(sv.l.listen_context(sv.ls), Some(sv.ctx));
}

#[test]
fn listen_unix_accepts_unix_peers_with_an_empty_ip() {
    let net = quiet_net();
    let mut l = make_loop::<A>(&net, Caps::default(), Settings::default());
    let ctx = l.context_create(1, recorder()).unwrap();
    let path = "/tmp/api_listen.sock";
    let ls = l
        .listen(
            ctx,
            ListenTarget::Unix(path),
            ListenOptions::default(),
            accepted_ext,
        )
        .unwrap();
    assert_eq!(l.listen_port(ls), None, "no port for a unix listener");
    let peer = net.peer_connect_unix(path).expect("unix peer");
    support::run_until(&mut l, 10, |l| !opened(l).is_empty());
    let s = opened(&l)[0];
    assert_eq!(
        open_event(&l, s),
        Ev::Open {
            s,
            client: false,
            ip: vec![],
            ctx: 1
        }
    );
    let mut buf = [0u8; 16];
    assert_eq!(l.remote_address(s, &mut buf), 0);
    assert_eq!(l.remote_port(s), None);
    assert_eq!(l.local_port(s), None);
    net.peer_send(peer, b"over unix");
    turn(&mut l);
    assert_eq!(data_of(&l, s), b"over unix");
    assert_eq!(l.write(s, b"back", false), 4);
    assert_eq!(net.peer_recv(peer), b"back");
}

#[test]
fn listen_unix_path_too_long_is_invalid_input_and_leaks_nothing() {
    let net = quiet_net();
    let mut l = make_loop::<A>(&net, Caps::default(), Settings::default());
    let ctx = l.context_create(1, recorder()).unwrap();
    let fds = net.open_fds();
    let path = format!("/tmp/{}", "x".repeat(120));
    let err = l
        .listen(
            ctx,
            ListenTarget::Unix(&path),
            ListenOptions::default(),
            accepted_ext,
        )
        .unwrap_err();
    assert!(
        matches!(
            err,
            ListenError::Os(OsError {
                kind: ErrorKind::InvalidInput,
                ..
            })
        ),
        "{err:?}"
    );
    assert_eq!(net.open_fds(), fds);
    assert_eq!(l.slots_in_use()[1], 0);
    assert!(!l.is_alive());
}

#[test]
fn listen_on_a_port_in_use_fails_with_addr_in_use_and_leaks_nothing() {
    let net = quiet_net();
    let mut sv = server::<A>(&net);
    let fds = net.open_fds();
    let err =
        sv.l.listen(
            sv.ctx,
            any_host(sv.port),
            ListenOptions::default(),
            accepted_ext,
        )
        .unwrap_err();
    assert_eq!(err, ListenError::Os(OsError::new(ErrorKind::AddrInUse, 98)));
    assert_eq!(net.open_fds(), fds);
    assert_eq!(sv.l.slots_in_use()[1], 1);
}

#[test]
fn listen_on_a_stale_context_is_refused_without_a_syscall() {
    let net = quiet_net();
    let mut l = make_loop::<A>(&net, Caps::default(), Settings::default());
    let ctx = l.context_create(1, recorder()).unwrap();
    l.context_free(ctx).unwrap();
    let listens = net.syscalls().listen;
    assert_eq!(
        l.listen(ctx, any_host(0), ListenOptions::default(), accepted_ext),
        Err(ListenError::InvalidContext)
    );
    assert_eq!(net.syscalls().listen, listens);
}

#[test]
fn listen_with_a_full_arena_fails_before_touching_the_os() {
    let net = quiet_net();
    let caps = Caps {
        listeners: 1,
        ..Caps::default()
    };
    let mut sv = server_on::<A>(&net, caps, Settings::default(), None);
    let (listens, fds) = (net.syscalls().listen, net.open_fds());
    assert_eq!(
        sv.l.listen(sv.ctx, any_host(0), ListenOptions::default(), accepted_ext),
        Err(ListenError::Capacity)
    );
    assert_eq!(net.syscalls().listen, listens);
    assert_eq!(net.open_fds(), fds);
}

#[test]
fn listen_close_stops_accepting() {
    let net = quiet_net();
    let mut sv = server::<A>(&net);
    let fds = net.open_fds();
    sv.l.listen_close(sv.ls);
    assert_eq!(net.open_fds(), fds - 1);
    assert_eq!(sv.l.listen_port(sv.ls), None);
    assert_eq!(sv.l.listen_fd(sv.ls), None);
    assert!(net.peer_connect(sv.port).is_err(), "refused once closed");
    sv.l.listen_close(sv.ls);
    assert_eq!(net.open_fds(), fds - 1, "a second close is a no-op");
    turn(&mut sv.l);
    assert!(opened(&sv.l).is_empty());
}

#[test]
fn listen_socket_memory_is_reclaimed_at_the_end_of_the_iteration() {
    let net = quiet_net();
    let mut sv = server::<A>(&net);
    sv.l.listen_close(sv.ls);
    assert_eq!(sv.l.slots_in_use()[1], 1, "kept until the iteration ends");
    turn(&mut sv.l);
    assert_eq!(sv.l.slots_in_use()[1], 0);
    assert!(!sv.l.is_alive());
}

fn open_then_close_listener(cx: &mut Cx<A>, s: SocketId, client: bool, ip: &[u8]) {
    rec_open(cx, s, client, ip);
    if let Some(ls) = cx.ext().listener {
        cx.listen_close(ls);
    }
}

#[test]
fn listen_close_inside_on_open_stops_the_accept_loop() {
    let net = quiet_net();
    let mut sv = server::<A>(&net);
    sv.l.context_callbacks_mut(sv.ctx).unwrap().on_open = Some(open_then_close_listener);
    sv.l.ext_mut().listener = Some(sv.ls);
    let peers: Vec<_> = (0..3).map(|_| net.peer_connect(sv.port).unwrap()).collect();
    turn(&mut sv.l);
    assert_eq!(
        opened(&sv.l).len(),
        1,
        "no on_open after the listener closed"
    );
    for _ in 0..3 {
        turn(&mut sv.l);
    }
    assert_eq!(opened(&sv.l).len(), 1);
    assert!(!net.peer_is_reset(peers[0]), "the accepted one lives");
    for &p in &peers[1..] {
        assert!(
            net.peer_is_reset(p),
            "never accepted: reset by the closed listener"
        );
    }
    assert_eq!(sv.l.slots_in_use()[1], 0);
}

// ---- on_pre_open and adopt_accepted -----------------------------------------------------

#[test]
fn pre_open_gets_context_descriptor_and_ip_and_adopt_opens_normally() {
    let net = quiet_net();
    let mut sv = server::<A>(&net);
    sv.l.ext_mut().pre_open = Some(PreOpen::Adopt);
    let (_peer, s) = accept(&net, &mut sv.l, sv.port);
    let fd = sv.l.socket_fd(s).expect("descriptor").number();
    let seq = events(&sv.l, |e| matches!(e, Ev::PreOpen { .. } | Ev::Open { .. }));
    assert_eq!(
        seq,
        [
            Ev::PreOpen {
                ctx: sv.ctx,
                fd,
                ip: mapped_localhost()
            },
            Ev::Open {
                s,
                client: false,
                ip: mapped_localhost(),
                ctx: 1
            }
        ]
    );
}

/// A server whose `on_pre_open` takes every descriptor; returns the taken fd and its peer.
fn take_one(net: &SimNet) -> (Server<A>, usockets_shim_sim::PeerId, SimFd) {
    let mut sv = server::<A>(net);
    sv.l.ext_mut().pre_open = Some(PreOpen::Taken);
    let peer = net.peer_connect(sv.port).unwrap();
    support::run_until(&mut sv.l, 10, |l| !l.ext().taken.is_empty());
    let fd = sv.l.ext_mut().taken.remove(0);
    (sv, peer, fd)
}

#[test]
fn pre_open_taken_means_the_library_forgets_the_descriptor() {
    let net = quiet_net();
    let (mut sv, peer, fd) = take_one(&net);
    turn(&mut sv.l);
    assert!(
        opened(&sv.l).is_empty(),
        "no on_open for a taken descriptor"
    );
    assert_eq!(sv.l.socket_slots_in_use(), 0);
    sv.l.listen_close(sv.ls);
    turn(&mut sv.l);
    assert_eq!(
        net.open_fds(),
        1,
        "only the taken descriptor is left open: the app's"
    );
    assert!(!net.peer_got_fin(peer) && !net.peer_is_reset(peer));
    drop(fd);
    assert_eq!(
        net.open_fds(),
        0,
        "the app's descriptor closes when it drops it"
    );
    assert!(net.peer_got_fin(peer));
}

#[test]
fn adopt_accepted_wraps_a_descriptor_and_opens_synchronously() {
    let net = quiet_net();
    let (mut sv, peer, fd) = take_one(&net);
    let ctx2 = sv.l.context_create(2, recorder()).unwrap();
    let ip = mapped_localhost();
    let number = fd.number();
    let s = sv.l.adopt_accepted(ctx2, fd, 555, &ip).unwrap();
    assert_eq!(
        sv.l.ext().log.last(),
        Some(&Ev::Open {
            s,
            client: false,
            ip: ip.clone(),
            ctx: 2
        }),
        "on_open fires inside adopt_accepted"
    );
    assert_eq!(sv.l.socket_context(s), Some(ctx2));
    assert_eq!(sv.l.socket_ext(s), Some(&555));
    assert_eq!(sv.l.socket_fd(s).map(SimFd::number), Some(number));
    assert_eq!(sv.l.socket_listener(s), None);
    assert_eq!(sv.l.is_established(s), Some(true));
    net.peer_send(peer, b"to adopted");
    turn(&mut sv.l);
    assert_eq!(data_of(&sv.l, s), b"to adopted");
    assert_eq!(sv.l.write(s, b"from adopted", false), 12);
    assert_eq!(net.peer_recv(peer), b"from adopted");
}

#[test]
fn adopt_accepted_into_a_stale_context_fails_and_leaves_the_descriptor_alone() {
    let net = quiet_net();
    let (mut sv, peer, fd) = take_one(&net);
    let gone = sv.l.context_create(2, recorder()).unwrap();
    sv.l.context_free(gone).unwrap();
    let fds = net.open_fds();
    let number = fd.number();
    let refused = sv.l.adopt_accepted(gone, fd, 1, &[]).unwrap_err();
    assert_eq!(refused.error, AdoptError::InvalidContext);
    let fd = refused.into_fd();
    assert_eq!(
        fd.number(),
        number,
        "the descriptor comes back to its owner"
    );
    assert_eq!(net.open_fds(), fds, "still open");
    assert!(!net.peer_got_fin(peer));
    assert_eq!(sv.l.socket_slots_in_use(), 0);
    let s =
        sv.l.adopt_accepted(sv.ctx, fd, 1, &[])
            .expect("adoptable again");
    assert_eq!(sv.l.is_established(s), Some(true));
}

#[test]
fn adopt_accepted_rejects_a_descriptor_that_is_not_a_socket() {
    let net = quiet_net();
    let mut sv = server::<A>(&net);
    let (r, _w) = net.user_pipe();
    let rejected = sv.l.adopt_accepted(sv.ctx, r, 1, &[]).unwrap_err();
    assert!(
        matches!(rejected.error, AdoptError::Os(e) if e.kind == ErrorKind::InvalidInput),
        "{rejected:?}"
    );
    assert_eq!(
        net.open_fds(),
        3,
        "the pipe end comes back open (pipe ends and the listener)"
    );
    assert_eq!(sv.l.socket_slots_in_use(), 0);
    assert!(opened(&sv.l).is_empty());
}

#[test]
fn one_readable_event_accepts_every_pending_peer_up_to_the_cap() {
    let net = quiet_net();
    let mut sv = server::<A>(&net);
    for _ in 0..5 {
        net.peer_connect(sv.port).unwrap();
    }
    turn(&mut sv.l);
    assert_eq!(opened(&sv.l).len(), 5, "accepts until would-block");

    let settings = Settings::default().with_max_accepts_per_event(2);
    let mut capped = server_on::<A>(&net, Caps::default(), settings, None);
    for _ in 0..5 {
        net.peer_connect(capped.port).unwrap();
    }
    turn(&mut capped.l);
    assert_eq!(opened(&capped.l).len(), 2);
    turn(&mut capped.l);
    turn(&mut capped.l);
    assert_eq!(opened(&capped.l).len(), 5, "the rest on later events");
}

fn open_then_close_socket(cx: &mut Cx<A>, s: SocketId, client: bool, ip: &[u8]) {
    rec_open(cx, s, client, ip);
    cx.close(s, 1, None);
}

#[test]
fn closing_the_socket_inside_on_open_keeps_accepting_others() {
    let net = quiet_net();
    let mut sv = server::<A>(&net);
    sv.l.context_callbacks_mut(sv.ctx).unwrap().on_open = Some(open_then_close_socket);
    let peers: Vec<_> = (0..3).map(|_| net.peer_connect(sv.port).unwrap()).collect();
    turn(&mut sv.l);
    assert_eq!(opened(&sv.l).len(), 3);
    assert_eq!(count(&sv.l, |e| matches!(e, Ev::Close { code: 1, .. })), 3);
    for p in peers {
        assert!(net.peer_got_fin(p));
    }
    assert_eq!(sv.l.socket_slots_in_use(), 0);
}

#[test]
fn listen_on_an_address_the_host_does_not_have_fails() {
    let net = quiet_net();
    let mut l = make_loop::<A>(&net, Caps::default(), Settings::default());
    let ctx = l.context_create(1, recorder()).unwrap();
    let target = ListenTarget::Host {
        host: Some("10.1.2.3"),
        port: 0,
    };
    assert_eq!(
        l.listen(ctx, target, ListenOptions::default(), accepted_ext),
        Err(ListenError::Os(OsError::new(
            ErrorKind::AddrNotAvailable,
            99
        )))
    );
    assert_eq!(net.open_fds(), 0);
}

#[test]
fn listen_options_reach_the_os_backlog() {
    let net = quiet_net();
    let mut l = make_loop::<A>(&net, Caps::default(), Settings::default());
    let ctx = l.context_create(1, recorder()).unwrap();
    let options = ListenOptions::default().with_backlog(2);
    let ls = l.listen(ctx, any_host(0), options, accepted_ext).unwrap();
    let port = l.listen_port(ls).unwrap();
    assert!(net.peer_connect(port).is_ok());
    assert!(net.peer_connect(port).is_ok());
    assert!(net.peer_connect(port).is_err(), "a backlog of 2 is full");
}

#[test]
fn adopt_accepted_propagates_a_registration_error_and_returns_the_descriptor() {
    let net = quiet_net();
    let (mut sv, peer, fd) = take_one(&net);
    sv.l.ext_mut().echo = true;
    net.fail_next(
        SimCall::Register,
        SimError::new(ErrorKind::OutOfMemory, 12),
        1,
    );
    let rejected = sv.l.adopt_accepted(sv.ctx, fd, 1, &[]).unwrap_err();
    assert_eq!(
        rejected.error,
        AdoptError::Os(OsError::new(ErrorKind::OutOfMemory, 12)),
        "ENOMEM from the poller is reported, not ignored"
    );
    assert_eq!(
        sv.l.socket_slots_in_use(),
        0,
        "no slot kept for the failed adoption"
    );
    assert!(opened(&sv.l).is_empty());
    // The descriptor is the caller's again, still connected: adopting it now works.
    let s =
        sv.l.adopt_accepted(sv.ctx, rejected.into_fd(), 1, &[])
            .expect("adopt");
    net.peer_send(peer, b"unaffected");
    turn(&mut sv.l);
    assert_eq!(data_of(&sv.l, s), b"unaffected");
    assert_eq!(net.peer_recv(peer), b"unaffected", "echoed");
}
