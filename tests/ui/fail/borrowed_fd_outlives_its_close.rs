//! A lent descriptor cannot outlive its owner's close: the borrow of the loop must end first,
//! so the number can never be used after it is closed and reused.
#![forbid(unsafe_code)]

use std::os::fd::AsRawFd;

use usockets::{AppLoop, ContextCallbacks, ListenOptions, ListenTarget, LoopCallbacks, Settings};

fn main() {
    let mut l: AppLoop<(), (), ()> =
        usockets::new_loop((), LoopCallbacks::default(), Settings::default()).unwrap();
    let ctx = l.context_create((), ContextCallbacks::default()).unwrap();
    let any = ListenTarget::Host { host: Some("127.0.0.1"), port: 0 };
    let ls = l.listen(ctx, any, ListenOptions::default(), || ()).unwrap();
    let fd = l.listen_fd(ls).unwrap();
    l.listen_close(ls);
    println!("{}", fd.as_raw_fd());
}
