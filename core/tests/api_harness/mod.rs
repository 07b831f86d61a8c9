//! Shared recording harness of the `api_*` behaviour tests: every callback appends an [`Ev`] to
//! the loop ext's log, so tests assert on what the library did, in order, with its arguments.
//!
//! Generic over any test config with these ext types ([`Api`]); each test file declares its own
//! with `sim_config!` and the ext types below.
#![allow(dead_code)]

use crate::support::{new_loop, run_until, Caps, Faults, SeededRng, SimNet, SimShim};
use usockets_core::{
    Accepted, CloseCause, Config, ContextCallbacks, ContextId, Cx, GrowingStorage, ListenId,
    ListenOptions, ListenTarget, Loop, LoopCallbacks, OsError, RecvBuf, Settings, SocketId,
};
use usockets_shim_sim::{PeerId, SimFd};

/// What the recording `on_pre_open` does with the accepted descriptor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PreOpen {
    /// Leave it: the library adopts it.
    Adopt,
    /// Take it (into [`World::taken`]).
    Taken,
}

/// The ext every accepted socket starts with.
pub const ACCEPTED_EXT: u64 = 77;

/// One observed callback.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ev {
    /// `on_pre_open`, with the number of the descriptor offered.
    PreOpen {
        ctx: ContextId,
        fd: i32,
        ip: Vec<u8>,
    },
    /// `ctx` is the ext of the socket's context when the callback ran.
    Open {
        s: SocketId,
        client: bool,
        ip: Vec<u8>,
        ctx: u32,
    },
    Data {
        s: SocketId,
        bytes: Vec<u8>,
        ctx: u32,
    },
    Writable(SocketId),
    End(SocketId),
    /// `on_close` with the code and reason as C sees them ([`CloseCause::code_and_reason`]);
    /// the whole cause goes to [`World::causes`].
    Close {
        s: SocketId,
        code: i32,
        reason: Option<u32>,
    },
    ConnectError {
        s: SocketId,
        err: OsError,
    },
    Timeout(SocketId),
    LongTimeout(SocketId),
    Released {
        s: SocketId,
        ext: u64,
    },
    /// A test-specific callback ran.
    Note(&'static str, SocketId),
}

/// Loop ext: the log plus knobs the recording callbacks obey.
#[derive(Default)]
pub struct World {
    pub log: Vec<Ev>,
    /// What `on_pre_open` answers (`None`: it is not consulted, i.e. Adopt).
    pub pre_open: Option<PreOpen>,
    /// Descriptors `on_pre_open` took (now the test's: dropping one closes it).
    pub taken: Vec<SimFd>,
    /// Every `on_close`'s cause, in order.
    pub causes: Vec<(SocketId, CloseCause<u32>)>,
    /// `on_data` writes every chunk back.
    pub echo: bool,
    /// Bytes `on_writable` still has to write (drained by what each write accepts).
    pub pending: Vec<u8>,
    /// Free slots for tests' own callbacks.
    pub listener: Option<ListenId>,
    pub target: Option<ContextId>,
    pub sockets: Vec<SocketId>,
    pub flag: bool,
}

/// The configs the harness works with.
pub trait Api:
    Config<
    Shim = SimShim,
    LoopExt = World,
    ContextExt = u32,
    SocketExt = u64,
    TimerExt = (),
    PollExt = (),
    Reason = u32,
    Storage = GrowingStorage<Self>,
>
{
}
impl<
        T: Config<
            Shim = SimShim,
            LoopExt = World,
            ContextExt = u32,
            SocketExt = u64,
            TimerExt = (),
            PollExt = (),
            Reason = u32,
            Storage = GrowingStorage<T>,
        >,
    > Api for T
{
}

pub fn ctx_tag<C: Api>(cx: &Cx<C>, s: SocketId) -> u32 {
    cx.socket_context(s)
        .and_then(|c| cx.context_ext(c))
        .copied()
        .unwrap_or(u32::MAX)
}

pub fn log<C: Api>(cx: &mut Cx<C>, ev: Ev) {
    cx.ext_mut().log.push(ev);
}

