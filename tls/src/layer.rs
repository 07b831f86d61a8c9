//! [`Tls`]: the layer that runs a rustls session on every socket of a TLS context.

use std::cell::Cell;

use rustls::client::UnbufferedClientConnection;
use rustls::pki_types::ServerName;
use rustls::server::UnbufferedServerConnection;
use usockets_core::{
    Config, ConnectTarget, Cx, ErrorKind, Layer, OsError, RecvBuf, SocketId, RECV_PADDING,
};

use crate::config::TlsContext;
use crate::session::{borrow, give_back, Session};

/// Most plaintext handed to one `on_data` call (`LIBUS_RECV_BUFFER_LENGTH`).
const DELIVER_MAX: usize = 512 * 1024;

/// The TLS layer: name it as a [`Config`]'s `Layer` and set a context's [`TlsContext`] with
/// [`Cx::set_layer_context`] to make its sockets speak TLS. Plain contexts of the same loop stay
/// plain, and cost nothing more.
pub struct Tls;

/// What a connection negotiated, and how it ended.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Info {
    /// Whether the handshake is still running.
    pub handshaking: bool,
    /// The protocol version (`None` until negotiated).
    pub version: Option<rustls::ProtocolVersion>,
    /// The cipher suite (`None` until negotiated).
    pub cipher_suite: Option<rustls::CipherSuite>,
    /// The ALPN protocol agreed, if any.
    pub alpn: Option<Vec<u8>>,
    /// The server name the client asked for (SNI), on a server socket.
    pub server_name: Option<String>,
    /// How many certificates the peer presented.
    pub peer_certificates: usize,
    /// Whether the session was resumed from an earlier one (no full handshake).
    pub resumed: bool,
    /// Why the session failed (a refused certificate, a bad record...), if it did.
    pub error: Option<String>,
}

/// What the TLS session of `s` negotiated; `None` for a plain (or unknown) socket. Readable in
/// `on_close` too, to learn why a session failed.
pub fn info<C: Config<Layer = Tls>>(cx: &Cx<C>, s: SocketId) -> Option<Info> {
    let session = cx.layer_socket(s)?.as_ref()?;
    let common = session.common();
    Some(Info {
        handshaking: common.is_handshaking(),
        version: common.protocol_version(),
        cipher_suite: common.negotiated_cipher_suite().map(|c| c.suite()),
        alpn: common.alpn_protocol().map(<[u8]>::to_vec),
        server_name: session.server_name.clone(),
        peer_certificates: common.peer_certificates().map_or(0, <[_]>::len),
        resumed: common.handshake_kind() == Some(rustls::HandshakeKind::Resumed),
        error: session.error.as_ref().map(ToString::to_string),
    })
}

thread_local! {
    /// The loop thread's plaintext buffer, padded for `on_data`. rustls (0.23) hands each
    /// decrypted record over in a buffer of its own, never in place in the ciphertext, so
    /// plaintext is gathered here: its padding overlaps nothing (no ciphertext is in it).
    static PLAINTEXT: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
}

fn take<C: Config<Layer = Tls>>(cx: &mut Cx<C>, s: SocketId) -> Option<Box<Session>> {
    cx.layer_socket_mut(s)?.take()
}

fn put<C: Config<Layer = Tls>>(cx: &mut Cx<C>, s: SocketId, session: Box<Session>) {
    if let Some(slot) = cx.layer_socket_mut(s) {
        *slot = Some(session);
    }
}

/// The TLS configuration of `s`'s context, if it speaks TLS.
fn tls_context<C: Config<Layer = Tls>>(cx: &Cx<C>, s: SocketId) -> Option<&TlsContext> {
    let context = cx.socket_context(s).and_then(|c| cx.layer_context(c))?;
    context.is_tls().then_some(context)
}

impl<C: Config<Layer = Tls>> Layer<C> for Tls {
    type Socket = Option<Box<Session>>;
    type Context = TlsContext;

    fn connecting(cx: &mut Cx<C>, s: SocketId, target: &ConnectTarget<'_>) -> Result<(), OsError> {
        // EINVAL (22 on Linux, the BSDs, macOS and Windows' C runtime).
        let invalid = || OsError::new(ErrorKind::InvalidInput, 22);
        let Some(context) = tls_context(cx, s) else {
            return Ok(());
        };
        let low_memory = context.low_memory;
        // A TLS context never connects in the clear: without a client side the connect fails.
        let config = context.client.clone().ok_or_else(invalid)?;
        // The server name to ask for and check: the host connected to (a name or an IP
        // address); a unix socket has none, so it asks for "localhost".
        let host = match target {
            ConnectTarget::Host { host, .. } => *host,
            ConnectTarget::Unix(_) => "localhost",
        };
        let name = ServerName::try_from(host.to_owned()).map_err(|_| invalid())?;
        let conn = UnbufferedClientConnection::new(config, name).map_err(|_| invalid())?;
        put(cx, s, Session::client(conn, low_memory));
        Ok(())
    }

