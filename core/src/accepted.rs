//! What `on_pre_open` gets: an accepted descriptor it may borrow or take.

/// A just-accepted connection's descriptor, offered to `on_pre_open` before the library
/// adopts it. Borrow it with [`fd`](Accepted::fd); [`take`](Accepted::take) it to own it (the
/// library then forgets the connection: no socket, no `on_open`).
#[derive(Debug)]
pub struct Accepted<F> {
    fd: Option<F>,
}

impl<F> Accepted<F> {
    pub(crate) fn new(fd: F) -> Self {
        Accepted { fd: Some(fd) }
    }
    /// The descriptor, borrowed; `None` once taken.
    pub fn fd(&self) -> Option<&F> {
        self.fd.as_ref()
    }
    /// Takes the descriptor: the caller owns it now (dropping it closes it).
    pub fn take(&mut self) -> Option<F> {
        self.fd.take()
    }
    /// Whether the descriptor was taken.
    pub fn is_taken(&self) -> bool {
        self.fd.is_none()
    }
}
