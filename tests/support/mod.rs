//! Starting the example binaries for tests: cargo builds examples before integration tests, next
//! to the test binary (`target/<profile>/examples/`).
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

/// A running example server, killed on drop.
pub struct Server {
    child: Child,
    /// The port it printed.
    pub port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

/// Path of an example binary built by cargo for this test run.
pub fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe
        .parent()
        .and_then(|d| d.parent())
        .expect("target/<profile>");
    let path = dir
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.exists(),
        "example {name} not built at {}",
        path.display()
    );
    path
}

/// Starts `name --port 0 <args>` and waits for its `listening on port N` line.
pub fn start(name: &str, args: &[&str]) -> Server {
    let mut child = Command::new(example(name))
        .args(["--port", "0"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("read port line");
    let port = line
        .trim()
        .strip_prefix("listening on port ")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("{name} printed {line:?}"));
    Server { child, port }
}

/// A program that ran to completion.
pub struct Finished {
    /// How it exited.
    pub status: std::process::ExitStatus,
    /// Everything it printed on stdout.
    pub stdout: String,
}

/// Runs `cmd` to completion with stdout captured (stderr inherited). Kills it and panics when it
/// takes longer than `timeout`.
pub fn run_with_timeout(mut cmd: Command, timeout: std::time::Duration) -> Finished {
    use std::io::Read;
    let what = format!("{cmd:?}");
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    let mut stdout = child.stdout.take().expect("stdout");
    // Drain stdout on a thread so a chatty program never blocks on a full pipe.
    let reader = std::thread::spawn(move || {
        let mut out = String::new();
        let _ = stdout.read_to_string(&mut out);
        out
    });
    let deadline = std::time::Instant::now() + timeout;
    let status = loop {
        match child.try_wait().expect("wait for child") {
            Some(status) => break status,
            None if std::time::Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                let out = reader.join().unwrap_or_default();
                panic!("{what} did not finish within {timeout:?}; stdout:\n{out}");
            }
            None => std::thread::sleep(std::time::Duration::from_millis(20)),
        }
    };
    let stdout = reader.join().expect("stdout reader");
    Finished { status, stdout }
}

/// Runs example `name` with `args` to completion (see [`run_with_timeout`]).
pub fn run_example(name: &str, args: &[&str], timeout: std::time::Duration) -> Finished {
    let mut cmd = Command::new(example(name));
    cmd.args(args);
    run_with_timeout(cmd, timeout)
}

/// The `key=value` fields of the first stdout line starting with `prefix`; panics when there
/// is no such line.
pub fn summary_fields(stdout: &str, prefix: &str) -> std::collections::HashMap<String, String> {
    let line = stdout
        .lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no line starting with {prefix:?} in:\n{stdout}"));
    line[prefix.len()..]
        .split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Runs the hammer example (`cmd`, which runs it with its own arguments) for `connections`
/// connections within `timeout`, asserts that it succeeded and that its summary balances
/// (opens == closes on both sides, every connect resolved once, no descriptor leaked), and
/// returns the summary's fields.
pub fn hammer(
    mut cmd: Command,
    connections: u64,
    timeout: std::time::Duration,
) -> std::collections::HashMap<String, u64> {
    cmd.args(["--connections", &connections.to_string()]);
    let started = std::time::Instant::now();
    let run = run_with_timeout(cmd, timeout);
    eprintln!("hammer took {:?}: {}", started.elapsed(), run.stdout.trim());
    assert!(
        run.status.success(),
        "hammer failed ({}):\n{}",
        run.status,
        run.stdout
    );
    let f: std::collections::HashMap<String, u64> = summary_fields(&run.stdout, "hammer:")
        .into_iter()
        .map(|(k, v)| {
            let n = v
                .parse()
                .unwrap_or_else(|_| panic!("{k}={v} is not a number"));
            (k, n)
        })
        .collect();
    let n = |k: &str| *f.get(k).unwrap_or_else(|| panic!("no {k} in {f:?}"));
    assert_eq!(n("connections"), connections);
    assert_eq!(
        n("opens_client"),
        n("closes_client"),
        "client opens == closes: {f:?}"
    );
    assert_eq!(
        n("opens_server"),
        n("closes_server"),
        "server opens == closes: {f:?}"
    );
    assert_eq!(
        n("opens_client") + n("connect_errors") + n("aborted"),
        connections,
        "every connect resolved once: {f:?}"
    );
    assert!(n("fds_before") > 0, "the descriptor count works: {f:?}");
    assert_eq!(
        n("fds_before"),
        n("fds_after"),
        "no descriptor leaked: {f:?}"
    );
    f
}
