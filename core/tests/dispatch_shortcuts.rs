//! What a configuration can hand core to shorten the per-event path, observed through the
//! simulated network: callbacks every context shares (`Config::SHARED_CALLBACKS`: no context
//! lookup per event), a hook for released listen sockets (`Config::listener_released`: no
//! per-iteration check for them), loop callbacks every loop shares (`Config::SHARED_LOOP_CALLBACKS`:
//! called directly, so they can be inlined) and the `on_data` hint (`Config::data_hint`: the callback gets what it
//! needs from the socket's ext without looking the slot up again).

mod support;

mod api_harness;

use core::ptr::NonNull;

use api_harness::*;
use support::quiet_net;
use usockets_core::{ContextCallbacks, Cx, ListenId, LoopCallbacks, RecvBuf, SocketId};

/// A data callback that notes it ran, for telling the shared callbacks from the context's.
fn shared_data(cx: &mut Cx<Shared>, s: SocketId, data: &mut RecvBuf<'_>) {
    cx.ext_mut().log.push(Ev::Note("shared on_data", s));
    if data.hint().is_none() {
        cx.ext_mut().log.push(Ev::Note("no hint", s));
    }
    rec_data(cx, s, data);
}

// A test config whose contexts all share one set of callbacks.
sim_config!(Shared {
    loop_ext: World,
    context_ext: u32,
    socket_ext: u64,
    timer_ext: (),
    poll_ext: ()
} {
    const SHARED_CALLBACKS: Option<ContextCallbacks<Self>> = Some(ContextCallbacks {
        on_pre_open: Some(rec_pre_open),
        on_open: Some(rec_open),
        on_close: Some(rec_close),
        on_data: Some(shared_data),
        on_writable: Some(rec_writable),
        on_timeout: Some(rec_timeout),
        on_long_timeout: Some(rec_long_timeout),
        on_end: Some(rec_end),
        on_connect_error: Some(rec_connect_error),
    });
    fn listener_released(cx: &mut Cx<Self>, l: ListenId) {
        cx.ext_mut().listener = Some(l);
        cx.ext_mut().pending.push(b'L');
    }
    const SHARED_LOOP_CALLBACKS: Option<LoopCallbacks<Self>> = Some(LoopCallbacks {
        wakeup: None,
        pre: Some(shared_pre),
        post: Some(shared_post),
        released: Some(rec_released),
    });
});

/// Marks the start of an iteration in the loop ext's `pending` bytes.
fn shared_pre(cx: &mut Cx<Shared>) {
    cx.ext_mut().pending.push(b'<');
}
/// Marks the end of an iteration in the loop ext's `pending` bytes.
fn shared_post(cx: &mut Cx<Shared>) {
    cx.ext_mut().pending.push(b'>');
}

#[test]
fn shared_callbacks_serve_every_socket_whatever_its_context_holds() {
    let net = quiet_net();
    let (mut sv, peer, s) = established::<Shared>(&net);
    // The context's own callbacks are emptied: with shared callbacks they are not consulted.
    *sv.l.context_callbacks_mut(sv.ctx).expect("context") = ContextCallbacks::default();
    net.peer_send(peer, b"ping");
    turn(&mut sv.l);
    assert_eq!(count(&sv.l, |e| *e == Ev::Note("shared on_data", s)), 1);
    assert_eq!(
        events(&sv.l, |e| matches!(e, Ev::Data { .. })),
        vec![Ev::Data {
            s,
            bytes: b"ping".to_vec(),
            ctx: 1
        }]
    );
    // So are the other socket events: the peer's FIN reaches the shared on_end.
    net.peer_shutdown(peer);
    turn(&mut sv.l);
    assert_eq!(count(&sv.l, |e| *e == Ev::End(s)), 1);
    // And the accept path: a second connection gets the shared on_pre_open and on_open.
    let opens = count(&sv.l, |e| matches!(e, Ev::Open { .. }));
    let _second = accept(&net, &mut sv.l, sv.port);
    assert_eq!(count(&sv.l, |e| matches!(e, Ev::PreOpen { .. })), 2);
    assert_eq!(count(&sv.l, |e| matches!(e, Ev::Open { .. })), opens + 1);
}

// A test config whose `on_data` hint is the socket's ext (a number, never dereferenced).
sim_config!(Hinted {
    loop_ext: World,
    context_ext: u32,
    socket_ext: u64,
    timer_ext: (),
    poll_ext: ()
} {
    fn data_hint(ext: &u64) -> Option<NonNull<()>> {
        NonNull::new(core::ptr::without_provenance_mut(*ext as usize))
    }
});

