//! Exported stubs, as the contract decides: `us_socket_context_get_native_handle` (there is no
//! OpenSSL `SSL_CTX *`), UDP (until UDP goes through core and the shims) and
//! `us_socket_send_buffer` (io_uring only upstream). Pointer results are NULL, `int` results -1,
//! `void` functions do nothing.
#![allow(clippy::missing_safety_doc)]

use std::ffi::{c_char, c_int, c_uint, c_ushort, c_void};

use crate::types::*;

/// `us_socket_context_get_native_handle`: NULL (there is no OpenSSL `SSL_CTX *`).
#[no_mangle]
pub extern "C" fn us_socket_context_get_native_handle(
    _ssl: c_int,
    _ctx: *mut us_socket_context_t,
) -> *mut c_void {
    std::ptr::null_mut()
}

/// `us_socket_send_buffer`: NULL (an io_uring-only function upstream).
#[no_mangle]
pub extern "C" fn us_socket_send_buffer(_ssl: c_int, _s: *mut us_socket_t) -> *mut c_char {
    std::ptr::null_mut()
}

/// `us_create_udp_packet_buffer`: NULL (UDP not implemented).
#[no_mangle]
pub extern "C" fn us_create_udp_packet_buffer() -> *mut us_udp_packet_buffer_t {
    std::ptr::null_mut()
}

/// `us_create_udp_socket`: NULL (UDP not implemented).
#[no_mangle]
pub extern "C" fn us_create_udp_socket(
    _loop: *mut us_loop_t,
    _buf: *mut us_udp_packet_buffer_t,
    _data_cb: Option<
        unsafe extern "C" fn(*mut us_udp_socket_t, *mut us_udp_packet_buffer_t, c_int),
    >,
    _drain_cb: Option<unsafe extern "C" fn(*mut us_udp_socket_t)>,
    _host: *const c_char,
    _port: c_ushort,
    _user: *mut c_void,
) -> *mut us_udp_socket_t {
    std::ptr::null_mut()
}

/// `us_udp_socket_receive`: -1 (UDP not implemented).
#[no_mangle]
pub extern "C" fn us_udp_socket_receive(
    _s: *mut us_udp_socket_t,
    _buf: *mut us_udp_packet_buffer_t,
) -> c_int {
    -1
}

/// `us_udp_socket_send`: -1 (UDP not implemented).
#[no_mangle]
pub extern "C" fn us_udp_socket_send(
    _s: *mut us_udp_socket_t,
    _buf: *mut us_udp_packet_buffer_t,
    _num: c_int,
) -> c_int {
    -1
}

/// `us_udp_buffer_set_packet_payload`: does nothing (UDP not implemented).
#[no_mangle]
pub extern "C" fn us_udp_buffer_set_packet_payload(
    _buf: *mut us_udp_packet_buffer_t,
    _index: c_int,
    _offset: c_int,
    _payload: *mut c_void,
    _length: c_int,
    _peer_addr: *mut c_void,
) {
}

/// `us_udp_packet_buffer_payload`: NULL (UDP not implemented).
#[no_mangle]
pub extern "C" fn us_udp_packet_buffer_payload(
    _buf: *mut us_udp_packet_buffer_t,
    _index: c_int,
) -> *mut c_char {
    std::ptr::null_mut()
}

/// `us_udp_packet_buffer_payload_length`: -1 (UDP not implemented).
#[no_mangle]
pub extern "C" fn us_udp_packet_buffer_payload_length(
    _buf: *mut us_udp_packet_buffer_t,
    _index: c_int,
) -> c_int {
    -1
}

/// `us_udp_packet_buffer_peer`: NULL (UDP not implemented).
#[no_mangle]
pub extern "C" fn us_udp_packet_buffer_peer(
    _buf: *mut us_udp_packet_buffer_t,
    _index: c_int,
) -> *mut c_char {
    std::ptr::null_mut()
}

/// `us_udp_packet_buffer_local_ip`: -1 (UDP not implemented).
#[no_mangle]
pub extern "C" fn us_udp_packet_buffer_local_ip(
    _buf: *mut us_udp_packet_buffer_t,
    _index: c_int,
    _ip: *mut c_char,
) -> c_int {
    -1
}

/// `us_udp_packet_buffer_ecn`: -1 (UDP not implemented).
#[no_mangle]
pub extern "C" fn us_udp_packet_buffer_ecn(
    _buf: *mut us_udp_packet_buffer_t,
    _index: c_int,
) -> c_int {
    -1
}

/// `us_udp_socket_bound_port`: -1 (UDP not implemented).
#[no_mangle]
pub extern "C" fn us_udp_socket_bound_port(_s: *mut us_udp_socket_t) -> c_int {
    -1
}

/// `us_udp_socket_user`: NULL (UDP not implemented).
#[no_mangle]
pub extern "C" fn us_udp_socket_user(_s: *mut us_udp_socket_t) -> *mut c_void {
    std::ptr::null_mut()
}

/// `us_udp_socket_bind`: -1 (declared but never implemented upstream; a stub here).
#[no_mangle]
pub extern "C" fn us_udp_socket_bind(
    _s: *mut us_udp_socket_t,
    _host: *const c_char,
    _port: c_uint,
) -> c_int {
    -1
}
