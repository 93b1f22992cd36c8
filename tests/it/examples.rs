//! Every pipeline in pipelines/ runs, and its stdout and output files equal the
//! expected ones under tests/expected/<pipeline>/ — at several batch sizes on one
//! thread, since results must not depend on batching, and as the same multiset of
//! lines at parallelism 2 and 3 (parallel keyed instances write in their own order).
//! `UPDATE_EXPECTED=1` rewrites the expected files (review the diff before committing).

use super::common::{flowctl, root};
use std::collections::BTreeMap;
use std::path::Path;

/// Stdin for pipelines that read it.
fn stdin_for(name: &str) -> Option<String> {
    match name {
        "log_errors" => Some(std::fs::read_to_string(root().join("fixtures/app.log")).expect("fixture")),
        _ => None,
    }
}

fn outputs(dir: &Path) -> BTreeMap<String, String> {
    let mut files = BTreeMap::new();
    for entry in std::fs::read_dir(dir).expect("read output dir") {
        let path = entry.expect("entry").path();
        let name = path.file_name().expect("name").to_string_lossy().to_string();
        files.insert(name, std::fs::read_to_string(&path).expect("read output"));
    }
    files
}

/// The lines of every output, sorted: what parallel runs must equal.
pub(crate) fn multiset(outputs: &BTreeMap<String, String>) -> BTreeMap<String, Vec<String>> {
    outputs
        .iter()
        .map(|(name, text)| {
            let mut lines: Vec<String> = text.lines().map(String::from).collect();
            lines.sort();
            (name.clone(), lines)
        })
        .collect()
}

fn run_example(name: &str, batch_size: &str, parallelism: &str) -> BTreeMap<String, String> {
    let out_dir = tempfile::tempdir().expect("temp dir");
    let pipeline = format!("pipelines/{name}.yaml");
    let result = flowctl(
        &["run", &pipeline, "--batch-size", batch_size, "--parallelism", parallelism],
        stdin_for(name).as_deref(),
        &[("OUT_DIR", &out_dir.path().display().to_string())],
    );
    assert_eq!(result.code, 0, "{pipeline} failed: {}", result.stderr);
    let mut produced = outputs(out_dir.path());
    produced.insert("stdout".into(), result.stdout);
    produced
}

#[test]
fn every_example_pipeline_matches_its_expected_output() {
    let mut names: Vec<String> = std::fs::read_dir(root().join("pipelines"))
        .expect("pipelines dir")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .map(|p| p.file_stem().expect("stem").to_string_lossy().to_string())
        .collect();
    names.sort();
    assert!(names.len() >= 5, "expected the example pipelines, found {names:?}");
    for name in names {
        let produced = run_example(&name, "1024", "1");
        let expected_dir = root().join("tests/expected").join(&name);
        if std::env::var_os("UPDATE_EXPECTED").is_some() {
            let _ = std::fs::remove_dir_all(&expected_dir);
            std::fs::create_dir_all(&expected_dir).expect("create expected dir");
            for (file, text) in &produced {
                std::fs::write(expected_dir.join(file), text).expect("write expected");
            }
        }
        let expected = outputs(&expected_dir);
        assert_eq!(produced, expected, "output of pipelines/{name}.yaml differs from tests/expected/{name}/");
        for batch_size in ["1", "7"] {
            assert_eq!(
                run_example(&name, batch_size, "1"),
                produced,
                "pipelines/{name}.yaml gives other output at batch size {batch_size}"
            );
        }
        for (batch_size, parallelism) in [("1024", "2"), ("7", "3")] {
            assert_eq!(
                multiset(&run_example(&name, batch_size, parallelism)),
                multiset(&produced),
                "pipelines/{name}.yaml gives other results at parallelism {parallelism}"
            );
        }
    }
}

/// The Nexmark queries in pipelines/nexmark/ run on a small stream, give the same
/// output twice (the generator is deterministic), the same at parallelism 2 and with
/// the events generated on 2 lanes, and what their SQL says.
#[test]
fn nexmark_queries_run_and_repeat_exactly() {
    let run = |q: &str, options: &[&str]| {
        let out_dir = tempfile::tempdir().expect("temp dir");
        let path = format!("pipelines/nexmark/{q}.yaml");
        let args = [&["run", path.as_str(), "--set", "sources.events.events=20000"], options].concat();
        let out = flowctl(&args, None, &[("OUT_DIR", &out_dir.path().display().to_string())]);
        assert_eq!(out.code, 0, "{path}: {}", out.stderr);
        (
            outputs(out_dir.path()),
            out.stderr.lines().next().unwrap_or_default().split(" in ").next().unwrap_or_default().to_string(),
        )
    };
    for q in ["q0", "q1", "q2", "q5", "q11", "q14", "q15", "q16", "q17", "q22"] {
        let (first, counts) = run(q, &["--parallelism", "1"]);
        assert_eq!(run(q, &["--parallelism", "1"]).0, first, "{q} repeats");
        assert_eq!(multiset(&run(q, &["--parallelism", "2"]).0), multiset(&first), "{q} at parallelism 2");
        let (lanes, lane_counts) = run(q, &["--parallelism", "2", "--set", "sources.events.parallelism=2"]);
        assert_eq!(multiset(&lanes), multiset(&first), "{q} generated on 2 lanes");
        assert!(lane_counts.contains("20000 in, "), "{q} on 2 lanes: {lane_counts}");
        assert!(counts.contains("20000 in, "), "{q}: {counts}");
        let text: String = first.values().cloned().collect();
        let records: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).expect("json")).collect();
        match q {
            "q0" | "q1" => assert!(counts.contains(" 18400 out,"), "{q}: 46 bids in every 50 events: {counts}"),
            "q2" => assert!(!records.is_empty() && records.iter().all(|r| r["auction"].as_i64().unwrap() % 123 == 0)),
            "q15" => assert_eq!(records[0]["total_bids"], 18400),
            "q22" => assert!(records.iter().all(|r| r.get("dir1").is_some())),
            _ => assert!(!records.is_empty(), "{q} wrote nothing"),
        }
    }
}