/// Notes whether the hint is the socket's ext as it is now.
fn hinted_data(cx: &mut Cx<Hinted>, s: SocketId, data: &mut RecvBuf<'_>) {
    let ext = cx.socket_ext(s).copied().unwrap_or(0);
    let hint = data.hint().map(|p| p.as_ptr() as usize);
    let note = if hint == Some(ext as usize) {
        "hint is the ext"
    } else {
        "hint differs"
    };
    cx.ext_mut().log.push(Ev::Note(note, s));
}

#[test]
fn on_data_gets_the_hint_of_the_sockets_ext_as_it_is_at_the_read() {
    let net = quiet_net();
    let (mut sv, peer, s) = established::<Hinted>(&net);
    sv.l.context_callbacks_mut(sv.ctx).expect("context").on_data = Some(hinted_data);
    assert_eq!(sv.l.socket_ext(s).copied(), Some(ACCEPTED_EXT));
    net.peer_send(peer, b"one");
    turn(&mut sv.l);
    // The ext changes between reads: the next hint follows it.
    *sv.l.socket_ext_mut(s).expect("socket") = 0x5150;
    net.peer_send(peer, b"two");
    turn(&mut sv.l);
    assert_eq!(count(&sv.l, |e| *e == Ev::Note("hint is the ext", s)), 2);
    assert_eq!(count(&sv.l, |e| *e == Ev::Note("hint differs", s)), 0);
}

#[test]
fn shared_loop_callbacks_run_though_the_loop_was_given_others() {
    let net = quiet_net();
    // The harness builds the loop with only a `released` callback of its own.
    let (mut sv, peer, s) = established::<Shared>(&net);
    sv.l.ext_mut().pending.clear();
    turn(&mut sv.l);
    turn(&mut sv.l);
    assert_eq!(sv.l.ext().pending, b"<><>");
    // `released` too: a closed socket's slot is reported at the end of its iteration.
    net.peer_send(peer, b"x");
    sv.l.close(s, 0, None);
    turn(&mut sv.l);
    assert_eq!(
        count(&sv.l, |e| matches!(e, Ev::Released { s: r, .. } if *r == s)),
        1
    );
}

#[test]
fn a_closed_listen_socket_is_reported_once_when_its_slot_is_released() {
    let net = quiet_net();
    let mut sv = server::<Shared>(&net);
    sv.l.ext_mut().pending.clear();
    sv.l.listen_close(sv.ls);
    // Closed now, released (and reported) at the end of the next iteration, before `post`.
    assert_eq!(sv.l.ext().listener, None);
    turn(&mut sv.l);
    assert_eq!(sv.l.ext().listener, Some(sv.ls));
    assert_eq!(sv.l.ext().pending, b"<L>");
    turn(&mut sv.l);
    assert_eq!(sv.l.ext().pending, b"<L><>", "reported once");
}

/// Hands the buffer it got on to the other socket of the test (`World::sockets[1]`) once.
fn hand_on(cx: &mut Cx<Hinted>, s: SocketId, data: &mut RecvBuf<'_>) {
    let other = cx.ext().sockets.get(1).copied();
    match other {
        Some(o) if o != s && !cx.ext().flag => {
            cx.ext_mut().flag = true;
            cx.ext_mut().pending.push(u8::from(data.hint().is_some()));
            cx.deliver_data(o, data);
        }
        _ => {
            let hinted = data.hint().is_some();
            cx.ext_mut().pending.push(u8::from(hinted));
        }
    }
}

#[test]
fn a_buffer_handed_on_with_deliver_data_carries_no_hint() {
    let net = quiet_net();
    let (mut sv, peer, s) = established::<Hinted>(&net);
    let (_peer2, s2) = accept(&net, &mut sv.l, sv.port);
    sv.l.ext_mut().sockets = vec![s, s2];
    sv.l.context_callbacks_mut(sv.ctx).expect("context").on_data = Some(hand_on);
    net.peer_send(peer, b"x");
    turn(&mut sv.l);
    // The read's own buffer had the hint (1); handed on to `s2`, it had none (0).
    assert_eq!(sv.l.ext().pending, [1, 0]);
}

#[test]
fn without_a_hint_on_data_gets_none() {
    // `Shared` keeps the default `data_hint`.
    let net = quiet_net();
    let (mut sv, peer, s) = established::<Shared>(&net);
    net.peer_send(peer, b"ping");
    turn(&mut sv.l);
    assert_eq!(count(&sv.l, |e| *e == Ev::Note("no hint", s)), 1);
    // Neither does a buffer a layer builds for its plaintext (`RecvBuf::from_padded`).
    let mut whole = [0u8; 80];
    let buf = RecvBuf::from_padded(&mut whole, 16).expect("room for the padding");
    assert!(buf.hint().is_none());
}
