//! Command-line options of the example servers: `--port N`, `--idle-timeout SECONDS` (0 turns
//! the timeout off), `--high-water BYTES` (how much may wait for a client before the server
//! stops reading from it), `--cert FILE --key FILE` (PEM files: serve TLS) and, on Linux,
//! `--shim epoll|uring` (the shim the server runs on: epoll by default, or io_uring).

/// The options a program accepts, each followed by a value.
pub const KNOWN: &[&str] = &["port", "idle-timeout", "high-water", "cert", "key", "shim"];

/// Exits with a usage message.
fn usage(program: &str, problem: &str) -> ! {
    eprintln!(
        "{program}: {problem}\nusage: {program} [--port N] [--idle-timeout SECONDS] \
         [--high-water BYTES] [--cert FILE --key FILE] [--shim epoll|uring (Linux)]"
    );
    std::process::exit(2);
}

/// A server that runs on whichever shim `--shim` picks. `serve` is generic over the shim, so
/// the server is compiled once per shim and nothing dispatches per call: [`run_on_shim`]
/// matches once, at startup.
pub trait Serve {
    /// Runs the server on `shim` (returns when its loop ends).
    fn serve<Sh: usockets::PlatformShim>(self, shim: Sh);
}

/// Makes the shim `--shim NAME` asks for and runs `server` on it: `epoll` (the default) or
/// `uring` (io_uring), Linux only; elsewhere the platform's shim, and `--shim` is refused.
/// When the shim cannot be made (io_uring missing or disabled) it says so and exits 1: a run
/// that asked for io_uring never falls back to epoll unnoticed.
pub fn run_on_shim(program: &str, server: impl Serve) {
    #[cfg(target_os = "linux")]
    match option(program, "shim", usockets::ShimChoice::default()) {
        usockets::ShimChoice::Epoll => start::<usockets::DefaultShim>(program, server),
        usockets::ShimChoice::Uring => start::<usockets::uring::UringShim>(program, server),
    }
    #[cfg(not(target_os = "linux"))]
    {
        if !option(program, "shim", String::new()).is_empty() {
            usage(
                program,
                "--shim is for Linux (epoll or uring); this platform has one shim",
            );
        }
        start::<usockets::DefaultShim>(program, server);
    }
}

/// Makes shim `Sh` and runs `server` on it; exits 1 with the reason when `Sh` cannot be made.
fn start<Sh: usockets::PlatformShim>(program: &str, server: impl Serve) {
    match Sh::create() {
        Ok(shim) => server.serve(shim),
        Err(e) => {
            eprintln!("{program}: cannot start the {} shim: {e}", Sh::NAME);
            std::process::exit(1);
        }
    }
}

/// The value after `--name`, parsed; `default` when the option is absent. Exits with a usage
/// message on an unknown option, a missing value or one that does not parse.
pub fn option<T: std::str::FromStr>(program: &str, name: &str, default: T) -> T {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut found = None;
    let mut i = 0;
    while i < args.len() {
        let Some(flag) = args[i].strip_prefix("--").filter(|f| KNOWN.contains(f)) else {
            usage(program, &format!("unknown argument {:?}", args[i]));
        };
        let Some(value) = args.get(i + 1) else {
            usage(program, &format!("--{flag} needs a value"));
        };
        if flag == name {
            match value.parse() {
                Ok(v) => found = Some(v),
                Err(_) => usage(program, &format!("bad value {value:?} for --{flag}")),
            }
        }
        i += 2;
    }
    found.unwrap_or(default)
}

/// The TLS configuration `--cert FILE --key FILE` ask for (`None` without them: plain TCP).
/// Exits with a message naming the file when one cannot be used, or when only one is given.
#[cfg(feature = "tls")]
pub fn tls(program: &str) -> Option<usockets::tls::TlsContext> {
    let (cert, key) = cert_and_key(program)?;
    match usockets::tls::server_config_from_pem(cert.as_ref(), key.as_ref()) {
        Ok(config) => Some(usockets::tls::TlsContext::server(config)),
        Err(e) => {
            eprintln!("{program}: {e}");
            std::process::exit(1);
        }
    }
}

/// Without the `tls` feature there is no TLS to serve: `--cert` and `--key` are refused.
#[cfg(not(feature = "tls"))]
pub fn tls(program: &str) -> Option<()> {
    cert_and_key(program)?;
    eprintln!("{program}: built without the `tls` feature: no TLS");
    std::process::exit(1);
}

/// The `--cert` and `--key` files, both or neither.
fn cert_and_key(program: &str) -> Option<(String, String)> {
    let cert = option(program, "cert", String::new());
    let key = option(program, "key", String::new());
    match (cert.is_empty(), key.is_empty()) {
        (true, true) => None,
        (false, false) => Some((cert, key)),
        _ => usage(program, "--cert and --key go together"),
    }
}
