//! A hard send error on a real socket is not backpressure: writing to a unix socket whose peer
//! has gone gives `EPIPE`; `write` returns 0, no writable interest is armed (no `epoll_ctl`),
//! the write after it makes no syscall, and the socket closes right after the callback returns
//! with `on_close` learning the OS error.

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use usockets::platform::SyscallStats;
use usockets::{
    AppLoop, CloseCause, ContextCallbacks, Cx, ErrorKind, ListenOptions, ListenTarget,
    LoopCallbacks, RecvBuf, SocketId,
};

/// `EPIPE` on Linux (asm-generic/errno-base.h).
const EPIPE: i32 = 32;

#[derive(Debug, PartialEq)]
enum Step {
    Data(Vec<u8>),
    /// What the two writes in `on_data` returned, and whether the socket read as closed after.
    Wrote(usize, usize, Option<bool>),
    Close(CloseCause<usize>),
}

#[derive(Default)]
struct World {
    steps: Vec<Step>,
    /// Syscall counters when the socket opened, when `on_data` began and when it closed.
    at_open: Option<SyscallStats>,
    at_data: Option<SyscallStats>,
    at_close: Option<SyscallStats>,
}

type E = usockets::App<World, (), ()>;

fn on_open(cx: &mut Cx<E>, _: SocketId, _: bool, _: &[u8]) {
    let stats = cx.shim().stats();
    cx.ext_mut().at_open = Some(stats);
}

fn on_data(cx: &mut Cx<E>, s: SocketId, data: &mut RecvBuf<'_>) {
    let stats = cx.shim().stats();
    cx.ext_mut().at_data = Some(stats);
    cx.ext_mut().steps.push(Step::Data(data.to_vec()));
    let first = cx.write(s, b"pong", false);
    let second = cx.write(s, b"pong", false);
    let closed = cx.is_closed(s);
    cx.ext_mut().steps.push(Step::Wrote(first, second, closed));
}

fn on_close(cx: &mut Cx<E>, _: SocketId, cause: CloseCause<usize>) {
    let stats = cx.shim().stats();
    let w = cx.ext_mut();
    w.at_close = Some(stats);
    w.steps.push(Step::Close(cause));
}

#[test]
fn epipe_closes_after_the_callback_with_the_os_error_and_changes_no_interest() {
    let path = std::env::temp_dir().join(format!("usockets-epipe-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let mut l: AppLoop<World, (), ()> = usockets::new_loop(
        World::default(),
        LoopCallbacks::default(),
        Default::default(),
    )
    .expect("loop");
    let callbacks = ContextCallbacks {
        on_open: Some(on_open),
        on_data: Some(on_data),
        on_close: Some(on_close),
        ..ContextCallbacks::default()
    };
    let ctx = l.context_create((), callbacks).expect("context");
    let target = ListenTarget::Unix(path.to_str().expect("utf-8 path"));
    let ls = l
        .listen(ctx, target, ListenOptions::default(), || ())
        .expect("listen");
    // The peer sends one request and is gone before the server reads it: the answer hits a
    // closed unix socket, which is EPIPE at once.
    let mut client = UnixStream::connect(&path).expect("connect");
    client.write_all(b"ping").expect("send");
    drop(client);
    let deadline = Instant::now() + Duration::from_secs(10);
    while l.ext().at_close.is_none() {
        assert!(Instant::now() < deadline, "no close: {:?}", l.ext().steps);
        l.run_once(Some(100)).expect("run");
    }
    l.listen_close(ls);
    let _ = std::fs::remove_file(&path);

    let w = l.ext();
    let cause = match w.steps.as_slice() {
        [Step::Data(d), Step::Wrote(0, 0, Some(false)), Step::Close(cause)] if d == b"ping" => {
            *cause
        }
        other => panic!("expected data, two zero writes while open, then the close: {other:?}"),
    };
    match cause {
        CloseCause::Os(e) => {
            assert_eq!(e.code, EPIPE, "{e}");
            assert_eq!(e.kind, ErrorKind::ConnectionReset);
        }
        other => panic!("on_close must learn the OS error, got {other:?}"),
    }
    let (open, data, close) = (
        w.at_open.expect("opened"),
        w.at_data.expect("data"),
        w.at_close.expect("closed"),
    );
    assert_eq!(
        close.epoll_ctl, open.epoll_ctl,
        "no interest change from accept to close"
    );
    assert_eq!(
        close.send - data.send,
        1,
        "one send failed; the failing socket made no second one"
    );
}
