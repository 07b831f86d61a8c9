//! Property-based state-machine test: arbitrary API calls and simulated OS events (sequences of
//! 50+ steps) checked against a small reference model of each socket's life.
//!
//! Properties: nothing panics; every socket that opened gets exactly one `on_close`; no callback
//! ever arrives for a closed or released socket; a released handle is rejected; and once the
//! loop is drained, every slot and descriptor is free.

mod support;

use std::collections::BTreeMap;

use proptest::prelude::*;
use support::{new_loop, Caps, Faults, SeededRng, SimNet};
use usockets_core::{
    CloseCause, ConnectTarget, ContextCallbacks, ContextId, Cx, ListenId, ListenOptions,
    ListenTarget, Loop, LoopCallbacks, OsError, RecvBuf, Settings, SocketId,
};
use usockets_shim_sim::PeerId;

/// What the model knows about a socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Life {
    Connecting,
    Open,
    /// Closed in the current iteration: handle still valid, `is_closed == Some(true)`.
    Closed,
    /// Connect failed (no on_open, no on_close).
    Failed,
}

#[derive(Default)]
struct Model {
    life: BTreeMap<SocketId, Life>,
    closes: BTreeMap<SocketId, u32>,
    violations: Vec<String>,
}

impl Model {
    fn expect_live(&mut self, s: SocketId, what: &str) {
        match self.life.get(&s) {
            Some(Life::Open) | Some(Life::Connecting) => {}
            other => self
                .violations
                .push(format!("{what} for {s:?} in state {other:?}")),
        }
    }
}

sim_config!(M {
    loop_ext: Model,
    context_ext: u8,
    socket_ext: u64,
    timer_ext: u32,
    poll_ext: ()
});

fn live(cx: &mut Cx<M>, s: SocketId, what: &str) {
    cx.ext_mut().expect_live(s, what);
    if cx.is_closed(s) != Some(false) {
        cx.ext_mut()
            .violations
            .push(format!("{what} for {s:?}: core says closed/released"));
    }
}

fn on_open(cx: &mut Cx<M>, s: SocketId, is_client: bool, _: &[u8]) {
    let m = cx.ext_mut();
    match (is_client, m.life.get(&s)) {
        (true, Some(Life::Connecting)) | (false, None) => {
            m.life.insert(s, Life::Open);
        }
        (_, st) => m
            .violations
            .push(format!("on_open({is_client}) for {s:?} in state {st:?}")),
    }
}
fn on_data(cx: &mut Cx<M>, s: SocketId, data: &mut RecvBuf<'_>) {
    live(cx, s, "on_data");
    if data.is_empty() {
        cx.ext_mut().violations.push("empty on_data".into());
    }
}
fn on_writable(cx: &mut Cx<M>, s: SocketId) {
    live(cx, s, "on_writable");
}
fn on_end(cx: &mut Cx<M>, s: SocketId) {
    live(cx, s, "on_end");
}
fn on_timeout(cx: &mut Cx<M>, s: SocketId) {
    live(cx, s, "on_timeout");
}
fn on_close(cx: &mut Cx<M>, s: SocketId, _: CloseCause<u32>) {
    let m = cx.ext_mut();
    match m.life.get(&s) {
        Some(Life::Open) | Some(Life::Connecting) => {
            m.life.insert(s, Life::Closed);
        }
        st => m
            .violations
            .push(format!("on_close for {s:?} in state {st:?}")),
    }
    *m.closes.entry(s).or_default() += 1;
    if cx.is_closed(s) != Some(true) {
        cx.ext_mut()
            .violations
            .push(format!("on_close for {s:?} not marked closed"));
    }
}
fn on_connect_error(cx: &mut Cx<M>, s: SocketId, _: OsError) {
    let m = cx.ext_mut();
    match m.life.get(&s) {
        Some(Life::Connecting) => {
            m.life.insert(s, Life::Failed);
        }
        st => m
            .violations
            .push(format!("on_connect_error for {s:?} in state {st:?}")),
    }
}
fn on_timer(cx: &mut Cx<M>, t: usockets_core::TimerId) {
    if let Some(n) = cx.timer_ext_mut(t) {
        *n += 1;
        if *n % 3 == 0 {
            cx.timer_close(t);
        }
    }
}

