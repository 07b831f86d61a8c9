//! Moving bytes: echo with backpressure, gathered and corked writes, pause/resume, half-close.

use usockets_core::{CloseCause, ErrorKind, Interest};

use crate::harness::*;
use crate::ShimUnderTest;

const MIB: usize = 1 << 20;

/// 1 MiB from the client is echoed by the server: every byte arrives once, in order, in both
/// directions, with whatever short writes the shim makes completed through `on_writable`; once
/// drained, writable interest is dropped again. (A loopback socket may take the whole MiB at
/// once; [`check_backpressure_short_write_then_writable`] forces the short write.)
pub fn check_echo_1mib_both_ways<S: ShimUnderTest>() {
    let mut f = Fixture::<S>::tcp(LOCAL4);
    f.knobs(f.server).echo = true;
    let (c, s) = f.pair();
    let data = pattern(MIB, 7);
    send::<S>(&mut f.l, c, &data);
    drive(&mut f.l, "1 MiB to be echoed back", |l| rx_len(l, c) >= MIB);
    assert!(
        rx(&f.l, s) == data,
        "server received the 1 MiB intact and in order"
    );
    assert!(
        rx(&f.l, c) == data,
        "client received the echo intact and in order"
    );
    assert!(f.l.ext().tx.is_empty(), "everything was written");
    if f.l.ext().short_writes > 0 {
        assert!(
            count(&f.l, |e| matches!(e, Ev::Writable(_))) > 0,
            "a short write must be followed by on_writable"
        );
    }
    assert_eq!(
        count(&f.l, |e| matches!(
            e,
            Ev::End { .. } | Ev::Close { .. } | Ev::ConnectError { .. }
        )),
        0,
        "no end or close during the transfer"
    );
    // Once drained, writable interest is dropped again (no busy loop on a quiet socket).
    spin(&mut f.l, 3);
    assert_eq!(f.l.socket_interest(c), Some(Interest::READABLE));
    assert_eq!(f.l.socket_interest(s), Some(Interest::READABLE));
}

/// With the receiver paused, writing 256 KiB chunks must hit a short write (within 64 MiB);
/// the short write arms writable interest, which pausing the writer keeps; after the receiver
/// resumes, the writer gets `on_writable`, the rest is written and every byte arrives in
/// order; then writable interest is dropped.
pub fn check_backpressure_short_write_then_writable<S: ShimUnderTest>() {
    const CHUNK: usize = 256 * 1024;
    const CAP: usize = 64 * MIB;
    let mut f = Fixture::<S>::tcp(LOCAL4);
    let (c, s) = f.pair();
    f.l.pause(s);
    let mut sent = Vec::new();
    for i in 0u8.. {
        let chunk = pattern(CHUNK, i);
        sent.extend_from_slice(&chunk);
        let n = f.l.write(c, &chunk, false);
        if n < chunk.len() {
            f.l.ext_mut().short_writes += 1;
            f.l.ext_mut().tx.insert(c, chunk[n..].to_vec());
            break;
        }
        assert!(
            sent.len() < CAP,
            "the shim took {CAP} bytes for a paused receiver without a short write"
        );
    }
    assert!(
        f.l.socket_interest(c).is_some_and(|i| i.is_writable()),
        "a short write arms writable interest"
    );
    // Pausing the writer stops its reading only: the pending write still completes.
    f.l.pause(c);
    assert_eq!(
        f.l.socket_interest(c),
        Some(Interest::WRITABLE),
        "pause keeps writable interest"
    );
    f.l.resume(s);
    let total = sent.len();
    drive(&mut f.l, "the backlog to drain after resume", |l| {
        rx_len(l, s) >= total
    });
    assert!(rx(&f.l, s) == sent, "every byte arrives once, in order");
    assert!(
        count(&f.l, |e| *e == Ev::Writable(c)) > 0,
        "the writer got on_writable"
    );
    assert!(f.l.ext().tx.is_empty());
    spin(&mut f.l, 3);
    assert_eq!(
        f.l.socket_interest(c),
        Some(Interest::NONE),
        "writable interest dropped once drained (the writer is still paused)"
    );
    f.l.resume(c);
    assert_eq!(f.l.socket_interest(c), Some(Interest::READABLE));
    f.transfer(s, b"the writer reads again", c);
}

