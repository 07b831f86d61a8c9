//! # usockets-tls
//!
//! TLS for usockets on [rustls](https://docs.rs/rustls), as a core
//! [`Layer`](usockets_core::Layer): it works over any shim (the simulated OS included), keeps
//! its per-socket session in the socket's slot and its configuration in the context's, and
//! leaves plain sockets of the same loop exactly as they were.
//!
//! ```text
//! application callbacks      on_open · on_data(plaintext) · on_writable · on_close
//!        ▲        │ write(plaintext)
//!   usockets-tls (Tls layer): rustls session per socket, records in and out
//!        ▲        │ write_raw(records)
//!   usockets-core: loop, timers, sockets (a flag routes layered sockets through the layer)
//!        ▲        │
//!   a shim (epoll, simulated OS, ...)
//! ```
//!
//! Use it by naming [`Tls`] as a config's `Layer` and giving a context a [`TlsContext`]:
//!
//! ```ignore
//! impl Config for App { /* ... */ type Layer = usockets_tls::Tls; }
//! let ctx = l.context_create(ext, callbacks)?;
//! let server = usockets_tls::server_config_from_pem("cert.pem".as_ref(), "key.pem".as_ref())?;
//! l.set_layer_context(ctx, usockets_tls::TlsContext::server(server));
//! ```
//!
//! Then, as with the C library's `ssl = 1`: `on_open` comes before the handshake; `on_data`
//! gets plaintext in a padded buffer of its own (never the ciphertext's); `write` takes
//! plaintext (up to [`EARLY_PLAINTEXT_LIMIT`] bytes while the handshake runs, sent when it
//! ends) and takes nothing while encrypted bytes wait for the kernel (`on_writable` follows);
//! `shutdown` sends close_notify; the peer's close_notify or FIN closes the socket (no
//! `on_end`). A client sends its ClientHello at connect, asks for the host it connects to
//! (SNI) and, unless told [`Verify::NoVerification`], checks the certificate against its roots
//! and that host. Handshaking server sockets are rationed through core's low-priority queue,
//! so a flood of handshakes cannot starve established connections. TLS 1.2 is the minimum.
//! [`info`] tells what a session negotiated, or why it failed.
//!
//! Sessions run on rustls' unbuffered API, so a connection keeps only what must wait: the
//! bytes of a record not yet complete, ciphertext the kernel did not take (while there is
//! some, `write` returns 0 and `on_writable` follows when it drains) and plaintext written
//! during the handshake. Decryption and encryption go through scratch buffers the loop thread's
//! sessions share. With [`TlsContext::with_low_memory`] a session frees each of its buffers
//! when it empties; otherwise it keeps their room for the next bytes.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod ciphers;
mod config;
mod context_options;
mod key;
mod layer;
mod session;
mod sni;

pub use ciphers::{provider_with_cipher_list, select_tls12_suites};

pub use config::{
    client_config, client_config_from_ca_file, client_config_with_cert, default_provider,
    load_certs, load_key, platform_roots, server_config, server_config_from_pem,
    server_config_with_client_auth, Options, TlsContext, TlsError, Verify, Versions,
};
pub use context_options::{ContextOptions, WithoutCa};
pub use key::load_key_with_passphrase;
pub use layer::{info, Info, Tls};
pub use rustls;
pub use session::{Session, EARLY_PLAINTEXT_LIMIT};
pub use sni::{certified_key, server_config_with_names, OnMissing, ServerNames, MAX_LABELS};
