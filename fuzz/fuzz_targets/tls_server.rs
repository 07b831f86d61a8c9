//! `tls_server`: arbitrary bytes into a fresh TLS server socket on the simulated OS, in pieces
//! the input cuts (`usockets_fuzz_harness::run_tls_server`): no panic, no plaintext before the
//! handshake ends, and after the peer's FIN nothing left open.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    usockets_fuzz_harness::run_tls_server(data);
});
