//! Storage and handles: full storage refuses, stale handles of every kind are rejected after
//! their slot is reused (generation check), growing storage works across growth steps (a chunk
//! at a time), and stale events (a late token for a reused slot) are dropped — the latter
//! through a scripted fake shim running on fixed storage. Every test here runs on the shipped
//! stores (`FixedStorage`, `GrowingStorage`), never on a test-local one.

mod support;

use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::rc::Rc;

use support::{new_loop, quiet_net, run_until, Caps, SimNet, SimShim};
use usockets_core::{
    Capacity, CloseCause, Config, ConnectError, ConnectTarget, ContextCallbacks, ContextError,
    ContextId, Cx, ErrorKind, Event, FixedStorage, Growing, GrowingStorage, Interest, ListenError,
    ListenOptions, ListenTarget, Loop, LoopCallbacks, OsError, OsShim, PeerAddr, PollId, RecvBuf,
    Settings, SocketEntry, SocketId, Token, Wake,
};

// ---- fixed storage over shim-sim ---------------------------------------------------------------

#[derive(Default)]
struct Rec {
    opened: Vec<SocketId>,
    closes: Vec<(SocketId, u32)>,
}

sim_config!(S {
    loop_ext: Rec,
    context_ext: u32,
    socket_ext: u32,
    timer_ext: (),
    poll_ext: ()
});

fn s_on_open(cx: &mut Cx<S>, s: SocketId, _: bool, _: &[u8]) {
    cx.ext_mut().opened.push(s);
}
fn s_on_close(cx: &mut Cx<S>, s: SocketId, _: CloseCause<u32>) {
    let ext = cx.socket_ext(s).copied().unwrap_or(u32::MAX);
    cx.ext_mut().closes.push((s, ext));
}

fn s_callbacks() -> ContextCallbacks<S> {
    ContextCallbacks {
        on_open: Some(s_on_open),
        on_close: Some(s_on_close),
        ..ContextCallbacks::default()
    }
}

fn s_loop(net: &SimNet, caps: Caps) -> Loop<S> {
    new_loop::<S>(
        net,
        caps,
        Rec::default(),
        LoopCallbacks::default(),
        Settings::default(),
    )
}

fn any_port() -> ListenTarget<'static> {
    ListenTarget::Host {
        host: None,
        port: 0,
    }
}

fn to(port: u16) -> ConnectTarget<'static> {
    ConnectTarget::Host {
        host: "127.0.0.1",
        port,
        source: None,
    }
}

#[test]
fn context_create_refused_when_context_storage_full() {
    let net = quiet_net();
    let mut l = s_loop(
        &net,
        Caps {
            contexts: 2,
            ..Caps::default()
        },
    );
    let a = l.context_create(1, s_callbacks()).expect("a");
    l.context_create(2, s_callbacks()).expect("b");
    assert_eq!(
        l.context_create(3, s_callbacks()).err(),
        Some(ContextError::Capacity)
    );
    assert_eq!(
        l.context_create_child(a, 4).err(),
        Some(ContextError::Capacity)
    );
    assert_eq!(l.slots_in_use()[2], 2);
    assert_eq!(l.context_free(a), Ok(1));
    assert!(l.context_create(5, s_callbacks()).is_ok());
}

#[test]
fn listen_refused_when_listener_storage_full_without_using_a_descriptor() {
    let net = quiet_net();
    let mut l = s_loop(
        &net,
        Caps {
            listeners: 1,
            ..Caps::default()
        },
    );
    let c = l.context_create(0, s_callbacks()).expect("ctx");
    let ls = l
        .listen(c, any_port(), ListenOptions::default(), || 0)
        .expect("first");
    let (fds, listens) = (net.open_fds(), net.syscalls().listen);
    assert_eq!(
        l.listen(c, any_port(), ListenOptions::default(), || 0)
            .err(),
        Some(ListenError::Capacity)
    );
    assert_eq!(net.open_fds(), fds, "no descriptor consumed");
    assert_eq!(net.syscalls().listen, listens, "the OS was not asked");
    l.listen_close(ls);
    assert_eq!(
        l.listen(c, any_port(), ListenOptions::default(), || 0)
            .err(),
        Some(ListenError::Capacity),
        "a closed listen socket holds its slot until the end of the iteration"
    );
    l.run_once(Some(0)).expect("run");
    assert!(l
        .listen(c, any_port(), ListenOptions::default(), || 0)
        .is_ok());
}

