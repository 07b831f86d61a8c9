//! Ours against ours, over the simulated OS and over real loopback sockets (the platform's shim:
//! epoll on Linux, IOCP on Windows, where `.ci/run` runs the loopback tests under Wine):
//! handshakes in TLS 1.3
//! and 1.2 (asserting what was negotiated), plaintext written before the handshake ends, echo
//! both ways byte for byte, a client refusing a certificate that does not name the host, and
//! hostile input closing cleanly.

mod common;

use common::*;
use usockets_core::{Capacity, GrowingStorage, Loop, LoopCallbacks, OsShim, Settings};
use usockets_tls::{Verify, Versions};

/// The platform's shim for the loopback tests.
#[cfg(target_os = "linux")]
type Platform = usockets_shim_linux::LinuxShim;
/// The platform's shim for the loopback tests.
#[cfg(any(
    target_os = "freebsd",
    target_os = "macos",
    target_os = "netbsd",
    target_os = "openbsd",
    target_os = "dragonfly"
))]
type Platform = usockets_shim_bsd::BsdShim;
/// The platform's shim for the loopback tests.
#[cfg(windows)]
type Platform = usockets_shim_windows::WindowsShim;

fn storage<S: OsShim>() -> GrowingStorage<T<S>> {
    GrowingStorage::new(Capacity::new().with_recv(512 * 1024))
}

fn platform_loop() -> Loop<T<Platform>> {
    Loop::new(
        Platform::new().expect("shim"),
        storage(),
        Log::default(),
        LoopCallbacks::default(),
        Settings::default(),
    )
    .expect("loop")
}

/// Runs until `done` holds (at most `max` iterations of at most 10 ms each).
fn drive<S: OsShim>(l: &mut Loop<T<S>>, max: usize, mut done: impl FnMut(&Loop<T<S>>) -> bool) {
    for _ in 0..max {
        if done(l) {
            return;
        }
        l.run_once(Some(10)).expect("run_once");
    }
    assert!(
        done(l),
        "not reached in {max} iterations: {:?}",
        l.ext().events
    );
}

const GREETING: &[u8] = b"hello over tls, written before the handshake ended";

/// Connects a client to the server and runs the greeting echo; returns (client, server).
fn greeting_echo<S: OsShim>(
    l: &mut Loop<T<S>>,
    pki: &Pki,
    versions: Versions,
) -> (usockets_core::SocketId, usockets_core::SocketId) {
    l.ext_mut().echo = true;
    l.ext_mut().greeting = GREETING.to_vec();
    let (_, cc, port) = contexts(l, pki.server(Versions::Both), pki.client(versions));
    let c = connect_local(l, cc, port);
    drive(l, 2000, |l| l.ext().received(c).len() >= GREETING.len());
    assert_eq!(l.ext().received(c), GREETING, "the echo, byte for byte");
    let s = server_end(l).expect("server end");
    assert_eq!(l.ext().received(s), GREETING, "the server got plaintext");
    assert!(l.ext().padding_ok);
    (c, s)
}

fn check_versions<S: OsShim>(mut l: Loop<T<S>>, versions: Versions) {
    let pki = Pki::new(&["localhost", "127.0.0.1"]);
    let (c, s) = greeting_echo(&mut l, &pki, versions);
    let want = match versions {
        Versions::Tls12 => rustls::ProtocolVersion::TLSv1_2,
        _ => rustls::ProtocolVersion::TLSv1_3,
    };
    let ci = usockets_tls::info(&l, c).expect("client session");
    let si = usockets_tls::info(&l, s).expect("server session");
    assert_eq!(ci.version, Some(want));
    assert_eq!(si.version, Some(want));
    assert!(!ci.handshaking && !si.handshaking);
    assert_eq!(
        ci.peer_certificates, 1,
        "the client saw the server's certificate"
    );
    assert!(si.cipher_suite.is_some());
    // close_notify from the client closes the server's socket (no on_end with TLS).
    l.shutdown(c);
    drive(&mut l, 2000, |l| {
        l.ext().count(|e| *e == Ev::Close { s }) == 1
    });
    assert_eq!(
        l.ext().count(|e| matches!(e, Ev::End { .. })),
        0,
        "no on_end with TLS"
    );
}

#[test]
fn tls13_and_tls12_round_trip_over_the_simulated_os() {
    for versions in [Versions::Tls13, Versions::Tls12] {
        let (_net, l) = sim();
        check_versions(l, versions);
    }
}

