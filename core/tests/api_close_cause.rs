//! Why sockets close (`CloseCause`), and hard send errors: a failed write is not backpressure,
//! the socket closes with the OS error once the running callback returns, and no writable
//! interest is armed for it.

mod support;

mod api_harness;

use api_harness::*;
use support::{quiet_net, Caps};
use usockets_core::{
    CloseCause, ContextCallbacks, Cx, ErrorKind, Interest, OsError, RecvBuf, Settings, SocketId,
};
use usockets_shim_sim::{SimCall, SimError};

sim_config!(A {
    loop_ext: World,
    context_ext: u32,
    socket_ext: u64,
    timer_ext: (),
    poll_ext: (),
});

const EPIPE: OsError = OsError::new(ErrorKind::ConnectionReset, 32);
const ECONNRESET: OsError = OsError::new(ErrorKind::ConnectionReset, 104);

/// `on_data` that answers every chunk twice and notes what each write returned and whether the
/// socket read as closed right after it.
fn answer_twice(cx: &mut Cx<A>, s: SocketId, data: &mut RecvBuf<'_>) {
    rec_data(cx, s, data);
    for _ in 0..2 {
        let n = cx.write(s, b"pong", false);
        note_write(cx, s, n);
    }
}

/// Same with `write2`.
fn answer_with_write2(cx: &mut Cx<A>, s: SocketId, data: &mut RecvBuf<'_>) {
    rec_data(cx, s, data);
    let n = cx.write2(s, b"po", b"ng");
    note_write(cx, s, n);
}

fn note_write(cx: &mut Cx<A>, s: SocketId, n: usize) {
    let what = match (n, cx.is_closed(s)) {
        (0, Some(false)) => "wrote 0, still open",
        (0, _) => "wrote 0, closed",
        (_, Some(false)) => "wrote, open",
        _ => "wrote, closed",
    };
    log(cx, Ev::Note(what, s));
}

