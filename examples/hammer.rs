//! The hammer against the real OS: the scenario of `core/tests/hammer.rs` on loopback sockets,
//! where every fault comes from the kernel (resets, short writes, refused or failed connects,
//! descriptor exhaustion) instead of a simulated network.
//!
//! One loop; a server, a client and a child context (of the server), each with its own context
//! ext kind; chained client connects; a random operation at the end of every socket event (close
//! with a code and reason, adoption into another context, a write of random length whose content
//! the server echoes and the client checks byte for byte, shutdown + timeout, timeout + wakeup,
//! long timeout); invariants asserted in every callback (the socket is open, its ext is intact and
//! its kind matches its context's, `on_data` is never empty, `on_open` runs once, close codes
//! and reasons pass through).
//!
//! Differences from the simulated hammer, so the run is short on a real clock:
//!
//! * At most [`IN_FLIGHT`] client connections exist at once: a chain that would exceed it stops
//!   and every client close starts the next connection, so the run also fits the descriptor
//!   limit and the ephemeral port range.
//! * Timeouts are 1-2 s and the sweep runs every 200 ms.
//! * A client whose stream is fully echoed keeps writing until its quota is sent, then shuts
//!   down (the server answers the FIN with its own and closes), instead of idling into the
//!   timeout; only a few lazy clients idle as in the simulated hammer, so timeouts still fire.
//! * A few bulk clients write up to 512 KiB at a time, so the kernel's buffers fill and both
//!   sides see short writes and `on_writable`.
//!
//! At the end it prints
//! `hammer: connections=N opens_client=.. closes_client=.. opens_server=.. closes_server=..
//! connect_errors=.. adoptions=.. timeouts=.. writables=.. bytes=.. fds_before=.. fds_after=..`
//! and exits 1 if opens != closes on either side, a connect resolved twice or never, a slot is
//! still in use or a descriptor leaked (`/proc/self/fd` counted before the loop is created and
//! after it is dropped). A failed invariant panics (exit code 101).
//!
//! `cargo run --release --example hammer -- --connections 5000 --seed 1`
//!
//! Server and client sockets live in the same process, so 200 connections need 400
//! descriptors; the shim sheds connections on `EMFILE` if the soft limit is lower. The tests run
//! it with the soft `RLIMIT_NOFILE` raised to the hard limit (safe Rust cannot call `setrlimit`):
//!
//! `sh -c 'ulimit -n $(ulimit -Hn) && exec "$0" "$@"' target/release/examples/hammer --connections 5000`

use usockets::{
    App, CloseCause, ConnectError, ConnectTarget, ContextCallbacks, ContextId, Cx, ListenId,
    ListenOptions, ListenTarget, LoopCallbacks, OsError, RecvBuf, Settings, SocketId,
};

