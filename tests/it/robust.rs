//! Hostile and extreme input (issue 23): event times that are not finite or beyond
//! what a timestamp can hold, 64-bit overflow, corrupt checkpoints, resource bombs in
//! specs and expressions, closed standard streams. Each is a clear error or a counted
//! bad record, never a silent wrong answer, a panic or an abort.

use super::common::{flowctl, summary_counts, write_pipeline};

/// `epoch_seconds` values that are infinite, NaN or beyond 64-bit milliseconds are bad
/// records (skipped and counted), so the watermark never jumps to +inf and the good
/// records after them are still windowed.
#[test]
fn non_finite_and_huge_epoch_seconds_are_bad_records() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("in.csv"), "ts,user\n1,a\ninf,b\nNaN,c\n1e300,d\n-inf,e\n2,f\n3,g\n").unwrap();
    let yaml = "on_error: skip
sources:
  data:
    type: file
    path: in.csv
    schema: {ts: float, user: string}
    event_time: {field: ts, format: epoch_seconds}
steps:
  - key_by: 'true'
  - window: {tumbling: 10s}
  - reduce: {n: count()}
sinks:
  out: {type: stdout}
";
    let path = write_pipeline(dir.path(), "p.yaml", yaml);
    let out = flowctl(&["run", &path], None, &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("\"n\":3"), "{}", out.stdout);
    assert_eq!(summary_counts(&out.stderr), "7 in, 1 out, 0 late, 4 skipped, 0 failed");
    let fail = write_pipeline(dir.path(), "f.yaml", &yaml.replace("on_error: skip", "on_error: fail"));
    let out = flowctl(&["run", &fail], None, &[]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("in.csv:3") && out.stderr.contains("not a finite number of epoch seconds"),
        "{}",
        out.stderr
    );
}
