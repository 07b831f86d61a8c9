use std::sync::Arc;

use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls::{CipherSuite, ClientConnection, ServerConnection};

use super::*;
use crate::{client_config, server_config, Options, Verify, Versions};

// ring's TLS 1.2 suites, in its provider's order.
const E256: &str = "ECDHE-ECDSA-AES256-GCM-SHA384";
const E128: &str = "ECDHE-ECDSA-AES128-GCM-SHA256";
const ECHA: &str = "ECDHE-ECDSA-CHACHA20-POLY1305";
const R256: &str = "ECDHE-RSA-AES256-GCM-SHA384";
const R128: &str = "ECDHE-RSA-AES128-GCM-SHA256";
const RCHA: &str = "ECDHE-RSA-CHACHA20-POLY1305";
const RING_ORDER: [&str; 6] = [E256, E128, ECHA, R256, R128, RCHA];

fn ring() -> CryptoProvider {
    rustls::crypto::ring::default_provider()
}

/// The OpenSSL names of what `spec` selects from ring's suites, in order.
fn select(spec: &str) -> Vec<String> {
    select_tls12_suites(&ring(), spec)
        .unwrap_or_else(|e| panic!("{spec:?} refused: {e}"))
        .into_iter()
        .map(|s| Entry::new(s).name())
        .collect()
}

fn refused(spec: &str) -> String {
    match select_tls12_suites(&ring(), spec) {
        Err(e @ TlsError::Ciphers { .. }) => e.to_string(),
        Err(e) => panic!("{spec:?}: wrong error {e}"),
        Ok(s) => panic!("{spec:?} selected {} suites", s.len()),
    }
}

#[test]
fn ring_suites_get_their_openssl_names() {
    assert_eq!(select("ALL"), RING_ORDER);
}

#[test]
fn high_without_anull_and_md5_selects_every_tls12_suite() {
    assert_eq!(select("HIGH:!aNULL:!MD5"), RING_ORDER);
    assert_eq!(select("DEFAULT"), RING_ORDER);
    assert_eq!(select("TLSv1.2"), RING_ORDER);
}

#[test]
fn joined_keywords_select_the_intersection() {
    assert_eq!(select("ECDHE+AESGCM"), [E256, E128, R256, R128]);
    assert_eq!(select("aRSA+kECDHE"), [R256, R128, RCHA]);
    assert_eq!(select("AESGCM+AES256"), [E256, R256]);
    // A word matching nothing empties the intersection, and only it.
    assert_eq!(select("FOO+AES:CHACHA20"), [ECHA, RCHA]);
    assert_eq!(select("ALL:!ECDHE+CHACHA20+FOO"), RING_ORDER);
}

#[test]
fn keywords_select_by_exchange_certificate_and_cipher() {
    for ecdhe in ["ECDHE", "EECDH", "kECDHE", "kEECDH"] {
        assert_eq!(select(ecdhe), RING_ORDER, "{ecdhe}");
    }
    assert_eq!(select("aRSA"), [R256, R128, RCHA]);
    assert_eq!(select("aECDSA"), [E256, E128, ECHA]);
    assert_eq!(select("ECDSA"), [E256, E128, ECHA]);
    assert_eq!(select("AES"), [E256, E128, R256, R128]);
    assert_eq!(select("AES128"), [E128, R128]);
    assert_eq!(select("AES256"), [E256, R256]);
    assert_eq!(select("CHACHA20"), [ECHA, RCHA]);
}

#[test]
fn names_select_exactly_their_suite_in_the_order_given() {
    assert_eq!(select(R128), [R128]);
    assert_eq!(
        select(
            "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256:TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"
        ),
        [R128, ECHA]
    );
    // Suites already selected keep their place; the new ones follow in list order.
    assert_eq!(
        select("ECDHE-RSA-AES128-GCM-SHA256:ECDHE+AESGCM"),
        [R128, E256, E128, R256]
    );
    assert_eq!(
        select(&format!("{RCHA},{E256} {R128};{R128}")),
        [RCHA, E256, R128]
    );
}

