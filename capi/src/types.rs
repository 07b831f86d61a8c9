//! The C-visible types: opaque object types, the options struct and callback signatures.
#![allow(non_camel_case_types)]

use std::cell::Cell;
use std::ffi::{c_char, c_int, c_void};

use crate::block::Header;

/// `struct us_loop_t` (opaque; a block).
pub type us_loop_t = Header;
/// `struct us_socket_context_t` (opaque; a block).
pub type us_socket_context_t = Header;
/// `struct us_socket_t` (opaque; a block).
pub type us_socket_t = Header;
/// `struct us_listen_socket_t` (opaque; a block, usable as a socket for `us_socket_local_port`).
pub type us_listen_socket_t = Header;
/// `struct us_timer_t` (opaque; a block).
pub type us_timer_t = Header;
/// `struct us_poll_t` (opaque; a block; socket blocks are accepted too).
pub type us_poll_t = Header;
/// `struct us_udp_socket_t` (UDP is not implemented: never handed out).
pub type us_udp_socket_t = c_void;
/// `struct us_udp_packet_buffer_t` (UDP is not implemented: never handed out).
pub type us_udp_packet_buffer_t = c_void;
/// `LIBUS_SOCKET_DESCRIPTOR` on POSIX: a file descriptor.
#[cfg(not(windows))]
pub type LIBUS_SOCKET_DESCRIPTOR = c_int;
/// `LIBUS_SOCKET_DESCRIPTOR` on Windows: Winsock's `SOCKET`, a `UINT_PTR` (pointer-sized and
/// unsigned; `windows_sys::Win32::Networking::WinSock::SOCKET`), as the header's `_WIN32`
/// branch defines it.
#[cfg(windows)]
pub type LIBUS_SOCKET_DESCRIPTOR = usize;

/// `LIBUS_SOCKET_ERROR`, the descriptor that means "no descriptor": -1 on POSIX.
#[cfg(not(windows))]
pub const LIBUS_SOCKET_ERROR: LIBUS_SOCKET_DESCRIPTOR = -1;
/// `LIBUS_SOCKET_ERROR`, the descriptor that means "no descriptor": `INVALID_SOCKET` (`~0`) on
/// Windows.
#[cfg(windows)]
pub const LIBUS_SOCKET_ERROR: LIBUS_SOCKET_DESCRIPTOR = !0;

/// `struct us_socket_context_options_t`, passed by value (56 bytes on LP64). Used only for TLS,
/// which the C ABI does not provide yet.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct us_socket_context_options_t {
    /// Private key file.
    pub key_file_name: *const c_char,
    /// Certificate file.
    pub cert_file_name: *const c_char,
    /// Key passphrase.
    pub passphrase: *const c_char,
    /// DH parameters file.
    pub dh_params_file_name: *const c_char,
    /// CA file.
    pub ca_file_name: *const c_char,
    /// Cipher list.
    pub ssl_ciphers: *const c_char,
    /// Prefer low memory use.
    pub ssl_prefer_low_memory_usage: c_int,
}

#[cfg(target_pointer_width = "64")]
const _: () = assert!(std::mem::size_of::<us_socket_context_options_t>() == 56);

/// `void (*)(us_loop_t *)`: wakeup, pre and post.
pub type LoopCb = unsafe extern "C" fn(*mut us_loop_t);
/// `void (*)(us_timer_t *)`.
pub type TimerCb = unsafe extern "C" fn(*mut us_timer_t);
/// Non-upstream: `void (*)(us_poll_t *, int events, int error)`.
pub type PollReadyCb = unsafe extern "C" fn(*mut us_poll_t, c_int, c_int);
/// `us_socket_t *(*)(us_socket_t *, int is_client, char *ip, int ip_length)`.
pub type OpenCb =
    unsafe extern "C" fn(*mut us_socket_t, c_int, *mut c_char, c_int) -> *mut us_socket_t;
/// `us_socket_t *(*)(us_socket_t *, int code, void *reason)`.
pub type CloseCb = unsafe extern "C" fn(*mut us_socket_t, c_int, *mut c_void) -> *mut us_socket_t;
/// `us_socket_t *(*)(us_socket_t *, char *data, int length)`.
pub type DataCb = unsafe extern "C" fn(*mut us_socket_t, *mut c_char, c_int) -> *mut us_socket_t;
/// `us_socket_t *(*)(us_socket_t *)`: writable, timeout, long timeout, end.
pub type SocketCb = unsafe extern "C" fn(*mut us_socket_t) -> *mut us_socket_t;
/// `us_socket_t *(*)(us_socket_t *, int code)`.
pub type ConnectErrorCb = unsafe extern "C" fn(*mut us_socket_t, c_int) -> *mut us_socket_t;
/// `LIBUS_SOCKET_DESCRIPTOR (*)(us_socket_context_t *, LIBUS_SOCKET_DESCRIPTOR, char *ip, int)`.
pub type PreOpenCb = unsafe extern "C" fn(
    *mut us_socket_context_t,
    LIBUS_SOCKET_DESCRIPTOR,
    *mut c_char,
    c_int,
) -> LIBUS_SOCKET_DESCRIPTOR;

/// The C callbacks of one context, shared (`Rc`) by the context and the header of each of its
/// sockets: setting one (`us_socket_context_on_*`) is seen by all of them at once.
#[derive(Default)]
pub(crate) struct ContextCbs {
    pub(crate) on_pre_open: Cell<Option<PreOpenCb>>,
    pub(crate) on_open: Cell<Option<OpenCb>>,
    pub(crate) on_close: Cell<Option<CloseCb>>,
    pub(crate) on_data: Cell<Option<DataCb>>,
    pub(crate) on_writable: Cell<Option<SocketCb>>,
    pub(crate) on_timeout: Cell<Option<SocketCb>>,
    pub(crate) on_long_timeout: Cell<Option<SocketCb>>,
    pub(crate) on_end: Cell<Option<SocketCb>>,
    pub(crate) on_connect_error: Cell<Option<ConnectErrorCb>>,
}
