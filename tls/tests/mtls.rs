//! Mutual TLS: a server that requires client certificates, against clients presenting one its
//! roots trust, one they do not, a self-signed one the server trusts, an untrusted self-signed
//! one, and none; and a server that asks for none. Asserts who gets data in each case.

mod common;

use common::*;
use usockets_core::{Capacity, GrowingStorage, Loop, LoopCallbacks, Settings, SocketId};
use usockets_shim_sim::{Faults, NoFaults, SimNet, SimShim};
use usockets_tls::{TlsContext, Verify, Versions};

const GREETING: &[u8] = b"client certificate test";

/// Runs one client against `server`; returns whether the echo came back (and checks the
/// server saw the data exactly when it did).
fn echo_through(server: TlsContext, client: TlsContext) -> bool {
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
    l.ext_mut().greeting = GREETING.to_vec();
    let (_, cc, port) = contexts(&mut l, server, client);
    let c: SocketId = connect_local(&mut l, cc, port);
    for _ in 0..500 {
        let done = l.ext().received(c) == GREETING
            || l.ext().count(|e| matches!(e, Ev::Close { .. })) == 2;
        if done {
            break;
        }
        l.run_once(Some(10)).expect("run");
    }
    let echoed = l.ext().received(c) == GREETING;
    let server_got = server_end(&l).map_or(0, |s| l.ext().received(s).len());
    assert_eq!(
        server_got > 0,
        echoed,
        "the server received data exactly when the client was accepted"
    );
    echoed
}

#[test]
fn client_certificates_are_required_and_checked() {
    let pki = Pki::new(&["127.0.0.1"]);
    let other = Pki::new(&["127.0.0.1"]);
    let (self_cert, self_key) = self_signed("trusted-self-signed");
    let requiring = |extra_root: Option<rustls::pki_types::CertificateDer<'static>>| {
        let mut roots = vec![pki.ca.clone()];
        roots.extend(extra_root);
        let config = usockets_tls::server_config_with_client_auth(
            pki.chain.clone(),
            pki.key.clone_key(),
            roots,
            &usockets_tls::Options::new(Versions::Both),
        )
        .expect("server config");
        TlsContext::server(config)
    };
    let client = |identity: Option<Identity>| {
        let config = usockets_tls::client_config_with_cert(
            Verify::Roots(vec![pki.ca.clone()]),
            identity,
            &usockets_tls::Options::new(Versions::Both),
        )
        .expect("client config");
        TlsContext::client(config)
    };

    assert!(
        echo_through(requiring(None), client(Some(pki.client_identity("alice")))),
        "a client certificate from the trusted CA is accepted"
    );
    assert!(
        !echo_through(
            requiring(None),
            client(Some(other.client_identity("mallory")))
        ),
        "a client certificate from another CA is refused"
    );
    assert!(
        echo_through(
            requiring(Some(self_cert[0].clone())),
            client(Some((self_cert.clone(), self_key.clone_key())))
        ),
        "a self-signed client certificate the server trusts is accepted"
    );
    assert!(
        !echo_through(requiring(None), client(Some(self_signed("stranger")))),
        "an untrusted self-signed client certificate is refused"
    );
    assert!(
        !echo_through(requiring(None), client(None)),
        "no client certificate is refused"
    );
    assert!(
        echo_through(pki.server(Versions::Both), client(None)),
        "a server that asks for no certificate takes any client"
    );
}
