//! What the embedder supplies besides the network device: a clock, a way to sleep, and the
//! flag a waker sets.

use core::sync::atomic::{AtomicBool, Ordering};

use smoltcp::iface::{Interface, SocketSet};

use usockets_core::Wake;

/// The embedder's side of the shim: a monotonic clock and a way to sleep until something
/// happens. On a microcontroller, `now_ms` reads a tick counter (SysTick, an RTC) and `idle`
/// is `WFI`; on a host, `Instant` and a short sleep.
pub trait Platform {
    /// Monotonic time in milliseconds from an arbitrary origin; never goes backwards.
    fn now_ms(&mut self) -> u64;
    /// Sleeps until `until_ms` (by [`now_ms`](Self::now_ms); `None`: no deadline) or until
    /// something may have happened: an interrupt (a frame received, a tick) or a
    /// [`WakeFlag`] raised. It may return early and spuriously, and must return by the deadline:
    /// the shim polls the stack again and calls it again while nothing is ready.
    ///
    /// A wake ([`WakeFlag`]) must end the sleep too. The shim checks the flag just before it
    /// calls `idle`; to close the window between that check and the sleep, check
    /// [`WakeFlag::is_raised`] with interrupts masked and `WFI` there (it still wakes on a
    /// pending interrupt), and have whoever wakes from another context (a second core, a
    /// thread on a host) also pend an interrupt on the loop's core; or sleep in short slices.
    fn idle(&mut self, until_ms: Option<u64>);

    /// Runs after each poll of the interface, with the interface and the socket set: the place
    /// for what the embedder drives beside the loop's TCP sockets, such as a DHCP socket added
    /// with [`SmolShim::add_socket`](crate::SmolShim::add_socket) whose lease updates the
    /// interface's addresses. Core lends the shim to no one once it runs the loop, so this is
    /// where the interface stays reachable. Does nothing by default.
    fn after_poll(&mut self, iface: &mut Interface, sockets: &mut SocketSet<'_>) {
        let _ = (iface, sockets);
    }
}

/// The flag behind a loop's waker: [`Wake::wake`] raises it, the shim's `wait` lowers it and
/// reports a wake-up. Lives in a `static` (the waker must outlive the loop without an
/// allocator): `static WAKE: WakeFlag = WakeFlag::new();`.
#[derive(Debug, Default)]
pub struct WakeFlag(AtomicBool);

impl WakeFlag {
    /// A lowered flag.
    pub const fn new() -> WakeFlag {
        WakeFlag(AtomicBool::new(false))
    }
    /// Raises the flag (what a waker does; also callable from an interrupt handler).
    pub fn raise(&self) {
        self.0.store(true, Ordering::Release);
    }
    /// Whether the flag is raised: for a [`Platform::idle`] that must not sleep past a wake
    /// (check it with interrupts masked, then `WFI`, which still wakes on a pending
    /// interrupt).
    pub fn is_raised(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
    /// Lowers the flag and says whether it was raised. A load then a store, not a swap:
    /// `thumbv6m` has no atomic read-modify-write. A raise between the two is lost only as a
    /// duplicate, since the caller reports a wake-up for the one it saw.
    pub(crate) fn take(&self) -> bool {
        if self.0.load(Ordering::Acquire) {
            self.0.store(false, Ordering::Release);
            true
        } else {
            false
        }
    }
}

/// The waker of a [`SmolShim`](crate::SmolShim): a reference to its [`WakeFlag`]. `Send`,
/// `Sync`, and harmless after the loop is gone (it raises a flag nobody reads).
#[derive(Clone, Copy, Debug)]
pub struct SmolWaker(pub(crate) &'static WakeFlag);

impl Wake for SmolWaker {
    fn wake(&self) {
        self.0.raise();
    }
}