/// Client connections that may exist at once.
const IN_FLIGHT: u64 = 200;
/// Chains started at the beginning.
const CHAINS: u64 = 16;
/// Idle timeout (seconds) re-armed on every event.
const IDLE: u32 = 2;
/// Per mille of clients that are lazy (see [`Conn::lazy`]).
const LAZY: u32 = 50;
/// Per mille of clients that are bulk (see [`Conn::bulk`]).
const BULK: u32 = 5;
/// A bulk client's stream is 4-8 MiB long: more than loopback buffers hold (about 4 MiB).
const BULK_QUOTA: u32 = 4 << 20;
/// A bulk client's writes are at most this long.
const BULK_CHUNK: u32 = 256 << 10;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
enum Kind {
    #[default]
    Server,
    Client,
    Child,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
enum Role {
    #[default]
    Server,
    Client,
}

/// Socket ext. `magic` ties it to its id, so a mixed-up ext is caught.
#[derive(Default)]
struct Conn {
    magic: u64,
    id: u64,
    role: Role,
    ctx: Kind,
    opened: bool,
    sent: u64,
    received: u64,
    quota: u64,
    backlog: Vec<u8>,
    closing: Option<(i32, usize)>,
    adoptions: u32,
    /// A lazy client writes only when the dice say so, as in the simulated hammer, and so
    /// usually idles into its timeout.
    lazy: bool,
    /// A bulk client writes chunks of up to [`BULK_CHUNK`] bytes until the kernel takes less,
    /// so the kernel's buffers fill and both sides wait for `on_writable`.
    bulk: bool,
}

fn magic(id: u64) -> u64 {
    id.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xA5A5
}

/// Byte `i` of client `id`'s stream: what the server must echo back, in order.
fn stream_byte(id: u64, i: u64) -> u8 {
    (id.wrapping_mul(31).wrapping_add(i.wrapping_mul(7)) ^ (i >> 8)) as u8
}

/// Fills `out` with client `id`'s stream from byte `from` on. (Plain loops: examples build
/// unoptimised, and iterator adapters would then cost more than the sockets.)
fn stream_fill(id: u64, from: u64, out: &mut [u8]) {
    let mut k = 0;
    while k < out.len() {
        out[k] = stream_byte(id, from + k as u64);
        k += 1;
    }
}

/// The first byte of `data` that differs from client `id`'s stream at byte `from` on.
fn stream_mismatch(id: u64, from: u64, data: &[u8]) -> Option<usize> {
    let mut k = 0;
    while k < data.len() {
        if data[k] != stream_byte(id, from + k as u64) {
            return Some(k);
        }
        k += 1;
    }
    None
}

/// A small deterministic generator (SplitMix64): the seed picks the operations; what the kernel
/// does in between is not deterministic.
struct Rng(u64);

impl Rng {
    fn next_u32(&mut self) -> u32 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 32) as u32
    }
}

#[derive(Default, Debug, Clone, Copy)]
struct Counts {
    server_opens: u64,
    server_closes: u64,
    client_opens: u64,
    client_closes: u64,
    connect_errors: u64,
    adoptions: u64,
    timeouts: u64,
    long_timeouts: u64,
    writables: u64,
    bytes_echoed: u64,
    wakeups: u64,
    ends: u64,
}

struct World {
    rng: Rng,
    port: u16,
    target: u64,
    started: u64,
    listener: Option<ListenId>,
    ctx: Vec<ContextId>,
    c: Counts,
    /// Where clients build their writes.
    scratch: Vec<u8>,
}

type Hammer = App<World, Kind, Conn>;
type C = Cx<Hammer>;

fn rng(cx: &mut C) -> &mut Rng {
    &mut cx.ext_mut().rng
}
fn roll(cx: &mut C, per_mille: u32) -> bool {
    rng(cx).next_u32() % 1000 < per_mille
}
fn below(cx: &mut C, n: u32) -> u32 {
    rng(cx).next_u32() % n.max(1)
}

/// The checks every callback makes on a live socket.
fn check_live(cx: &C, s: SocketId, what: &str) {
    assert_eq!(
        cx.is_closed(s),
        Some(false),
        "{what} on a closed or released socket {s:?}"
    );
    let e = cx.socket_ext(s).expect("ext of a live socket");
    assert_eq!(e.magic, magic(e.id), "{what}: ext corrupted for {s:?}");
    let ctx = cx.socket_context(s).expect("context of a live socket");
    assert_eq!(
        cx.context_ext(ctx),
        Some(&e.ctx),
        "{what}: ext kind differs from its context's"
    );
}

/// Client connections started and not yet closed or failed.
fn clients_in_flight(w: &World) -> u64 {
    w.started - w.c.client_closes - w.c.connect_errors
}