#[test]
fn connect_refused_when_socket_storage_full_without_using_a_descriptor() {
    let net = quiet_net();
    let port = net.peer_listen(0);
    let mut l = s_loop(
        &net,
        Caps {
            sockets: 2,
            ..Caps::default()
        },
    );
    let c = l.context_create(0, s_callbacks()).expect("ctx");
    let a = l.connect(c, to(port), 1).expect("a");
    l.connect(c, to(port), 2).expect("b");
    let (fds, connects) = (net.open_fds(), net.syscalls().connect);
    assert_eq!(
        l.connect(c, to(port), 3).err(),
        Some(ConnectError::Capacity)
    );
    assert_eq!(net.open_fds(), fds);
    assert_eq!(net.syscalls().connect, connects);
    l.close(a, 0, None);
    l.run_once(Some(0)).expect("run");
    assert!(
        l.connect(c, to(port), 4).is_ok(),
        "a released slot is reused"
    );
}

#[test]
fn stale_socket_handle_is_rejected_after_slot_reuse() {
    let net = quiet_net();
    let port = net.peer_listen(0);
    let mut l = s_loop(&net, Caps::default());
    let c = l.context_create(0, s_callbacks()).expect("ctx");
    let b = l.context_create(1, s_callbacks()).expect("ctx b");
    let old = l.connect(c, to(port), 1).expect("old");
    l.close(old, 0, None);
    l.run_once(Some(0)).expect("run");
    assert_eq!(l.is_closed(old), None, "released");
    let new = l.connect(c, to(port), 2).expect("new");
    assert_eq!(new.index(), old.index(), "slot reused");
    assert_ne!(new.generation(), old.generation());

    assert_eq!(l.is_closed(old), None);
    assert_eq!(l.is_established(old), None);
    assert_eq!(l.is_shut_down(old), None);
    assert_eq!(l.socket_ext(old), None);
    assert_eq!(l.socket_ext_mut(old), None);
    assert_eq!(l.socket_context(old), None);
    assert_eq!(l.socket_fd(old), None);
    assert_eq!(l.socket_interest(old), None);
    assert_eq!(l.write(old, b"x", false), 0);
    assert_eq!(l.adopt(old, b), None);
    l.ext_mut().closes.clear();
    l.close(old, 7, Some(7));
    l.close_connecting(old);
    assert!(
        l.ext().closes.is_empty(),
        "no on_close through a stale handle"
    );

    assert_eq!(l.is_closed(new), Some(false), "the new socket is untouched");
    assert_eq!(l.socket_ext(new), Some(&2));
    assert_eq!(l.socket_context(new), Some(c));
    assert!(l.socket_fd(new).is_some());
}

#[test]
fn stale_listen_handle_is_rejected_after_slot_reuse() {
    let net = quiet_net();
    let mut l = s_loop(&net, Caps::default());
    let c = l.context_create(0, s_callbacks()).expect("ctx");
    let old = l
        .listen(c, any_port(), ListenOptions::default(), || 0)
        .expect("old");
    l.listen_close(old);
    l.run_once(Some(0)).expect("run");
    let new = l
        .listen(c, any_port(), ListenOptions::default(), || 0)
        .expect("new");
    assert_eq!(new.index(), old.index(), "slot reused");
    assert_ne!(new.generation(), old.generation());
    assert_eq!(l.listen_port(old), None);
    assert_eq!(l.listen_fd(old), None);
    assert_eq!(l.listen_context(old), None);
    l.listen_close(old);
    let port = l.listen_port(new).expect("the new listener is still open");
    let _peer = net.peer_connect(port).expect("still accepting");
    run_until(&mut l, 10, |l| l.ext().opened.len() == 1);
}

