//! The benchmark peer: a plain mio HTTP keep-alive server with the same request parser and the
//! same response bytes as `http_server`, so the two can be measured side by side
//! (`benches/http.sh`). Edge-triggered, as mio is; no per-request allocation.
//!
//! `cargo run --release --example mio_http_server -- --port 0`

#[path = "shared/http.rs"]
#[allow(dead_code)]
mod http;

use std::io::{ErrorKind, Read, Write};

use http::{responses, RequestCounter, BATCH};
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};

const LISTENER: Token = Token(usize::MAX);

struct Conn {
    stream: TcpStream,
    parser: RequestCounter,
    backlog: Vec<u8>,
}

fn port_arg() -> u16 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == "--port")
        .and_then(|i| args.get(i + 1))
        .and_then(|p| p.parse().ok())
        .unwrap_or(3000)
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

/// Drains the socket (edge-triggered) and answers every complete request. False: close it.
fn serve(conn: &mut Conn, buf: &mut [u8]) -> bool {
    loop {
        match conn.stream.read(buf) {
            Ok(0) => return false,
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
                    if ok && ev.is_readable() {
                        ok = serve(conn, &mut buf);
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
