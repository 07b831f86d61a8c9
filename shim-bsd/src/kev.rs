//! The kqueue logic, apart from the FFI: change lists built from core's interest, receipts
//! checked, returned kevents turned into core events. Portable values in, portable values
//! out ([`Kev`]), so that it is tested on any host, Linux included; `kqueue.rs` maps them to
//! and from the OS's `struct kevent`.
//!
//! Quotations are from kqueue(2) of FreeBSD 14 unless said otherwise; macOS, NetBSD,
//! OpenBSD and DragonFly say the same for what is used here.

use usockets_core::{Event, Interest, Token};

/// A kevent's filter. The OS's `EVFILT_*` values are small negative numbers (positive ones
/// on NetBSD), identifiers rather than bits: the FFI compares them with `==`, never masks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Filter {
    /// `EVFILT_READ`.
    Read,
    /// `EVFILT_WRITE`.
    Write,
    /// `EVFILT_USER`: the waker, where the OS has it.
    User,
    /// Any other filter: never registered by this shim, ignored if seen.
    Other,
}

/// The `EV_*` flags the shim uses, in a portable form.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Flags(u8);

impl Flags {
    /// `EV_ADD`.
    pub(crate) const ADD: Flags = Flags(1);
    /// `EV_DELETE`.
    pub(crate) const DELETE: Flags = Flags(1 << 1);
    /// `EV_ENABLE`.
    pub(crate) const ENABLE: Flags = Flags(1 << 2);
    /// `EV_DISABLE`.
    pub(crate) const DISABLE: Flags = Flags(1 << 3);
    /// `EV_RECEIPT`.
    pub(crate) const RECEIPT: Flags = Flags(1 << 4);
    /// `EV_CLEAR`.
    pub(crate) const CLEAR: Flags = Flags(1 << 5);
    /// `EV_EOF`.
    pub(crate) const EOF: Flags = Flags(1 << 6);
    /// `EV_ERROR`.
    pub(crate) const ERROR: Flags = Flags(1 << 7);

    /// No flag.
    pub(crate) const NONE: Flags = Flags(0);

    /// Both sets of flags.
    pub(crate) const fn with(self, other: Flags) -> Flags {
        Flags(self.0 | other.0)
    }

    /// Whether every flag of `other` is set.
    pub(crate) const fn has(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }
}

/// One `struct kevent`, portable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Kev {
    /// The descriptor (or the user event's number).
    pub(crate) ident: usize,
    /// The filter.
    pub(crate) filter: Filter,
    /// The flags.
    pub(crate) flags: Flags,
    /// Filter-specific flags: with `EV_EOF` on a socket, its pending error.
    pub(crate) fflags: u32,
    /// Filter-specific data: the bytes to read or the room to write; for `EV_ERROR`, the
    /// error number.
    pub(crate) data: i64,
    /// The token core registered the descriptor with (kept in `udata`).
    pub(crate) udata: u64,
}

impl Kev {
    /// A change of `filter` on `ident` with `flags`, carrying `token`.
    pub(crate) const fn change(ident: usize, filter: Filter, flags: Flags, token: Token) -> Kev {
        Kev {
            ident,
            filter,
            flags,
            fflags: 0,
            data: 0,
            udata: token.0,
        }
    }
}