#[test]
fn stale_context_handle_is_rejected_after_slot_reuse() {
    let net = quiet_net();
    let port = net.peer_listen(0);
    let mut l = s_loop(&net, Caps::default());
    let old = l.context_create(1, s_callbacks()).expect("old");
    assert_eq!(l.context_free(old), Ok(1));
    let new = l.context_create(2, s_callbacks()).expect("new");
    assert_eq!(new.index(), old.index(), "slot reused");
    assert_ne!(new.generation(), old.generation());
    assert_eq!(l.context_ext(old), None);
    assert_eq!(l.context_ext_mut(old), None);
    assert!(l.context_callbacks_mut(old).is_none());
    assert_eq!(l.context_timestamp(old), None);
    assert_eq!(l.first_socket(old), None);
    assert_eq!(l.context_free(old), Err(ContextError::InvalidContext));
    assert_eq!(
        l.context_create_child(old, 3).err(),
        Some(ContextError::InvalidContext)
    );
    assert_eq!(
        l.listen(old, any_port(), ListenOptions::default(), || 0)
            .err(),
        Some(ListenError::InvalidContext)
    );
    assert_eq!(
        l.connect(old, to(port), 0).err(),
        Some(ConnectError::InvalidContext)
    );
    l.context_close(old);
    assert_eq!(l.context_ext(new), Some(&2), "the new context is untouched");
    assert_eq!(l.slots_in_use(), [0, 0, 1, 0, 0]);
}

// ---- growing storage -----------------------------------------------------------------------------

struct Chunky;
impl Config for Chunky {
    type Shim = SimShim;
    type LoopExt = Vec<SocketId>;
    type ContextExt = ();
    type SocketExt = u32;
    type TimerExt = ();
    type PollExt = ();
    type Reason = u32;
    type Storage = GrowingStorage<Self>;
    type Layer = usockets_core::NoLayer;
}

fn chunky_open(cx: &mut Cx<Chunky>, s: SocketId, _: bool, _: &[u8]) {
    let n = cx.ext().len() as u32;
    *cx.socket_ext_mut(s).expect("ext") = 1000 + n;
    cx.ext_mut().push(s);
}

/// Echoes, prefixed with the socket's ext so a mixed-up slot shows.
fn chunky_data(cx: &mut Cx<Chunky>, s: SocketId, data: &mut RecvBuf<'_>) {
    let tag = cx.socket_ext(s).copied().expect("ext");
    let mut out = format!("{tag}:").into_bytes();
    out.extend_from_slice(data);
    assert_eq!(cx.write(s, &out, false), out.len());
}

/// Growing storage grows a chunk at a time: sockets opened before a growth step keep their ext
/// and their traffic, and sockets take the lowest slots first, across two chunk boundaries.
#[test]
fn growing_storage_grows_twice_and_every_socket_works() {
    let net = quiet_net();
    let storage = GrowingStorage::new(Capacity::new().with_recv(4096).with_events(1024));
    let settings = Settings::default().with_max_accepts_per_event(4096);
    let mut l = match Loop::new(
        net.shim(),
        storage,
        Vec::new(),
        LoopCallbacks::default(),
        settings,
    ) {
        Ok(l) => l,
        Err(e) => panic!("loop: {e}"),
    };
    let c = l
        .context_create(
            (),
            ContextCallbacks {
                on_open: Some(chunky_open),
                on_data: Some(chunky_data),
                ..ContextCallbacks::default()
            },
        )
        .expect("ctx");
    let ls = l
        .listen(
            c,
            any_port(),
            ListenOptions::default().with_backlog(4096),
            || 0,
        )
        .expect("listen");
    let port = l.listen_port(ls).expect("port");
    let chunk = Growing::<SocketEntry<Chunky>>::CHUNK_SLOTS;
    let n = 2 * chunk + 8;
    let mut peers = Vec::with_capacity(n);
    while peers.len() < n {
        for _ in 0..(n - peers.len()).min(4096) {
            peers.push(net.peer_connect(port).expect("connect"));
        }
        run_until(&mut l, 20, |l| l.ext().len() == peers.len());
    }
    assert_eq!(l.socket_slots_in_use(), n);
    let socks = l.ext().clone();
    let mut indices: Vec<u32> = socks.iter().map(|s| s.index()).collect();
    indices.sort();
    assert_eq!(
        indices,
        (0..n as u32).collect::<Vec<_>>(),
        "the lowest slots, three chunks of {chunk}"
    );
    for (i, p) in peers.iter().enumerate() {
        net.peer_send(*p, format!("hello {i}").as_bytes());
    }
    for _ in 0..5 {
        l.run_once(Some(0)).expect("run");
    }
    // Peers and sockets pair up in accept order.
    for (i, (p, s)) in peers.iter().zip(&socks).enumerate() {
        let tag = l.socket_ext(*s).copied().expect("ext");
        assert_eq!(tag, 1000 + i as u32);
        assert_eq!(
            String::from_utf8(net.peer_recv(*p)).expect("utf8"),
            format!("{tag}:hello {i}"),
            "socket {i} (slot {}) echoed its own peer's data",
            s.index()
        );
    }
}

