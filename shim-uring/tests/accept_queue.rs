//! A listener's accept queue: at its cap the multishot accept is cancelled (the kernel's
//! backlog holds the rest) and armed again once core takes from the queue, so a burst far
//! larger than the queue is accepted whole. (The race where the cancel completes after core
//! emptied the queue is hard to hit from another thread; the C ABI's `test_stress` over
//! io_uring, in CI's `uring` stage, hits it at once.)
#![cfg(target_os = "linux")]

mod common;

use std::net::TcpStream;
use std::time::Duration;

use common::{drive, listen_local, new_loop, U};
use usockets_core::{ContextCallbacks, Cx, ListenOptions, SocketId};
use usockets_shim_uring::UringConfig;

const BURST: usize = 1000;

type C = U<usize, ()>;

fn on_open(cx: &mut Cx<C>, _s: SocketId, _client: bool, _ip: &[u8]) {
    *cx.ext_mut() += 1;
}

#[test]
fn a_burst_much_larger_than_the_accept_queue_is_accepted_whole() {
    let config = UringConfig::default().with_accept_queue(4);
    let mut l = new_loop::<usize, ()>(config, 0);
    let callbacks = ContextCallbacks {
        on_open: Some(on_open),
        ..ContextCallbacks::default()
    };
    let port = listen_local(
        &mut l,
        callbacks,
        ListenOptions::default().with_backlog(1024),
    );
    // A client thread connects in a burst while the loop runs.
    let clients = std::thread::spawn(move || {
        (0..BURST)
            .map(|_| TcpStream::connect(("127.0.0.1", port)).expect("connect"))
            .collect::<Vec<TcpStream>>()
    });
    drive(
        &mut l,
        Duration::from_secs(10),
        "every connection accepted",
        |l| *l.ext() == BURST,
    );
    drop(clients.join().expect("clients"));
}
