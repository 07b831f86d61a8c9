//! Server names (SNI) of `ssl = 1` contexts, and the non-upstream switch to verify servers
//! against the platform's roots. With `ssl = 0`, on a plain context, or built without the
//! `tls` feature, these do nothing and return NULL (-1 for the switch).
//!
//! The table functions (`add`, `remove`, `find`) reach the context's table through its loop's
//! state, not through core: they may be called from inside `on_server_name`, which runs in a
//! handshake (see the `tls` module).

use std::ffi::{c_char, c_int, c_void};

use crate::types::*;

/// `void (*)(us_socket_context_t *, const char *hostname)`.
pub type ServerNameCb = unsafe extern "C" fn(*mut us_socket_context_t, *const c_char);

/// `us_socket_context_add_server_name`: serves the certificate and key of `options`
/// (`cert_file_name`, `key_file_name`, `passphrase`) to clients asking for a name `pattern`
/// matches (`*` is one label in any position: `*.example.com`, `*.google.*`; at most 10
/// labels), with `user` for `us_socket_server_name_userdata`. Replaces an entry with the same
/// pattern. An unusable file or pattern adds nothing (the function returns nothing, as
/// upstream's).
///
/// # Safety
/// `ctx` is NULL or a live context; `pattern` and `options`' strings are NULL or
/// NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn us_socket_context_add_server_name(
    ssl: c_int,
    ctx: *mut us_socket_context_t,
    pattern: *const c_char,
    options: us_socket_context_options_t,
    user: *mut c_void,
) {
    #[cfg(feature = "tls")]
    // SAFETY: this function's contract.
    unsafe {
        enabled::add(ssl, ctx, pattern, &options, user);
    }
    #[cfg(not(feature = "tls"))]
    let _ = (ssl, ctx, pattern, options, user);
}

/// `us_socket_context_remove_server_name`: stops serving `pattern`.
///
/// # Safety
/// `ctx` is NULL or a live context; `pattern` is NULL or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn us_socket_context_remove_server_name(
    ssl: c_int,
    ctx: *mut us_socket_context_t,
    pattern: *const c_char,
) {
    #[cfg(feature = "tls")]
    // SAFETY: this function's contract.
    unsafe {
        enabled::remove(ssl, ctx, pattern);
    }
    #[cfg(not(feature = "tls"))]
    let _ = (ssl, ctx, pattern);
}

/// `us_socket_context_on_server_name`: `cb` is called with the context and the name when a
/// client asks for a name no pattern matches, before the default certificate is used; it may
/// add the name (`us_socket_context_add_server_name`), which then serves that very handshake.
/// It runs inside the handshake: only the server-name functions and `us_socket_context_ext`
/// may be called from it. NULL stops the calls.
///
/// # Safety
/// `ctx` is NULL or a live context; `cb` is NULL or a valid C function.
#[no_mangle]
pub unsafe extern "C" fn us_socket_context_on_server_name(
    ssl: c_int,
    ctx: *mut us_socket_context_t,
    cb: Option<ServerNameCb>,
) {
    #[cfg(feature = "tls")]
    // SAFETY: this function's contract.
    unsafe {
        enabled::on_server_name(ssl, ctx, cb);
    }
    #[cfg(not(feature = "tls"))]
    let _ = (ssl, ctx, cb);
}

/// `us_socket_server_name_userdata`: the `user` of the entry whose pattern matches the name the
/// client of server socket `s` asked for; NULL when none does (the default certificate served
/// it), for a client socket, or for a plain one.
///
/// # Safety
/// `s` is NULL or a live socket.
#[no_mangle]
pub unsafe extern "C" fn us_socket_server_name_userdata(
    ssl: c_int,
    s: *mut us_socket_t,
) -> *mut c_void {
    #[cfg(feature = "tls")]
    // SAFETY: this function's contract.
    return unsafe { enabled::socket_userdata(ssl, s) };
    #[cfg(not(feature = "tls"))]
    {
        let _ = (ssl, s);
        std::ptr::null_mut()
    }
}

