//! `dedup` through the binary: what it keeps (`first` and `last`), the same records at
//! any parallelism, kill -9 and resume equal to an uninterrupted run, and the
//! misuses validation names at their line and column.

use super::common::{execution_mode, flowctl, kill_9_until_done, write_pipeline};
use std::fmt::Write as _;

const INPUT: &str = "\
{\"ts\": 1000, \"user\": \"a\", \"url\": \"/x\", \"n\": 1}
{\"ts\": 2000, \"user\": \"a\", \"url\": \"/x\", \"n\": 2}
{\"ts\": 2500, \"user\": \"b\", \"url\": \"/x\", \"n\": 3}
{\"ts\": 3000, \"user\": \"a\", \"url\": \"/y\", \"n\": 4}
{\"ts\": 10999, \"user\": \"a\", \"url\": \"/x\", \"n\": 5}
{\"ts\": 11000, \"user\": \"a\", \"url\": \"/x\", \"n\": 6}
{\"ts\": 12000, \"user\": \"a\", \"url\": \"/x\", \"n\": 7}
{\"ts\": 30000, \"user\": \"b\", \"url\": \"/x\", \"n\": 8}
";

fn dedup_ns(dir: &std::path::Path, step: &str) -> (i32, String, Vec<i64>) {
    let yaml = format!(
        "sources:\n  in: {{type: stdin, format: jsonl, event_time: {{field: ts}}}}\nsteps:\n{step}sinks:\n  out: {{type: stdout}}\n"
    );
    let path = write_pipeline(dir, "dedup.yaml", &yaml);
    let out = flowctl(&["run", "-p", "1", &path], Some(INPUT), &[]);
    let ns = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["n"].as_i64().unwrap())
        .collect();
    (out.code, out.stderr, ns)
}

#[test]
fn first_keeps_the_first_record_per_key_and_interval() {
    let dir = tempfile::tempdir().unwrap();
    let (code, stderr, ns) = dedup_ns(dir.path(), "  - dedup: {key: [user, url], within: 10s}\n");
    assert_eq!(code, 0, "{stderr}");
    // a /x opens [1000, 11000): 2 and 5 are inside; 6 opens the next interval.
    assert_eq!(ns, vec![1, 3, 4, 6, 8]);
    // Keyed by a `key_by`: the same records.
    let step = "  - key_by: [user, url]\n  - dedup: {within: 10s, keep: first}\n";
    assert_eq!(dedup_ns(dir.path(), step).2, vec![1, 3, 4, 6, 8]);
    // Without `within`, a key's first record only.
    assert_eq!(dedup_ns(dir.path(), "  - dedup: {key: [user, url]}\n").2, vec![1, 3, 4]);
}

#[test]
fn last_emits_the_latest_record_of_each_interval_when_the_watermark_passes_its_end() {
    let dir = tempfile::tempdir().unwrap();
    let (code, stderr, ns) = dedup_ns(dir.path(), "  - dedup: {key: [user, url], within: 10s, keep: last}\n");
    assert_eq!(code, 0, "{stderr}");
    // a /x [1000, 11000) keeps 1, 2, then 5; record 6 comes with the watermark at
    // 10999, which frees it (5) before 6 opens [11000, 21000). Record 8 is after
    // b /x's end: it closes that interval at once (3). Its watermark, 30000, then
    // frees a /y (4, end 13000) and a /x (7, end 21000); the end of input frees 8.
    assert_eq!(ns, vec![5, 3, 4, 7, 8]);
}

#[test]
fn misuses_are_named_at_their_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = "sources:\n  in: {type: stdin}\nsteps:\n  - dedup: {within: 1h}\n  - dedup: {key: a, keep: last}\n  - dedup: {key: a, within: 1h, keep: sometimes}\nsinks:\n  out: {type: stdout}\n";
    let path = write_pipeline(dir.path(), "bad.yaml", yaml);
    let out = flowctl(&["validate", &path], None, &[]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains(&format!("{path}:4:5: error: `dedup` needs a `key` or a `key_by` before it")),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains(&format!("{path}:5:27: error: `keep: last` needs `within`")), "{}", out.stderr);
    assert!(out.stderr.contains(&format!("{path}:6:39: error: `keep` of `dedup`")), "{}", out.stderr);
    // A window after `keep: last` would judge its late results: refused by validate
    // and run alike.
    let yaml = "sources:\n  in: {type: stdin, event_time: {field: ts}}\nsteps:\n  - key_by: a\n  - dedup: {within: 1s, keep: last}\n  - key_by: a\n  - window: {tumbling: 10s}\n  - reduce: {n: count()}\nsinks:\n  out: {type: stdout}\n";
    let path = write_pipeline(dir.path(), "window.yaml", yaml);
    for command in ["validate", "run"] {
        let out = flowctl(&[command, &path], Some(""), &[]);
        assert_eq!(out.code, 2, "{}", out.stderr);
        assert!(
            out.stderr.contains(&format!("{path}:7:5: error: not supported yet: a window after `dedup #2`")),
            "{}",
            out.stderr
        );
    }
}

/// Clicks with duplicates: 40 users, 12 pages, a few seconds of disorder.
fn clicks(rows: usize) -> String {
    let mut text = String::from("ts,user,url,n\n");
    let mut state: u64 = 7;
    for i in 0..rows {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let jitter = (state >> 33) % 3000;
        let _ = writeln!(
            text,
            "{},u{},/p{},{i}",
            1_700_000_000_000 + i as u64 * 20 + jitter,
            (state >> 40) % 40,
            (state >> 50) % 12
        );
    }
    text
}

const KEYED: &str = "\
sources:
  clicks: {type: file, path: clicks.csv, event_time: {field: ts}, watermark: {max_out_of_orderness: 3s}}
steps:
  - key_by: user
  - dedup: {key: url, within: 5s, keep: last}
sinks:
  out: {type: file, path: out.csv}
";

#[test]
fn keyed_dedup_gives_the_same_records_at_any_parallelism_and_after_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("clicks.csv"), clicks(200_000)).unwrap();
    let path = write_pipeline(dir.path(), "keyed.yaml", KEYED);
    let sorted = |text: String| {
        let mut lines: Vec<String> = text.lines().map(String::from).collect();
        lines.sort();
        lines
    };
    let mut one = None;
    for p in ["1", "2", "3"] {
        assert_eq!(execution_mode(&path, p), if p == "1" { "one_thread" } else { "split_by_data" });
        let out = flowctl(&["run", "-p", p, &path], None, &[]);
        assert_eq!(out.code, 0, "{}", out.stderr);
        let written = std::fs::read_to_string(dir.path().join("out.csv")).unwrap();
        match &one {
            None => one = Some(written),
            Some(one) => assert_eq!(sorted(written), sorted(one.clone()), "at parallelism {p}"),
        }
    }
    let one = one.unwrap();
    let kept = one.lines().count() - 1;
    assert!(kept > 1000 && kept < 150_000, "{kept} records kept");
    // Killed again and again, resumed from its checkpoints (default parallelism).
    let yaml = format!("{KEYED}checkpoint: {{interval: 20ms}}\n");
    let path = write_pipeline(dir.path(), "checkpointed.yaml", &yaml);
    std::fs::remove_file(dir.path().join("out.csv")).unwrap();
    let kills = kill_9_until_done(&path, 40, 15);
    assert!(kills > 0, "never killed");
    let resumed = std::fs::read_to_string(dir.path().join("out.csv")).unwrap();
    assert_eq!(sorted(resumed), sorted(one), "after {kills} kills");
}
