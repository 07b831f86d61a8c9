//! A paused connection whose peer keeps sending does not stall the others: its receive is
//! cancelled while it is paused, so the bytes wait in the kernel, not in the ring's buffers,
//! and 100 other connections' echoes go on through a small buffer ring. When it resumes, all
//! its bytes arrive in order.
#![cfg(target_os = "linux")]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{drive, listen_local, new_loop, pattern, U};
use usockets_core::{ContextCallbacks, Cx, ListenOptions, RecvBuf, SocketId};
use usockets_shim_uring::UringConfig;

const OTHERS: usize = 100;
const ROUNDS: usize = 20;
const MESSAGE: &[u8] = b"0123456789abcdef0123456789abcdef";
/// What the paused connection's peer sends.
const FLOOD: u64 = 8 << 20;

/// The loop ext: the first connection to send `P` is paused; what it received.
#[derive(Default)]
struct Echo {
    paused: Option<SocketId>,
    paused_rx: u64,
    paused_bad: u64,
    echoed: u64,
}

type C = U<Echo, ()>;

fn on_data(cx: &mut Cx<C>, s: SocketId, data: &mut RecvBuf<'_>) {
    if cx.ext().paused.is_none() && data.first() == Some(&b'P') {
        cx.ext_mut().paused = Some(s);
        cx.pause(s);
    }
    if cx.ext().paused == Some(s) {
        let at = cx.ext().paused_rx;
        let bad = data
            .iter()
            .enumerate()
            .filter(|&(k, &b)| b != flood_byte(at + k as u64))
            .count() as u64;
        let e = cx.ext_mut();
        e.paused_rx += data.len() as u64;
        e.paused_bad += bad;
        return;
    }
    let n = cx.write(s, data, false);
    assert_eq!(n, data.len(), "a small echo is taken whole");
    cx.ext_mut().echoed += n as u64;
}

/// The flood's byte `i`: a `P` first, then the pattern.
fn flood_byte(i: u64) -> u8 {
    if i == 0 {
        b'P'
    } else {
        pattern(i)
    }
}

#[test]
fn a_paused_connection_with_data_arriving_does_not_stall_100_others() {
    // A small ring: 64 buffers of 4 KiB (256 KiB), a 16 KiB unread cap.
    let config = UringConfig::default()
        .with_recv_buffers(64, 4096)
        .with_unread_cap(16 * 1024);
    let mut l = new_loop::<Echo, ()>(config, Echo::default());
    let callbacks = ContextCallbacks {
        on_data: Some(on_data),
        ..ContextCallbacks::default()
    };
    let port = listen_local(&mut l, callbacks, ListenOptions::default());

    // The flooder: sends `FLOOD` bytes, blocking once the kernel's buffers are full.
    let stop = Arc::new(AtomicBool::new(false));
    let flooder = std::thread::spawn(move || -> Result<u64, String> {
        let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
        s.set_write_timeout(Some(Duration::from_secs(30)))
            .map_err(|e| e.to_string())?;
        let mut buf = vec![0u8; 64 * 1024];
        let mut at = 0u64;
        while at < FLOOD {
            let n = buf.len().min((FLOOD - at) as usize);
            for (k, b) in buf[..n].iter_mut().enumerate() {
                *b = flood_byte(at + k as u64);
            }
            s.write_all(&buf[..n])
                .map_err(|e| format!("write at {at}: {e}"))?;
            at += n as u64;
        }
        // Keep the connection open until the server closes it (bounded: the test's drive
        // fails first if it never does).
        s.set_read_timeout(Some(Duration::from_secs(20)))
            .map_err(|e| e.to_string())?;
        let mut one = [0u8; 1];
        let _ = s.read(&mut one);
        Ok(at)
    });
    drive(&mut l, Duration::from_secs(10), "the flood to start", |l| {
        l.ext().paused.is_some()
    });

    // 100 others echo in rounds while the paused one's peer keeps sending.
    let stop2 = stop.clone();
    let others = std::thread::spawn(move || -> Result<(), String> {
        let mut conns = Vec::new();
        for i in 0..OTHERS {
            let s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("{i}: {e}"))?;
            s.set_read_timeout(Some(Duration::from_secs(5)))
                .map_err(|e| e.to_string())?;
            conns.push(s);
        }
        let mut buf = [0u8; 64];
        for round in 0..ROUNDS {
            for s in &mut conns {
                s.write_all(MESSAGE).map_err(|e| e.to_string())?;
            }
            for (i, s) in conns.iter_mut().enumerate() {
                let mut got = 0;
                while got < MESSAGE.len() {
                    let n = s
                        .read(&mut buf[got..MESSAGE.len()])
                        .map_err(|e| format!("round {round}, connection {i}: {e}"))?;
                    if n == 0 {
                        return Err(format!("round {round}, connection {i}: closed"));
                    }
                    got += n;
                }
                if &buf[..got] != MESSAGE {
                    return Err(format!("round {round}, connection {i}: wrong echo"));
                }
            }
        }
        stop2.store(true, Ordering::SeqCst);
        Ok(())
    });
    drive(&mut l, Duration::from_secs(20), "the 100 echoes", |_| {
        stop.load(Ordering::SeqCst) || others.is_finished()
    });
    others
        .join()
        .expect("others")
        .expect("the other connections' echoes");
    let e = l.ext();
    assert_eq!(e.echoed, (OTHERS * ROUNDS * MESSAGE.len()) as u64);
    let held = e.paused_rx;
    assert!(held < FLOOD, "the paused connection was not paused");

    // Resume it: every byte arrives, in order.
    let paused = l.ext().paused.expect("paused");
    l.resume(paused);
    drive(
        &mut l,
        Duration::from_secs(30),
        "the paused connection's bytes",
        |l| l.ext().paused_rx == FLOOD,
    );
    assert_eq!(
        l.ext().paused_bad,
        0,
        "the paused connection's bytes in order"
    );
    l.close(paused, 0, None);
    // The close completes once its cancelled receive has (an iteration or two later).
    drive(
        &mut l,
        Duration::from_secs(10),
        "the flooder to see the close",
        |_| flooder.is_finished(),
    );
    flooder.join().expect("flooder").expect("flood");
}