/// `us_socket_context_find_server_name_userdata`: the `user` of the entry that serves
/// `pattern` (an exact pattern, or a name a pattern matches); NULL if none.
///
/// # Safety
/// `ctx` is NULL or a live context; `pattern` is NULL or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn us_socket_context_find_server_name_userdata(
    ssl: c_int,
    ctx: *mut us_socket_context_t,
    pattern: *const c_char,
) -> *mut c_void {
    #[cfg(feature = "tls")]
    // SAFETY: this function's contract.
    return unsafe { enabled::find(ssl, ctx, pattern) };
    #[cfg(not(feature = "tls"))]
    {
        let _ = (ssl, ctx, pattern);
        std::ptr::null_mut()
    }
}

/// Not upstream. `us_socket_context_verify_platform_roots`: connects of the `ssl = 1` context
/// `ctx` that has no CA file verify the server against the platform's trusted roots (chain and
/// host name) instead of not at all. Returns 0, or -1 (not a TLS context, built without TLS,
/// or no platform roots found). Call it before creating child contexts: they copy the
/// configuration when made.
///
/// # Safety
/// `ctx` is NULL or a live context.
#[no_mangle]
pub unsafe extern "C" fn us_socket_context_verify_platform_roots(
    ssl: c_int,
    ctx: *mut us_socket_context_t,
) -> c_int {
    #[cfg(feature = "tls")]
    // SAFETY: this function's contract.
    return unsafe { enabled::verify_platform_roots(ssl, ctx) };
    #[cfg(not(feature = "tls"))]
    {
        let _ = (ssl, ctx);
        -1
    }
}

#[cfg(feature = "tls")]
mod enabled {
    use std::ffi::{c_char, c_int, c_void, CString};
    use std::rc::Rc;

    use usockets_tls::{default_provider, Options, WithoutCa};

    use super::ServerNameCb;
    use crate::block::{self, Obj};
    use crate::ffi::{c_str, on_obj};
    use crate::tls::{state_of, CtxTls};
    use crate::types::*;

    /// The TLS state of the context behind `ctx`, found without the `Cx`.
    ///
    /// # Safety
    /// `ctx` is NULL or a live block of this library.
    unsafe fn tls_of(ssl: c_int, ctx: *mut us_socket_context_t) -> Option<Rc<CtxTls>> {
        if ssl == 0 {
            return None;
        }
        // SAFETY: `ctx` is NULL or a live block: this function's contract.
        let (obj, st) = unsafe { block::peek(ctx) }?;
        let Obj::Context(c) = obj else { return None };
        // SAFETY: the state of a live block is its loop's live state, only accessed through
        // shared references.
        state_of(unsafe { &*st }, c)
    }

    pub(super) unsafe fn add(
        ssl: c_int,
        ctx: *mut us_socket_context_t,
        pattern: *const c_char,
        options: &us_socket_context_options_t,
        user: *mut c_void,
    ) {
        // SAFETY: `ctx` is NULL or live, the strings NULL or NUL-terminated: the caller's
        // contract (that of `us_socket_context_add_server_name`).
        let (Some(tls), Some(pattern), options) = (
            unsafe { tls_of(ssl, ctx) },
            unsafe { c_str(pattern) },
            unsafe { crate::tls::context_options(options) },
        ) else {
            return;
        };
        if let Ok(key) = options.certified_key(&default_provider()) {
            let _ = tls.names.add(pattern, key, user as usize);
        }
    }

    pub(super) unsafe fn remove(ssl: c_int, ctx: *mut us_socket_context_t, pattern: *const c_char) {
        // SAFETY: the caller's contract (that of `us_socket_context_remove_server_name`).
        if let (Some(tls), Some(pattern)) = (unsafe { tls_of(ssl, ctx) }, unsafe { c_str(pattern) })
        {
            tls.names.remove(pattern);
        }
    }

