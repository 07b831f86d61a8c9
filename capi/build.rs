//! Gives the shared library a SONAME on Linux, so C programs link against `libusockets.so.0`
//! (Windows DLLs have none: a program records the DLL's file name, which
//! capi/tests/run-windows.sh lays out as `usockets.dll` with its own import library); sets
//! `cfg(kqueue)` on the systems whose shim is `usockets-shim-bsd`.
fn main() {
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if os == "linux" {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libusockets.so.0");
    }
    println!("cargo::rustc-check-cfg=cfg(kqueue)");
    if matches!(
        os.as_str(),
        "freebsd"
            | "macos"
            | "ios"
            | "tvos"
            | "watchos"
            | "visionos"
            | "netbsd"
            | "openbsd"
            | "dragonfly"
    ) {
        println!("cargo::rustc-cfg=kqueue");
    }
}
