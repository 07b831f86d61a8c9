//! The `tls_server` fuzz target's committed inputs (`fuzz/seeds/tls_server/`), replayed through
//! the very function the target runs. `generate_tls_seeds` (ignored) rewrites the `seed-*`
//! files: `cargo test -p usockets-fuzz-harness --test tls_seeds -- --ignored generate_tls_seeds`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use usockets_fuzz_harness::run_tls_server;
use usockets_tls::rustls;

fn seeds_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../seeds/tls_server")
}

/// `bytes` cut into pieces of the given sizes (cycling), in the target's input format: each
/// piece preceded by its length.
fn pieces(bytes: &[u8], sizes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = bytes;
    for &n in sizes.iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let n = usize::from(n.max(1)).min(rest.len());
        out.push(n as u8);
        out.extend_from_slice(&rest[..n]);
        rest = &rest[n..];
    }
    out
}

/// A real ClientHello offering `versions`.
fn client_hello(versions: usockets_tls::Versions) -> Vec<u8> {
    let config = usockets_tls::client_config(
        usockets_tls::Verify::NoVerification,
        &usockets_tls::Options::new(versions),
    )
    .expect("client config");
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").expect("name");
    let mut conn = rustls::ClientConnection::new(Arc::clone(&config), name).expect("client");
    let mut out = Vec::new();
    while conn.wants_write() {
        conn.write_tls(&mut out).expect("hello");
    }
    out
}

/// The seeds: real ClientHellos whole and in small pieces, a record with an oversized length,
/// and plain HTTP.
fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let hello13 = client_hello(usockets_tls::Versions::Both);
    let hello12 = client_hello(usockets_tls::Versions::Tls12);
    let mut oversized = vec![22, 3, 3, 0xff, 0xff];
    oversized.extend_from_slice(&[0u8; 40]);
    vec![
        ("seed-hello-whole", pieces(&hello13, &[255])),
        ("seed-hello-pieces", pieces(&hello13, &[1, 7, 3, 60, 2])),
        ("seed-hello12", pieces(&hello12, &[5, 255])),
        ("seed-oversized-record", pieces(&oversized, &[255])),
        (
            "seed-plain-http",
            pieces(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n", &[255]),
        ),
    ]
}

#[test]
fn committed_tls_server_seeds_replay_cleanly() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(seeds_dir())
        .expect("fuzz/seeds/tls_server exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(
        files.len() >= seeds().len(),
        "the seeds are committed: {files:?}"
    );
    for f in files {
        let data = std::fs::read(&f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        run_tls_server(&data);
    }
}

#[test]
fn fresh_seeds_run_cleanly() {
    // The generator's output today (its ClientHellos carry fresh randomness): no panic either.
    for (_, data) in seeds() {
        run_tls_server(&data);
    }
}

#[test]
#[ignore = "rewrites fuzz/seeds/tls_server/seed-*; run on demand"]
fn generate_tls_seeds() {
    std::fs::create_dir_all(seeds_dir()).expect("seeds dir");
    for (name, data) in seeds() {
        std::fs::write(seeds_dir().join(name), data).expect("write seed");
    }
}
