//! Generational handles: what users hold and what core gives the shim as a [`Token`].
//!
//! A handle is a slot index plus the slot's generation when the handle was made. Freeing a slot
//! bumps its generation, so an old handle (or an old token in a late event) no longer matches and
//! is rejected instead of aliasing whatever lives in the slot now.

use crate::shim::Token;

/// The generation counter is 30 bits so that a token can carry the kind of object too.
pub(crate) const GEN_MASK: u32 = (1 << 30) - 1;

/// Which arena a token points into.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Socket = 0,
    Listen = 1,
    Poll = 2,
}

macro_rules! handle {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[cfg_attr(feature = "defmt", derive(defmt::Format))]
        pub struct $name {
            pub(crate) index: u32,
            pub(crate) generation: u32,
        }

        impl $name {
            /// The slot index (stable while the object lives; reused after it is released).
            pub fn index(self) -> u32 {
                self.index
            }
            /// The slot generation this handle was made for.
            pub fn generation(self) -> u32 {
                self.generation
            }
            pub(crate) fn new(index: u32, generation: u32) -> Self {
                Self { index, generation }
            }
        }
    };
}

handle!(
    /// A connection (accepted, connecting or connected). The Rust form of `us_socket_t *`.
    SocketId
);
handle!(
    /// A listening socket. The Rust form of `us_listen_socket_t *`.
    ListenId
);
handle!(
    /// A socket context: a group of sockets sharing callbacks. The Rust form of `us_socket_context_t *`.
    ContextId
);
handle!(
    /// A timer. The Rust form of `us_timer_t *`.
    TimerId
);
handle!(
    /// A poll on a user descriptor. The Rust form of `us_poll_t *`.
    PollId
);

/// Packs kind, generation and index into a token.
pub(crate) fn token(kind: Kind, index: u32, generation: u32) -> Token {
    Token(((kind as u64) << 62) | (u64::from(generation & GEN_MASK) << 32) | u64::from(index))
}

/// A socket's token unpacked to (generation, index), or `None` for any other token: the
/// dispatch's first test, as nearly every event is a socket's.
#[inline(always)]
pub(crate) fn socket_token(t: Token) -> Option<(u32, u32)> {
    (t.0 >> 62 == Kind::Socket as u64).then_some((((t.0 >> 32) as u32) & GEN_MASK, t.0 as u32))
}

/// Unpacks a token made by [`token`]; `None` for the waker token or garbage.
pub(crate) fn untoken(t: Token) -> Option<(Kind, u32, u32)> {
    if t == Token::WAKER {
        return None;
    }
    let kind = match t.0 >> 62 {
        0 => Kind::Socket,
        1 => Kind::Listen,
        2 => Kind::Poll,
        _ => return None,
    };
    Some((kind, ((t.0 >> 32) as u32) & GEN_MASK, t.0 as u32))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_round_trips_and_waker_is_distinct() {
        for (k, i, g) in [
            (Kind::Socket, 0, 0),
            (Kind::Listen, 7, GEN_MASK),
            (Kind::Poll, u32::MAX, 5),
        ] {
            assert_eq!(untoken(token(k, i, g)), Some((k, g, i)));
            let socket = (k == Kind::Socket).then_some((g, i));
            assert_eq!(socket_token(token(k, i, g)), socket);
        }
        assert_eq!(socket_token(Token::WAKER), None);
        assert_eq!(untoken(Token::WAKER), None);
        assert_eq!(socket_token(Token::DEADLINE), None);
        assert_eq!(untoken(Token::DEADLINE), None);
    }
}
