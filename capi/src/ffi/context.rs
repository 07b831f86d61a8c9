//! `us_socket_context_t`: create, free, callbacks, ext, listen, connect, adopt, close.

use std::ffi::{c_char, c_int, c_uint, c_ushort, c_void};
use std::rc::Rc;

use usockets_core::{ConnectTarget, Cx, ListenOptions, ListenTarget};

use super::{c_str, on_obj};
use crate::block::{Block, Obj, ObjBlock};
use crate::state::{loop_state, Capi, CtxState, Listener};
use crate::trampoline;
use crate::types::*;

fn ext_size(n: c_int) -> u32 {
    u32::try_from(n).unwrap_or(0)
}

/// A context of the loop `parent_or_loop` (`child` false) or a child of the context
/// `parent_or_loop` (`child` true).
///
/// # Safety
/// `parent_or_loop` is NULL or a live block of this library, used on its loop's thread.
unsafe fn new_context(
    parent_or_loop: *mut crate::block::Header,
    ext: c_int,
    child: bool,
    tls: Option<crate::tls::New>,
) -> *mut us_socket_context_t {
    // SAFETY: `parent_or_loop` is NULL or a live block: this function's contract.
    unsafe {
        on_obj(parent_or_loop, std::ptr::null_mut(), |cx, obj| {
            let make = match (child, obj) {
                (false, Obj::Loop) => None,
                (true, Obj::Context(parent)) if cx.context_ext(parent).is_some() => Some(parent),
                _ => return std::ptr::null_mut(),
            };
            let Some(block) = ObjBlock::alloc(Obj::Loop, ext_size(ext), cx) else {
                return std::ptr::null_mut();
            };
            let st = CtxState {
                block,
                cbs: Rc::default(),
            };
            // On failure core drops `st`: its block stays registered until us_loop_free.
            let made = match make {
                None => cx.context_create(st, trampoline::CONTEXT_CALLBACKS),
                Some(parent) => cx.context_create_child(parent, st).inspect(|&c| {
                    if let Some(cbs) = cx.context_callbacks_mut(c) {
                        *cbs = trampoline::CONTEXT_CALLBACKS;
                    }
                }),
            };
            let Ok(c) = made else {
                return std::ptr::null_mut();
            };
            match (tls, make) {
                (Some(tls), _) => crate::tls::install(cx, c, tls),
                (None, Some(parent)) => crate::tls::inherit(cx, parent, c),
                (None, None) => {}
            }
            cx.context_ext_mut(c).map_or(std::ptr::null_mut(), |st| {
                st.block.set_obj(Obj::Context(c));
                st.block.as_ptr()
            })
        })
    }
}

/// `us_create_socket_context`. With `ssl = 1` its sockets speak TLS as `options` say (see
/// the `tls` module); NULL when a file in them is missing or unusable. Without the `tls`
/// feature `ssl = 1` is plain TCP.
///
/// # Safety
/// `lp` is NULL or a live loop; `options`' strings are NULL or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn us_create_socket_context(
    ssl: c_int,
    lp: *mut us_loop_t,
    ext_size: c_int,
    options: us_socket_context_options_t,
) -> *mut us_socket_context_t {
    let tls = if ssl != 0 {
        // SAFETY: `options`' strings are NULL or NUL-terminated: this function's contract.
        match unsafe { crate::tls::from_options(&options) } {
            Ok(tls) => tls,
            Err(()) => return std::ptr::null_mut(),
        }
    } else {
        None
    };
    // SAFETY: `lp` is NULL or a live loop, used on its thread: this function's contract.
    unsafe { new_context(lp, ext_size, false, tls) }
}

