//! The whole conformance suite over the IOCP shim, on the loopback interface, in real time.
//!
//! Runs on Windows, and here under Wine (`.ci/run`'s `windows` stage:
//! `cargo test --target x86_64-pc-windows-gnu -p usockets-shim-windows`, with
//! `wine/runner.sh` as cargo's runner). Elsewhere this target is empty.
#![cfg(windows)]

mod common;

use common::Windows;
use usockets_conformance::conformance_suite;
use usockets_shim_windows::WindowsShim;

conformance_suite!(Windows);

/// Windows' own promise on top of the suite's refused-connect check: a connect to a closed
/// port reaches `on_connect_error` (never `on_open`) with Winsock's `WSAECONNREFUSED` (10061),
/// where the C library on libuv reports the connection as opened.
#[test]
fn connect_to_a_closed_port_reports_wsaeconnrefused() {
    use usockets_conformance::harness::*;
    use usockets_core::ConnectTarget;

    let mut f = Fixture::<Windows>::tcp(LOCAL4);
    // A port nobody listens on: bound by std, then closed.
    let port = std::net::TcpListener::bind((LOCAL4, 0))
        .and_then(|l| l.local_addr())
        .expect("bind port 0")
        .port();
    let target = ConnectTarget::Host {
        host: LOCAL4,
        port,
        source: None,
    };
    let c = f.l.connect(f.client, target, CLIENT_EXT).expect("connect");
    drive(&mut f.l, "on_connect_error", |l| {
        count(l, |e| matches!(e, Ev::ConnectError { s, .. } if *s == c)) > 0 || opened(l, c)
    });
    let seen = events(
        &f.l,
        |e| matches!(e, Ev::ConnectError { s, .. } | Ev::Open { s, .. } if *s == c),
    );
    match &seen[..] {
        [Ev::ConnectError { err, .. }] => {
            assert_eq!(
                err.kind,
                usockets_core::ErrorKind::ConnectionRefused,
                "{err:?}"
            );
            assert_eq!(err.code, 10061, "WSAECONNREFUSED: {err:?}");
        }
        other => panic!("a refused connect must reach on_connect_error only: {other:?}"),
    }
}

/// A loop on this shim may be built on one thread and run on another, as on Linux; its waker
/// crosses threads.
#[test]
fn the_shim_may_move_between_threads_and_its_waker_is_shared() {
    fn send<T: Send>() {}
    fn send_sync_static<T: Clone + Send + Sync + 'static>() {}
    send::<WindowsShim>();
    send_sync_static::<usockets_shim_windows::WindowsWaker>();
    let shim = WindowsShim::new().expect("shim");
    let moved = std::thread::spawn(move || format!("{shim:?}")).join();
    assert!(moved.expect("thread").starts_with("WindowsShim"));
}