#[test]
fn tls13_and_tls12_round_trip_over_loopback() {
    for versions in [Versions::Tls13, Versions::Tls12] {
        check_versions(platform_loop(), versions);
    }
}

fn pattern(i: usize) -> u8 {
    (i.wrapping_mul(131) ^ (i >> 11)) as u8
}

fn big_echo<S: OsShim>(mut l: Loop<T<S>>) {
    const LEN: usize = 4 << 20;
    let pki = Pki::new(&["127.0.0.1"]);
    let (c, _s) = greeting_echo(&mut l, &pki, Versions::Both);
    let data: Vec<u8> = (0..LEN).map(pattern).collect();
    send(&mut l, c, &data);
    drive(&mut l, 100_000, |l| {
        l.ext().received(c).len() >= GREETING.len() + LEN
    });
    let got = &l.ext().received(c)[GREETING.len()..];
    assert_eq!(got.len(), LEN);
    assert!(got == data.as_slice(), "4 MiB echoed byte for byte");
}

#[test]
fn four_mib_echo_over_the_simulated_os() {
    let (_net, l) = sim();
    big_echo(l);
}

#[test]
fn four_mib_echo_over_loopback() {
    big_echo(platform_loop());
}

#[test]
fn a_certificate_for_another_host_is_refused_and_no_data_flows() {
    let (_net, mut l) = sim();
    let pki = Pki::new(&["example.test"]);
    l.ext_mut().echo = true;
    l.ext_mut().greeting = GREETING.to_vec();
    let (_, cc, port) = contexts(
        &mut l,
        pki.server(Versions::Both),
        pki.client(Versions::Both),
    );
    let c = connect_local(&mut l, cc, port);
    drive(&mut l, 2000, |l| {
        l.ext().count(|e| *e == Ev::Close { s: c }) == 1
    });
    assert_eq!(
        l.ext().count(|e| matches!(e, Ev::Data { .. })),
        0,
        "no plaintext reached either side"
    );
    drive(&mut l, 100, |l| l.slots_in_use()[0] == 0);
}

#[test]
fn the_cause_of_a_refused_certificate_is_readable_in_on_close() {
    // The session's error stays readable until the socket's slot is released.
    let (_net, mut l) = sim();
    let pki = Pki::new(&["example.test"]);
    let (_, cc, port) = contexts(
        &mut l,
        pki.server(Versions::Both),
        pki.client(Versions::Both),
    );
    let c = connect_local(&mut l, cc, port);
    drive(&mut l, 2000, |l| {
        l.ext().count(|e| *e == Ev::Close { s: c }) == 1
    });
    let error = l
        .ext()
        .close_errors
        .iter()
        .find(|(s, _)| *s == c)
        .and_then(|(_, e)| e.clone())
        .expect("on_close could read why the session failed");
    assert!(
        error.to_lowercase().contains("certificate"),
        "the error names the certificate: {error}"
    );
}

#[test]
fn plaintext_http_to_a_tls_port_closes_cleanly() {
    let (_net, mut l) = sim();
    let pki = Pki::new(&["127.0.0.1"]);
    // The client context speaks plain TCP to the TLS server.
    l.ext_mut().greeting = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec();
    let (_, cc, port) = contexts(
        &mut l,
        pki.server(Versions::Both),
        usockets_tls::TlsContext::plain(),
    );
    let c = connect_local(&mut l, cc, port);
    drive(&mut l, 2000, |l| {
        server_end(l).is_some_and(|s| l.ext().count(|e| *e == Ev::Close { s }) == 1)
    });
    let s = server_end(&l).expect("accepted");
    assert!(l.ext().received(s).is_empty(), "no plaintext from garbage");
    let _ = c;
    drive(&mut l, 2000, |l| l.slots_in_use()[0] == 0);
}

#[test]
fn a_tls_context_without_a_certificate_closes_each_connection() {
    let (_net, mut l) = sim();
    let pki = Pki::new(&["127.0.0.1"]);
    // The "server" context has only a client side: it cannot answer a ClientHello.
    let server = client_with(Verify::NoVerification, Versions::Both);
    let (_, cc, port) = contexts(&mut l, server, pki.client(Versions::Both));
    connect_local(&mut l, cc, port);
    drive(&mut l, 2000, |l| {
        l.ext().count(|e| matches!(e, Ev::Close { .. })) == 2
    });
    assert_eq!(l.ext().count(|e| matches!(e, Ev::Data { .. })), 0);
    drive(&mut l, 2000, |l| l.slots_in_use()[0] == 0);
}