/// `us_create_child_socket_context`: a context meant as an adoption target.
///
/// # Safety
/// `ctx` is NULL or a live context.
#[no_mangle]
pub unsafe extern "C" fn us_create_child_socket_context(
    _ssl: c_int,
    ctx: *mut us_socket_context_t,
    ext_size: c_int,
) -> *mut us_socket_context_t {
    // SAFETY: `ctx` is NULL or a live context, used on its loop's thread: this function's
    // contract. A child shares its parent's TLS configuration (core copies it).
    unsafe { new_context(ctx, ext_size, true, None) }
}

/// `us_socket_context_free`: frees the context. Sockets still in it are closed first.
///
/// # Safety
/// `ctx` is NULL or a live context; it is not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn us_socket_context_free(_ssl: c_int, ctx: *mut us_socket_context_t) {
    // SAFETY: `ctx` is NULL or a live context: this function's contract.
    unsafe {
        on_obj(ctx, (), |cx, obj| {
            let Obj::Context(c) = obj else { return };
            let freed = match cx.context_free(c) {
                Ok(st) => Some(st),
                Err(_) => {
                    cx.context_close(c);
                    cx.context_free(c).ok()
                }
            };
            if let Some(st) = freed {
                crate::tls::forget(cx, c);
                st.block.free();
                // The chunks its sockets emptied go now, with their share of its callbacks;
                // the others with their last socket, released at the end of the iteration.
                crate::state::loop_state(cx)
                    .slab
                    .borrow_mut()
                    .orphan(&st.cbs);
            }
        })
    }
}

macro_rules! setter {
    ($name:ident, $field:ident, $ty:ty) => {
        /// Sets the context's callback of the same name.
        ///
        /// # Safety
        /// `ctx` is NULL or a live context; `cb` is NULL or a valid C function.
        #[no_mangle]
        pub unsafe extern "C" fn $name(
            _ssl: c_int,
            ctx: *mut us_socket_context_t,
            cb: Option<$ty>,
        ) {
            // SAFETY: `ctx` is NULL or a live context: this function's contract.
            unsafe {
                on_obj(ctx, (), |cx, obj| {
                    if let Obj::Context(c) = obj {
                        // Shared with the headers of the context's sockets: they see it now.
                        if let Some(st) = cx.context_ext(c) {
                            st.cbs.$field.set(cb);
                        }
                    }
                })
            }
        }
    };
}

setter!(us_socket_context_on_pre_open, on_pre_open, PreOpenCb);
setter!(us_socket_context_on_open, on_open, OpenCb);
setter!(us_socket_context_on_close, on_close, CloseCb);
setter!(us_socket_context_on_data, on_data, DataCb);
setter!(us_socket_context_on_writable, on_writable, SocketCb);
setter!(us_socket_context_on_timeout, on_timeout, SocketCb);
setter!(us_socket_context_on_long_timeout, on_long_timeout, SocketCb);
setter!(us_socket_context_on_end, on_end, SocketCb);
setter!(
    us_socket_context_on_connect_error,
    on_connect_error,
    ConnectErrorCb
);

/// `us_socket_context_ext`: the context's ext, 16-byte aligned.
///
/// # Safety
/// `ctx` is NULL or a live context.
#[no_mangle]
pub unsafe extern "C" fn us_socket_context_ext(
    _ssl: c_int,
    ctx: *mut us_socket_context_t,
) -> *mut c_void {
    super::ext_of(ctx)
}

/// `us_socket_context_loop`.
///
/// # Safety
/// `ctx` is NULL or a live context.
#[no_mangle]
pub unsafe extern "C" fn us_socket_context_loop(
    _ssl: c_int,
    ctx: *mut us_socket_context_t,
) -> *mut us_loop_t {
    // SAFETY: `ctx` is NULL or a live context: this function's contract.
    unsafe { super::loop_of(ctx) }
}

