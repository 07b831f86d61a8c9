//! Socket I/O (`us_socket_write`, `write2`, `flush`, `shutdown`, `on_data`, `on_writable`,
//! `on_end`): the hot path, the receive buffer, half-close and hang-ups, observed through the
//! simulated network (what the peer receives, callbacks and their arguments, shim call counts).
//! Close, release, addresses and pause/resume are in `api_socket_lifecycle.rs`.

mod support;

mod api_harness;

use api_harness::*;
use support::{quiet_net, Caps, Faults};
use usockets_core::{Cx, Interest, RecvBuf, Settings, SocketId};

sim_config!(A {
    loop_ext: World,
    context_ext: u32,
    socket_ext: u64,
    timer_ext: (),
    poll_ext: (),
});

// ---- write ------------------------------------------------------------------------------

#[test]
fn write_returns_bytes_accepted_and_peer_receives_them() {
    let net = quiet_net();
    let (mut sv, peer, s) = established::<A>(&net);
    let sends = net.syscalls().send;
    assert_eq!(sv.l.write(s, b"hello", false), 5);
    assert_eq!(net.syscalls().send, sends + 1);
    assert_eq!(net.peer_recv(peer), b"hello");
    assert_eq!(sv.l.socket_interest(s), Some(Interest::READABLE));
}

#[test]
fn write_on_closed_socket_returns_zero_without_a_send() {
    let net = quiet_net();
    let (mut sv, peer, s) = established::<A>(&net);
    sv.l.close(s, 0, None);
    let sends = net.syscalls().send;
    assert_eq!(sv.l.write(s, b"late", false), 0);
    assert_eq!(sv.l.write2(s, b"h", b"p"), 0);
    assert_eq!(net.syscalls().send + net.syscalls().send2, sends);
    turn(&mut sv.l);
    assert_eq!(sv.l.write(s, b"released", false), 0);
    assert!(net.peer_recv(peer).is_empty());
}

#[test]
fn write_after_shutdown_returns_zero() {
    let net = quiet_net();
    let (mut sv, peer, s) = established::<A>(&net);
    sv.l.shutdown(s);
    let sends = net.syscalls().send;
    assert_eq!(sv.l.write(s, b"after fin", false), 0);
    assert_eq!(net.syscalls().send, sends);
    assert!(net.peer_recv(peer).is_empty());
    assert!(net.peer_got_fin(peer));
}

#[test]
fn write_returns_zero_on_would_block_and_arms_writable() {
    let net = quiet_net();
    let (mut sv, peer, s) = established::<A>(&net);
    let big = vec![7u8; 300 * 1024];
    let n = sv.l.write(s, &big, false);
    assert_eq!(n, 256 * 1024, "the peer's receive window takes 256 KiB");
    assert_eq!(
        sv.l.write(s, b"x", false),
        0,
        "a full window is would-block: 0"
    );
    assert_eq!(sv.l.socket_interest(s), Some(Interest::BOTH));
    assert_eq!(count(&sv.l, |e| matches!(e, Ev::Writable(_))), 0);
    assert_eq!(net.peer_recv(peer).len(), n);
    turn(&mut sv.l);
    assert_eq!(count(&sv.l, |e| *e == Ev::Writable(s)), 1);
    assert_eq!(sv.l.socket_interest(s), Some(Interest::READABLE));
}

#[test]
fn short_write_arms_on_writable_which_fires_later_then_interest_drops() {
    let net = faulty_net(Faults::NONE);
    let (mut sv, peer, s) = established::<A>(&net);
    let msg: Vec<u8> = (0..100u8).collect();
    let modify0 = net.syscalls().modify;
    net.set_faults(partial_writes());
    let n = sv.l.write(s, &msg, false);
    net.set_faults(Faults::NONE);
    assert!(n > 0 && n < msg.len(), "short write expected, got {n}");
    assert_eq!(sv.l.socket_interest(s), Some(Interest::BOTH));
    assert_eq!(
        net.syscalls().modify,
        modify0 + 1,
        "arming writable is one modify"
    );
    assert_eq!(
        count(&sv.l, |e| matches!(e, Ev::Writable(_))),
        0,
        "on_writable is never synchronous with the short write"
    );
    sv.l.ext_mut().pending = msg[n..].to_vec();
    turn(&mut sv.l);
    assert_eq!(count(&sv.l, |e| *e == Ev::Writable(s)), 1);
    assert!(sv.l.ext().pending.is_empty());
    assert_eq!(net.peer_recv(peer), msg);
    assert_eq!(sv.l.socket_interest(s), Some(Interest::READABLE));
    assert_eq!(
        net.syscalls().modify,
        modify0 + 2,
        "one modify to drop writable"
    );
    turn(&mut sv.l);
    assert_eq!(
        count(&sv.l, |e| *e == Ev::Writable(s)),
        1,
        "not armed any more"
    );
}

