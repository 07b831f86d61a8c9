//! Listening, connecting and addresses.

use std::net::{Ipv4Addr, Ipv6Addr};

use usockets_core::{ConnectTarget, ErrorKind, ListenError, ListenOptions, ListenTarget, Settings};

use crate::harness::*;
use crate::ShimUnderTest;

/// Listening on port 0 picks an ephemeral port, a different one per listener, reported by
/// `listen_port`; an exclusive listen on a port in use fails with [`ErrorKind::AddrInUse`]; a
/// closed listener reports no port.
pub fn check_listen_port_zero_is_ephemeral<S: ShimUnderTest>() {
    let mut l = new_loop::<S>(Settings::default(), Caps::default());
    let ctx = l
        .context_create(Ctx::tag(SERVER), callbacks::<S>())
        .expect("context_create");
    let target = ListenTarget::Host {
        host: Some(LOCAL4),
        port: 0,
    };
    let a = l
        .listen(ctx, target, ListenOptions::default(), accepted_ext)
        .unwrap_or_else(|e| panic!("listen on 127.0.0.1 port 0: {e}"));
    let b = l
        .listen(ctx, target, ListenOptions::default(), accepted_ext)
        .unwrap_or_else(|e| panic!("second listen on 127.0.0.1 port 0: {e}"));
    let pa = l.listen_port(a).expect("listen_port of a port-0 listener");
    let pb = l.listen_port(b).expect("listen_port of a port-0 listener");
    assert_ne!(pa, 0, "port 0 must be replaced by the ephemeral port");
    assert_ne!(pb, 0, "port 0 must be replaced by the ephemeral port");
    assert_ne!(pa, pb, "two port-0 listeners get two different ports");
    let exclusive = ListenOptions::default().with_exclusive_port(true);
    let taken = ListenTarget::Host {
        host: Some(LOCAL4),
        port: pa,
    };
    match l.listen(ctx, taken, exclusive, accepted_ext) {
        Err(ListenError::Os(e)) => assert_eq!(
            e.kind,
            ErrorKind::AddrInUse,
            "an exclusive listen on a port in use: {e}"
        ),
        Err(e) => panic!("an exclusive listen on a port in use must fail with AddrInUse: {e}"),
        Ok(x) => panic!(
            "an exclusive listen on port {pa}, already listened on, succeeded (port {:?})",
            l.listen_port(x)
        ),
    }
    assert_eq!(l.listen_context(a), Some(ctx));
    assert!(l.listen_fd(a).is_some());
    assert!(l.is_alive(), "a listener keeps the loop alive");
    l.listen_close(a);
    assert_eq!(l.listen_port(a), None, "closed listener has no port");
    assert!(l.listen_fd(a).is_none());
    l.listen_close(a); // idempotent
    assert_eq!(
        l.listen_port(b),
        Some(pb),
        "the other listener is untouched"
    );
    l.listen_close(b);
    assert!(!l.is_alive());
    spin(&mut l, 1);
    assert_eq!(
        l.slots_in_use()[1],
        0,
        "listen slots released after the iteration"
    );
}

