//! [`Session`]: one socket's TLS session on rustls' unbuffered API, and the per-thread scratch
//! buffers every session of a loop shares.
//!
//! A session keeps only what must outlive the call that made it: the bytes of a record not
//! yet complete ([`Session::partial`]), the ciphertext the kernel did not take
//! ([`Session::pending`]) and the plaintext written before the handshake ended
//! ([`Session::early`]). Everything else goes through per-thread scratch: incoming ciphertext
//! is processed in [`RX`], records are encrypted into [`OUT`] and written to the kernel from
//! there, plaintext for `on_data` is gathered in the layer's padded buffer.

use std::cell::Cell;
use std::thread::LocalKey;

use rustls::client::{ClientConnectionData, UnbufferedClientConnection};
use rustls::server::{ServerConnectionData, UnbufferedServerConnection};
use rustls::unbuffered::{
    ConnectionState, EncodeError, EncryptError, ReadEarlyData, UnbufferedStatus, WriteTraffic,
};
use rustls::CommonState;
use usockets_core::{Config, Cx, SocketId};

use crate::sni;

/// Plaintext the application may write before the handshake ends (then it goes out); after
/// it, the most a session holds for the kernel is the rest of one record, so that what `write`
/// accepted is in the kernel but for at most one record, as with the C library.
pub const EARLY_PLAINTEXT_LIMIT: usize = 16 * 1024;

/// Most plaintext in one record (TLS' limit, and rustls' fragment size unless configured
/// smaller, in which case one encryption makes several records).
const RECORD_PLAINTEXT: usize = 16 * 1024;

/// Most bytes a session may keep of incomplete input. rustls keeps a handshake message it is
/// still joining (at most 64 KiB) and then a record not yet complete (at most 16 KiB and some):
/// anything longer is a peer that rustls failed to stop, and the session fails.
const MAX_PARTIAL: usize = 128 * 1024;

thread_local! {
    /// The loop thread's incoming ciphertext: a session's partial record followed by what the
    /// kernel delivered, processed (decrypted) in place.
    static RX: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
    /// The loop thread's outgoing records and the plaintext staged for one.
    static OUT: Cell<Out> = const { Cell::new(Out::new()) };
}

/// Takes a scratch buffer out of its thread-local for the length of a call. Nothing that runs
/// while it is out uses it (callbacks run only once it is back); if something did, it would
/// get an empty buffer and allocate: slower, still correct.
pub(crate) fn borrow<T: Default>(key: &'static LocalKey<Cell<T>>) -> T {
    key.take()
}

/// Puts a scratch buffer back (keeping its capacity for the next call).
pub(crate) fn give_back<T>(key: &'static LocalKey<Cell<T>>, value: T) {
    key.set(value);
}

/// Records on their way to the kernel, and plaintext staged for a record that spans a
/// `write2`'s header and payload.
#[derive(Default)]
pub(crate) struct Out {
    /// Zero-filled scratch grown on demand; `used` bytes of it are records.
    buf: Vec<u8>,
    used: usize,
    stage: Vec<u8>,
}

impl Out {
    const fn new() -> Out {
        Out {
            buf: Vec::new(),
            used: 0,
            stage: Vec::new(),
        }
    }

    /// Lets `f` write records after those already here; grows the scratch once if `f` says
    /// it needs more room (`Err(Some(required))`).
    fn fill(
        &mut self,
        mut f: impl FnMut(&mut [u8]) -> Result<usize, Short>,
    ) -> Result<(), rustls::Error> {
        let written = match f(&mut self.buf[self.used..]) {
            Err(Short::Room(required)) => {
                self.buf.resize(self.used + required, 0);
                f(&mut self.buf[self.used..])
            }
            other => other,
        };
        match written {
            Ok(n) => {
                self.used += n;
                Ok(())
            }
            Err(Short::Room(_)) => Err(rustls::Error::General("record larger than asked".into())),
            Err(Short::Fail(e)) => Err(e),
        }
    }

    /// The records written so far.
    fn records(&self) -> &[u8] {
        &self.buf[..self.used]
    }
}

/// Why rustls could not write into the scratch.
enum Short {
    /// It needs this many bytes of room.
    Room(usize),
    /// It refused.
    Fail(rustls::Error),
}