pub fn rec_pre_open<C: Api>(
    cx: &mut Cx<C>,
    ctx: ContextId,
    accepted: &mut Accepted<SimFd>,
    ip: &[u8],
) {
    let fd = accepted.fd().map_or(-1, SimFd::number);
    log(
        cx,
        Ev::PreOpen {
            ctx,
            fd,
            ip: ip.to_vec(),
        },
    );
    if cx.ext().pre_open == Some(PreOpen::Taken) {
        if let Some(fd) = accepted.take() {
            cx.ext_mut().taken.push(fd);
        }
    }
}
pub fn rec_open<C: Api>(cx: &mut Cx<C>, s: SocketId, client: bool, ip: &[u8]) {
    let ctx = ctx_tag(cx, s);
    log(
        cx,
        Ev::Open {
            s,
            client,
            ip: ip.to_vec(),
            ctx,
        },
    );
}
pub fn rec_data<C: Api>(cx: &mut Cx<C>, s: SocketId, data: &mut RecvBuf<'_>) {
    let ctx = ctx_tag(cx, s);
    let bytes = data.to_vec();
    log(
        cx,
        Ev::Data {
            s,
            bytes: bytes.clone(),
            ctx,
        },
    );
    if cx.ext().echo {
        // A short echo would lose bytes: the tests that echo keep the peer reading.
        let n = cx.write(s, &bytes, false);
        assert!(
            n == bytes.len() || cx.is_closed(s) != Some(false),
            "echo wrote {n} of {} bytes",
            bytes.len()
        );
    }
}
pub fn rec_writable<C: Api>(cx: &mut Cx<C>, s: SocketId) {
    log(cx, Ev::Writable(s));
    let pending = core::mem::take(&mut cx.ext_mut().pending);
    if !pending.is_empty() {
        let n = cx.write(s, &pending, false);
        cx.ext_mut().pending = pending[n..].to_vec();
    }
}
pub fn rec_end<C: Api>(cx: &mut Cx<C>, s: SocketId) {
    log(cx, Ev::End(s));
}
pub fn rec_close<C: Api>(cx: &mut Cx<C>, s: SocketId, cause: CloseCause<u32>) {
    let (code, reason) = cause.code_and_reason();
    log(cx, Ev::Close { s, code, reason });
    cx.ext_mut().causes.push((s, cause));
}

/// The causes `on_close` got for `s`.
pub fn causes_of<C: Api>(cx: &Cx<C>, s: SocketId) -> Vec<CloseCause<u32>> {
    cx.ext()
        .causes
        .iter()
        .filter(|(x, _)| *x == s)
        .map(|(_, c)| *c)
        .collect()
}
pub fn rec_connect_error<C: Api>(cx: &mut Cx<C>, s: SocketId, err: OsError) {
    log(cx, Ev::ConnectError { s, err });
}
pub fn rec_timeout<C: Api>(cx: &mut Cx<C>, s: SocketId) {
    log(cx, Ev::Timeout(s));
}
pub fn rec_long_timeout<C: Api>(cx: &mut Cx<C>, s: SocketId) {
    log(cx, Ev::LongTimeout(s));
}
pub fn rec_released<C: Api>(cx: &mut Cx<C>, s: SocketId, ext: u64) {
    log(cx, Ev::Released { s, ext });
}

/// Context callbacks that record everything (`on_pre_open` included).
pub fn recorder<C: Api>() -> ContextCallbacks<C> {
    ContextCallbacks {
        on_pre_open: Some(rec_pre_open),
        on_open: Some(rec_open),
        on_close: Some(rec_close),
        on_data: Some(rec_data),
        on_writable: Some(rec_writable),
        on_timeout: Some(rec_timeout),
        on_long_timeout: Some(rec_long_timeout),
        on_end: Some(rec_end),
        on_connect_error: Some(rec_connect_error),
    }
}

pub fn accepted_ext() -> u64 {
    ACCEPTED_EXT
}

/// A network whose enabled faults always hit (per-mille 1000 with a seeded source).
pub fn faulty_net(faults: Faults) -> SimNet {
    SimNet::new(faults, Box::new(SeededRng::new(1)))
}

