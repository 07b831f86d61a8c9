//! Core's callbacks, one per kind, forwarding to the C callbacks stored with each object. Every
//! call into C goes through [`enter`] so that `us_*` calls made from C reach this same `Cx`.
//!
//! One dispatch per socket callback: core finds the context's callbacks (these trampolines) and
//! hands over the socket; the trampoline looks up only the socket's slot (core's `socket_ext`,
//! for the block pointer C knows) and reads the C callback from that block's header, which
//! shares its context's callbacks (`Rc<ContextCbs>`, set at creation and on adoption). There is
//! no second lookup of the context.

use std::cell::Cell;
use std::ffi::{c_char, c_int};
use std::ptr::NonNull;

use usockets_core::{
    Accepted, CloseCause, ContextCallbacks, ContextId, Cx, ErrorKind, Interest, ListenId,
    LoopCallbacks, OsError, PollId, RecvBuf, SocketId, TimerId, RECV_PADDING,
};

use crate::block::{Block, Obj};
use crate::fd::{self, Fd};
use crate::state::{enter, loop_state, Capi};
use crate::types::{us_socket_t, ContextCbs, SocketCb};

/// The callbacks core gets for every context: each forwards to the context's C callback.
/// Every context has these same ones (`Config::SHARED_CALLBACKS`), so core calls them without
/// looking up the socket's context.
pub(crate) const CONTEXT_CALLBACKS: ContextCallbacks<Capi> = ContextCallbacks {
    on_pre_open: Some(pre_open),
    on_open: Some(open),
    on_close: Some(close),
    on_data: Some(data),
    on_writable: Some(writable),
    on_timeout: Some(timeout),
    on_long_timeout: Some(long_timeout),
    on_end: Some(end),
    on_connect_error: Some(connect_error),
};

/// The loop-level callbacks core gets for every loop (`Config::SHARED_LOOP_CALLBACKS`, so
/// core calls them directly).
pub(crate) const LOOP_CALLBACKS: LoopCallbacks<Capi> = LoopCallbacks {
    wakeup: Some(wakeup),
    pre: Some(pre),
    post: Some(post),
    released: Some(released),
};

/// The socket's block pointer and the C callback `pick` chooses, both read from the block: one
/// lookup (core's socket slot, for the pointer C knows), no context lookup (the header holds
/// the context's callbacks).
fn target<F: Copy>(
    cx: &Cx<Capi>,
    s: SocketId,
    pick: impl FnOnce(&ContextCbs) -> &Cell<Option<F>>,
) -> Option<(*mut us_socket_t, Option<F>)> {
    cx.socket_ext(s)?.as_ref().map(|b| target_of(b, pick))
}

/// A socket block's pointer and the C callback `pick` chooses from its header.
fn target_of<F: Copy>(
    block: &Block,
    pick: impl FnOnce(&ContextCbs) -> &Cell<Option<F>>,
) -> (*mut us_socket_t, Option<F>) {
    let cb = block.header().cbs.as_deref().and_then(|c| pick(c).get());
    (block.as_ptr(), cb)
}

/// [`target_of`] from a socket block's raw pointer.
///
/// # Safety
/// `p` is a live socket block.
#[inline(always)]
unsafe fn target_at<F: Copy>(
    p: NonNull<u8>,
    pick: impl FnOnce(&ContextCbs) -> &Cell<Option<F>>,
) -> (*mut us_socket_t, Option<F>) {
    // SAFETY: `p` is a live socket block (this function's contract), so its chunk's header
    // is live and only ever reached through shared references.
    let header = unsafe { crate::slab::header(p) };
    let cb = header.cbs.as_deref().and_then(|c| pick(c).get());
    (p.as_ptr().cast(), cb)
}

/// Copies `ip` to a writable buffer for C (`char *ip`).
fn ip_buf(ip: &[u8]) -> ([u8; 16], c_int) {
    let mut buf = [0u8; 16];
    let n = ip.len().min(16);
    buf[..n].copy_from_slice(&ip[..n]);
    (buf, n as c_int)
}

/// `on_pre_open`: C returns the descriptor to let the library adopt it; anything else (uWS
/// returns `LIBUS_SOCKET_ERROR`: -1, on Windows `INVALID_SOCKET`) means C took it, and C owns it
/// from then on.
fn pre_open(cx: &mut Cx<Capi>, ctx: ContextId, accepted: &mut Accepted<Fd>, ip: &[u8]) {
    let Some((cb, block)) = cx
        .context_ext(ctx)
        .and_then(|c| c.cbs.on_pre_open.get().map(|f| (f, c.block.as_ptr())))
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
    // SAFETY: `cb` is the C function the program registered with
    // us_socket_context_on_pre_open; `block` is the live context block and `ipp` is NULL or
    // `len` bytes in `ipb`, alive for the call.
    let kept = enter(cx, || unsafe { cb(block, number, ipp, len) });
    if kept != number {
        if let Some(taken) = accepted.take() {
            fd::into_c(taken);
        }
    }
}

