//! The model's vectors, kept from one run to the next (emptied) so that a run does not allocate
//! them again: fresh vectors for every input cost more than the work they hold (far more under
//! AddressSanitizer, where every allocation records a stack trace and freed blocks are
//! quarantined: `FUZZ_BUILD=""` builds that way).

use std::cell::RefCell;
use std::mem::take;

use usockets_core::SocketId;
use usockets_shim_sim::SimFd;

use crate::model::{Ctx, Ends, Lis, Peer, Pol, Tmr, World};
use crate::streams::Stream;

/// The vectors of a [`World`], empty, with the room they grew to.
#[derive(Default)]
pub(crate) struct Spare {
    pub(crate) released: Vec<SocketId>,
    pub(crate) streams: Vec<Stream>,
    pub(crate) peers: Vec<Peer>,
    pub(crate) ctxs: Vec<Ctx>,
    pub(crate) lis: Vec<Lis>,
    pub(crate) timers: Vec<Tmr>,
    pub(crate) polls: Vec<Pol>,
    pub(crate) ends: Vec<Ends>,
    pub(crate) taken: Vec<SimFd>,
    pub(crate) in_connect_error: Vec<SocketId>,
    pub(crate) chunk: Vec<u8>,
}

thread_local! {
    /// One set per thread: libFuzzer runs inputs one after the other on one thread; parallel
    /// tests each have their own.
    static SPARE: RefCell<Spare> = RefCell::new(Spare::default());
}

impl Spare {
    /// The vectors the last run on this thread left (new ones the first time, or after a run
    /// that panicked).
    pub(crate) fn take() -> Spare {
        SPARE.with(|s| take(&mut *s.borrow_mut()))
    }
}

impl World {
    /// Empties the model's vectors and keeps them for the next run on this thread. Dropping the
    /// descriptors still held (none after draining) closes them.
    pub(crate) fn recycle(&mut self) {
        fn emptied<T>(v: &mut Vec<T>) -> Vec<T> {
            let mut v = take(v);
            v.clear();
            v
        }
        let spare = Spare {
            released: emptied(&mut self.released),
            streams: emptied(&mut self.streams),
            peers: emptied(&mut self.peers),
            ctxs: emptied(&mut self.ctxs),
            lis: emptied(&mut self.lis),
            timers: emptied(&mut self.timers),
            polls: emptied(&mut self.polls),
            ends: emptied(&mut self.ends),
            taken: emptied(&mut self.taken),
            in_connect_error: emptied(&mut self.in_connect_error),
            chunk: emptied(&mut self.chunk),
        };
        SPARE.with(|s| *s.borrow_mut() = spare);
    }
}