/// `us_socket_context_timestamp`: the short-tick counter (0–239).
///
/// # Safety
/// `ctx` is NULL or a live context.
#[no_mangle]
pub unsafe extern "C" fn us_socket_context_timestamp(
    _ssl: c_int,
    ctx: *mut us_socket_context_t,
) -> c_ushort {
    // SAFETY: `ctx` is NULL or a live context: this function's contract.
    unsafe {
        on_obj(ctx, 0, |cx, obj| match obj {
            Obj::Context(c) => cx.context_timestamp(c).unwrap_or(0),
            _ => 0,
        })
    }
}

/// `us_socket_context_close`: closes every listen socket, then every socket (on_close fires).
///
/// # Safety
/// `ctx` is NULL or a live context.
#[no_mangle]
pub unsafe extern "C" fn us_socket_context_close(_ssl: c_int, ctx: *mut us_socket_context_t) {
    // SAFETY: `ctx` is NULL or a live context: this function's contract.
    unsafe {
        on_obj(ctx, (), |cx, obj| {
            if let Obj::Context(c) = obj {
                cx.context_close(c);
            }
        })
    }
}

/// Listens with the context `ctx`; accepted sockets get `ext` bytes of ext.
///
/// # Safety
/// `ctx` is NULL or a live block of this library, used on its loop's thread.
unsafe fn listen(
    ctx: *mut us_socket_context_t,
    target: ListenTarget<'_>,
    options: c_int,
    ext: c_int,
) -> *mut us_listen_socket_t {
    let opts = ListenOptions::default().with_exclusive_port(options & 1 != 0);
    // SAFETY: `ctx` is NULL or a live block: this function's contract.
    unsafe {
        on_obj(ctx, std::ptr::null_mut(), |cx, obj| {
            let Obj::Context(c) = obj else {
                return std::ptr::null_mut();
            };
            let Some(cbs) = cx.context_ext(c).map(|st| st.cbs.clone()) else {
                return std::ptr::null_mut();
            };
            let Ok(l) = cx.listen(c, target, opts, || None) else {
                return std::ptr::null_mut();
            };
            let Some(block) = ObjBlock::alloc(Obj::Listen(l), 0, cx) else {
                cx.listen_close(l);
                return std::ptr::null_mut();
            };
            let ls = block.as_ptr();
            let listener = Listener {
                block,
                ext_size: ext_size(ext),
                cbs,
            };
            loop_state(cx).listeners.borrow_mut().insert(l, listener);
            ls
        })
    }
}

/// `us_socket_context_listen`: `host` NULL means every interface (dual-stack); port 0 picks an
/// ephemeral port (read it with `us_socket_local_port`). Accepted sockets get `socket_ext_size`
/// zeroed ext bytes.
///
/// # Safety
/// `ctx` is NULL or a live context; `host` is NULL or a C string.
#[no_mangle]
pub unsafe extern "C" fn us_socket_context_listen(
    _ssl: c_int,
    ctx: *mut us_socket_context_t,
    host: *const c_char,
    port: c_int,
    options: c_int,
    socket_ext_size: c_int,
) -> *mut us_listen_socket_t {
    let Ok(port) = u16::try_from(port) else {
        return std::ptr::null_mut();
    };
    // SAFETY: `host` is NULL or a C string: this function's contract.
    let host = unsafe { c_str(host) };
    // SAFETY: `ctx` is NULL or a live context: this function's contract.
    unsafe {
        listen(
            ctx,
            ListenTarget::Host { host, port },
            options,
            socket_ext_size,
        )
    }
}

/// `us_socket_context_listen_unix`.
///
/// # Safety
/// `ctx` is NULL or a live context; `path` is a C string.
#[no_mangle]
pub unsafe extern "C" fn us_socket_context_listen_unix(
    _ssl: c_int,
    ctx: *mut us_socket_context_t,
    path: *const c_char,
    options: c_int,
    socket_ext_size: c_int,
) -> *mut us_listen_socket_t {
    // SAFETY: `path` is a C string: this function's contract.
    let Some(path) = (unsafe { c_str(path) }) else {
        return std::ptr::null_mut();
    };
    // SAFETY: `ctx` is NULL or a live context: this function's contract.
    unsafe { listen(ctx, ListenTarget::Unix(path), options, socket_ext_size) }
}

