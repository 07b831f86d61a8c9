//! Sets `cfg(kqueue)` on the systems this shim runs on, so that the sources name the set once.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(kqueue)");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
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
