//! Command-line options of the example servers: `--port N`, `--idle-timeout SECONDS` (0 turns
//! the timeout off), `--high-water BYTES` (how much may wait for a client before the server
//! stops reading from it), and `--cert FILE --key FILE` (PEM files: serve TLS).

/// The options a program accepts, each followed by a value.
pub const KNOWN: &[&str] = &["port", "idle-timeout", "high-water", "cert", "key"];

/// Exits with a usage message.
fn usage(program: &str, problem: &str) -> ! {
    eprintln!(
        "{program}: {problem}\nusage: {program} [--port N] [--idle-timeout SECONDS] \
         [--high-water BYTES] [--cert FILE --key FILE]"
    );
    std::process::exit(2);
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
