//! Unix-domain sockets.

mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use common::*;
use usockets_core::{
    ConnectTarget, ErrorKind, Interest, ListenOptions, ListenTarget, OsShim, PeerAddr, Token,
};
use usockets_shim_linux::UNIX_PATH_MAX;

/// Removes the socket file when dropped (the shim never unlinks anything).
struct Unlink(std::path::PathBuf);
impl Drop for Unlink {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn unix_listen_connect_round_trip() {
    let path = unique_path("rt");
    let _cleanup = Unlink(path.clone());
    let p = path.to_str().unwrap();
    let mut shim = shim();
    let listener = shim
        .listen(ListenTarget::Unix(p), ListenOptions::default())
        .unwrap();
    assert!(cloexec(&listener));
    assert_eq!(shim.local_addr(&listener).unwrap(), PeerAddr::Unix);

    // The shim as client.
    let fd = shim.connect(ConnectTarget::Unix(p)).unwrap();
    assert!(cloexec(&fd));
    shim.register(&fd, CONN, Interest::WRITABLE).unwrap();
    let ev = wait_token(&mut shim, CONN, Duration::from_secs(5)).unwrap();
    assert!(ev.writable);
    shim.connect_result(&fd).unwrap();
    let (server, peer) = accept_one(&mut shim, &listener);
    assert_eq!(peer, PeerAddr::Unix);
    assert!(cloexec(&server));
    assert_eq!(shim.send(&fd, b"over unix", true).unwrap(), 9);
    // flush on a unix socket: TCP_NODELAY does not apply; still Ok.
    shim.flush(&fd).unwrap();
    let server_token = Token(9);
    shim.register(&server, server_token, Interest::READABLE)
        .unwrap();
    assert_eq!(
        recv_exact(&mut shim, &server, server_token, 9),
        b"over unix"
    );
    assert_eq!(shim.send2(&server, b"re:", b"ply").unwrap(), 6);
    shim.modify(&fd, CONN, Interest::READABLE).unwrap();
    assert_eq!(recv_exact(&mut shim, &fd, CONN, 6), b"re:ply");
    shim.close(server);
    shim.close(fd);

    // A std client.
    let mut client = UnixStream::connect(&path).unwrap();
    let (server, _) = accept_one(&mut shim, &listener);
    shim.send(&server, b"hi", false).unwrap();
    let mut buf = [0u8; 2];
    client.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"hi");
    client.write_all(b"yo").unwrap();
    shim.register(&server, server_token, Interest::READABLE)
        .unwrap();
    assert_eq!(recv_exact(&mut shim, &server, server_token, 2), b"yo");
    shim.close(server);
    shim.close(listener);

    // Nothing is unlinked: the file is still there, and listening again fails until removed.
    assert!(path.exists());
    let e = shim
        .listen(ListenTarget::Unix(p), ListenOptions::default())
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::AddrInUse);
}

#[test]
fn unix_abstract_namespace() {
    let name = format!("\0usl-abstract-{}", std::process::id());
    let mut shim = shim();
    let listener = shim
        .listen(ListenTarget::Unix(&name), ListenOptions::default())
        .unwrap();
    let fd = shim.connect(ConnectTarget::Unix(&name)).unwrap();
    let (server, _) = accept_one(&mut shim, &listener);
    for f in [server, fd, listener] {
        shim.close(f);
    }
}

#[test]
fn unix_path_too_long_is_invalid_input() {
    let mut shim = shim();
    let long = std::env::temp_dir().join("x".repeat(UNIX_PATH_MAX + 1));
    let p = long.to_str().unwrap();
    let e = shim
        .listen(ListenTarget::Unix(p), ListenOptions::default())
        .unwrap_err();
    assert_eq!(
        (e.kind, e.code),
        (ErrorKind::InvalidInput, libc::ENAMETOOLONG)
    );
    let e = shim.connect(ConnectTarget::Unix(p)).unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidInput);
    assert!(
        !long.exists(),
        "nothing may be created under a truncated name"
    );
    let e = shim.connect(ConnectTarget::Unix("")).unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidInput);
}

#[test]
fn unix_connect_to_missing_path_fails_at_once() {
    let mut shim = shim();
    let path = unique_path("missing");
    let e = shim
        .connect(ConnectTarget::Unix(path.to_str().unwrap()))
        .unwrap_err();
    assert_eq!(e.code, libc::ENOENT);
}
