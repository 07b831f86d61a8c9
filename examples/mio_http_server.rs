//! Benchmark peer only: a plain mio HTTP keep-alive server with the same request parser and the
//! same response bytes as `http_server`, so the two can be measured side by side
//! (`benches/http.sh`, `benches/suite.sh`). Edge-triggered, as mio is; no per-request
//! allocation.
//!
//! With `--echo` it is instead the mio peer of `echo_server` (`benches/suite.sh`'s `uring`
//! section): the same loop writes back every byte it reads, in order, from the one read buffer.
//! Memory per client stays bounded: once [`HIGH_WATER`] bytes wait for a client that does not
//! read, the server stops reading from it until they drain (as `echo_server`'s outbox does).
//!
//! `cargo run --release --example mio_http_server -- --port 0 [--echo]`

#[path = "shared/http.rs"]
#[allow(dead_code)]
mod http;

use std::io::{ErrorKind, Read, Write};

use http::{responses, RequestCounter, BATCH};
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};

const LISTENER: Token = Token(usize::MAX);

/// Echo mode: bytes waiting for a client at which the server stops reading from it (the
/// default high-water mark of `echo_server`'s outbox).
const HIGH_WATER: usize = 256 * 1024;

struct Conn {
    stream: TcpStream,
    parser: RequestCounter,
    backlog: Vec<u8>,
    /// Echo mode: reading stopped at [`HIGH_WATER`]; it resumes once the backlog drains below.
    paused: bool,
}

fn port_arg() -> u16 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == "--port")
        .and_then(|i| args.get(i + 1))
        .and_then(|p| p.parse().ok())
        .unwrap_or(3000)
}

/// `--echo`: echo every byte instead of answering HTTP requests.
fn echo_arg() -> bool {
    std::env::args().skip(1).any(|a| a == "--echo")
}

/// Writes the backlog then `fresh`, keeping what the kernel refuses. Returns false on error.
fn send(conn: &mut Conn, fresh: &[u8]) -> bool {
    while !conn.backlog.is_empty() {
        match conn.stream.write(&conn.backlog) {
            Ok(n) => {
                conn.backlog.drain(..n);
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                conn.backlog.extend_from_slice(fresh);
                return true;
            }
            Err(_) => return false,
        }
    }
    let mut at = 0;
    while at < fresh.len() {
        match conn.stream.write(&fresh[at..]) {
            Ok(n) => at += n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                conn.backlog.extend_from_slice(&fresh[at..]);
                return true;
            }
            Err(_) => return false,
        }
    }
    true
}

/// Drains the socket (edge-triggered) and answers every complete request, or in echo mode
/// writes back what it read (stopping, paused, at [`HIGH_WATER`] bytes waiting). False: close it.
fn serve(conn: &mut Conn, buf: &mut [u8], echo: bool) -> bool {
    loop {
        match conn.stream.read(buf) {
            Ok(0) => return false,
            Ok(n) if echo => {
                if !send(conn, &buf[..n]) {
                    return false;
                }
                if conn.backlog.len() >= HIGH_WATER {
                    conn.paused = true;
                    return true;
                }
            }
            Ok(n) => {
                let mut requests = conn.parser.feed(&buf[..n]);
                while requests > 0 {
                    let k = requests.min(BATCH);
                    requests -= k;
                    if !send(conn, responses(k)) {
                        return false;
                    }
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => return false,
        }
    }
}

fn main() -> std::io::Result<()> {
    let echo = echo_arg();
    let addr = std::net::SocketAddr::from(([0, 0, 0, 0], port_arg()));
    let mut listener = TcpListener::bind(addr)?;
    let mut poll = Poll::new()?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    println!("listening on port {}", listener.local_addr()?.port());
    std::io::stdout().flush()?;
    let mut conns: Vec<Option<Conn>> = Vec::new();
    let mut free: Vec<usize> = Vec::new();
    let mut events = Events::with_capacity(1024);
    let mut buf = vec![0u8; 512 * 1024];
    loop {
        if let Err(e) = poll.poll(&mut events, None) {
            if e.kind() == ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        for ev in events.iter() {
            if ev.token() == LISTENER {
                loop {
                    match listener.accept() {
                        Ok((mut stream, _)) => {
                            stream.set_nodelay(true)?;
                            let i = free.pop().unwrap_or_else(|| {
                                conns.push(None);
                                conns.len() - 1
                            });
                            poll.registry().register(
                                &mut stream,
                                Token(i),
                                Interest::READABLE | Interest::WRITABLE,
                            )?;
                            conns[i] = Some(Conn {
                                stream,
                                parser: RequestCounter::default(),
                                backlog: Vec::new(),
                                paused: false,
                            });
                        }
                        Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                        Err(_) => break,
                    }
                }
                continue;
            }
            let i = ev.token().0;
            let keep = match conns.get_mut(i).and_then(Option::as_mut) {
                Some(conn) => {
                    let mut ok = true;
                    if ev.is_writable() && !conn.backlog.is_empty() {
                        ok = send(conn, &[]);
                    }
                    // A paused echo reads nothing until its backlog drains below the mark, then
                    // resumes at once: edge-triggered, the bytes it left unread raise no new
                    // readable event.
                    let resume = conn.paused && conn.backlog.len() < HIGH_WATER;
                    if resume {
                        conn.paused = false;
                    }
                    if ok && !conn.paused && (ev.is_readable() || resume) {
                        ok = serve(conn, &mut buf, echo);
                    }
                    ok
                }
                None => continue,
            };
            if !keep {
                if let Some(mut conn) = conns[i].take() {
                    let _ = poll.registry().deregister(&mut conn.stream);
                }
                free.push(i);
            }
        }
    }
}
