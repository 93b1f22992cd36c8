//! One invalid pipeline per validation rule under tests/fixtures/invalid/, each with a
//! snapshot of the rendered diagnostics (`cargo insta review` to update).

use super::common::flowctl;

#[test]
fn every_invalid_fixture_reports_its_rule() {
    let dir = super::common::root().join("tests/fixtures/invalid");
    let mut files: Vec<_> =
        std::fs::read_dir(&dir).expect("fixtures").filter_map(|e| e.ok()).map(|e| e.path()).collect();
    files.sort();
    assert!(files.len() >= 25, "expected at least 25 invalid fixtures, found {}", files.len());
    for path in files {
        let name = path.file_stem().expect("stem").to_string_lossy().to_string();
        let rel = format!("tests/fixtures/invalid/{name}.yaml");
        let out = flowctl(&["validate", &rel], None, &[("FLOWCTL_TEST_HOME", "/home/test")]);
        assert_eq!(out.code, 2, "{rel} should be invalid; stdout: {}", out.stdout);
        assert!(
            out.stderr.starts_with(&format!("{rel}:")),
            "{rel}: diagnostics start with file:line:col\n{}",
            out.stderr
        );
        insta::assert_snapshot!(name, out.stderr);
    }
}
