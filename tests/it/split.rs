//! A file split between the keyed steps' workers (`runtime/split.rs`: each worker
//! decodes its own blocks, runs the head steps and keeps the windows of its keys) gives
//! what one thread gives: the same windows, late records and bad records as a multiset,
//! the same counts, and under `on_error: fail` the same first bad record.

use super::common::{execution_mode, flowctl, summary_counts, write_pipeline};
use super::examples::multiset;
use super::w1::generate;
use std::collections::BTreeMap;

/// W1's rows (about 4.5 MB: many blocks, late rows throughout) with an undecodable row
/// every 9973 rows.
pub fn input_with_bad_rows() -> String {
    let (csv, _) = generate(150_000, 2);
    let mut out = String::with_capacity(csv.len() + 1024);
    for (i, line) in csv.lines().enumerate() {
        out.push_str(line);
        out.push('\n');
        if i % 9973 == 9972 {
            out.push_str("1700000000000,u1,/,notanumber,200\n");
        }
    }
    out
}

const PIPELINE: &str = "sources:
  in:
    type: file
    path: in.csv
    schema: {ts: int, user_id: string, url: string, bytes: int, status: int}
    event_time: ts
    watermark: {max_out_of_orderness: 2s}
on_error: {policy}
steps:
  - filter: status = 200
  - key_by: user_id
  - window: {tumbling: 10s, late: late}
  - reduce: {n: count(), bytes: sum(bytes), first_url: first(url)}
sinks:
  out: {type: file, path: out/windows.csv}
  late: {type: file, path: out/late.csv}
  errors: {type: file, path: out/errors.jsonl, format: jsonl}
";

/// Runs the pipeline under `policy` at `parallelism`; the exit code, stderr and the
/// output files. The plan must split the file exactly when `parallelism` > 1.
fn run(dir: &std::path::Path, policy: &str, parallelism: &str) -> (i32, String, BTreeMap<String, String>) {
    let _ = std::fs::remove_dir_all(dir.join("out"));
    let path = write_pipeline(dir, "split.yaml", &PIPELINE.replace("{policy}", policy));
    let mode = if parallelism == "1" { "one_thread" } else { "split_by_data" };
    assert_eq!(execution_mode(&path, parallelism), mode, "at parallelism {parallelism}");
    let out = flowctl(&["run", "--parallelism", parallelism, &path], None, &[]);
    (out.code, out.stderr, outputs(dir))
}

/// The files the pipeline wrote into `dir`/out, by name.
fn outputs(dir: &std::path::Path) -> BTreeMap<String, String> {
    let mut files = BTreeMap::new();
    for entry in std::fs::read_dir(dir.join("out")).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        files.insert(name, std::fs::read_to_string(entry.path()).unwrap());
    }
    files
}

#[test]
fn workers_splitting_a_file_give_the_windows_late_and_bad_records_of_one_thread() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("in.csv"), input_with_bad_rows()).unwrap();
    let (code, stderr, one) = run(dir.path(), "errors", "1");
    assert_eq!(code, 0, "{stderr}");
    assert!(one["windows.csv"].lines().count() > 1000, "{stderr}");
    assert!(one["late.csv"].lines().count() > 100, "{stderr}");
    assert_eq!(one["errors.jsonl"].lines().count(), 15, "{stderr}");
    for parallelism in ["2", "3"] {
        let (code, split_stderr, split) = run(dir.path(), "errors", parallelism);
        assert_eq!(code, 0, "{split_stderr}");
        assert_eq!(multiset(&split), multiset(&one), "at parallelism {parallelism}");
        // The workers encode their lines; the sinks' headers still come first.
        for file in ["windows.csv", "late.csv"] {
            assert_eq!(split[file].lines().next(), one[file].lines().next(), "{file} at parallelism {parallelism}");
        }
        assert_eq!(summary_counts(&split_stderr), summary_counts(&stderr), "at parallelism {parallelism}");
        // The late counts (the peak of open windows is summed over the workers).
        let late = |s: &str| s.lines().find_map(|l| l.split_once("late records: ")).map(|(_, n)| n.to_string());
        assert_eq!(late(&split_stderr), late(&stderr), "at parallelism {parallelism}");
    }
}