impl From<EncodeError> for Short {
    fn from(e: EncodeError) -> Short {
        match e {
            EncodeError::InsufficientSize(s) => Short::Room(s.required_size),
            EncodeError::AlreadyEncoded => Short::Fail(rustls::Error::General(e.to_string())),
        }
    }
}

impl From<EncryptError> for Short {
    fn from(e: EncryptError) -> Short {
        match e {
            EncryptError::InsufficientSize(s) => Short::Room(s.required_size),
            EncryptError::EncryptExhausted => Short::Fail(rustls::Error::EncryptError),
        }
    }
}

/// What a session seals into a record once it may send application data.
#[derive(Clone, Copy)]
enum Seal<'a> {
    Data(&'a [u8]),
    CloseNotify,
}

/// The two unbuffered connections, driven by the same code.
trait Side {
    type Data;

    fn common(&self) -> &CommonState;

    fn process<'c, 'i>(
        &'c mut self,
        incoming: &'i mut [u8],
    ) -> UnbufferedStatus<'c, 'i, Self::Data>;

    /// Appends the early (0-RTT) data at hand to `plain`; returns the bytes to discard.
    fn read_early(
        state: &mut ReadEarlyData<'_, '_, Self::Data>,
        plain: &mut Vec<u8>,
    ) -> Result<usize, rustls::Error>;
}

impl Side for UnbufferedServerConnection {
    type Data = ServerConnectionData;

    fn common(&self) -> &CommonState {
        self
    }

    fn process<'c, 'i>(
        &'c mut self,
        incoming: &'i mut [u8],
    ) -> UnbufferedStatus<'c, 'i, Self::Data> {
        self.process_tls_records(incoming)
    }

    fn read_early(
        state: &mut ReadEarlyData<'_, '_, Self::Data>,
        plain: &mut Vec<u8>,
    ) -> Result<usize, rustls::Error> {
        // Only with a server config that accepts early data (`max_early_data_size`): it is
        // handed to `on_data` as any plaintext.
        let mut discard = 0;
        while let Some(record) = state.next_record() {
            let record = record?;
            discard += record.discard;
            plain.extend_from_slice(record.payload);
        }
        Ok(discard)
    }
}

impl Side for UnbufferedClientConnection {
    type Data = ClientConnectionData;

    fn common(&self) -> &CommonState {
        self
    }

    fn process<'c, 'i>(
        &'c mut self,
        incoming: &'i mut [u8],
    ) -> UnbufferedStatus<'c, 'i, Self::Data> {
        self.process_tls_records(incoming)
    }

    fn read_early(
        _: &mut ReadEarlyData<'_, '_, Self::Data>,
        _: &mut Vec<u8>,
    ) -> Result<usize, rustls::Error> {
        // rustls yields early data to servers only.
        Ok(0)
    }
}

/// Where a session's records go: the kernel through core, or behind ciphertext still waiting
/// for it.
struct Wire<'a, C: Config> {
    cx: &'a mut Cx<C>,
    s: SocketId,
    out: &'a mut Out,
    pending: &'a mut Vec<u8>,
}

impl<C: Config> Wire<'_, C> {
    /// Writes the records in the scratch to the kernel (behind any pending ciphertext); keeps
    /// what it did not take. A short write arms `on_writable` in core.
    fn transmit(&mut self) {
        let records = self.out.records();
        if !records.is_empty() {
            let taken = if self.pending.is_empty() {
                self.cx.write_raw(self.s, records, false)
            } else {
                0
            };
            self.pending.extend_from_slice(&records[taken..]);
        }
        self.out.used = 0;
    }
}

/// What one pass over incoming ciphertext found.
#[derive(Default)]
struct Pass {
    /// Bytes of the input rustls is done with (the rest is kept for the next input).
    consumed: usize,
    /// The peer sent close_notify.
    peer_closed: bool,
}

