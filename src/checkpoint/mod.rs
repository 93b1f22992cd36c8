//! Checkpoints: what a run needs to resume exactly where it stopped — source
//! positions, operator state, sink commit state — as versioned, checksummed files a
//! shell user can list, inspect and verify (`flowctl checkpoints`).
//!
//! `format.rs` encodes one file; `store.rs` is the only writer of the directory
//! (temporary name, fsync, rename, keep the newest N, a lock against a second run).

pub mod format;
pub mod store;

use serde::{Deserialize, Serialize};

/// A pipeline's `checkpoint:` settings.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// Where checkpoints are written (resolved against the pipeline file's directory).
    pub dir: std::path::PathBuf,
    pub interval: std::time::Duration,
    /// How many of the newest checkpoints are kept.
    pub keep: u64,
}

/// The version written by this flowctl; older versions are read or migrated.
pub const FORMAT_VERSION: u32 = 1;

/// Where a source is: after the record at `offset` of file `file` (`line` lines read).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    pub file: u32,
    pub path: String,
    pub offset: u64,
    pub line: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SourceState {
    pub id: String,
    /// Which lane of the source, when it has several (Kafka: `topic/partition`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lane: Option<String>,
    /// None for a source that cannot replay (stdin) or has read nothing.
    pub position: Option<Position>,
    /// Largest event time read so far (the source's watermark before lateness).
    pub max_event_time: Option<i64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepState {
    /// The step's id, or its label (`reduce #3`) when it has none.
    pub key: String,
    /// What the step computes; state is restored only into an identical step.
    pub fingerprint: String,
    pub state: serde_json::Value,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SinkState {
    pub id: String,
    pub state: serde_json::Value,
}

/// One consistent snapshot of a run (epoch N).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub pipeline: String,
    /// Identifies a line of runs resuming each other; a run started without a
    /// checkpoint (first run, `--fresh`) starts a new one. Sinks that record epochs
    /// outside flowctl (databases) key them by lineage, so epoch numbers of an earlier
    /// line never hide a new line's output.
    #[serde(default)]
    pub lineage: String,
    pub epoch: u64,
    /// Wall-clock time it was taken, epoch ms.
    pub created_ms: i64,
    /// The bounded input was read to its end and every sink committed.
    pub completed: bool,
    pub watermark: i64,
    pub sources: Vec<SourceState>,
    pub steps: Vec<StepState>,
    pub sinks: Vec<SinkState>,
}

/// What happens to a step's saved state when a (possibly edited) pipeline resumes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Restore {
    /// The same step exists: its state is restored.
    Keep(String),
    /// No step has this key any more: its state is dropped.
    Lose(String),
    /// A step with this key computes something else now: its state cannot be used.
    Incompatible(String),
}

/// Compares saved step states with the current steps (key, fingerprint).
pub fn compatibility(checkpoint: &Checkpoint, current: &[(String, String)]) -> Vec<Restore> {
    checkpoint
        .steps
        .iter()
        .filter(|s| !s.state.is_null())
        .map(|saved| match current.iter().find(|(key, _)| *key == saved.key) {
            Some((_, fp)) if *fp == saved.fingerprint => Restore::Keep(saved.key.clone()),
            Some(_) => Restore::Incompatible(saved.key.clone()),
            None => Restore::Lose(saved.key.clone()),
        })
        .collect()
}

impl Restore {
    pub fn describe(&self) -> String {
        match self {
            Restore::Keep(k) => format!("step `{k}` keeps its state"),
            Restore::Lose(k) => format!("step `{k}` is gone: its state would be dropped"),
            Restore::Incompatible(k) => format!("step `{k}` changed: its state cannot be restored"),
        }
    }
}
