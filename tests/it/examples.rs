//! Every pipeline in pipelines/ runs, and its stdout and output files equal the
//! expected ones under tests/expected/<pipeline>/ — at several batch sizes, since
//! results must not depend on batching. `UPDATE_EXPECTED=1` rewrites the expected
//! files (review the diff before committing).

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

fn run_example(name: &str, batch_size: &str) -> BTreeMap<String, String> {
    let out_dir = tempfile::tempdir().expect("temp dir");
    let pipeline = format!("pipelines/{name}.yaml");
    let result = flowctl(
        &["run", &pipeline, "--batch-size", batch_size],
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
        let produced = run_example(&name, "1024");
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
                run_example(&name, batch_size),
                produced,
                "pipelines/{name}.yaml gives other output at batch size {batch_size}"
            );
        }
    }
}
