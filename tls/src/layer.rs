//! [`Tls`]: the layer that runs a rustls session on every socket of a TLS context.

use std::cell::RefCell;
use std::io::{self, Read, Write};

use rustls::pki_types::ServerName;
use rustls::{ClientConnection, Connection, ServerConnection};
use usockets_core::{
    Config, ConnectTarget, Cx, ErrorKind, Layer, OsError, RecvBuf, SocketId, RECV_PADDING,
};

use crate::config::TlsContext;

/// Plaintext the application may write before the handshake ends (then it goes out); after
/// it, the most a session holds for the kernel (one record's worth), so that what `write`
/// accepted is in the kernel but for at most one record, as with the C library.
pub const EARLY_PLAINTEXT_LIMIT: usize = 16 * 1024;

/// Most plaintext handed to one `on_data` call (`LIBUS_RECV_BUFFER_LENGTH`).
const DELIVER_MAX: usize = 512 * 1024;

/// The TLS layer: name it as a [`Config`]'s `Layer` and set a context's [`TlsContext`] with
/// [`Cx::set_layer_context`] to make its sockets speak TLS. Plain contexts of the same loop stay
/// plain, and cost nothing more.
pub struct Tls;

/// One socket's TLS session (the layer state of a socket).
pub struct Session {
    conn: Connection,
    /// The application's write was refused during the handshake: `on_writable` follows once
    /// it ends.
    wants_writable: bool,
    /// Why the session failed, if it did.
    error: Option<rustls::Error>,
}

impl Session {
    fn new(conn: Connection) -> Box<Session> {
        let mut conn = conn;
        conn.set_buffer_limit(Some(EARLY_PLAINTEXT_LIMIT));
        Box::new(Session {
            conn,
            wants_writable: false,
            error: None,
        })
    }
}

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
    let conn = &session.conn;
    let server_name = match conn {
        Connection::Server(c) => c.server_name().map(str::to_owned),
        Connection::Client(_) => None,
    };
    Some(Info {
        handshaking: conn.is_handshaking(),
        version: conn.protocol_version(),
        cipher_suite: conn.negotiated_cipher_suite().map(|c| c.suite()),
        alpn: conn.alpn_protocol().map(<[u8]>::to_vec),
        server_name,
        peer_certificates: conn.peer_certificates().map_or(0, <[_]>::len),
        resumed: conn.handshake_kind() == Some(rustls::HandshakeKind::Resumed),
        error: session.error.as_ref().map(ToString::to_string),
    })
}

thread_local! {
    /// The loop thread's plaintext buffer, padded for `on_data`: sessions decrypt into it, and
    /// its padding overlaps nothing (it is not the receive buffer that holds ciphertext).
    static PLAINTEXT: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Writes rustls's records to the kernel through core, past the layer. A short write is
/// would-block: the rest stays in the session, and core polls for writable.
struct Kernel<'a, C: Config> {
    cx: &'a mut Cx<C>,
    s: SocketId,
}

impl<C: Config> Write for Kernel<'_, C> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.cx.write_raw(self.s, buf, false) {
            0 => Err(io::ErrorKind::WouldBlock.into()),
            n => Ok(n),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Sends what the session has for the peer; returns whether all of it went.
fn flush<C: Config>(cx: &mut Cx<C>, s: SocketId, session: &mut Session) -> bool {
    while session.conn.wants_write() {
        match session.conn.write_tls(&mut Kernel { cx, s }) {
            Ok(_) => {}
            Err(_) => return false,
        }
    }
    true
}

fn take<C: Config<Layer = Tls>>(cx: &mut Cx<C>, s: SocketId) -> Option<Box<Session>> {
    cx.layer_socket_mut(s)?.take()
}

fn put<C: Config<Layer = Tls>>(cx: &mut Cx<C>, s: SocketId, session: Box<Session>) {
    if let Some(slot) = cx.layer_socket_mut(s) {
        *slot = Some(session);
    }
}

/// Accepts plaintext into the session (bounded while handshaking); returns how much.
fn accept_plaintext(session: &mut Session, data: &[u8]) -> usize {
    if data.is_empty() {
        return 0;
    }
    session.conn.writer().write(data).unwrap_or(0)
}

impl<C: Config<Layer = Tls>> Layer<C> for Tls {
    type Socket = Option<Box<Session>>;
    type Context = TlsContext;

    fn connecting(cx: &mut Cx<C>, s: SocketId, target: &ConnectTarget<'_>) -> Result<(), OsError> {
        // EINVAL (22 on Linux, the BSDs, macOS and Windows' C runtime).
        let invalid = || OsError::new(ErrorKind::InvalidInput, 22);
        let Some(context) = cx.socket_context(s).and_then(|c| cx.layer_context(c)) else {
            return Ok(());
        };
        if !context.is_tls() {
            return Ok(());
        }
        // A TLS context never connects in the clear: without a client side the connect fails.
        let config = context.client.clone().ok_or_else(invalid)?;
        // The server name to ask for and check: the host connected to (a name or an IP
        // address); a unix socket has none, so it asks for "localhost".
        let host = match target {
            ConnectTarget::Host { host, .. } => *host,
            ConnectTarget::Unix(_) => "localhost",
        };
        let name = ServerName::try_from(host.to_owned()).map_err(|_| invalid())?;
        let conn = ClientConnection::new(config, name).map_err(|_| invalid())?;
        if let Some(slot) = cx.layer_socket_mut(s) {
            *slot = Some(Session::new(Connection::Client(conn)));
        }
        Ok(())
    }