#[test]
fn under_on_error_fail_the_workers_stop_at_the_first_bad_record_of_the_file() {
    let run = |dir: &std::path::Path, parallelism: &str| {
        let (code, stderr, _) = run(dir, "fail", parallelism);
        (code, stderr)
    };
    stop_at_the_first_bad_record_of_one_thread(run, "in.csv:9974)");
}

/// Under `on_error: fail`, `run` (in a directory holding [`input_with_bad_rows`] as
/// in.csv) at parallelism 1 stops at the bad record `first` (in its error line), and
/// at parallelism 2 and 3 (three times each, logging `parallel`) at the same one, with
/// the same exit code.
pub fn stop_at_the_first_bad_record_of_one_thread(run: impl Fn(&std::path::Path, &str) -> (i32, String), first: &str) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("in.csv"), input_with_bad_rows()).unwrap();
    let run = |parallelism: &str| run(dir.path(), parallelism);
    let error = |stderr: &str| stderr.lines().find(|l| l.contains("error")).unwrap_or_default().to_string();
    let (code, stderr) = run("1");
    assert_eq!(code, 1, "{stderr}");
    assert!(error(&stderr).contains(first), "{stderr}");
    for parallelism in ["2", "3"] {
        for _ in 0..3 {
            let (parallel_code, parallel_stderr) = run(parallelism);
            assert_eq!(
                (parallel_code, error(&parallel_stderr)),
                (code, error(&stderr)),
                "at parallelism {parallelism}"
            );
        }
    }
}

#[test]
fn a_split_run_stopped_again_and_again_resumes_from_its_checkpoints_to_the_same_results() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("in.csv"), input_with_bad_rows()).unwrap();
    let (code, stderr, expected) = run(dir.path(), "errors", "1");
    assert_eq!(code, 0, "{stderr}");
    let _ = std::fs::remove_dir_all(dir.path().join("out"));
    let yaml = format!("{}checkpoint: {{interval: 10ms}}\n", PIPELINE.replace("{policy}", "errors"));
    let path = write_pipeline(dir.path(), "checkpointed.yaml", &yaml);
    assert_eq!(execution_mode(&path, "2"), "split_by_data");
    flowctl(&["run", "--parallelism", "2", "--fresh", &path], None, &[]);
    // Start over: no output, no checkpoints (a first run killed before it could act on
    // `--fresh` would otherwise leave the next to resume from this finished one).
    let _ = std::fs::remove_dir_all(dir.path().join("out"));
    std::fs::remove_dir_all(dir.path().join(".flowctl")).unwrap();
    let mut stops = 0;
    for attempt in 0.. {
        assert!(attempt < 200, "the run never finished");
        let parallelism = ["2", "3"][attempt % 2];
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_flowctl"))
            .args(["run", "-q", "--parallelism", parallelism, &path])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // Short lives first (each resumed run has less left to read, so they must stay
        // short to be stopped before the end), then long enough to finish.
        let ms = if stops < 6 { 5 + 5 * (attempt as u64 % 5) } else { 2000 };
        std::thread::sleep(std::time::Duration::from_millis(ms));
        let _ = std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
        match child.wait().unwrap().code() {
            Some(0) => break,
            // 143: stopped by its handler; None: killed by the signal before flowctl
            // installed its handlers (as hard a stop as kill -9).
            Some(143) | None => stops += 1,
            other => panic!("a run ended with {other:?}"),
        }
    }
    assert!(stops >= 6, "only {stops} stops");
    assert_eq!(multiset(&outputs(dir.path())), multiset(&expected));
}
