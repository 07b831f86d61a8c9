//! A raw number is not a descriptor the caller owns: the loop takes only an owned one.
#![forbid(unsafe_code)]

use usockets::{AppLoop, ContextCallbacks, LoopCallbacks, Settings};

fn main() {
    let mut l: AppLoop<(), (), ()> =
        usockets::new_loop((), LoopCallbacks::default(), Settings::default()).unwrap();
    let ctx = l.context_create((), ContextCallbacks::default()).unwrap();
    let _ = l.adopt_accepted(ctx, 7, (), &[]);
}
