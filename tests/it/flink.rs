//! The exported Flink SQL runs on real Flink: PyFlink's local mini-cluster (installed
//! once into a cached virtual environment by `scripts/pyflink install`) runs the
//! scripts of bounded file pipelines, and the rows Flink writes equal, as multisets,
//! the rows `flowctl run` writes from the same input. Skips with one line when PyFlink
//! is not installed, except under CI=true (`.ci/run` installs it), where it must run.

use super::common::{flowctl, root};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Each pipeline and the output files its sinks write under OUT_DIR.
const CASES: &[(&str, &[&str])] = &[
    ("pipelines/clicks_flink.yaml", &["clicks_flink.csv"]),
    ("tests/fixtures/export/orders.yaml", &["orders.jsonl"]),
    ("tests/fixtures/export/windows.yaml", &["sessions.jsonl", "pages.csv"]),
    ("tests/fixtures/export/dedup.yaml", &["first_visits.jsonl", "new_pages.csv"]),
    ("tests/fixtures/export/datagen.yaml", &["datagen.csv"]),
    ("tests/fixtures/export/tags.yaml", &["tagged.jsonl", "tag_counts.jsonl"]),
];

/// The longest the Flink jobs may take together (a JVM start and a few small jobs).
const FLINK_TIMEOUT: Duration = Duration::from_secs(600);

/// The python of the cached PyFlink environment, when it is installed.
fn pyflink_python() -> Option<String> {
    let out = Command::new(root().join("scripts/pyflink")).arg("python").stderr(Stdio::null()).output().ok()?;
    let python = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (out.status.success() && !python.is_empty()).then_some(python)
}

/// One line per record, numbers in one form (Java and Rust may spell a double
/// differently), so that equal rows compare equal.
fn rows(name: &str, text: &str) -> Vec<String> {
    let number = |s: &str| match (s.parse::<i64>(), s.parse::<f64>()) {
        (Ok(i), _) => i.to_string(),
        (_, Ok(f)) => format!("{f:?}"),
        _ => s.to_string(),
    };
    let mut rows: Vec<String> = text
        .lines()
        .filter(|l| !l.is_empty())
        .map(|line| {
            if name.ends_with(".csv") {
                line.split(',').map(number).collect::<Vec<_>>().join(",")
            } else {
                let value: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
                let fields = value.as_object().expect("a JSON object");
                let cells: Vec<String> = fields
                    .iter()
                    .map(|(k, v)| match v {
                        serde_json::Value::Number(n) => format!("{k}={}", number(&n.to_string())),
                        other => format!("{k}={other}"),
                    })
                    .collect();
                cells.join(",")
            }
        })
        .collect();
    rows.sort();
    rows
}

/// What Flink committed into the sink directory `dir` (its part files).
fn flink_output(dir: &Path) -> String {
    let mut text = String::new();
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("Flink wrote no directory {}: {e}", dir.display())) {
        let path = entry.expect("entry").path();
        let name = path.file_name().expect("name").to_string_lossy().to_string();
        assert!(!name.starts_with('.'), "Flink left an uncommitted file {}", path.display());
        text.push_str(&std::fs::read_to_string(&path).expect("read part file"));
    }
    text
}

fn run_flink(python: &str, scripts: &[String]) {
    let mut child = Command::new(python)
        .arg(root().join("scripts/flink-sql-run.py"))
        .args(scripts)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("PyFlink starts");
    let started = Instant::now();
    while child.try_wait().expect("wait for PyFlink").is_none() {
        if started.elapsed() > FLINK_TIMEOUT {
            let _ = child.kill();
            panic!("the Flink jobs took more than {FLINK_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let out = child.wait_with_output().expect("PyFlink output");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let errors: Vec<&str> = stderr.lines().filter(|l| !l.starts_with("WARNING")).collect();
    assert!(out.status.success(), "Flink failed:\n{}", errors.join("\n"));
}

#[test]
fn exported_scripts_give_flowctls_rows_on_flink() {
    let Some(python) = pyflink_python() else {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "PyFlink is not installed under CI: .ci/run runs `scripts/pyflink install` first"
        );
        eprintln!("skipped: PyFlink is not installed (run `scripts/pyflink install` to run the scripts on Flink)");
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let mut scripts = Vec::new();
    for (i, (pipeline, _)) in CASES.iter().enumerate() {
        let (ours, theirs) = (dir.path().join(format!("flowctl-{i}")), dir.path().join(format!("flink-{i}")));
        std::fs::create_dir_all(&ours).expect("output dir");
        let run = flowctl(&["run", pipeline], None, &[("OUT_DIR", &ours.display().to_string())]);
        assert_eq!(run.code, 0, "flowctl run {pipeline}: {}", run.stderr);
        let script = dir.path().join(format!("{i}.sql")).display().to_string();
        let export = flowctl(
            &["export", "flink-sql", pipeline, "-o", &script],
            None,
            &[("OUT_DIR", &theirs.display().to_string())],
        );
        assert_eq!(export.code, 0, "export {pipeline}: {}", export.stderr);
        scripts.push(script);
    }
    let started = Instant::now();
    run_flink(&python, &scripts);
    eprintln!("the Flink jobs took {:.1} s", started.elapsed().as_secs_f64());
    let mut compared = BTreeMap::new();
    for (i, (pipeline, files)) in CASES.iter().enumerate() {
        for file in *files {
            let ours =
                std::fs::read_to_string(dir.path().join(format!("flowctl-{i}")).join(file)).expect("flowctl output");
            let theirs = flink_output(&dir.path().join(format!("flink-{i}")).join(file));
            let (ours, theirs) = (rows(file, &ours), rows(file, &theirs));
            assert!(!ours.is_empty(), "{pipeline} wrote no rows to {file}: the comparison would prove nothing");
            assert_eq!(theirs, ours, "{pipeline}: Flink's rows in {file} differ from flowctl's");
            compared.insert(format!("{pipeline}:{file}"), ours.len());
        }
    }
    eprintln!("rows equal on Flink and flowctl: {compared:?}");
}
