//! `flowctl plan` states how every example pipeline runs: its JSON plan (execution
//! mode, threads, where each operator runs, the edges) is snapshot-tested at
//! parallelism 2 for every file in pipelines/, and its Graphviz drawing renders.

use super::common::{flowctl, root};
use std::path::PathBuf;
use std::process::Command;

/// Every pipeline file under pipelines/, relative to the repository root, sorted.
fn example_pipelines() -> Vec<String> {
    let mut found = Vec::new();
    let mut dirs = vec![root().join("pipelines")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path: PathBuf = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "yaml") {
                found.push(path.strip_prefix(root()).unwrap().display().to_string());
            }
        }
    }
    found.sort();
    found
}

#[test]
fn the_json_plan_of_every_example_pipeline_says_how_it_runs() {
    let pipelines = example_pipelines();
    assert!(pipelines.len() >= 20, "{pipelines:?}");
    for path in pipelines {
        // What the examples take from the environment, fixed: the plan names paths.
        let env = [("OUT_DIR", "out"), ("W1_INPUT", "w1.csv"), ("KAFKA_BROKERS", "127.0.0.1:9092")];
        let out = flowctl(&["plan", "--format", "json", "-p", "2", &path], None, &env);
        assert_eq!(out.code, 0, "{path}: {}", out.stderr);
        serde_json::from_str::<serde_json::Value>(&out.stdout).expect("JSON");
        let name = path.trim_start_matches("pipelines/").trim_end_matches(".yaml").replace('/', "_");
        insta::assert_snapshot!(format!("plan_{name}"), out.stdout);
    }
}

#[test]
fn the_plan_at_parallelism_1_runs_the_steps_on_one_thread() {
    for path in ["pipelines/w1.yaml", "pipelines/quickstart.yaml", "pipelines/windows_tumbling.yaml"] {
        let out = flowctl(&["plan", "--format", "json", "-p", "1", path], None, &[]);
        let plan: serde_json::Value = serde_json::from_str(&out.stdout).expect("JSON");
        assert_eq!(plan["execution"]["mode"], "one_thread", "{path}");
        assert_eq!(plan["execution"]["why"], "parallelism 1", "{path}");
    }
}

/// Graphviz's `dot`, when installed; CI installs it and must not skip.
fn graphviz() -> Option<&'static str> {
    let found = Command::new("dot").arg("-V").output().is_ok_and(|o| o.status.success());
    if !found && std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("Graphviz `dot` is not installed (CI installs it: apt-get install graphviz)");
    }
    found.then_some("dot")
}

#[test]
fn the_dot_plan_of_every_example_pipeline_renders_with_graphviz() {
    let Some(dot) = graphviz() else {
        eprintln!("skipped: Graphviz `dot` is not installed (apt-get install graphviz)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    for path in example_pipelines() {
        let out = flowctl(&["plan", "--format", "dot", "-p", "2", &path], None, &[]);
        assert_eq!(out.code, 0, "{path}: {}", out.stderr);
        let file = dir.path().join("plan.dot");
        std::fs::write(&file, &out.stdout).unwrap();
        let svg = Command::new(dot).args(["-Tsvg"]).arg(&file).output().unwrap();
        assert!(svg.status.success(), "{path}: {}\n{}", String::from_utf8_lossy(&svg.stderr), out.stdout);
        assert!(String::from_utf8_lossy(&svg.stdout).contains("<svg"), "{path}");
    }
}

#[test]
fn the_mermaid_plan_draws_every_node_and_edge() {
    let out = flowctl(&["plan", "--format", "mermaid", "-p", "2", "pipelines/fan_out.yaml"], None, &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.starts_with("flowchart LR\n"), "{}", out.stdout);
    let json = flowctl(&["plan", "--format", "json", "-p", "2", "pipelines/fan_out.yaml"], None, &[]);
    let plan: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    let edges: usize = ["steps", "sinks"]
        .iter()
        .flat_map(|k| plan[k].as_array().unwrap())
        .map(|n| n["inputs"].as_array().unwrap().len())
        .sum();
    assert_eq!(out.stdout.matches("-->").count() + out.stdout.matches(".->").count(), edges, "{}", out.stdout);
}