#[test]
fn short_write_inside_on_writable_keeps_writable_interest_until_drained() {
    let net = faulty_net(Faults::NONE);
    let (mut sv, peer, s) = established::<A>(&net);
    let msg: Vec<u8> = (0..200u32).map(|i| (i * 7) as u8).collect();
    net.set_faults(partial_writes());
    let n = sv.l.write(s, &msg, false);
    sv.l.ext_mut().pending = msg[n..].to_vec();
    let modify0 = net.syscalls().modify;
    let mut turns = 0;
    while !sv.l.ext().pending.is_empty() {
        turn(&mut sv.l);
        turns += 1;
        assert!(turns < 300, "never drained");
        if !sv.l.ext().pending.is_empty() {
            assert_eq!(sv.l.socket_interest(s), Some(Interest::BOTH));
            assert_eq!(
                net.syscalls().modify,
                modify0,
                "no interest change while on_writable keeps writing short"
            );
        }
    }
    assert!(
        turns >= 2,
        "partial writes should have needed several rounds"
    );
    assert_eq!(sv.l.socket_interest(s), Some(Interest::READABLE));
    assert_eq!(net.syscalls().modify, modify0 + 1);
    assert_eq!(net.peer_recv(peer), msg);
}

#[test]
fn write2_gathers_header_and_payload_in_one_call() {
    let net = quiet_net();
    let (mut sv, peer, s) = established::<A>(&net);
    let before = net.syscalls();
    assert_eq!(sv.l.write2(s, b"HDR:", b"payload"), 11);
    let after = net.syscalls();
    assert_eq!(after.send2, before.send2 + 1);
    assert_eq!(after.send, before.send);
    assert_eq!(net.peer_recv(peer), b"HDR:payload");
}

#[test]
fn write2_short_write_arms_on_writable() {
    let net = faulty_net(Faults::NONE);
    let (mut sv, peer, s) = established::<A>(&net);
    net.set_faults(partial_writes());
    let n = sv.l.write2(s, b"0123456789", b"abcdefghij");
    net.set_faults(Faults::NONE);
    assert!(n < 20, "short write expected");
    assert_eq!(sv.l.socket_interest(s), Some(Interest::BOTH));
    let all = b"0123456789abcdefghij";
    sv.l.ext_mut().pending = all[n..].to_vec();
    turn(&mut sv.l);
    assert_eq!(count(&sv.l, |e| *e == Ev::Writable(s)), 1);
    assert_eq!(net.peer_recv(peer), all);
}

#[test]
fn write_with_more_then_flush_flushes_exactly_once() {
    let net = quiet_net();
    let (mut sv, peer, s) = established::<A>(&net);
    let f0 = net.syscalls().flush;
    assert_eq!(sv.l.write(s, b"part1", true), 5);
    assert_eq!(sv.l.write(s, b"part2", true), 5);
    sv.l.flush(s);
    assert_eq!(net.syscalls().flush, f0 + 1);
    sv.l.flush(s);
    assert_eq!(net.syscalls().flush, f0 + 1, "nothing held any more");
    assert_eq!(net.peer_recv(peer), b"part1part2");
}

#[test]
fn flush_without_more_makes_no_syscall() {
    let net = quiet_net();
    let (mut sv, _peer, s) = established::<A>(&net);
    let f0 = net.syscalls().flush;
    sv.l.flush(s);
    assert_eq!(sv.l.write(s, b"plain", false), 5);
    sv.l.flush(s);
    assert_eq!(net.syscalls().flush, f0);
}

#[test]
fn flush_after_shutdown_is_a_no_op() {
    let net = quiet_net();
    let (mut sv, _peer, s) = established::<A>(&net);
    assert_eq!(sv.l.write(s, b"held", true), 4);
    sv.l.shutdown(s);
    let f0 = net.syscalls().flush;
    sv.l.flush(s);
    assert_eq!(net.syscalls().flush, f0);
}

// ---- the hot path -----------------------------------------------------------------------

#[test]
fn echo_round_trips_do_one_recv_each_and_no_interest_change() {
    let net = quiet_net();
    let (mut sv, peer, _s) = established::<A>(&net);
    sv.l.ext_mut().echo = true;
    const N: u64 = 50;
    let before = net.syscalls();
    for i in 0..N {
        let msg = format!("request {i}");
        assert_eq!(net.peer_send(peer, msg.as_bytes()), msg.len());
        turn(&mut sv.l);
        assert_eq!(net.peer_recv(peer), msg.as_bytes());
    }
    let after = net.syscalls();
    assert_eq!(after.recv - before.recv, N, "exactly one recv per request");
    assert_eq!(after.send - before.send, N);
    assert_eq!(after.modify, before.modify, "no modify in steady state");
    assert_eq!(after.register, before.register);
    assert_eq!(after.deregister, before.deregister);
}

// ---- on_data ----------------------------------------------------------------------------