/// Starts the next client connection, unless all are started or [`IN_FLIGHT`] exist.
fn start_connect(cx: &mut C) {
    let w = cx.ext_mut();
    if w.started >= w.target || clients_in_flight(w) >= IN_FLIGHT {
        return;
    }
    w.started += 1;
    let id = w.started;
    let (port, ctx) = (w.port, w.ctx[1]);
    let lazy = roll(cx, LAZY);
    let bulk = roll(cx, BULK);
    let quota = match bulk {
        true => u64::from(BULK_QUOTA + below(cx, BULK_QUOTA)),
        false => u64::from(below(cx, 24 * 1024)),
    };
    let conn = Conn {
        magic: magic(id),
        id,
        role: Role::Client,
        ctx: Kind::Client,
        quota,
        lazy,
        bulk,
        ..Conn::default()
    };
    let target = ConnectTarget::Host {
        host: "127.0.0.1",
        port,
        source: None,
    };
    match cx.connect(ctx, target, conn) {
        Ok(_) => {}
        Err(ConnectError::Capacity) => panic!("socket arena refused a connect"),
        Err(e) => panic!("connect refused synchronously: {e}"),
    }
}

fn client_done(cx: &mut C) {
    let w = cx.ext();
    if w.c.client_closes + w.c.connect_errors == w.target {
        if let Some(l) = cx.ext_mut().listener.take() {
            cx.listen_close(l);
        }
    }
}

/// Client: write the next part of its stream, sometimes gathered, sometimes corked; a bulk
/// client goes on until the kernel takes less than offered.
fn client_write(cx: &mut C, s: SocketId) {
    while client_write_once(cx, s) && is_bulk(cx, s) {}
}

fn is_bulk(cx: &C, s: SocketId) -> bool {
    cx.socket_ext(s).is_some_and(|e| e.bulk)
}

/// Writes one chunk; returns whether all of it was taken.
fn client_write_once(cx: &mut C, s: SocketId) -> bool {
    let (id, sent, quota, bulk) = match cx.socket_ext(s) {
        Some(e) => (e.id, e.sent, e.quota, e.bulk),
        None => return false,
    };
    if sent >= quota || cx.is_shut_down(s) != Some(false) {
        return false;
    }
    let most = if bulk { BULK_CHUNK } else { 4096 };
    let len = (u64::from(below(cx, most)) + 1).min(quota - sent) as usize;
    // One scratch buffer, lent out of the loop ext while the socket writes from it.
    let mut chunk = std::mem::take(&mut cx.ext_mut().scratch);
    chunk.resize(len, 0);
    stream_fill(id, sent, &mut chunk);
    let n = match below(cx, 3) {
        0 => {
            let split = below(cx, len as u32 + 1) as usize;
            cx.write2(s, &chunk[..split], &chunk[split..])
        }
        1 => {
            let n = cx.write(s, &chunk, true);
            cx.flush(s);
            n
        }
        _ => cx.write(s, &chunk, false),
    };
    cx.ext_mut().scratch = chunk;
    assert!(n <= len);
    if let Some(e) = cx.socket_ext_mut(s) {
        e.sent += n as u64;
    }
    n == len
}

/// Client: once everything sent came back, write more, or shut down when the quota is done.
fn client_progress(cx: &mut C, s: SocketId) {
    let Some(e) = cx.socket_ext(s) else { return };
    if e.lazy || e.received < e.sent || cx.is_shut_down(s) != Some(false) {
        return;
    }
    if e.sent < e.quota {
        client_write(cx, s);
    } else {
        cx.shutdown(s);
        cx.timeout(s, IDLE);
    }
}

fn is_client(cx: &C, s: SocketId) -> bool {
    cx.socket_ext(s).is_some_and(|e| e.role == Role::Client)
}

