//! Why a socket closed, as `on_close` learns it.

use crate::shim::OsError;

/// Why a socket closed, as `on_close` learns it.
///
/// The C ABI passes `code` and `reason` for [`User`](CloseCause::User) and `(0, NULL)` for
/// every close the library starts ([`code_and_reason`](CloseCause::code_and_reason)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum CloseCause<R> {
    /// The application closed it ([`Cx::close`](crate::Cx::close)) with this code and reason.
    User {
        /// The code given to `close`.
        code: i32,
        /// The reason given to `close`.
        reason: Option<R>,
    },
    /// The connection finished in both directions: the peer's FIN arrived after our
    /// [`Cx::shutdown`](crate::Cx::shutdown), or we shut down after the peer's FIN.
    Finished,
    /// The peer hung up (gone in both directions) and the OS reported no error code.
    HangUp,
    /// The OS reported an error: a failed send or receive (a reset, a broken pipe), a pending
    /// socket error, or a poller that refused an interest change.
    Os(OsError),
    /// [`Cx::context_close`](crate::Cx::context_close) closed the socket's context.
    ContextClosed,
}

impl<R: Copy> CloseCause<R> {
    /// `(code, reason)` as the C callback gets them: the user's for
    /// [`User`](CloseCause::User), `(0, None)` for every close the library starts.
    pub fn code_and_reason(&self) -> (i32, Option<R>) {
        match *self {
            CloseCause::User { code, reason } => (code, reason),
            _ => (0, None),
        }
    }
}
