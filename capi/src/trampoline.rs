//! Core's callbacks, one per kind, forwarding to the C callbacks stored with each object. Every
//! call into C goes through [`enter`] so that `us_*` calls made from C reach this same `Cx`.

use std::ffi::{c_char, c_int};

use usockets_core::{
    Accepted, CloseCause, ContextCallbacks, ContextId, Cx, Interest, LoopCallbacks, OsError,
    PollId, RecvBuf, SocketId, TimerId, RECV_PADDING,
};

use crate::block::{Block, Obj};
use crate::fd::{self, Fd};
use crate::state::{enter, Capi};
use crate::types::ContextCbs;

/// The callbacks core gets for every context: each forwards to the context's C callback.
pub(crate) fn context_callbacks() -> ContextCallbacks<Capi> {
    ContextCallbacks {
        on_pre_open: Some(pre_open),
        on_open: Some(open),
        on_close: Some(close),
        on_data: Some(data),
        on_writable: Some(writable),
        on_timeout: Some(timeout),
        on_long_timeout: Some(long_timeout),
        on_end: Some(end),
        on_connect_error: Some(connect_error),
    }
}

/// The loop-level callbacks core gets for every loop.
pub(crate) fn loop_callbacks() -> LoopCallbacks<Capi> {
    LoopCallbacks {
        wakeup: Some(wakeup),
        pre: Some(pre),
        post: Some(post),
        released: Some(released),
    }
}

fn cbs_of(cx: &Cx<Capi>, s: SocketId) -> Option<ContextCbs> {
    let ctx = cx.socket_context(s)?;
    cx.context_ext(ctx).map(|c| c.cbs)
}

fn block_of(cx: &Cx<Capi>, s: SocketId) -> Option<Block> {
    cx.socket_ext(s).copied().flatten()
}

/// Copies `ip` to a writable buffer for C (`char *ip`).
fn ip_buf(ip: &[u8]) -> ([u8; 16], c_int) {
    let mut buf = [0u8; 16];
    let n = ip.len().min(16);
    buf[..n].copy_from_slice(&ip[..n]);
    (buf, n as c_int)
}

/// `on_pre_open`: C returns the descriptor to let the library adopt it; anything else (uWS
/// returns -1) means C took it, and C owns it from then on.
fn pre_open(cx: &mut Cx<Capi>, ctx: ContextId, accepted: &mut Accepted<Fd>, ip: &[u8]) {
    let Some((cb, block)) = cx
        .context_ext(ctx)
        .and_then(|c| c.cbs.on_pre_open.map(|f| (f, c.block)))
    else {
        return;
    };
    let Some(number) = accepted.fd().map(fd::number) else {
        return;
    };
    let (mut ipb, len) = ip_buf(ip);
    let ipp = if len > 0 {
        ipb.as_mut_ptr().cast::<c_char>()
    } else {
        std::ptr::null_mut()
    };
    // SAFETY: calling the C callback the application registered, with live pointers.
    let kept = enter(cx, || unsafe { cb(block.as_ptr(), number, ipp, len) });
    if kept != number {
        if let Some(taken) = accepted.take() {
            fd::into_c(taken);
        }
    }
}

fn open(cx: &mut Cx<Capi>, s: SocketId, is_client: bool, ip: &[u8]) {
    // Accepted sockets get their block now, sized by the listen socket that accepted them.
    if block_of(cx, s).is_none() {
        let st = *cx.ext();
        let size = cx
            .socket_listener(s)
            // SAFETY: the loop ext points to this loop's live state.
            .and_then(|l| unsafe { (*st).listeners.borrow().get(&l).map(|&(_, size)| size) })
            .unwrap_or(0);
        match Block::alloc(Obj::Socket(s), size, st) {
            Some(b) => {
                if let Some(e) = cx.socket_ext_mut(s) {
                    *e = Some(b);
                }
            }
            None => {
                cx.close(s, 0, None);
                return;
            }
        }
    }
    let Some(block) = block_of(cx, s) else { return };
    // A block made before core assigned the handle (adopt_accepted) learns it here, before C
    // sees the pointer.
    block.set_obj(Obj::Socket(s));
    let Some(cb) = cbs_of(cx, s).and_then(|c| c.on_open) else {
        return;
    };
    let (mut ipb, len) = ip_buf(ip);
    let ipp = if len > 0 {
        ipb.as_mut_ptr().cast::<c_char>()
    } else {
        std::ptr::null_mut()
    };
    // SAFETY: calling the registered C callback with the socket's live block.
    enter(cx, || unsafe {
        cb(block.as_ptr(), c_int::from(is_client), ipp, len)
    });
}

/// `on_close`: C gets the code and reason given to `us_socket_close`, and `(0, NULL)` for every
/// close the library starts.
fn close(cx: &mut Cx<Capi>, s: SocketId, cause: CloseCause<*mut std::ffi::c_void>) {
    let (code, reason) = cause.code_and_reason();
    let st = *cx.ext();
    let block = block_of(cx, s);
    let ret = match (block, cbs_of(cx, s).and_then(|c| c.on_close)) {
        (Some(block), Some(cb)) => {
            let reason = reason.unwrap_or(std::ptr::null_mut());
            // SAFETY: calling the registered C callback; the block stays valid until released.
            enter(cx, || unsafe { cb(block.as_ptr(), code, reason) }).cast()
        }
        (Some(block), None) => block.as_ptr(),
        _ => std::ptr::null_mut(),
    };
    // SAFETY: the loop ext points to this loop's live state.
    unsafe { (*st).close_ret.set(ret) };
}

