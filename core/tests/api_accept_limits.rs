//! What a listener does when it runs out: a full socket arena sheds connections and pauses
//! accepting until a slot is released; descriptor exhaustion (EMFILE) backs it off instead of
//! spinning, and it recovers when descriptors free up.

mod support;

mod api_harness;

use api_harness::*;
use support::{quiet_net, Caps, Faults, SimNet};
use usockets_core::{ErrorKind, Settings};
use usockets_shim_sim::{SimCall, SimError};

sim_config!(A {
    loop_ext: World,
    context_ext: u32,
    socket_ext: u64,
    timer_ext: (),
    poll_ext: (),
});

#[test]
fn full_socket_arena_sheds_new_connections_and_recovers_after_a_release() {
    let net = quiet_net();
    let caps = Caps {
        sockets: 2,
        ..Caps::default()
    };
    let mut sv = server_on::<A>(&net, caps, Settings::default(), None);
    sv.l.ext_mut().echo = true;
    let peers: Vec<_> = (0..3).map(|_| net.peer_connect(sv.port).unwrap()).collect();
    turn(&mut sv.l);
    assert_eq!(opened(&sv.l).len(), 2);
    let shed = peers[2];
    assert!(
        net.peer_got_fin(shed) || net.peer_is_reset(shed),
        "the third connection is shed"
    );
    let late = net.peer_connect(sv.port).unwrap();
    let accepts = net.syscalls().accept;
    for _ in 0..3 {
        turn(&mut sv.l);
    }
    assert_eq!(
        net.syscalls().accept,
        accepts,
        "a paused listener does not spin"
    );
    assert_eq!(opened(&sv.l).len(), 2);
    let first = opened(&sv.l)[0];
    sv.l.close(first, 0, None);
    support::run_until(&mut sv.l, 5, |l| opened(l).len() == 3);
    net.peer_send(late, b"served");
    turn(&mut sv.l);
    assert_eq!(net.peer_recv(late), b"served");
}

/// Drives the loop over `ms` of virtual time; returns the accept and wait calls made.
fn drive_for(net: &SimNet, sv: &mut Server<A>, ms: u64) -> (u64, u64) {
    let start = (net.now_ms(), net.syscalls());
    let mut iterations = 0;
    while net.now_ms() < start.0 + ms {
        sv.l.run_once(Some(1000)).unwrap();
        iterations += 1;
        assert!(iterations < 1000, "time does not pass: the loop spins");
    }
    let end = net.syscalls();
    (end.accept - start.1.accept, end.wait - start.1.wait)
}

#[test]
fn descriptor_exhaustion_backs_the_listener_off_then_recovers() {
    let net = quiet_net();
    let mut sv = server::<A>(&net);
    net.set_fd_limit(Some(net.open_fds()));
    let peer = net.peer_connect(sv.port).unwrap();
    let (accepts, waits) = drive_for(&net, &mut sv, 1000);
    assert!(accepts >= 1, "it kept trying");
    assert!(accepts <= 8, "{accepts} accept calls in 1 s: no back-off");
    assert!(waits <= 16, "{waits} waits in 1 s: the loop spins");
    assert!(opened(&sv.l).is_empty());
    net.set_fd_limit(None);
    support::run_until(&mut sv.l, 10, |l| !opened(l).is_empty());
    sv.l.ext_mut().echo = true;
    net.peer_send(peer, b"finally");
    turn(&mut sv.l);
    assert_eq!(net.peer_recv(peer), b"finally");
}

#[test]
fn emfile_from_accept_backs_off_then_recovers() {
    let net = faulty_net(Faults {
        emfile_accept: 1000,
        ..Faults::NONE
    });
    let mut sv = server::<A>(&net);
    let _peer = net.peer_connect(sv.port).unwrap();
    let (accepts, _) = drive_for(&net, &mut sv, 1000);
    assert!(net.fault_counts().emfile_accept >= 1);
    assert!(accepts <= 8, "{accepts} accept calls in 1 s: no back-off");
    assert!(opened(&sv.l).is_empty());
    net.set_faults(Faults::NONE);
    support::run_until(&mut sv.l, 10, |l| !opened(l).is_empty());
}

#[test]
fn a_released_socket_ends_the_descriptor_back_off_early() {
    let net = quiet_net();
    let settings = Settings::default().with_accept_backoff_ms(60_000);
    let mut sv = server_on::<A>(&net, Caps::default(), settings, None);
    let (_p1, s1) = accept(&net, &mut sv.l, sv.port);
    net.set_fd_limit(Some(net.open_fds()));
    let _p2 = net.peer_connect(sv.port).unwrap();
    turn(&mut sv.l);
    assert_eq!(opened(&sv.l).len(), 1, "EMFILE: not accepted");
    sv.l.close(s1, 0, None);
    let t0 = net.now_ms();
    support::run_until(&mut sv.l, 5, |l| opened(l).len() == 2);
    assert!(
        net.now_ms() - t0 < 60_000,
        "accepting resumed when a descriptor was freed, not after the back-off"
    );
}

#[test]
fn listen_close_while_backed_off_is_clean() {
    let net = quiet_net();
    let mut sv = server::<A>(&net);
    let (_p1, s1) = accept(&net, &mut sv.l, sv.port);
    net.set_fd_limit(Some(net.open_fds()));
    let p2 = net.peer_connect(sv.port).unwrap();
    turn(&mut sv.l);
    sv.l.listen_close(sv.ls);
    net.set_fd_limit(None);
    sv.l.close(s1, 0, None);
    for _ in 0..3 {
        sv.l.run_once(Some(1000)).unwrap();
    }
    assert_eq!(opened(&sv.l).len(), 1);
    assert!(
        net.peer_is_reset(p2),
        "the pending peer went with the listener"
    );
    assert!(!sv.l.is_alive());
}

