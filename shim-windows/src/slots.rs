//! The registrations of one shim and the life of their AFD poll requests. Pure: the OS calls
//! go through [`PollIo`], so the state machine is tested on every host with a fake.
//!
//! Each registered socket has a slot, and each slot has at most one poll request in flight.
//! A poll is one-shot: it completes once, the event goes to core, and the slot waits in the
//! re-arm queue until the next [`Slots::rearm`] (at the start of the next `wait`) issues a new
//! poll with the interest of that moment. While the condition holds (unread bytes, a pending
//! connection), the new poll completes at once, so core sees the socket again on every wait:
//! level-triggered, as core's contract requires.
//!
//! A slot's memory for its request (`IO_STATUS_BLOCK` and poll buffer, kept by the
//! [`PollIo`]) belongs to the request until its completion is dequeued. So a slot whose
//! socket is closed or deregistered while a poll is in flight is *orphaned*: the poll is
//! cancelled, and the slot is freed only when that completion arrives. A slot index is
//! therefore never reused while the OS may still write for its previous owner, and a late
//! completion can only ever find its own orphan.

use std::collections::HashMap;

use usockets_core::{ErrorKind, Event, Interest, Token};

use crate::error::{code, wsa_of_status, WindowsError};
use crate::readiness::{event_for, mask_for, AFD_POLL_ABORT, AFD_POLL_CONNECT_FAIL};

/// The OS side of a poll request, one per slot index.
pub(crate) trait PollIo {
    /// Issues a poll for slot `index` on the base socket `base`, waiting for `mask`. `Ok`
    /// promises exactly one completion for `index` later, whatever happens to the socket.
    fn submit(&mut self, index: usize, base: usize, mask: u32) -> Result<(), WindowsError>;
    /// Asks the poll in flight for `index` to complete now. Its completion still arrives (as
    /// cancelled, or with events if it won the race).
    fn cancel(&mut self, index: usize);
}

/// How a poll request ended, as read from its `IO_STATUS_BLOCK` and poll buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// It completed with these AFD events; `connect_status` is the handle's `NTSTATUS`
    /// (why a connect failed, with `AFD_POLL_CONNECT_FAIL`).
    Events { events: u32, connect_status: i32 },
    /// It was cancelled before anything happened.
    Cancelled,
    /// It failed with this Win32 code (e.g. the socket is no longer valid).
    Failed(i32),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Unused, on the free list.
    Free,
    /// Registered, no poll in flight (queued for one, or read-shut).
    Idle,
    /// A poll for this mask is in flight.
    Pending(u32),
    /// A poll is in flight and was cancelled because the interest changed; re-armed when its
    /// completion arrives.
    Cancelling,
    /// The socket is gone but its poll is still in flight; freed when the completion arrives.
    Orphan,
}

#[derive(Debug)]
struct Slot {
    socket: usize,
    base: usize,
    token: Token,
    interest: Interest,
    state: State,
    /// In the re-arm queue (at most once).
    queued: bool,
    /// `shutdown_read` was called: reads see EOF from now on.
    read_shut: bool,
    /// The socket's error as the poll reported it (a failed connect, a reset), until
    /// `connect_result` takes it: Winsock may leave `SO_ERROR` at 0 for both.
    pending_error: Option<i32>,
}

/// Every registration of one shim: slots by index (the poll's completion context) and by
/// socket.
#[derive(Debug, Default)]
pub(crate) struct Slots {
    slots: Vec<Slot>,
    free: Vec<usize>,
    by_socket: HashMap<usize, usize>,
    rearm: Vec<usize>,
    /// Polls issued whose completion has not been dequeued yet.
    in_flight: usize,
    /// Read-shut slots: while none is, `recv` asks nothing more.
    read_shut: usize,
}

impl Slots {
    /// Starts watching `socket` (polled through `base`). Registering a registered socket
    /// changes its token and interest, as [`modify`](Self::modify) does.
    pub(crate) fn register(
        &mut self,
        io: &mut impl PollIo,
        socket: usize,
        base: usize,
        token: Token,
        interest: Interest,
    ) {
        if self.by_socket.contains_key(&socket) {
            let _ = self.modify(io, socket, token, interest);
            return;
        }
        let slot = Slot {
            socket,
            base,
            token,
            interest,
            state: State::Idle,
            queued: false,
            read_shut: false,
            pending_error: None,
        };
        let index = match self.free.pop() {
            Some(i) => {
                // A freed slot keeps its place in the queue, if it had one.
                let queued = self.slots[i].queued;
                self.slots[i] = Slot { queued, ..slot };
                i
            }
            None => {
                self.slots.push(slot);
                self.slots.len() - 1
            }
        };
        self.by_socket.insert(socket, index);
        self.queue(index);
    }

