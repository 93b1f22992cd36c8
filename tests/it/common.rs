//! Helpers shared by the integration tests: running the binary and locating files.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs flowctl with `args` in the repository root, optional stdin, extra env vars.
pub fn flowctl(args: &[&str], stdin: Option<&str>, env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_flowctl"));
    cmd.args(args).current_dir(root()).stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() });
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("flowctl starts");
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("stdin is piped");
        pipe.write_all(input.as_bytes()).expect("write stdin");
    }
    let out = child.wait_with_output().expect("flowctl ends");
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Writes a pipeline file into `dir` and returns its path as a string.
pub fn write_pipeline(dir: &Path, name: &str, yaml: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, yaml).expect("write pipeline");
    path.display().to_string()
}

/// The run summary line with the timing part removed (it varies).
pub fn summary_counts(stderr: &str) -> String {
    let line = stderr.lines().rev().find(|l| l.starts_with("flowctl: ") && l.contains(" in, ")).unwrap_or_default();
    let counts = line.rsplit_once(" in ").map(|(counts, _)| counts).unwrap_or(line);
    counts.trim_start_matches("flowctl: ").to_string()
}

/// Runs `flowctl run -q PATH` again and again, each run killed with SIGKILL after
/// `first_ms`, then `step_ms` longer each time, until one finishes by itself with exit
/// code 0; returns how many were killed. A run failing otherwise fails the test.
pub fn kill_9_until_done(path: &str, first_ms: u64, step_ms: u64) -> usize {
    let mut kills = 0;
    let mut wait = first_ms;
    loop {
        let mut child = Command::new(env!("CARGO_BIN_EXE_flowctl"))
            .args(["run", "-q", path])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("flowctl starts");
        std::thread::sleep(std::time::Duration::from_millis(wait));
        let _ = Command::new("kill").args(["-KILL", &child.id().to_string()]).status();
        match child.wait().expect("flowctl ends").code() {
            Some(0) => return kills,
            Some(code) => panic!("a run ended with exit code {code}"),
            None => kills += 1,
        }
        wait += step_ms;
        assert!(kills < 60, "the run never finished");
    }
}

/// How `flowctl plan` says the pipeline at `path` runs at `parallelism`: the
/// `execution` object of its JSON plan (`mode` and the mode's numbers).
pub fn execution(path: &str, parallelism: &str) -> serde_json::Value {
    let out = flowctl(&["plan", "--format", "json", "-p", parallelism, path], None, &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let plan: serde_json::Value = serde_json::from_str(&out.stdout).expect("a JSON plan");
    plan["execution"].clone()
}

/// The `mode` of [`execution`].
pub fn execution_mode(path: &str, parallelism: &str) -> String {
    execution(path, parallelism)["mode"].as_str().unwrap_or_default().to_string()
}

/// A TCP port on 127.0.0.1 free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The body of `GET /metrics` from a run's metrics endpoint, if it answers.
pub fn scrape(port: u16) -> Option<String> {
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    conn.write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n").ok()?;
    let mut body = String::new();
    std::io::Read::read_to_string(&mut conn, &mut body).ok()?;
    Some(body)
}

/// The value of the first sample in a metrics body whose line starts with `name`.
pub fn metric(body: &str, name: &str) -> Option<u64> {
    body.lines().find(|l| l.starts_with(name))?.rsplit(' ').next()?.parse::<f64>().ok().map(|v| v as u64)
}
