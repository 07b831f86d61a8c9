//! A ready-made [`Config`] for `std` programs, on the platform shim unless told otherwise.

use core::marker::PhantomData;

#[cfg(not(feature = "tls"))]
use usockets_core::NoLayer;
use usockets_core::{
    Capacity, Config, GrowingStorage, Loop, LoopCallbacks, LoopError, OsShim, Settings,
};

use crate::{DefaultShim, PlatformShim};

/// The receive buffer's data length (`LIBUS_RECV_BUFFER_LENGTH`), padding not included.
pub const RECV_BUFFER_LENGTH: usize = 524_288;

/// A [`Config`] with ext types `L` (loop), `C` (context), `S` (socket), `T` (timer) and `P`
/// (poll), the shim `Sh` (the platform's, [`DefaultShim`], unless named: on Linux,
/// `uring::UringShim` is the other), growing storage (core's
/// `GrowingStorage`: arenas that grow as needed, a 512 KiB receive buffer), `usize` close
/// reasons and, with the `tls` feature, the TLS layer: a context speaks TLS once given a
/// `TlsContext` with [`Cx::set_layer_context`](usockets_core::Cx::set_layer_context), and is
/// plain until then.
///
/// The shim is a type, not a run-time value: code generic over `Sh` is compiled once per
/// shim it runs on, and nothing dispatches per call.
pub struct App<L, C, S, T = (), P = (), Sh = DefaultShim>(PhantomData<Exts<L, C, S, T, P, Sh>>);

/// The types an [`App`] names, as a zero-sized marker that is always `Send` and `Sync`.
type Exts<L, C, S, T, P, Sh> = fn() -> (L, C, S, T, P, Sh);

/// The loop [`new_loop`] (platform shim), [`new_loop_on`] and [`new_loop_with`] build.
pub type AppLoop<L, C, S, T = (), P = (), Sh = DefaultShim> = Loop<App<L, C, S, T, P, Sh>>;

impl<L, C, S, T, P, Sh: OsShim> Config for App<L, C, S, T, P, Sh> {
    type Shim = Sh;
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

/// Why [`new_loop`], [`new_loop_on`] or [`new_loop_with`] failed.
#[derive(Debug)]
pub enum NewLoopError {
    /// The OS refused to make the shim (no epoll or eventfd descriptor; no io_uring: kind
    /// `Unsupported`).
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

/// Creates a loop on the platform shim, [`DefaultShim`] (`us_create_loop`).
pub fn new_loop<L, C, S, T, P>(
    ext: L,
    callbacks: LoopCallbacks<App<L, C, S, T, P>>,
    settings: Settings,
) -> Result<AppLoop<L, C, S, T, P>, NewLoopError> {
    new_loop_on(ext, callbacks, settings)
}

/// Creates a loop on a shim `Sh` made with its defaults ([`PlatformShim::create`]). `Sh` is
/// usually inferred from the loop's type:
///
/// ```no_run
/// # #[cfg(target_os = "linux")] {
/// use usockets::uring::UringShim;
/// use usockets::{AppLoop, LoopCallbacks, Settings};
///
/// let l: AppLoop<(), (), (), (), (), UringShim> =
///     usockets::new_loop_on((), LoopCallbacks::default(), Settings::default())
///         .expect("io_uring");
/// # }
/// ```
pub fn new_loop_on<Sh: PlatformShim, L, C, S, T, P>(
    ext: L,
    callbacks: LoopCallbacks<App<L, C, S, T, P, Sh>>,
    settings: Settings,
) -> Result<AppLoop<L, C, S, T, P, Sh>, NewLoopError> {
    let shim = Sh::create().map_err(NewLoopError::Os)?;
    new_loop_with(shim, ext, callbacks, settings)
}

/// Creates a loop on `shim`, made by the caller (any [`OsShim`]: e.g. an io_uring shim with
/// its own `UringConfig`). Fails only with [`NewLoopError::Loop`].
pub fn new_loop_with<Sh: OsShim, L, C, S, T, P>(
    shim: Sh,
    ext: L,
    callbacks: LoopCallbacks<App<L, C, S, T, P, Sh>>,
    settings: Settings,
) -> Result<AppLoop<L, C, S, T, P, Sh>, NewLoopError> {
    let storage = GrowingStorage::new(Capacity::new().with_recv(RECV_BUFFER_LENGTH));
    Loop::new(shim, storage, ext, callbacks, settings).map_err(NewLoopError::Loop)
}