/// `write2` sends header then payload as one stream, also with an empty header or payload;
/// both empty writes nothing; a short `write2` is completed through `on_writable`.
pub fn check_write2<S: ShimUnderTest>() {
    let mut f = Fixture::<S>::tcp(LOCAL4);
    let (c, s) = f.pair();
    let header = b"HEADER-16-BYTES!";
    let payload = pattern(1000, 3);
    let n = f.l.write2(c, header, &payload);
    assert_eq!(
        n,
        header.len() + payload.len(),
        "a small write2 is taken whole"
    );
    assert_eq!(f.l.write2(c, b"", b"no-header"), 9);
    assert_eq!(f.l.write2(c, b"no-payload", b""), 10);
    assert_eq!(f.l.write2(c, b"", b""), 0, "nothing to write");
    assert_eq!(f.l.write(c, b"", false), 0, "nothing to write");
    assert_eq!(
        f.l.socket_interest(c),
        Some(Interest::READABLE),
        "an empty write is not a short write"
    );
    let mut want = header.to_vec();
    want.extend_from_slice(&payload);
    want.extend_from_slice(b"no-headerno-payload");
    drive(&mut f.l, "write2 bytes to arrive", |l| {
        rx_len(l, s) >= want.len()
    });
    assert_eq!(rx(&f.l, s), want, "header before payload, in order");
    // A big write2 that the OS takes only part of.
    let big = pattern(MIB, 9);
    let n = f.l.write2(s, b"big:", &big);
    let mut whole = b"big:".to_vec();
    whole.extend_from_slice(&big);
    assert!(n > 0, "write2 on a fresh connection takes something");
    if n < whole.len() {
        f.l.ext_mut().short_writes += 1;
        f.l.ext_mut().tx.insert(s, whole[n..].to_vec());
        assert!(
            f.l.socket_interest(s).is_some_and(|i| i.is_writable()),
            "a short write2 arms writable interest"
        );
    }
    drive(&mut f.l, "a large write2 to arrive", |l| {
        rx_len(l, c) >= whole.len()
    });
    assert!(
        rx(&f.l, c) == whole,
        "large write2 arrives intact and in order"
    );
}

/// `write(.., more = true)` twice then `flush` delivers the bytes, in order; `flush` without
/// `more`, and on a closed socket, is harmless.
pub fn check_write_more_then_flush<S: ShimUnderTest>() {
    let mut f = Fixture::<S>::tcp(LOCAL4);
    let (c, s) = f.pair();
    f.l.flush(c); // nothing corked: no-op
    assert_eq!(f.l.write(c, b"corked-", true), 7);
    assert_eq!(f.l.write(c, b"then-", true), 5);
    f.l.flush(c);
    drive(&mut f.l, "corked bytes to arrive after flush", |l| {
        rx_len(l, s) >= 12
    });
    assert_eq!(rx(&f.l, s), b"corked-then-");
    assert_eq!(f.l.write(c, b"plain", false), 5);
    drive(&mut f.l, "a plain write after flush", |l| {
        rx_len(l, s) >= 17
    });
    assert_eq!(rx(&f.l, s), b"corked-then-plain");
    assert_eq!(f.l.write(s, b"more", true), 4);
    f.l.flush(s);
    drive(&mut f.l, "corked bytes the other way", |l| {
        rx_len(l, c) >= 4
    });
    assert_eq!(rx(&f.l, c), b"more");
    f.l.close(c, 0, None);
    f.l.flush(c); // closed: no-op
    assert_eq!(f.l.write(c, b"x", true), 0);
}

