//! What the user wrote: the pipeline file read into a typed [`PipelineSpec`] whose
//! every part keeps its line and column.
//!
//! Stages inside: `load` (YAML text to a [`node::Node`] tree, `${VAR}` interpolation),
//! `check` (the tree against the format table in `fields`), `model` (typed spec).

pub mod check;
pub mod duration;
pub mod fields;
pub mod interpolate;
pub mod load;
pub mod model;
pub mod node;
pub mod overrides;
pub mod reference;
pub mod schema;

pub use model::*;

use crate::diag::Diagnostics;
use std::path::{Path, PathBuf};

/// A pipeline file as read from disk, kept for rendering diagnostics.
#[derive(Clone, Debug)]
pub struct SourceFile {
    pub path: PathBuf,
    pub text: String,
}

impl SourceFile {
    pub fn read(path: &Path) -> std::io::Result<SourceFile> {
        Ok(SourceFile { path: path.to_path_buf(), text: std::fs::read_to_string(path)? })
    }

    /// The path as the user gave it, for `file:line:col` prefixes.
    pub fn display(&self) -> String {
        self.path.display().to_string()
    }
}

/// Reads the spec from a file's text with `${VAR}` taken from `env`. Returns the
/// spec (when the YAML was readable) and every diagnostic found on the way.
pub fn parse(
    file: &SourceFile,
    env: &dyn Fn(&str) -> Option<String>,
    overrides: &[overrides::Override],
) -> (Option<PipelineSpec>, Diagnostics) {
    let mut diags = Diagnostics::default();
    let Some(mut root) = load::parse_yaml(&file.text, env, &mut diags) else {
        if diags.is_empty() {
            diags.error(
                node::Span::new(1, 1, 1),
                "the pipeline file is empty",
                Some("a pipeline needs at least `sources:` and `sinks:`".into()),
            );
        }
        return (None, diags);
    };
    if diags.has_root_cause() {
        // An unset variable: the shape check, the model and validation would report
        // the empty value it left (a missing format, an unknown field, ...) as errors
        // of their own, burying the cause among them.
        return (None, diags);
    }
    overrides::apply(&mut root, overrides, &mut diags);
    check::check_pipeline(&root, &mut diags);
    if !matches!(root.kind, node::NodeKind::Map(_)) {
        return (None, diags);
    }
    let spec = model::build(&root, &file.path, &file.text, &mut diags);
    (Some(spec), diags)
}

/// The process environment, for [`parse`].
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}