    /// Changes the token and interest of a registered socket. A poll in flight for another
    /// mask is cancelled and re-issued once its completion arrives.
    pub(crate) fn modify(
        &mut self,
        io: &mut impl PollIo,
        socket: usize,
        token: Token,
        interest: Interest,
    ) -> Result<(), WindowsError> {
        let index = *self
            .by_socket
            .get(&socket)
            .ok_or_else(WindowsError::invalid)?;
        let slot = &mut self.slots[index];
        slot.token = token;
        slot.interest = interest;
        match slot.state {
            State::Idle => self.queue(index),
            State::Pending(mask) if mask != mask_for(interest) => {
                slot.state = State::Cancelling;
                io.cancel(index);
            }
            _ => {}
        }
        Ok(())
    }

    /// Stops watching `socket` (deregistered or about to be closed). Whether it was
    /// registered.
    pub(crate) fn remove(&mut self, io: &mut impl PollIo, socket: usize) -> bool {
        let Some(index) = self.by_socket.remove(&socket) else {
            return false;
        };
        let slot = &mut self.slots[index];
        match slot.state {
            State::Pending(_) => {
                slot.state = State::Orphan;
                io.cancel(index);
            }
            State::Cancelling => slot.state = State::Orphan,
            _ => self.release(index),
        }
        true
    }

    /// Marks `socket` read-shut (`shutdown_read`): it reads as EOF from now on, reported
    /// readable on every wait while readable interest is set (Windows itself signals nothing
    /// after `shutdown(SD_RECEIVE)`). A poll in flight is cancelled, so that the report does
    /// not wait for it to complete (it might never, on a quiet connection).
    pub(crate) fn shut_read(&mut self, io: &mut impl PollIo, socket: usize) {
        let Some(&index) = self.by_socket.get(&socket) else {
            return;
        };
        let slot = &mut self.slots[index];
        if !slot.read_shut {
            slot.read_shut = true;
            self.read_shut += 1;
        }
        match slot.state {
            State::Pending(_) if slot.interest.is_readable() => {
                slot.state = State::Cancelling;
                io.cancel(index);
            }
            State::Idle => self.queue(index),
            _ => {}
        }
    }

    /// Whether `socket` is read-shut.
    #[inline]
    pub(crate) fn is_read_shut(&self, socket: usize) -> bool {
        self.read_shut > 0
            && self
                .by_socket
                .get(&socket)
                .is_some_and(|&i| self.slots[i].read_shut)
    }

    /// Takes the error the poll reported for `socket` (a failed connect, a reset).
    pub(crate) fn take_error(&mut self, socket: usize) -> Option<i32> {
        let &index = self.by_socket.get(&socket)?;
        self.slots[index].pending_error.take()
    }

    /// Issues a poll for every queued slot, with its interest of now. Fills `events` from
    /// `*n` with what needs no poll (a read-shut socket under readable interest) or could not
    /// be polled (an error event); slots that find no room stay queued.
    pub(crate) fn rearm(&mut self, io: &mut impl PollIo, events: &mut [Event], n: &mut usize) {
        let mut kept = 0;
        for q in 0..self.rearm.len() {
            let index = self.rearm[q];
            let slot = &mut self.slots[index];
            if slot.state != State::Idle {
                slot.queued = false;
                continue;
            }
            let report = slot.read_shut && slot.interest.is_readable();
            if report {
                // Level-triggered EOF: reported again next wait, while it holds.
                if *n == events.len() {
                    self.rearm[kept] = index;
                    kept += 1;
                    continue;
                }
                // Writable too where asked for, since no poll says so meanwhile (spurious
                // readiness is allowed; a write that would block just reports so).
                events[*n] = Event::new(slot.token)
                    .with_readable(true)
                    .with_writable(slot.interest.is_writable());
                *n += 1;
                self.rearm[kept] = index;
                kept += 1;
                continue;
            }
            match io.submit(index, slot.base, mask_for(slot.interest)) {
                Ok(()) => {
                    slot.state = State::Pending(mask_for(slot.interest));
                    slot.queued = false;
                    self.in_flight += 1;
                }
                // Out of kernel memory for now: the poll is tried again next wait, and the
                // connection is not closed for it.
                Err(e) if e.kind == ErrorKind::OutOfMemory => {
                    self.rearm[kept] = index;
                    kept += 1;
                }
                Err(_) if *n < events.len() => {
                    // The socket cannot be polled (it is no longer valid): core closes it.
                    events[*n] = Event::new(slot.token).with_error(true).with_hangup(true);
                    *n += 1;
                    slot.queued = false;
                }
                Err(_) => {
                    self.rearm[kept] = index;
                    kept += 1;
                }
            }
        }
        self.rearm.truncate(kept);
    }

