//! A stateless pipeline reading one file into its one sink reads the file in blocks on
//! every core (`runtime/block_lanes.rs`): it writes exactly the file one thread writes,
//! line for line and in order, with the same bad records, counts and first failure.

use super::common::{execution_mode, flowctl, summary_counts, write_pipeline};
use super::split::{input_with_bad_rows, stop_at_the_first_bad_record_of_one_thread};

const PIPELINE: &str = "sources:
  in:
    type: file
    path: in.csv
    schema: {ts: int, user_id: string, url: string, bytes: int, status: int}
    event_time: ts
on_error: {policy}
steps:
  - filter: status = 200 OR bytes % 3 = 0
  - map: {ts: ts, user_id: upper(user_id), url: url, ratio: 1000 / (bytes - 4242)}
sinks:
  out: {type: file, path: out/out.csv}
  errors: {type: file, path: out/errors.jsonl, format: jsonl}
";

/// Runs the pipeline under `policy` at `parallelism`: the exit code, stderr, and the
/// output and error files (empty when not written). The plan must read the file in
/// blocks exactly when `parallelism` > 1.
fn run(dir: &std::path::Path, policy: &str, parallelism: &str) -> (i32, String, String, String) {
    let _ = std::fs::remove_dir_all(dir.join("out"));
    let mut yaml = PIPELINE.replace("{policy}", policy);
    if policy != "errors" {
        // Otherwise a second reader of the steps.
        yaml = yaml.replace("  errors: {type: file, path: out/errors.jsonl, format: jsonl}\n", "");
    }
    let path = write_pipeline(dir, "p.yaml", &yaml);
    let mode = if parallelism == "1" { "one_thread" } else { "block_lanes" };
    assert_eq!(execution_mode(&path, parallelism), mode, "at parallelism {parallelism}");
    let out = flowctl(&["run", "--parallelism", parallelism, &path], None, &[]);
    let read = |name: &str| std::fs::read_to_string(dir.join("out").join(name)).unwrap_or_default();
    (out.code, out.stderr, read("out.csv"), read("errors.jsonl"))
}

#[test]
fn a_stateless_file_pipeline_on_every_core_writes_the_file_of_one_thread() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("in.csv"), input_with_bad_rows()).unwrap();
    let (code, stderr, out, errors) = run(dir.path(), "errors", "1");
    assert_eq!(code, 0, "{stderr}");
    assert!(out.lines().count() > 100_000, "{stderr}");
    // Undecodable rows and failed divisions, in input order.
    assert!(errors.lines().count() > 20, "{errors}");
    assert!(errors.contains("division by zero") && errors.contains("notanumber"), "{errors}");
    for parallelism in ["2", "3"] {
        let (blocks_code, blocks_stderr, blocks_out, blocks_errors) = run(dir.path(), "errors", parallelism);
        assert_eq!(blocks_code, 0, "{blocks_stderr}");
        assert!(blocks_out == out, "the output differs at parallelism {parallelism}");
        assert_eq!(blocks_errors, errors, "at parallelism {parallelism}");
        assert_eq!(summary_counts(&blocks_stderr), summary_counts(&stderr), "at parallelism {parallelism}");
    }
}

#[test]
fn json_lines_on_every_core_are_written_as_one_thread_writes_them() {
    let dir = tempfile::tempdir().unwrap();
    let json: String = input_with_bad_rows()
        .lines()
        .skip(1)
        .map(|row| match row.split(',').collect::<Vec<_>>()[..] {
            [ts, user, url, bytes, status] if bytes.parse::<i64>().is_ok() => format!(
                "{{\"ts\":{ts},\"user_id\":\"{user}\",\"url\":\"{url}\",\"bytes\":{bytes},\"status\":{status}}}\n"
            ),
            _ => "not json\n".to_string(),
        })
        .collect();
    std::fs::write(dir.path().join("in.jsonl"), json).unwrap();
    let yaml = PIPELINE.replace("{policy}", "errors").replace(
        "    path: in.csv\n    schema: {ts: int, user_id: string, url: string, bytes: int, status: int}\n",
        "    path: in.jsonl\n",
    );
    let path = write_pipeline(dir.path(), "json.yaml", &yaml);
    let read = |name: &str| std::fs::read_to_string(dir.path().join("out").join(name)).unwrap();
    let mut one = None;
    for parallelism in ["1", "2", "3"] {
        let _ = std::fs::remove_dir_all(dir.path().join("out"));
        let mode = if parallelism == "1" { "one_thread" } else { "block_lanes" };
        assert_eq!(execution_mode(&path, parallelism), mode, "at parallelism {parallelism}");
        let out = flowctl(&["run", "--parallelism", parallelism, &path], None, &[]);
        assert_eq!(out.code, 0, "{}", out.stderr);
        let written = (read("out.csv"), read("errors.jsonl"), summary_counts(&out.stderr));
        assert!(written.1.contains("invalid JSON"), "{}", written.1);
        match &one {
            None => one = Some(written),
            Some(one) => assert!(&written == one, "the output differs at parallelism {parallelism}"),
        }
    }
}

#[test]
fn under_on_error_fail_the_threads_stop_at_the_first_bad_record_of_the_file() {
    let run = |dir: &std::path::Path, parallelism: &str| {
        let (code, stderr, _, _) = run(dir, "fail", parallelism);
        (code, stderr)
    };
    // The first failed division comes before the first undecodable row.
    stop_at_the_first_bad_record_of_one_thread(run, "in.csv:3840): division by zero");
}