/// Processes `incoming` until rustls needs more of it (or may send application data with
/// nothing left to read): handshake records go out, application data is appended to `plain`.
fn pass<T: Side, C: Config>(
    conn: &mut T,
    wire: &mut Wire<'_, C>,
    incoming: &mut [u8],
    plain: &mut Vec<u8>,
) -> Result<Pass, rustls::Error> {
    let mut pass = Pass::default();
    loop {
        let status = conn.process(&mut incoming[pass.consumed..]);
        let mut discard = status.discard;
        match status.state? {
            ConnectionState::EncodeTlsData(mut state) => {
                wire.out.fill(|b| state.encode(b).map_err(Short::from))?;
            }
            ConnectionState::TransmitTlsData(state) => {
                wire.transmit();
                state.done();
            }
            ConnectionState::ReadTraffic(mut state) => {
                while let Some(record) = state.next_record() {
                    let record = record?;
                    discard += record.discard;
                    plain.extend_from_slice(record.payload);
                }
            }
            ConnectionState::ReadEarlyData(mut state) => {
                discard += T::read_early(&mut state, plain)?;
            }
            ConnectionState::PeerClosed => pass.peer_closed = true,
            // BlockedHandshake (more input needed), WriteTraffic (nothing to read), Closed.
            _ => {
                pass.consumed += discard;
                return Ok(pass);
            }
        }
        pass.consumed += discard;
    }
}

/// Seals `what` into the scratch once rustls may send application data, sending any
/// handshake records it has first. Returns whether it could (not during the handshake, nor
/// once closed).
///
/// rustls is given the session's partial input, not an empty buffer: it may have processed
/// part of it already (a handshake message it is joining in place), and it must see the same
/// bytes again until it discards them.
fn seal<T: Side, C: Config>(
    conn: &mut T,
    partial: &mut Vec<u8>,
    wire: &mut Wire<'_, C>,
    what: Seal<'_>,
) -> Result<bool, rustls::Error> {
    loop {
        let status = conn.process(partial);
        let discard = status.discard;
        let sealed = match status.state? {
            ConnectionState::EncodeTlsData(mut state) => {
                wire.out.fill(|b| state.encode(b).map_err(Short::from))?;
                None
            }
            ConnectionState::TransmitTlsData(state) => {
                wire.transmit();
                state.done();
                None
            }
            ConnectionState::WriteTraffic(mut state) => {
                wire.out.fill(|b| encrypt(&mut state, what, b))?;
                Some(true)
            }
            // Reported once, by the pass that read it; writing may go on.
            ConnectionState::PeerClosed => None,
            _ => Some(false),
        };
        partial.drain(..discard);
        if let Some(sealed) = sealed {
            return Ok(sealed);
        }
    }
}

fn encrypt<D>(
    state: &mut WriteTraffic<'_, D>,
    what: Seal<'_>,
    b: &mut [u8],
) -> Result<usize, Short> {
    match what {
        Seal::Data(data) => state.encrypt(data, b).map_err(Short::from),
        Seal::CloseNotify => state.queue_close_notify(b).map_err(Short::from),
    }
}

/// Sends the alert rustls queued when it failed (best effort: the socket closes anyway).
///
/// Only while rustls has records queued: it hands those out before it looks at any input, so
/// the empty buffer given is never read (after a failure, the input it was processing is
/// gone).
fn send_alert<T: Side, C: Config>(conn: &mut T, wire: &mut Wire<'_, C>) {
    while conn.common().wants_write() {
        let Ok(ConnectionState::EncodeTlsData(mut state)) = conn.process(&mut []).state else {
            break;
        };
        if wire
            .out
            .fill(|b| state.encode(b).map_err(Short::from))
            .is_err()
        {
            break;
        }
    }
    wire.transmit();
}

/// The unbuffered connection of either side.
enum Conn {
    Server(UnbufferedServerConnection),
    Client(UnbufferedClientConnection),
}

/// Calls a generic function on whichever connection `$conn` holds.
macro_rules! either {
    ($conn:expr, $f:ident($($arg:expr),*)) => {
        match $conn {
            Conn::Server(c) => $f(c, $($arg),*),
            Conn::Client(c) => $f(c, $($arg),*),
        }
    };
}

impl Conn {
    fn common(&self) -> &CommonState {
        match self {
            Conn::Server(c) => c,
            Conn::Client(c) => c,
        }
    }
}

/// What [`Session::receive`] found besides plaintext.
pub(crate) struct Received {
    /// The handshake ended during this input.
    pub handshake_ended: bool,
    /// The application's write was refused during the handshake: `on_writable` is owed.
    pub wants_writable: bool,
    /// The peer sent close_notify.
    pub peer_closed: bool,
}

