//! `tls_session`: a finished TLS handshake between a client and a server socket of one loop,
//! then writes, shutdowns, closes, adoptions, pauses, timeouts and a man in the middle that
//! splits, delays and tampers with the records (`usockets_fuzz_harness::run_tls_session`):
//! plaintext arrives as written or not at all, every socket closes once, nothing leaks.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    usockets_fuzz_harness::run_tls_session(data);
});
