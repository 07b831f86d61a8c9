//! # usockets-capi
//!
//! The C ABI of usockets: every function of `libusockets.h` (`capi/include/libusockets.h`) with
//! the same names, signatures and behaviour as the C library, so C and C++ programs link against
//! `libusockets.a` or `libusockets.so` unchanged (`capi/build.sh` builds both).
//!
//! * Each C object is a block this crate owns, its ext bytes 16-byte aligned ([`block`]): a
//!   socket's is its 8-byte core handle and its ext, in a chunk of its loop's slab whose header
//!   holds the loop and the context's C callbacks; every other object's is a malloc'd 32-byte
//!   header (what it is, its core handle, its loop) and its ext. Each block has exactly one
//!   owner, which freeing consumes, so safe code cannot use a freed block; C gets raw
//!   pointers, read back only in `unsafe` code. A socket pointer works as a poll pointer, a
//!   listen socket pointer as a socket for `us_socket_local_port`.
//! * One dispatch per socket callback: core calls the trampoline of the socket's context, which
//!   reads the C callback from the header of the socket block's chunk (the context's callbacks,
//!   shared, updated by `us_socket_context_on_*`; adoption moves the socket to a chunk of its
//!   new context): no second lookup of the context.
//! * Core runs on its `GrowingStorage` (chunks of slots allocated as needed and given back
//!   when empty): no capacity is chosen at build time. C pointers never point into it (they
//!   point to blocks). Memory cost: one core slot per socket (80 bytes) plus its block (8
//!   bytes without ext, else 16 + ext rounded up to 16), freed when released; when half the
//!   socket blocks of the last peak are gone, the slab releases its empty chunks and hands the
//!   pages of free blocks back to the OS, and the malloc heap is trimmed (the `memory`
//!   module), so a server that shrinks gives memory back.
//! * A closed socket's block stays valid (`us_socket_is_closed` = 1) until core releases its
//!   slot at the end of the iteration; then it is freed.
//! * C callbacks may call any `us_*` function: the call reaches core through the `Cx` lent to
//!   the running callback (the `state` module), never through a second `&mut` to the loop.
//! * No panic crosses the boundary: unwinding out of an `extern "C"` function aborts the process
//!   with a message (Rust ≥ 1.81).
//! * `ssl = 1` is plain TCP until the TLS adapter is wired in, as the C library built without
//!   TLS behaves; TLS/SNI, UDP and `us_socket_send_buffer` are exported stubs ([`ffi::stubs`]).
//!
//! Safety contract for C callers: pointer arguments are NULL or live objects of this library;
//! every call but `us_wakeup_loop` is made on the loop's thread. Inside, every `unsafe` block
//! does one unsafe operation and names, in its `SAFETY:` comment, the obligation it relies on.

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(
    clippy::undocumented_unsafe_blocks,
    clippy::multiple_unsafe_ops_per_block
)]
#![warn(missing_docs)]

pub mod block;
mod fd;
pub mod ffi;
mod memory;
mod slab;
mod state;
mod tls;
mod trampoline;
pub mod types;
