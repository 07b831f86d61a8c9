//! Writes a throwaway certificate authority and a server certificate signed by it, for
//! `localhost` and `127.0.0.1`, so that TLS runs (`benches/tls.sh`, or by hand) need no
//! committed private key and no OpenSSL: the keys are made here, with rcgen, each time.
//!
//! `cargo run --release --example bench_cert -- DIR` writes `DIR/ca.pem` (the CA certificate,
//! for `load --tls`), `DIR/cert.pem` and `DIR/key.pem` (for the servers' `--cert` and `--key`).
//! The keys are ECDSA P-256, rcgen's default.

use std::path::Path;

/// Exits with a message: this is set-up code, every failure ends the run.
fn fail(what: &str, e: impl std::fmt::Display) -> ! {
    eprintln!("bench_cert: {what}: {e}");
    std::process::exit(1);
}

/// Writes `contents` to `dir/name`, or exits.
fn write(dir: &Path, name: &str, contents: String) {
    let path = dir.join(name);
    if let Err(e) = std::fs::write(&path, contents) {
        fail(&path.display().to_string(), e);
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(dir), None) = (args.next(), args.next()) else {
        eprintln!("usage: bench_cert DIR");
        std::process::exit(2);
    };
    let dir = Path::new(&dir);
    let ca_key = rcgen::KeyPair::generate().unwrap_or_else(|e| fail("CA key", e));
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new())
        .unwrap_or_else(|e| fail("CA parameters", e));
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "usockets benchmark CA");
    let ca = ca_params
        .self_signed(&ca_key)
        .unwrap_or_else(|e| fail("CA certificate", e));
    let key = rcgen::KeyPair::generate().unwrap_or_else(|e| fail("server key", e));
    let params = rcgen::CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()])
        .unwrap_or_else(|e| fail("server parameters", e));
    let cert = params
        .signed_by(&key, &ca, &ca_key)
        .unwrap_or_else(|e| fail("server certificate", e));
    write(dir, "ca.pem", ca.pem());
    write(dir, "cert.pem", cert.pem());
    write(dir, "key.pem", key.serialize_pem());
}
