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
