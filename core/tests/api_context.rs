//! Socket contexts (`us_create_socket_context`, `_child_`, `_free`, `_ext`, `_timestamp`,
//! `_close`): creation, user data, freeing rules and closing every socket of a context.
//! Listen sockets are in `api_listen.rs`, connect and adopt in `api_connect.rs`.

mod support;

mod api_harness;

use api_harness::*;
use support::{quiet_net, Caps};
use usockets_core::{
    CloseCause, ContextCallbacks, ContextError, Cx, ListenOptions, Settings, SocketId,
};

sim_config!(A {
    loop_ext: World,
    context_ext: u32,
    socket_ext: u64,
    timer_ext: (),
    poll_ext: (),
});

#[test]
fn context_create_gives_contexts_with_their_own_ext() {
    let net = quiet_net();
    let mut l = make_loop::<A>(&net, Caps::default(), Settings::default());
    let a = l.context_create(10, recorder()).unwrap();
    let b = l.context_create(20, ContextCallbacks::default()).unwrap();
    assert_ne!(a, b);
    assert_eq!(l.context_ext(a), Some(&10));
    *l.context_ext_mut(a).unwrap() = 11;
    assert_eq!(l.context_ext(a), Some(&11));
    assert_eq!(l.context_ext(b), Some(&20), "ext is per context");
    assert_eq!(l.context_parent(a), None);
    assert_eq!(l.slots_in_use()[2], 2);
}

#[test]
fn context_create_fails_with_capacity_when_the_arena_is_full() {
    let net = quiet_net();
    let caps = Caps {
        contexts: 1,
        ..Caps::default()
    };
    let mut l = make_loop::<A>(&net, caps, Settings::default());
    l.context_create(1, recorder()).unwrap();
    assert_eq!(
        l.context_create(2, recorder()).err(),
        Some(ContextError::Capacity)
    );
}

#[test]
fn child_context_has_its_parent_its_own_ext_and_no_callbacks_until_set() {
    let net = quiet_net();
    let mut sv = server::<A>(&net);
    let child = sv.l.context_create_child(sv.ctx, 2).unwrap();
    assert_eq!(sv.l.context_parent(child), Some(sv.ctx));
    assert_eq!(sv.l.context_ext(child), Some(&2));
    let (peer, s) = accept(&net, &mut sv.l, sv.port);
    sv.l.adopt(s, child).unwrap();
    net.peer_send(peer, b"unheard");
    turn(&mut sv.l);
    assert!(
        data_of(&sv.l, s).is_empty(),
        "a child starts without callbacks"
    );
    *sv.l.context_callbacks_mut(child).unwrap() = recorder();
    net.peer_send(peer, b"heard");
    turn(&mut sv.l);
    assert_eq!(
        events(&sv.l, |e| matches!(e, Ev::Data { .. })),
        [Ev::Data {
            s,
            bytes: b"heard".to_vec(),
            ctx: 2
        }]
    );
}

#[test]
fn child_of_a_freed_context_is_refused() {
    let net = quiet_net();
    let mut l = make_loop::<A>(&net, Caps::default(), Settings::default());
    let p = l.context_create(1, recorder()).unwrap();
    l.context_free(p).unwrap();
    assert_eq!(
        l.context_create_child(p, 2).err(),
        Some(ContextError::InvalidContext)
    );
}

#[test]
fn context_free_is_busy_while_a_listener_or_socket_remains() {
    let net = quiet_net();
    let mut sv = server::<A>(&net);
    assert_eq!(sv.l.context_free(sv.ctx).err(), Some(ContextError::Busy));
    let (_peer, s) = accept(&net, &mut sv.l, sv.port);
    sv.l.listen_close(sv.ls);
    assert_eq!(
        sv.l.context_free(sv.ctx).err(),
        Some(ContextError::Busy),
        "a socket remains"
    );
    assert_eq!(
        sv.l.context_ext(sv.ctx),
        Some(&1),
        "a refused free changes nothing"
    );
    sv.l.close(s, 0, None);
    assert_eq!(sv.l.context_free(sv.ctx), Ok(1), "the ext is handed back");
    assert_eq!(sv.l.context_ext(sv.ctx), None);
    assert_eq!(
        sv.l.context_free(sv.ctx).err(),
        Some(ContextError::InvalidContext)
    );
    turn(&mut sv.l);
    assert_eq!(sv.l.slots_in_use(), [0, 0, 0, 0, 0]);
}

#[test]
fn freed_context_slot_is_reused_and_the_old_handle_stays_stale() {
    let net = quiet_net();
    let caps = Caps {
        contexts: 1,
        ..Caps::default()
    };
    let mut l = make_loop::<A>(&net, caps, Settings::default());
    let old = l.context_create(1, recorder()).unwrap();
    l.context_free(old).unwrap();
    let new = l.context_create(2, recorder()).unwrap();
    assert_ne!(old, new);
    assert_eq!(l.context_ext(old), None);
    assert_eq!(l.context_ext(new), Some(&2));
    assert_eq!(l.context_timestamp(old), None);
    assert_eq!(
        l.context_free(old).err(),
        Some(ContextError::InvalidContext)
    );
    assert_eq!(
        l.context_ext(new),
        Some(&2),
        "freeing a stale handle did nothing"
    );
}

