//! The example servers against the clients that break naive servers, on real loopback sockets,
//! asserting counts: a client that pipelines and never reads (bounded queue, paused reading), a
//! slow reader with a short idle timeout, and a FIN sent with data still to be answered.

mod support;

#[path = "../examples/shared/http.rs"]
#[allow(dead_code)]
mod http;
#[path = "../examples/shared/http_app.rs"]
#[allow(dead_code)]
mod http_app;

use std::io::{ErrorKind as IoKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use http::{ResponseChecker, REQUEST, RESPONSE};
use usockets::{Cx, LoopCallbacks, Outbox, Settings, SocketId, Wake};

// ---- the http example's handler in-process, to read its outbox counters ----------------------

/// What the in-process server saw of each connection when it closed: (peak queue, pauses).
struct Seen {
    closed: Vec<(usize, u64)>,
    /// The number of closes, watched by the test thread.
    closes: Arc<AtomicUsize>,
}

type Http = http_app::Http<Seen>;

impl http_app::Observe for Seen {
    fn closed(cx: &mut Cx<Http>, s: SocketId) {
        let stats = cx.socket_ext(s).map(|c| (c.out.peak(), c.out.pauses()));
        if let Some(stats) = stats {
            let seen = cx.ext_mut();
            seen.closed.push(stats);
            seen.closes.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// The http example's handler on a loop in its own thread; stopped (and its record returned)
/// by [`InProcess::stop`].
struct InProcess {
    port: u16,
    stop: Arc<AtomicBool>,
    /// Connections the server closed so far.
    closes: Arc<AtomicUsize>,
    waker: Box<dyn Fn() + Send>,
    done: mpsc::Receiver<Vec<(usize, u64)>>,
}

impl InProcess {
    fn start() -> InProcess {
        let (ready_tx, ready) = mpsc::channel();
        let (done_tx, done) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let closes = Arc::new(AtomicUsize::new(0));
        let flag = Arc::clone(&stop);
        let counter = Arc::clone(&closes);
        thread::spawn(move || {
            let seen = Seen {
                closed: Vec::new(),
                closes: counter,
            };
            let mut l: http_app::HttpLoop<Seen> =
                usockets::new_loop(seen, LoopCallbacks::default(), Settings::default())
                    .expect("loop");
            let (_, port) =
                http_app::serve(&mut l, http_app::Server::default(), Some("127.0.0.1"), 0)
                    .expect("serve");
            let waker = l.waker();
            ready_tx
                .send((port, Box::new(move || waker.wake()) as Box<dyn Fn() + Send>))
                .expect("send port");
            l.integrate();
            while !flag.load(Ordering::SeqCst) {
                l.run_once(Some(100)).expect("run_once");
            }
            let _ = done_tx.send(std::mem::take(&mut l.ext_mut().closed));
        });
        let (port, waker) = ready
            .recv_timeout(Duration::from_secs(10))
            .expect("server started");
        InProcess {
            port,
            stop,
            closes,
            waker,
            done,
        }
    }

    /// Waits until `n` connections closed (10 s at most), stops the loop, returns their
    /// records.
    fn stop_after(self, n: usize) -> Vec<(usize, u64)> {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.closes.load(Ordering::SeqCst) < n && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(10));
        }
        self.stop.store(true, Ordering::SeqCst);
        (self.waker)();
        let closed = self
            .done
            .recv_timeout(Duration::from_secs(10))
            .expect("server stopped");
        assert_eq!(closed.len(), n, "connections the server closed");
        closed
    }
}

#[test]
fn http_client_that_pipelines_and_never_reads_is_paused_with_a_bounded_queue() {
    let server = InProcess::start();
    let mut client = TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
    client.set_nonblocking(true).expect("nonblocking");
    let batch = REQUEST.repeat(256);
    let mut sent = 0usize;
    let until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < until {
        match client.write(&batch) {
            Ok(n) => sent += n,
            Err(e) if e.kind() == IoKind::WouldBlock => thread::sleep(Duration::from_millis(2)),
            Err(e) => panic!("write: {e}"),
        }
    }
    drop(client);
    let closed = server.stop_after(1);
    let (peak, pauses) = closed[0];
    // One read is at most the receive buffer: that many bytes of requests, answered at once.
    let one_read = (usockets::RECV_BUFFER_LENGTH / REQUEST.len() + 1) * RESPONSE.len();
    println!(
        "sent {sent} request bytes without reading; server queue peak {peak} bytes, paused \
         {pauses} time(s); bound {}",
        Outbox::DEFAULT_HIGH + one_read
    );
    assert!(pauses >= 1, "the server never paused reading");
    assert!(
        peak > Outbox::DEFAULT_HIGH,
        "the queue never reached the high-water mark: the test did not load it"
    );
    assert!(
        peak <= Outbox::DEFAULT_HIGH + one_read,
        "queue peak {peak} > high-water mark + one read"
    );
}

// ---- the example binaries --------------------------------------------------------------------

/// Byte `i` of the test stream (a pattern that catches loss, duplication and reordering).
fn pattern(i: usize) -> u8 {
    (i.wrapping_mul(31) ^ (i >> 9)) as u8
}

/// Writes `len` pattern bytes on a clone of `s` from a thread, then shuts the write side down
/// if `fin`. Returns the thread.
fn send_pattern(s: &TcpStream, len: usize, fin: bool) -> thread::JoinHandle<()> {
    let mut w = s.try_clone().expect("clone");
    thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        let mut at = 0;
        while at < len {
            let n = buf.len().min(len - at);
            for (k, b) in buf[..n].iter_mut().enumerate() {
                *b = pattern(at + k);
            }
            w.write_all(&buf[..n]).expect("write");
            at += n;
        }
        if fin {
            w.shutdown(Shutdown::Write).expect("shutdown");
        }
    })
}