pub fn make_loop<C: Api>(net: &SimNet, caps: Caps, settings: Settings) -> Loop<C> {
    let callbacks = LoopCallbacks {
        released: Some(rec_released),
        ..LoopCallbacks::default()
    };
    new_loop::<C>(net, caps, World::default(), callbacks, settings)
}

pub fn any_host(port: u16) -> ListenTarget<'static> {
    ListenTarget::Host { host: None, port }
}

/// A loop with one recording context (ext 1) listening on an ephemeral port of `host`.
pub struct Server<C: Config> {
    pub l: Loop<C>,
    pub ctx: ContextId,
    pub ls: ListenId,
    pub port: u16,
}

pub fn server_on<C: Api>(
    net: &SimNet,
    caps: Caps,
    settings: Settings,
    host: Option<&str>,
) -> Server<C> {
    let mut l = make_loop::<C>(net, caps, settings);
    let ctx = l.context_create(1, recorder()).expect("context");
    let ls = l
        .listen(
            ctx,
            ListenTarget::Host { host, port: 0 },
            ListenOptions::default(),
            accepted_ext,
        )
        .expect("listen");
    let port = l.listen_port(ls).expect("listen port");
    Server { l, ctx, ls, port }
}

pub fn server<C: Api>(net: &SimNet) -> Server<C> {
    server_on(net, Caps::default(), Settings::default(), None)
}

/// Every logged event matching `f`.
pub fn events<C: Api>(l: &Loop<C>, f: impl Fn(&Ev) -> bool) -> Vec<Ev> {
    l.ext().log.iter().filter(|e| f(e)).cloned().collect()
}
pub fn count<C: Api>(l: &Loop<C>, f: impl Fn(&Ev) -> bool) -> usize {
    l.ext().log.iter().filter(|e| f(e)).count()
}
/// Sockets opened so far, in order.
pub fn opened<C: Api>(l: &Loop<C>) -> Vec<SocketId> {
    l.ext()
        .log
        .iter()
        .filter_map(|e| match e {
            Ev::Open { s, .. } => Some(*s),
            _ => None,
        })
        .collect()
}
/// Everything `on_data` got for `s`, concatenated.
pub fn data_of<C: Api>(l: &Loop<C>, s: SocketId) -> Vec<u8> {
    l.ext()
        .log
        .iter()
        .filter_map(|e| match e {
            Ev::Data { s: d, bytes, .. } if *d == s => Some(bytes.clone()),
            _ => None,
        })
        .flatten()
        .collect()
}
pub fn closes_of<C: Api>(l: &Loop<C>, s: SocketId) -> usize {
    count(l, |e| matches!(e, Ev::Close { s: c, .. } if *c == s))
}
pub fn ends_of<C: Api>(l: &Loop<C>, s: SocketId) -> usize {
    count(l, |e| matches!(e, Ev::End(c) if *c == s))
}

/// Connects a peer to `port` and runs until the server side opens; returns both ends.
pub fn accept<C: Api>(net: &SimNet, l: &mut Loop<C>, port: u16) -> (PeerId, SocketId) {
    let before = opened(l).len();
    let peer = net.peer_connect(port).expect("peer connect");
    run_until(l, 10, |l| opened(l).len() > before);
    let s = *opened(l).last().expect("opened");
    (peer, s)
}

/// Runs one iteration that must not wait (everything needed is ready or due).
pub fn turn<C: Api>(l: &mut Loop<C>) {
    l.run_once(Some(0)).expect("run_once");
}

/// A server with one accepted connection.
pub fn established_on<C: Api>(
    net: &SimNet,
    caps: Caps,
    settings: Settings,
) -> (Server<C>, PeerId, SocketId) {
    let mut sv = server_on::<C>(net, caps, settings, None);
    let (peer, s) = accept(net, &mut sv.l, sv.port);
    (sv, peer, s)
}

/// A server with one accepted connection, default capacities and settings.
pub fn established<C: Api>(net: &SimNet) -> (Server<C>, PeerId, SocketId) {
    established_on(net, Caps::default(), Settings::default())
}

/// Every send is partial.
pub fn partial_writes() -> Faults {
    Faults {
        partial_write: 1000,
        ..Faults::NONE
    }
}
