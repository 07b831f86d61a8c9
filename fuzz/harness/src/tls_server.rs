//! The `tls_server` target: arbitrary bytes into a fresh TLS server socket on the simulated OS.
//!
//! The input is cut into pieces (each piece's first byte says how long it is), and each piece
//! reaches the server in an iteration of its own, so records split anywhere. Invariants: nothing
//! panics; `on_data` never runs before the handshake ended (a peer that speaks no TLS, or an
//! unfinished handshake, delivers no plaintext); after the peer's FIN the socket is closed and
//! its slot and descriptor are gone.

use std::sync::{Arc, OnceLock};

use usockets_core::{
    Capacity, CloseCause, Config, ContextCallbacks, Cx, GrowingStorage, ListenOptions,
    ListenTarget, Loop, LoopCallbacks, RecvBuf, Settings, SocketId,
};
use usockets_shim_sim::{Faults, NoFaults, SimNet, SimShim};
use usockets_tls::{rustls, Tls, TlsContext, Versions};

/// What the run saw.
#[derive(Default)]
struct Seen {
    opened: Option<SocketId>,
    closed: bool,
    data: usize,
}

struct TlsH;

impl Config for TlsH {
    type Shim = SimShim;
    type LoopExt = Seen;
    type ContextExt = ();
    type SocketExt = ();
    type TimerExt = ();
    type PollExt = ();
    type Reason = u32;
    type Storage = GrowingStorage<Self>;
    type Layer = Tls;
}

fn on_open(cx: &mut Cx<TlsH>, s: SocketId, _: bool, _: &[u8]) {
    cx.ext_mut().opened = Some(s);
}

fn on_data(cx: &mut Cx<TlsH>, s: SocketId, data: &mut RecvBuf<'_>) {
    let info = usockets_tls::info(cx, s).expect("a layered socket has a session");
    assert!(!info.handshaking, "plaintext before the handshake ended");
    cx.ext_mut().data += data.len();
}

fn on_close(cx: &mut Cx<TlsH>, _: SocketId, _: CloseCause<u32>) {
    cx.ext_mut().closed = true;
}

/// The server's configuration: one certificate, made once per process.
fn server() -> TlsContext {
    static CONFIG: OnceLock<Arc<rustls::ServerConfig>> = OnceLock::new();
    let config = CONFIG.get_or_init(|| {
        let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()])
            .expect("test certificate");
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(
            rustls::pki_types::PrivatePkcs8KeyDer::from(cert.key_pair.serialize_der()),
        );
        usockets_tls::server_config(
            vec![cert.cert.der().clone()],
            key,
            &usockets_tls::Options::new(Versions::Both),
        )
        .expect("server config")
    });
    TlsContext::server(Arc::clone(config))
}

/// Runs one input (see the module docs); panics on a broken invariant.
pub fn run_tls_server(data: &[u8]) {
    let net = SimNet::new(Faults::NONE, Box::new(NoFaults));
    let storage = GrowingStorage::new(Capacity::new().with_recv(16 * 1024));
    let mut l: Loop<TlsH> = Loop::new(
        net.shim(),
        storage,
        Seen::default(),
        LoopCallbacks::default(),
        Settings::default(),
    )
    .expect("loop");
    let callbacks = ContextCallbacks {
        on_open: Some(on_open),
        on_data: Some(on_data),
        on_close: Some(on_close),
        ..ContextCallbacks::default()
    };
    let ctx = l.context_create((), callbacks).expect("context");
    l.set_layer_context(ctx, server());
    let target = ListenTarget::Host {
        host: Some("127.0.0.1"),
        port: 0,
    };
    let ls = l
        .listen(ctx, target, ListenOptions::default(), || ())
        .expect("listen");
    let port = l.listen_port(ls).expect("port");
    let peer = net.peer_connect(port).expect("peer");
    l.run_once(Some(0)).expect("run");
    assert!(l.ext().opened.is_some(), "accepted");
    let mut rest = data;
    while let Some((&len, tail)) = rest.split_first() {
        let n = usize::from(len).min(tail.len());
        net.peer_send(peer, &tail[..n]);
        rest = &tail[n..];
        l.run_once(Some(0)).expect("run");
        let _ = net.peer_recv(peer);
    }
    net.peer_shutdown(peer);
    for _ in 0..50 {
        if l.ext().closed {
            break;
        }
        l.run_once(Some(0)).expect("run");
        let _ = net.peer_recv(peer);
    }
    assert!(l.ext().closed, "the peer's FIN closed the socket");
    assert_eq!(l.slots_in_use()[0], 0, "its slot was released");
    l.listen_close(ls);
    l.run_once(Some(0)).expect("run");
    assert_eq!(net.open_fds(), 0, "no descriptor left");
}