/// A random operation, run at the end of every socket event.
fn random_op(cx: &mut C, s: SocketId) {
    if cx.is_closed(s) != Some(false) {
        return;
    }
    match below(cx, 1000) {
        0..=14 => {
            let code = below(cx, 1000) as i32 + 1;
            let reason = below(cx, 1 << 20) as usize;
            if let Some(e) = cx.socket_ext_mut(s) {
                e.closing = Some((code, reason));
            }
            cx.close(s, code, Some(reason));
        }
        15..=59 => {
            let (role, ctx) = match cx.socket_ext(s) {
                Some(e) => (e.role, e.ctx),
                None => return,
            };
            let w = cx.ext();
            let (to, kind) = match (role, ctx) {
                (Role::Server, Kind::Child) => (w.ctx[0], Kind::Server),
                (_, Kind::Child) => (w.ctx[1], Kind::Client),
                _ => (w.ctx[2], Kind::Child),
            };
            let back = cx.adopt_with(s, to, |e| {
                e.ctx = kind;
                e.adoptions += 1;
            });
            assert_eq!(back, Some(s), "adopting an open socket keeps its handle");
            cx.ext_mut().c.adoptions += 1;
            // Adoption resets timeouts; keep an idle timeout so the run ends.
            cx.timeout(s, IDLE);
        }
        60..=89 if is_client(cx, s) => client_write(cx, s),
        90..=104 if is_client(cx, s) => {
            cx.shutdown(s);
            let secs = below(cx, 2) + 1;
            cx.timeout(s, secs);
        }
        105..=119 => {
            let secs = below(cx, 2) + 1;
            cx.timeout(s, secs);
            cx.wakeup();
        }
        120..=124 => cx.long_timeout(s, 1),
        _ => {}
    }
}

fn on_open(cx: &mut C, s: SocketId, is_client: bool, ip: &[u8]) {
    let id = cx.iteration_number() * 1_000_003 + u64::from(s.index());
    let e = cx.socket_ext_mut(s).expect("ext in on_open");
    assert!(!e.opened, "second on_open");
    e.opened = true;
    if is_client {
        assert_eq!(e.role, Role::Client);
        assert!(ip.is_empty(), "connected sockets get no ip");
        cx.ext_mut().c.client_opens += 1;
        check_live(cx, s, "on_open(client)");
        cx.timeout(s, IDLE);
        client_write(cx, s);
        client_progress(cx, s);
        start_connect(cx);
    } else {
        assert!(
            ip.len() == 4 || ip.len() == 16,
            "accepted sockets get 4 or 16 ip bytes"
        );
        *e = Conn {
            magic: magic(id),
            id,
            role: Role::Server,
            ctx: Kind::Server,
            opened: true,
            ..Conn::default()
        };
        cx.ext_mut().c.server_opens += 1;
        check_live(cx, s, "on_open(server)");
        cx.timeout(s, IDLE);
    }
    random_op(cx, s);
}

fn on_data(cx: &mut C, s: SocketId, data: &mut RecvBuf<'_>) {
    check_live(cx, s, "on_data");
    assert!(!data.is_empty(), "on_data with no bytes");
    // The padding is writable on both sides.
    let padded = data.padded();
    let last = padded.len() - 1;
    padded[0] = 0xEE;
    padded[last] = 0xEE;
    let role = cx.socket_ext(s).map(|e| e.role);
    if role == Some(Role::Client) {
        let e = cx.socket_ext_mut(s).expect("ext");
        let end = e.received + data.len() as u64;
        assert!(end <= e.sent, "echo of bytes never sent");
        if let Some(k) = stream_mismatch(e.id, e.received, data) {
            let at = e.received + k as u64;
            panic!("echoed byte {at} of client {} differs", e.id);
        }
        e.received += data.len() as u64;
        cx.ext_mut().c.bytes_echoed += data.len() as u64;
        cx.timeout(s, IDLE);
        if roll(cx, 300) {
            client_write(cx, s);
        }
        client_progress(cx, s);
    } else {
        let has_backlog = cx.socket_ext(s).is_some_and(|e| !e.backlog.is_empty());
        let n = if has_backlog {
            0
        } else {
            cx.write(s, data, false)
        };
        if let Some(e) = cx.socket_ext_mut(s) {
            e.backlog.extend_from_slice(&data[n..]);
        }
        cx.timeout(s, IDLE);
    }
    random_op(cx, s);
}