    /// The completion of slot `index`'s poll: the event for core, if any. Frees an orphan;
    /// queues any other slot for its next poll.
    pub(crate) fn complete(&mut self, index: usize, outcome: Outcome) -> Option<Event> {
        let slot = self.slots.get_mut(index)?;
        let was = slot.state;
        if !matches!(was, State::Pending(_) | State::Cancelling | State::Orphan) {
            // Not ours to account for (cannot happen: one poll per slot in flight).
            return None;
        }
        self.in_flight -= 1;
        if was == State::Orphan {
            self.release(index);
            return None;
        }
        let slot = &mut self.slots[index];
        slot.state = State::Idle;
        let event = match outcome {
            Outcome::Cancelled => None,
            Outcome::Failed(_) => Some(Event::new(slot.token).with_error(true).with_hangup(true)),
            Outcome::Events {
                events,
                connect_status,
            } => {
                if events & AFD_POLL_CONNECT_FAIL != 0 {
                    slot.pending_error = Some(wsa_of_status(connect_status, code::WSAECONNREFUSED));
                } else if events & AFD_POLL_ABORT != 0 {
                    slot.pending_error = Some(wsa_of_status(connect_status, code::WSAECONNRESET));
                }
                event_for(slot.token, events, slot.interest)
            }
        };
        self.queue(index);
        event
    }

    /// Cancels every poll in flight (the shim is being dropped); their completions still
    /// have to be drained.
    pub(crate) fn cancel_all(&mut self, io: &mut impl PollIo) {
        for (index, slot) in self.slots.iter_mut().enumerate() {
            if let State::Pending(_) = slot.state {
                slot.state = State::Cancelling;
                io.cancel(index);
            }
        }
    }

    /// Polls issued whose completion has not been dequeued.
    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// How many sockets are registered.
    #[cfg(test)]
    fn registered(&self) -> usize {
        self.by_socket.len()
    }

    fn queue(&mut self, index: usize) {
        let slot = &mut self.slots[index];
        if !slot.queued {
            slot.queued = true;
            self.rearm.push(index);
        }
    }

