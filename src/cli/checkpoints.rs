//! `flowctl checkpoints ls|inspect|verify DIR`: checkpoints as files a shell user can
//! list, look into and check.

use super::output::{errln, outln};
use crate::checkpoint::format::decode;
use crate::checkpoint::store::{list, Entry, Store};
use crate::checkpoint::Checkpoint;
use clap::Subcommand;
use std::path::{Path, PathBuf};

#[derive(Debug, Subcommand)]
pub enum Action {
    /// One line per checkpoint: epoch, time, size, completed, source positions.
    Ls {
        /// The checkpoint directory (the pipeline's `checkpoint.dir`).
        dir: PathBuf,
    },
    /// Per-step state sizes and key counts of a checkpoint: by default the newest
    /// usable one, the one `run` would resume from (unusable newer ones are named).
    Inspect {
        dir: PathBuf,
        /// Inspect this epoch instead of the newest.
        #[arg(long)]
        epoch: Option<u64>,
        /// `text` or `json`.
        #[arg(long, value_enum, default_value_t = super::Format::Text)]
        format: super::Format,
    },
    /// Check every checkpoint's length and checksum; exit 1 if any is bad.
    Verify { dir: PathBuf },
}

pub fn run(action: Action) -> i32 {
    match action {
        Action::Ls { dir } => ls(&dir),
        Action::Inspect { dir, epoch, format } => inspect(&dir, epoch, format),
        Action::Verify { dir } => verify(&dir),
    }
}

fn entries(dir: &Path) -> Result<Vec<Entry>, i32> {
    match list(dir) {
        Ok(e) if e.is_empty() => {
            errln!("flowctl: no checkpoints in {}", dir.display());
            Err(1)
        }
        Ok(e) => Ok(e),
        Err(e) => {
            errln!("flowctl: error: {e}");
            Err(1)
        }
    }
}

fn load(entry: &Entry) -> Result<Checkpoint, String> {
    std::fs::read(&entry.path).map_err(|e| e.to_string()).and_then(|b| decode(&b))
}

fn time(ms: i64) -> String {
    let mut s = String::new();
    crate::record::write_timestamp(ms, &mut s);
    s
}

fn ls(dir: &Path) -> i32 {
    let entries = match entries(dir) {
        Ok(e) => e,
        Err(code) => return code,
    };
    outln!("{:>6}  {:<24}  {:>9}  {:<9}  sources", "epoch", "time", "bytes", "completed");
    for entry in entries {
        match load(&entry) {
            Ok(c) => {
                let positions: Vec<String> = c
                    .sources
                    .iter()
                    .map(|s| match &s.position {
                        Some(_) => format!("{}: {}", s.id, describe_position(s)),
                        None => {
                            format!("{}: {}start", s.id, s.lane.as_ref().map(|l| format!("{l} ")).unwrap_or_default())
                        }
                    })
                    .collect();
                outln!(
                    "{:>6}  {:<24}  {:>9}  {:<9}  {}",
                    c.epoch,
                    time(c.created_ms),
                    entry.size,
                    if c.completed { "yes" } else { "no" },
                    positions.join("; ")
                );
            }
            Err(e) => outln!("{:>6}  {:<24}  {:>9}  {:<9}  unreadable: {e}", entry.epoch, "?", entry.size, "?"),
        }
    }
    0
}

/// Keys and windows held by a step's state, when its state says: summed over the
/// instances when parallel instances saved it (`{"instances": [..]}`).
fn counts(state: &serde_json::Value) -> (Option<usize>, Option<usize>) {
    if let Some(instances) = state.get("instances").and_then(|v| v.as_array()) {
        let sum = |a: Option<usize>, b: Option<usize>| match (a, b) {
            (None, None) => None,
            (a, b) => Some(a.unwrap_or(0) + b.unwrap_or(0)),
        };
        return instances.iter().map(counts).fold((None, None), |(k, w), (ik, iw)| (sum(k, ik), sum(w, iw)));
    }
    let len = |k: &str| state.get(k).and_then(|v| v.as_array()).map(Vec::len);
    (len("keys"), len("windows"))
}

