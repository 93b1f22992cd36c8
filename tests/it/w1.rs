//! W1 through the binary equals the hand-written reference (examples/w1_reference.rs)
//! on generated data, also when 5% of the events are delayed beyond the lateness
//! bound, and the late count is exactly the number of such events.

use super::common::{flowctl, summary_counts};
use std::fmt::Write;

#[allow(dead_code)]
#[path = "../../examples/w1_reference.rs"]
mod reference;

/// Deterministic W1 data; returns the CSV and how many events were delayed and
/// reach the window (status 200).
pub fn generate(rows: usize, delayed_percent: u64) -> (String, u64) {
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move |n: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % n
    };
    let urls = ["/", "/home", "/site/about", "/api/v1/items"];
    let mut csv = String::from("ts,user_id,url,bytes,status\n");
    let mut ts: i64 = 1_700_000_000_000;
    let mut late = 0;
    for i in 0..rows {
        ts += next(40) as i64;
        let jitter = next(1500) as i64;
        let status = if next(10) < 8 { 200 } else { 404 };
        // After two minutes of data, delay some events by a minute: far beyond the
        // 10 s window and 2 s out-of-orderness, so they are certainly late.
        let delayed = i > 4000 && next(100) < delayed_percent;
        let event_ts = if delayed { ts - 60_000 } else { ts - jitter };
        if delayed && status == 200 {
            late += 1;
        }
        let _ = writeln!(csv, "{event_ts},u{},{},{},{status}", next(50), urls[next(4) as usize], next(5000));
    }
    (csv, late)
}

fn check(rows: usize, delayed_percent: u64) {
    let dir = tempfile::tempdir().unwrap();
    let (csv, delayed) = generate(rows, delayed_percent);
    let input = dir.path().join("input.csv");
    let output = dir.path().join("w1.csv");
    std::fs::write(&input, &csv).unwrap();
    let env = [("W1_INPUT", input.to_str().unwrap()), ("OUT_DIR", dir.path().to_str().unwrap())];
    let run = flowctl(&["run", "pipelines/w1.yaml"], None, &env);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let produced = std::fs::read_to_string(&output).unwrap();
    let mut lines: Vec<&str> = produced.lines().skip(1).collect();
    lines.sort();
    let mut expected = Vec::new();
    let expected_late = reference::w1(csv.as_bytes(), |line| expected.push(line));
    expected.sort();
    assert_eq!(lines, expected);
    assert_eq!(expected_late, delayed);
    let counts = summary_counts(&run.stderr);
    assert!(counts.contains(&format!(", {delayed} late,")), "late count in `{counts}`, expected {delayed}");
}

#[test]
fn w1_equals_the_hand_written_reference() {
    check(20_000, 0);
}

#[test]
fn w1_with_delayed_events_counts_each_as_late() {
    check(20_000, 5);
}

/// The benchmark's two-thread baselines (examples/w1_reference.rs) compute the same
/// windows and late count as the single-threaded reference, on data with late events
/// spread over many of the two-worker version's 1 MiB blocks.
#[test]
fn the_two_thread_references_equal_the_single_threaded_one() {
    let (csv, delayed) = generate(120_000, 5);
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("input.csv");
    std::fs::write(&input, &csv).unwrap();
    assert!(csv.len() > 3 << 20, "spans several blocks");
    let sorted = |mut lines: Vec<String>| {
        lines.sort();
        lines
    };
    let mut single = Vec::new();
    assert_eq!(reference::w1(csv.as_bytes(), |line| single.push(line)), delayed);
    let single = sorted(single);
    let mut pipelined = Vec::new();
    assert_eq!(reference::w1_two_threads(csv.as_bytes(), |line| pipelined.push(line)), delayed);
    assert_eq!(sorted(pipelined), single);
    let out = std::sync::Mutex::new(Vec::new());
    assert_eq!(reference::w1_two_workers(input.to_str().unwrap(), &out), delayed);
    let text = String::from_utf8(out.into_inner().unwrap()).unwrap();
    assert_eq!(sorted(text.lines().map(String::from).collect()), single);
}