/// `us_listen_socket_close`: stops listening; the memory goes at the end of the iteration.
///
/// # Safety
/// `ls` is NULL or a live listen socket.
#[no_mangle]
pub unsafe extern "C" fn us_listen_socket_close(_ssl: c_int, ls: *mut us_listen_socket_t) {
    // SAFETY: `ls` is NULL or a live listen socket: this function's contract.
    unsafe {
        on_obj(ls, (), |cx, obj| {
            if let Obj::Listen(l) = obj {
                cx.listen_close(l);
            }
        })
    }
}

/// Connects a new socket of the context `ctx` with `ext` bytes of ext.
///
/// # Safety
/// `ctx` is NULL or a live block of this library, used on its loop's thread.
unsafe fn connect(
    ctx: *mut us_socket_context_t,
    target: ConnectTarget<'_>,
    ext: c_int,
) -> *mut us_socket_t {
    // SAFETY: `ctx` is NULL or a live block: this function's contract.
    unsafe {
        on_obj(ctx, std::ptr::null_mut(), |cx, obj| {
            let Obj::Context(c) = obj else {
                return std::ptr::null_mut();
            };
            let Some(cbs) = cx.context_ext(c).map(|st| st.cbs.clone()) else {
                return std::ptr::null_mut();
            };
            let Some(block) = Block::alloc_in(ext_size(ext), Some(&cbs), cx) else {
                return std::ptr::null_mut();
            };
            // On failure core drops the block without freeing it: it stays in the loop's slab,
            // counted live, until us_loop_free.
            let Ok(s) = cx.connect(c, target, Some(block)) else {
                return std::ptr::null_mut();
            };
            match cx.socket_ext_mut(s) {
                Some(Some(block)) => {
                    block.set_obj(Obj::Socket(s));
                    block.as_ptr()
                }
                _ => std::ptr::null_mut(),
            }
        })
    }
}

/// `us_socket_context_connect`: a non-blocking connect. NULL only for bad arguments or
/// exhausted memory; every network or name failure arrives through `on_connect_error` with the
/// raw OS error. Names are resolved with a blocking `getaddrinfo` (literal addresses are not).
///
/// # Safety
/// `ctx` is NULL or a live context; `host` and `source_host` are NULL or C strings.
#[no_mangle]
pub unsafe extern "C" fn us_socket_context_connect(
    _ssl: c_int,
    ctx: *mut us_socket_context_t,
    host: *const c_char,
    port: c_int,
    source_host: *const c_char,
    _options: c_int,
    socket_ext_size: c_int,
) -> *mut us_socket_t {
    // SAFETY: `host` is NULL or a C string: this function's contract.
    let host = unsafe { c_str(host) };
    // SAFETY: `source_host` is NULL or a C string: this function's contract.
    let source = unsafe { c_str(source_host) };
    let (Some(host), Ok(port)) = (host, u16::try_from(port)) else {
        return std::ptr::null_mut();
    };
    // SAFETY: `ctx` is NULL or a live context: this function's contract.
    unsafe {
        connect(
            ctx,
            ConnectTarget::Host { host, port, source },
            socket_ext_size,
        )
    }
}

/// `us_socket_context_connect_unix`.
///
/// # Safety
/// `ctx` is NULL or a live context; `path` is a C string.
#[no_mangle]
pub unsafe extern "C" fn us_socket_context_connect_unix(
    _ssl: c_int,
    ctx: *mut us_socket_context_t,
    path: *const c_char,
    _options: c_int,
    socket_ext_size: c_int,
) -> *mut us_socket_t {
    // SAFETY: `path` is a C string: this function's contract.
    let Some(path) = (unsafe { c_str(path) }) else {
        return std::ptr::null_mut();
    };
    // SAFETY: `ctx` is NULL or a live context: this function's contract.
    unsafe { connect(ctx, ConnectTarget::Unix(path), socket_ext_size) }
}

