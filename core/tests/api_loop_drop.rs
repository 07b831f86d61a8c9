//! Dropping a loop (`us_loop_free` in Rust) closes every descriptor it owns and drops every ext,
//! running no callback; `Loop::into_descriptors` hands the descriptors out instead.
//!
//! The storage here is fixed and borrowed (`&mut FixedStorage`): it outlives the loop, so
//! nothing is closed by the storage being dropped; only the loop's own `Drop` can close the
//! descriptors in it.

mod support;

use std::cell::Cell;
use std::marker::PhantomData;
use std::rc::Rc;

use support::quiet_net;
use usockets_core::{
    CloseCause, Config, ConnectTarget, ContextCallbacks, ContextId, Cx, FixedStorage, Interest,
    ListenOptions, ListenTarget, Loop, LoopCallbacks, OsError, PollId, RecvBuf, Settings, SocketId,
    TimerId,
};
use usockets_shim_sim::{SimFd, SimNet, SimShim};

thread_local! {
    /// Exts alive on this test's thread.
    static LIVE: Cell<usize> = const { Cell::new(0) };
}

/// An ext that counts itself in [`LIVE`] while it exists.
struct Tag;

impl Tag {
    fn new() -> Tag {
        LIVE.with(|l| l.set(l.get() + 1));
        Tag
    }
}

impl Drop for Tag {
    fn drop(&mut self) {
        LIVE.with(|l| l.set(l.get() - 1));
    }
}

fn live() -> usize {
    LIVE.with(Cell::get)
}

struct D<'a>(PhantomData<&'a ()>);

impl<'a> Config for D<'a> {
    type Shim = SimShim;
    /// Counts every callback.
    type LoopExt = Rc<Cell<u32>>;
    type ContextExt = Tag;
    type SocketExt = Tag;
    type TimerExt = Tag;
    type PollExt = Tag;
    type Reason = u32;
    type Storage = &'a mut Memory<'a>;
    type Layer = usockets_core::NoLayer;
}

/// The loop's memory: fixed, borrowed for the loop's life.
type Memory<'a> = FixedStorage<D<'a>, 32, 2, 2, 2, 2>;

fn bump(cx: &mut Cx<D<'_>>) {
    cx.ext().set(cx.ext().get() + 1);
}
fn on_open(cx: &mut Cx<D<'_>>, _: SocketId, _: bool, _: &[u8]) {
    bump(cx);
}
fn on_close(cx: &mut Cx<D<'_>>, _: SocketId, _: CloseCause<u32>) {
    bump(cx);
}
fn on_data(cx: &mut Cx<D<'_>>, _: SocketId, _: &mut RecvBuf<'_>) {
    bump(cx);
}
fn on_socket(cx: &mut Cx<D<'_>>, _: SocketId) {
    bump(cx);
}
fn on_connect_error(cx: &mut Cx<D<'_>>, _: SocketId, _: OsError) {
    bump(cx);
}
fn on_timer(cx: &mut Cx<D<'_>>, _: TimerId) {
    bump(cx);
}
fn on_poll(cx: &mut Cx<D<'_>>, _: PollId, _: Interest, _: bool) {
    bump(cx);
}
fn on_released(cx: &mut Cx<D<'_>>, _: SocketId, _: Tag) {
    bump(cx);
}

fn callbacks<'a>() -> ContextCallbacks<D<'a>> {
    ContextCallbacks {
        on_open: Some(on_open),
        on_close: Some(on_close),
        on_data: Some(on_data),
        on_writable: Some(on_socket),
        on_timeout: Some(on_socket),
        on_long_timeout: Some(on_socket),
        on_end: Some(on_socket),
        on_connect_error: Some(on_connect_error),
        ..ContextCallbacks::default()
    }
}

/// What a busy loop holds when it is dropped.
struct Busy {
    peers: Vec<usockets_shim_sim::PeerId>,
    /// The pipe end the test keeps (the poll owns the other).
    write_end: SimFd,
    /// Descriptors the loop owns: 10 accepted sockets, 2 ends of a loop-internal connection,
    /// 1 listener, 1 poll.
    owned: usize,
}

