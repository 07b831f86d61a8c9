//! A ready-made [`Config`] for `std` programs on the platform shim.

use core::marker::PhantomData;

#[cfg(not(feature = "tls"))]
use usockets_core::NoLayer;
use usockets_core::{Capacity, Config, GrowingStorage, Loop, LoopCallbacks, LoopError, Settings};

use crate::DefaultShim;

/// The receive buffer's data length (`LIBUS_RECV_BUFFER_LENGTH`), padding not included.
pub const RECV_BUFFER_LENGTH: usize = 524_288;

/// A [`Config`] with ext types `L` (loop), `C` (context), `S` (socket), `T` (timer) and `P`
/// (poll), the platform shim, growing storage (core's `GrowingStorage`: arenas that grow as
/// needed, a 512 KiB receive buffer), `usize` close reasons and, with the `tls` feature, the
/// TLS layer: a context speaks TLS once given a `TlsContext` with
/// [`Cx::set_layer_context`](usockets_core::Cx::set_layer_context), and is plain until then.
pub struct App<L, C, S, T = (), P = ()>(PhantomData<Exts<L, C, S, T, P>>);

/// The ext types an [`App`] names, as a zero-sized marker that is always `Send` and `Sync`.
type Exts<L, C, S, T, P> = fn() -> (L, C, S, T, P);

/// The loop [`new_loop`] builds.
pub type AppLoop<L, C, S, T = (), P = ()> = Loop<App<L, C, S, T, P>>;

impl<L, C, S, T, P> Config for App<L, C, S, T, P> {
    type Shim = DefaultShim;
    type LoopExt = L;
    type ContextExt = C;
    type SocketExt = S;
    type TimerExt = T;
    type PollExt = P;
    type Reason = usize;
    type Storage = GrowingStorage<Self>;
    #[cfg(feature = "tls")]
    type Layer = usockets_tls::Tls;
    #[cfg(not(feature = "tls"))]
    type Layer = NoLayer;
}

/// Why [`new_loop`] failed.
#[derive(Debug)]
pub enum NewLoopError {
    /// The OS refused (no epoll or eventfd descriptor).
    Os(std::io::Error),
    /// The loop refused its memory (cannot happen with the sizes used here).
    Loop(LoopError),
}

impl std::fmt::Display for NewLoopError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NewLoopError::Os(e) => write!(f, "cannot create the OS poller: {e}"),
            NewLoopError::Loop(e) => write!(f, "cannot create the loop: {e}"),
        }
    }
}

impl std::error::Error for NewLoopError {}

/// Creates a loop on the platform shim (`us_create_loop`).
pub fn new_loop<L, C, S, T, P>(
    ext: L,
    callbacks: LoopCallbacks<App<L, C, S, T, P>>,
    settings: Settings,
) -> Result<AppLoop<L, C, S, T, P>, NewLoopError> {
    let shim = DefaultShim::new()
        .map_err(|e| NewLoopError::Os(std::io::Error::from_raw_os_error(e.code)))?;
    let storage = GrowingStorage::new(Capacity::new().with_recv(RECV_BUFFER_LENGTH));
    Loop::new(shim, storage, ext, callbacks, settings).map_err(NewLoopError::Loop)
}
