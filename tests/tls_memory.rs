//! What a TLS connection costs the server in heap, counted rather than guessed: the live bytes
//! an idle connection keeps after its handshake and an echo (with and without low-memory mode),
//! and the allocations one echoed message makes once the connection is warm.
//!
//! The server loop runs on its own thread over real loopback sockets (shim-linux); blocking
//! rustls clients (a `TcpStream` under a `rustls::ClientConnection`) run on another. A counting
//! global allocator keeps each thread's live bytes and allocation count in thread-locals, so the
//! server thread reads its own heap and nobody else's. Run with `--nocapture` to see the numbers
//! (`tls/README.md`, "Memory", has them).
//!
//! It lives in the facade's tests, not in `tls/`, because the counting allocator is `unsafe`
//! and the TLS crate has none, tests included. It shares `tls/tests/common` (certificates).
#![cfg(all(feature = "tls", target_os = "linux"))]

#[path = "../tls/tests/common/mod.rs"]
mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::Pki;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, ServerConfig};
use usockets_core::{
    Capacity, CloseCause, Config, ContextCallbacks, Cx, GrowingStorage, ListenOptions,
    ListenTarget, Loop, LoopCallbacks, RecvBuf, Settings, SocketId,
};
use usockets_shim_linux::LinuxShim;
use usockets_tls::{Options, Tls, TlsContext, Verify, Versions};

// ---- counting allocator (per thread) -------------------------------------------------------

