//! Running out of socket slots, and leaving none behind.

use usockets_core::{ConnectError, ConnectTarget, Settings};

use crate::harness::*;
use crate::ShimUnderTest;

/// With 3 socket slots and one connection open (2 slots), a second connect takes the last
/// slot, a third fails with [`ConnectError::Capacity`], and the server sheds the second
/// connection (no `on_open`), which the client sees closed. After a release the listener
/// accepts again.
pub fn check_full_arena_sheds_and_recovers<S: ShimUnderTest>() {
    let caps = Caps {
        sockets: 3,
        ..Caps::default()
    };
    let mut f = Fixture::<S>::tcp_with(LOCAL4, Settings::default(), caps);
    f.knobs(f.client).close_on_end = true;
    let port = f.port();
    let (c1, s1) = f.pair();
    let c2 = f.connect();
    let target = ConnectTarget::Host {
        host: LOCAL4,
        port,
        source: None,
    };
    assert_eq!(
        f.l.connect(f.client, target, CLIENT_EXT),
        Err(ConnectError::Capacity),
        "connect with no free slot fails at once"
    );
    drive(
        &mut f.l,
        "the shed connection to close on the client",
        |l| l.is_closed(c2).is_none(),
    );
    assert_eq!(
        count(&f.l, |e| matches!(e, Ev::Open { client: false, .. })),
        1,
        "the connection that found no slot is shed without on_open"
    );
    assert_eq!(
        f.l.is_closed(c1),
        Some(false),
        "the first connection is untouched"
    );
    f.transfer(c1, b"still fine", s1);
    f.l.close(c1, 0, None);
    f.l.close(s1, 0, None);
    spin(&mut f.l, 1);
    assert_eq!(f.l.socket_slots_in_use(), 0);
    let (c3, s3) = f.pair();
    f.transfer(c3, b"accepting again", s3);
    f.transfer(s3, b"after recovery", c3);
}

/// 200 connections opened at once, each echoing a greeting and closing from both ends, leave
/// no slot in use; closing the listener and freeing the contexts empties every arena.
pub fn check_many_connections_leave_no_slots<S: ShimUnderTest>() {
    const N: usize = 200;
    let caps = Caps {
        sockets: 2 * N + 8,
        ..Caps::default()
    };
    let mut f = Fixture::<S>::tcp_with(LOCAL4, Settings::default(), caps);
    let server = f.knobs(f.server);
    server.echo = true;
    server.close_on_end = true;
    let client = f.knobs(f.client);
    client.send_on_open = Some(b"hello".to_vec());
    client.close_after_rx = Some(5);
    let clients: Vec<_> = (0..N).map(|_| f.connect()).collect();
    drive(&mut f.l, "200 connections to open, echo and close", |l| {
        count(l, |e| matches!(e, Ev::Released { .. })) >= 2 * N
    });
    for &c in &clients {
        assert_eq!(rx(&f.l, c), b"hello", "each client got its echo");
        assert_eq!(closes(&f.l, c), [(0, None)]);
    }
    assert_eq!(
        count(&f.l, |e| matches!(e, Ev::Open { client: false, .. })),
        N
    );
    assert_eq!(count(&f.l, |e| matches!(e, Ev::ConnectError { .. })), 0);
    assert_eq!(f.l.socket_slots_in_use(), 0, "no socket slot left");
    f.l.listen_close(f.listener);
    spin(&mut f.l, 1);
    assert_eq!(f.l.slots_in_use(), [0, 0, 2, 0, 0]);
    assert!(!f.l.is_alive());
    f.l.context_free(f.server).expect("context_free");
    f.l.context_free(f.client).expect("context_free");
    assert_eq!(f.l.slots_in_use(), [0; 5]);
}