/// `connect` opens both ends on later iterations: the client with `on_open(is_client = true,
/// no IP)`, the accepted socket with `on_open(is_client = false, 4 or 16 IP bytes)`, each
/// once, in the right context, with the right ext and listener.
pub fn check_connect_opens_both_ends<S: ShimUnderTest>() {
    let mut f = Fixture::<S>::tcp(LOCAL4);
    let c = f.connect();
    assert!(!opened(&f.l, c), "no on_open inside connect");
    assert_eq!(f.l.is_established(c), Some(false), "connecting");
    assert_eq!(f.l.is_closed(c), Some(false));
    assert_eq!(f.l.socket_ext(c), Some(&CLIENT_EXT));
    assert_eq!(f.l.socket_context(c), Some(f.client));
    assert_eq!(
        f.l.write(c, b"early", false),
        0,
        "no writes while connecting"
    );
    drive(&mut f.l, "both ends to open", |l| {
        opened(l, c) && count(l, |e| matches!(e, Ev::Open { client: false, .. })) > 0
    });
    let opens = events(&f.l, |e| matches!(e, Ev::Open { .. }));
    let client: Vec<_> = opens
        .iter()
        .filter(|e| matches!(e, Ev::Open { s, .. } if *s == c))
        .collect();
    assert_eq!(
        client,
        [&Ev::Open {
            s: c,
            client: true,
            ip: vec![],
            ctx: CLIENT
        }],
        "the client end opens once, as a client, with no IP"
    );
    let server: Vec<_> = opens
        .iter()
        .filter_map(|e| match e {
            Ev::Open {
                s,
                client: false,
                ip,
                ctx,
            } => Some((*s, ip.clone(), *ctx)),
            _ => None,
        })
        .collect();
    assert_eq!(server.len(), 1, "one accepted socket: {opens:?}");
    let (s, ip, ctx) = server[0].clone();
    assert!(
        ip.len() == 4 || ip.len() == 16,
        "accepted on_open gets 4 or 16 IP bytes, got {ip:?}"
    );
    assert_eq!(ctx, SERVER, "accepted socket joins the listener's context");
    assert_eq!(f.l.is_established(c), Some(true));
    assert_eq!(f.l.is_established(s), Some(true));
    assert_eq!(f.l.socket_ext(s), Some(&ACCEPTED_EXT), "ext from new_ext");
    assert_eq!(f.l.socket_listener(s), Some(f.listener));
    assert_eq!(f.l.socket_listener(c), None);
    assert!(f.l.socket_fd(c).is_some() && f.l.socket_fd(s).is_some());
    assert_eq!(f.l.first_socket(f.server), Some(s));
    assert_eq!(f.l.next_socket(s), None);
    assert_eq!(f.l.first_socket(f.client), Some(c));
    let pre_open = position(&f.l, |e| matches!(e, Ev::PreOpen { .. }));
    let server_open = position(&f.l, |e| matches!(e, Ev::Open { client: false, .. }));
    assert!(
        f.l.ext().log.contains(&Ev::PreOpen { ip }) && pre_open < server_open,
        "on_pre_open runs before the accepted on_open, with the same IP bytes"
    );
    assert_eq!(
        count(&f.l, |e| !matches!(e, Ev::Open { .. } | Ev::PreOpen { .. })),
        0,
        "nothing but on_pre_open and the two opens: {:?}",
        f.l.ext().log
    );
}

fn connect_and_accept<S: ShimUnderTest>(host: &'static str, ip: &[u8]) {
    let mut f = Fixture::<S>::tcp(host);
    let (c, s) = f.pair();
    assert!(
        f.l.ext().log.contains(&Ev::Open {
            s: c,
            client: true,
            ip: vec![],
            ctx: CLIENT
        }),
        "client on_open(is_client = true, no IP)"
    );
    assert!(
        f.l.ext().log.contains(&Ev::Open {
            s,
            client: false,
            ip: ip.to_vec(),
            ctx: SERVER
        }),
        "server on_open(is_client = false, {ip:?}): {:?}",
        f.l.ext().log
    );
    let mut out = [0u8; 16];
    let n = f.l.remote_address(s, &mut out);
    assert_eq!(&out[..n], ip, "remote_address of the accepted socket");
    let n = f.l.remote_address(c, &mut out);
    assert_eq!(&out[..n], ip, "remote_address of the client socket");
    f.transfer(c, b"ping", s);
    f.transfer(s, b"pong", c);
}

/// A client connects to a listener on `127.0.0.1`; the accepted socket reports 4 IP bytes
/// `127.0.0.1`, and bytes flow both ways.
pub fn check_ipv4_connect_and_accept<S: ShimUnderTest>() {
    connect_and_accept::<S>(LOCAL4, &Ipv4Addr::LOCALHOST.octets());
}