/// Fills `l`: a listener with 10 accepted peers, a connection between two of its own
/// sockets, a connect that failed at once (no descriptor), a closed-but-unreleased socket, an
/// armed timer, a started poll on a pipe.
fn make_busy(net: &SimNet, l: &mut Loop<D<'_>>) -> Busy {
    let ctx: ContextId = l.context_create(Tag::new(), callbacks()).expect("ctx");
    let any = ListenTarget::Host {
        host: None,
        port: 0,
    };
    let new_ext: fn() -> Tag = Tag::new;
    let ls = l
        .listen(ctx, any, ListenOptions::default(), new_ext)
        .expect("listen");
    let port = l.listen_port(ls).expect("port");
    let peers: Vec<_> = (0..10)
        .map(|_| net.peer_connect(port).expect("peer"))
        .collect();
    let target = ConnectTarget::Host {
        host: "127.0.0.1",
        port,
        source: None,
    };
    l.connect(ctx, target, Tag::new()).expect("connect");
    let nowhere = ConnectTarget::Host {
        host: "127.0.0.1",
        port: 1,
        source: None,
    };
    l.connect(ctx, nowhere, Tag::new()).expect("connect");
    for _ in 0..5 {
        l.run_once(Some(0)).expect("run");
    }
    assert_eq!(l.socket_slots_in_use(), 12, "10 accepted + 2 ends");
    let t = l.timer_create(false, Tag::new()).expect("timer");
    l.timer_set(t, on_timer, 60_000, 0);
    let (r, w) = net.user_pipe();
    let p = l.poll_create(false, Tag::new()).expect("poll");
    assert!(matches!(l.poll_init(p, r), Ok(None)));
    l.poll_set_callback(p, on_poll).expect("cb");
    l.poll_start(p, Interest::READABLE).expect("start");
    // One more peer, accepted and closed by the user: closed but its slot not yet released.
    let late = net.peer_connect(port).expect("peer");
    l.run_once(Some(0)).expect("run");
    // The socket accepted last heads the context's list.
    let last = l.first_socket(ctx).expect("a socket");
    l.close(last, 0, None);
    let mut peers = peers;
    peers.push(late);
    Busy {
        peers,
        write_end: w,
        owned: 12 + 1 + 1,
    }
}

#[test]
fn dropping_a_loop_closes_every_descriptor_drops_every_ext_and_runs_no_callback() {
    let net = quiet_net();
    let calls = Rc::new(Cell::new(0));
    let mut memory = Memory::new();
    let loop_callbacks = LoopCallbacks {
        released: Some(on_released),
        ..LoopCallbacks::default()
    };
    let mut l = Loop::new(
        net.shim(),
        &mut memory,
        calls.clone(),
        loop_callbacks,
        Settings::default(),
    )
    .expect("loop");
    let busy = make_busy(&net, &mut l);
    assert_eq!(
        net.open_fds(),
        busy.owned + 1,
        "the loop's, and the test's pipe end"
    );
    assert!(live() >= 12, "the loop holds the exts ({})", live());
    let (calls_before, closes) = (calls.get(), net.syscalls().close);

    drop(l);

    assert_eq!(calls.get(), calls_before, "dropping runs no callback");
    assert_eq!(net.open_fds(), 1, "only the test's own pipe end is left");
    assert_eq!(
        net.syscalls().close - closes,
        busy.owned as u64,
        "each owned descriptor closed once"
    );
    assert_eq!(
        live(),
        0,
        "every ext is dropped, though the slots outlive the loop"
    );
    for p in &busy.peers {
        assert!(net.peer_got_fin(*p), "every peer sees its connection end");
    }
    drop(busy.write_end);
    assert_eq!(net.open_fds(), 0);
}

#[test]
fn into_descriptors_hands_out_every_owned_descriptor_and_closes_none() {
    let net = quiet_net();
    let calls = Rc::new(Cell::new(0));
    let mut memory = Memory::new();
    let mut l = Loop::new(
        net.shim(),
        &mut memory,
        calls.clone(),
        LoopCallbacks::default(),
        Settings::default(),
    )
    .expect("loop");
    let busy = make_busy(&net, &mut l);
    let (calls_before, closes) = (calls.get(), net.syscalls().close);
    let mut kept = Vec::new();
    l.into_descriptors(|fd| kept.push(fd));
    assert_eq!(calls.get(), calls_before, "no callback");
    assert_eq!(kept.len(), busy.owned, "every owned descriptor, once");
    assert_eq!(net.syscalls().close, closes, "none closed");
    assert_eq!(net.open_fds(), busy.owned + 1);
    assert_eq!(live(), 0, "every ext is dropped");
    drop(kept);
    assert_eq!(
        net.open_fds(),
        1,
        "the caller owned them: dropping closed them"
    );
}
