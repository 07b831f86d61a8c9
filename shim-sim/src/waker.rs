//! The cross-thread waker.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use usockets_core::Wake;

/// Wakes a [`SimShim`](crate::SimShim)'s next `wait`: it sets a flag that `wait` consumes and
/// reports as a [`Token::WAKER`](usockets_core::Token::WAKER) event. Only an `Arc<AtomicBool>`,
/// so it is `Send + Sync` and harmless after the network is dropped.
#[derive(Clone, Debug, Default)]
pub struct SimWaker {
    flag: Arc<AtomicBool>,
}

impl SimWaker {
    pub(crate) fn new() -> SimWaker {
        SimWaker::default()
    }

    /// Consumes a pending wake-up.
    pub(crate) fn take(&self) -> bool {
        self.flag.swap(false, Ordering::AcqRel)
    }
}

impl Wake for SimWaker {
    fn wake(&self) {
        self.flag.store(true, Ordering::Release);
    }
}