/// The listener's pending peer, an accept error core does not know (EPERM: "firewall rules
/// forbid connection", accept(2)) that leaves the connection pending, and 1 s of virtual time:
/// the listener backs off and retries instead of spinning, and accepts once the error is gone.
#[test]
fn an_unknown_accept_error_backs_off_instead_of_spinning() {
    let net = quiet_net();
    let mut sv = server::<A>(&net);
    let eperm = SimError::new(ErrorKind::PermissionDenied, 1);
    net.fail_next(SimCall::Accept, eperm, u32::MAX);
    let peer = net.peer_connect(sv.port).unwrap();
    let (accepts, waits) = drive_for(&net, &mut sv, 1000);
    assert!(accepts >= 2, "it kept retrying ({accepts} accept calls)");
    assert!(accepts <= 8, "{accepts} accept calls in 1 s: no back-off");
    assert!(waits <= 16, "{waits} waits in 1 s: the loop spins");
    assert!(opened(&sv.l).is_empty());
    net.fail_next(SimCall::Accept, eperm, 0);
    support::run_until(&mut sv.l, 10, |l| !opened(l).is_empty());
    sv.l.ext_mut().echo = true;
    net.peer_send(peer, b"after the error");
    turn(&mut sv.l);
    assert_eq!(net.peer_recv(peer), b"after the error");
}

/// Pausing a listener (descriptor exhaustion) when the poller refuses to drop its interest:
/// it is deregistered instead, so it cannot spin; it comes back when descriptors do.
#[test]
fn a_refused_pause_deregisters_the_listener_instead_of_spinning() {
    let net = quiet_net();
    let mut sv = server::<A>(&net);
    let enomem = SimError::new(ErrorKind::OutOfMemory, 12);
    net.fail_next(SimCall::Modify, enomem, u32::MAX);
    net.set_fd_limit(Some(net.open_fds()));
    let peer = net.peer_connect(sv.port).unwrap();
    let deregisters = net.syscalls().deregister;
    let (accepts, waits) = drive_for(&net, &mut sv, 1000);
    assert!((1..=8).contains(&accepts), "{accepts} accept calls in 1 s");
    assert!(waits <= 16, "{waits} waits in 1 s: the loop spins");
    assert!(
        net.syscalls().deregister > deregisters,
        "the refused pause fell back to deregistering"
    );
    assert!(sv.l.listen_fd(sv.ls).is_some(), "the listener stays open");
    net.set_fd_limit(None);
    support::run_until(&mut sv.l, 10, |l| !opened(l).is_empty());
    sv.l.ext_mut().echo = true;
    net.peer_send(peer, b"back");
    turn(&mut sv.l);
    assert_eq!(net.peer_recv(peer), b"back");
}

/// Resuming a paused listener when the poller refuses to re-arm it: another back-off (the
/// listener is kept, not closed), and it resumes once the poller accepts.
#[test]
fn a_refused_resume_backs_off_again_and_keeps_the_listener() {
    let net = quiet_net();
    let mut sv = server::<A>(&net);
    net.set_fd_limit(Some(net.open_fds()));
    let _peer = net.peer_connect(sv.port).unwrap();
    turn(&mut sv.l);
    assert!(opened(&sv.l).is_empty(), "paused by EMFILE");
    net.set_fd_limit(None);
    // Every re-arm fails for a while: the listener must neither spin nor be given up.
    let enomem = SimError::new(ErrorKind::OutOfMemory, 12);
    net.fail_next(SimCall::Modify, enomem, u32::MAX);
    let modifies = net.syscalls().modify;
    let (_, waits) = drive_for(&net, &mut sv, 1000);
    assert!(waits <= 16, "{waits} waits in 1 s: the loop spins");
    let retries = net.syscalls().modify - modifies;
    assert!(
        (1..=8).contains(&retries),
        "{retries} re-arm attempts in 1 s: not one per back-off"
    );
    assert!(sv.l.listen_fd(sv.ls).is_some(), "the listener is kept");
    assert!(sv.l.is_alive());
    net.fail_next(SimCall::Modify, enomem, 0);
    support::run_until(&mut sv.l, 10, |l| !opened(l).is_empty());
}

/// A listener that can be neither paused nor deregistered cannot be silenced: it is closed
/// rather than left to spin the loop.
#[test]
fn a_listener_that_cannot_be_silenced_is_closed_not_spun() {
    let net = quiet_net();
    let mut sv = server::<A>(&net);
    let enomem = SimError::new(ErrorKind::OutOfMemory, 12);
    net.fail_next(SimCall::Modify, enomem, u32::MAX);
    net.fail_next(SimCall::Deregister, enomem, u32::MAX);
    net.set_fd_limit(Some(net.open_fds()));
    let peer = net.peer_connect(sv.port).unwrap();
    turn(&mut sv.l);
    assert!(sv.l.listen_fd(sv.ls).is_none(), "closed");
    assert!(net.peer_is_reset(peer), "its pending peer is reset");
    assert!(!sv.l.is_alive(), "nothing keeps the loop running");
}