/// `us_socket_context_adopt_socket`: moves `s` to `ctx` with `ext_size` bytes of ext, keeping
/// the ext prefix. The block moves to another context or a bigger ext (as the C library's
/// reallocation may): use the returned pointer from then on.
/// A closed socket is returned unchanged. Timeouts are reset.
///
/// # Safety
/// `ctx` and `s` are NULL or live objects of the same loop.
#[no_mangle]
pub unsafe extern "C" fn us_socket_context_adopt_socket(
    _ssl: c_int,
    ctx: *mut us_socket_context_t,
    s: *mut us_socket_t,
    ext_size: c_int,
) -> *mut us_socket_t {
    // SAFETY: `ctx` is NULL or a live context: this function's contract.
    let Some((Obj::Context(c), _)) = (unsafe { crate::block::peek(ctx) }) else {
        return s;
    };
    // SAFETY: `s` is NULL or a live socket of the same loop: this function's contract.
    unsafe {
        on_obj(s, s, |cx, obj| {
            let Obj::Socket(id) = obj else { return s };
            if cx.is_closed(id) != Some(false) {
                return s;
            }
            let Some(cbs) = cx.context_ext(c).map(|st| st.cbs.clone()) else {
                return s;
            };
            let want = self::ext_size(ext_size);
            let Some(Some(old)) = cx.socket_ext(id) else {
                return s;
            };
            // The socket moves to a block of the new context (its callbacks live in the
            // block's chunk), keeping the ext prefix; within its context, only a bigger ext
            // moves it.
            let same_context = old
                .header()
                .cbs
                .as_ref()
                .is_some_and(|o| Rc::ptr_eq(o, &cbs));
            let mut new = if !same_context || want > old.header().ext_size {
                match old.moved(want, Some(&cbs)) {
                    Some(b) => Some(b),
                    None => return s,
                }
            } else {
                None
            };
            let mut gone = None;
            let adopted = cx.adopt_with(id, c, |e| {
                if let Some(b) = new.take() {
                    gone = e.replace(b);
                }
            });
            if let Some(b) = gone.or(new) {
                b.free();
            }
            match (adopted, cx.socket_ext(id)) {
                (Some(_), Some(Some(b))) => b.as_ptr(),
                _ => s,
            }
        })
    }
}

/// `us_adopt_accepted_socket`: wraps a descriptor accepted elsewhere and calls `on_open`
/// (is_client = 0) synchronously. NULL when it cannot (the descriptor stays the caller's).
///
/// # Safety
/// `ctx` is NULL or a live context; `ip` is NULL or `ip_length` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn us_adopt_accepted_socket(
    _ssl: c_int,
    ctx: *mut us_socket_context_t,
    fd: LIBUS_SOCKET_DESCRIPTOR,
    socket_ext_size: c_uint,
    ip: *mut c_char,
    ip_length: c_int,
) -> *mut us_socket_t {
    // SAFETY: `ip` is NULL or `ip_length` readable bytes: this function's contract.
    let ip = unsafe { super::bytes(ip, ip_length) };
    let adopt = |cx: &mut Cx<Capi>, obj: Obj| {
        let Obj::Context(c) = obj else {
            return std::ptr::null_mut();
        };
        let Some(cbs) = cx.context_ext(c).map(|st| st.cbs.clone()) else {
            return std::ptr::null_mut();
        };
        let Some(block) = Block::alloc_in(socket_ext_size, Some(&cbs), cx) else {
            return std::ptr::null_mut();
        };
        let first = block.as_ptr();
        // SAFETY: C hands `fd` over, open, by calling this function (its contract); if adopting
        // fails it goes back to C below.
        let Some(owned) = (unsafe { crate::fd::from_c(cx, fd) }) else {
            block.free();
            return std::ptr::null_mut();
        };
        match cx.adopt_accepted(c, owned, Some(block), ip) {
            // on_open ran already, possibly closing or adopting the socket: its current block
            // is in core.
            Ok(s) => cx
                .socket_ext(s)
                .and_then(Option::as_ref)
                .map_or(first, Block::as_ptr),
            Err(rejected) => {
                // The descriptor stays the caller's, as the C library leaves it. Core dropped
                // the block without freeing it: it stays in the loop's slab, counted live,
                // until us_loop_free.
                crate::fd::into_c(rejected.into_fd());
                std::ptr::null_mut()
            }
        }
    };
    // SAFETY: `ctx` is NULL or a live context: this function's contract.
    unsafe { on_obj(ctx, std::ptr::null_mut(), adopt) }
}

