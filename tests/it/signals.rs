//! A signal stops a run promptly even while a sink takes nothing: a reader that stops
//! reading stdout, a socket peer that never reads. The run exits with 143 / 130; the
//! final checkpoint is given up when the sink cannot answer it (the last one stays).

use super::common::write_pipeline;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const ENDLESS: &str = "sources:
  gen:
    type: datagen
    seed: 1
    fields:
      id: {type: sequence, start: 1}
      pad: {type: constant, value: 'a line long enough to fill a pipe buffer quickly, over and over'}
";

/// Starts `flowctl run` on `path` with stdout a pipe nobody reads, lets the sink block,
/// sends `signal` and returns the exit code and how long the run took to end.
fn signal_a_blocked_run(path: &str, signal: &str) -> (Option<i32>, Duration) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_flowctl"))
        .args(["run", "-q", path])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The pipe (64 KiB) and the channels fill within a moment; then the sink blocks.
    std::thread::sleep(Duration::from_millis(1500));
    let sent = Instant::now();
    let _ = Command::new("kill").args([signal, &child.id().to_string()]).status();
    let deadline = sent + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return (status.code(), sent.elapsed());
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return (None, sent.elapsed());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_signal_stops_a_run_whose_stdout_reader_stopped_reading() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_pipeline(dir.path(), "p.yaml", &format!("{ENDLESS}sinks:\n  out: {{type: stdout}}\n"));
    let (code, took) = signal_a_blocked_run(&path, "-TERM");
    assert_eq!(code, Some(143), "after {took:?}");
    assert!(took < Duration::from_secs(10), "{took:?}");
    // With checkpoints too: the final one cannot be taken, the run still ends.
    let checkpointed = format!("{ENDLESS}sinks:\n  out: {{type: stdout}}\ncheckpoint: {{interval: 200ms}}\n");
    let path = write_pipeline(dir.path(), "c.yaml", &checkpointed);
    let (code, took) = signal_a_blocked_run(&path, "-INT");
    assert_eq!(code, Some(130), "after {took:?}");
    assert!(took < Duration::from_secs(10), "{took:?}");
}

#[test]
fn a_signal_stops_a_run_whose_socket_peer_never_reads() {
    let dir = tempfile::tempdir().unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    // Accepts and holds the connection, reading nothing.
    let held = std::thread::spawn(move || listener.accept().map(|(stream, _)| stream));
    let yaml = format!("{ENDLESS}sinks:\n  out: {{type: socket, address: '{address}'}}\n");
    let path = write_pipeline(dir.path(), "s.yaml", &yaml);
    let (code, took) = signal_a_blocked_run(&path, "-TERM");
    assert_eq!(code, Some(143), "after {took:?}");
    assert!(took < Duration::from_secs(10), "{took:?}");
    drop(held.join());
}