fn inspect(dir: &Path, epoch: Option<u64>, format: super::Format) -> i32 {
    let entries = match entries(dir) {
        Ok(e) => e,
        Err(code) => return code,
    };
    let (c, path) = match epoch {
        Some(n) => {
            let Some(entry) = entries.iter().find(|e| e.epoch == n) else {
                errln!("flowctl: no checkpoint with epoch {n} in {}", dir.display());
                return 1;
            };
            match load(entry) {
                Ok(c) => (c, entry.path.clone()),
                Err(e) => {
                    errln!("flowctl: error: {}: {e}", entry.path.display());
                    return 1;
                }
            }
        }
        // The one `run` would resume from, as it chooses it.
        None => match Store::new(dir.to_path_buf(), 1).latest() {
            Ok((found, warnings)) => {
                for w in &warnings {
                    errln!("flowctl: warning: {w}");
                }
                match found {
                    Some(found) => found,
                    None => {
                        errln!("flowctl: error: no usable checkpoint in {}", dir.display());
                        return 1;
                    }
                }
            }
            Err(e) => {
                errln!("flowctl: error: {e}");
                return 1;
            }
        },
    };
    let steps: Vec<serde_json::Value> = c
        .steps
        .iter()
        .map(|s| {
            let (keys, windows) = counts(&s.state);
            serde_json::json!({
                "step": s.key,
                "fingerprint": s.fingerprint,
                "state_bytes": if s.state.is_null() { 0 } else { s.state.to_string().len() },
                "keys": keys,
                "windows": windows,
            })
        })
        .collect();
    match format {
        super::Format::Json => {
            let out = serde_json::json!({
                "pipeline": c.pipeline,
                "epoch": c.epoch,
                "created": time(c.created_ms),
                "completed": c.completed,
                "watermark": c.watermark,
                "sources": c.sources,
                "steps": steps,
                "sinks": c.sinks,
            });
            outln!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
        }
        super::Format::Text => {
            outln!("checkpoint {} of `{}` ({})", c.epoch, c.pipeline, path.display());
            outln!(
                "  taken {}, completed: {}, watermark {}",
                time(c.created_ms),
                if c.completed { "yes" } else { "no" },
                c.watermark
            );
            for s in &c.sources {
                match &s.position {
                    Some(_) => outln!("  source {}: {}", s.id, describe_position(s)),
                    None => outln!("  source {}: no position", s.id),
                }
            }
            for s in &steps {
                let extra = match (s["keys"].as_u64(), s["windows"].as_u64()) {
                    (Some(k), Some(w)) => format!(", {k} keys, {w} open windows"),
                    (Some(k), None) => format!(", {k} keys"),
                    _ => String::new(),
                };
                outln!("  step {}: {} bytes of state{extra}", s["step"].as_str().unwrap_or("?"), s["state_bytes"]);
            }
            for s in &c.sinks {
                outln!("  sink {}: {}", s.id, s.state);
            }
        }
    }
    0
}

fn verify(dir: &Path) -> i32 {
    let entries = match entries(dir) {
        Ok(e) => e,
        Err(code) => return code,
    };
    let mut bad = 0;
    for entry in &entries {
        match load(entry) {
            Ok(_) => outln!("{}: ok", entry.path.display()),
            Err(e) => {
                bad += 1;
                outln!("{}: BAD: {e}", entry.path.display());
            }
        }
    }
    if bad > 0 {
        errln!("flowctl: {bad} of {} checkpoints failed verification", entries.len());
        1
    } else {
        0
    }
}

/// Where a source (lane) is: a file's line and byte, or a Kafka partition's offset.
fn describe_position(s: &crate::checkpoint::SourceState) -> String {
    match (&s.position, &s.lane) {
        (Some(p), Some(_)) => format!("{} after offset {}", p.path, p.offset),
        (Some(p), None) => format!("{} line {} (byte {})", p.path, p.line, p.offset),
        (None, _) => "no position".into(),
    }
}
