//! Server name indication: the server's certificate chosen by the name the client asks for, on
//! the simulated OS, with a rustls client driven by hand so it can ask for any name.

mod common;

use std::sync::Arc;

use common::*;
use rustls::pki_types::{CertificateDer, ServerName};
use usockets_core::{Capacity, GrowingStorage, Loop, LoopCallbacks, Settings};
use usockets_shim_sim::{Faults, NoFaults, SimNet, SimShim};
use usockets_tls::{ServerNames, TlsContext, Verify, Versions};

/// A certificate for `name`, ready to serve, and its DER (to recognise it client-side).
fn cert(name: &str) -> (Arc<rustls::sign::CertifiedKey>, CertificateDer<'static>) {
    let (chain, key) = self_signed(name);
    let der = chain[0].clone();
    let provider = usockets_tls::default_provider();
    (
        usockets_tls::certified_key(chain, key, &provider).expect("certified key"),
        der,
    )
}

/// Handshakes with the server as a client asking for `name`; returns the certificate it got
/// (`None` if the handshake failed).
fn served_to(names: &Arc<ServerNames>, name: &str) -> Option<CertificateDer<'static>> {
    let net = SimNet::new(Faults::NONE, Box::new(NoFaults));
    let mut l: Loop<T<SimShim>> = Loop::new(
        net.shim(),
        GrowingStorage::new(Capacity::new().with_recv(64 * 1024)),
        Log::default(),
        LoopCallbacks::default(),
        Settings::default(),
    )
    .expect("loop");
    let config = usockets_tls::server_config_with_names(
        Arc::clone(names),
        &usockets_tls::Options::new(Versions::Both),
    )
    .expect("server config");
    let (_, _, port) = contexts(&mut l, TlsContext::server(config), TlsContext::plain());
    let peer = net.peer_connect(port).expect("peer");
    let client_config = usockets_tls::client_config(
        Verify::NoVerification,
        &usockets_tls::Options::new(Versions::Both),
    )
    .expect("client config");
    let server_name = ServerName::try_from(name.to_owned()).expect("name");
    let mut client = rustls::ClientConnection::new(client_config, server_name).expect("client");
    for _ in 0..100 {
        let mut out = Vec::new();
        while client.wants_write() {
            client.write_tls(&mut out).expect("records");
        }
        net.peer_send(peer, &out);
        l.run_once(Some(0)).expect("run");
        let back = net.peer_recv(peer);
        if !back.is_empty() {
            let mut rd = back.as_slice();
            while !rd.is_empty() {
                client.read_tls(&mut rd).expect("read");
                if client.process_new_packets().is_err() {
                    return None;
                }
            }
        }
        if !client.is_handshaking() {
            return client
                .peer_certificates()
                .map(|c| c[0].clone().into_owned());
        }
        if net.peer_got_fin(peer) {
            return None;
        }
    }
    None
}

#[test]
fn the_certificate_follows_the_name_asked_for() {
    let (default, default_der) = cert("default.test");
    let (wild, wild_der) = cert("wild.example.com");
    let (exact, exact_der) = cert("www.example.com");
    let (api, api_der) = cert("api.any.org");
    let names = Arc::new(ServerNames::new(Some(default)));
    names.add("*.example.com", wild, 1).expect("pattern");
    names.add("www.example.com", exact, 2).expect("pattern");
    names.add("api.*.org", api, 3).expect("pattern");

    assert_eq!(
        served_to(&names, "shop.example.com"),
        Some(wild_der.clone())
    );
    assert_eq!(
        served_to(&names, "www.example.com"),
        Some(exact_der),
        "an exact name wins over a wildcard"
    );
    assert_eq!(
        served_to(&names, "API.foo.ORG"),
        Some(api_der),
        "case-insensitive"
    );
    assert_eq!(
        served_to(&names, "a.b.example.com"),
        Some(default_der.clone()),
        "`*` matches exactly one label"
    );
    assert_eq!(served_to(&names, "unknown.test"), Some(default_der.clone()));
    assert_eq!(names.find_userdata("shop.example.com"), Some(1));
    assert_eq!(names.find_userdata("www.example.com"), Some(2));
    assert_eq!(names.find_userdata("nothing.test"), None);

    assert!(names.remove("*.example.com"));
    assert!(!names.remove("*.example.com"), "removed once");
    assert_eq!(served_to(&names, "shop.example.com"), Some(default_der));
}

#[test]
fn without_a_default_an_unknown_name_fails_the_handshake() {
    let (known, known_der) = cert("known.test");
    let names = Arc::new(ServerNames::new(None));
    names.add("known.test", known, 0).expect("pattern");
    assert_eq!(served_to(&names, "known.test"), Some(known_der));
    assert_eq!(served_to(&names, "unknown.test"), None);
}

#[test]
fn a_name_added_while_the_handshake_asks_for_it_serves_that_handshake() {
    let (late, late_der) = cert("late.test");
    let on_missing = move |names: &ServerNames, name: &str| {
        if name == "late.test" {
            names.add(name, Arc::clone(&late), 7).expect("pattern");
        }
    };
    let names = Arc::new(ServerNames::new(None).with_on_missing(Box::new(on_missing)));
    assert_eq!(names.find_userdata("late.test"), None, "not known before");
    assert_eq!(served_to(&names, "late.test"), Some(late_der));
    assert_eq!(names.find_userdata("late.test"), Some(7), "added for good");
    assert_eq!(served_to(&names, "other.test"), None);
}