// ---- stale events through a scripted fake shim ------------------------------------------------

#[derive(Default)]
struct FakeState {
    now: u64,
    next_fd: i32,
    /// Current registrations: fd -> (token, interest).
    regs: BTreeMap<i32, (Token, Interest)>,
    /// Event batches `wait` returns, one per call.
    script: VecDeque<Vec<Event>>,
    /// Bytes `recv` hands out per descriptor.
    data: BTreeMap<i32, Vec<u8>>,
    recv_calls: Vec<i32>,
    accept_calls: Vec<i32>,
    closed: Vec<i32>,
}

#[derive(Clone)]
struct FakeShim(Rc<RefCell<FakeState>>);

#[derive(Clone)]
struct NoWake;
impl Wake for NoWake {
    fn wake(&self) {}
}

const WOULD_BLOCK: OsError = OsError::new(ErrorKind::WouldBlock, 11);
const BAD_FD: OsError = OsError::new(ErrorKind::InvalidInput, 9);

/// The fake shim's descriptor: owned, not `Copy`, made only by the fake shim (and this test).
#[derive(Debug, PartialEq, Eq)]
struct FakeFd(i32);

/// A minimal shim: `send2` and `flush` are the trait's defaults.
impl OsShim for FakeShim {
    type Fd = FakeFd;
    type Waker = NoWake;
    type Error = OsError;

    fn register(&mut self, fd: &FakeFd, token: Token, interest: Interest) -> Result<(), OsError> {
        self.0.borrow_mut().regs.insert(fd.0, (token, interest));
        Ok(())
    }
    fn modify(&mut self, fd: &FakeFd, token: Token, interest: Interest) -> Result<(), OsError> {
        match self.0.borrow_mut().regs.get_mut(&fd.0) {
            Some(r) => {
                *r = (token, interest);
                Ok(())
            }
            None => Err(BAD_FD),
        }
    }
    fn deregister(&mut self, fd: &FakeFd) -> Result<(), OsError> {
        self.0
            .borrow_mut()
            .regs
            .remove(&fd.0)
            .map(|_| ())
            .ok_or(BAD_FD)
    }
    fn wait(&mut self, events: &mut [Event], _: Option<u64>) -> Result<usize, OsError> {
        let batch = self.0.borrow_mut().script.pop_front().unwrap_or_default();
        let n = batch.len().min(events.len());
        events[..n].copy_from_slice(&batch[..n]);
        Ok(n)
    }
    fn waker(&mut self) -> NoWake {
        NoWake
    }
    fn now_ms(&mut self) -> u64 {
        self.0.borrow().now
    }
    fn listen(&mut self, _: ListenTarget<'_>, _: ListenOptions) -> Result<FakeFd, OsError> {
        let mut s = self.0.borrow_mut();
        s.next_fd += 1;
        Ok(FakeFd(s.next_fd))
    }
    fn accept(&mut self, listener: &FakeFd) -> Result<Option<(FakeFd, PeerAddr)>, OsError> {
        self.0.borrow_mut().accept_calls.push(listener.0);
        Ok(None)
    }
    fn connect(&mut self, _: ConnectTarget<'_>) -> Result<FakeFd, OsError> {
        Err(OsError::new(ErrorKind::Unsupported, 95))
    }
    fn connect_result(&mut self, _: &FakeFd) -> Result<(), OsError> {
        Ok(())
    }
    fn adopt(&mut self, _: &FakeFd) -> Result<(), OsError> {
        Ok(())
    }
    fn recv(&mut self, fd: &FakeFd, buf: &mut [u8]) -> Result<usize, OsError> {
        let mut s = self.0.borrow_mut();
        s.recv_calls.push(fd.0);
        let pending = s.data.entry(fd.0).or_default();
        if pending.is_empty() {
            return Err(WOULD_BLOCK);
        }
        let n = pending.len().min(buf.len());
        buf[..n].copy_from_slice(&pending[..n]);
        pending.drain(..n);
        Ok(n)
    }
    fn send(&mut self, _: &FakeFd, data: &[u8], _: bool) -> Result<usize, OsError> {
        Ok(data.len())
    }
    fn shutdown_write(&mut self, _: &FakeFd) -> Result<(), OsError> {
        Ok(())
    }
    fn shutdown_read(&mut self, _: &FakeFd) -> Result<(), OsError> {
        Ok(())
    }
    fn close(&mut self, fd: FakeFd) {
        self.0.borrow_mut().closed.push(fd.0);
    }
    fn local_addr(&mut self, _: &FakeFd) -> Result<PeerAddr, OsError> {
        Ok(PeerAddr::Unix)
    }
    fn remote_addr(&mut self, _: &FakeFd) -> Result<PeerAddr, OsError> {
        Ok(PeerAddr::Unix)
    }
}