    fn opened(cx: &mut Cx<C>, s: SocketId, is_client: bool) -> bool {
        if is_client {
            // A TLS client's session was made at connect: its ClientHello leaves now, without
            // waiting for the application to write.
            let Some(mut session) = take(cx, s) else {
                return false;
            };
            session.start(cx, s);
            put(cx, s, session);
            return true;
        }
        let Some(context) = tls_context(cx, s) else {
            return false;
        };
        // A TLS context without a server side cannot answer: the socket is layered with no
        // session, and its first bytes close it.
        let low_memory = context.low_memory;
        if let Some(config) = context.server.clone() {
            if let Ok(conn) = UnbufferedServerConnection::new(config) {
                put(cx, s, Session::server(conn, low_memory));
            }
        }
        // Handshakes are rationed per iteration (core's low-priority queue), so a flood of
        // them cannot starve established connections.
        cx.set_low_priority(s, true);
        true
    }

    fn received(cx: &mut Cx<C>, s: SocketId, data: &[u8]) {
        let Some(mut session) = take(cx, s) else {
            cx.close(s, 0, None);
            return;
        };
        let mut plaintext = borrow(&PLAINTEXT);
        plaintext.clear();
        plaintext.resize(RECV_PADDING, 0);
        let received = session.receive(cx, s, data, &mut plaintext);
        // Back in its slot before any callback: on_data may write, on_close reads info().
        put(cx, s, session);
        match received {
            Err(()) => cx.close(s, 0, None),
            Ok(r) => {
                if r.handshake_ended {
                    cx.set_low_priority(s, false);
                }
                deliver(cx, s, &mut plaintext);
                if r.wants_writable {
                    cx.request_writable(s);
                }
                if r.peer_closed {
                    // close_notify: the peer is done; the socket closes (as with its FIN).
                    cx.close(s, 0, None);
                }
            }
        }
        give_back(&PLAINTEXT, plaintext);
    }

    fn write(cx: &mut Cx<C>, s: SocketId, data: &[u8], _more: bool) -> usize {
        write_parts(cx, s, data, &[])
    }

    fn write2(cx: &mut Cx<C>, s: SocketId, header: &[u8], payload: &[u8]) -> usize {
        write_parts(cx, s, header, payload)
    }

    fn writable(cx: &mut Cx<C>, s: SocketId) -> bool {
        let Some(mut session) = take(cx, s) else {
            return true;
        };
        let user = session.writable(cx, s);
        let failed = session.error.is_some();
        put(cx, s, session);
        if failed {
            cx.close(s, 0, None);
        }
        user && !failed
    }

    fn shutting_down(cx: &mut Cx<C>, s: SocketId) -> bool {
        let Some(mut session) = take(cx, s) else {
            return true;
        };
        // Behind what the session still holds; idempotent (called again until drained).
        let drained = session.shutting_down(cx, s);
        put(cx, s, session);
        drained
    }
}

/// `header` then `payload` through the session of `s` (see [`Layer::write2`]).
fn write_parts<C: Config<Layer = Tls>>(
    cx: &mut Cx<C>,
    s: SocketId,
    header: &[u8],
    payload: &[u8],
) -> usize {
    if cx.is_closed(s) != Some(false) || cx.is_shut_down(s) != Some(false) {
        return 0;
    }
    let Some(mut session) = take(cx, s) else {
        return 0;
    };
    let n = session.write(cx, s, header, payload);
    let failed = session.error.is_some();
    put(cx, s, session);
    if failed {
        cx.close(s, 0, None);
    }
    n
}

/// Hands `plaintext` (after its leading padding) to `on_data`, in pieces of at most
/// [`DELIVER_MAX`] bytes, each with padding around it; stops if the socket closes. The padding
/// behind a piece is the start of the next one: it is saved and put back around the call, so
/// what a parser writes there never changes bytes not yet delivered.
fn deliver<C: Config>(cx: &mut Cx<C>, s: SocketId, plaintext: &mut Vec<u8>) {
    let total = plaintext.len() - RECV_PADDING;
    if total == 0 {
        return;
    }
    plaintext.resize(plaintext.len() + RECV_PADDING, 0);
    let mut at = 0;
    while at < total && cx.is_closed(s) == Some(false) {
        let len = (total - at).min(DELIVER_MAX);
        let behind = at + RECV_PADDING + len;
        let mut saved = [0u8; RECV_PADDING];
        saved.copy_from_slice(&plaintext[behind..behind + RECV_PADDING]);
        let whole = &mut plaintext[at..behind + RECV_PADDING];
        if let Some(mut buf) = RecvBuf::from_padded(whole, len) {
            cx.deliver_data(s, &mut buf);
        }
        plaintext[behind..behind + RECV_PADDING].copy_from_slice(&saved);
        at += len;
    }
}
