//! Dropping a loop on the real Linux shim gives back every descriptor it owned: the process's
//! descriptor count returns to where it was.
//!
//! The count is read from `/proc/self/fd`, which other tests running in parallel threads would
//! disturb, so the body runs alone in a child process: the parent test re-runs this binary
//! with `--ignored --exact` on the child test, which refuses to run anywhere else (it is
//! `#[ignore]`d, so a normal run reports it as ignored, never as passed).

use std::io::Write;
use std::net::TcpStream;
use std::os::fd::OwnedFd;
use std::process::Command;
use std::time::{Duration, Instant};

use usockets::{
    AppLoop, ConnectTarget, ContextCallbacks, Cx, Interest, ListenOptions, ListenTarget,
    LoopCallbacks, PollId, SocketId, TimerId,
};

const CHILD_ENV: &str = "USOCKETS_LOOP_DROP_CHILD";
const CHILD_TEST: &str = "child_counts_descriptors_around_a_dropped_loop";

#[test]
fn dropping_a_loop_returns_the_descriptor_count_to_where_it_was() {
    let out = Command::new(std::env::current_exe().expect("test binary"))
        .args([CHILD_TEST, "--exact", "--ignored", "--nocapture"])
        .args(["--test-threads=1"])
        .env(CHILD_ENV, "1")
        .output()
        .expect("spawn the child test");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "child failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        out.status
    );
}

/// Open descriptors of this process (the directory handle of the listing itself counts the
/// same each time).
fn open_descriptors() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .count()
}

/// Loop ext: sockets opened so far.
#[derive(Default)]
struct Opened(usize);

type Counted = usockets::App<Opened, (), (), (), ()>;

fn on_open(cx: &mut Cx<Counted>, _: SocketId, _: bool, _: &[u8]) {
    cx.ext_mut().0 += 1;
}
fn on_timer(_: &mut Cx<Counted>, _: TimerId) {}
fn on_poll(_: &mut Cx<Counted>, _: PollId, _: Interest, _: bool) {}

#[test]
#[ignore = "runs in a child process, started by dropping_a_loop_returns_the_descriptor_count_to_where_it_was"]
fn child_counts_descriptors_around_a_dropped_loop() {
    assert_eq!(
        std::env::var(CHILD_ENV).as_deref(),
        Ok("1"),
        "run only as the child of {CHILD_TEST}'s parent test: it needs a quiet descriptor table"
    );
    let before = open_descriptors();
    let mut l: AppLoop<Opened, (), ()> = usockets::new_loop(
        Opened::default(),
        LoopCallbacks::default(),
        Default::default(),
    )
    .expect("loop");
    let callbacks = ContextCallbacks {
        on_open: Some(on_open),
        ..ContextCallbacks::default()
    };
    let ctx = l.context_create((), callbacks).expect("context");
    let target = ListenTarget::Host {
        host: Some("127.0.0.1"),
        port: 0,
    };
    let ls = l
        .listen(ctx, target, ListenOptions::default(), || ())
        .expect("listen");
    let port = l.listen_port(ls).expect("port");
    let clients: Vec<TcpStream> = (0..10)
        .map(|_| TcpStream::connect(("127.0.0.1", port)).expect("client"))
        .collect();
    let to_self = ConnectTarget::Host {
        host: "127.0.0.1",
        port,
        source: None,
    };
    l.connect(ctx, to_self, ()).expect("connect");
    let deadline = Instant::now() + Duration::from_secs(10);
    // 10 clients and both ends of the loop's own connection.
    while l.ext().0 < 12 {
        assert!(Instant::now() < deadline, "only {} opened", l.ext().0);
        l.run_once(Some(100)).expect("run");
    }
    let t = l.timer_create(false, ()).expect("timer");
    l.timer_set(t, on_timer, 60_000, 0);
    let (reader, mut writer) = std::io::pipe().expect("pipe");
    let p = l.poll_create(false, ()).expect("poll");
    assert!(matches!(l.poll_init(p, OwnedFd::from(reader)), Ok(None)));
    l.poll_set_callback(p, on_poll).expect("callback");
    l.poll_start(p, Interest::READABLE).expect("start");
    writer.write_all(b"pending").expect("write");
    let during = open_descriptors();
    // epoll + eventfd + reserve, the listener, 10 accepted + 2 connected sockets, the 10
    // clients, the poll's read end and our write end.
    assert!(
        during >= before + 3 + 1 + 12 + 10 + 2,
        "{before} descriptors before, {during} during"
    );

    drop(l);
    drop(clients);
    drop(writer);

    assert_eq!(
        open_descriptors(),
        before,
        "the dropped loop left descriptors open"
    );
}