#[derive(Default)]
struct FakeRec {
    data: Vec<(SocketId, u32, Vec<u8>)>,
    polls: Vec<(PollId, u32)>,
}

struct F;
impl Config for F {
    type Shim = FakeShim;
    type LoopExt = FakeRec;
    type ContextExt = ();
    type SocketExt = u32;
    type TimerExt = ();
    type PollExt = u32;
    type Reason = u32;
    /// Fixed storage by value: the loop owns the arrays.
    type Storage = FixedStorage<Self, 4, 2, 2, 2, 2, 1088, 8>;
    type Layer = usockets_core::NoLayer;
}

fn f_data(cx: &mut Cx<F>, s: SocketId, data: &mut RecvBuf<'_>) {
    let ext = cx.socket_ext(s).copied().unwrap_or(u32::MAX);
    cx.ext_mut().data.push((s, ext, data.to_vec()));
}

fn f_poll(cx: &mut Cx<F>, p: PollId, _: Interest, _: bool) {
    let ext = cx.poll_ext(p).copied().unwrap_or(u32::MAX);
    cx.ext_mut().polls.push((p, ext));
}

fn fake_loop() -> (Rc<RefCell<FakeState>>, Loop<F>, ContextId) {
    let state = Rc::new(RefCell::new(FakeState {
        now: 5_000,
        next_fd: 100,
        ..FakeState::default()
    }));
    let mut l = match Loop::new(
        FakeShim(state.clone()),
        FixedStorage::new(),
        FakeRec::default(),
        LoopCallbacks::default(),
        Settings::default(),
    ) {
        Ok(l) => l,
        Err(e) => panic!("loop: {e}"),
    };
    let c = l
        .context_create(
            (),
            ContextCallbacks {
                on_data: Some(f_data),
                ..ContextCallbacks::default()
            },
        )
        .expect("ctx");
    (state, l, c)
}

fn readable(token: Token) -> Event {
    Event::new(token).with_readable(true)
}

fn token_of(state: &Rc<RefCell<FakeState>>, fd: i32) -> Token {
    state.borrow().regs.get(&fd).expect("registered").0
}

#[test]
fn stale_socket_event_for_reused_slot_is_dropped() {
    let (state, mut l, c) = fake_loop();
    let old = l.adopt_accepted(c, FakeFd(10), 1, &[]).expect("old");
    let old_token = token_of(&state, 10);
    l.close(old, 0, None);
    l.run_once(Some(0)).expect("run");
    let new = l.adopt_accepted(c, FakeFd(11), 2, &[]).expect("new");
    assert_eq!(new.index(), old.index(), "slot reused");
    let new_token = token_of(&state, 11);
    assert_ne!(new_token, old_token);
    state.borrow_mut().data.insert(11, b"for new".to_vec());

    state
        .borrow_mut()
        .script
        .push_back(vec![readable(old_token)]);
    l.run_once(Some(0)).expect("run");
    assert!(
        l.ext().data.is_empty(),
        "a stale token must not reach the new occupant"
    );
    assert!(state.borrow().recv_calls.is_empty(), "no recv for it");

    state
        .borrow_mut()
        .script
        .push_back(vec![readable(new_token)]);
    l.run_once(Some(0)).expect("run");
    assert_eq!(l.ext().data, vec![(new, 2, b"for new".to_vec())]);
    assert_eq!(state.borrow().recv_calls, vec![11]);
}