    fn release(&mut self, index: usize) {
        let slot = &mut self.slots[index];
        slot.state = State::Free;
        slot.socket = usize::MAX;
        if slot.read_shut {
            slot.read_shut = false;
            self.read_shut -= 1;
        }
        self.free.push(index);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::readiness::{AFD_POLL_ABORT, AFD_POLL_RECEIVE, AFD_POLL_SEND};

    /// Records what the state machine asks of the OS.
    #[derive(Default)]
    struct FakeIo {
        submitted: Vec<(usize, usize, u32)>,
        cancelled: Vec<usize>,
        fail: bool,
    }

    impl PollIo for FakeIo {
        fn submit(&mut self, index: usize, base: usize, mask: u32) -> Result<(), WindowsError> {
            if self.fail {
                return Err(WindowsError::invalid());
            }
            self.submitted.push((index, base, mask));
            Ok(())
        }
        fn cancel(&mut self, index: usize) {
            self.cancelled.push(index);
        }
    }

    fn rearm(s: &mut Slots, io: &mut FakeIo) -> Vec<Event> {
        let mut events = [Event::EMPTY; 8];
        let mut n = 0;
        s.rearm(io, &mut events, &mut n);
        events[..n].to_vec()
    }

    const DATA: Outcome = Outcome::Events {
        events: AFD_POLL_RECEIVE,
        connect_status: 0,
    };

    #[test]
    fn a_poll_per_wait_while_the_condition_holds() {
        let (mut s, mut io) = (Slots::default(), FakeIo::default());
        s.register(&mut io, 100, 101, Token(1), Interest::READABLE);
        assert!(rearm(&mut s, &mut io).is_empty());
        assert_eq!(io.submitted, vec![(0, 101, mask_for(Interest::READABLE))]);
        // Nothing is issued twice while one is in flight.
        rearm(&mut s, &mut io);
        assert_eq!(io.submitted.len(), 1);
        let ev = s.complete(0, DATA).expect("readable");
        assert!(ev.readable() && ev.token == Token(1));
        // Re-armed on the next wait: level-triggered as core sees it.
        rearm(&mut s, &mut io);
        assert_eq!(io.submitted.len(), 2);
        assert_eq!(s.in_flight(), 1);
    }

    #[test]
    fn an_interest_change_cancels_and_reissues_the_poll() {
        let (mut s, mut io) = (Slots::default(), FakeIo::default());
        s.register(&mut io, 100, 100, Token(1), Interest::READABLE);
        rearm(&mut s, &mut io);
        // The same mask: nothing to do.
        s.modify(&mut io, 100, Token(1), Interest::READABLE)
            .unwrap();
        assert!(io.cancelled.is_empty());
        s.modify(&mut io, 100, Token(2), Interest::BOTH).unwrap();
        assert_eq!(io.cancelled, vec![0]);
        // No new poll before the cancelled one completes (one in flight per slot).
        rearm(&mut s, &mut io);
        assert_eq!(io.submitted.len(), 1);
        assert_eq!(s.complete(0, Outcome::Cancelled), None);
        rearm(&mut s, &mut io);
        assert_eq!(io.submitted[1], (0, 100, mask_for(Interest::BOTH)));
    }

    #[test]
    fn a_completion_racing_a_cancel_reports_only_the_current_interest() {
        let (mut s, mut io) = (Slots::default(), FakeIo::default());
        s.register(&mut io, 100, 100, Token(1), Interest::READABLE);
        rearm(&mut s, &mut io);
        // Paused (no interest) while the readable poll completes with data anyway.
        s.modify(&mut io, 100, Token(1), Interest::NONE).unwrap();
        assert_eq!(
            s.complete(0, DATA),
            None,
            "a paused socket is never readable"
        );
        let reset = Outcome::Events {
            events: AFD_POLL_ABORT,
            connect_status: 0,
        };
        rearm(&mut s, &mut io);
        let ev = s.complete(0, reset).expect("errors whatever the interest");
        assert!(ev.error() && ev.hangup() && !ev.readable());
    }

    #[test]
    fn a_closed_socket_keeps_its_slot_until_the_late_completion() {
        let (mut s, mut io) = (Slots::default(), FakeIo::default());
        s.register(&mut io, 100, 100, Token(1), Interest::READABLE);
        rearm(&mut s, &mut io);
        assert!(s.remove(&mut io, 100));
        assert_eq!(io.cancelled, vec![0]);
        assert_eq!(s.registered(), 0);
        // A new socket while the old poll is in flight gets another slot.
        s.register(&mut io, 200, 200, Token(2), Interest::READABLE);
        rearm(&mut s, &mut io);
        assert_eq!(io.submitted[1].0, 1, "slot 0 is still the orphan's");
        // The late completion of the orphan reports nothing and frees slot 0.
        assert_eq!(s.complete(0, DATA), None);
        assert_eq!(s.in_flight(), 1);
        s.register(&mut io, 300, 300, Token(3), Interest::WRITABLE);
        rearm(&mut s, &mut io);
        assert_eq!(io.submitted[2], (0, 300, mask_for(Interest::WRITABLE)));
        let ev = s
            .complete(
                0,
                Outcome::Events {
                    events: AFD_POLL_SEND,
                    connect_status: 0,
                },
            )
            .unwrap();
        assert_eq!(ev.token, Token(3), "the reused slot reports its new owner");
    }

    #[test]
    fn an_idle_socket_is_freed_at_once() {
        let (mut s, mut io) = (Slots::default(), FakeIo::default());
        s.register(&mut io, 100, 100, Token(1), Interest::READABLE);
        assert!(s.remove(&mut io, 100));
        assert!(!s.remove(&mut io, 100), "removed once");
        assert!(rearm(&mut s, &mut io).is_empty());
        assert!(io.submitted.is_empty() && io.cancelled.is_empty());
        assert_eq!(s.in_flight(), 0);
    }

    #[test]
    fn a_failed_connect_is_kept_for_connect_result() {
        let (mut s, mut io) = (Slots::default(), FakeIo::default());
        s.register(&mut io, 100, 100, Token(1), Interest::WRITABLE);
        rearm(&mut s, &mut io);
        let refused = Outcome::Events {
            events: AFD_POLL_CONNECT_FAIL,
            connect_status: 0xC000_0236_u32 as i32,
        };
        let ev = s.complete(0, refused).unwrap();
        assert!(ev.error() && ev.writable());
        assert_eq!(s.take_error(100), Some(10061), "WSAECONNREFUSED");
        assert_eq!(s.take_error(100), None, "taken once");
    }

    #[test]
    fn a_read_shut_socket_is_readable_on_every_wait_without_a_poll() {
        let (mut s, mut io) = (Slots::default(), FakeIo::default());
        s.register(&mut io, 100, 100, Token(1), Interest::READABLE);
        s.shut_read(&mut io, 100);
        assert!(s.is_read_shut(100));
        for _ in 0..3 {
            let evs = rearm(&mut s, &mut io);
            assert_eq!(evs.len(), 1);
            assert!(evs[0].readable());
        }
        assert!(io.submitted.is_empty());
        // Without readable interest it is polled as usual (for errors).
        s.modify(&mut io, 100, Token(1), Interest::NONE).unwrap();
        assert!(rearm(&mut s, &mut io).is_empty());
        assert_eq!(io.submitted.len(), 1);
    }

    #[test]
    fn shutting_reads_with_a_poll_in_flight_reports_eof_without_waiting_for_it() {
        let (mut s, mut io) = (Slots::default(), FakeIo::default());
        s.register(&mut io, 100, 100, Token(1), Interest::BOTH);
        rearm(&mut s, &mut io);
        s.shut_read(&mut io, 100);
        assert_eq!(
            io.cancelled,
            vec![0],
            "the quiet poll in flight is cancelled"
        );
        assert_eq!(s.complete(0, Outcome::Cancelled), None);
        let evs = rearm(&mut s, &mut io);
        assert_eq!(evs.len(), 1);
        assert!(
            evs[0].readable() && evs[0].writable(),
            "EOF, and writable as asked"
        );
        assert_eq!(io.submitted.len(), 1, "no poll while EOF is reported");
    }

    #[test]
    fn a_reset_is_kept_for_connect_result() {
        let (mut s, mut io) = (Slots::default(), FakeIo::default());
        s.register(&mut io, 100, 100, Token(1), Interest::NONE);
        rearm(&mut s, &mut io);
        let reset = Outcome::Events {
            events: AFD_POLL_ABORT,
            connect_status: 0,
        };
        assert!(s.complete(0, reset).unwrap().hangup());
        assert_eq!(s.take_error(100), Some(10054), "WSAECONNRESET");
    }

    #[test]
    fn a_poll_refused_for_want_of_memory_is_retried_not_failed() {
        struct NoMemory;
        impl PollIo for NoMemory {
            fn submit(&mut self, _: usize, _: usize, _: u32) -> Result<(), WindowsError> {
                Err(WindowsError::new(ErrorKind::OutOfMemory, 1450))
            }
            fn cancel(&mut self, _: usize) {}
        }
        let mut s = Slots::default();
        s.register(&mut NoMemory, 100, 100, Token(1), Interest::READABLE);
        for _ in 0..2 {
            let mut events = [Event::EMPTY; 4];
            let mut n = 0;
            s.rearm(&mut NoMemory, &mut events, &mut n);
            assert_eq!(n, 0, "no error event: the connection is not closed for it");
        }
        let mut io = FakeIo::default();
        rearm(&mut s, &mut io);
        assert_eq!(
            io.submitted.len(),
            1,
            "still queued, issued once memory is back"
        );
    }

    #[test]
    fn a_socket_that_cannot_be_polled_gets_an_error_event() {
        let (mut s, mut io) = (Slots::default(), FakeIo::default());
        io.fail = true;
        s.register(&mut io, 100, 100, Token(9), Interest::READABLE);
        let evs = rearm(&mut s, &mut io);
        assert_eq!(evs.len(), 1);
        assert!(evs[0].error() && evs[0].hangup() && evs[0].token == Token(9));
        assert_eq!(s.in_flight(), 0);
    }

    #[test]
    fn events_that_find_no_room_wait_for_the_next_call() {
        let (mut s, mut io) = (Slots::default(), FakeIo::default());
        io.fail = true;
        for sock in 0..3 {
            s.register(&mut io, sock, sock, Token(sock as u64), Interest::READABLE);
        }
        let mut events = [Event::EMPTY; 2];
        let mut n = 0;
        s.rearm(&mut io, &mut events, &mut n);
        assert_eq!(n, 2);
        let mut n = 0;
        s.rearm(&mut io, &mut events, &mut n);
        assert_eq!(n, 1);
        assert_eq!(events[0].token, Token(2));
    }

    #[test]
    fn drop_cancels_everything_in_flight() {
        let (mut s, mut io) = (Slots::default(), FakeIo::default());
        for sock in 0..3 {
            s.register(&mut io, sock, sock, Token(sock as u64), Interest::READABLE);
        }
        rearm(&mut s, &mut io);
        s.cancel_all(&mut io);
        assert_eq!(io.cancelled, vec![0, 1, 2]);
        for i in 0..3 {
            assert_eq!(s.complete(i, Outcome::Cancelled), None);
        }
        assert_eq!(s.in_flight(), 0);
    }
}
