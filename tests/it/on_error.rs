//! Malformed CSV and JSON rows, and records failing in a step, under each `on_error`
//! policy: fail (names source, file, line and step), skip (counted), a sink (error
//! records with source, file, line, step, input and error).

use super::common::{flowctl, summary_counts, write_pipeline};

const CSV: &str = "id,amount\n1,10\n2,abc\n3,30\n4\n";
const JSONL: &str = "{\"id\": 1, \"amount\": 10}\nnot json\n[1, 2]\n{\"id\": 4, \"amount\": 0}\n";

fn setup(policy: &str, format: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let (file, schema) = match format {
        "csv" => ("in.csv", "\n    schema: {id: int, amount: int}"),
        _ => ("in.jsonl", ""),
    };
    std::fs::write(dir.path().join(file), if format == "csv" { CSV } else { JSONL }).unwrap();
    let error_sink = if policy == "errors" { "\n  errors: {type: file, path: errors.jsonl}" } else { "" };
    let yaml = format!(
        "on_error: {policy}\nsources:\n  data:\n    type: file\n    path: {file}{schema}\nsteps:\n  - id: ratio\n    map: {{id: id, r: 100 / amount}}\nsinks:\n  out: {{type: stdout}}{error_sink}\n"
    );
    let path = write_pipeline(dir.path(), "p.yaml", &yaml);
    (dir, path)
}

#[test]
fn fail_names_source_file_and_line() {
    let (dir, path) = setup("fail", "csv");
    let out = flowctl(&["run", &path], None, &[]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    let file = dir.path().join("in.csv").display().to_string();
    assert!(
        out.stderr.contains(&format!("bad record in source `data` ({file}:3): column `amount`: `abc` is not an int")),
        "{}",
        out.stderr
    );
}

#[test]
fn fail_names_the_step_for_evaluation_errors() {
    let (dir, path) = setup("fail", "jsonl");
    std::fs::write(dir.path().join("in.jsonl"), "{\"id\": 1, \"amount\": 10}\n{\"id\": 4, \"amount\": 0}\n").unwrap();
    let out = flowctl(&["run", &path], None, &[]);
    assert_eq!(out.code, 1);
    let file = dir.path().join("in.jsonl").display().to_string();
    assert!(
        out.stderr.contains(&format!("step `ratio` failed on a record of source `data` ({file}:2): division by zero")),
        "{}",
        out.stderr
    );
}

#[test]
fn skip_counts_bad_csv_rows() {
    let (_dir, path) = setup("skip", "csv");
    let out = flowctl(&["run", &path], None, &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, "{\"id\":1,\"r\":10}\n{\"id\":3,\"r\":3}\n");
    assert_eq!(summary_counts(&out.stderr), "4 in, 2 out, 0 late, 2 skipped, 0 failed");
}

#[test]
fn skip_counts_bad_json_lines_and_failed_steps() {
    let (_dir, path) = setup("skip", "jsonl");
    let out = flowctl(&["run", &path], None, &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, "{\"id\":1,\"r\":10}\n");
    assert_eq!(summary_counts(&out.stderr), "4 in, 1 out, 0 late, 3 skipped, 0 failed");
}

#[test]
fn sink_policy_receives_descriptive_error_records() {
    let (dir, path) = setup("errors", "jsonl");
    let out = flowctl(&["run", &path], None, &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(summary_counts(&out.stderr), "4 in, 1 out, 0 late, 0 skipped, 3 failed");
    let errors = std::fs::read_to_string(dir.path().join("errors.jsonl")).unwrap();
    let file = dir.path().join("in.jsonl").display().to_string();
    let lines: Vec<serde_json::Value> = errors.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["source"], "data");
    assert_eq!(lines[0]["file"], file.as_str());
    assert_eq!(lines[0]["line"], 2);
    assert_eq!(lines[0]["step"], serde_json::Value::Null);
    assert_eq!(lines[0]["input"], "not json");
    assert!(lines[0]["error"].as_str().unwrap().starts_with("invalid JSON"));
    assert_eq!(lines[1]["line"], 3);
    assert_eq!(lines[1]["error"], "expected a JSON object, found an array");
    assert_eq!(lines[2]["line"], 4);
    assert_eq!(lines[2]["step"], "ratio");
    assert_eq!(lines[2]["input"], serde_json::json!({"id": 4, "amount": 0}));
    assert_eq!(lines[2]["error"], "division by zero");
    let fields: Vec<&str> = lines[2].as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(fields, ["source", "file", "line", "step", "input", "error"]);
}

#[test]
fn sink_policy_collects_short_csv_rows() {
    let (dir, path) = setup("errors", "csv");
    let out = flowctl(&["run", &path], None, &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let errors = std::fs::read_to_string(dir.path().join("errors.jsonl")).unwrap();
    assert!(errors.contains("\"line\":5") && errors.contains("expected 2 fields, found 1"), "{errors}");
}

#[test]
fn records_whose_event_time_cannot_be_read_go_to_the_error_sink_in_input_order() {
    let dir = tempfile::tempdir().unwrap();
    let rows = "id,ts\n1,2024-01-01T00:00:00Z\n2,yesterday\n3,\n4,2024-01-01T00:00:01Z\n5,2024-01-01T00:00:02Z\n";
    std::fs::write(dir.path().join("in.csv"), rows).unwrap();
    let yaml = "on_error: errors\nsources:\n  data:\n    type: file\n    path: in.csv\n    schema: {id: int, ts: string}\n    \
                event_time: ts\nsinks:\n  out: {type: stdout}\n  errors: {type: file, path: errors.jsonl}\n";
    let path = write_pipeline(dir.path(), "p.yaml", yaml);
    let out = flowctl(&["run", &path], None, &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let ids: Vec<i64> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, [1, 4, 5]);
    let errors = std::fs::read_to_string(dir.path().join("errors.jsonl")).unwrap();
    let lines: Vec<serde_json::Value> = errors.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.iter().map(|l| l["line"].as_i64().unwrap()).collect::<Vec<_>>(), [3, 4]);
    assert!(lines[0]["error"].as_str().unwrap().contains("`yesterday` is not an RFC 3339 timestamp"), "{errors}");
    assert!(lines[1]["error"].as_str().unwrap().contains("the value is null"), "{errors}");
}

/// A head of filters only judges records where they lie (`runtime/lane_steps.rs`): a
/// predicate that fails names its step and record, and the records after it go on.
#[test]
fn a_failing_filter_predicate_names_its_step_and_the_rest_pass() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("in.jsonl"), JSONL).unwrap();
    let yaml = "on_error: errors\nsources:\n  data: {type: file, path: in.jsonl}\nsteps:\n  - filter: id > 0\n  - id: ratio\n    filter: 100 / amount > 1\nsinks:\n  out: {type: stdout}\n  errors: {type: file, path: errors.jsonl}\n";
    let path = write_pipeline(dir.path(), "p.yaml", yaml);
    let out = flowctl(&["run", &path], None, &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, "{\"id\":1,\"amount\":10}\n");
    assert_eq!(summary_counts(&out.stderr), "4 in, 1 out, 0 late, 0 skipped, 3 failed");
    let errors = std::fs::read_to_string(dir.path().join("errors.jsonl")).unwrap();
    let last: serde_json::Value = serde_json::from_str(errors.lines().last().unwrap()).unwrap();
    assert_eq!(
        (&last["step"], &last["line"], &last["error"]),
        (&"ratio".into(), &4.into(), &"division by zero".into())
    );
    assert_eq!(last["input"], serde_json::json!({"id": 4, "amount": 0}));
}