/// A client connects to a listener on `::1`; the accepted socket reports 16 IP bytes `::1`,
/// and bytes flow both ways. A shim without IPv6 fails this check.
pub fn check_ipv6_connect_and_accept<S: ShimUnderTest>() {
    connect_and_accept::<S>(LOCAL6, &Ipv6Addr::LOCALHOST.octets());
}

/// Unix-domain listen and connect on a unique path: both ends open (no IP bytes, no ports),
/// bytes flow both ways; a connect to a path nobody listens on fails through
/// `on_connect_error` only.
pub fn check_unix_connect_and_accept<S: ShimUnderTest>() {
    if !declares_unix::<S>() {
        return unix_is_refused_cleanly::<S>();
    }
    let path = UnixPath::new();
    let mut f = Fixture::<S>::unix(&path.0);
    assert_eq!(
        f.l.listen_port(f.listener),
        None,
        "a unix listener has no port"
    );
    let (c, s) = f.pair();
    assert!(
        f.l.ext().log.contains(&Ev::Open {
            s: c,
            client: true,
            ip: vec![],
            ctx: CLIENT
        }),
        "client on_open(is_client = true, no IP)"
    );
    assert!(
        f.l.ext().log.contains(&Ev::Open {
            s,
            client: false,
            ip: vec![],
            ctx: SERVER
        }),
        "accepted unix socket: on_open(is_client = false, no IP): {:?}",
        f.l.ext().log
    );
    assert_eq!(f.l.remote_port(s), None, "unix sockets have no port");
    assert_eq!(f.l.local_port(c), None, "unix sockets have no port");
    assert_eq!(f.l.remote_address(s, &mut [0u8; 16]), 0, "unix: no IP");
    f.transfer(c, &pattern(10_000, 1), s);
    f.transfer(s, &pattern(10_000, 2), c);
    f.l.close(c, 0, None);
    f.l.close(s, 0, None);
    f.l.listen_close(f.listener);
    spin(&mut f.l, 1);
    assert_eq!(f.l.slots_in_use()[..2], [0, 0]);
    // Nobody listens on a fresh path: the connect fails through on_connect_error only.
    let missing = UnixPath::new();
    let m =
        f.l.connect(f.client, ConnectTarget::Unix(&missing.0), CLIENT_EXT)
            .expect("connect fails synchronously only for a bad context or no capacity");
    drive(
        &mut f.l,
        "on_connect_error for a path nobody listens on",
        |l| count(l, |e| matches!(e, Ev::ConnectError { s, .. } if *s == m)) > 0 || opened(l, m),
    );
    idle(&mut f.l, 50);
    let seen: Vec<_> = events_of(&f.l, m)
        .into_iter()
        .filter(|e| !matches!(e, Ev::Released { .. }))
        .collect();
    assert!(
        matches!(&seen[..], [Ev::ConnectError { err, .. }] if err.code != 0),
        "connect to a unix path nobody listens on: only on_connect_error, with a raw code: \
         {seen:?}"
    );
}

/// Whether the shim under test declares unix-domain sockets ([`ShimUnderTest::unix_sockets`]).
fn declares_unix<S: ShimUnderTest>() -> bool {
    let l = new_loop::<S>(Settings::default(), Caps::default());
    S::unix_sockets(l.shim())
}

