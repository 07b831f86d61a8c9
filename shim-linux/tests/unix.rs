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

/// Removes the socket file when dropped (the shim leaves it when the listener closes).
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
    assert!(ev.writable());
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

    // The file stays after close (as with the C library); a new listener takes the stale path
    // over and serves on it.
    assert!(path.exists());
    let again = shim
        .listen(ListenTarget::Unix(p), ListenOptions::default())
        .expect("listen again on the path of a closed listener");
    let mut client = UnixStream::connect(&path).unwrap();
    let (server, _) = accept_one(&mut shim, &again);
    shim.send(&server, b"again", false).unwrap();
    let mut buf = [0u8; 5];
    client.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"again");
    shim.close(server);
    shim.close(again);
}

/// The permission bits of the file at `path`.
fn mode_of(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    let m = std::fs::symlink_metadata(path).expect("socket file");
    assert!(m.file_type().is_socket(), "{path:?} is a socket file");
    m.permissions().mode() & 0o7777
}

#[test]
fn unix_socket_file_is_0700_unless_asked_otherwise() {
    // 0700 less the umask: 0700 under any umask that leaves the owner's bits (the test
    // process's), and a chosen mode loses the umask's bits too.
    let path = unique_path("mode");
    let _cleanup = Unlink(path.clone());
    let p = path.to_str().unwrap();
    let mut shim = shim();
    let l = shim
        .listen(ListenTarget::Unix(p), ListenOptions::default())
        .unwrap();
    let umask = current_umask();
    assert_eq!(mode_of(&path), 0o700 & !umask);
    shim.close(l);
    let l = shim
        .listen(
            ListenTarget::Unix(p),
            ListenOptions::default().with_unix_mode(0o770),
        )
        .unwrap();
    assert_eq!(mode_of(&path), 0o770 & !umask);
    shim.close(l);
}

/// The process umask, read from `/proc/self/status` (setting it to read it would race with
/// the other tests' file creation).
fn current_umask() -> u32 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let line = status
        .lines()
        .find_map(|l| l.strip_prefix("Umask:"))
        .expect("Umask line");
    u32::from_str_radix(line.trim(), 8).expect("octal umask")
}

#[test]
fn unix_listen_on_a_live_servers_path_fails_and_the_server_keeps_serving() {
    let path = unique_path("live");
    let _cleanup = Unlink(path.clone());
    let p = path.to_str().unwrap();
    let mut shim = shim();
    let first = shim
        .listen(ListenTarget::Unix(p), ListenOptions::default())
        .unwrap();
    let mut other = self::shim();
    let e = other
        .listen(ListenTarget::Unix(p), ListenOptions::default())
        .unwrap_err();
    assert_eq!(
        (e.kind, e.code),
        (ErrorKind::AddrInUse, libc::EADDRINUSE),
        "a live server's path is not stolen"
    );
    assert!(path.exists());
    // The probe that found it alive is a connection that closed: the first server accepts it
    // (and sees it end), then serves a real client as before.
    let (probe, _) = accept_one(&mut shim, &first);
    shim.register(&probe, Token(3), Interest::READABLE).unwrap();
    wait_token(&mut shim, Token(3), Duration::from_secs(5)).expect("the probe ends");
    assert_eq!(
        shim.recv(&probe, &mut [0u8; 8]).unwrap(),
        0,
        "the probe sent nothing"
    );
    shim.close(probe);
    let mut client = UnixStream::connect(&path).unwrap();
    let (server, _) = accept_one(&mut shim, &first);
    shim.send(&server, b"still here", false).unwrap();
    let mut buf = [0u8; 10];
    client.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"still here");
    shim.close(server);
    shim.close(first);
}

#[test]
fn unix_listen_never_removes_a_file_that_is_not_a_socket() {
    let path = unique_path("regular");
    let _cleanup = Unlink(path.clone());
    std::fs::write(&path, b"precious").unwrap();
    let mut shim = shim();
    let e = shim
        .listen(
            ListenTarget::Unix(path.to_str().unwrap()),
            ListenOptions::default(),
        )
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::AddrInUse);
    assert_eq!(std::fs::read(&path).unwrap(), b"precious");
}

#[test]
fn unix_abstract_namespace() {
    let name = format!("\0usl-abstract-{}", std::process::id());
    let mut shim = shim();
    let listener = shim
        .listen(ListenTarget::Unix(&name), ListenOptions::default())
        .unwrap();
    // A live abstract name is not taken over either (there is no file to unlink).
    let e = shim
        .listen(ListenTarget::Unix(&name), ListenOptions::default())
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::AddrInUse);
    let fd = shim.connect(ConnectTarget::Unix(&name)).unwrap();
    let (server, _) = accept_one(&mut shim, &listener);
    for f in [server, fd, listener] {
        shim.close(f);
    }
    // The name vanishes with its listener.
    let again = shim
        .listen(ListenTarget::Unix(&name), ListenOptions::default())
        .expect("an abstract name is free once its listener closed");
    shim.close(again);
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