fn callbacks() -> ContextCallbacks<M> {
    ContextCallbacks {
        on_open: Some(on_open),
        on_data: Some(on_data),
        on_writable: Some(on_writable),
        on_end: Some(on_end),
        on_timeout: Some(on_timeout),
        on_close: Some(on_close),
        on_connect_error: Some(on_connect_error),
        ..ContextCallbacks::default()
    }
}

#[derive(Clone, Debug)]
enum Op {
    PeerConnect,
    PeerSend(usize, u16),
    PeerShutdown(usize),
    PeerClose(usize),
    PeerReset(usize),
    Connect,
    ConnectRefused,
    ConnectBadName,
    Close(usize, i32),
    CloseConnecting(usize),
    Shutdown(usize),
    ShutdownRead(usize),
    Write(usize, u16),
    Timeout(usize, u8),
    Adopt(usize),
    Pause(usize),
    Resume(usize),
    TimerCreate(bool),
    TimerSet(usize, u16, u16),
    TimerClose(usize),
    ListenClose,
    ContextClose,
    Run(u16),
}

fn op() -> impl Strategy<Value = Op> {
    let i = 0usize..64;
    prop_oneof![
        3 => Just(Op::PeerConnect),
        4 => (i.clone(), 1u16..5000).prop_map(|(a, b)| Op::PeerSend(a, b)),
        1 => i.clone().prop_map(Op::PeerShutdown),
        1 => i.clone().prop_map(Op::PeerClose),
        1 => i.clone().prop_map(Op::PeerReset),
        2 => Just(Op::Connect),
        1 => Just(Op::ConnectRefused),
        1 => Just(Op::ConnectBadName),
        2 => (i.clone(), -3i32..1000).prop_map(|(a, b)| Op::Close(a, b)),
        1 => i.clone().prop_map(Op::CloseConnecting),
        1 => i.clone().prop_map(Op::Shutdown),
        1 => i.clone().prop_map(Op::ShutdownRead),
        3 => (i.clone(), 1u16..9000).prop_map(|(a, b)| Op::Write(a, b)),
        2 => (i.clone(), 0u8..20).prop_map(|(a, b)| Op::Timeout(a, b)),
        2 => i.clone().prop_map(Op::Adopt),
        1 => i.clone().prop_map(Op::Pause),
        1 => i.clone().prop_map(Op::Resume),
        1 => any::<bool>().prop_map(Op::TimerCreate),
        1 => (i.clone(), 0u16..3000, 0u16..3000).prop_map(|(a, b, c)| Op::TimerSet(a, b, c)),
        1 => i.prop_map(Op::TimerClose),
        1 => Just(Op::ListenClose),
        1 => Just(Op::ContextClose),
        6 => (0u16..6000).prop_map(Op::Run),
    ]
}

struct Harness {
    net: SimNet,
    l: Loop<M>,
    ctx: [ContextId; 2],
    listener: Option<ListenId>,
    port: u16,
    peers: Vec<PeerId>,
    timers: Vec<usockets_core::TimerId>,
    /// Released handles, which core must reject from now on.
    released: Vec<SocketId>,
}

impl Harness {
    fn new(seed: u64, faults: Faults) -> Harness {
        let net = SimNet::new(faults, Box::new(SeededRng::new(seed)));
        let caps = Caps {
            sockets: 24,
            timers: 6,
            recv: 2048,
            ..Caps::default()
        };
        let settings = Settings::default().with_sweep_period_ms(1000);
        let mut l = new_loop::<M>(
            &net,
            caps,
            Model::default(),
            LoopCallbacks::default(),
            settings,
        );
        let a = l.context_create(0, callbacks()).expect("ctx");
        let b = l.context_create_child(a, 1).expect("child");
        *l.context_callbacks_mut(b).expect("child") = callbacks();
        let mut h = Harness {
            net,
            l,
            ctx: [a, b],
            listener: None,
            port: 0,
            peers: vec![],
            timers: vec![],
            released: vec![],
        };
        h.relisten();
        h.l.integrate();
        h
    }

