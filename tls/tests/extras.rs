//! What a session tells the application, ours against ours on the simulated OS: the ALPN
//! protocol agreed, and session resumption on a second connection of the same client config.

mod common;

use std::sync::Arc;

use common::*;
use usockets_core::Loop;
use usockets_shim_sim::SimShim;
use usockets_tls::{TlsContext, Verify, Versions};

type L = Loop<T<SimShim>>;

/// Connects once more with the client context and returns the client socket once the server
/// echoed its greeting.
fn exchange(l: &mut L, cc: usockets_core::ContextId, port: u16) -> usockets_core::SocketId {
    let c = connect_local(l, cc, port);
    for _ in 0..500 {
        if l.ext().received(c) == b"hello" {
            return c;
        }
        l.run_once(Some(10)).expect("run");
    }
    panic!("no echo: {:?}", l.ext().events);
}

#[test]
fn alpn_is_agreed_and_a_second_connection_resumes() {
    for versions in [Versions::Tls13, Versions::Tls12] {
        let (_net, mut l) = sim();
        l.ext_mut().echo = true;
        l.ext_mut().greeting = b"hello".to_vec();
        let pki = Pki::new(&["127.0.0.1"]);
        let mut server = (*usockets_tls::server_config(
            pki.chain.clone(),
            pki.key.clone_key(),
            &usockets_tls::Options::new(versions),
        )
        .expect("server"))
        .clone();
        server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let mut client = (*usockets_tls::client_config(
            Verify::Roots(vec![pki.ca.clone()]),
            &usockets_tls::Options::new(versions),
        )
        .expect("client"))
        .clone();
        client.alpn_protocols = vec![b"http/1.1".to_vec()];
        let (_, cc, port) = contexts(
            &mut l,
            TlsContext::server(Arc::new(server)),
            TlsContext::client(Arc::new(client)),
        );
        let first = exchange(&mut l, cc, port);
        let info = usockets_tls::info(&l, first).expect("session");
        assert_eq!(info.alpn.as_deref(), Some(&b"http/1.1"[..]), "{versions:?}");
        assert!(
            !info.resumed,
            "{versions:?}: the first handshake is a full one"
        );
        l.close(first, 0, None);
        // TLS 1.3 sends its tickets after the handshake: let them arrive.
        for _ in 0..10 {
            l.run_once(Some(10)).expect("run");
        }
        l.ext_mut().rx.clear();
        let second = exchange(&mut l, cc, port);
        let info = usockets_tls::info(&l, second).expect("session");
        assert!(info.resumed, "{versions:?}: the second connection resumed");
        assert_eq!(info.alpn.as_deref(), Some(&b"http/1.1"[..]));
    }
}