#[test]
fn sixty_four_mib_both_ways_through_a_slow_reader_over_the_simulated_os() {
    // The client sends 64 MiB and reads the 64 MiB echo slowly: its socket is paused three
    // iterations out of four, so records pile up in the server (its write refused while
    // ciphertext waits, on_writable later) and in the simulated kernel.
    const LEN: usize = 64 << 20;
    let (_net, mut l) = sim();
    let pki = Pki::new(&["127.0.0.1"]);
    let (c, s) = greeting_echo(&mut l, &pki, Versions::Both);
    let data: Vec<u8> = (0..LEN).map(pattern).collect();
    let mut sent = 0;
    for i in 0..2_000_000usize {
        if l.ext().received(c).len() >= GREETING.len() + LEN {
            break;
        }
        // Feed the client's side in 1 MiB steps, behind its backlog.
        let waiting = l
            .ext()
            .backlog
            .iter()
            .any(|(x, b)| *x == c && !b.is_empty());
        if sent < LEN && !waiting {
            let n = (LEN - sent).min(1 << 20);
            send(&mut l, c, &data[sent..sent + n]);
            sent += n;
        }
        if i % 4 == 0 {
            l.resume(c);
        } else {
            l.pause(c);
        }
        l.run_once(Some(0)).expect("run");
    }
    let got = &l.ext().received(c)[GREETING.len()..];
    assert_eq!(got.len(), LEN, "the whole echo arrived");
    assert!(got == data.as_slice(), "64 MiB each way, byte for byte");
    let server_writables = l.ext().count(|e| *e == Ev::Writable { s });
    assert!(
        server_writables > 0,
        "the slow reader made the server wait for on_writable"
    );
}

#[test]
fn early_plaintext_beyond_the_limit_goes_out_after_the_handshake_via_on_writable() {
    // 40 KiB written in on_open: the session takes 16 KiB before the handshake ends; the rest
    // waits in the application's backlog until on_writable, which must come after it.
    let (_net, mut l) = sim();
    let pki = Pki::new(&["127.0.0.1"]);
    let greeting: Vec<u8> = (0..40 * 1024).map(pattern).collect();
    l.ext_mut().echo = true;
    l.ext_mut().greeting = greeting.clone();
    let (_, cc, port) = contexts(
        &mut l,
        pki.server(Versions::Both),
        pki.client(Versions::Both),
    );
    let c = connect_local(&mut l, cc, port);
    drive(&mut l, 2000, |l| {
        l.ext().received(c).len() >= greeting.len()
    });
    assert!(
        l.ext().received(c) == greeting.as_slice(),
        "all of it, in order"
    );
    assert!(
        l.ext().count(|e| *e == Ev::Writable { s: c }) >= 1,
        "on_writable came for the refused part"
    );
}

#[test]
fn everything_written_before_shutdown_arrives_before_close_notify() {
    // The server reads nothing for a while, so when the client shuts down its last record
    // still waits for the kernel: FIN must wait for it and the close_notify behind it.
    const LEN: usize = 2 << 20;
    let (_net, mut l) = sim();
    let pki = Pki::new(&["127.0.0.1"]);
    let (c, s) = greeting_echo(&mut l, &pki, Versions::Both);
    l.ext_mut().echo = false;
    l.pause(s);
    let data: Vec<u8> = (0..LEN).map(pattern).collect();
    send(&mut l, c, &data);
    for i in 0..100_000 {
        let waiting = l
            .ext()
            .backlog
            .iter()
            .any(|(x, b)| *x == c && !b.is_empty());
        if !waiting {
            break;
        }
        // Let the server read a little now and then, so the client's backlog drains.
        if i % 8 == 0 {
            l.resume(s);
        } else {
            l.pause(s);
        }
        l.run_once(Some(0)).expect("run");
    }
    l.pause(s);
    l.shutdown(c);
    assert_eq!(l.is_shut_down(c), Some(true));
    assert_eq!(
        l.write(c, b"late", false),
        0,
        "nothing is accepted after shutdown"
    );
    l.resume(s);
    drive(&mut l, 100_000, |l| {
        l.ext().count(|e| *e == Ev::Close { s }) == 1
    });
    let got = &l.ext().received(s)[GREETING.len()..];
    assert_eq!(got.len(), LEN, "every byte written before shutdown arrived");
    assert!(got == data.as_slice(), "in order");
}

