//! Descriptor exhaustion does not spin: a server out of descriptors (`EMFILE`) keeps serving the
//! connections it has, retries `accept` a few times per second instead of busy-looping on its
//! level-triggered listener, and accepts again soon after descriptors come back.
//!
//! The test re-runs its own binary as a child under `ulimit -n 64` (no `unsafe` `setrlimit`
//! needed); the child runs the server and reports its counters on stdout every 500 ms.

#[path = "../examples/shared/http.rs"]
#[allow(dead_code)]
mod http;
#[path = "../examples/shared/http_app.rs"]
#[allow(dead_code)]
mod http_app;

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use http::{ResponseChecker, REQUEST, RESPONSE};
use usockets::{Cx, ListenOptions, ListenTarget, LoopCallbacks, Settings, TimerId, Wake};

/// Set in the child's environment: only then does [`emfile_child`] run a server.
const CHILD_ENV: &str = "USOCKETS_EMFILE_CHILD";
/// The child test's name, for `--exact`.
const CHILD_TEST: &str = "emfile_child";
/// Prefix of the child's report lines (libtest may print its own text before them).
const MARK: &str = "EMFILE-CHILD";
/// The child's descriptor limit.
const NOFILE: usize = 64;
/// Connections opened before the flood, kept busy during it.
const KEPT: usize = 10;
/// Connections opened beyond the child's limit.
const FLOOD: usize = 200;

// ---- the child: a server with few descriptors ------------------------------------------------

/// The child's loop ext.
struct ChildState {
    served: u64,
    open: usize,
    /// `/proc/self/stat`, opened before the descriptors run out and re-read from the start.
    stat: Option<File>,
    clk_tck: u64,
    text: String,
}

/// The example server's handler, with the child's loop ext.
type Http = http_app::Http<ChildState>;

impl http_app::Observe for ChildState {
    fn opened(cx: &mut Cx<Http>) {
        cx.ext_mut().open += 1;
    }
    fn closed(cx: &mut Cx<Http>) {
        cx.ext_mut().open -= 1;
    }
    fn served(cx: &mut Cx<Http>, n: usize) {
        cx.ext_mut().served += n as u64;
    }
}

/// This process's user + system CPU time in milliseconds (`/proc/self/stat` fields 14 and 15).
fn cpu_ms(state: &mut ChildState) -> Option<u64> {
    let f = state.stat.as_mut()?;
    f.seek(SeekFrom::Start(0)).ok()?;
    state.text.clear();
    f.read_to_string(&mut state.text).ok()?;
    // The command name (field 2) may hold spaces; fields after it start at field 3.
    let rest = &state.text[state.text.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(14 - 3);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime + stime) * 1000 / state.clk_tck.max(1))
}

/// Every 500 ms: one report line.
fn report(cx: &mut Cx<Http>, _t: TimerId) {
    let accepts = cx.shim().stats().accept;
    let ms = cx.now_ms();
    let state = cx.ext_mut();
    let cpu = cpu_ms(state).map_or(-1, |c| c as i64);
    println!(
        "{MARK} stats accepts={accepts} cpu_ms={cpu} open={} served={} ms={ms}",
        state.open, state.served
    );
}

/// The child: runs only under [`CHILD_ENV`], started by the parent test with a descriptor
/// limit of [`NOFILE`]. Serves until stdin closes, 20 s at most. Ignored in a normal run, so it
/// is never reported as passed without having run.
#[test]
#[ignore = "runs in a child process, started by descriptor_exhaustion_backs_off_serves_and_recovers"]
fn emfile_child() {
    assert!(
        std::env::var_os(CHILD_ENV).is_some(),
        "emfile_child runs only in the child process its parent test starts"
    );
    let clk_tck = Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100);
    let state = ChildState {
        served: 0,
        open: 0,
        stat: File::open("/proc/self/stat").ok(),
        clk_tck,
        text: String::with_capacity(1024),
    };
    let mut l =
        usockets::new_loop(state, LoopCallbacks::default(), Settings::default()).expect("loop");
    let ctx = l
        .context_create((), http_app::callbacks::<ChildState>())
        .expect("context");
    let target = ListenTarget::Host {
        host: Some("127.0.0.1"),
        port: 0,
    };
    let ls = l
        .listen(
            ctx,
            target,
            ListenOptions::default(),
            http_app::Conn::default,
        )
        .expect("listen");
    let port = l.listen_port(ls).expect("port");

    // Stdin closing (the parent is done or gone) ends the child.
    let stdin_closed = Arc::new(AtomicBool::new(false));
    let waker = l.waker();
    let flag = Arc::clone(&stdin_closed);
    std::thread::spawn(move || {
        let mut sink = [0u8; 64];
        let mut stdin = std::io::stdin();
        while matches!(stdin.read(&mut sink), Ok(n) if n > 0) {}
        flag.store(true, Ordering::SeqCst);
        waker.wake();
    });

    let timer = l.timer_create(false, ()).expect("timer");
    l.timer_set(timer, report, 500, 500);
    println!("{MARK} port {port}");
    let _ = std::io::stdout().flush();

    l.integrate();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !stdin_closed.load(Ordering::SeqCst) && Instant::now() < deadline {
        l.run_once(Some(500)).expect("run_once");
    }
}

