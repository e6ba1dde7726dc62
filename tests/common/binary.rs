//! The real `packgate` binary for tests that signal it or kill it: its log lines arrive on
//! a channel, and its addresses are read from the "packgate listening" line.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::Proc;

/// Runs `packgate --config config_file` (RUST_LOG=info); its stderr lines go to the channel.
/// Its stdout is a pipe too, for tests that check nothing is written there.
pub fn spawn(config_file: &Path) -> (Proc, mpsc::Receiver<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_packgate"))
        .arg("--config")
        .arg(config_file)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run packgate");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        // Drained to the end even when nobody listens any more: a full pipe would block
        // the server's logging.
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    (Proc(child), rx)
}

/// The log lines up to and including "packgate listening" (10 s at most).
pub fn until_listening(logs: &mpsc::Receiver<String>) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen = Vec::new();
    while let Ok(line) = logs.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        let done = line.contains("packgate listening");
        seen.push(line);
        if done {
            return seen;
        }
    }
    panic!("packgate did not report its addresses: {seen:?}");
}

/// The address logged as `key=ADDR` or `key=Some(ADDR)` in `line`.
pub fn addr(line: &str, key: &str) -> Option<SocketAddr> {
    let start = line.find(&format!("{key}="))? + key.len() + 1;
    let token = line[start..].split_whitespace().next()?;
    let token = token.strip_prefix("Some(").unwrap_or(token);
    token.trim_end_matches(')').parse().ok()
}
