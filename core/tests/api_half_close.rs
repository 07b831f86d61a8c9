//! Half-close and hang-ups (`us_socket_shutdown`, `_shutdown_read`, `_is_shut_down`, `on_end`):
//! FIN in both directions, and data that arrived before a hang-up is delivered before the
//! close, observed through the simulated network.

mod support;

mod api_harness;

use api_harness::*;
use support::{quiet_net, Faults};
use usockets_core::{Interest, Loop};

sim_config!(A {
    loop_ext: World,
    context_ext: u32,
    socket_ext: u64,
    timer_ext: (),
    poll_ext: (),
});

// ---- half-close -------------------------------------------------------------------------

#[test]
fn peer_fin_calls_on_end_stops_reading_and_socket_can_still_write() {
    let net = quiet_net();
    let (mut sv, peer, s) = established::<A>(&net);
    net.peer_shutdown(peer);
    turn(&mut sv.l);
    assert_eq!(ends_of(&sv.l, s), 1);
    assert_eq!(
        sv.l.socket_interest(s),
        Some(Interest::NONE),
        "readable dropped"
    );
    assert_eq!(sv.l.is_closed(s), Some(false), "half-closed, not closed");
    assert_eq!(sv.l.write(s, b"response", false), 8);
    assert_eq!(net.peer_recv(peer), b"response");
    for _ in 0..3 {
        turn(&mut sv.l);
    }
    assert_eq!(ends_of(&sv.l, s), 1, "on_end once, no storm");
    assert_eq!(closes_of(&sv.l, s), 0);
}

#[test]
fn shutdown_after_peer_fin_closes_with_code_zero() {
    let net = quiet_net();
    let (mut sv, peer, s) = established::<A>(&net);
    net.peer_shutdown(peer);
    turn(&mut sv.l);
    assert_eq!(ends_of(&sv.l, s), 1);
    sv.l.shutdown(s);
    assert_eq!(
        sv.l.ext().log.last(),
        Some(&Ev::Close {
            s,
            code: 0,
            reason: None
        }),
        "closes synchronously inside shutdown"
    );
    assert!(net.peer_got_fin(peer));
}

