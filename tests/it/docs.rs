//! Checked-in documents generated from the code stay in step with it.

use super::common::root;

#[test]
fn reference_is_up_to_date() {
    let path = root().join("docs/reference.md");
    let generated = flowctl::spec::reference::markdown();
    if std::env::var_os("UPDATE_DOCS").is_some() {
        std::fs::write(&path, &generated).expect("write docs/reference.md");
    }
    let current = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(current == generated, "docs/reference.md is stale: run `UPDATE_DOCS=1 cargo test reference`");
}

/// A pipeline file as JSON, as an editor's YAML language server sees it.
fn yaml_as_json(path: &std::path::Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap();
    let mut diags = flowctl::diag::Diagnostics::default();
    let env = |name: &str| std::env::var(name).ok();
    let root = flowctl::spec::load::parse_yaml(&text, &env, &mut diags).expect("valid YAML");
    serde_json::from_str(&root.to_value().to_json()).unwrap()
}

#[test]
fn every_example_pipeline_validates_against_the_json_schema() {
    let schema: serde_json::Value =
        serde_json::from_str(&super::common::flowctl(&["schema"], None, &[]).stdout).unwrap();
    let validator = jsonschema::validator_for(&schema).expect("a valid JSON Schema");
    let mut checked = 0;
    let files = ["pipelines", "pipelines/kafka", "pipelines/nexmark"]
        .iter()
        .flat_map(|d| std::fs::read_dir(root().join(d)).unwrap().map(|e| e.unwrap().path()));
    for path in files {
        if path.extension().is_some_and(|e| e == "yaml") {
            let doc = yaml_as_json(&path);
            let errors: Vec<String> =
                validator.iter_errors(&doc).map(|e| format!("{} at {}", e, e.instance_path())).collect();
            assert!(errors.is_empty(), "{} does not match the schema:\n{}", path.display(), errors.join("\n"));
            checked += 1;
        }
    }
    assert!(checked >= 23);
    let wrong = serde_json::json!({"sources": {"a": {"type": "file", "pth": "x"}}, "sinks": {"o": {"type": "stdout"}}});
    assert!(!validator.is_valid(&wrong), "the schema rejects unknown fields");
}
