//! AFD poll events ↔ core's interest and events. Pure: tested on every host.
//!
//! An AFD poll request (`IOCTL_AFD_POLL` on a `\Device\Afd` handle, the call beneath
//! `WSAPoll`, as wepoll, libuv and mio use it) names the events it waits for and completes
//! once with those that hold. The bits are AFD's (`AFD_POLL_*`, from the Windows DDK's
//! `afd.h`, as those projects document them).

use usockets_core::{Event, Interest, Token};

/// Data (or a pending connection on a listener's `ACCEPT`) can be read.
pub(crate) const AFD_POLL_RECEIVE: u32 = 0x0001;
/// The socket can take more bytes.
pub(crate) const AFD_POLL_SEND: u32 = 0x0004;
/// The peer sent FIN (a graceful close; a half-close for TCP).
pub(crate) const AFD_POLL_DISCONNECT: u32 = 0x0008;
/// The connection was reset or aborted.
pub(crate) const AFD_POLL_ABORT: u32 = 0x0010;
/// The socket was closed by this process (`closesocket`) while the poll waited.
pub(crate) const AFD_POLL_LOCAL_CLOSE: u32 = 0x0020;
/// A listener has a connection to accept.
pub(crate) const AFD_POLL_ACCEPT: u32 = 0x0080;
/// A non-blocking connect failed; the handle's status says why.
pub(crate) const AFD_POLL_CONNECT_FAIL: u32 = 0x0100;

/// What "readable" means to AFD: data, a pending connection, or the peer's FIN.
const READ_BITS: u32 = AFD_POLL_RECEIVE | AFD_POLL_ACCEPT | AFD_POLL_DISCONNECT;

/// The events a poll for `interest` waits for. Errors (a reset, a failed connect) and this
/// process's own close are always included: core's contract reports errors whatever the
/// interest, even an empty one.
pub(crate) fn mask_for(interest: Interest) -> u32 {
    let mut mask = AFD_POLL_ABORT | AFD_POLL_CONNECT_FAIL | AFD_POLL_LOCAL_CLOSE;
    if interest.is_readable() {
        mask |= READ_BITS;
    }
    if interest.is_writable() {
        mask |= AFD_POLL_SEND;
    }
    mask
}

/// The core event for a completed poll's `events`, or `None` when there is nothing to report.
///
/// Bits outside the *current* `interest` are dropped (the poll may have been issued for an
/// older one, or raced a cancel), except errors. A reset (`ABORT`) is an error and a hang-up,
/// and readable too under readable interest, so that core reads and closes with the reset's
/// code. A failed connect is an error and writable: core then asks for the outcome
/// ([`connect_result`](usockets_core::OsShim::connect_result)). `LOCAL_CLOSE` reports
/// nothing: core closed the socket itself.
pub(crate) fn event_for(token: Token, events: u32, interest: Interest) -> Option<Event> {
    let abort = events & AFD_POLL_ABORT != 0;
    let connect_fail = events & AFD_POLL_CONNECT_FAIL != 0;
    let readable = interest.is_readable() && (events & READ_BITS != 0 || abort);
    let writable = (interest.is_writable() && events & AFD_POLL_SEND != 0) || connect_fail;
    let error = abort || connect_fail;
    Event::ready(token, readable, writable, error, abort)
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Token = Token(7);

    #[test]
    fn masks_follow_interest_and_always_carry_errors() {
        let always = AFD_POLL_ABORT | AFD_POLL_CONNECT_FAIL | AFD_POLL_LOCAL_CLOSE;
        assert_eq!(mask_for(Interest::NONE), always);
        assert_eq!(
            mask_for(Interest::READABLE),
            always | AFD_POLL_RECEIVE | AFD_POLL_ACCEPT | AFD_POLL_DISCONNECT
        );
        assert_eq!(mask_for(Interest::WRITABLE), always | AFD_POLL_SEND);
        assert_eq!(
            mask_for(Interest::BOTH),
            mask_for(Interest::READABLE) | AFD_POLL_SEND
        );
    }

    #[test]
    fn data_fin_and_accept_are_readable() {
        for bits in [AFD_POLL_RECEIVE, AFD_POLL_DISCONNECT, AFD_POLL_ACCEPT] {
            let ev = event_for(T, bits, Interest::READABLE).expect("an event");
            assert!(ev.readable() && !ev.writable() && !ev.error() && !ev.hangup());
            assert_eq!(ev.token, T);
        }
        // A half-close (FIN) is readable, never a hang-up: core reads 0 and runs on_end.
        let fin = event_for(T, AFD_POLL_DISCONNECT | AFD_POLL_SEND, Interest::BOTH).unwrap();
        assert!(fin.readable() && fin.writable() && !fin.hangup());
    }

    #[test]
    fn bits_outside_the_interest_are_dropped_but_errors_are_not() {
        assert_eq!(event_for(T, AFD_POLL_RECEIVE, Interest::WRITABLE), None);
        assert_eq!(event_for(T, AFD_POLL_SEND, Interest::READABLE), None);
        assert_eq!(event_for(T, AFD_POLL_RECEIVE, Interest::NONE), None);
        let reset = event_for(T, AFD_POLL_ABORT, Interest::NONE).unwrap();
        assert!(reset.error() && reset.hangup() && !reset.readable());
    }

    #[test]
    fn a_reset_under_readable_interest_is_read() {
        let ev = event_for(T, AFD_POLL_ABORT | AFD_POLL_RECEIVE, Interest::READABLE).unwrap();
        assert!(ev.readable() && ev.error() && ev.hangup());
    }

    #[test]
    fn a_failed_connect_is_an_error_and_writable() {
        let ev = event_for(T, AFD_POLL_CONNECT_FAIL, Interest::WRITABLE).unwrap();
        assert!(ev.error() && ev.writable() && !ev.hangup() && !ev.readable());
        let ev = event_for(T, AFD_POLL_CONNECT_FAIL, Interest::NONE).unwrap();
        assert!(ev.error() && ev.writable());
    }

    #[test]
    fn own_close_reports_nothing() {
        assert_eq!(event_for(T, AFD_POLL_LOCAL_CLOSE, Interest::BOTH), None);
    }
}