    fn relisten(&mut self) {
        let t = ListenTarget::Host {
            host: Some("127.0.0.1"),
            port: 0,
        };
        if let Ok(ls) = self
            .l
            .listen(self.ctx[0], t, ListenOptions::default(), || 0)
        {
            self.port = self.l.listen_port(ls).unwrap_or(0);
            self.listener = Some(ls);
        }
    }

    fn socket(&self, i: usize) -> Option<SocketId> {
        let all: Vec<SocketId> = self.l.ext().life.keys().copied().collect();
        if all.is_empty() {
            None
        } else {
            Some(all[i % all.len()])
        }
    }

    fn connect(&mut self, target: ConnectTarget<'_>) {
        if let Ok(s) = self.l.connect(self.ctx[0], target, 7) {
            let m = self.l.ext_mut();
            if m.life.insert(s, Life::Connecting).is_some() {
                m.violations
                    .push(format!("connect reused live handle {s:?}"));
            }
        }
    }

    fn run(&mut self, timeout: u64) {
        self.l.run_once(Some(timeout)).expect("wait");
        // The iteration ended: closed and failed sockets are released now.
        let m = self.l.ext_mut();
        let gone: Vec<SocketId> = m
            .life
            .iter()
            .filter(|(_, l)| matches!(l, Life::Closed | Life::Failed))
            .map(|(s, _)| *s)
            .collect();
        for s in gone {
            m.life.remove(&s);
            self.released.push(s);
        }
    }

    fn apply(&mut self, op: &Op) {
        match *op {
            Op::PeerConnect => {
                if let Ok(p) = self.net.peer_connect(self.port) {
                    self.peers.push(p);
                }
            }
            Op::PeerSend(i, n) => {
                if let Some(&p) = self.peers.get(i % self.peers.len().max(1)) {
                    self.net.peer_send(p, &vec![0x42; n as usize]);
                }
            }
            Op::PeerShutdown(i) | Op::PeerClose(i) | Op::PeerReset(i) => {
                if let Some(&p) = self.peers.get(i % self.peers.len().max(1)) {
                    match op {
                        Op::PeerShutdown(_) => self.net.peer_shutdown(p),
                        Op::PeerClose(_) => self.net.peer_close(p),
                        _ => self.net.peer_reset(p),
                    }
                }
            }
            Op::Connect => {
                let port = self.port;
                self.connect(ConnectTarget::Host {
                    host: "127.0.0.1",
                    port,
                    source: None,
                })
            }
            Op::ConnectRefused => self.connect(ConnectTarget::Host {
                host: "127.0.0.1",
                port: 1,
                source: None,
            }),
            Op::ConnectBadName => self.connect(ConnectTarget::Host {
                host: "no.such.host.invalid",
                port: 80,
                source: None,
            }),
            Op::Close(i, code) => {
                if let Some(s) = self.socket(i) {
                    self.l.close(s, code, Some(code as u32));
                }
            }
            Op::CloseConnecting(i) => {
                if let Some(s) = self.socket(i) {
                    let connecting = self.l.is_established(s) == Some(false)
                        && self.l.is_closed(s) == Some(false);
                    self.l.close_connecting(s);
                    if connecting && self.l.ext().life.get(&s) == Some(&Life::Connecting) {
                        self.l.ext_mut().life.insert(s, Life::Failed);
                    }
                }
            }
            Op::Shutdown(i) => {
                if let Some(s) = self.socket(i) {
                    self.l.shutdown(s)
                }
            }
            Op::ShutdownRead(i) => {
                if let Some(s) = self.socket(i) {
                    self.l.shutdown_read(s)
                }
            }
            Op::Write(i, n) => {
                if let Some(s) = self.socket(i) {
                    let w = self.l.write(s, &vec![0x17; n as usize], false);
                    assert!(w <= n as usize);
                }
            }
            Op::Timeout(i, secs) => {
                if let Some(s) = self.socket(i) {
                    self.l.timeout(s, u32::from(secs));
                }
            }
            Op::Adopt(i) => {
                if let Some(s) = self.socket(i) {
                    let to = if self.l.socket_context(s) == Some(self.ctx[0]) {
                        self.ctx[1]
                    } else {
                        self.ctx[0]
                    };
                    let before = self.l.socket_ext(s).copied();
                    let r = self.l.adopt(s, to);
                    assert_eq!(r, Some(s));
                    assert_eq!(self.l.socket_ext(s).copied(), before, "adopt keeps ext");
                }
            }
            Op::Pause(i) => {
                if let Some(s) = self.socket(i) {
                    self.l.pause(s)
                }
            }
            Op::Resume(i) => {
                if let Some(s) = self.socket(i) {
                    self.l.resume(s)
                }
            }
            Op::TimerCreate(ft) => {
                if let Ok(t) = self.l.timer_create(ft, 0) {
                    self.timers.push(t);
                }
            }
            Op::TimerSet(i, ms, rep) => {
                if let Some(&t) = self.timers.get(i % self.timers.len().max(1)) {
                    self.l.timer_set(t, on_timer, u64::from(ms), u64::from(rep));
                }
            }
            Op::TimerClose(i) => {
                if let Some(&t) = self.timers.get(i % self.timers.len().max(1)) {
                    self.l.timer_close(t);
                }
            }
            Op::ListenClose => {
                if let Some(ls) = self.listener.take() {
                    self.l.listen_close(ls);
                } else {
                    self.relisten();
                }
            }
            Op::ContextClose => {
                let c = self.ctx[1];
                self.l.context_close(c);
            }
            Op::Run(ms) => self.run(u64::from(ms)),
        }
    }