/// One socket's TLS session (the layer state of a socket): the rustls connection and the few
/// bytes that must wait between calls.
pub struct Session {
    conn: Conn,
    /// The bytes of a record not yet complete (and of a handshake message rustls is still
    /// joining), kept until the rest arrives; empty otherwise.
    partial: Vec<u8>,
    /// Ciphertext the kernel did not take; while there is some, `write` accepts nothing.
    pending: Vec<u8>,
    /// Plaintext written before the handshake ended, at most [`EARLY_PLAINTEXT_LIMIT`] bytes.
    early: Vec<u8>,
    /// The application's write was refused during the handshake: `on_writable` follows once
    /// it ends.
    wants_writable: bool,
    /// close_notify is sealed (sent, or pending behind the rest).
    close_notify_sealed: bool,
    /// Give buffer memory back each time a buffer empties.
    low_memory: bool,
    /// The server name a client asked for (SNI), on a server session.
    pub(crate) server_name: Option<String>,
    /// Why the session failed, if it did.
    pub(crate) error: Option<rustls::Error>,
}

impl Session {
    fn new(conn: Conn, low_memory: bool) -> Box<Session> {
        Box::new(Session {
            conn,
            partial: Vec::new(),
            pending: Vec::new(),
            early: Vec::new(),
            wants_writable: false,
            close_notify_sealed: false,
            low_memory,
            server_name: None,
            error: None,
        })
    }

    /// A server session.
    pub(crate) fn server(conn: UnbufferedServerConnection, low_memory: bool) -> Box<Session> {
        Session::new(Conn::Server(conn), low_memory)
    }

    /// A client session.
    pub(crate) fn client(conn: UnbufferedClientConnection, low_memory: bool) -> Box<Session> {
        Session::new(Conn::Client(conn), low_memory)
    }

    /// What the connection negotiated so far.
    pub(crate) fn common(&self) -> &CommonState {
        self.conn.common()
    }

    /// Whether the handshake is still running.
    pub(crate) fn is_handshaking(&self) -> bool {
        self.common().is_handshaking()
    }