thread_local! {
    /// Bytes this thread allocated and has not freed (frees of other threads' blocks count
    /// against the freeing thread: the server thread frees only its own).
    static LIVE: Cell<isize> = const { Cell::new(0) };
    /// Allocations (and reallocations) this thread made.
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

/// The system allocator, counting per thread.
struct CountingAlloc;

impl CountingAlloc {
    /// `try_with`: the slots may be gone while a thread is torn down. Const-initialised `Cell`s
    /// of plain integers need no destructor and never allocate themselves.
    fn note(grown: isize, allocation: bool) {
        let _ = LIVE.try_with(|l| l.set(l.get() + grown));
        if allocation {
            let _ = ALLOCATIONS.try_with(|a| a.set(a.get() + 1));
        }
    }
}

// SAFETY: every method delegates to `System` with the caller's own arguments, so `System`'s
// guarantees are ours; the counting touches only thread-local `Cell`s of integers, which do
// not allocate.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        Self::note(layout.size() as isize, true);
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract, which `System` shares.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        Self::note(layout.size() as isize, true);
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        Self::note(new_size as isize - layout.size() as isize, true);
        // SAFETY: `ptr` was allocated by `System` (every allocation goes through it) with
        // `layout`; the caller upholds the rest of `realloc`'s contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        Self::note(-(layout.size() as isize), false);
        // SAFETY: `ptr` was allocated by `System` with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

fn live() -> isize {
    LIVE.with(Cell::get)
}

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

// ---- the server: an echo over TLS ----------------------------------------------------------

/// Idle connections measured per run.
const CONNECTIONS: usize = 200;

/// The loop ext: what the callbacks saw, and the allocation snapshots of the echo test.
#[derive(Default)]
struct Server {
    opened: usize,
    closed: usize,
    /// Plaintext bytes echoed.
    echoed: usize,
    /// Bytes `write` did not take (none expected on loopback).
    refused: usize,
    /// (echoed bytes at which to snapshot, the allocation count and live bytes then), for the
    /// echo test.
    marks: Vec<(usize, Option<(u64, isize)>)>,
}

struct M;

impl Config for M {
    type Shim = LinuxShim;
    type LoopExt = Server;
    type ContextExt = ();
    type SocketExt = ();
    type TimerExt = ();
    type PollExt = ();
    type Reason = u32;
    type Storage = GrowingStorage<Self>;
    type Layer = Tls;
}

fn on_open(cx: &mut Cx<M>, _: SocketId, _: bool, _: &[u8]) {
    cx.ext_mut().opened += 1;
}

fn on_data(cx: &mut Cx<M>, s: SocketId, data: &mut RecvBuf<'_>) {
    let n = cx.write(s, data, false);
    let server = cx.ext_mut();
    let before = server.echoed;
    server.echoed += data.len();
    server.refused += data.len() - n;
    let after = server.echoed;
    // Snapshot here, before anything else runs, once the echoed bytes cross a mark.
    let now = (allocations(), live());
    for (at, snap) in &mut cx.ext_mut().marks {
        if before < *at && after >= *at {
            *snap = Some(now);
        }
    }
}

fn on_close(cx: &mut Cx<M>, _: SocketId, _: CloseCause<u32>) {
    cx.ext_mut().closed += 1;
}

/// A loop whose slots and buffers are all allocated up front: the heap it grows by afterwards
/// is the connections'.
fn server_loop() -> Loop<M> {
    let capacity = Capacity::new()
        .with_sockets(CONNECTIONS + 16)
        .with_listeners(2)
        .with_contexts(2)
        .with_timers(2)
        .with_polls(2)
        .with_events(1024)
        .with_recv(512 * 1024);
    Loop::new(
        LinuxShim::new().expect("shim"),
        GrowingStorage::preallocated(capacity),
        Server::default(),
        LoopCallbacks::default(),
        Settings::default(),
    )
    .expect("loop")
}

/// A TLS echo server on 127.0.0.1; returns its port.
fn serve(l: &mut Loop<M>, tls: TlsContext) -> u16 {
    let callbacks = ContextCallbacks {
        on_open: Some(on_open),
        on_data: Some(on_data),
        on_close: Some(on_close),
        ..ContextCallbacks::default()
    };
    let ctx = l.context_create((), callbacks).expect("context");
    assert!(l.set_layer_context(ctx, tls));
    let target = ListenTarget::Host {
        host: Some("127.0.0.1"),
        port: 0,
    };
    let ls = l
        .listen(ctx, target, ListenOptions::default(), || ())
        .expect("listen");
    l.listen_port(ls).expect("port")
}

/// The server side without a session cache or tickets: the bounded cache is shared by all
/// connections rather than kept per connection, so it stays out of the per-connection figure.
fn server_config(pki: &Pki, versions: Versions) -> Arc<ServerConfig> {
    let config =
        usockets_tls::server_config(pki.chain.clone(), pki.key.clone_key(), &opts(versions))
            .expect("server config");
    let mut config = (*config).clone();
    config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    config.send_tls13_tickets = 0;
    Arc::new(config)
}

fn opts(versions: Versions) -> Options {
    Options::new(versions)
}

/// Runs the loop until `done` holds; panics after `secs` seconds.
fn run_until(l: &mut Loop<M>, secs: u64, what: &str, mut done: impl FnMut(&mut Loop<M>) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !done(l) {
        assert!(Instant::now() < deadline, "server: {what} not reached");
        l.run_once(Some(5)).expect("run_once");
    }
}

// ---- the clients ---------------------------------------------------------------------------

/// A message sent as one record and the echo expected back.
const FIRST: &[u8] = &[b'a'; 64];
/// A message whose record is sent in two halves, the second only after the first message's
/// echo: the server holds half a record meanwhile (its partial-record buffer is used).
const SECOND: &[u8] = &[b'b'; 1000];

/// A handshaken client connection to 127.0.0.1:`port`.
fn connect(port: u16, config: &Arc<ClientConfig>) -> (ClientConnection, TcpStream) {
    let mut tcp = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    tcp.set_nodelay(true).expect("nodelay");
    tcp.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let name = ServerName::try_from("127.0.0.1").expect("name");
    let mut conn = ClientConnection::new(config.clone(), name).expect("client");
    while conn.is_handshaking() {
        conn.complete_io(&mut tcp).expect("handshake");
    }
    (conn, tcp)
}

/// The records `conn` makes of `message`.
fn records(conn: &mut ClientConnection, message: &[u8]) -> Vec<u8> {
    conn.writer().write_all(message).expect("plaintext");
    let mut out = Vec::new();
    while conn.wants_write() {
        conn.write_tls(&mut out).expect("records");
    }
    out
}

fn read_echo(conn: &mut ClientConnection, tcp: &mut TcpStream, want: &[u8]) {
    let mut got = vec![0u8; want.len()];
    rustls::Stream::new(conn, tcp)
        .read_exact(&mut got)
        .expect("echo");
    assert_eq!(got, want, "the echo, byte for byte");
}

/// Handshake, then [`FIRST`] with the first half of [`SECOND`]'s record in one write, its echo,
/// the second half, its echo.
fn exchange(port: u16, config: &Arc<ClientConfig>) -> (ClientConnection, TcpStream) {
    let (mut conn, mut tcp) = connect(port, config);
    let mut out = records(&mut conn, FIRST);
    let second = records(&mut conn, SECOND);
    let half = second.len() / 2;
    out.extend_from_slice(&second[..half]);
    tcp.write_all(&out).expect("first write");
    read_echo(&mut conn, &mut tcp, FIRST);
    tcp.write_all(&second[half..]).expect("second write");
    read_echo(&mut conn, &mut tcp, SECOND);
    (conn, tcp)
}

/// One warm-up connection, then (once the server took its baseline) [`CONNECTIONS`] idle
/// ones, kept open until the server measured them.
/// Says "all idle" on `tell` once every measured connection did its exchange.
fn idle_clients(port: u16, config: Arc<ClientConfig>, tell: Sender<()>, go: Receiver<()>) {
    drop(exchange(port, &config));
    go.recv().expect("baseline taken");
    let idle: Vec<_> = (0..CONNECTIONS).map(|_| exchange(port, &config)).collect();
    tell.send(()).expect("tell");
    go.recv().expect("measured");
    drop(idle);
}

// ---- heap per idle connection --------------------------------------------------------------

/// Live heap per idle connection on the server thread, in bytes, for one configuration.
fn idle_heap_per_connection(versions: Versions, low_memory: bool) -> isize {
    let pki = Pki::new(&["127.0.0.1"]);
    let server = server_config(&pki, versions);
    let client = usockets_tls::client_config(Verify::Roots(vec![pki.ca.clone()]), &opts(versions))
        .expect("client config");
    let (port_tx, port_rx) = channel();
    let (step_tx, step_rx) = channel();
    let (go_tx, go_rx) = channel();
    let server = std::thread::spawn(move || {
        let mut l = server_loop();
        let port = serve(
            &mut l,
            TlsContext::server(server).with_low_memory(low_memory),
        );
        port_tx.send(port).expect("port");
        // The warm-up connection made the per-thread scratch buffers: count from its close
        // on (its slot, and the session in it, is released at the end of an iteration).
        run_until(&mut l, 20, "warm-up close", |l| l.ext().closed == 1);
        l.run_once(Some(0)).expect("run_once");
        let baseline = live();
        go_tx.send(()).expect("go");
        run_until(&mut l, 60, "all idle", |_| step_rx.try_recv().is_ok());
        // Nothing is in flight: every client read its last echo before saying so.
        let idle = live();
        go_tx.send(()).expect("go");
        run_until(&mut l, 20, "all closed", |l| {
            l.ext().closed == CONNECTIONS + 1
        });
        assert_eq!(l.ext().opened, CONNECTIONS + 1);
        assert_eq!(l.ext().refused, 0, "loopback took every echo");
        assert_eq!(
            l.ext().echoed,
            (CONNECTIONS + 1) * (FIRST.len() + SECOND.len())
        );
        (idle - baseline) / CONNECTIONS as isize
    });
    let port = port_rx.recv().expect("port");
    let clients = std::thread::spawn(move || idle_clients(port, client, step_tx, go_rx));
    clients.join().expect("clients");
    server.join().expect("server")
}

/// What this test measured for the layer on rustls' buffered API (`ClientConnection` and
/// `ServerConnection` behind `read_tls`/`write_tls`, commit ad83554), per idle connection: its
/// receive buffer, plaintext and record queues stay with every connection.
const BUFFERED: [(Versions, isize); 2] = [(Versions::Tls13, 11_609), (Versions::Tls12, 11_505)];

#[test]
fn an_idle_connection_keeps_less_heap_in_low_memory_mode() {
    for (versions, buffered) in BUFFERED {
        let normal = idle_heap_per_connection(versions, false);
        let low = idle_heap_per_connection(versions, true);
        println!(
            "{versions:?}: server heap per idle connection after handshake and echo: \
             {normal} B normal, {low} B low-memory ({CONNECTIONS} connections; \
             {buffered} B on rustls' buffered API)"
        );
        // Each connection kept half a record for a while: a normal session keeps the room
        // for the next one, a low-memory session gives it back.
        assert!(
            low < normal,
            "{versions:?}: low-memory {low} B, normal {normal} B"
        );
        // Only a partial record, ciphertext the kernel refused and plaintext written during
        // the handshake stay with a connection, and only while there is some: an idle one
        // keeps less than the buffered design did.
        assert!(
            normal < buffered,
            "{versions:?}: {normal} B per idle connection, {buffered} B when buffered"
        );
    }
}

// ---- allocations per echoed message --------------------------------------------------------

/// Echoes before counting, and counted.
const WARM_UP: usize = 50;
const COUNTED: usize = 500;
const MESSAGE: &[u8] = &[b'e'; 100];

/// Ping-pong: one message, its echo, the next; never two in flight.
fn echo_client(port: u16, config: Arc<ClientConfig>) {
    let (mut conn, mut tcp) = connect(port, &config);
    for _ in 0..WARM_UP + COUNTED {
        let out = records(&mut conn, MESSAGE);
        tcp.write_all(&out).expect("write");
        read_echo(&mut conn, &mut tcp, MESSAGE);
    }
}

/// The server thread's allocations over [`COUNTED`] echoes after [`WARM_UP`] ones.
fn allocations_per_echo(versions: Versions) -> (u64, isize) {
    let pki = Pki::new(&["127.0.0.1"]);
    let server = server_config(&pki, versions);
    let client = usockets_tls::client_config(Verify::Roots(vec![pki.ca.clone()]), &opts(versions))
        .expect("client config");
    let (port_tx, port_rx) = channel();
    let server = std::thread::spawn(move || {
        let mut l = server_loop();
        let warm = WARM_UP * MESSAGE.len();
        let end = (WARM_UP + COUNTED) * MESSAGE.len();
        l.ext_mut().marks = vec![(warm, None), (end, None)];
        let port = serve(&mut l, TlsContext::server(server));
        port_tx.send(port).expect("port");
        run_until(&mut l, 30, "the last echo", |l| {
            l.ext().marks[1].1.is_some()
        });
        assert_eq!(l.ext().refused, 0, "loopback took every echo");
        let (Some(warm), Some(end)) = (l.ext().marks[0].1, l.ext().marks[1].1) else {
            unreachable!("both marks passed")
        };
        (end.0 - warm.0, end.1 - warm.1)
    });
    let port = port_rx.recv().expect("port");
    let clients = std::thread::spawn(move || echo_client(port, client));
    clients.join().expect("client");
    server.join().expect("server")
}

/// Allocations rustls 0.23 makes per echoed message on the server, whatever the layer does:
/// one per record decrypted (`CommonState::take_received_plaintext` copies the plaintext into
/// a `Vec` that `ReadTraffic::next_record` hands out) and one per record encrypted (the
/// provider's `MessageEncrypter::encrypt` returns the record in a fresh `PrefixedPayload`,
/// copied into the layer's scratch by `WriteTraffic::encrypt`). An echo is one record each
/// way; the layer's own buffers are all reused.
const RUSTLS_ALLOCATIONS_PER_ECHO: u64 = 2;

#[test]
fn an_echoed_message_allocates_only_inside_rustls() {
    for versions in [Versions::Tls13, Versions::Tls12] {
        let (counted, grown) = allocations_per_echo(versions);
        println!(
            "{versions:?}: {counted} server allocations over {COUNTED} echoes of {} B \
             ({:.2} per echo); live heap grew {grown} B",
            MESSAGE.len(),
            counted as f64 / COUNTED as f64
        );
        assert!(
            counted <= RUSTLS_ALLOCATIONS_PER_ECHO * COUNTED as u64,
            "{versions:?}: {counted} allocations over {COUNTED} echoes"
        );
        assert_eq!(grown, 0, "{versions:?}: nothing is kept per message");
    }
}
