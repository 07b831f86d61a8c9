//! A TLS echo scenario generic over the shim: a server context and a client context of one
//! loop, certificates made at test time (rcgen), a log of every callback.
#![allow(dead_code)]

use std::marker::PhantomData;
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use usockets_core::{
    Capacity, CloseCause, Config, ConnectTarget, ContextCallbacks, ContextId, Cx, GrowingStorage,
    ListenOptions, ListenTarget, Loop, LoopCallbacks, OsError, OsShim, RecvBuf, Settings, SocketId,
};
use usockets_shim_sim::{Faults, NoFaults, SimNet, SimShim};
use usockets_tls::{Tls, TlsContext, Verify, Versions};

/// A certificate authority and a server certificate it signed, for `names`.
pub struct Pki {
    pub ca: CertificateDer<'static>,
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
    /// The CA certificate, the server certificate and its key, in PEM.
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
    ca_cert: rcgen::Certificate,
    ca_key: rcgen::KeyPair,
}

/// A date: (year, month, day).
pub type Ymd = (i32, u8, u8);

/// A certificate chain and its private key.
pub type Identity = (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>);

fn der_key(key: &rcgen::KeyPair) -> PrivateKeyDer<'static> {
    PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()))
}

/// A self-signed certificate for `name`, with its key.
pub fn self_signed(name: &str) -> Identity {
    let key = rcgen::KeyPair::generate().expect("key");
    let cert = rcgen::CertificateParams::new(vec![name.to_owned()])
        .expect("params")
        .self_signed(&key)
        .expect("self-signed");
    (vec![cert.der().clone()], der_key(&key))
}

impl Pki {
    /// A CA and a server certificate for `names` (DNS names or IP addresses).
    pub fn new(names: &[&str]) -> Pki {
        Pki::valid(names, None)
    }

    /// [`Pki::new`] with the server certificate valid only between the two dates
    /// ((year, month, day) each).
    pub fn valid(names: &[&str], window: Option<(Ymd, Ymd)>) -> Pki {
        let ca_key = rcgen::KeyPair::generate().expect("CA key");
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA");
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "usockets test CA");
        let ca = ca_params.self_signed(&ca_key).expect("CA cert");
        let key = rcgen::KeyPair::generate().expect("server key");
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let mut params = rcgen::CertificateParams::new(names).expect("server params");
        if let Some(((y0, m0, d0), (y1, m1, d1))) = window {
            params.not_before = rcgen::date_time_ymd(y0, m0, d0);
            params.not_after = rcgen::date_time_ymd(y1, m1, d1);
        }
        let cert = params.signed_by(&key, &ca, &ca_key).expect("server cert");
        Pki {
            ca: ca.der().clone(),
            chain: vec![cert.der().clone()],
            key: der_key(&key),
            ca_pem: ca.pem(),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            ca_cert: ca,
            ca_key,
        }
    }

    /// A client certificate for `name` this CA signed, with its key.
    pub fn client_identity(&self, name: &str) -> Identity {
        let key = rcgen::KeyPair::generate().expect("client key");
        let cert = rcgen::CertificateParams::new(vec![name.to_owned()])
            .expect("client params")
            .signed_by(&key, &self.ca_cert, &self.ca_key)
            .expect("client cert");
        (vec![cert.der().clone()], der_key(&key))
    }

    pub fn server(&self, versions: Versions) -> TlsContext {
        let config = usockets_tls::server_config(
            self.chain.clone(),
            self.key.clone_key(),
            &usockets_tls::Options::new(versions),
        )
        .expect("server config");
        TlsContext::server(config)
    }

    pub fn client(&self, versions: Versions) -> TlsContext {
        client_with(Verify::Roots(vec![self.ca.clone()]), versions)
    }
}

pub fn client_with(verify: Verify, versions: Versions) -> TlsContext {
    let config = usockets_tls::client_config(verify, &usockets_tls::Options::new(versions))
        .expect("client config");
    TlsContext::client(config)
}

/// Every callback, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ev {
    Open { s: SocketId, client: bool },
    Data { s: SocketId, len: usize },
    Writable { s: SocketId },
    End { s: SocketId },
    Close { s: SocketId },
    ConnectError { s: SocketId, err: OsError },
}