/// The changes that give `ident` exactly `interest` under `token` (always [`CHANGES`]).
///
/// * The read filter is deleted and added again ("EV_DELETE: Removes the event from the
///   kqueue"; `ENOENT` when it was not there, which [`check_receipts`] accepts), since an
///   existing filter does not pick up a change of `EV_CLEAR`: level-triggered with readable
///   interest, as core requires; without it, with `EV_CLEAR`, a watch that reports only a
///   socket error (see [`translate`]), as epoll reports `EPOLLERR` whatever the interest.
/// * The write filter is added and enabled when wanted ("EV_ADD: ... Re-adding an existing
///   event will modify the parameters of the original event"), deleted when not, so that a
///   descriptor never carries a filter it may refuse (a listening socket, a pipe's read end).
///
/// A change needs no memory of the previous interest. `EV_RECEIPT` makes each change report
/// its own result ("useful for making bulk changes to a kqueue without draining any pending
/// events").
pub(crate) fn interest_changes(ident: usize, token: Token, interest: Interest) -> [Kev; CHANGES] {
    let add = Flags::ADD.with(Flags::ENABLE).with(Flags::RECEIPT);
    let delete = Flags::DELETE.with(Flags::RECEIPT);
    let read = if interest.is_readable() {
        add
    } else {
        add.with(Flags::CLEAR)
    };
    let write = if interest.is_writable() { add } else { delete };
    [
        Kev::change(ident, Filter::Read, delete, token),
        Kev::change(ident, Filter::Read, read, token),
        Kev::change(ident, Filter::Write, write, token),
    ]
}

/// How many changes [`interest_changes`] makes.
pub(crate) const CHANGES: usize = 3;

/// The changes that remove `ident`'s filters ("Events which are attached to file descriptors
/// are automatically deleted on the last close of the descriptor": only needed for a
/// descriptor that stays open).
pub(crate) fn removal_changes(ident: usize) -> [Kev; 2] {
    let delete = Flags::DELETE.with(Flags::RECEIPT);
    [
        Kev::change(ident, Filter::Read, delete, Token(0)),
        Kev::change(ident, Filter::Write, delete, Token(0)),
    ]
}

/// What a change list's receipts say: the first error number, if any change failed.
///
/// "When EV_RECEIPT is passed in, the kevent will always be returned with EV_ERROR set and
/// data set to the error number, or 0 on success." The kernel processes the change list in
/// order and returns one receipt per change in that order, so receipts are matched to
/// changes by position (the kernel may return a receipt with only `EV_ERROR` in its flags,
/// and one filter may have two changes). `ENOENT` for a deletion ("The event could not be
/// found to be modified or deleted") is no failure: the filter was not there. A kevent
/// without `EV_ERROR` is not a receipt and is skipped. Fewer receipts than changes, or a
/// receipt for another filter than its change's, is a failure (`eio`).
pub(crate) fn check_receipts(
    receipts: &[Kev],
    changes: &[Kev],
    enoent: i32,
    eio: i32,
) -> Result<(), i32> {
    let mut receipts = receipts.iter().filter(|r| r.flags.has(Flags::ERROR));
    for change in changes {
        let Some(r) = receipts.next() else {
            return Err(eio);
        };
        if (r.ident, r.filter) != (change.ident, change.filter) {
            return Err(eio);
        }
        let code = i32::try_from(r.data).unwrap_or(eio);
        let absent = change.flags.has(Flags::DELETE) && code == enoent;
        if code != 0 && !absent {
            return Err(code);
        }
    }
    Ok(())
}

/// How far back [`translate`] looks for an event of the same token to merge with: the
/// read and write kevents of one descriptor come out near each other when both are ready,
/// and a bounded look keeps a large batch linear. Two kevents of one descriptor farther apart
/// make two core events, which core handles as it would the same readiness reported by two
/// waits.
pub(crate) const MERGE_WINDOW: usize = 16;