#[test]
fn on_data_is_never_empty_even_with_spurious_readiness() {
    let net = faulty_net(Faults {
        spurious_readiness: 1000,
        ..Faults::NONE
    });
    let (mut sv, peer, s) = established::<A>(&net);
    let mut sent = Vec::new();
    for i in 0..20u8 {
        if i % 3 == 0 {
            let chunk = vec![i; usize::from(i) + 1];
            net.peer_send(peer, &chunk);
            sent.extend_from_slice(&chunk);
        }
        turn(&mut sv.l);
    }
    assert!(
        net.fault_counts().spurious_readiness > 0,
        "spurious events were injected"
    );
    for e in &sv.l.ext().log {
        if let Ev::Data { bytes, .. } = e {
            assert!(!bytes.is_empty(), "on_data got an empty buffer");
        }
    }
    assert_eq!(data_of(&sv.l, s), sent);
    assert_eq!(
        sv.l.is_closed(s),
        Some(false),
        "would-block is not a failure"
    );
}

fn padded_on_data(cx: &mut Cx<A>, s: SocketId, buf: &mut RecvBuf<'_>) {
    let data = buf.to_vec();
    let n = data.len();
    let p = buf.padded();
    assert_eq!(p.len(), n + 64, "32 bytes of padding on each side");
    assert_eq!(
        &p[32..32 + n],
        &data[..],
        "data starts after the front padding"
    );
    // A WebSocket parser writes before the data, an HTTP parser fences after it.
    p[..32].fill(0xAA);
    p[32 + n..].fill(0xBB);
    let last = p.len() - 1;
    assert_eq!((p[0], p[last]), (0xAA, 0xBB));
    assert_eq!(
        &buf[..],
        &data[..],
        "writing the padding leaves the data intact"
    );
    buf[0] ^= 0xFF; // the data itself is mutable in place too
    cx.ext_mut().log.push(Ev::Note("padded", s));
}

#[test]
fn recv_buf_padded_exposes_32_writable_bytes_on_each_side() {
    let net = quiet_net();
    let (mut sv, peer, s) = established::<A>(&net);
    sv.l.context_callbacks_mut(sv.ctx).unwrap().on_data = Some(padded_on_data);
    net.peer_send(peer, b"GET / HTTP/1.1\r\n\r\n");
    turn(&mut sv.l);
    assert_eq!(count(&sv.l, |e| *e == Ev::Note("padded", s)), 1);
}

#[test]
fn read_filling_the_buffer_is_read_again_in_the_same_event() {
    let net = quiet_net();
    let caps = Caps {
        recv: 64,
        ..Caps::default()
    };
    let (mut sv, peer, s) = established_on::<A>(&net, caps, Settings::default());
    let msg: Vec<u8> = (0..200u32).map(|i| i as u8).collect();
    net.peer_send(peer, &msg);
    let recv0 = net.syscalls().recv;
    turn(&mut sv.l);
    let sizes: Vec<usize> = events(&sv.l, |e| matches!(e, Ev::Data { .. }))
        .iter()
        .map(|e| match e {
            Ev::Data { bytes, .. } => bytes.len(),
            _ => 0,
        })
        .collect();
    assert_eq!(
        sizes,
        [64, 64, 64, 8],
        "one event, re-read while each read filled the buffer"
    );
    assert_eq!(net.syscalls().recv - recv0, 4);
    assert_eq!(data_of(&sv.l, s), msg);
}

#[test]
fn rereads_per_event_are_capped_by_max_reads_per_event() {
    let net = quiet_net();
    let caps = Caps {
        recv: 64,
        ..Caps::default()
    };
    let settings = Settings::default().with_max_reads_per_event(2);
    let (mut sv, peer, s) = established_on::<A>(&net, caps, settings);
    let msg: Vec<u8> = (0..320u32).map(|i| (i % 251) as u8).collect();
    net.peer_send(peer, &msg);
    turn(&mut sv.l);
    assert_eq!(count(&sv.l, |e| matches!(e, Ev::Data { .. })), 2);
    assert_eq!(data_of(&sv.l, s).len(), 128);
    for _ in 0..5 {
        turn(&mut sv.l);
    }
    assert_eq!(
        data_of(&sv.l, s),
        msg,
        "the rest comes in later events, in order"
    );
}

fn pause_in_on_data(cx: &mut Cx<A>, s: SocketId, buf: &mut RecvBuf<'_>) {
    rec_data(cx, s, buf);
    cx.pause(s);
}

#[test]
fn pause_inside_on_data_stops_the_rereads_of_the_same_event() {
    let net = quiet_net();
    let caps = Caps {
        recv: 64,
        ..Caps::default()
    };
    let (mut sv, peer, s) = established_on::<A>(&net, caps, Settings::default());
    sv.l.context_callbacks_mut(sv.ctx).unwrap().on_data = Some(pause_in_on_data);
    let msg = vec![3u8; 200];
    net.peer_send(peer, &msg);
    turn(&mut sv.l);
    assert_eq!(
        data_of(&sv.l, s).len(),
        64,
        "a socket paused inside on_data gets no more on_data (backpressure)"
    );
    turn(&mut sv.l);
    assert_eq!(data_of(&sv.l, s).len(), 64);
    sv.l.context_callbacks_mut(sv.ctx).unwrap().on_data = Some(rec_data);
    sv.l.resume(s);
    for _ in 0..3 {
        turn(&mut sv.l);
    }
    assert_eq!(data_of(&sv.l, s), msg, "nothing lost, in order");
}
