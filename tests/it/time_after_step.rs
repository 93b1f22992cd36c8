//! Time after a step (the contract's section of that name): a window's results carry
//! `window_end - 1` and are judged downstream by the watermark as it stood before the
//! advance that fired them, so a window over window results loses none of them.

use super::common::{flowctl, write_pipeline};
use std::fmt::Write;

/// Clicks over ten minutes with up to four seconds of disorder, some much later.
fn clicks() -> String {
    let mut text = String::from("ts,user\n");
    let mut state: u64 = 11;
    for i in 0..60_000u64 {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let late = if (state >> 20) % 50 == 0 { 30_000 } else { (state >> 33) % 4_000 };
        let ts = (1_700_000_000_000 + i * 10).saturating_sub(late);
        let _ = writeln!(text, "{ts},u{}", (state >> 40) % 300);
    }
    text
}

const PER_USER: &str = "\
sources:
  clicks: {type: file, path: clicks.csv, event_time: ts, watermark: {max_out_of_orderness: 2s}}
steps:
  - key_by: user
  - window: {tumbling: 10s}
  - reduce: {n: count()}
";

/// The sum of a CSV column (by header name) of a run's stdout.
fn column_sum(csv: &str, column: &str) -> i64 {
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap_or_default().split(',').collect();
    let at = header.iter().position(|h| *h == column).unwrap_or_else(|| panic!("no column {column} in {csv}"));
    lines.map(|l| l.split(',').nth(at).unwrap().parse::<i64>().unwrap()).sum()
}

#[test]
fn a_window_over_window_results_loses_none_of_them() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("clicks.csv"), clicks()).unwrap();
    let first =
        write_pipeline(dir.path(), "first.yaml", &format!("{PER_USER}sinks:\n  out: {{type: stdout, format: csv}}\n"));
    let out = flowctl(&["run", "-q", "-p", "1", &first], None, &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let counted = column_sum(&out.stdout, "n");
    assert!(counted > 50_000 && counted < 60_000, "{counted} clicks counted (some are late)");
    let second = format!(
        "{PER_USER}  - key_by: {{start: window_start}}\n  - window: {{tumbling: 1m}}\n  - reduce: {{users: count(), total: sum(n)}}\nsinks:\n  out: {{type: stdout, format: csv}}\n"
    );
    let second = write_pipeline(dir.path(), "second.yaml", &second);
    for p in ["1", "2"] {
        let out = flowctl(&["run", "-p", p, &second], None, &[]);
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert_eq!(column_sum(&out.stdout, "total"), counted, "at parallelism {p}: {}", out.stderr);
    }
}