fn with_on_data(
    on_data: fn(&mut Cx<A>, SocketId, &mut RecvBuf<'_>),
) -> (
    usockets_shim_sim::SimNet,
    Server<A>,
    usockets_shim_sim::PeerId,
    SocketId,
) {
    let net = quiet_net();
    let (mut sv, peer, s) = established::<A>(&net);
    let cbs: &mut ContextCallbacks<A> = sv.l.context_callbacks_mut(sv.ctx).expect("context");
    cbs.on_data = Some(on_data);
    (net, sv, peer, s)
}

/// The log of `s` from its data on: data, notes, close and release.
fn after_data(l: &usockets_core::Loop<A>, s: SocketId) -> Vec<Ev> {
    events(l, |e| match e {
        Ev::Data { s: x, .. } | Ev::Note(_, x) | Ev::Close { s: x, .. } => *x == s,
        Ev::Released { s: x, .. } => *x == s,
        _ => false,
    })
}

#[test]
fn a_broken_pipe_in_a_callback_closes_after_it_returns_with_the_os_error() {
    let (net, mut sv, peer, s) = with_on_data(answer_twice);
    net.peer_send(peer, b"ping");
    net.peer_close(peer);
    let before = net.syscalls();
    turn(&mut sv.l);
    assert_eq!(
        after_data(&sv.l, s),
        [
            Ev::Data {
                s,
                bytes: b"ping".to_vec(),
                ctx: 1
            },
            Ev::Note("wrote 0, still open", s),
            Ev::Note("wrote 0, still open", s),
            Ev::Close {
                s,
                code: 0,
                reason: None
            },
            Ev::Released {
                s,
                ext: ACCEPTED_EXT
            },
        ],
        "on_close runs after on_data returns, in the same iteration; C sees (0, NULL)"
    );
    assert_eq!(causes_of(&sv.l, s), [CloseCause::Os(EPIPE)]);
    let after = net.syscalls();
    assert_eq!(
        after.send - before.send,
        1,
        "the failed socket takes no second send"
    );
    assert_eq!(
        after.modify, before.modify,
        "no writable interest is armed for a dead connection"
    );
    assert_eq!(net.open_fds(), 1, "only the listener is left");
}

#[test]
fn write2_hard_error_is_not_backpressure_either() {
    let (net, mut sv, peer, s) = with_on_data(answer_with_write2);
    net.peer_send(peer, b"ping");
    net.peer_close(peer);
    let modify = net.syscalls().modify;
    turn(&mut sv.l);
    assert!(after_data(&sv.l, s).contains(&Ev::Note("wrote 0, still open", s)));
    assert_eq!(causes_of(&sv.l, s), [CloseCause::Os(EPIPE)]);
    assert_eq!(net.syscalls().modify, modify);
}

#[test]
fn a_failed_write_outside_callbacks_closes_at_the_start_of_the_next_iteration() {
    let net = quiet_net();
    let (mut sv, peer, s) = established::<A>(&net);
    net.peer_close(peer);
    assert_eq!(sv.l.write(s, b"late", false), 0);
    assert_eq!(sv.l.is_closed(s), Some(false), "not closed inside write");
    assert!(causes_of(&sv.l, s).is_empty(), "no on_close inside write");
    assert_eq!(sv.l.write(s, b"again", false), 0);
    assert_eq!(sv.l.socket_interest(s), Some(Interest::READABLE));
    turn(&mut sv.l);
    assert_eq!(causes_of(&sv.l, s), [CloseCause::Os(EPIPE)]);
    assert_eq!(sv.l.is_closed(s), None, "closed and released");
}

#[test]
fn would_block_is_backpressure_not_an_error() {
    let net = quiet_net();
    let (mut sv, _peer, s) = established::<A>(&net);
    let modify = net.syscalls().modify;
    let big = vec![7u8; 1 << 20];
    let n = sv.l.write(s, &big, false);
    assert!(n < big.len(), "the simulated socket buffer is smaller");
    assert_eq!(
        sv.l.socket_interest(s),
        Some(Interest::BOTH),
        "a short write arms on_writable"
    );
    assert_eq!(net.syscalls().modify, modify + 1);
    assert_eq!(sv.l.write(s, &big, false), 0, "full: would-block");
    turn(&mut sv.l);
    assert!(causes_of(&sv.l, s).is_empty(), "still open");
}

#[test]
fn a_refused_interest_change_closes_with_the_pollers_error() {
    let net = quiet_net();
    let (mut sv, _peer, s) = established::<A>(&net);
    let enomem = SimError::new(ErrorKind::OutOfMemory, 12);
    net.fail_next(SimCall::Modify, enomem, 1);
    sv.l.pause(s);
    assert_eq!(sv.l.is_closed(s), Some(false), "no on_close inside pause");
    turn(&mut sv.l);
    assert_eq!(
        causes_of(&sv.l, s),
        [CloseCause::Os(OsError::new(ErrorKind::OutOfMemory, 12))]
    );
}

#[test]
fn user_close_carries_its_code_and_reason() {
    let net = quiet_net();
    let (mut sv, _peer, s) = established::<A>(&net);
    sv.l.close(s, 1001, Some(9));
    assert_eq!(
        causes_of(&sv.l, s),
        [CloseCause::User {
            code: 1001,
            reason: Some(9)
        }]
    );
    assert_eq!(
        CloseCause::User {
            code: 1001,
            reason: Some(9)
        }
        .code_and_reason(),
        (1001, Some(9))
    );
}

#[test]
fn the_peers_fin_after_our_shutdown_is_finished() {
    let net = quiet_net();
    let (mut sv, peer, s) = established::<A>(&net);
    sv.l.shutdown(s);
    net.peer_close(peer);
    support::run_until(&mut sv.l, 5, |l| closes_of(l, s) == 1);
    assert_eq!(causes_of(&sv.l, s), [CloseCause::Finished]);
}

#[test]
fn our_shutdown_after_the_peers_fin_is_finished() {
    let net = quiet_net();
    let (mut sv, peer, s) = established::<A>(&net);
    net.peer_shutdown(peer);
    support::run_until(&mut sv.l, 5, |l| ends_of(l, s) == 1);
    sv.l.shutdown(s);
    assert_eq!(causes_of(&sv.l, s), [CloseCause::Finished]);
}

#[test]
fn a_reset_while_reading_is_the_recv_error() {
    let net = quiet_net();
    let (mut sv, peer, s) = established::<A>(&net);
    net.peer_reset(peer);
    support::run_until(&mut sv.l, 5, |l| closes_of(l, s) == 1);
    assert_eq!(causes_of(&sv.l, s), [CloseCause::Os(ECONNRESET)]);
}

#[test]
fn a_reset_while_paused_is_the_pending_socket_error() {
    let net = quiet_net();
    let (mut sv, peer, s) = established::<A>(&net);
    sv.l.pause(s);
    net.peer_reset(peer);
    support::run_until(&mut sv.l, 5, |l| closes_of(l, s) == 1);
    assert_eq!(
        causes_of(&sv.l, s),
        [CloseCause::Os(ECONNRESET)],
        "read from SO_ERROR, since nothing is read while paused"
    );
}

#[test]
fn both_directions_done_while_paused_is_a_hang_up() {
    let net = quiet_net();
    let (mut sv, peer, s) = established::<A>(&net);
    sv.l.shutdown(s);
    sv.l.pause(s);
    net.peer_close(peer);
    support::run_until(&mut sv.l, 5, |l| closes_of(l, s) == 1);
    assert_eq!(causes_of(&sv.l, s), [CloseCause::HangUp]);
}

#[test]
fn context_close_says_so() {
    let net = quiet_net();
    let (mut sv, _peer, s) = established::<A>(&net);
    sv.l.context_close(sv.ctx);
    assert_eq!(causes_of(&sv.l, s), [CloseCause::ContextClosed]);
}

#[test]
fn every_library_cause_reaches_c_as_zero_and_null() {
    for cause in [
        CloseCause::<u32>::Finished,
        CloseCause::HangUp,
        CloseCause::Os(EPIPE),
        CloseCause::ContextClosed,
    ] {
        assert_eq!(cause.code_and_reason(), (0, None), "{cause:?}");
    }
}

#[test]
fn a_failing_socket_closed_by_the_user_first_closes_once() {
    let net = quiet_net();
    let caps = Caps::default();
    let (mut sv, peer, s) = established_on::<A>(&net, caps, Settings::default());
    net.peer_close(peer);
    assert_eq!(sv.l.write(s, b"x", false), 0);
    sv.l.close(s, 5, None);
    turn(&mut sv.l);
    turn(&mut sv.l);
    assert_eq!(
        causes_of(&sv.l, s),
        [CloseCause::User {
            code: 5,
            reason: None
        }],
        "one on_close: the user's"
    );
}
