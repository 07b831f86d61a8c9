//! The positive control: the same jobs done the allowed way compile and run. Descriptors go in
//! owned, come back owned on failure and from `poll_free`, and are lent as `&OwnedFd`.
#![forbid(unsafe_code)]

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use usockets::{
    AdoptError, AppLoop, ContextCallbacks, ListenOptions, ListenTarget, LoopCallbacks, Settings,
};

fn main() {
    let mut l: AppLoop<(), (), ()> =
        usockets::new_loop((), LoopCallbacks::default(), Settings::default()).unwrap();
    let ctx = l.context_create((), ContextCallbacks::default()).unwrap();

    // A connection accepted elsewhere, handed over owned.
    let std_listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let _client = TcpStream::connect(std_listener.local_addr().unwrap()).unwrap();
    let (accepted, _) = std_listener.accept().unwrap();
    let s = l.adopt_accepted(ctx, OwnedFd::from(accepted), (), &[]).unwrap();
    let lent = l.socket_fd(s).unwrap();
    assert!(lent.as_fd().as_raw_fd() >= 0);

    // A failed adoption gives the descriptor back, still open.
    let stale = l.context_create((), ContextCallbacks::default()).unwrap();
    l.context_free(stale).unwrap();
    let other = TcpStream::connect(std_listener.local_addr().unwrap()).unwrap();
    let rejected = l.adopt_accepted(stale, OwnedFd::from(other), (), &[]).unwrap_err();
    assert_eq!(rejected.error, AdoptError::InvalidContext);
    let mut back = TcpStream::from(rejected.into_fd());
    back.write_all(b"still mine").unwrap();

    // A poll owns its descriptor until poll_free gives it back.
    let (reader, _writer) = std::io::pipe().unwrap();
    let p = l.poll_create(true, ()).unwrap();
    assert!(l.poll_init(p, OwnedFd::from(reader)).unwrap().is_none());
    let (_, fd) = l.poll_free(p).unwrap();
    let _reader = std::io::PipeReader::from(fd.unwrap());

    let any = ListenTarget::Host { host: Some("127.0.0.1"), port: 0 };
    let ls = l.listen(ctx, any, ListenOptions::default(), || ()).unwrap();
    let raw = l.listen_fd(ls).map(AsRawFd::as_raw_fd).unwrap();
    assert!(raw >= 0);
    l.listen_close(ls);
    l.close(s, 0, None);
}