    fn check(&self) {
        let m = self.l.ext();
        assert!(m.violations.is_empty(), "violations: {:#?}", m.violations);
        for (&s, &life) in &m.life {
            let closed = self.l.is_closed(s);
            match life {
                Life::Open | Life::Connecting => {
                    assert_eq!(closed, Some(false), "{s:?} should be open")
                }
                Life::Closed | Life::Failed => {
                    assert_eq!(closed, Some(true), "{s:?} should read as closed")
                }
            }
        }
        for &s in &self.released {
            if !m.life.contains_key(&s) {
                assert_eq!(
                    self.l.is_closed(s),
                    None,
                    "released handle {s:?} still accepted"
                );
                assert!(
                    self.l.socket_ext(s).is_none(),
                    "released handle {s:?} aliases a slot"
                );
            }
        }
        for (s, n) in &m.closes {
            assert_eq!(*n, 1, "{s:?} closed {n} times");
        }
    }

    /// Closes everything, runs the loop dry and checks nothing is left.
    fn drain(&mut self) {
        self.net.set_faults(Faults::NONE);
        for t in std::mem::take(&mut self.timers) {
            self.l.timer_close(t);
        }
        for c in self.ctx {
            self.l.context_close(c);
        }
        self.listener = None;
        self.run(0);
        self.run(0);
        self.check();
        let opened: Vec<_> = self.l.ext().closes.keys().copied().collect();
        assert!(
            self.l.ext().life.is_empty(),
            "sockets left: {:?}",
            self.l.ext().life
        );
        assert_eq!(self.l.slots_in_use(), [0, 0, 2, 0, 0], "slots leaked");
        for s in opened {
            assert_eq!(self.l.is_closed(s), None);
        }
        assert!(!self.l.is_alive());
        assert_eq!(self.net.open_fds(), 0, "descriptors leaked");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn model_quiet(ops in proptest::collection::vec(op(), 50..160), seed in any::<u64>()) {
        let mut h = Harness::new(seed, Faults::NONE);
        for op in &ops {
            h.apply(op);
            h.check();
        }
        h.drain();
    }

    #[test]
    fn model_with_faults(ops in proptest::collection::vec(op(), 50..160), seed in any::<u64>()) {
        let mut h = Harness::new(seed, Faults::chaos());
        for op in &ops {
            h.apply(op);
            h.check();
        }
        h.drain();
    }
}