/// A paused socket gets no `on_data` however long the loop runs; after `resume` the data that
/// waited arrives. Writing still works while paused.
pub fn check_pause_and_resume<S: ShimUnderTest>() {
    let mut f = Fixture::<S>::tcp(LOCAL4);
    let (c, s) = f.pair();
    f.l.pause(s);
    assert!(
        f.l.socket_interest(s).is_some_and(|i| !i.is_readable()),
        "paused: no readable interest"
    );
    assert_eq!(f.l.write(c, b"while paused", false), 12);
    idle(&mut f.l, 300);
    assert_eq!(rx_len(&f.l, s), 0, "no on_data while paused");
    f.transfer(s, b"paused can write", c);
    f.l.resume(s);
    assert!(f.l.socket_interest(s).is_some_and(|i| i.is_readable()));
    drive(&mut f.l, "data held while paused to arrive", |l| {
        rx_len(l, s) >= 12
    });
    assert_eq!(rx(&f.l, s), b"while paused");
    assert_eq!(closes(&f.l, s), [], "pausing does not close");
}

/// `shutdown_read` makes a later iteration (never the call itself) see EOF: `on_end` once;
/// the socket stays open and can still write. On a shim that declares no `shutdown_read`
/// ([`ShimUnderTest::shutdown_read`]): nothing changes, no `on_end`, the socket works both
/// ways.
pub fn check_shutdown_read_gives_end<S: ShimUnderTest>() {
    let mut f = Fixture::<S>::tcp(LOCAL4);
    let (c, s) = f.pair();
    // A quiet connection first: whatever the shim has waiting for it (a poll request in
    // flight) must not hold the EOF back.
    idle(&mut f.l, 100);
    if !S::shutdown_read(f.l.shim()) {
        eprintln!("the shim declares no shutdown_read: checking that it changes nothing");
        f.l.shutdown_read(s);
        idle(&mut f.l, 100);
        assert_eq!(ends(&f.l, s), 0, "no on_end without a shutdown_read");
        assert_eq!(f.l.is_closed(s), Some(false), "still open");
        f.transfer(c, b"still readable", s);
        f.transfer(s, b"still writable", c);
        assert_eq!(closes(&f.l, s), []);
        return;
    }
    f.l.shutdown_read(s);
    assert_eq!(ends(&f.l, s), 0, "on_end is not synchronous");
    drive(&mut f.l, "on_end after shutdown_read", |l| ends(l, s) > 0);
    spin(&mut f.l, 3);
    assert_eq!(ends(&f.l, s), 1, "on_end once");
    assert_eq!(f.l.is_closed(s), Some(false), "still open after on_end");
    f.transfer(s, b"still writable", c);
    assert_eq!(closes(&f.l, s), []);
}

/// Half-close: the client sends a request and shuts down; the server gets the bytes, then
/// `on_end`; it replies and shuts down (which closes it, both FINs being done); the client
/// receives the whole reply and then closes with `on_close(0, None)`, without `on_end`.
pub fn check_half_close<S: ShimUnderTest>() {
    let mut f = Fixture::<S>::tcp(LOCAL4);
    let reply = pattern(100_000, 5);
    f.knobs(f.server).reply_on_end = Some(reply.clone());
    let (c, s) = f.pair();
    assert_eq!(f.l.write(c, b"request", false), 7);
    f.l.shutdown(c);
    assert_eq!(f.l.is_shut_down(c), Some(true));
    assert_eq!(f.l.is_closed(c), Some(false), "shut down is not closed");
    assert_eq!(f.l.write(c, b"more", false), 0, "no writes after shutdown");
    drive(&mut f.l, "the client to close after the reply", |l| {
        !closes(l, c).is_empty()
    });
    assert_eq!(rx(&f.l, s), b"request");
    assert_eq!(ends(&f.l, s), 1, "server on_end once");
    assert_eq!(
        closes(&f.l, s),
        [(0, None)],
        "server closed by its shutdown"
    );
    assert!(rx(&f.l, c) == reply, "client got the whole reply");
    assert_eq!(
        closes(&f.l, c),
        [(0, None)],
        "client closed once, (0, None)"
    );
    assert_eq!(
        ends(&f.l, c),
        0,
        "FIN after our own shutdown closes, no on_end"
    );
    let last_data =
        f.l.ext()
            .log
            .iter()
            .rposition(|e| matches!(e, Ev::Data { s: x, .. } if *x == c));
    let close = position(&f.l, |e| matches!(e, Ev::Close { s: x, .. } if *x == c));
    assert!(last_data < close, "the reply arrives before on_close");
}

