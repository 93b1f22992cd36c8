//! Bad records under the pipeline's `on_error` policy: `fail` stops the run with the
//! source, file, line and step; `skip` counts; a sink id receives a record describing
//! the failure (`source`, `file`, `line`, `step`, `input`, `error`).

use crate::error::Error;
use crate::record::{Origin, Record, Value};
use std::sync::Arc;

/// A record that failed to decode or to pass a step.
pub struct RecordFailure {
    pub origin: Origin,
    /// The step that failed, or None for a decoding failure.
    pub step: Option<String>,
    pub input: Value,
    pub error: String,
}

impl From<crate::sources::BadRecord> for RecordFailure {
    /// Input that could not be decoded (or its event time read): no step failed.
    fn from(bad: crate::sources::BadRecord) -> RecordFailure {
        RecordFailure { origin: bad.origin, step: None, input: Value::str(&bad.raw), error: bad.error }
    }
}

/// Names of sources and their files, to describe origins.
#[derive(Clone)]
pub struct OriginNames {
    pub sources: Vec<String>,
    pub files: Vec<Vec<Arc<str>>>,
}

impl OriginNames {
    fn file(&self, origin: &Origin) -> Option<&str> {
        self.files.get(origin.source as usize)?.get(origin.file as usize).map(|f| &**f)
    }

    fn source(&self, origin: &Origin) -> &str {
        self.sources.get(origin.source as usize).map(String::as_str).unwrap_or("?")
    }

    /// The error that stops a run under `on_error: fail`.
    pub fn fail(&self, f: &RecordFailure) -> Error {
        let place = match (self.file(&f.origin), f.origin.line) {
            (Some(file), line) if line > 0 => format!("{file}:{line}"),
            (Some(file), _) => file.to_string(),
            (None, _) => "?".into(),
        };
        let what = match &f.step {
            Some(step) => format!("step `{step}` failed on a record of source `{}` ({place})", self.source(&f.origin)),
            None => format!("bad record in source `{}` ({place})", self.source(&f.origin)),
        };
        Error::Data(format!(
            "{what}: {}\n  = help: set `on_error: skip` to drop such records, or `on_error: <sink id>` to collect them",
            f.error
        ))
    }

    /// The record an `on_error` sink receives.
    pub fn to_record(&self, f: RecordFailure) -> Record {
        let file = self.file(&f.origin).map(Value::str).unwrap_or_default();
        let line = if f.origin.line > 0 { Value::Int(f.origin.line as i64) } else { Value::Null };
        Record::from_pairs(vec![
            ("source", Value::str(self.source(&f.origin))),
            ("file", file),
            ("line", line),
            ("step", f.step.as_deref().map(Value::str).unwrap_or_default()),
            ("input", f.input),
            ("error", Value::str(&f.error)),
        ])
    }
}
