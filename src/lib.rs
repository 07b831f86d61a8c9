//! # usockets
//!
//! uSockets in Rust with the platform's shim chosen for you: re-exports [`usockets_core`]'s API
//! and adds what a `std` program wants — storage that grows (slots never move), a ready-made
//! [`Config`] ([`App`]) and [`new_loop`].
//!
//! ```no_run
//! use usockets::{
//!     App, AppLoop, ContextCallbacks, Cx, ListenOptions, ListenTarget, LoopCallbacks, RecvBuf, Settings, SocketId,
//! };
//!
//! type Echo = App<(), (), ()>;
//!
//! fn on_data(cx: &mut Cx<Echo>, s: SocketId, data: &mut RecvBuf<'_>) {
//!     cx.write(s, data, false);
//! }
//!
//! let mut l: AppLoop<(), (), ()> = usockets::new_loop((), LoopCallbacks::default(), Settings::default()).unwrap();
//! let ctx = l
//!     .context_create((), ContextCallbacks { on_data: Some(on_data), ..ContextCallbacks::default() })
//!     .unwrap();
//! l.listen(ctx, ListenTarget::Host { host: None, port: 3000 }, ListenOptions::default(), || ()).unwrap();
//! l.run().unwrap();
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod app;
mod storage;

pub use app::{new_loop, App, AppLoop, NewLoopError, RECV_BUFFER_LENGTH};
pub use storage::GrowingStore;
pub use usockets_core::*;

/// The shim of this platform.
#[cfg(target_os = "linux")]
pub type DefaultShim = usockets_shim_linux::LinuxShim;

/// The platform shim crate, for its extras (e.g. syscall statistics).
#[cfg(target_os = "linux")]
pub use usockets_shim_linux as platform;

#[cfg(not(target_os = "linux"))]
compile_error!("usockets: no shim for this platform yet (BSD and Windows shims are planned)");