    fn opened(cx: &mut Cx<C>, s: SocketId, is_client: bool) -> bool {
        if is_client {
            // A TLS client's session was made at connect: its ClientHello leaves now, without
            // waiting for the application to write.
            let Some(mut session) = take(cx, s) else {
                return false;
            };
            flush(cx, s, &mut session);
            put(cx, s, session);
            return true;
        }
        let Some(context) = cx.socket_context(s).and_then(|c| cx.layer_context(c)) else {
            return false;
        };
        if !context.is_tls() {
            return false;
        }
        // A TLS context without a server side cannot answer: the socket is layered with no
        // session, and its first bytes close it.
        if let Some(config) = context.server.clone() {
            if let Ok(conn) = ServerConnection::new(config) {
                put(cx, s, Session::new(Connection::Server(conn)));
            }
        }
        // Handshakes are rationed per iteration (core's low-priority queue), so a flood of
        // them cannot starve established connections.
        cx.set_low_priority(s, true);
        true
    }

    fn received(cx: &mut Cx<C>, s: SocketId, mut data: &[u8]) {
        let Some(mut session) = take(cx, s) else {
            cx.close(s, 0, None);
            return;
        };
        let was_handshaking = session.conn.is_handshaking();
        let mut plaintext = PLAINTEXT.with(|p| std::mem::take(&mut *p.borrow_mut()));
        plaintext.clear();
        plaintext.resize(RECV_PADDING, 0);
        let mut failed = false;
        let mut peer_closed = false;
        while !data.is_empty() && !failed {
            match session.conn.read_tls(&mut data) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => {
                    session.error = Some(rustls::Error::General(e.to_string()));
                    failed = true;
                    break;
                }
            }
            match session.conn.process_new_packets() {
                Ok(state) => {
                    peer_closed |= state.peer_has_closed();
                    let n = state.plaintext_bytes_to_read();
                    if n > 0 {
                        let at = plaintext.len();
                        plaintext.resize(at + n, 0);
                        let got = session
                            .conn
                            .reader()
                            .read(&mut plaintext[at..])
                            .unwrap_or(0);
                        plaintext.truncate(at + got);
                    }
                }
                Err(e) => {
                    session.error = Some(e);
                    failed = true;
                }
            }
        }
        // Handshake replies, or the alert that says why we give up.
        flush(cx, s, &mut session);
        let finished_handshake = was_handshaking && !session.conn.is_handshaking();
        let wants_writable = finished_handshake && std::mem::take(&mut session.wants_writable);
        put(cx, s, session);
        if failed {
            cx.close(s, 0, None);
        } else {
            if finished_handshake {
                cx.set_low_priority(s, false);
            }
            deliver(cx, s, &mut plaintext);
            if wants_writable {
                cx.request_writable(s);
            }
            if peer_closed {
                // close_notify: the peer is done; the socket closes (as with its FIN).
                cx.close(s, 0, None);
            }
        }
        PLAINTEXT.with(|p| *p.borrow_mut() = plaintext);
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
        let drained = flush(cx, s, &mut session);
        let handshaking = session.conn.is_handshaking();
        put(cx, s, session);
        drained && !handshaking
    }

    fn shutting_down(cx: &mut Cx<C>, s: SocketId) -> bool {
        let Some(mut session) = take(cx, s) else {
            return true;
        };
        // Behind what the session still holds; idempotent (called again until drained).
        session.conn.send_close_notify();
        let drained = flush(cx, s, &mut session);
        put(cx, s, session);
        drained
    }
}

/// `header` then `payload` into the session, unless ciphertext is still waiting for the
/// kernel (then nothing: `on_writable` follows when it drains); then out to the kernel.
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
    if session.conn.wants_write() {
        // Records still wait for the kernel: its short write armed on_writable; during the
        // handshake the layer holds on_writable back, so remember to ask for it after.
        session.wants_writable |= session.conn.is_handshaking();
        put(cx, s, session);
        return 0;
    }
    // A record's worth at a time into the session and out to the kernel, until the kernel
    // refuses (then at most one record waits in the session) or all is taken.
    let total = header.len() + payload.len();
    let mut n = 0;
    let mut drained = true;
    while n < total && drained {
        let k = if n < header.len() {
            accept_plaintext(&mut session, &header[n..])
        } else {
            accept_plaintext(&mut session, &payload[n - header.len()..])
        };
        n += k;
        drained = flush(cx, s, &mut session);
        if k == 0 {
            break;
        }
    }
    let handshaking = session.conn.is_handshaking();
    if n < total {
        session.wants_writable |= handshaking;
    }
    put(cx, s, session);
    if n < total && drained && !handshaking {
        // Refused by the session's limit without a short write of ours: ask for on_writable.
        cx.request_writable(s);
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
