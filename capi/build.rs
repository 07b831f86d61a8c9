//! Gives the shared library a SONAME, so C programs link against `libusockets.so.0`.
fn main() {
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libusockets.so.0");
    }
}
