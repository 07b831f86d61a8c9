//! Backpressure: the server writes 64 MiB to a client that stops reading. While it does not
//! read, the shim holds at most the connection's one slab (the pool bounds the server's
//! memory, however much it writes); when it reads again every byte arrives, in order.
#![cfg(target_os = "linux")]

mod common;

use std::io::Read;
use std::net::TcpStream;
use std::sync::mpsc;
use std::time::Duration;

use common::{drive, listen_local, new_loop, pattern, rss, U};
use usockets_core::{ContextCallbacks, Cx, ListenOptions, SocketId};
use usockets_shim_uring::UringConfig;

const TOTAL: u64 = 64 << 20;
const SLAB: u32 = 64 * 1024;
const SLABS: u32 = 16;

/// The loop ext: bytes written so far, and the most slabs ever in use.
#[derive(Default)]
struct Writer {
    sent: u64,
    slabs_max: u32,
    short_writes: u64,
}

type C = U<Writer, ()>;

/// Writes the stream from where it stopped until the shim takes no more.
fn pump(cx: &mut Cx<C>, s: SocketId) {
    let mut chunk = [0u8; 16 * 1024];
    loop {
        let at = cx.ext().sent;
        if at == TOTAL {
            return;
        }
        let n = chunk.len().min((TOTAL - at) as usize);
        for (k, b) in chunk[..n].iter_mut().enumerate() {
            *b = pattern(at + k as u64);
        }
        let took = cx.write(s, &chunk[..n], false);
        cx.ext_mut().sent += took as u64;
        let used = cx.shim().send_slabs_in_use();
        let w = cx.ext_mut();
        w.slabs_max = w.slabs_max.max(used);
        if took < n {
            w.short_writes += 1;
            return;
        }
    }
}

fn on_open(cx: &mut Cx<C>, s: SocketId, _client: bool, _ip: &[u8]) {
    pump(cx, s);
}

fn on_writable(cx: &mut Cx<C>, s: SocketId) {
    pump(cx, s);
}

#[test]
fn a_client_that_stops_reading_costs_one_slab_and_loses_nothing() {
    let config = UringConfig::default().with_send_pool(SLABS, SLAB);
    let mut l = new_loop::<Writer, ()>(config, Writer::default());
    let callbacks = ContextCallbacks {
        on_open: Some(on_open),
        on_writable: Some(on_writable),
        ..ContextCallbacks::default()
    };
    let port = listen_local(&mut l, callbacks, ListenOptions::default());

    let (go_tx, go_rx) = mpsc::channel::<()>();
    let client = std::thread::spawn(move || -> Result<u64, String> {
        let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .map_err(|e| e.to_string())?;
        go_rx.recv().map_err(|e| e.to_string())?;
        let mut buf = vec![0u8; 256 * 1024];
        let mut at = 0u64;
        while at < TOTAL {
            let n = s.read(&mut buf).map_err(|e| format!("read at {at}: {e}"))?;
            if n == 0 {
                return Err(format!("EOF at {at}"));
            }
            for (k, &b) in buf[..n].iter().enumerate() {
                if b != pattern(at + k as u64) {
                    return Err(format!(
                        "byte {} is {b}, not {}",
                        at + k as u64,
                        pattern(at + k as u64)
                    ));
                }
            }
            at += n as u64;
        }
        Ok(at)
    });

    // Phase 1: the client does not read. The server writes until the kernel's buffers and
    // the slab are full, then its writes stall.
    let rss_before = rss();
    drive(
        &mut l,
        Duration::from_secs(10),
        "the first short write",
        |l| l.ext().short_writes > 0,
    );
    let mut stalled_at = l.ext().sent;
    let mut quiet = 0;
    drive(
        &mut l,
        Duration::from_secs(10),
        "the writes to stall",
        |l| {
            let sent = l.ext().sent;
            quiet = if sent == stalled_at { quiet + 1 } else { 0 };
            stalled_at = sent;
            quiet >= 50
        },
    );
    let stalled = l.ext().sent;
    assert!(
        stalled < TOTAL,
        "a non-reading client took all {TOTAL} bytes"
    );
    assert_eq!(
        l.shim().send_slabs_in_use(),
        1,
        "the stalled connection holds one slab"
    );
    let grown = rss().saturating_sub(rss_before);
    println!(
        "stalled after {stalled} bytes; resident memory grew by {grown} bytes; {} short writes",
        l.ext().short_writes
    );
    assert!(
        grown < 16 << 20,
        "resident memory grew by {grown} bytes while the client did not read"
    );

    // Phase 2: the client reads everything.
    go_tx.send(()).expect("go");
    drive(
        &mut l,
        Duration::from_secs(60),
        "all 64 MiB to be written",
        |l| l.ext().sent == TOTAL && l.shim().send_slabs_in_use() == 0,
    );
    while !client.is_finished() {
        l.run_once(Some(10)).expect("run_once");
    }
    let got = client.join().expect("client thread").expect("client");
    assert_eq!(got, TOTAL);
    let w = l.ext();
    assert!(
        w.slabs_max <= 1,
        "one connection never holds more than one slab: {}",
        w.slabs_max
    );
}

/// Dropping a loop with operations in flight (a send stalled on a client that does not read,
/// receives and an accept armed, the waker's poll, a deadline) cancels them all and waits for
/// their completions without hanging.
#[test]
fn dropping_the_shim_with_operations_in_flight_is_prompt() {
    let config = UringConfig::default().with_send_pool(SLABS, SLAB);
    let mut l = new_loop::<Writer, ()>(config, Writer::default());
    let callbacks = ContextCallbacks {
        on_open: Some(on_open),
        on_writable: Some(on_writable),
        ..ContextCallbacks::default()
    };
    let port = listen_local(&mut l, callbacks, ListenOptions::default());
    let _client = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    drive(&mut l, Duration::from_secs(10), "a short write", |l| {
        l.ext().short_writes > 0
    });
    for _ in 0..20 {
        l.run_once(Some(1)).expect("run_once");
    }
    let started = std::time::Instant::now();
    drop(l);
    let took = started.elapsed();
    assert!(took < Duration::from_secs(2), "the drop took {took:?}");
}
