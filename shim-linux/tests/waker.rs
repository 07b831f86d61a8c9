//! The cross-thread waker.

mod common;

use std::time::{Duration, Instant};

use common::shim;
use usockets_core::{Event, OsShim, Token, Wake};

fn assert_send_sync_static<T: Clone + Send + Sync + 'static>() {}

#[test]
fn waker_is_send_sync_static() {
    assert_send_sync_static::<usockets_shim_linux::LinuxWaker>();
}

#[test]
fn wake_from_another_thread_ends_a_blocking_wait() {
    let mut shim = shim();
    let waker = shim.waker();
    let start = Instant::now();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        waker.wake();
        waker.wake(); // coalesces with the first
    });
    let mut events = [Event::EMPTY; 8];
    let n = shim.wait(&mut events, None).unwrap();
    assert!(start.elapsed() >= Duration::from_millis(40));
    assert_eq!(n, 1);
    assert_eq!(events[0].token, Token::WAKER);
    t.join().unwrap();
    // Drained: the next wait sees nothing (any second wake was coalesced or drained).
    let n = shim.wait(&mut events, Some(0)).unwrap();
    assert!(n == 0 || (n == 1 && events[0].token == Token::WAKER));
    assert_eq!(shim.wait(&mut events, Some(0)).unwrap(), 0);
}

#[test]
fn wake_before_wait_is_not_lost() {
    let mut shim = shim();
    shim.waker().wake();
    let mut events = [Event::EMPTY; 8];
    let n = shim.wait(&mut events, Some(5000)).unwrap();
    assert_eq!((n, events[0].token), (1, Token::WAKER));
}

#[test]
fn waker_after_shim_drop_never_writes_to_a_reused_descriptor() {
    let shim = shim();
    let mut shim = shim;
    let waker = shim.waker();
    drop(shim);
    // Descriptors freed by the drop are likely handed out again here.
    let dir = std::env::temp_dir();
    let mut files = Vec::new();
    for i in 0..8 {
        let path = dir.join(format!("usl-waker-{}-{i}", std::process::id()));
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .unwrap();
        files.push((path, f));
    }
    for _ in 0..3 {
        waker.wake();
    }
    let clone = waker.clone();
    drop(waker);
    clone.wake();
    drop(clone);
    for (path, f) in files {
        // The file's length, not a read through `f`: a stray write would have moved `f`'s
        // offset to the end, and a read from there sees nothing.
        let len = f.metadata().unwrap().len();
        let _ = std::fs::remove_file(&path);
        assert_eq!(len, 0, "the waker wrote {len} bytes into {path:?}");
    }
}