/// Gives an accepted socket (ext `None` until now) its block, sized by the listen socket that
/// accepted it and pointing to its context's callbacks; closes the socket when out of memory.
fn give_block(cx: &mut Cx<Capi>, s: SocketId) -> bool {
    let (size, cbs) = cx
        .socket_listener(s)
        .and_then(|l| {
            let map = loop_state(cx).listeners.borrow();
            map.get(&l).map(|l| (l.ext_size, l.cbs.clone()))
        })
        .unzip();
    // Core accepts only on a live listen socket, which is in the map; the context is the
    // fallback all the same.
    let cbs = cbs.or_else(|| {
        let c = cx.socket_context(s)?;
        cx.context_ext(c).map(|st| st.cbs.clone())
    });
    let Some(mut block) = Block::alloc(Obj::Socket(s), size.unwrap_or(0), cx) else {
        cx.close(s, 0, None);
        return false;
    };
    block.set_cbs(cbs);
    match cx.socket_ext_mut(s) {
        Some(ext) => *ext = Some(block),
        None => block.free(),
    }
    true
}

fn open(cx: &mut Cx<Capi>, s: SocketId, is_client: bool, ip: &[u8]) {
    if matches!(cx.socket_ext(s), Some(None)) && !give_block(cx, s) {
        return;
    }
    let Some(Some(block)) = cx.socket_ext_mut(s) else {
        return;
    };
    // A block made before core assigned the handle (us_adopt_accepted_socket) learns it here,
    // before C sees the pointer.
    block.set_obj(Obj::Socket(s));
    let (sp, Some(cb)) = target_of(block, |c| &c.on_open) else {
        return;
    };
    let (mut ipb, len) = ip_buf(ip);
    let ipp = if len > 0 {
        ipb.as_mut_ptr().cast::<c_char>()
    } else {
        std::ptr::null_mut()
    };
    // SAFETY: `cb` is the C function the program registered with us_socket_context_on_open for
    // the socket's context; `sp` is the socket's live block and `ipp` is NULL or `len` bytes in
    // `ipb`, alive for the call.
    enter(cx, || unsafe { cb(sp, c_int::from(is_client), ipp, len) });
}

/// `on_close`: C gets the code and reason given to `us_socket_close`, and `(0, NULL)` for every
/// close the library starts.
fn close(cx: &mut Cx<Capi>, s: SocketId, cause: CloseCause<*mut std::ffi::c_void>) {
    let (code, reason) = cause.code_and_reason();
    let ret = match target(cx, s, |c| &c.on_close) {
        Some((sp, Some(cb))) => {
            let reason = reason.unwrap_or(std::ptr::null_mut());
            // SAFETY: `cb` is the C function the program registered with
            // us_socket_context_on_close for the socket's context; `sp` is the socket's block,
            // which stays live until core releases the slot, after this call.
            enter(cx, || unsafe { cb(sp, code, reason) }).cast()
        }
        Some((sp, None)) => sp.cast(),
        None => std::ptr::null_mut(),
    };
    loop_state(cx).close_ret.set(ret);
}

fn data(cx: &mut Cx<Capi>, s: SocketId, buf: &mut RecvBuf<'_>) {
    // The block pointer core read from the socket's slot for the `recv` (`Capi::data_hint`),
    // or, for plaintext the TLS layer delivers, a lookup.
    let found = match buf.hint() {
        // SAFETY: core took the hint from this socket's ext, `Some(block)`, during the event
        // it is dispatching now; the block is freed only when core releases the slot, at the
        // end of the iteration at the earliest, so it is live for this call.
        Some(p) => Some(unsafe { target_at(p.cast::<u8>(), |c| &c.on_data) }),
        None => target(cx, s, |c| &c.on_data),
    };
    let Some((sp, Some(cb))) = found else {
        return;
    };
    let len = buf.len() as c_int;
    // The pointer is derived from the whole padded region (not from the data alone) so that C
    // may write into the padding on both sides; the data starts RECV_PADDING bytes in.
    let data = buf.padded_ptr().wrapping_add(RECV_PADDING).cast::<c_char>();
    // SAFETY: `cb` is the C function the program registered with us_socket_context_on_data for
    // the socket's context; `sp` is the socket's live block; `data` has `len` bytes with
    // RECV_PADDING writable bytes on each side, in the receive buffer core lends for this call.
    enter(cx, || unsafe { cb(sp, data, len) });
}