/// The loop ext: the log, bytes received per socket, and what the callbacks should do.
#[derive(Default)]
pub struct Log {
    pub events: Vec<Ev>,
    pub rx: Vec<(SocketId, Vec<u8>)>,
    /// The server echoes what it receives.
    pub echo: bool,
    /// What the client writes on open (queued while the handshake runs).
    pub greeting: Vec<u8>,
    /// Bytes the server still owes (echo backlog), per socket.
    pub backlog: Vec<(SocketId, Vec<u8>)>,
    /// Whether any on_data saw a buffer without its padding writable on both sides.
    pub padding_ok: bool,
    /// What `usockets_tls::info` said of each socket in its on_close: its error, if any.
    pub close_errors: Vec<(SocketId, Option<String>)>,
}

impl Log {
    pub fn received(&self, s: SocketId) -> &[u8] {
        self.rx
            .iter()
            .find(|(x, _)| *x == s)
            .map_or(&[], |(_, b)| b.as_slice())
    }
    pub fn count(&self, f: impl Fn(&Ev) -> bool) -> usize {
        self.events.iter().filter(|e| f(e)).count()
    }
}

/// A TLS-capable config over shim `S`.
pub struct T<S>(PhantomData<S>);

impl<S: OsShim> Config for T<S> {
    type Shim = S;
    type LoopExt = Log;
    type ContextExt = ();
    type SocketExt = ();
    type TimerExt = ();
    type PollExt = ();
    type Reason = u32;
    type Storage = GrowingStorage<Self>;
    type Layer = Tls;
}

pub type C<S> = Cx<T<S>>;

fn on_open<S: OsShim>(cx: &mut C<S>, s: SocketId, client: bool, _: &[u8]) {
    cx.ext_mut().events.push(Ev::Open { s, client });
    if client {
        // Written before the handshake ends: what the session does not take (past its early
        // limit) waits in the backlog for on_writable.
        let greeting = cx.ext().greeting.clone();
        send(cx, s, &greeting);
        if greeting.len() <= usockets_tls::EARLY_PLAINTEXT_LIMIT {
            let waiting = cx
                .ext()
                .backlog
                .iter()
                .any(|(x, b)| *x == s && !b.is_empty());
            assert!(!waiting, "early plaintext within the limit is taken whole");
        }
    }
}

fn on_data<S: OsShim>(cx: &mut C<S>, s: SocketId, data: &mut RecvBuf<'_>) {
    let len = data.len();
    let bytes = data.to_vec();
    let padded = data.padded();
    let last = padded.len() - 1;
    // C parsers write fences here: the padding must be ours to scribble on.
    padded[0] = 0xAA;
    padded[last] = 0xAA;
    let log = cx.ext_mut();
    log.padding_ok = true;
    log.events.push(Ev::Data { s, len });
    match log.rx.iter_mut().find(|(x, _)| *x == s) {
        Some((_, b)) => b.extend_from_slice(&bytes),
        None => log.rx.push((s, bytes.clone())),
    }
    if log.echo && !is_client(cx, s) {
        send(cx, s, &bytes);
    }
}

fn is_client<S: OsShim>(cx: &C<S>, s: SocketId) -> bool {
    cx.ext()
        .events
        .iter()
        .any(|e| matches!(e, Ev::Open { s: x, client: true } if *x == s))
}

/// Writes behind the socket's backlog; what is refused waits for on_writable.
pub fn send<S: OsShim>(cx: &mut C<S>, s: SocketId, bytes: &[u8]) {
    let waiting = cx
        .ext()
        .backlog
        .iter()
        .any(|(x, b)| *x == s && !b.is_empty());
    let n = if waiting {
        0
    } else {
        cx.write(s, bytes, false)
    };
    if n < bytes.len() {
        let log = cx.ext_mut();
        match log.backlog.iter_mut().find(|(x, _)| *x == s) {
            Some((_, b)) => b.extend_from_slice(&bytes[n..]),
            None => log.backlog.push((s, bytes[n..].to_vec())),
        }
    }
}