/// For a shim that declares no unix sockets: a unix listen fails with `Unsupported`, a unix
/// connect reaches `on_connect_error` with `Unsupported` (never `on_open`), and neither leaves
/// a slot behind.
fn unix_is_refused_cleanly<S: ShimUnderTest>() {
    eprintln!("the shim declares no unix sockets: checking that they are refused cleanly");
    let mut f = Fixture::<S>::tcp(LOCAL4);
    let path = UnixPath::new();
    match f.l.listen(
        f.server,
        ListenTarget::Unix(&path.0),
        ListenOptions::default(),
        accepted_ext,
    ) {
        Err(ListenError::Os(e)) => {
            assert_eq!(e.kind, ErrorKind::Unsupported, "unix listen: {e}")
        }
        other => panic!("a unix listen on a shim without unix sockets must fail: {other:?}"),
    }
    let m = match f
        .l
        .connect(f.client, ConnectTarget::Unix(&path.0), CLIENT_EXT)
    {
        Ok(m) => m,
        Err(e) => panic!("connect fails synchronously only for a bad context or no capacity: {e}"),
    };
    drive(&mut f.l, "on_connect_error for a unix connect", |l| {
        count(l, |e| matches!(e, Ev::ConnectError { s, .. } if *s == m)) > 0 || opened(l, m)
    });
    let seen: Vec<_> = events_of(&f.l, m)
        .into_iter()
        .filter(|e| !matches!(e, Ev::Released { .. }))
        .collect();
    assert!(
        matches!(&seen[..], [Ev::ConnectError { err, .. }] if err.kind == ErrorKind::Unsupported),
        "a unix connect on a shim without unix sockets: only on_connect_error(Unsupported): \
         {seen:?}"
    );
    assert_eq!(f.l.socket_slots_in_use(), 0, "no slot left behind");
}

/// A unix path is not stolen from a live listener: a second listen on it fails with
/// `AddrInUse` and the first keeps serving. Once that listener is closed, listening on the path
/// again succeeds (a shim with a file system unlinks the stale socket file it left) and serves.
pub fn check_unix_relisten_after_close<S: ShimUnderTest>() {
    if !declares_unix::<S>() {
        return unix_is_refused_cleanly::<S>();
    }
    let path = UnixPath::new();
    let mut f = Fixture::<S>::unix(&path.0);
    let target = ListenTarget::Unix(&path.0);
    match f
        .l
        .listen(f.server, target, ListenOptions::default(), accepted_ext)
    {
        Err(ListenError::Os(e)) => assert_eq!(
            e.kind,
            ErrorKind::AddrInUse,
            "listen on a live listener's unix path: {e}"
        ),
        other => panic!("listen on a live listener's unix path must fail: {other:?}"),
    }
    // A shim may probe the path with a connection that closes at once: let it come and go.
    idle(&mut f.l, 50);
    let (c, s) = f.pair();
    f.transfer(c, &pattern(1000, 3), s);
    f.l.close(c, 0, None);
    f.l.close(s, 0, None);
    f.l.listen_close(f.listener);
    spin(&mut f.l, 1);
    f.listener =
        f.l.listen(f.server, target, ListenOptions::default(), accepted_ext)
            .unwrap_or_else(|e| panic!("listen again on a closed listener's unix path: {e}"));
    let (c, s) = f.pair();
    f.transfer(s, &pattern(1000, 4), c);
}

/// `remote_address`, `remote_port` and `local_port` agree between the two ends, and with the
/// listener's port; an output buffer too small for the address gives 0; a closed socket has
/// no addresses.
pub fn check_addresses_agree_between_ends<S: ShimUnderTest>() {
    let mut f = Fixture::<S>::tcp(LOCAL4);
    let port = f.port();
    let (c, s) = f.pair();
    let c_local = f.l.local_port(c).expect("client local_port");
    let s_remote = f.l.remote_port(s).expect("server remote_port");
    assert_ne!(c_local, 0);
    assert_eq!(
        s_remote, c_local,
        "server's remote port is the client's local port"
    );
    assert_eq!(
        f.l.local_port(s),
        Some(port),
        "accepted socket's local port"
    );
    assert_eq!(f.l.remote_port(c), Some(port), "client's remote port");
    let mut out = [0u8; 16];
    assert_eq!(f.l.remote_address(s, &mut out), 4);
    assert_eq!(out[..4], Ipv4Addr::LOCALHOST.octets());
    assert_eq!(f.l.remote_address(c, &mut out), 4);
    assert_eq!(out[..4], Ipv4Addr::LOCALHOST.octets());
    assert_eq!(
        f.l.remote_address(s, &mut [0u8; 3]),
        0,
        "too small a buffer gives 0"
    );
    f.l.close(c, 0, None);
    assert_eq!(f.l.local_port(c), None, "closed socket");
    assert_eq!(f.l.remote_port(c), None, "closed socket");
    assert_eq!(f.l.remote_address(c, &mut out), 0, "closed socket");
}