#[test]
fn bang_removes_for_good() {
    assert_eq!(select("!ECDSA:ALL"), [R256, R128, RCHA]);
    assert_eq!(
        select(&format!("!ECDSA:ALL:{E128}:ECDSA")),
        [R256, R128, RCHA]
    );
    assert_eq!(select("DEFAULT:!AES128"), [E256, ECHA, R256, RCHA]);
}

#[test]
fn minus_unselects_and_a_later_element_selects_again() {
    // Nothing selected yet: nothing to unselect.
    assert_eq!(select("-CHACHA20:ALL"), RING_ORDER);
    assert_eq!(select("ALL:-CHACHA20"), [E256, E128, R256, R128]);
    assert_eq!(
        select("ALL:-CHACHA20:CHACHA20"),
        [E256, E128, R256, R128, ECHA, RCHA]
    );
    // As in OpenSSL, an unselected suite goes to the front of the list: selected again by a
    // later element, it comes before the ones never selected.
    assert_eq!(
        select("AES256:-AES256:ALL"),
        [E256, R256, E128, ECHA, R128, RCHA]
    );
}

#[test]
fn plus_moves_selected_suites_to_the_end() {
    assert_eq!(
        select("ALL:+CHACHA20"),
        [E256, E128, R256, R128, ECHA, RCHA]
    );
    assert_eq!(
        select("ALL:+AES128:+aRSA"),
        [E256, ECHA, E128, R256, RCHA, R128]
    );
    // Suites not selected are not moved, nor selected.
    assert_eq!(select("+CHACHA20:ALL"), RING_ORDER);
    assert_eq!(select("AES128:+CHACHA20"), [E128, R128]);
}

#[test]
fn strength_sorts_by_key_length_keeping_the_order_of_equals() {
    assert_eq!(
        select("CHACHA20:AES128:ALL:@STRENGTH"),
        [ECHA, RCHA, E256, R256, E128, R128]
    );
    assert_eq!(
        select("AES128:ALL:@STRENGTH:+AES256"),
        [ECHA, RCHA, E128, R128, E256, R256]
    );
}

#[test]
fn seclevel_is_accepted_and_ignored() {
    assert_eq!(select("ALL:@SECLEVEL=2"), RING_ORDER);
    assert_eq!(select("@SECLEVEL=0:ECDSA"), [E256, E128, ECHA]);
}

#[test]
fn default_counts_only_first() {
    assert_eq!(select("AES128:DEFAULT"), [E128, R128]);
    assert!(refused("-AES128:DEFAULT").contains("selects no TLS 1.2 cipher suite"));
}

#[test]
fn unknown_names_are_ignored() {
    assert_eq!(
        select(&format!("FOO:{R128}:AES128-SHA:TLS_AES_128_GCM_SHA256")),
        [R128]
    );
    assert_eq!(select("ALL:!FOO:-BAR:+BAZ"), RING_ORDER);
}

#[test]
fn keywords_for_suites_rustls_lacks_select_nothing() {
    for none in [
        "eNULL", "NULL", "aNULL", "RC4", "MD5", "DES", "3DES", "EXPORT", "LOW", "MEDIUM", "SHA1",
        "SHA", "SHA256", "SHA384", "RSA", "kRSA", "PSK", "kPSK", "aPSK", "DHE", "EDH", "SSLv3",
        "TLSv1", "CAMELLIA",
    ] {
        let message = refused(none);
        assert!(
            message.contains("selects no TLS 1.2 cipher suite") && message.contains(R128),
            "{none}: {message}"
        );
    }
    // Removing them removes nothing.
    assert_eq!(
        select("ALL:!eNULL:!aNULL:!MD5:!RC4:!3DES:!SHA256:!RSA"),
        RING_ORDER
    );
}

