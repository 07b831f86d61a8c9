//! The TLS fuzz targets' committed inputs (`fuzz/seeds/tls_server/`, `fuzz/seeds/tls_session/`),
//! replayed through the very functions the targets run. `generate_tls_seeds` and
//! `generate_tls_session_seeds` (ignored) rewrite the `seed-*` files:
//! `cargo test -p usockets-fuzz-harness --test tls_seeds -- --ignored generate`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use usockets_fuzz_harness::{run_tls_server, run_tls_session, SessionReport};
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

// ---- tls_session ---------------------------------------------------------------------------

fn session_seeds_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../seeds/tls_session")
}

/// The target's operations (the low nibble of an op byte; see `run_tls_session`'s docs).
mod op {
    pub const RUN: u8 = 0;
    pub const WRITE: u8 = 1;
    pub const WRITE2: u8 = 2;
    pub const FORWARD: u8 = 3;
    pub const FLIP: u8 = 4;
    pub const INJECT: u8 = 5;
    pub const DROP: u8 = 6;
    pub const SHUTDOWN: u8 = 7;
    pub const CLOSE: u8 = 8;
    pub const ADOPT: u8 = 9;
    pub const PAUSE: u8 = 10;
    pub const RESUME: u8 = 11;
    pub const TIMEOUT: u8 = 12;
    pub const ADVANCE: u8 = 13;
    pub const END: u8 = 14;
    pub const SHUT_READ: u8 = 15;
    /// Every operation.
    pub const COUNT: usize = 16;
}

/// Sides, and directions (a direction is named by its sender).
const CLIENT: u8 = 0;
const SERVER: u8 = 1;

/// An op byte: operation `code`, side or direction `side`, argument `arg` (0..8).
fn op(code: u8, side: u8, arg: u8) -> u8 {
    code | (side << 4) | (arg << 5)
}

/// Setup bits (see `run_tls_session`'s docs).
const TLS12: u8 = 1;
const CHACHA: u8 = 2;
const REACTIVE: u8 = 4;
const EARLY: u8 = 8;
const SMALL_RECV: u8 = 0x80;
fn fault_profile(p: u8) -> u8 {
    p << 4
}

/// Length bytes (see `length` in the harness): 32, 512, 8192 and 20480 bytes.
const LEN_32: u8 = 0x3f;
const LEN_512: u8 = 0x9f;
const LEN_8K: u8 = 0xdf;
const LEN_20K: u8 = 0xff;

/// An input: `setup`, `early`, the fault bytes, the ops.
fn input(setup: u8, early: u8, faults: &[u8], ops: &[u8]) -> Vec<u8> {
    let mut v = vec![setup, early, faults.len() as u8];
    v.extend_from_slice(faults);
    v.extend_from_slice(ops);
    v
}

