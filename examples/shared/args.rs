//! Command-line options of the example servers: `--port N` and `--idle-timeout SECONDS`.

/// The value after `--name`, parsed; `default` when the option is absent. Exits with a usage
/// message when the value is missing or does not parse.
pub fn option<T: std::str::FromStr>(program: &str, name: &str, default: T) -> T {
    let args: Vec<String> = std::env::args().collect();
    let flag = format!("--{name}");
    match args.iter().position(|a| *a == flag) {
        Some(i) => match args.get(i + 1).and_then(|v| v.parse().ok()) {
            Some(v) => v,
            None => {
                eprintln!("usage: {program} [--port N] [--idle-timeout SECONDS]");
                std::process::exit(2);
            }
        },
        None => default,
    }
}