fn on_writable(cx: &mut C, s: SocketId) {
    check_live(cx, s, "on_writable");
    cx.ext_mut().c.writables += 1;
    if is_client(cx, s) {
        client_write(cx, s);
    } else {
        let backlog = std::mem::take(&mut cx.socket_ext_mut(s).expect("ext").backlog);
        let n = cx.write(s, &backlog, false);
        cx.socket_ext_mut(s).expect("ext").backlog = backlog[n..].to_vec();
    }
    random_op(cx, s);
}

fn on_end(cx: &mut C, s: SocketId) {
    check_live(cx, s, "on_end");
    cx.ext_mut().c.ends += 1;
    if !is_client(cx, s) && cx.socket_ext(s).is_some_and(|e| !e.backlog.is_empty()) {
        // Finish echoing first; the idle timeout closes it if the peer stops reading.
        cx.timeout(s, IDLE);
        return;
    }
    cx.shutdown(s);
    cx.close(s, 0, None);
}

fn on_timeout(cx: &mut C, s: SocketId) {
    check_live(cx, s, "on_timeout");
    cx.ext_mut().c.timeouts += 1;
    if roll(cx, 100) {
        random_op(cx, s);
    }
    if cx.is_closed(s) == Some(false) {
        cx.close(s, 0, None);
    }
}

fn on_long_timeout(cx: &mut C, s: SocketId) {
    check_live(cx, s, "on_long_timeout");
    cx.ext_mut().c.long_timeouts += 1;
}

fn on_close(cx: &mut C, s: SocketId, cause: CloseCause<usize>) {
    let (code, reason) = cause.code_and_reason();
    assert_eq!(
        cx.is_closed(s),
        Some(true),
        "on_close on a socket not marked closed"
    );
    let e = cx
        .socket_ext(s)
        .expect("ext stays until the end of the iteration");
    assert_eq!(e.magic, magic(e.id), "ext corrupted at close");
    assert!(e.opened, "on_close for a socket never opened");
    match e.closing {
        Some((c, r)) => assert_eq!(
            (code, reason),
            (c, Some(r)),
            "close code/reason not passed through"
        ),
        // Unrecorded closes are the library's or the hammer's own `close(s, 0, None)`.
        None => assert_eq!(
            (code, reason),
            (0, None),
            "library-initiated close must pass (0, None)"
        ),
    }
    let role = e.role;
    let w = cx.ext_mut();
    match role {
        Role::Server => w.c.server_closes += 1,
        Role::Client => {
            w.c.client_closes += 1;
            start_connect(cx);
            client_done(cx);
        }
    }
}

fn on_connect_error(cx: &mut C, s: SocketId, err: OsError) {
    let e = cx.socket_ext(s).expect("ext in on_connect_error");
    assert!(!e.opened, "connect error after on_open");
    assert_ne!(err.code, 0, "connect errors carry the OS code");
    cx.ext_mut().c.connect_errors += 1;
    start_connect(cx);
    client_done(cx);
}

fn on_wakeup(cx: &mut C) {
    cx.ext_mut().c.wakeups += 1;
}

fn callbacks() -> ContextCallbacks<Hammer> {
    ContextCallbacks {
        on_open: Some(on_open),
        on_data: Some(on_data),
        on_writable: Some(on_writable),
        on_end: Some(on_end),
        on_timeout: Some(on_timeout),
        on_long_timeout: Some(on_long_timeout),
        on_close: Some(on_close),
        on_connect_error: Some(on_connect_error),
        ..ContextCallbacks::default()
    }
}

/// This process's open descriptors.
fn open_fds() -> usize {
    match std::fs::read_dir("/proc/self/fd") {
        // The directory handle itself is one of them.
        Ok(dir) => dir.count().saturating_sub(1),
        Err(e) => fail("read /proc/self/fd", e),
    }
}

fn fail(what: &str, e: impl std::fmt::Display) -> ! {
    eprintln!("hammer: {what}: {e}");
    std::process::exit(1);
}

fn usage() -> ! {
    eprintln!("usage: hammer [--connections N] [--seed S]");
    std::process::exit(2);
}

