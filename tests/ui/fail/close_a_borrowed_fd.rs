//! A descriptor the loop lends (`&OwnedFd`) cannot be closed through another shim: `close`
//! takes an owned one.
#![forbid(unsafe_code)]

use usockets::{
    AppLoop, ContextCallbacks, DefaultShim, ListenOptions, ListenTarget, LoopCallbacks, OsShim,
    Settings,
};

fn main() {
    let mut l: AppLoop<(), (), ()> =
        usockets::new_loop((), LoopCallbacks::default(), Settings::default()).unwrap();
    let ctx = l.context_create((), ContextCallbacks::default()).unwrap();
    let any = ListenTarget::Host { host: Some("127.0.0.1"), port: 0 };
    let ls = l.listen(ctx, any, ListenOptions::default(), || ()).unwrap();
    let mut other = DefaultShim::new().unwrap();
    other.close(l.listen_fd(ls).unwrap());
}