// ---- the parent ------------------------------------------------------------------------------

/// One report of the child.
#[derive(Clone, Copy, Debug, Default)]
struct Report {
    accepts: u64,
    cpu_ms: i64,
    open: usize,
    served: u64,
    /// The child's loop clock.
    ms: u64,
}

enum Line {
    Port(u16),
    Stats(Report),
}

fn parse(line: &str) -> Option<Line> {
    let rest = &line[line.find(MARK)? + MARK.len()..];
    let mut words = rest.split_whitespace();
    match words.next()? {
        "port" => words.next()?.parse().ok().map(Line::Port),
        "stats" => {
            let mut r = Report::default();
            for w in words {
                let (k, v) = w.split_once('=')?;
                match k {
                    "accepts" => r.accepts = v.parse().ok()?,
                    "cpu_ms" => r.cpu_ms = v.parse().ok()?,
                    "open" => r.open = v.parse().ok()?,
                    "served" => r.served = v.parse().ok()?,
                    "ms" => r.ms = v.parse().ok()?,
                    _ => {}
                }
            }
            Some(Line::Stats(r))
        }
        _ => None,
    }
}

/// The child process, killed on drop.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn connect(port: u16) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_nodelay(true).expect("nodelay");
    s.set_read_timeout(Some(Duration::from_secs(2)))
        .expect("timeout");
    s.set_write_timeout(Some(Duration::from_secs(2)))
        .expect("timeout");
    s
}

/// One request, one response, within the stream's timeouts.
fn request(s: &mut TcpStream) -> Result<(), String> {
    s.write_all(REQUEST).map_err(|e| format!("write: {e}"))?;
    let mut buf = [0u8; 256];
    let mut checker = ResponseChecker::default();
    let mut bytes = 0;
    let mut got = 0;
    while bytes < RESPONSE.len() {
        let k = s
            .read(&mut buf[..RESPONSE.len() - bytes])
            .map_err(|e| format!("read: {e}"))?;
        if k == 0 {
            return Err("closed by the server".into());
        }
        bytes += k;
        got += checker
            .feed(&buf[..k])
            .map_err(|at| format!("bad response byte at {at}"))?;
    }
    if got == 1 {
        Ok(())
    } else {
        Err(format!("{got} responses"))
    }
}

/// One request on each kept connection; every one must be answered.
fn round(kept: &mut [TcpStream], requests: &mut usize) {
    for (i, s) in kept.iter_mut().enumerate() {
        request(s).unwrap_or_else(|e| {
            panic!("kept connection {i} during the flood (request {requests}): {e}")
        });
        *requests += 1;
    }
}

/// The next report, waiting until `deadline`.
fn next_report(lines: &mpsc::Receiver<Line>, deadline: Instant) -> Report {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(Line::Stats(r)) => return r,
            Ok(Line::Port(_)) => {}
            Err(e) => panic!("no report from the child: {e}"),
        }
    }
}