#[test]
fn a_tls_socket_adopted_into_a_plain_context_keeps_its_session() {
    // The WebSocket upgrade pattern: the server socket moves to another context mid-connection
    // (here one that was never given TLS); its session goes with it and data keeps flowing,
    // through the new context's callbacks.
    let (_net, mut l) = sim();
    let pki = Pki::new(&["127.0.0.1"]);
    let (c, s) = greeting_echo(&mut l, &pki, Versions::Both);
    let plain = l
        .context_create((), callbacks::<usockets_shim_sim::SimShim>())
        .expect("plain context");
    let moved = l.adopt(s, plain).expect("adopted");
    assert_eq!(l.socket_context(moved), Some(plain));
    assert!(l.is_layered(moved), "still TLS after the move");
    let before = l
        .ext()
        .count(|e| matches!(e, Ev::Data { s: x, .. } if *x == moved));
    send(&mut l, c, b"after the move");
    let want = GREETING.len() + b"after the move".len();
    drive(&mut l, 2000, |l| l.ext().received(c).len() >= want);
    assert_eq!(&l.ext().received(c)[GREETING.len()..], b"after the move");
    let after = l
        .ext()
        .count(|e| matches!(e, Ev::Data { s: x, .. } if *x == moved));
    assert!(
        after > before,
        "the server got the plaintext in its new context"
    );
    let info = usockets_tls::info(&l, moved).expect("the session moved along");
    assert!(!info.handshaking);
}

#[test]
fn the_client_hello_leaves_at_connect_without_the_application_writing() {
    // The C library's client waits for the application's first write; ours starts the
    // handshake at connect: with nothing written, both ends finish it.
    let (_net, mut l) = sim();
    let pki = Pki::new(&["127.0.0.1"]);
    let (_, cc, port) = contexts(
        &mut l,
        pki.server(Versions::Both),
        pki.client(Versions::Both),
    );
    let c = connect_local(&mut l, cc, port);
    drive(&mut l, 2000, |l| {
        let done = |s| usockets_tls::info(l, s).is_some_and(|i| !i.handshaking);
        done(c) && server_end(l).is_some_and(done)
    });
    assert_eq!(
        l.ext().count(|e| matches!(e, Ev::Data { .. })),
        0,
        "nothing was written"
    );
}

#[test]
fn closing_a_connecting_tls_socket_and_whole_tls_contexts_is_clean() {
    let pki = Pki::new(&["127.0.0.1"]);
    let (net, mut l) = sim();
    l.ext_mut().echo = true;
    l.ext_mut().greeting = GREETING.to_vec();
    let (sc, cc, port) = contexts(
        &mut l,
        pki.server(Versions::Both),
        pki.client(Versions::Both),
    );
    let closes =
        |l: &Loop<T<usockets_shim_sim::SimShim>>, s| l.ext().count(|e| *e == Ev::Close { s });

    // Closed while connecting (its session made, its ClientHello not yet sent).
    let connecting = connect_local(&mut l, cc, port);
    l.close(connecting, 0, None);
    for _ in 0..20 {
        l.run_once(Some(0)).expect("run");
    }
    assert_eq!(closes(&l, connecting), 1);

    // One connection established, one mid-handshake: closing both contexts closes every
    // socket exactly once, both ends.
    let done = connect_local(&mut l, cc, port);
    drive(&mut l, 200, |l| l.ext().received(done) == GREETING);
    let halfway = connect_local(&mut l, cc, port);
    l.run_once(Some(0)).expect("run");
    l.context_close(cc);
    l.context_close(sc);
    for _ in 0..20 {
        l.run_once(Some(0)).expect("run");
    }
    assert_eq!(closes(&l, done), 1);
    assert_eq!(closes(&l, halfway), 1);
    let opened: Vec<_> = l
        .ext()
        .events
        .iter()
        .filter_map(|e| match e {
            Ev::Open { s, .. } => Some(*s),
            _ => None,
        })
        .collect();
    for s in opened {
        assert_eq!(closes(&l, s), 1, "{s:?} closed once");
    }
    assert_eq!(l.socket_slots_in_use(), 0, "no slot left");
    assert_eq!(
        net.open_fds(),
        0,
        "every descriptor closed (context_close closes listen sockets too)"
    );
}