    pub(super) unsafe fn find(
        ssl: c_int,
        ctx: *mut us_socket_context_t,
        pattern: *const c_char,
    ) -> *mut c_void {
        // SAFETY: the caller's contract (that of `us_socket_context_find_server_name_userdata`).
        let found = match (unsafe { tls_of(ssl, ctx) }, unsafe { c_str(pattern) }) {
            (Some(tls), Some(pattern)) => tls.names.find_userdata(pattern),
            _ => None,
        };
        found.map_or(std::ptr::null_mut(), |u| u as *mut c_void)
    }

    pub(super) unsafe fn on_server_name(
        ssl: c_int,
        ctx: *mut us_socket_context_t,
        cb: Option<ServerNameCb>,
    ) {
        // SAFETY: the caller's contract (that of `us_socket_context_on_server_name`).
        let Some(tls) = (unsafe { tls_of(ssl, ctx) }) else {
            return;
        };
        // SAFETY: `ctx` is a live context (tls_of found it).
        let Some((Obj::Context(c), _)) = (unsafe { block::peek(ctx) }) else {
            return;
        };
        let Some(cb) = cb else {
            tls.callback_owner.set(None);
            tls.names.set_on_missing(None);
            return;
        };
        // The pointer travels as an address: the callback must be Send + Sync for rustls. It
        // is called only on the loop's thread (handshakes run there), and only while the
        // context lives: freeing it removes the callback (`tls::forget`).
        let ctx_addr = ctx as usize;
        tls.callback_owner.set(Some(c));
        tls.names.set_on_missing(Some(Box::new(move |_, name| {
            let Ok(name) = CString::new(name) else { return };
            // SAFETY: `cb` is a valid C function (the contract of
            // us_socket_context_on_server_name); `ctx_addr` is the live context that set it
            // (see above); `name` is NUL-terminated and outlives the call.
            unsafe { cb(ctx_addr as *mut us_socket_context_t, name.as_ptr()) }
        })));
    }

    pub(super) unsafe fn socket_userdata(ssl: c_int, s: *mut us_socket_t) -> *mut c_void {
        if ssl == 0 {
            return std::ptr::null_mut();
        }
        // SAFETY: `s` is NULL or a live socket, on its loop's thread: the caller's contract.
        unsafe {
            on_obj(s, std::ptr::null_mut(), |cx, obj| {
                let Obj::Socket(id) = obj else {
                    return std::ptr::null_mut();
                };
                let name = usockets_tls::info(cx, id).and_then(|i| i.server_name);
                let names = cx
                    .socket_context(id)
                    .and_then(|c| cx.layer_context(c))
                    .and_then(|t| t.server_names().cloned());
                match (name, names) {
                    (Some(name), Some(names)) => names
                        .find_userdata(&name)
                        .map_or(std::ptr::null_mut(), |u| u as *mut c_void),
                    _ => std::ptr::null_mut(),
                }
            })
        }
    }

    pub(super) unsafe fn verify_platform_roots(ssl: c_int, ctx: *mut us_socket_context_t) -> c_int {
        // SAFETY: the caller's contract (that of us_socket_context_verify_platform_roots).
        let Some(tls) = (unsafe { tls_of(ssl, ctx) }) else {
            return -1;
        };
        let mut options = tls.options.borrow().clone();
        options.without_ca = WithoutCa::PlatformRoots;
        let Ok(client) = options.client_config(&Options::default()) else {
            return -1;
        };
        *tls.options.borrow_mut() = options;
        // SAFETY: `ctx` is a live context, on its loop's thread: the caller's contract.
        unsafe {
            on_obj(ctx, -1, |cx, obj| {
                let Obj::Context(c) = obj else { return -1 };
                let Some(current) = cx.layer_context(c).cloned() else {
                    return -1;
                };
                cx.set_layer_context(c, current.with_client(client));
                0
            })
        }
    }
}
