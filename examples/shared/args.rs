//! Command-line options of the example servers: `--port N`, `--idle-timeout SECONDS` (0 turns
//! the timeout off) and `--high-water BYTES` (how much may wait for a client before the server
//! stops reading from it).

/// The options a program accepts, each followed by a value.
pub const KNOWN: &[&str] = &["port", "idle-timeout", "high-water"];

/// Exits with a usage message.
fn usage(program: &str, problem: &str) -> ! {
    eprintln!(
        "{program}: {problem}\nusage: {program} [--port N] [--idle-timeout SECONDS] \
         [--high-water BYTES]"
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
