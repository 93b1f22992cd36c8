//! `flowctl export flink-sql`: the script's text for exportable pipelines (snapshots,
//! with the checkout's path replaced by `<root>`), refusals at file:line:col with
//! exit 2, `--set` and `-o`. Running the scripts on Flink is tests/it/flink.rs.

use super::common::{flowctl, root};

/// The script for `pipeline`, with OUT_DIR=/out and the checkout's path as `<root>`.
fn export(pipeline: &str, extra: &[&str]) -> String {
    let mut args = vec!["export", "flink-sql", pipeline];
    args.extend_from_slice(extra);
    let out = flowctl(&args, None, &[("OUT_DIR", "/out")]);
    assert_eq!(out.code, 0, "export of {pipeline} failed: {}", out.stderr);
    assert_eq!(out.stderr, "", "a successful export says nothing on stderr");
    out.stdout.replace(&root().display().to_string(), "<root>")
}

#[test]
fn the_acceptance_pipeline_exports_tables_views_and_one_statement_set() {
    let script = export("pipelines/clicks_flink.yaml", &[]);
    insta::assert_snapshot!("export_clicks_flink", script);
}

#[test]
fn expressions_translate_from_their_trees() {
    insta::assert_snapshot!("export_orders", export("tests/fixtures/export/orders.yaml", &[]));
}

#[test]
fn session_and_sliding_windows_become_window_tvfs() {
    insta::assert_snapshot!("export_windows", export("tests/fixtures/export/windows.yaml", &[]));
}

#[test]
fn dedup_keeping_the_first_forever_becomes_flinks_deduplication() {
    insta::assert_snapshot!("export_dedup", export("tests/fixtures/export/dedup.yaml", &[]));
}

#[test]
fn sequences_and_constants_become_flinks_datagen() {
    insta::assert_snapshot!("export_datagen", export("tests/fixtures/export/datagen.yaml", &[]));
}

#[test]
fn flat_map_over_split_becomes_unnest() {
    insta::assert_snapshot!("export_tags", export("tests/fixtures/export/tags.yaml", &[]));
}

#[test]
fn kafka_jdbc_print_and_blackhole_connectors_and_settings() {
    insta::assert_snapshot!("export_connectors", export("tests/fixtures/export/connectors.yaml", &[]));
}

#[test]
fn what_has_no_faithful_equivalent_is_refused_at_its_line_and_column() {
    let out = flowctl(&["export", "flink-sql", "tests/fixtures/export/refused.yaml"], None, &[]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert_eq!(out.stdout, "", "a refused export prints no script");
    insta::assert_snapshot!("export_refused", out.stderr);
}

#[test]
fn allow_approximate_exports_near_equivalents_with_a_comment_at_each() {
    let pipeline = "tests/fixtures/export/approximate.yaml";
    let refused = flowctl(&["export", "flink-sql", pipeline], None, &[]);
    assert_eq!(refused.code, 2, "without the flag it is refused: {}", refused.stderr);
    assert!(refused.stderr.contains("approximate.yaml:15:14: error: step `window #2`"), "{}", refused.stderr);
    let script = export(pipeline, &["--allow-approximate"]);
    assert_eq!(script.matches("-- APPROXIMATE (line ").count(), 6, "{script}");
    insta::assert_snapshot!("export_approximate", script);
}

#[test]
fn set_overrides_and_output_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("job.sql");
    let file_arg = file.display().to_string();
    let out = flowctl(
        &[
            "export",
            "flink-sql",
            "pipelines/clicks_flink.yaml",
            "--set",
            "sinks.out.path=s3://bucket/out.csv",
            "--set",
            "steps.2.window.tumbling=1m",
            "-o",
            &file_arg,
        ],
        None,
        &[],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, "", "with -o the script goes to the file only");
    let script = std::fs::read_to_string(&file).expect("script written");
    assert!(script.contains("'path' = 's3://bucket/out.csv'"), "{script}");
    assert!(script.contains("'path' = 'file:///"), "the source stays a local file: {script}");
    assert!(script.contains("INTERVAL '60' SECOND"), "{script}");
    assert!(!script.contains("INTERVAL '10' SECOND"), "{script}");
}

/// The example pipelines that export; every other one is refused with a located
/// reason (docs/flink.md lists why).
const EXPORTABLE: &[&str] = &["clicks_flink"];

#[test]
fn every_example_pipeline_exports_or_is_refused_with_a_position() {
    let mut paths = Vec::new();
    for dir in ["pipelines", "pipelines/kafka", "pipelines/nexmark"] {
        for entry in std::fs::read_dir(root().join(dir)).expect("pipelines dir") {
            let path = entry.expect("entry").path();
            if path.extension().is_some_and(|e| e == "yaml") {
                paths.push(format!("{dir}/{}", path.file_name().expect("name").to_string_lossy()));
            }
        }
    }
    paths.sort();
    assert!(paths.len() > 20, "expected the example pipelines, found {paths:?}");
    for path in &paths {
        let out = flowctl(&["export", "flink-sql", path], None, &[("OUT_DIR", "/out")]);
        let stem = path.rsplit('/').next().unwrap().trim_end_matches(".yaml");
        if EXPORTABLE.contains(&stem) {
            assert_eq!(out.code, 0, "{path}: {}", out.stderr);
            assert!(out.stdout.trim_end().ends_with("END;"), "{path}: {}", out.stdout);
        } else {
            assert_eq!(out.code, 2, "{path} should be refused: {}{}", out.stdout, out.stderr);
            let first = out.stderr.lines().next().unwrap_or_default();
            let located = first.strip_prefix(&format!("{path}:")).and_then(|rest| rest.split_once(": error: "));
            let position = located.map(|(pos, _)| pos.split(':').all(|n| n.parse::<u32>().is_ok_and(|n| n > 0)));
            assert_eq!(position, Some(true), "{path}: the refusal names no line and column: {}", out.stderr);
        }
    }
}