/// The committed seeds: small inputs that together run every operation in every
/// configuration, with faults, callback actions and a man in the middle at work.
fn session_seeds() -> Vec<(&'static str, Vec<u8>)> {
    use op::*;
    // The client writes, the proxy passes it on, and the client then (in seeds with tampering)
    // gets something else.
    let exchange = [
        op(WRITE, CLIENT, 0),
        LEN_512,
        op(WRITE2, SERVER, 0),
        LEN_8K,
        100,
        op(RUN, 0, 2),
    ];
    let then = |rest: &[u8]| [&exchange[..], rest].concat();
    vec![
        (
            "seed-both-ways-then-close-notify",
            input(
                0,
                0,
                &[],
                &then(&[op(SHUTDOWN, CLIENT, 0), op(RUN, 0, 3), op(RUN, 0, 0)]),
            ),
        ),
        (
            "seed-tls12-early-and-reactive",
            input(
                TLS12 | CHACHA | REACTIVE | EARLY,
                // 16,640 bytes from each end before the handshake ends: past the session's
                // early limit, the rest waits for on_writable.
                0xf9,
                &[],
                &[
                    op(RUN, 0, 1),
                    8,
                    LEN_32,
                    0x19,
                    14,
                    op(WRITE, CLIENT, 0),
                    LEN_32,
                    op(RUN, 0, 3),
                    12,
                    0x3c,
                ],
            ),
        ),
        (
            "seed-records-in-pieces",
            input(
                TLS12 | SMALL_RECV,
                0,
                &[],
                // 513 bytes, 8, 8,161 and the rest, each piece read before the next
                // arrives (RUN with argument 4: the proxy holds the rest).
                &[
                    op(WRITE, CLIENT, 0),
                    LEN_20K,
                    op(FORWARD, CLIENT, 3),
                    0x40,
                    op(RUN, 0, 4),
                    op(FORWARD, CLIENT, 0),
                    7,
                    op(RUN, 0, 4),
                    op(FORWARD, CLIENT, 5),
                    0xff,
                    op(RUN, 0, 5),
                    op(RUN, 0, 3),
                ],
            ),
        ),
        (
            "seed-bit-flipped",
            input(
                CHACHA,
                0,
                &[],
                &[
                    op(WRITE, CLIENT, 0),
                    LEN_512,
                    op(FLIP, CLIENT, 3),
                    40,
                    0,
                    op(RUN, 0, 3),
                ],
            ),
        ),
        (
            "seed-bytes-dropped",
            input(
                0,
                0,
                &[],
                &then(&[
                    op(WRITE, SERVER, 0),
                    LEN_32,
                    op(DROP, SERVER, 0),
                    0,
                    5,
                    op(RUN, 0, 3),
                ]),
            ),
        ),
        (
            "seed-raw-garbage",
            input(
                TLS12,
                0,
                &[],
                &then(&[
                    op(INJECT, CLIENT, 0),
                    128,
                    4,
                    0xde,
                    0xad,
                    0xbe,
                    0xef,
                    op(RUN, 0, 3),
                ]),
            ),
        ),
        (
            "seed-plaintext-alert",
            input(
                0,
                0,
                &[],
                &then(&[op(INJECT, SERVER, 1), 0, 1, 0, op(RUN, 0, 3)]),
            ),
        ),
        (
            "seed-change-cipher-spec",
            input(
                TLS12 | CHACHA,
                0,
                &[],
                &then(&[op(INJECT, SERVER, 2), 255, op(RUN, 0, 3)]),
            ),
        ),
        (
            "seed-forged-header",
            input(
                0,
                0,
                &[],
                &then(&[op(INJECT, CLIENT, 3), 0, 23, 0, 20, 1, 2, 3, op(RUN, 0, 3)]),
            ),
        ),
        (
            "seed-record-replayed",
            input(
                0,
                0,
                &[],
                &then(&[
                    op(WRITE, CLIENT, 0),
                    LEN_32,
                    op(INJECT, CLIENT, 4),
                    255,
                    op(RUN, 0, 3),
                ]),
            ),
        ),
        (
            "seed-record-reflected",
            input(
                TLS12,
                0,
                &[],
                &then(&[
                    op(WRITE, CLIENT, 0),
                    LEN_32,
                    op(INJECT, SERVER, 5),
                    0,
                    op(RUN, 0, 3),
                ]),
            ),
        ),
        (
            "seed-record-truncated",
            input(
                CHACHA,
                0,
                &[],
                &then(&[
                    op(WRITE, SERVER, 0),
                    LEN_32,
                    op(INJECT, SERVER, 6),
                    255,
                    9,
                    op(RUN, 0, 3),
                ]),
            ),
        ),
        (
            "seed-empty-record",
            input(
                TLS12,
                0,
                &[],
                &then(&[op(INJECT, CLIENT, 7), 128, op(RUN, 0, 3)]),
            ),
        ),
        (
            "seed-adopted-both-ends",
            input(
                0,
                0,
                &[],
                &[
                    op(ADOPT, CLIENT, 2),
                    op(ADOPT, SERVER, 3),
                    op(WRITE, CLIENT, 0),
                    LEN_512,
                    op(WRITE, SERVER, 0),
                    LEN_32,
                    op(RUN, 0, 2),
                    op(ADOPT, SERVER, 1),
                    op(WRITE2, SERVER, 0),
                    LEN_512,
                    7,
                    op(RUN, 0, 2),
                ],
            ),
        ),
        (
            "seed-paused-then-timeout",
            input(
                TLS12,
                0,
                &[],
                &[
                    op(PAUSE, SERVER, 0),
                    op(WRITE, CLIENT, 0),
                    LEN_512,
                    op(TIMEOUT, CLIENT, 0),
                    op(ADVANCE, 0, 0),
                    255,
                    op(ADVANCE, 0, 0),
                    255,
                    op(RESUME, SERVER, 0),
                    op(RUN, 0, 2),
                ],
            ),
        ),
        (
            "seed-os-faults",
            input(
                fault_profile(5),
                0,
                &[
                    3, 0, 200, 1, 0, 0, 17, 2, 9, 0, 0, 1, 250, 3, 0, 2, 1, 1, 0, 0, 90, 1,
                ],
                &then(&[
                    op(WRITE, SERVER, 0),
                    LEN_8K,
                    op(RUN, 0, 3),
                    op(ADVANCE, 0, 0),
                    3,
                ]),
            ),
        ),
        (
            "seed-os-reset",
            input(
                TLS12 | fault_profile(6),
                0,
                &[1, 0, 0, 0, 5, 0, 3, 0],
                &then(&[op(RUN, 0, 3)]),
            ),
        ),
        (
            "seed-fin-from-the-middle",
            input(CHACHA, 0, &[], &then(&[op(END, CLIENT, 0), op(RUN, 0, 2)])),
        ),
        (
            "seed-reset-from-the-middle",
            input(TLS12, 0, &[], &then(&[op(END, SERVER, 1), op(RUN, 0, 2)])),
        ),
        (
            "seed-read-side-shut",
            input(
                0,
                0,
                &[],
                &[
                    op(SHUT_READ, SERVER, 0),
                    op(WRITE, CLIENT, 0),
                    LEN_32,
                    op(RUN, 0, 2),
                ],
            ),
        ),
        (
            "seed-closed-then-written",
            input(
                TLS12,
                0,
                &[],
                &[
                    op(CLOSE, SERVER, 0),
                    op(WRITE, SERVER, 0),
                    LEN_32,
                    op(WRITE, CLIENT, 0),
                    LEN_32,
                    op(RUN, 0, 1),
                    op(WRITE, CLIENT, 0),
                    LEN_32,
                ],
            ),
        ),
    ]
}