#[test]
fn descriptor_exhaustion_backs_off_serves_and_recovers() {
    let exe = std::env::current_exe().expect("test binary path");
    let child = Command::new("sh")
        .arg("-c")
        .arg(format!(r#"ulimit -n {NOFILE} && exec "$0" "$@""#))
        .arg(&exe)
        .args([
            "--exact",
            CHILD_TEST,
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the child");
    let mut child = ChildGuard(child);
    let stdin = child.0.stdin.take().expect("stdin");
    let stdout = child.0.stdout.take().expect("stdout");
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(l) = parse(&line) {
                if tx.send(l).is_err() {
                    break;
                }
            }
        }
    });
    let port = match lines.recv_timeout(Duration::from_secs(10)) {
        Ok(Line::Port(p)) => p,
        Ok(Line::Stats(_)) => panic!("a report before the port"),
        Err(e) => panic!("the child printed no port: {e}"),
    };

    // Served before the flood.
    let mut kept: Vec<TcpStream> = (0..KEPT).map(|_| connect(port)).collect();
    for (i, s) in kept.iter_mut().enumerate() {
        request(s).unwrap_or_else(|e| panic!("kept connection {i} before the flood: {e}"));
    }

    // The flood: far more connections than the child has descriptors. The backlog (512)
    // completes every handshake, so connecting does not wait for the child.
    let flood: Vec<TcpStream> = (0..FLOOD).map(|_| connect(port)).collect();
    let flooded = Instant::now();

    // Start measuring at the first report after the child has had time to run out.
    let mut requests = 0usize;
    let settle = flooded + Duration::from_millis(300);
    let start = loop {
        round(&mut kept, &mut requests);
        std::thread::sleep(Duration::from_millis(10));
        if Instant::now() >= settle {
            if let Ok(Line::Stats(r)) = lines.try_recv() {
                break r;
            }
        } else {
            while lines.try_recv().is_ok() {}
        }
        assert!(
            flooded.elapsed() < Duration::from_secs(3),
            "no report after the flood"
        );
    };
    // ~2 s of paced requests on the kept connections while exhausted.
    let window_end = Instant::now() + Duration::from_secs(4);
    let end = loop {
        round(&mut kept, &mut requests);
        std::thread::sleep(Duration::from_millis(10));
        match lines.try_recv() {
            Ok(Line::Stats(r)) if r.ms >= start.ms + 2000 => break r,
            _ => {}
        }
        assert!(
            Instant::now() < window_end,
            "reports stopped during the flood"
        );
    };
    let secs = (end.ms - start.ms) as f64 / 1000.0;
    let accept_rate = (end.accepts - start.accepts) as f64 / secs;
    let cpu = (end.cpu_ms - start.cpu_ms) as f64 / (end.ms - start.ms) as f64;
    println!(
        "exhausted for {secs:.2} s: accept calls {} -> {} ({accept_rate:.1}/s), child CPU \
         {:.1}% of a core ({} ms), open connections {} -> {}, {requests} requests on the kept \
         connections all answered (child served {} -> {})",
        start.accepts,
        end.accepts,
        cpu * 100.0,
        end.cpu_ms - start.cpu_ms,
        start.open,
        end.open,
        start.served,
        end.served,
    );
    assert!(start.cpu_ms >= 0, "the child could not read its CPU time");
    assert!(
        start.open < NOFILE && end.open < NOFILE,
        "the child's descriptor limit did not apply: {} open",
        end.open
    );
    assert!(
        start.open < KEPT + FLOOD,
        "the child accepted every flood connection: not exhausted"
    );
    assert!(
        accept_rate <= 20.0,
        "accept called {accept_rate:.1} times a second while out of descriptors"
    );
    assert!(
        end.accepts > start.accepts,
        "the listener never retried accepting while out of descriptors"
    );
    assert!(
        cpu <= 0.30,
        "the child used {:.1}% of a core while out of descriptors",
        cpu * 100.0
    );

    // Descriptors come back: a new connection is served within 2 s.
    drop(flood);
    let freed = Instant::now();
    let mut fresh = connect(port);
    let served = request(&mut fresh);
    let took = freed.elapsed();
    println!("after closing the flood a new connection was served in {took:?}: {served:?}");
    served.unwrap_or_else(|e| panic!("new connection after the flood: {e}"));
    assert!(
        took <= Duration::from_secs(2),
        "a new connection waited {took:?} after descriptors were freed"
    );
    for (i, s) in kept.iter_mut().enumerate() {
        request(s).unwrap_or_else(|e| panic!("kept connection {i} after the flood: {e}"));
    }
    let last = next_report(&lines, Instant::now() + Duration::from_secs(2));
    println!("after the flood: {last:?}");

    // Closing stdin ends the child; it must exit cleanly.
    drop(stdin);
    let exit_by = Instant::now() + Duration::from_secs(3);
    let status = loop {
        if let Some(status) = child.0.try_wait().expect("wait for the child") {
            break status;
        }
        assert!(
            Instant::now() < exit_by,
            "the child did not exit after stdin closed"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "the child failed: {status}");
}
