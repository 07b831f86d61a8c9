//! Layers: a per-socket transform between the kernel and the callbacks (TLS is one).
//!
//! A [`Config`] names a [`Layer`]; [`NoLayer`] is the plain loop. When a socket opens, core asks
//! the layer whether it takes the socket ([`Layer::opened`]); from then on core routes that
//! socket's bytes through the layer: what the kernel delivers goes to [`Layer::received`]
//! (which hands plaintext to `on_data` through [`Cx::deliver_data`]), what the application
//! writes goes to [`Layer::write`] (which sends with [`Cx::write_raw`]), `on_writable` waits for
//! [`Layer::writable`], and a shutdown lets [`Layer::shutting_down`] send its goodbye first. A
//! peer's FIN closes a layered socket ([`CloseCause::HangUp`](crate::CloseCause::HangUp)): no
//! `on_end`, as TLS in the C library. A socket the layer did not take costs one flag test per
//! read and write; the layer keeps its state in core's slots ([`Layer::Socket`],
//! [`Layer::Context`]). A layered socket adopted into another context keeps its layer state
//! (a TLS session stays TLS, whatever the target context).

use crate::event_loop::{Config, Cx};
use crate::handle::SocketId;
use crate::shim::{ConnectTarget, OsError};

/// A per-socket transform between the kernel and the callbacks. Every method runs on the loop
/// thread, inside the iteration, and may call back into the [`Cx`].
pub trait Layer<C: Config> {
    /// What the layer keeps per socket, in the socket's slot (a TLS session); `()` for none.
    type Socket: Default;
    /// What the layer keeps per context (a TLS configuration), set with
    /// [`Cx::set_layer_context`]; a child context starts with a copy of its parent's.
    type Context: Default + Clone;

    /// A connect starts on `s` (before the OS sees it): the layer may prepare its state from
    /// the target (a TLS client takes its server name from the host). An error fails the
    /// connect: it reaches `on_connect_error`, and the OS never sees it.
    fn connecting(cx: &mut Cx<C>, s: SocketId, target: &ConnectTarget<'_>) -> Result<(), OsError>;

    /// `s` opened (accepted, or its connect completed), just before `on_open`. Returns whether
    /// the layer takes the socket; if not, it is plain.
    fn opened(cx: &mut Cx<C>, s: SocketId, is_client: bool) -> bool;

    /// Bytes the kernel delivered for a layered socket. The layer passes what it makes of them
    /// to `on_data` with [`Cx::deliver_data`] (and may close the socket).
    fn received(cx: &mut Cx<C>, s: SocketId, data: &[u8]);

    /// The application writes `data` on a layered socket: returns how many bytes the layer
    /// accepted (0 when it takes nothing more until `on_writable`). A short count obliges the
    /// layer to make `on_writable` follow (a short [`Cx::write_raw`] does; otherwise
    /// [`Cx::request_writable`]).
    fn write(cx: &mut Cx<C>, s: SocketId, data: &[u8], more: bool) -> usize;

    /// The application writes `header` then `payload`: returns how many of their bytes
    /// together the layer accepted.
    fn write2(cx: &mut Cx<C>, s: SocketId, header: &[u8], payload: &[u8]) -> usize;

    /// The kernel takes bytes again on a layered socket. Returns whether the application's
    /// `on_writable` should run now (the layer's own bytes went out).
    fn writable(cx: &mut Cx<C>, s: SocketId) -> bool;

    /// The application shuts a layered socket down: the layer sends its last bytes (a TLS
    /// close_notify, behind what it still holds) and returns whether they all went. If not,
    /// core holds FIN back (the application can write no more), keeps polling for writable and
    /// calls this again from there, sending FIN once it returns `true`.
    fn shutting_down(cx: &mut Cx<C>, s: SocketId) -> bool;
}

/// No layer: every socket is plain.
pub struct NoLayer;

impl<C: Config> Layer<C> for NoLayer {
    type Socket = ();
    type Context = ();

    #[inline]
    fn connecting(_: &mut Cx<C>, _: SocketId, _: &ConnectTarget<'_>) -> Result<(), OsError> {
        Ok(())
    }

    #[inline]
    fn opened(_: &mut Cx<C>, _: SocketId, _: bool) -> bool {
        false
    }

    fn received(_: &mut Cx<C>, _: SocketId, _: &[u8]) {}

    fn write(_: &mut Cx<C>, _: SocketId, _: &[u8], _: bool) -> usize {
        0
    }

    fn write2(_: &mut Cx<C>, _: SocketId, _: &[u8], _: &[u8]) -> usize {
        0
    }

    fn writable(_: &mut Cx<C>, _: SocketId) -> bool {
        true
    }

    fn shutting_down(_: &mut Cx<C>, _: SocketId) -> bool {
        true
    }
}