fn data(cx: &mut Cx<Capi>, s: SocketId, buf: &mut RecvBuf<'_>) {
    let (Some(block), Some(cb)) = (block_of(cx, s), cbs_of(cx, s).and_then(|c| c.on_data)) else {
        return;
    };
    let len = buf.len() as c_int;
    // The pointer is derived from the whole padded region (not from the data alone) so that C
    // may write into the padding on both sides; the data starts RECV_PADDING bytes in.
    let padded = buf.padded().as_mut_ptr();
    // SAFETY: the padded region is RECV_PADDING + len + RECV_PADDING bytes long.
    let data = unsafe { padded.add(RECV_PADDING) }.cast::<c_char>();
    // SAFETY: calling the registered C callback; `data` has `len` bytes plus the padding on each
    // side inside the loop's receive buffer, lent for the duration of this call.
    enter(cx, || unsafe { cb(block.as_ptr(), data, len) });
}

fn simple(cx: &mut Cx<Capi>, s: SocketId, pick: fn(&ContextCbs) -> Option<crate::types::SocketCb>) {
    let (Some(block), Some(cb)) = (block_of(cx, s), cbs_of(cx, s).as_ref().and_then(pick)) else {
        return;
    };
    // SAFETY: calling the registered C callback with the socket's live block.
    enter(cx, || unsafe { cb(block.as_ptr()) });
}

fn writable(cx: &mut Cx<Capi>, s: SocketId) {
    simple(cx, s, |c| c.on_writable);
}
fn timeout(cx: &mut Cx<Capi>, s: SocketId) {
    simple(cx, s, |c| c.on_timeout);
}
fn long_timeout(cx: &mut Cx<Capi>, s: SocketId) {
    simple(cx, s, |c| c.on_long_timeout);
}
fn end(cx: &mut Cx<Capi>, s: SocketId) {
    simple(cx, s, |c| c.on_end);
}

fn connect_error(cx: &mut Cx<Capi>, s: SocketId, err: OsError) {
    let (Some(block), Some(cb)) = (
        block_of(cx, s),
        cbs_of(cx, s).and_then(|c| c.on_connect_error),
    ) else {
        return;
    };
    // SAFETY: calling the registered C callback with the socket's live block.
    enter(cx, || unsafe { cb(block.as_ptr(), err.code) });
}

/// A timer fired: its C callback runs (and may close the timer).
pub(crate) fn timer(cx: &mut Cx<Capi>, t: TimerId) {
    let Some((block, Some(cb))) = cx.timer_ext(t).map(|e| (e.block, e.cb)) else {
        return;
    };
    // SAFETY: calling the registered C callback with the timer's live block.
    enter(cx, || unsafe { cb(block.as_ptr()) });
}

/// A user poll is ready: its (non-upstream) C callback runs.
pub(crate) fn poll(cx: &mut Cx<Capi>, p: PollId, ready: Interest, error: bool) {
    let Some((block, Some(cb))) = cx.poll_ext(p).map(|e| (e.block, e.cb)) else {
        return;
    };
    // SAFETY: calling the registered C callback with the poll's live block.
    enter(cx, || unsafe {
        cb(block.as_ptr(), ready.bits(), c_int::from(error))
    });
}

fn loop_cb(cx: &mut Cx<Capi>, pick: fn(&crate::state::LoopState) -> Option<crate::types::LoopCb>) {
    let st = *cx.ext();
    // SAFETY: the loop ext points to this loop's live state.
    let (cb, block) = unsafe { (pick(&*st), (*st).block) };
    if let Some(cb) = cb {
        // SAFETY: calling the registered C callback with the loop's live block.
        enter(cx, || unsafe { cb(block.as_ptr()) });
    }
}

fn wakeup(cx: &mut Cx<Capi>) {
    loop_cb(cx, |s| s.wakeup);
}
fn pre(cx: &mut Cx<Capi>) {
    loop_cb(cx, |s| s.pre);
}

/// End of an iteration: free the blocks of listen sockets closed during it, then `post_cb`.
fn post(cx: &mut Cx<Capi>) {
    free_closed_listeners(cx);
    loop_cb(cx, |s| s.post);
}

/// Frees the blocks of listen sockets core no longer has (closed directly or by context close).
pub(crate) fn free_closed_listeners(cx: &mut Cx<Capi>) {
    let st = *cx.ext();
    // SAFETY: the loop ext points to this loop's live state.
    let mut map = unsafe { (*st).listeners.borrow_mut() };
    map.retain(|&l, &mut (block, _)| {
        let alive = cx.listen_context(l).is_some();
        if !alive {
            block.free();
        }
        alive
    });
}

/// A closed socket's slot was released: its block goes with it.
fn released(_cx: &mut Cx<Capi>, _s: SocketId, ext: Option<Block>) {
    if let Some(b) = ext {
        b.free();
    }
}
