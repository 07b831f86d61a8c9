//! Nothing to use: this package holds the facade's tests that read the Linux shim's syscall
//! counters (`tests/`), and enables the shim's `stats` feature for them alone. Kept out of the
//! root package so that the counters never reach the builds of its examples and benchmarks.
#![forbid(unsafe_code)]