/// Reads until EOF (the server's FIN after its close), checking every byte against the
/// pattern; `pace` = (chunk, pause) reads slowly. Returns how many bytes arrived.
fn receive_pattern(s: &mut TcpStream, pace: Option<(usize, Duration)>) -> usize {
    s.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let mut buf = vec![0u8; 64 * 1024];
    let mut got = 0;
    loop {
        let want = pace.map_or(buf.len(), |(chunk, _)| chunk.min(buf.len()));
        let n = match s.read(&mut buf[..want]) {
            Ok(0) => return got,
            Ok(n) => n,
            Err(e) => panic!("read after {got} bytes: {e}"),
        };
        for (k, &b) in buf[..n].iter().enumerate() {
            assert_eq!(b, pattern(got + k), "byte {} differs", got + k);
        }
        got += n;
        if let Some((_, pause)) = pace {
            thread::sleep(pause);
        }
    }
}

#[test]
fn echo_of_64_mib_read_slowly_over_12_s_with_idle_timeout_4_arrives_complete() {
    const LEN: usize = 64 << 20;
    // A high-water mark above the whole echo: the server reads all 64 MiB at once and then
    // only sends, for about 12 s, three times its 4 s idle timeout. Only bytes going out count
    // as activity then; a timeout measured from the last byte received would cut it off.
    let server = support::start(
        "echo_server",
        &["--idle-timeout", "4", "--high-water", "100000000"],
    );
    let mut s = TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
    let writer = send_pattern(&s, LEN, true);
    // 64 KiB every 12 ms: about 5.3 MB/s.
    let started = Instant::now();
    let got = receive_pattern(&mut s, Some((64 * 1024, Duration::from_millis(12))));
    let took = started.elapsed();
    writer.join().expect("writer");
    println!("64 MiB echoed to a slow reader in {took:?}");
    assert_eq!(got, LEN, "bytes echoed before the server closed");
    assert!(
        took >= Duration::from_secs(8),
        "the read was not slow ({took:?}): the idle timeout was never at stake"
    );
}

#[test]
fn echo_of_10_mib_then_fin_arrives_complete_before_the_close() {
    const LEN: usize = 10 << 20;
    let server = support::start("echo_server", &[]);
    let mut s = TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
    let writer = send_pattern(&s, LEN, true);
    // Read slowly (about 10 MB/s: the kernel buffers stay small and full), so echo bytes
    // still wait in the server when it reads our FIN: they must all arrive before its FIN.
    let got = receive_pattern(&mut s, Some((64 * 1024, Duration::from_millis(5))));
    writer.join().expect("writer");
    assert_eq!(got, LEN, "bytes echoed before the server's FIN");
}

#[test]
fn http_100k_pipelined_requests_then_fin_get_100k_complete_responses() {
    const REQUESTS: usize = 100_000;
    let server = support::start("http_server", &[]);
    let mut s = TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
    let mut w = s.try_clone().expect("clone");
    let writer = thread::spawn(move || {
        let chunk = REQUEST.repeat(1000);
        for _ in 0..REQUESTS / 1000 {
            w.write_all(&chunk).expect("write requests");
        }
        w.shutdown(Shutdown::Write).expect("shutdown");
    });
    s.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let mut checker = ResponseChecker::default();
    let mut buf = vec![0u8; 64 * 1024];
    let (mut responses, mut bytes) = (0usize, 0usize);
    loop {
        let n = match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) => panic!("read after {responses} responses: {e}"),
        };
        bytes += n;
        responses += checker
            .feed(&buf[..n])
            .unwrap_or_else(|at| panic!("bad byte {at} after {responses} responses"));
        // Slowly (at most 64 KiB per 5 ms), so responses still wait in the server at our FIN.
        thread::sleep(Duration::from_millis(5));
    }
    writer.join().expect("writer");
    assert_eq!(
        responses, REQUESTS,
        "complete responses before the server's FIN"
    );
    assert_eq!(
        bytes,
        REQUESTS * RESPONSE.len(),
        "no partial response at the end"
    );
}