#[test]
fn context_timestamp_advances_one_tick_per_sweep() {
    let net = quiet_net();
    let mut l = make_loop::<A>(&net, Caps::default(), Settings::default());
    let c = l.context_create(1, recorder()).unwrap();
    l.integrate();
    let t0 = l.context_timestamp(c).unwrap();
    for k in 1..=3u16 {
        net.advance(4000);
        turn(&mut l);
        assert_eq!(l.context_timestamp(c), Some((t0 + k) % 240));
    }
    net.advance(1000);
    turn(&mut l);
    assert_eq!(
        l.context_timestamp(c),
        Some((t0 + 3) % 240),
        "not between sweeps"
    );
}

fn close_checks_listener(cx: &mut Cx<A>, s: SocketId, cause: CloseCause<u32>) {
    rec_close(cx, s, cause);
    if let Some(ls) = cx.ext().listener {
        if cx.listen_fd(ls).is_some() {
            cx.ext_mut().log.push(Ev::Note("listener still open", s));
        }
    }
}

#[test]
fn context_close_closes_listeners_first_then_every_socket_once() {
    let net = quiet_net();
    let mut sv = server::<A>(&net);
    sv.l.context_callbacks_mut(sv.ctx).unwrap().on_close = Some(close_checks_listener);
    sv.l.ext_mut().listener = Some(sv.ls);
    let mut peers = Vec::new();
    for _ in 0..3 {
        peers.push(accept(&net, &mut sv.l, sv.port));
    }
    sv.l.context_close(sv.ctx);
    assert_eq!(
        count(&sv.l, |e| matches!(e, Ev::Note(..))),
        0,
        "listener closed first"
    );
    for &(peer, s) in &peers {
        assert_eq!(
            events(&sv.l, |e| matches!(e, Ev::Close { s: c, .. } if *c == s)),
            [Ev::Close {
                s,
                code: 0,
                reason: None
            }]
        );
        assert!(net.peer_got_fin(peer));
    }
    assert_eq!(sv.l.listen_port(sv.ls), None);
    assert!(net.peer_connect(sv.port).is_err(), "no longer listening");
    turn(&mut sv.l);
    assert_eq!(
        sv.l.slots_in_use(),
        [0, 0, 1, 0, 0],
        "the context itself stays"
    );
}

#[test]
fn context_stays_usable_after_context_close() {
    let net = quiet_net();
    let mut sv = server::<A>(&net);
    accept(&net, &mut sv.l, sv.port);
    sv.l.context_close(sv.ctx);
    turn(&mut sv.l);
    let ls =
        sv.l.listen(sv.ctx, any_host(0), ListenOptions::default(), accepted_ext)
            .unwrap();
    let port = sv.l.listen_port(ls).unwrap();
    sv.l.ext_mut().echo = true;
    let (peer, s) = accept(&net, &mut sv.l, port);
    assert_eq!(sv.l.socket_context(s), Some(sv.ctx));
    net.peer_send(peer, b"again");
    turn(&mut sv.l);
    assert_eq!(net.peer_recv(peer), b"again");
}

/// Closes another open socket of the same context, with code 7.
fn close_a_sibling(cx: &mut Cx<A>, s: SocketId, cause: CloseCause<u32>) {
    rec_close(cx, s, cause);
    let ctx = cx.socket_context(s).unwrap();
    if let Some(other) = cx.first_socket(ctx) {
        cx.close(other, 7, None);
    }
}

#[test]
fn context_close_visits_every_socket_once_when_on_close_closes_another() {
    let net = quiet_net();
    let mut sv = server::<A>(&net);
    sv.l.context_callbacks_mut(sv.ctx).unwrap().on_close = Some(close_a_sibling);
    let sockets: Vec<SocketId> = (0..5).map(|_| accept(&net, &mut sv.l, sv.port).1).collect();
    sv.l.context_close(sv.ctx);
    for &s in &sockets {
        assert_eq!(closes_of(&sv.l, s), 1, "{s:?} closed exactly once");
    }
    assert_eq!(count(&sv.l, |e| matches!(e, Ev::Close { .. })), 5);
    assert!(
        count(&sv.l, |e| matches!(e, Ev::Close { code: 7, .. })) >= 2,
        "the nested closes happened"
    );
    assert_eq!(sv.l.first_socket(sv.ctx), None);
    turn(&mut sv.l);
    assert_eq!(sv.l.socket_slots_in_use(), 0);
}

