//! [`SimFd`]: an owned simulated descriptor, the simulated OS's `OwnedFd`.

use std::cell::RefCell;
use std::fmt;
use std::rc::{Rc, Weak};

use crate::net::NetState;

/// A descriptor number inside the simulated OS (an `int`, as on Unix). Numbers are handed out
/// POSIX style (the lowest free one, from 3), so reuse happens and stale-descriptor bugs show.
pub(crate) type Fd = i32;

/// An owned descriptor of a [`SimNet`](crate::SimNet): what [`SimShim`](crate::SimShim) gives
/// out from `listen`, `accept`, `connect` and [`SimNet::user_pipe`](crate::SimNet::user_pipe).
///
/// Like std's `OwnedFd` it is neither `Copy` nor `Clone`, closing it is the owner's job (the
/// shim's `close`, or dropping it), and safe code cannot make one from a number: the only way
/// back from [`into_number`](SimFd::into_number) is
/// [`SimNet::reclaim_fd`](crate::SimNet::reclaim_fd), which accepts only a number given up that
/// way and not yet reclaimed. So one descriptor never has two owners, even in simulation.
pub struct SimFd {
    number: Fd,
    net: Weak<RefCell<NetState>>,
}

impl SimFd {
    pub(crate) fn new(number: Fd, net: &Rc<RefCell<NetState>>) -> SimFd {
        SimFd {
            number,
            net: Rc::downgrade(net),
        }
    }

    /// The descriptor's number, for logs and assertions.
    pub fn number(&self) -> i32 {
        self.number
    }

    /// Gives up ownership without closing, like `IntoRawFd::into_raw_fd`: the descriptor stays
    /// open under its number until [`SimNet::reclaim_fd`](crate::SimNet::reclaim_fd) takes it
    /// back. For code that hands descriptors across a C boundary.
    pub fn into_number(self) -> i32 {
        let number = self.number;
        if let Some(net) = self.net.upgrade() {
            net.borrow_mut().released.insert(number);
        }
        self.disarm();
        number
    }

    /// Whether this descriptor belongs to the network `net`.
    pub(crate) fn is_of(&self, net: &Rc<RefCell<NetState>>) -> bool {
        std::ptr::eq(self.net.as_ptr(), Rc::as_ptr(net))
    }

    /// The number, with the drop-time close turned off (the caller closes or keeps it).
    pub(crate) fn disarm(mut self) -> Fd {
        let number = self.number;
        self.number = -1;
        number
    }
}

/// Dropping an owned descriptor closes it, as `OwnedFd` does.
impl Drop for SimFd {
    fn drop(&mut self) {
        if self.number < 0 {
            return;
        }
        if let Some(net) = self.net.upgrade() {
            // The simulation never holds its state borrowed while a `SimFd` is dropped; if that
            // ever changed, the descriptor would show up as leaked in `SimNet::open_fds`.
            if let Ok(mut s) = net.try_borrow_mut() {
                s.close_fd(self.number);
            }
        }
    }
}

impl fmt::Debug for SimFd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SimFd({})", self.number)
    }
}

/// Two handles are equal when they name the same descriptor of the same network.
impl PartialEq for SimFd {
    fn eq(&self, other: &SimFd) -> bool {
        self.number == other.number && Weak::ptr_eq(&self.net, &other.net)
    }
}

impl Eq for SimFd {}