fn arg(args: &[String], name: &str, default: u64) -> u64 {
    match args.iter().position(|a| a == name) {
        Some(i) => args
            .get(i + 1)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| usage()),
        None => default,
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    for pair in args.chunks(2) {
        if !["--connections", "--seed"].contains(&pair[0].as_str()) || pair.len() < 2 {
            usage();
        }
    }
    let conns = arg(&args, "--connections", 5000);
    let seed = arg(&args, "--seed", 1);

    let fds_before = open_fds();
    let world = World {
        rng: Rng(seed ^ 0x5EED),
        port: 0,
        target: conns,
        started: 0,
        listener: None,
        ctx: Vec::new(),
        c: Counts::default(),
        scratch: Vec::new(),
    };
    let settings = Settings::default().with_sweep_period_ms(200);
    let loop_callbacks = LoopCallbacks {
        wakeup: Some(on_wakeup),
        ..LoopCallbacks::default()
    };
    let mut l =
        usockets::new_loop(world, loop_callbacks, settings).unwrap_or_else(|e| fail("loop", e));
    let server = l
        .context_create(Kind::Server, callbacks())
        .unwrap_or_else(|e| fail("server context", e));
    let client = l
        .context_create(Kind::Client, callbacks())
        .unwrap_or_else(|e| fail("client context", e));
    let child = l
        .context_create_child(server, Kind::Child)
        .unwrap_or_else(|e| fail("child context", e));
    *l.context_callbacks_mut(child).expect("child") = callbacks();
    let target = ListenTarget::Host {
        host: Some("127.0.0.1"),
        port: 0,
    };
    let ls = l
        .listen(server, target, ListenOptions::default(), Conn::default)
        .unwrap_or_else(|e| fail("listen", e));
    let port = l.listen_port(ls).unwrap_or(0);
    if port == 0 {
        fail("listen", "no ephemeral port");
    }
    {
        let w = l.ext_mut();
        w.port = port;
        w.listener = Some(ls);
        w.ctx = vec![server, client, child];
    }
    if conns == 0 {
        if let Some(ls) = l.ext_mut().listener.take() {
            l.listen_close(ls);
        }
    }
    for _ in 0..CHAINS {
        start_connect(&mut l);
    }
    if let Err(e) = l.run() {
        fail("run", e);
    }

    let c = l.ext().c;
    let mut problems = Vec::new();
    if c.client_opens + c.connect_errors != conns {
        problems.push("client connects did not each resolve once");
    }
    if c.client_opens != c.client_closes {
        problems.push("client opens != closes");
    }
    if c.server_opens != c.server_closes {
        problems.push("server opens != closes");
    }
    if l.slots_in_use() != [0, 0, 3, 0, 0] {
        problems.push("slots other than the three contexts remain in use");
    }
    for ctx in [child, client, server] {
        if l.context_free(ctx).is_err() {
            problems.push("a context could not be freed");
        }
    }
    if l.slots_in_use() != [0; 5] {
        problems.push("slots remain in use after freeing the contexts");
    }
    drop(l);
    let fds_after = open_fds();
    if fds_after != fds_before {
        problems.push("descriptors leaked");
    }
    println!(
        "hammer: connections={conns} opens_client={} closes_client={} opens_server={} \
         closes_server={} connect_errors={} adoptions={} timeouts={} writables={} bytes={} \
         fds_before={fds_before} fds_after={fds_after}",
        c.client_opens,
        c.client_closes,
        c.server_opens,
        c.server_closes,
        c.connect_errors,
        c.adoptions,
        c.timeouts,
        c.writables,
        c.bytes_echoed,
    );
    eprintln!(
        "hammer: also long_timeouts={} wakeups={} ends={}",
        c.long_timeouts, c.wakeups, c.ends
    );
    if !problems.is_empty() {
        for p in problems {
            eprintln!("hammer: FAILED: {p}");
        }
        std::process::exit(1);
    }
}
