//! The connection handling of `echo_server`, generic over the loop's `Config` so that tests run
//! this very code on the simulated OS as well as on real sockets (`tests/echo_sim.rs`). The
//! context ext is the server's [`Echo`] settings; the socket ext is the connection's
//! [`Outbox`].

use usockets::{Config, ContextCallbacks, Cx, Outbox, RecvBuf, SocketId};

/// The idle timeout when the context holds none.
pub const IDLE_SECONDS: u32 = 30;

/// The echo server's settings: its context ext.
#[derive(Clone, Copy, Debug)]
pub struct Echo {
    /// A connection that neither receives nor gets bytes out for this long is closed (0: never).
    pub idle_seconds: u32,
    /// Bytes waiting for a client above which the server stops reading from it.
    pub high_water: usize,
}

impl Default for Echo {
    fn default() -> Self {
        Echo {
            idle_seconds: IDLE_SECONDS,
            high_water: Outbox::DEFAULT_HIGH,
        }
    }
}

/// The echo server's context callbacks, for any `Config` with these ext types.
pub fn callbacks<C>() -> ContextCallbacks<C>
where
    C: Config<ContextExt = Echo, SocketExt = Outbox>,
{
    ContextCallbacks {
        on_open: Some(on_open::<C>),
        on_data: Some(on_data::<C>),
        on_writable: Some(on_writable::<C>),
        on_end: Some(on_end::<C>),
        on_timeout: Some(on_timeout::<C>),
        ..ContextCallbacks::default()
    }
}

/// The settings of `s`'s server.
fn settings<C: Config<ContextExt = Echo, SocketExt = Outbox>>(cx: &Cx<C>, s: SocketId) -> Echo {
    cx.socket_context(s)
        .and_then(|c| cx.context_ext(c))
        .copied()
        .unwrap_or_default()
}

/// (Re)starts `s`'s idle timeout with its server's value.
fn touch<C: Config<ContextExt = Echo, SocketExt = Outbox>>(cx: &mut Cx<C>, s: SocketId) {
    let idle = settings(cx, s).idle_seconds;
    cx.timeout(s, idle);
}

fn on_open<C>(cx: &mut Cx<C>, s: SocketId, _is_client: bool, _ip: &[u8])
where
    C: Config<ContextExt = Echo, SocketExt = Outbox>,
{
    let high = settings(cx, s).high_water;
    if let Some(out) = cx.socket_ext_mut(s) {
        *out = Outbox::with_marks(high, Outbox::DEFAULT_LOW);
    }
    touch(cx, s);
}

/// Echoes in order behind whatever waits; past the outbox's high-water mark reading pauses.
fn on_data<C>(cx: &mut Cx<C>, s: SocketId, data: &mut RecvBuf<'_>)
where
    C: Config<ContextExt = Echo, SocketExt = Outbox>,
{
    touch(cx, s);
    Outbox::write(cx, s, data);
}

/// Sends what waits; bytes going out count as activity, so a slow reader is not cut off.
fn on_writable<C>(cx: &mut Cx<C>, s: SocketId)
where
    C: Config<ContextExt = Echo, SocketExt = Outbox>,
{
    if Outbox::flush(cx, s) > 0 {
        touch(cx, s);
    }
}

/// The client finished sending: echo the rest, then shut down and close.
fn on_end<C>(cx: &mut Cx<C>, s: SocketId)
where
    C: Config<ContextExt = Echo, SocketExt = Outbox>,
{
    Outbox::end(cx, s);
}

fn on_timeout<C>(cx: &mut Cx<C>, s: SocketId)
where
    C: Config<ContextExt = Echo, SocketExt = Outbox>,
{
    cx.close(s, 0, None);
}