fn committed_session_seeds() -> Vec<(PathBuf, Vec<u8>)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(session_seeds_dir())
        .expect("fuzz/seeds/tls_session exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|f| {
            let data = std::fs::read(&f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
            (f, data)
        })
        .collect()
}

#[test]
fn committed_tls_session_seeds_replay_cleanly_and_reach_every_operation() {
    let seeds = committed_session_seeds();
    assert!(
        seeds.len() >= session_seeds().len(),
        "the seeds are committed: {:?}",
        seeds.iter().map(|(f, _)| f).collect::<Vec<_>>()
    );
    let bytes: usize = seeds.iter().map(|(_, d)| d.len()).sum();
    assert!(bytes < 16 * 1024, "tls_session seeds are {bytes} bytes");
    let mut all = SessionReport::default();
    let mut variants = [false; 4];
    for (f, data) in &seeds {
        let name = f.file_name().and_then(|n| n.to_str()).unwrap_or("?");
        assert!(
            name.starts_with("seed-") || name.starts_with("regression-"),
            "{name}: committed inputs are seed-* or regression-*"
        );
        let report = run_tls_session(data);
        // The same input, the same run: the same bytes through the proxy.
        assert_eq!(
            run_tls_session(data),
            report,
            "{name} ran differently twice"
        );
        variants[usize::from(report.variant)] = true;
        for (a, b) in all.ops.iter_mut().zip(report.ops) {
            *a += b;
        }
        all.actions += report.actions;
        all.faults += report.faults;
        all.timeouts += report.timeouts;
        for d in 0..2 {
            all.tampered[d] |= report.tampered[d];
            all.got[d] += report.got[d];
        }
    }
    for (code, n) in all.ops.iter().enumerate().take(op::COUNT) {
        assert!(*n > 0, "no seed runs operation {code}");
    }
    assert_eq!(variants, [true; 4], "every configuration");
    assert!(all.actions > 0, "callbacks act");
    assert!(all.faults > 0, "the simulated OS injects faults");
    assert!(all.timeouts > 0, "a timeout fires");
    assert_eq!(all.tampered, [true, true], "both directions tampered with");
    assert!(all.got[0] > 0 && all.got[1] > 0, "plaintext both ways");
}

#[test]
fn the_committed_tls_session_seeds_are_the_generated_ones() {
    // The generator is deterministic (no randomness in the seeds, and every run of the target
    // makes the same handshake): the committed seed-* files are exactly what it writes.
    let committed = committed_session_seeds();
    for (name, data) in session_seeds() {
        let file = committed
            .iter()
            .find(|(f, _)| f.file_name().and_then(|n| n.to_str()) == Some(name));
        let (_, bytes) = file.unwrap_or_else(|| panic!("{name} is not committed"));
        assert_eq!(
            bytes, &data,
            "{name} differs from the generator's: rerun generate_tls_session_seeds"
        );
    }
}

#[test]
#[ignore = "rewrites fuzz/seeds/tls_session/seed-*; run on demand"]
fn generate_tls_session_seeds() {
    std::fs::create_dir_all(session_seeds_dir()).expect("seeds dir");
    for (name, data) in session_seeds() {
        run_tls_session(&data);
        std::fs::write(session_seeds_dir().join(name), data).expect("write seed");
    }
}