#[cfg(test)]
mod tests {
    use std::ffi::{c_char, c_int};
    use std::ptr::null_mut;

    use super::*;
    use crate::ffi::loops::*;
    use crate::ffi::socket::*;
    use crate::ffi::timer::*;

    /// What the test keeps in the loop ext.
    struct World {
        ctx: *mut us_socket_context_t,
        opens: u32,
        freed: bool,
        /// Chunks and live blocks of the slab right after the context was freed.
        at_free: (usize, usize),
        ticks_after: u32,
        iterations: u32,
    }

    /// The loop's slab: its chunks and live blocks.
    ///
    /// # Safety
    /// `lp` is a live loop.
    unsafe fn slab_of(lp: *mut us_loop_t) -> (usize, usize) {
        // SAFETY: `lp` is a live loop: this function's contract.
        let Some((Obj::Loop, st)) = (unsafe { crate::block::peek(lp) }) else {
            panic!("not a loop");
        };
        // SAFETY: a live loop's state is live.
        let slab = unsafe { &*st }.slab.borrow();
        (slab.chunk_count(), slab.live())
    }

    /// The test's `World`, in the ext of its loop `lp`.
    ///
    /// # Safety
    /// `lp` is the test's live loop, and no other reference to its `World` is alive.
    unsafe fn world<'a>(lp: *mut us_loop_t) -> &'a mut World {
        // SAFETY: `lp` is live (this function's contract).
        let ext = unsafe { us_loop_ext(lp) }.cast::<World>();
        // SAFETY: the loop's ext holds the test's `World`, written before the loop runs, and
        // nothing else refers to it (this function's contract).
        unsafe { &mut *ext }
    }

    /// The loop of the socket `s`.
    ///
    /// # Safety
    /// `s` is a live socket.
    unsafe fn loop_of_socket(s: *mut us_socket_t) -> *mut us_loop_t {
        // SAFETY: `s` is live (this function's contract).
        let ctx = unsafe { us_socket_context(0, s) };
        // SAFETY: a live socket's context is live.
        unsafe { us_socket_context_loop(0, ctx) }
    }

    unsafe extern "C" fn on_open(
        s: *mut us_socket_t,
        _client: c_int,
        _ip: *mut c_char,
        _len: c_int,
    ) -> *mut us_socket_t {
        // SAFETY: `s` is a live socket of the test's loop.
        let lp = unsafe { loop_of_socket(s) };
        // SAFETY: the test's loop; no other reference to its `World` is alive.
        unsafe { world(lp) }.opens += 1;
        s
    }

    unsafe extern "C" fn on_post(lp: *mut us_loop_t) {
        // SAFETY: the test's live loop; no other reference to its `World` is alive.
        let w = unsafe { world(lp) };
        w.iterations += 1;
        assert!(w.iterations < 10_000, "watchdog");
        if w.opens == 2 && !w.freed {
            w.freed = true;
            // SAFETY: `ctx` is live, both its sockets open; no callback runs meanwhile (no
            // on_close is set).
            unsafe { us_socket_context_free(0, w.ctx) };
            // SAFETY: `lp` is live.
            w.at_free = unsafe { slab_of(lp) };
        }
    }

