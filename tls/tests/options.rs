//! [`ContextOptions`]: a context from files, as the C ABI's options struct describes it. Files
//! that are missing or unusable are errors naming them; what the files say serves real
//! handshakes; a Rust client without a CA file verifies against the platform's roots.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use usockets_core::SocketId;
use usockets_shim_sim::SimShim;
use usockets_tls::{certified_key, default_provider, ContextOptions, Options, TlsError, WithoutCa};

/// A directory of its own under the system's temporary directory, removed on drop.
struct Dir(PathBuf);

impl Dir {
    fn new(tag: &str) -> Dir {
        let dir = std::env::temp_dir().join(format!("usockets-tls-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        Dir(dir)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, text).expect("write");
        path
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The CA, server certificate and key of `pki` written to `dir`.
fn files(dir: &Dir, pki: &Pki) -> (PathBuf, PathBuf, PathBuf) {
    (
        dir.write("ca.pem", &pki.ca_pem),
        dir.write("server.pem", &pki.cert_pem),
        dir.write("server.key", &pki.key_pem),
    )
}

/// Runs an echo conversation between contexts built from `server` and `client`; returns what
/// the client got back and the error its session ended with.
fn converse(server: &ContextOptions, client: &ContextOptions) -> (Vec<u8>, Option<String>) {
    let server = server.build(&Options::default()).expect("server context");
    let client = client.build(&Options::default()).expect("client context");
    converse_built(server, client, "127.0.0.1")
}

/// [`converse`] with contexts already built, the client connecting to `host`.
fn converse_built(
    server: usockets_tls::TlsContext,
    client: usockets_tls::TlsContext,
    host: &str,
) -> (Vec<u8>, Option<String>) {
    let (_net, mut l) = sim();
    l.ext_mut().echo = true;
    l.ext_mut().greeting = b"hello".to_vec();
    let (_, cc, port) = contexts(&mut l, server, client);
    let target = usockets_core::ConnectTarget::Host {
        host,
        port,
        source: None,
    };
    let c = l.connect(cc, target, ()).expect("connect");
    for _ in 0..500 {
        let closed = l.ext().count(|e| *e == Ev::Close { s: c }) == 1;
        if closed || l.ext().received(c) == b"hello" {
            break;
        }
        l.run_once(Some(10)).expect("run");
    }
    (l.ext().received(c).to_vec(), close_error(&l, c))
}

fn close_error(l: &usockets_core::Loop<T<SimShim>>, c: SocketId) -> Option<String> {
    l.ext()
        .close_errors
        .iter()
        .find(|(s, _)| *s == c)
        .and_then(|(_, e)| e.clone())
}

fn file_error(r: Result<usockets_tls::TlsContext, TlsError>) -> PathBuf {
    match r {
        Err(TlsError::File { path, .. }) => path,
        other => panic!("expected a file error, got {other:?}"),
    }
}

#[test]
fn files_make_a_server_and_a_client_that_verifies_it() {
    let dir = Dir::new("ok");
    let pki = Pki::new(&["127.0.0.1"]);
    let (ca, cert, key) = files(&dir, &pki);
    let server = ContextOptions {
        cert_file: Some(cert),
        key_file: Some(key),
        ciphers: Some("ECDHE+AESGCM:!aNULL:!MD5".into()),
        dh_params_file: Some(dir.write(
            "dh.pem",
            "-----BEGIN DH PARAMETERS-----\nMAYCAQI=\n-----END DH PARAMETERS-----\n",
        )),
        low_memory: true,
        ..ContextOptions::default()
    };
    let client = ContextOptions {
        ca_file: Some(ca),
        ..ContextOptions::default()
    };
    assert_eq!(converse(&server, &client), (b"hello".to_vec(), None));
}

#[test]
fn a_missing_or_unusable_file_is_an_error_naming_it() {
    let dir = Dir::new("bad");
    let pki = Pki::new(&["127.0.0.1"]);
    let other = Pki::new(&["127.0.0.1"]);
    let (ca, cert, key) = files(&dir, &pki);
    let other_key = dir.write("other.key", &other.key_pem);
    let o = Options::default();
    let server = |cert: &Path, key: &Path| ContextOptions {
        cert_file: Some(cert.to_owned()),
        key_file: Some(key.to_owned()),
        ..ContextOptions::default()
    };

    let missing = dir.path("missing.key");
    assert_eq!(file_error(server(&cert, &missing).build(&o)), missing);
    let missing = dir.path("missing.pem");
    assert_eq!(file_error(server(&missing, &key).build(&o)), missing);
    // A key that is not the certificate's.
    assert_eq!(file_error(server(&cert, &other_key).build(&o)), other_key);
    // A certificate file holding a key, a key file holding a certificate.
    assert_eq!(file_error(server(&key, &key).build(&o)), key);
    assert_eq!(file_error(server(&cert, &cert).build(&o)), cert);
    // One without the other.
    let half = ContextOptions {
        cert_file: Some(cert.clone()),
        ..ContextOptions::default()
    };
    assert_eq!(file_error(half.build(&o)), cert);
    // A CA file that is missing, DH parameters that are not.
    let missing = dir.path("missing-ca.pem");
    let no_ca = ContextOptions {
        ca_file: Some(missing.clone()),
        ..ContextOptions::default()
    };
    assert_eq!(file_error(no_ca.build(&o)), missing);
    let not_dh = ContextOptions {
        dh_params_file: Some(ca.clone()),
        ..server(&cert, &key)
    };
    assert_eq!(file_error(not_dh.build(&o)), ca);
    // A cipher list that selects nothing rustls has.
    let nothing = ContextOptions {
        ciphers: Some("eNULL:RC4:MD5".into()),
        ..server(&cert, &key)
    };
    assert!(matches!(nothing.build(&o), Err(TlsError::Ciphers { .. })));
}

#[test]
fn a_rust_client_without_a_ca_file_checks_the_platform_roots() {
    let dir = Dir::new("platform");
    let pki = Pki::new(&["127.0.0.1"]);
    let (_, cert, key) = files(&dir, &pki);
    let server = ContextOptions {
        cert_file: Some(cert),
        key_file: Some(key),
        ..ContextOptions::default()
    };
    assert_eq!(
        ContextOptions::default().without_ca,
        WithoutCa::PlatformRoots
    );
    // Our test CA is no platform root: refused, and on_close can tell why.
    let (got, error) = converse(&server, &ContextOptions::default());
    assert_eq!(got, b"");
    let error = error.expect("a verification error");
    assert!(error.contains("UnknownIssuer"), "{error}");
    // Told not to verify (the C ABI's default), it talks.
    let trusting = ContextOptions {
        without_ca: WithoutCa::NoVerification,
        ..ContextOptions::default()
    };
    assert_eq!(converse(&server, &trusting), (b"hello".to_vec(), None));
}

#[test]
fn a_server_without_certificate_serves_only_the_names_added_later() {
    let dir = Dir::new("names");
    let pki = Pki::new(&["localhost"]);
    let (ca, _, _) = files(&dir, &pki);
    let client = ContextOptions {
        ca_file: Some(ca),
        ..ContextOptions::default()
    };
    let bare = ContextOptions::default();
    let o = Options::default();
    let build = |c: &ContextOptions| c.build(&o).expect("context");

    // No certificate and no name: the handshake fails, cleanly.
    let (got, error) = converse_built(build(&bare), build(&client), "localhost");
    assert_eq!(got, b"");
    assert!(error.is_some());

    // A name added after the context was built serves the client asking for it (SNI from the
    // connect host).
    let server = build(&bare);
    let names = server.server_names().expect("a names table").clone();
    let key = certified_key(pki.chain.clone(), pki.key.clone_key(), &default_provider())
        .expect("certified key");
    assert!(names.add("localhost", key, 7).is_ok());
    assert_eq!(names.find_userdata("LOCALHOST"), Some(7));
    assert_eq!(
        converse_built(server, build(&client), "localhost"),
        (b"hello".to_vec(), None)
    );
}