/// A listener on every interface (`host: None`) is dual-stack: clients connect over IPv4
/// (`127.0.0.1`) and IPv6 (`::1`) to the same port, and the accepted sockets report 4 or 16
/// IP bytes (an IPv4 peer may show as `::ffff:127.0.0.1`).
pub fn check_listen_any_host_is_dual_stack<S: ShimUnderTest>() {
    let mut l = new_loop::<S>(Settings::default(), Caps::default());
    let server = l
        .context_create(Ctx::tag(SERVER), callbacks::<S>())
        .expect("context_create");
    let client = l
        .context_create(Ctx::tag(CLIENT), callbacks::<S>())
        .expect("context_create");
    let listener = l
        .listen(
            server,
            ListenTarget::Host {
                host: None,
                port: 0,
            },
            ListenOptions::default(),
            accepted_ext,
        )
        .unwrap_or_else(|e| panic!("listen on every interface, port 0: {e}"));
    let port = l.listen_port(listener).expect("listen_port");
    assert_ne!(port, 0);
    let mut want = Vec::new();
    for host in [LOCAL4, LOCAL6] {
        let c = l
            .connect(
                client,
                ConnectTarget::Host {
                    host,
                    port,
                    source: None,
                },
                CLIENT_EXT,
            )
            .expect("connect");
        want.push((host, c));
    }
    drive(
        &mut l,
        "IPv4 and IPv6 clients to reach a dual-stack listener",
        |l| {
            want.iter().all(|&(_, c)| opened(l, c))
                && count(l, |e| matches!(e, Ev::Open { client: false, .. })) == 2
        },
    );
    let mapped = Ipv4Addr::LOCALHOST.to_ipv6_mapped().octets();
    let v6 = Ipv6Addr::LOCALHOST.octets();
    let v4 = Ipv4Addr::LOCALHOST.octets();
    let ips: Vec<Vec<u8>> = events(&l, |e| matches!(e, Ev::Open { client: false, .. }))
        .into_iter()
        .filter_map(|e| match e {
            Ev::Open { ip, .. } => Some(ip),
            _ => None,
        })
        .collect();
    assert!(
        ips.iter().any(|ip| ip[..] == v6),
        "the IPv6 client is ::1: {ips:?}"
    );
    assert!(
        ips.iter().any(|ip| ip[..] == v4 || ip[..] == mapped),
        "the IPv4 client is 127.0.0.1 or ::ffff:127.0.0.1: {ips:?}"
    );
    assert_eq!(count(&l, |e| matches!(e, Ev::ConnectError { .. })), 0);
}

/// A connect with a `source` address binds it: the accepted socket sees the client from that
/// address, on the client's local port.
pub fn check_connect_with_source_address<S: ShimUnderTest>() {
    let mut f = Fixture::<S>::tcp(LOCAL4);
    let port = f.port();
    let mark = f.l.ext().log.len();
    let c =
        f.l.connect(
            f.client,
            ConnectTarget::Host {
                host: LOCAL4,
                port,
                source: Some(LOCAL4),
            },
            CLIENT_EXT,
        )
        .expect("connect");
    let server_end = |l: &L<S>| {
        l.ext().log[mark..].iter().find_map(|e| match e {
            Ev::Open {
                s, client: false, ..
            } => Some(*s),
            _ => None,
        })
    };
    drive(&mut f.l, "a connect with a source address to open", |l| {
        opened(l, c) && server_end(l).is_some()
    });
    let s = server_end(&f.l).expect("server end");
    let mut out = [0u8; 16];
    let n = f.l.remote_address(s, &mut out);
    assert_eq!(out[..n], Ipv4Addr::LOCALHOST.octets());
    assert_eq!(f.l.remote_port(s), f.l.local_port(c));
    f.transfer(c, b"from a bound source", s);
}