#[test]
fn peer_fin_after_our_shutdown_closes_without_on_end() {
    let net = quiet_net();
    let (mut sv, peer, s) = established::<A>(&net);
    assert_eq!(sv.l.is_shut_down(s), Some(false));
    sv.l.shutdown(s);
    assert_eq!(sv.l.is_shut_down(s), Some(true));
    assert!(net.peer_got_fin(peer));
    assert_eq!(sv.l.is_closed(s), Some(false));
    net.peer_send(peer, b"still reading");
    turn(&mut sv.l);
    assert_eq!(
        data_of(&sv.l, s),
        b"still reading",
        "the read side stays open"
    );
    net.peer_shutdown(peer);
    turn(&mut sv.l);
    assert_eq!(ends_of(&sv.l, s), 0);
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
fn shutdown_is_idempotent() {
    let net = quiet_net();
    let (mut sv, peer, s) = established::<A>(&net);
    let sh0 = net.syscalls().shutdown;
    sv.l.shutdown(s);
    sv.l.shutdown(s);
    assert_eq!(net.syscalls().shutdown, sh0 + 1);
    assert_eq!(sv.l.is_shut_down(s), Some(true));
    assert_eq!(closes_of(&sv.l, s), 0);
    assert!(net.peer_got_fin(peer));
    sv.l.close(s, 0, None);
    turn(&mut sv.l);
    assert_eq!(sv.l.is_shut_down(s), None, "released handle");
}

#[test]
fn shutdown_read_makes_the_next_iteration_see_eof() {
    let net = quiet_net();
    let (mut sv, _peer, s) = established::<A>(&net);
    sv.l.shutdown_read(s);
    assert_eq!(ends_of(&sv.l, s), 0, "deferred, not synchronous");
    turn(&mut sv.l);
    assert_eq!(ends_of(&sv.l, s), 1);
}

#[test]
fn short_write_on_half_open_socket_does_not_rearm_readable() {
    let net = faulty_net(Faults::NONE);
    let (mut sv, peer, s) = established::<A>(&net);
    net.peer_shutdown(peer);
    turn(&mut sv.l);
    assert_eq!(ends_of(&sv.l, s), 1);
    net.set_faults(partial_writes());
    let msg = [5u8; 64];
    let n = sv.l.write(s, &msg, false);
    net.set_faults(Faults::NONE);
    assert!(n < msg.len());
    assert_eq!(sv.l.socket_interest(s), Some(Interest::WRITABLE));
    sv.l.ext_mut().pending = msg[n..].to_vec();
    for _ in 0..5 {
        turn(&mut sv.l);
    }
    assert_eq!(ends_of(&sv.l, s), 1, "no on_end storm");
    assert_eq!(count(&sv.l, |e| *e == Ev::Writable(s)), 1);
    assert_eq!(sv.l.socket_interest(s), Some(Interest::NONE));
    assert_eq!(net.peer_recv(peer), msg);
}

#[test]
fn data_and_fin_after_our_shutdown_are_delivered_before_the_close() {
    let net = quiet_net();
    let (mut sv, peer, s) = established::<A>(&net);
    sv.l.shutdown(s);
    net.peer_send(peer, b"final answer");
    net.peer_shutdown(peer);
    for _ in 0..3 {
        turn(&mut sv.l);
    }
    assert_eq!(
        events(&sv.l, |e| matches!(
            e,
            Ev::Data { .. } | Ev::Close { .. } | Ev::End(_)
        )),
        [
            Ev::Data {
                s,
                bytes: b"final answer".to_vec(),
                ctx: 1
            },
            Ev::Close {
                s,
                code: 0,
                reason: None
            }
        ]
    );
}

// ---- data before a hang-up --------------------------------------------------------------

fn position(l: &Loop<A>, f: impl Fn(&Ev) -> bool) -> Option<usize> {
    l.ext().log.iter().position(f)
}

#[test]
fn data_then_peer_close_delivers_all_data_before_on_end() {
    let net = quiet_net();
    let (mut sv, peer, s) = established::<A>(&net);
    net.peer_send(peer, b"last words");
    net.peer_close(peer);
    for _ in 0..4 {
        turn(&mut sv.l);
    }
    assert_eq!(data_of(&sv.l, s), b"last words");
    let data_at = position(&sv.l, |e| matches!(e, Ev::Data { .. })).unwrap();
    let end_at = position(&sv.l, |e| *e == Ev::End(s)).expect("on_end after FIN");
    assert!(data_at < end_at, "data before on_end");
    if let Some(close_at) = position(&sv.l, |e| matches!(e, Ev::Close { .. })) {
        assert!(data_at < close_at);
    }
}

#[test]
fn data_then_peer_reset_closes_with_code_zero_and_no_on_end() {
    let net = quiet_net();
    let (mut sv, peer, s) = established::<A>(&net);
    net.peer_send(peer, b"abc");
    turn(&mut sv.l);
    assert_eq!(data_of(&sv.l, s), b"abc");
    net.peer_reset(peer);
    turn(&mut sv.l);
    assert_eq!(
        events(&sv.l, |e| matches!(e, Ev::Close { .. } | Ev::End(_))),
        [Ev::Close {
            s,
            code: 0,
            reason: None
        }]
    );
    assert_eq!(sv.l.write(s, b"x", false), 0);
}

#[test]
fn abrupt_hangup_with_unread_data_delivers_the_data_first() {
    let net = faulty_net(Faults::NONE);
    let (mut sv, peer, s) = established::<A>(&net);
    net.peer_send(peer, b"unread tail");
    net.set_faults(Faults {
        hangup_with_unread: 1000,
        ..Faults::NONE
    });
    assert_eq!(sv.l.write(s, b"ping", false), 4);
    net.set_faults(Faults::NONE);
    assert_eq!(net.fault_counts().hangup_with_unread, 1);
    for _ in 0..5 {
        turn(&mut sv.l);
    }
    assert_eq!(
        data_of(&sv.l, s),
        b"unread tail",
        "the peer's last bytes are not lost"
    );
    let data_at = position(&sv.l, |e| matches!(e, Ev::Data { .. })).unwrap();
    let close_at = position(&sv.l, |e| matches!(e, Ev::Close { .. })).expect("closed");
    assert!(data_at < close_at);
    if let Some(end_at) = position(&sv.l, |e| *e == Ev::End(s)) {
        assert!(data_at < end_at);
    }
    assert_eq!(closes_of(&sv.l, s), 1);
}
