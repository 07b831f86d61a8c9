//! Certificate validity against the client's clock, which the configuration may inject (so a
//! simulated OS can drive it): an expired certificate and one not yet valid are refused with a
//! cause on_close can read, and never deliver data; the latter is accepted by a client whose
//! injected clock is inside its validity.

mod common;

use std::sync::Arc;

use common::*;
use rustls::pki_types::UnixTime;
use rustls::time_provider::TimeProvider;
use usockets_core::{Capacity, GrowingStorage, Loop, LoopCallbacks, Settings};
use usockets_shim_sim::{Faults, NoFaults, SimNet, SimShim};
use usockets_tls::{Options, TlsContext, Verify, Versions};

/// A clock stopped at one instant.
#[derive(Debug)]
struct At(UnixTime);

impl TimeProvider for At {
    fn current_time(&self) -> Option<UnixTime> {
        Some(self.0)
    }
}

/// 2030-06-01T00:00:00Z.
const JUNE_2030: u64 = 1_906_588_800;

/// Connects a client built with `options` to a server with `pki`'s certificate; returns the
/// greeting echo the client got and the error its on_close read.
fn connect(pki: &Pki, options: &Options) -> (Vec<u8>, Option<String>) {
    let net = SimNet::new(Faults::NONE, Box::new(NoFaults));
    let mut l: Loop<T<SimShim>> = Loop::new(
        net.shim(),
        GrowingStorage::new(Capacity::new().with_recv(64 * 1024)),
        Log::default(),
        LoopCallbacks::default(),
        Settings::default(),
    )
    .expect("loop");
    l.ext_mut().echo = true;
    l.ext_mut().greeting = b"hello".to_vec();
    let client = usockets_tls::client_config(Verify::Roots(vec![pki.ca.clone()]), options)
        .expect("client config");
    let (_, cc, port) = contexts(
        &mut l,
        pki.server(Versions::Both),
        TlsContext::client(client),
    );
    let c = connect_local(&mut l, cc, port);
    for _ in 0..500 {
        let closed = l.ext().count(|e| *e == Ev::Close { s: c }) == 1;
        if closed || l.ext().received(c) == b"hello" {
            break;
        }
        l.run_once(Some(10)).expect("run");
    }
    let error = l
        .ext()
        .close_errors
        .iter()
        .find(|(s, _)| *s == c)
        .and_then(|(_, e)| e.clone());
    (l.ext().received(c).to_vec(), error)
}

#[test]
fn an_expired_certificate_is_refused() {
    let pki = Pki::valid(&["127.0.0.1"], Some(((2019, 1, 1), (2020, 1, 1))));
    let (got, error) = connect(&pki, &Options::default());
    assert!(got.is_empty(), "no data with an expired certificate");
    let error = error.expect("on_close read why");
    assert!(error.to_lowercase().contains("expired"), "{error}");
}

#[test]
fn a_certificate_not_yet_valid_is_refused_unless_the_injected_clock_is_inside_it() {
    let pki = Pki::valid(&["127.0.0.1"], Some(((2030, 1, 1), (2031, 1, 1))));
    let (got, error) = connect(&pki, &Options::default());
    assert!(got.is_empty(), "no data before the certificate is valid");
    let error = error.expect("on_close read why");
    assert!(error.to_lowercase().contains("not valid yet"), "{error}");

    let clock = Arc::new(At(UnixTime::since_unix_epoch(
        std::time::Duration::from_secs(JUNE_2030),
    )));
    let (got, error) = connect(&pki, &Options::default().with_time(clock));
    assert_eq!(got, b"hello", "valid on the injected clock: {error:?}");
}