#[test]
fn a_list_selecting_nothing_is_an_error() {
    for spec in [
        "",
        " ",
        ":,;",
        "FOO",
        "all",
        "high",
        "ecdhe-rsa-aes128-gcm-sha256",
        "+ECDHE",
    ] {
        let message = refused(spec);
        assert!(
            message.contains("selects no TLS 1.2"),
            "{spec:?}: {message}"
        );
        assert!(
            message.starts_with(&format!("cipher list {spec:?}")),
            "{message}"
        );
    }
}

#[test]
fn malformed_lists_are_errors() {
    for (spec, problem) in [
        ("ALL:!", "empty name"),
        ("ALL:-", "empty name"),
        ("ECDHE+", "empty name"),
        ("ALL:AES++ECDHE", "empty name"),
        ("ALL:@FOO", "unknown command"),
        ("ALL:@STRENGTH=3", "unknown command"),
        ("ALL:@SECLEVEL=9", "unknown command"),
        ("ALL:@SECLEVEL=", "unknown command"),
    ] {
        let message = refused(spec);
        assert!(message.contains(problem), "{spec:?}: {message}");
    }
    // Non-ASCII input is only an unknown name.
    assert_eq!(select("é:ALL:!é+AES"), RING_ORDER);
}

#[test]
fn the_narrowed_provider_keeps_tls13_and_orders_tls12_as_listed() {
    let provider = ring();
    let narrowed = provider_with_cipher_list(&provider, &format!("{RCHA}:{E256}")).expect("list");
    let suites: Vec<CipherSuite> = narrowed.cipher_suites.iter().map(|s| s.suite()).collect();
    assert_eq!(
        suites,
        [
            CipherSuite::TLS13_AES_256_GCM_SHA384,
            CipherSuite::TLS13_AES_128_GCM_SHA256,
            CipherSuite::TLS13_CHACHA20_POLY1305_SHA256,
            CipherSuite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
            CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        ]
    );
    assert_eq!(narrowed.kx_groups.len(), provider.kx_groups.len());
    assert!(provider_with_cipher_list(&provider, "RC4").is_err());
}

/// A TLS 1.2 handshake in memory between a server on `server_list` and a default client: the
/// suite they agree on.
fn negotiate(server_list: &str) -> Option<CipherSuite> {
    let key = rcgen::KeyPair::generate().expect("key"); // ECDSA P-256
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
        .expect("params")
        .self_signed(&key)
        .expect("certificate");
    let narrowed = provider_with_cipher_list(&ring(), server_list).expect("list");
    let options = Options {
        provider: Arc::new(narrowed),
        ..Options::new(Versions::Tls12)
    };
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let server = server_config(vec![cert.der().clone()], key, &options).expect("server");
    let client = client_config(Verify::NoVerification, &Options::new(Versions::Tls12));
    let name = ServerName::try_from("localhost").expect("name");
    let mut client = ClientConnection::new(client.expect("client"), name).expect("client");
    let mut server = ServerConnection::new(server).expect("server");
    for _ in 0..8 {
        let mut records = Vec::new();
        client.write_tls(&mut records).expect("client writes");
        let mut rd = &records[..];
        while !rd.is_empty() {
            server.read_tls(&mut rd).expect("server reads");
            server.process_new_packets().ok()?;
        }
        records.clear();
        server.write_tls(&mut records).expect("server writes");
        let mut rd = &records[..];
        while !rd.is_empty() {
            client.read_tls(&mut rd).expect("client reads");
            client.process_new_packets().ok()?;
        }
        if !client.is_handshaking() && !server.is_handshaking() {
            break;
        }
    }
    server.negotiated_cipher_suite().map(|s| s.suite())
}

#[test]
fn a_server_on_a_narrowed_provider_negotiates_only_what_the_list_allows() {
    assert_eq!(
        negotiate("ECDHE-ECDSA-CHACHA20-POLY1305"),
        Some(CipherSuite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256)
    );
    assert_eq!(
        negotiate("ECDSA+AES128"),
        Some(CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256)
    );
    // An ECDSA certificate and RSA suites only: no suite in common, no session.
    assert_eq!(negotiate("aRSA"), None);
}