#[test]
fn stale_listen_event_for_reused_slot_is_dropped() {
    let (state, mut l, c) = fake_loop();
    let old = l
        .listen(c, any_port(), ListenOptions::default(), || 0)
        .expect("old");
    let old_fd = l.listen_fd(old).expect("fd").0;
    let old_token = token_of(&state, old_fd);
    l.listen_close(old);
    l.run_once(Some(0)).expect("run");
    let new = l
        .listen(c, any_port(), ListenOptions::default(), || 0)
        .expect("new");
    assert_eq!(new.index(), old.index(), "slot reused");
    let new_fd = l.listen_fd(new).expect("fd").0;
    let new_token = token_of(&state, new_fd);
    assert_ne!(new_token, old_token);

    state
        .borrow_mut()
        .script
        .push_back(vec![readable(old_token)]);
    l.run_once(Some(0)).expect("run");
    assert!(
        state.borrow().accept_calls.is_empty(),
        "no accept for a stale event"
    );

    state
        .borrow_mut()
        .script
        .push_back(vec![readable(new_token)]);
    l.run_once(Some(0)).expect("run");
    assert_eq!(state.borrow().accept_calls, vec![new_fd]);
}

#[test]
fn stale_poll_event_for_reused_slot_is_dropped() {
    let (state, mut l, _) = fake_loop();
    let old = l.poll_create(true, 1).expect("old");
    l.poll_init(old, FakeFd(20)).expect("init");
    l.poll_set_callback(old, f_poll).expect("cb");
    l.poll_start(old, Interest::READABLE).expect("start");
    let old_token = token_of(&state, 20);
    let (_, fd) = l.poll_free(old).expect("freed");
    assert_eq!(fd, Some(FakeFd(20)), "poll_free gives the descriptor back");
    let new = l.poll_create(true, 2).expect("new");
    l.poll_init(new, FakeFd(21)).expect("init");
    l.poll_set_callback(new, f_poll).expect("cb");
    l.poll_start(new, Interest::READABLE).expect("start");
    assert_eq!(new.index(), old.index(), "slot reused");
    let new_token = token_of(&state, 21);

    state
        .borrow_mut()
        .script
        .push_back(vec![readable(old_token)]);
    l.run_once(Some(0)).expect("run");
    assert!(l.ext().polls.is_empty(), "stale poll event dropped");

    state
        .borrow_mut()
        .script
        .push_back(vec![readable(new_token)]);
    l.run_once(Some(0)).expect("run");
    assert_eq!(l.ext().polls, vec![(new, 2)]);
}

#[test]
fn stale_event_in_same_batch_after_close_is_dropped() {
    let (state, mut l, c) = fake_loop();
    let a = l.adopt_accepted(c, FakeFd(10), 1, &[]).expect("a");
    let ta = token_of(&state, 10);
    state.borrow_mut().data.insert(10, b"one".to_vec());
    l.close(a, 0, None);
    // The event was collected before the close took effect in the OS.
    state.borrow_mut().script.push_back(vec![readable(ta)]);
    l.run_once(Some(0)).expect("run");
    assert!(l.ext().data.is_empty());
    assert!(state.borrow().recv_calls.is_empty());
    assert_eq!(state.borrow().closed, vec![10]);
}

#[test]
fn foreign_and_garbage_tokens_are_dropped_without_effect() {
    let (state, mut l, c) = fake_loop();
    let s = l.adopt_accepted(c, FakeFd(10), 1, &[]).expect("s");
    let t = token_of(&state, 10);
    state.borrow_mut().data.insert(10, b"x".to_vec());
    let garbage = [
        Token(3 << 62),
        Token(t.0 ^ (1 << 32)), // right slot, wrong generation
        Token(t.0 | 0xFFFF),    // slot far out of range
        Token(u64::MAX - 1),
        Token((2 << 62) | 7), // a poll that does not exist
        Token((1 << 62) | 3), // a listener that does not exist
    ];
    state
        .borrow_mut()
        .script
        .push_back(garbage.iter().copied().map(readable).collect());
    l.run_once(Some(0)).expect("run");
    assert!(l.ext().data.is_empty());
    assert!(state.borrow().recv_calls.is_empty());
    assert!(state.borrow().accept_calls.is_empty());
    assert_eq!(l.is_closed(s), Some(false), "the real socket is unaffected");
}
