//! `ssl = 1`: a context's TLS configuration from `struct us_socket_context_options_t`, built by
//! the same code as the Rust API's (`usockets_tls::ContextOptions`), and the per-context TLS
//! state the SNI functions reach without the loop's `Cx`.
//!
//! Why without the `Cx`: `on_server_name` runs inside a handshake, while core has lent its
//! `Cx` to the TLS layer, and it must be able to call `us_socket_context_add_server_name`.
//! So the SNI table of each context is also kept in its loop's [`LoopState`], which is only
//! ever accessed through shared references.
//!
//! Built without the `tls` feature, `ssl = 1` is plain TCP (upstream with `LIBUS_NO_SSL`) and
//! everything here is a no-op.

#[cfg(not(feature = "tls"))]
pub(crate) use disabled::*;
#[cfg(feature = "tls")]
pub(crate) use enabled::*;

#[cfg(not(feature = "tls"))]
mod disabled {
    use usockets_core::{ContextId, Cx};

    use crate::state::Capi;
    use crate::types::us_socket_context_options_t;

    /// Without TLS an `ssl = 1` context is plain: there is never a TLS state to install.
    pub(crate) enum New {}

    /// Without the `tls` feature `ssl = 1` is plain TCP: nothing to build.
    ///
    /// # Safety
    /// Nothing is read.
    pub(crate) unsafe fn from_options(_: &us_socket_context_options_t) -> Result<Option<New>, ()> {
        Ok(None)
    }

    /// Gives the new context its TLS configuration (there is none to give).
    pub(crate) fn install(_: &mut Cx<Capi>, _: ContextId, new: New) {
        match new {}
    }

    /// A child context shares its parent's TLS state (there is none).
    pub(crate) fn inherit(_: &mut Cx<Capi>, _: ContextId, _: ContextId) {}

    /// A context is being freed: its TLS state goes (there is none).
    pub(crate) fn forget(_: &mut Cx<Capi>, _: ContextId) {}
}

#[cfg(feature = "tls")]
mod enabled {
    use std::cell::{Cell, RefCell};
    use std::collections::HashMap;
    use std::path::PathBuf;
    use std::rc::Rc;
    use std::sync::Arc;

    use usockets_core::{ContextId, Cx};
    use usockets_tls::{ContextOptions, Options, ServerNames, TlsContext, WithoutCa};

    use crate::state::{loop_state, Capi};
    use crate::types::us_socket_context_options_t;

    /// What the SNI functions need of a TLS context: its table, the options it was built from
    /// (to rebuild its client side), and which context set the table's `on_server_name` (the
    /// callback is handed its pointer, so it stops when that context is freed).
    pub(crate) struct CtxTls {
        pub(crate) names: Arc<ServerNames>,
        pub(crate) options: RefCell<ContextOptions>,
        pub(crate) callback_owner: Cell<Option<ContextId>>,
    }

    /// The TLS contexts of a loop, by core handle (children share their parent's state).
    pub(crate) type TlsContexts = RefCell<HashMap<ContextId, Rc<CtxTls>>>;

    /// A TLS configuration and its SNI state, for a context being made.
    pub(crate) struct New {
        tls: TlsContext,
        state: Rc<CtxTls>,
    }

    /// `us_socket_context_options_t` in Rust. A client without a CA file does not verify, as
    /// the C library does.
    ///
    /// # Safety
    /// The strings in `options` are NULL or NUL-terminated.
    pub(crate) unsafe fn context_options(o: &us_socket_context_options_t) -> ContextOptions {
        // SAFETY: the strings are NULL or NUL-terminated: this function's contract.
        let s = |p| unsafe { crate::ffi::c_str(p) };
        let path = |p| s(p).map(PathBuf::from);
        ContextOptions {
            key_file: path(o.key_file_name),
            cert_file: path(o.cert_file_name),
            passphrase: s(o.passphrase).map(str::to_owned),
            dh_params_file: path(o.dh_params_file_name),
            ca_file: path(o.ca_file_name),
            ciphers: s(o.ssl_ciphers).map(str::to_owned),
            low_memory: o.ssl_prefer_low_memory_usage != 0,
            without_ca: WithoutCa::NoVerification,
        }
    }

    /// The TLS configuration of an `ssl = 1` context and its SNI state; `Err` when a file is
    /// missing or unusable.
    ///
    /// # Safety
    /// The strings in `options` are NULL or NUL-terminated.
    pub(crate) unsafe fn from_options(o: &us_socket_context_options_t) -> Result<Option<New>, ()> {
        // SAFETY: the strings are NULL or NUL-terminated: this function's contract.
        let options = unsafe { context_options(o) };
        let tls = options.build(&Options::default()).map_err(drop)?;
        let names = tls.server_names().cloned().ok_or(())?;
        let state = Rc::new(CtxTls {
            names,
            options: RefCell::new(options),
            callback_owner: Cell::new(None),
        });
        Ok(Some(New { tls, state }))
    }

    /// Gives the new context `c` its TLS configuration.
    pub(crate) fn install(cx: &mut Cx<Capi>, c: ContextId, new: New) {
        cx.set_layer_context(c, new.tls);
        loop_state(cx).tls.borrow_mut().insert(c, new.state);
    }

    /// The child context `c` shares its parent's TLS state (core copied the configuration).
    pub(crate) fn inherit(cx: &mut Cx<Capi>, parent: ContextId, c: ContextId) {
        let st = loop_state(cx);
        let shared = st.tls.borrow().get(&parent).cloned();
        if let Some(shared) = shared {
            st.tls.borrow_mut().insert(c, shared);
        }
    }

    /// The context `c` is being freed: its TLS state goes, and the `on_server_name` it set
    /// (which would be handed its pointer) stops.
    pub(crate) fn forget(cx: &mut Cx<Capi>, c: ContextId) {
        let gone = loop_state(cx).tls.borrow_mut().remove(&c);
        if let Some(gone) = gone {
            if gone.callback_owner.get() == Some(c) {
                gone.callback_owner.set(None);
                gone.names.set_on_missing(None);
            }
        }
    }

    /// The TLS state of context `c` of the loop `st`.
    pub(crate) fn state_of(st: &crate::state::LoopState, c: ContextId) -> Option<Rc<CtxTls>> {
        st.tls.borrow().get(&c).cloned()
    }
}