#[test]
fn context_close_leaves_other_contexts_alone() {
    let net = quiet_net();
    let mut sv = server::<A>(&net);
    let other = sv.l.context_create(2, recorder()).unwrap();
    let ls2 =
        sv.l.listen(other, any_host(0), ListenOptions::default(), accepted_ext)
            .unwrap();
    let port2 = sv.l.listen_port(ls2).unwrap();
    let (_p1, s1) = accept(&net, &mut sv.l, sv.port);
    let (_p2, s2) = accept(&net, &mut sv.l, port2);
    sv.l.context_close(sv.ctx);
    assert_eq!(sv.l.is_closed(s1), Some(true));
    assert_eq!(sv.l.is_closed(s2), Some(false));
    assert_eq!(sv.l.listen_port(ls2), Some(port2));
    assert!(net.peer_connect(port2).is_ok());
}

#[test]
fn first_and_next_socket_walk_every_socket_of_a_context() {
    let net = quiet_net();
    let mut sv = server::<A>(&net);
    let mut sockets: Vec<SocketId> = (0..4).map(|_| accept(&net, &mut sv.l, sv.port).1).collect();
    let mut walked = Vec::new();
    let mut cur = sv.l.first_socket(sv.ctx);
    while let Some(s) = cur {
        walked.push(s);
        cur = sv.l.next_socket(s);
    }
    sockets.sort();
    walked.sort();
    assert_eq!(walked, sockets);
}

/// A client with reconnect logic: every `on_close` connects again (to the port kept in the
/// context ext), at most 20 times in all.
fn reconnect_on_close(cx: &mut Cx<A>, s: SocketId, cause: CloseCause<u32>) {
    rec_close(cx, s, cause);
    if cx.ext().sockets.len() >= 20 {
        return;
    }
    let ctx = cx.socket_context(s).unwrap();
    let port = u16::try_from(*cx.context_ext(ctx).unwrap()).unwrap();
    let target = usockets_core::ConnectTarget::Host {
        host: "127.0.0.1",
        port,
        source: None,
    };
    if let Ok(n) = cx.connect(ctx, target, 0) {
        cx.ext_mut().sockets.push(n);
    }
}

#[test]
fn context_close_does_not_close_sockets_created_by_its_own_on_close() {
    let net = quiet_net();
    let mut sv = server::<A>(&net);
    let originals: Vec<SocketId> = (0..3).map(|_| accept(&net, &mut sv.l, sv.port).1).collect();
    *sv.l.context_ext_mut(sv.ctx).unwrap() = u32::from(net.peer_listen(0));
    sv.l.context_callbacks_mut(sv.ctx).unwrap().on_close = Some(reconnect_on_close);
    sv.l.context_close(sv.ctx);
    for &s in &originals {
        assert_eq!(closes_of(&sv.l, s), 1);
    }
    let reconnects = sv.l.ext().sockets.clone();
    assert_eq!(
        count(&sv.l, |e| matches!(e, Ev::Close { .. })),
        3,
        "only the sockets that existed when context_close began are closed \
         ({} reconnects were made)",
        reconnects.len()
    );
    for &r in &reconnects {
        assert_eq!(sv.l.is_closed(r), Some(false), "a reconnect survives");
    }
}

/// [`reconnect_on_close`], and from the first on_close only, a second close of the same
/// context nested in the first: it closes the reconnect just made (born before it began) but
/// nothing born after.
fn reconnect_then_close_again(cx: &mut Cx<A>, s: SocketId, cause: CloseCause<u32>) {
    reconnect_on_close(cx, s, cause);
    if cx.ext().sockets.len() == 1 {
        let ctx = cx.socket_context(s).unwrap();
        cx.context_close(ctx);
    }
}

#[test]
fn context_close_orders_births_and_nested_closes_across_the_epoch_reset() {
    // Epochs around the reset (at 2^31, with no close running) and the saturation.
    for start in [
        0u32,
        (1 << 31) - 2,
        (1 << 31) - 1,
        1 << 31,
        u32::MAX - 2,
        u32::MAX,
    ] {
        let net = quiet_net();
        let mut sv = server::<A>(&net);
        sv.l.__set_close_epoch(start);
        let originals: Vec<SocketId> = (0..3).map(|_| accept(&net, &mut sv.l, sv.port).1).collect();
        // Another close first, with sockets alive: the one that re-stamps them at the reset.
        let other = sv.l.context_create(0, recorder()).unwrap();
        sv.l.context_close(other);
        *sv.l.context_ext_mut(sv.ctx).unwrap() = u32::from(net.peer_listen(0));
        sv.l.context_callbacks_mut(sv.ctx).unwrap().on_close = Some(reconnect_then_close_again);
        sv.l.context_close(sv.ctx);
        for &s in &originals {
            assert_eq!(
                closes_of(&sv.l, s),
                1,
                "start {start}: each original closed once"
            );
        }
        let reconnects = sv.l.ext().sockets.clone();
        assert!(reconnects.len() > 1, "start {start}: reconnects were made");
        assert_eq!(
            sv.l.is_closed(reconnects[0]),
            Some(true),
            "start {start}: the nested close closes the reconnect born before it"
        );
        for &r in &reconnects[1..] {
            assert_eq!(
                sv.l.is_closed(r),
                Some(false),
                "start {start}: later reconnects survive"
            );
        }
    }
}