/// Turns the kevents a wait returned into core events, in `out`, from the front; returns how
/// many, and whether the waker's token was among them.
///
/// * `EVFILT_READ` → readable. With `EV_EOF` ("the filter also sets EV_EOF when the read
///   direction of the socket has shutdown", "it is possible for EOF to be returned (indicating
///   the connection is gone) while there is still data pending in the socket buffer") it is
///   still readable: core reads the pending data first, then 0, then runs `on_end`; never a
///   hang-up. If `fflags` is non-zero ("If the read direction of the socket has shutdown,
///   then the filter also sets EV_EOF in flags, and returns the socket error (if any) in
///   fflags") it is also an error.
/// * `EVFILT_WRITE` → writable. With `EV_EOF` ("when the reader disconnects") and a non-zero
///   `fflags` it is also an error (a refused connect shows up this way); without one the next
///   write reports what happened.
/// * `EV_ERROR` on a returned event → an error on its token.
/// * The `EV_CLEAR` read filter of a descriptor without readable interest (the kevent comes
///   back with `EV_CLEAR` in its flags) → an error event if it carries a socket error
///   (`EV_EOF` with `fflags`), nothing otherwise: data or a plain FIN wait for readable
///   interest, as with epoll.
/// * `EVFILT_USER`, or any kevent carrying the waker's token → one readable
///   [`Token::WAKER`] event.
/// * The read and write kevents of one token are merged into one event (within
///   [`MERGE_WINDOW`]).
pub(crate) fn translate(kevs: &[Kev], out: &mut [Event]) -> (usize, bool) {
    let mut n = 0;
    let mut woken = false;
    for k in kevs {
        let token = Token(k.udata);
        if k.filter == Filter::User || token == Token::WAKER {
            if !woken && n < out.len() {
                out[n] = Event::new(Token::WAKER).with_readable(true);
                n += 1;
            }
            woken = true;
            continue;
        }
        let eof_error = k.flags.has(Flags::EOF) && k.fflags != 0;
        let error = k.flags.has(Flags::ERROR) || eof_error;
        let (readable, writable) = match k.filter {
            // The watch of a descriptor without readable interest: only its error counts.
            Filter::Read if k.flags.has(Flags::CLEAR) => {
                if !error {
                    continue;
                }
                (false, false)
            }
            Filter::Read => (true, false),
            Filter::Write => (false, true),
            Filter::User | Filter::Other => continue,
        };
        let start = n.saturating_sub(MERGE_WINDOW);
        let slot = match out[start..n].iter().rposition(|e| e.token == token) {
            Some(i) => start + i,
            None if n < out.len() => {
                out[n] = Event::new(token);
                n += 1;
                n - 1
            }
            // No room: the level-triggered filter reports it again at the next wait.
            None => continue,
        };
        let e = &mut out[slot];
        *e = e
            .with_readable(e.readable() || readable)
            .with_writable(e.writable() || writable)
            .with_error(e.error() || error);
    }
    (n, woken)
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Token = Token(0x42);
    const U: Token = Token(0x43);
    const ENOENT: i32 = 2;
    const EIO: i32 = 5;
    const ECONNRESET: i32 = 54;
    const ECONNREFUSED: i32 = 61;

    fn kev(filter: Filter, flags: Flags, fflags: u32, data: i64, token: Token) -> Kev {
        Kev {
            ident: 7,
            filter,
            flags,
            fflags,
            data,
            udata: token.0,
        }
    }

    fn one(k: Kev) -> Vec<Event> {
        let mut out = [Event::new(Token(0)); 8];
        let (n, _) = translate(&[k], &mut out);
        out[..n].to_vec()
    }

    /// Each row: (what the man page says, the kevent, the core event expected).
    #[test]
    fn single_kevents_become_the_documented_core_events() {
        let rows: [(&str, Kev, Event); 7] = [
            (
                "EVFILT_READ: returns whenever there is data available to read",
                kev(Filter::Read, Flags::NONE, 0, 12, T),
                Event::new(T).with_readable(true),
            ),
            (
                "EVFILT_WRITE: returns whenever it is possible to write",
                kev(Filter::Write, Flags::NONE, 0, 4096, T),
                Event::new(T).with_writable(true),
            ),
            (
                "EV_EOF with data pending: EOF returned while there is still data in the \
                 socket buffer: readable (the data first, then the FIN), never a hang-up",
                kev(Filter::Read, Flags::EOF, 0, 100, T),
                Event::new(T).with_readable(true),
            ),
            (
                "EV_EOF with nothing pending: the read direction has shut down: readable, so \
                 that core reads 0 and runs on_end",
                kev(Filter::Read, Flags::EOF, 0, 0, T),
                Event::new(T).with_readable(true),
            ),
            (
                "EV_EOF returns the socket error (if any) in fflags: ECONNRESET is an error \
                 (and readable, so pending data is read first)",
                kev(Filter::Read, Flags::EOF, ECONNRESET as u32, 0, T),
                Event::new(T).with_readable(true).with_error(true),
            ),
            (
                "EVFILT_WRITE with EV_EOF and ECONNREFUSED in fflags: a refused connect is an \
                 error (core reads it with connect_result)",
                kev(Filter::Write, Flags::EOF, ECONNREFUSED as u32, 0, T),
                Event::new(T).with_writable(true).with_error(true),
            ),
            (
                "EVFILT_WRITE with EV_EOF and no error: the reader disconnected; still \
                 writable, the next write tells",
                kev(Filter::Write, Flags::EOF, 0, 0, T),
                Event::new(T).with_writable(true),
            ),
        ];
        for (says, k, want) in rows {
            assert_eq!(one(k), vec![want], "{says}");
        }
    }

    #[test]
    fn an_ev_error_event_is_an_error_on_its_token() {
        // "If an error occurs while processing an element of the changelist and there is
        // enough room in the eventlist, then the event will be placed in the eventlist with
        // EV_ERROR set in flags and the system error in data."
        let got = one(kev(Filter::Read, Flags::ERROR, 0, i64::from(EIO), T));
        assert_eq!(
            got,
            vec![Event::new(T).with_readable(true).with_error(true)]
        );
    }

    #[test]
    fn read_and_write_kevents_of_one_descriptor_merge_into_one_event() {
        let kevs = [
            kev(Filter::Read, Flags::NONE, 0, 5, T),
            kev(Filter::Read, Flags::NONE, 0, 5, U),
            kev(Filter::Write, Flags::NONE, 0, 4096, T),
        ];
        let mut out = [Event::new(Token(0)); 8];
        let (n, woken) = translate(&kevs, &mut out);
        assert!(!woken);
        assert_eq!(
            &out[..n],
            &[
                Event::new(T).with_readable(true).with_writable(true),
                Event::new(U).with_readable(true),
            ]
        );
    }

    #[test]
    fn kevents_farther_apart_than_the_window_stay_separate_events() {
        let mut kevs = vec![kev(Filter::Read, Flags::NONE, 0, 1, T)];
        for i in 0..MERGE_WINDOW as u64 {
            kevs.push(kev(Filter::Read, Flags::NONE, 0, 1, Token(1000 + i)));
        }
        kevs.push(kev(Filter::Write, Flags::NONE, 0, 1, T));
        let mut out = [Event::new(Token(0)); 64];
        let (n, _) = translate(&kevs, &mut out);
        assert_eq!(n, MERGE_WINDOW + 2);
        assert_eq!(out[0], Event::new(T).with_readable(true));
        assert_eq!(out[n - 1], Event::new(T).with_writable(true));
    }

    #[test]
    fn the_waker_is_one_readable_waker_event() {
        // EVFILT_USER (its udata is the waker's token), and the pipe fallback (a read filter
        // registered under the waker's token), even both in one batch: one event.
        let kevs = [
            kev(Filter::User, Flags::NONE, 0, 0, Token::WAKER),
            kev(Filter::Read, Flags::NONE, 0, 1, T),
            kev(Filter::Read, Flags::NONE, 0, 1, Token::WAKER),
        ];
        let mut out = [Event::new(Token(0)); 8];
        let (n, woken) = translate(&kevs, &mut out);
        assert!(woken);
        assert_eq!(
            &out[..n],
            &[
                Event::new(Token::WAKER).with_readable(true),
                Event::new(T).with_readable(true),
            ]
        );
    }

    #[test]
    fn a_full_output_keeps_the_rest_for_the_next_wait() {
        let kevs = [
            kev(Filter::Read, Flags::NONE, 0, 1, T),
            kev(Filter::Read, Flags::NONE, 0, 1, U),
            kev(Filter::Write, Flags::NONE, 0, 1, T),
        ];
        let mut out = [Event::new(Token(0)); 1];
        let (n, _) = translate(&kevs, &mut out);
        assert_eq!(n, 1);
        // U had no room (reported again, level-triggered); T's write merged into its event.
        assert_eq!(
            out[0],
            Event::new(T).with_readable(true).with_writable(true)
        );
    }

    #[test]
    fn unknown_filters_are_ignored() {
        assert!(one(kev(Filter::Other, Flags::NONE, 0, 1, T)).is_empty());
    }

    #[test]
    fn interest_becomes_receipted_changes_level_triggered_where_wanted() {
        let add = Flags::ADD.with(Flags::ENABLE).with(Flags::RECEIPT);
        let delete = Flags::DELETE.with(Flags::RECEIPT);
        let [d, r, w] = interest_changes(9, T, Interest::READABLE);
        assert_eq!((d.ident, d.filter, d.flags), (9, Filter::Read, delete));
        // Readable: level-triggered (never EV_CLEAR), re-added so that a watch becomes it.
        assert_eq!((r.filter, r.flags, r.udata), (Filter::Read, add, T.0));
        // Not writable: deleted, so that no descriptor carries a filter it may refuse.
        assert_eq!((w.filter, w.flags), (Filter::Write, delete));
        let [_, r, w] = interest_changes(9, T, Interest::READABLE.with(Interest::WRITABLE));
        assert_eq!((r.flags, w.flags), (add, add));
        // No readable interest: the read filter becomes an edge-triggered watch for errors.
        let [_, r, _] = interest_changes(9, T, Interest::WRITABLE);
        assert_eq!(r.flags, add.with(Flags::CLEAR));
        for k in removal_changes(9) {
            assert_eq!(k.flags, delete);
        }
    }

    /// kqueue(2): "EV_CLEAR: After the event is retrieved by the user, its state is reset";
    /// epoll reports EPOLLERR whatever the interest, and core relies on it (a paused socket
    /// whose peer resets closes at once).
    #[test]
    fn the_watch_of_a_paused_descriptor_reports_its_error_only() {
        let watch = Flags::CLEAR;
        assert!(
            one(kev(Filter::Read, watch, 0, 10, T)).is_empty(),
            "data waits"
        );
        assert!(
            one(kev(Filter::Read, watch.with(Flags::EOF), 0, 0, T)).is_empty(),
            "a plain FIN waits for readable interest"
        );
        assert_eq!(
            one(kev(
                Filter::Read,
                watch.with(Flags::EOF),
                ECONNRESET as u32,
                0,
                T
            )),
            vec![Event::new(T).with_error(true)],
            "a reset is an error at once"
        );
    }

    #[test]
    fn receipts_propagate_the_first_error() {
        // [delete read, add read, delete write]
        let changes = interest_changes(7, T, Interest::READABLE);
        let receipt = |filter, data: i32| kev(filter, Flags::ERROR, 0, i64::from(data), T);
        let ok = |f| receipt(f, 0);
        let (r, w) = (Filter::Read, Filter::Write);
        let check = |got: &[Kev]| check_receipts(got, &changes, ENOENT, EIO);
        assert_eq!(check(&[ok(r), ok(r), ok(w)]), Ok(()));
        // The added filter failed: its error comes back.
        assert_eq!(check(&[ok(r), receipt(r, 9), ok(w)]), Err(9));
        // Deleting filters that were not there is not a failure...
        assert_eq!(
            check(&[receipt(r, ENOENT), ok(r), receipt(w, ENOENT)]),
            Ok(())
        );
        // ...but ENOENT for the filter being added is, though the same filter was deleted
        // just before: receipts are matched by position.
        assert_eq!(check(&[ok(r), receipt(r, ENOENT), ok(w)]), Err(ENOENT));
        // A pending event returned among the receipts is skipped; too few receipts, or one
        // for another filter, fail.
        let pending = kev(r, Flags::NONE, 0, 3, U);
        assert_eq!(check(&[ok(r), pending, ok(r), ok(w)]), Ok(()));
        assert_eq!(check(&[ok(r), pending, ok(r)]), Err(EIO));
        assert_eq!(check(&[ok(r), ok(w), ok(w)]), Err(EIO));
    }
}