fn data_then_close<S: ShimUnderTest>(writer_is_client: bool) {
    let mut f = Fixture::<S>::tcp(LOCAL4);
    let reader_ctx = if writer_is_client { f.server } else { f.client };
    f.knobs(reader_ctx).close_on_end = true;
    let (c, s) = f.pair();
    let (w, r) = if writer_is_client { (c, s) } else { (s, c) };
    let data = pattern(S::FRESH_SEND_BYTES, 11);
    assert_eq!(
        f.l.write(w, &data, false),
        data.len(),
        "a fresh connection takes ShimUnderTest::FRESH_SEND_BYTES at once"
    );
    f.l.close(w, 0, None);
    drive(&mut f.l, "the reader to close", |l| {
        !closes(l, r).is_empty()
    });
    assert!(
        rx(&f.l, r) == data,
        "all bytes written before the close arrive ({} of {})",
        rx_len(&f.l, r),
        data.len()
    );
    let seq: Vec<_> = events_of(&f.l, r)
        .into_iter()
        .filter(|e| {
            !matches!(
                e,
                Ev::Open { .. } | Ev::Data { .. } | Ev::Writable(_) | Ev::Released { .. }
            )
        })
        .collect();
    let tag = if writer_is_client { SERVER } else { CLIENT };
    assert_eq!(
        seq,
        [
            Ev::End { s: r, ctx: tag },
            Ev::Close {
                s: r,
                cause: CloseCause::User {
                    code: 0,
                    reason: None
                },
                ctx: tag
            }
        ],
        "EOF after the data, then the close"
    );
    let last_data =
        f.l.ext()
            .log
            .iter()
            .rposition(|e| matches!(e, Ev::Data { s: x, .. } if *x == r));
    let end = position(&f.l, |e| matches!(e, Ev::End { s: x, .. } if *x == r));
    assert!(last_data < end, "every on_data before on_end/on_close");
}

/// Bytes written right before `close` reach the other side before its `on_end`/`on_close`,
/// in both directions.
pub fn check_data_before_close_is_delivered<S: ShimUnderTest>() {
    data_then_close::<S>(false);
    data_then_close::<S>(true);
}

/// A connection whose peer is gone ends with the OS error: the peer closes with our bytes
/// unread (a TCP reset), and the server end, writing on, is closed by core with
/// [`CloseCause::Os`] of kind `ConnectionReset` (a reset or a broken pipe, seen by a send or a
/// receive) — never left waiting for writability, never closed as the user's or as a clean
/// finish. A shim must report such send errors as errors, not as would-block.
pub fn check_gone_peer_closes_with_the_os_error<S: ShimUnderTest>() {
    let mut f = Fixture::<S>::tcp(LOCAL4);
    let (c, s) = f.pair();
    f.l.pause(c);
    assert_eq!(f.l.write(s, b"never read", false), 10);
    idle(&mut f.l, 50);
    f.l.close(c, 0, None);
    drive(&mut f.l, "the server end to close", |l| {
        if l.is_closed(s) == Some(false) {
            let _ = l.write(s, b"more", false);
        }
        !close_causes(l, s).is_empty()
    });
    match close_causes(&f.l, s).as_slice() {
        [CloseCause::Os(e)] => assert_eq!(
            e.kind,
            ErrorKind::ConnectionReset,
            "a reset or broken pipe, got {e}"
        ),
        other => panic!("the server end must close once with the OS error, got {other:?}"),
    }
}