    unsafe extern "C" fn on_timer(t: *mut us_timer_t) {
        // SAFETY: `t` is the test's live timer.
        let lp = unsafe { us_timer_loop(t) };
        // SAFETY: the test's live loop; no other reference to its `World` is alive.
        let w = unsafe { world(lp) };
        if w.freed {
            w.ticks_after += 1;
            if w.ticks_after == 3 {
                // SAFETY: `t` is live; the loop has nothing left then, so it returns.
                unsafe { us_timer_close(t) };
            }
        }
    }

    fn options() -> us_socket_context_options_t {
        us_socket_context_options_t {
            key_file_name: std::ptr::null(),
            cert_file_name: std::ptr::null(),
            passphrase: std::ptr::null(),
            dh_params_file_name: std::ptr::null(),
            ca_file_name: std::ptr::null(),
            ssl_ciphers: std::ptr::null(),
            ssl_prefer_low_memory_usage: 0,
        }
    }

    /// Frees the context with its two sockets (both ends of a connection) open, from `post`;
    /// the timer keeps the loop going until they are released.
    #[test]
    fn a_context_freed_with_open_sockets_leaves_no_slab_chunk_once_they_are_released() {
        let size = std::mem::size_of::<World>() as u32;
        // SAFETY: no argument is a pointer.
        let lp = unsafe { us_create_loop(null_mut(), None, None, Some(on_post), size) };
        assert!(!lp.is_null());
        // SAFETY: `lp` is live.
        let ext = unsafe { us_loop_ext(lp) }.cast::<World>();
        let w = World {
            ctx: null_mut(),
            opens: 0,
            freed: false,
            at_free: (0, 0),
            ticks_after: 0,
            iterations: 0,
        };
        // SAFETY: the loop's ext has room for a `World`, 16-byte aligned, and nothing refers
        // to it.
        unsafe { ext.write(w) };
        // SAFETY: `lp` is live; the options' strings are NULL.
        let ctx = unsafe { us_create_socket_context(0, lp, 0, options()) };
        // SAFETY: `ctx` is live; `on_open` is a valid callback.
        unsafe { us_socket_context_on_open(0, ctx, Some(on_open)) };
        // SAFETY: the test's loop; no other reference to its `World` is alive.
        unsafe { world(lp) }.ctx = ctx;
        // SAFETY: `ctx` is live; the host is a C string.
        let ls = unsafe { us_socket_context_listen(0, ctx, c"127.0.0.1".as_ptr(), 0, 0, 16) };
        assert!(!ls.is_null());
        // SAFETY: `ls` is live.
        let port = unsafe { us_socket_local_port(0, ls.cast()) };
        // SAFETY: `ctx` is live; the host is a C string, the source NULL.
        let s = unsafe {
            us_socket_context_connect(0, ctx, c"127.0.0.1".as_ptr(), port, null_mut(), 0, 16)
        };
        assert!(!s.is_null());
        // SAFETY: `lp` is live.
        let t = unsafe { us_create_timer(lp, 0, 0) };
        // SAFETY: `t` is live; `on_timer` is a valid callback.
        unsafe { us_timer_set(t, Some(on_timer), 1, 1) };
        // SAFETY: `lp` is live, on this thread.
        unsafe { us_loop_run(lp) };
        // SAFETY: the test's loop; no other reference to its `World` is alive.
        let at_free = unsafe { world(lp) }.at_free;
        assert_eq!(
            at_free,
            (1, 2),
            "the closed sockets keep their blocks until released"
        );
        // SAFETY: `lp` is live.
        let now = unsafe { slab_of(lp) };
        assert_eq!(
            now,
            (0, 0),
            "the chunk went with the last block, with no collect"
        );
        // SAFETY: `lp` is live and not used afterwards.
        unsafe { us_loop_free(lp) };
    }
}