fn simple(cx: &mut Cx<Capi>, s: SocketId, pick: fn(&ContextCbs) -> &Cell<Option<SocketCb>>) {
    let Some((sp, Some(cb))) = target(cx, s, pick) else {
        return;
    };
    // SAFETY: `cb` is the C function the program registered with the matching
    // us_socket_context_on_* (writable, timeout, long_timeout or end) for the socket's context;
    // `sp` is the socket's live block.
    enter(cx, || unsafe { cb(sp) });
}

fn writable(cx: &mut Cx<Capi>, s: SocketId) {
    simple(cx, s, |c| &c.on_writable);
}
fn timeout(cx: &mut Cx<Capi>, s: SocketId) {
    simple(cx, s, |c| &c.on_timeout);
}
fn long_timeout(cx: &mut Cx<Capi>, s: SocketId) {
    simple(cx, s, |c| &c.on_long_timeout);
}
fn end(cx: &mut Cx<Capi>, s: SocketId) {
    simple(cx, s, |c| &c.on_end);
}

fn connect_error(cx: &mut Cx<Capi>, s: SocketId, err: OsError) {
    let Some((sp, Some(cb))) = target(cx, s, |c| &c.on_connect_error) else {
        return;
    };
    // SAFETY: `cb` is the C function the program registered with
    // us_socket_context_on_connect_error for the socket's context; `sp` is the socket's live
    // block.
    enter(cx, || unsafe { cb(sp, c_error_code(err)) });
}

/// The code C's `on_connect_error` gets: the raw OS error, except that a name that does not
/// resolve (whose resolver codes are negative `EAI_*` values on Unix, outside errno's space)
/// gets the one positive value the header documents, `ENXIO` ("no such device or address").
pub(crate) fn c_error_code(err: OsError) -> i32 {
    if err.kind != ErrorKind::NameResolution {
        return err.code;
    }
    #[cfg(unix)]
    {
        libc::ENXIO
    }
    // WSAHOST_NOT_FOUND: already positive, and what Winsock's own resolver reports.
    #[cfg(not(unix))]
    {
        11001
    }
}

/// A timer fired: its C callback runs (and may close the timer).
pub(crate) fn timer(cx: &mut Cx<Capi>, t: TimerId) {
    let Some((tp, Some(cb))) = cx.timer_ext(t).map(|e| (e.block.as_ptr(), e.cb)) else {
        return;
    };
    // SAFETY: `cb` is the C function the program gave us_timer_set for this timer; `tp` is the
    // timer's live block.
    enter(cx, || unsafe { cb(tp) });
}

/// A user poll is ready: its (non-upstream) C callback runs.
pub(crate) fn poll(cx: &mut Cx<Capi>, p: PollId, ready: Interest, error: bool) {
    let Some((pp, Some(cb))) = cx.poll_ext(p).map(|e| (e.block.as_ptr(), e.cb)) else {
        return;
    };
    // SAFETY: `cb` is the C function the program gave us_poll_set_ready_callback for this poll;
    // `pp` is the poll's live block.
    enter(cx, || unsafe { cb(pp, ready.bits(), c_int::from(error)) });
}

fn loop_cb(cx: &mut Cx<Capi>, pick: fn(&crate::state::LoopState) -> Option<crate::types::LoopCb>) {
    let st = loop_state(cx);
    let (cb, lp) = (pick(st), st.block.as_ptr());
    if let Some(cb) = cb {
        // SAFETY: `cb` is the wakeup, pre or post C function the program gave us_create_loop;
        // `lp` is the loop's live block.
        enter(cx, || unsafe { cb(lp) });
    }
}

fn wakeup(cx: &mut Cx<Capi>) {
    loop_cb(cx, |s| s.wakeup);
}
fn pre(cx: &mut Cx<Capi>) {
    loop_cb(cx, |s| s.pre);
}

/// End of an iteration: `post_cb`.
fn post(cx: &mut Cx<Capi>) {
    loop_cb(cx, |s| s.post);
}

/// A closed listen socket's slot was released (`Config::listener_released`, at the end of
/// the iteration it closed in, directly or by its context's close): its block goes with it.
pub(crate) fn listener_released(cx: &mut Cx<Capi>, l: ListenId) {
    let removed = loop_state(cx).listeners.borrow_mut().remove(&l);
    if let Some(listener) = removed {
        listener.block.free();
    }
}

/// A closed socket's slot was released: its block goes with it, and once half the blocks of
/// the last peak are gone, the memory they held goes back to the OS (`memory`).
fn released(cx: &mut Cx<Capi>, _s: SocketId, ext: Option<Block>) {
    if let Some(b) = ext {
        b.free();
        crate::memory::after_free(loop_state(cx));
    }
}