    /// Runs `f` with the connection, the partial input and the session's wire (the scratch
    /// taken from its thread-local meanwhile).
    fn with_wire<C: Config, R>(
        &mut self,
        cx: &mut Cx<C>,
        s: SocketId,
        f: impl FnOnce(&mut Conn, &mut Vec<u8>, &mut Wire<'_, C>) -> R,
    ) -> R {
        let mut out = borrow(&OUT);
        let mut wire = Wire {
            cx,
            s,
            out: &mut out,
            pending: &mut self.pending,
        };
        let r = f(&mut self.conn, &mut self.partial, &mut wire);
        give_back(&OUT, out);
        r
    }

    /// Sends what the session has to say before the peer speaks (a client's ClientHello).
    pub(crate) fn start<C: Config>(&mut self, cx: &mut Cx<C>, s: SocketId) {
        let mut nothing = Vec::new();
        if let Err(e) = self.with_wire(cx, s, |conn, _, wire| {
            either!(conn, pass(wire, &mut [], &mut nothing)).map(drop)
        }) {
            self.error = Some(e);
        }
    }

    /// Processes ciphertext the kernel delivered: plaintext is appended to `plain`, replies go
    /// out, an incomplete record is kept. On error the session keeps it, sends its alert and
    /// the socket must close.
    pub(crate) fn receive<C: Config>(
        &mut self,
        cx: &mut Cx<C>,
        s: SocketId,
        data: &[u8],
        plain: &mut Vec<u8>,
    ) -> Result<Received, ()> {
        let was_handshaking = self.is_handshaking();
        let result = self.process(cx, s, data, plain);
        let handshake_ended = was_handshaking && !self.is_handshaking();
        let result = result.and_then(|peer_closed| {
            if handshake_ended {
                self.send_early(cx, s)?;
            }
            Ok(peer_closed)
        });
        self.settle();
        match result {
            Ok(peer_closed) => Ok(Received {
                handshake_ended,
                wants_writable: handshake_ended && std::mem::take(&mut self.wants_writable),
                peer_closed,
            }),
            Err(e) => {
                self.fail(cx, s, e);
                Err(())
            }
        }
    }

    /// The partial record and `data`, together in the thread's scratch, through rustls;
    /// returns whether the peer closed.
    fn process<C: Config>(
        &mut self,
        cx: &mut Cx<C>,
        s: SocketId,
        data: &[u8],
        plain: &mut Vec<u8>,
    ) -> Result<bool, rustls::Error> {
        let mut rx = borrow(&RX);
        rx.clear();
        rx.extend_from_slice(&self.partial);
        rx.extend_from_slice(data);
        self.partial.clear();
        let server = matches!(self.conn, Conn::Server(_)) && self.is_handshaking();
        if server {
            sni::forget();
        }
        let result = self.with_wire(cx, s, |conn, _, wire| {
            either!(conn, pass(wire, &mut rx, plain))
        });
        if server {
            if let Some(name) = sni::seen() {
                self.server_name = name;
            }
        }
        let result = result.and_then(|pass| self.keep_partial(&rx[pass.consumed..], pass));
        give_back(&RX, rx);
        result
    }

    /// Keeps the input rustls is not done with, for the next; returns whether the peer closed.
    fn keep_partial(&mut self, rest: &[u8], pass: Pass) -> Result<bool, rustls::Error> {
        if pass.peer_closed {
            // Nothing after close_notify counts: the socket closes.
            return Ok(true);
        }
        if rest.len() > MAX_PARTIAL {
            return Err(rustls::Error::General(format!(
                "{} bytes of incomplete TLS input",
                rest.len()
            )));
        }
        self.partial.extend_from_slice(rest);
        Ok(false)
    }

    /// Remembers why the session failed and tells the peer (its alert).
    fn fail<C: Config>(&mut self, cx: &mut Cx<C>, s: SocketId, e: rustls::Error) {
        self.error = Some(e);
        self.with_wire(cx, s, |conn, _, wire| either!(conn, send_alert(wire)));
        self.settle();
    }

    /// Whether ciphertext (or plaintext written before the handshake ended) still waits for
    /// the kernel.
    fn backlogged(&self) -> bool {
        !self.pending.is_empty() || (!self.early.is_empty() && !self.is_handshaking())
    }

    /// The application writes `header` then `payload`: returns how many of their bytes the
    /// session accepted. Nothing while ciphertext waits for the kernel (core polls for
    /// writable: its short write armed it); up to [`EARLY_PLAINTEXT_LIMIT`] during the
    /// handshake; otherwise record by record until the kernel takes less than a record.
    pub(crate) fn write<C: Config>(
        &mut self,
        cx: &mut Cx<C>,
        s: SocketId,
        header: &[u8],
        payload: &[u8],
    ) -> usize {
        let total = header.len() + payload.len();
        let handshaking = self.is_handshaking();
        if total == 0 || self.close_notify_sealed {
            return 0;
        }
        if self.backlogged() {
            // During the handshake the layer holds on_writable back: ask for it after.
            self.wants_writable |= handshaking;
            return 0;
        }
        if handshaking {
            return self.hold_early(header, payload);
        }
        let sent = self.send(cx, s, header, payload);
        self.settle();
        match sent {
            Ok(n) => n,
            Err(e) => {
                self.fail(cx, s, e);
                0
            }
        }
    }

    /// Keeps plaintext written during the handshake, up to the limit; returns how much.
    fn hold_early(&mut self, header: &[u8], payload: &[u8]) -> usize {
        let room = EARLY_PLAINTEXT_LIMIT - self.early.len();
        let h = header.len().min(room);
        let p = payload.len().min(room - h);
        self.early.extend_from_slice(&header[..h]);
        self.early.extend_from_slice(&payload[..p]);
        if h + p < header.len() + payload.len() {
            self.wants_writable = true;
        }
        h + p
    }

    /// Encrypts `header` then `payload` a record at a time and hands each to the kernel, until
    /// all is sent or the kernel takes less than a record (the rest of it waits in
    /// `pending`). Returns the plaintext bytes sent (or pending).
    fn send<C: Config>(
        &mut self,
        cx: &mut Cx<C>,
        s: SocketId,
        header: &[u8],
        payload: &[u8],
    ) -> Result<usize, rustls::Error> {
        let total = header.len() + payload.len();
        self.with_wire(cx, s, |conn, partial, wire| {
            let mut sent = 0;
            while sent < total && wire.pending.is_empty() {
                let mut stage = std::mem::take(&mut wire.out.stage);
                let record = next_record(header, payload, sent, &mut stage);
                let sealed = either!(&mut *conn, seal(partial, wire, Seal::Data(record)));
                let len = record.len();
                wire.out.stage = stage;
                if !sealed? {
                    break;
                }
                wire.transmit();
                sent += len;
            }
            Ok(sent)
        })
    }

    /// Sends plaintext held during the handshake (it just ended, or the kernel drained).
    fn send_early<C: Config>(&mut self, cx: &mut Cx<C>, s: SocketId) -> Result<(), rustls::Error> {
        if self.early.is_empty() || !self.pending.is_empty() {
            return Ok(());
        }
        let early = std::mem::take(&mut self.early);
        let sent = self.send(cx, s, &early, &[]);
        self.early = early;
        let n = sent?;
        self.early.drain(..n);
        Ok(())
    }

    /// The kernel takes bytes again: sends what waits (pending ciphertext, then held
    /// plaintext). Returns whether the application's `on_writable` should run.
    pub(crate) fn writable<C: Config>(&mut self, cx: &mut Cx<C>, s: SocketId) -> bool {
        let sent = match self.flush(cx, s) {
            Ok(()) => !self.backlogged(),
            Err(e) => {
                self.fail(cx, s, e);
                false
            }
        };
        self.settle();
        sent && !self.is_handshaking()
    }

    /// Sends pending ciphertext, then (once it is all out) held plaintext.
    fn flush<C: Config>(&mut self, cx: &mut Cx<C>, s: SocketId) -> Result<(), rustls::Error> {
        if !self.pending.is_empty() {
            let taken = cx.write_raw(s, &self.pending, false);
            self.pending.drain(..taken);
        }
        if !self.is_handshaking() {
            self.send_early(cx, s)?;
        }
        Ok(())
    }

    /// The application shuts down: close_notify goes out behind everything written before
    /// (once the kernel took it). Returns whether all of it went. During the handshake rustls
    /// cannot seal close_notify; only FIN tells the peer then.
    pub(crate) fn shutting_down<C: Config>(&mut self, cx: &mut Cx<C>, s: SocketId) -> bool {
        let result = self.flush(cx, s).and_then(|()| {
            if !self.backlogged() && !self.close_notify_sealed {
                self.close_notify_sealed = true;
                self.with_wire(cx, s, |conn, partial, wire| {
                    if either!(conn, seal(partial, wire, Seal::CloseNotify))? {
                        wire.transmit();
                    }
                    Ok::<(), rustls::Error>(())
                })?;
            }
            Ok(())
        });
        if let Err(e) = result {
            self.fail(cx, s, e);
        }
        self.settle();
        self.pending.is_empty()
    }

    /// In low-memory mode, frees the buffers that are empty; otherwise keeps their capacity for
    /// the next bytes.
    fn settle(&mut self) {
        if self.low_memory {
            for buf in [&mut self.partial, &mut self.pending, &mut self.early] {
                if buf.is_empty() {
                    *buf = Vec::new();
                }
            }
        }
    }
}

/// The plaintext of the next record, `at` bytes into `header` then `payload`: at most
/// [`RECORD_PLAINTEXT`] bytes, staged in `stage` when it takes from both (so that a small
/// header and its payload make one record, and one write to the kernel).
fn next_record<'a>(
    header: &'a [u8],
    payload: &'a [u8],
    at: usize,
    stage: &'a mut Vec<u8>,
) -> &'a [u8] {
    if at >= header.len() {
        let rest = &payload[at - header.len()..];
        return &rest[..rest.len().min(RECORD_PLAINTEXT)];
    }
    let rest = &header[at..];
    if rest.len() >= RECORD_PLAINTEXT || payload.is_empty() {
        return &rest[..rest.len().min(RECORD_PLAINTEXT)];
    }
    let more = (RECORD_PLAINTEXT - rest.len()).min(payload.len());
    stage.clear();
    stage.extend_from_slice(rest);
    stage.extend_from_slice(&payload[..more]);
    stage
}