fn on_writable<S: OsShim>(cx: &mut C<S>, s: SocketId) {
    cx.ext_mut().events.push(Ev::Writable { s });
    let Some(i) = cx.ext().backlog.iter().position(|(x, _)| *x == s) else {
        return;
    };
    let pending = std::mem::take(&mut cx.ext_mut().backlog[i].1);
    let n = cx.write(s, &pending, false);
    cx.ext_mut().backlog[i].1 = pending[n..].to_vec();
}

fn on_end<S: OsShim>(cx: &mut C<S>, s: SocketId) {
    cx.ext_mut().events.push(Ev::End { s });
    cx.close(s, 0, None);
}

fn on_close<S: OsShim>(cx: &mut C<S>, s: SocketId, _: CloseCause<u32>) {
    let error = usockets_tls::info(cx, s).and_then(|i| i.error);
    let log = cx.ext_mut();
    log.events.push(Ev::Close { s });
    log.close_errors.push((s, error));
}

fn on_connect_error<S: OsShim>(cx: &mut C<S>, s: SocketId, err: OsError) {
    cx.ext_mut().events.push(Ev::ConnectError { s, err });
}

pub fn callbacks<S: OsShim>() -> ContextCallbacks<T<S>> {
    ContextCallbacks {
        on_open: Some(on_open::<S>),
        on_data: Some(on_data::<S>),
        on_writable: Some(on_writable::<S>),
        on_end: Some(on_end::<S>),
        on_close: Some(on_close::<S>),
        on_connect_error: Some(on_connect_error::<S>),
        ..ContextCallbacks::default()
    }
}

/// A server context (TLS as `server` says) listening on 127.0.0.1, and a client context.
pub fn contexts<S: OsShim>(
    l: &mut Loop<T<S>>,
    server: TlsContext,
    client: TlsContext,
) -> (ContextId, ContextId, u16) {
    let sc = l.context_create((), callbacks::<S>()).expect("server ctx");
    assert!(l.set_layer_context(sc, server));
    let cc = l.context_create((), callbacks::<S>()).expect("client ctx");
    assert!(l.set_layer_context(cc, client));
    let target = ListenTarget::Host {
        host: Some("127.0.0.1"),
        port: 0,
    };
    let ls = l
        .listen(sc, target, ListenOptions::default(), || ())
        .expect("listen");
    let port = l.listen_port(ls).expect("port");
    (sc, cc, port)
}

/// The server end of the connection (the one accepted socket).
pub fn server_end<S: OsShim>(l: &Loop<T<S>>) -> Option<SocketId> {
    l.ext().events.iter().find_map(|e| match e {
        Ev::Open { s, client: false } => Some(*s),
        _ => None,
    })
}

pub fn shared<T>(v: T) -> Arc<T> {
    Arc::new(v)
}

/// A TLS-capable loop on a fresh simulated OS without faults, with `settings`.
pub fn sim_with(settings: Settings) -> (SimNet, Loop<T<SimShim>>) {
    let net = SimNet::new(Faults::NONE, Box::new(NoFaults));
    let l = Loop::new(
        net.shim(),
        GrowingStorage::new(Capacity::new().with_recv(512 * 1024)),
        Log::default(),
        LoopCallbacks::default(),
        settings,
    )
    .expect("loop");
    (net, l)
}

/// [`sim_with`] the default settings.
pub fn sim() -> (SimNet, Loop<T<SimShim>>) {
    sim_with(Settings::default())
}

/// Connects from context `cc` to 127.0.0.1:`port`.
pub fn connect_local<S: OsShim>(cx: &mut Cx<T<S>>, cc: ContextId, port: u16) -> SocketId {
    let target = ConnectTarget::Host {
        host: "127.0.0.1",
        port,
        source: None,
    };
    cx.connect(cc, target, ()).expect("connect")
}

/// A real ClientHello, as our own client sends it.
pub fn client_hello() -> Vec<u8> {
    let config = usockets_tls::client_config(
        Verify::NoVerification,
        &usockets_tls::Options::new(Versions::Both),
    )
    .expect("client config");
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").expect("name");
    let mut conn = rustls::ClientConnection::new(config, name).expect("client");
    let mut out = Vec::new();
    while conn.wants_write() {
        conn.write_tls(&mut out).expect("hello");
    }
    out
}
