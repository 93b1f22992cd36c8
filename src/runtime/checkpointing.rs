//! Checkpointing of a run: opening the store (lock, `--fresh`, the newest valid
//! checkpoint, compatibility of saved state with the current steps), deciding when
//! the next checkpoint is due, and writing it.

use crate::checkpoint::store::{Found, Lock, Store};
use crate::checkpoint::{compatibility, Checkpoint, Restore};
use crate::error::{Error, Result};
use crate::plan::LogicalPlan as Plan;
use std::time::{Duration, Instant};

/// Per step: the key its state is saved under and the fingerprint of what the state
/// means (`CompiledStep::fingerprint`, after the step's kind).
pub fn step_keys(plan: &Plan) -> Vec<(String, String)> {
    let p = &plan.pipeline;
    p.steps
        .iter()
        .zip(&p.step_names)
        .map(|(step, name)| (name.label.clone(), format!("{}: {}", name.kind, step.fingerprint())))
        .collect()
}

/// For `flowctl plan`: the checkpoint a run would resume from and what happens to
/// each saved step state.
pub fn describe_restore(plan: &Plan) -> Option<String> {
    let config = plan.pipeline.checkpoint.as_ref()?;
    let store = Store::new(config.dir.clone(), config.keep as usize);
    let mut out =
        format!("checkpoints: {} (every {:?}, keep {})\n", config.dir.display(), config.interval, config.keep);
    match store.latest() {
        Ok((Some((checkpoint, path)), _)) => {
            out.push_str(&format!("  resumes from checkpoint {} ({})\n", checkpoint.epoch, path.display()));
            for r in compatibility(&checkpoint, &step_keys(plan)) {
                out.push_str(&format!("  {}\n", r.describe()));
            }
        }
        Ok((None, _)) => out.push_str("  none yet: a run starts from the beginning\n"),
        Err(e) => out.push_str(&format!("  cannot read: {e}\n")),
    }
    Some(out)
}

pub struct Checkpointing {
    store: Store,
    _lock: Lock,
    interval: Duration,
    next_due: Instant,
    /// The epoch of the last checkpoint written or restored.
    pub epoch: u64,
    pub lineage: String,
    /// Sinks ask for an early checkpoint through this (see `sinks::RunContext`).
    pub requested: std::sync::Arc<std::sync::atomic::AtomicBool>,
    pub pipeline: String,
    pub steps: Vec<(String, String)>,
    /// Checkpoints written by this run, their total size and the longest pause.
    pub written: u64,
    pub bytes: u64,
    pub longest: Duration,
    /// The size and pause of the last checkpoint (for metrics).
    pub last_bytes: u64,
    pub last_pause: Duration,
}

/// What `flowctl run` was asked to do with existing checkpoints.
#[derive(Clone, Copy, Debug, Default)]
pub struct ResumeOptions {
    pub fresh: bool,
    pub allow_state_loss: bool,
}

impl Checkpointing {
    /// Locks the directory and finds the checkpoint to resume from, if any.
    pub fn open(plan: &Plan, options: ResumeOptions) -> Result<Option<(Checkpointing, Option<Found>)>> {
        let pipeline = &plan.pipeline;
        let Some(config) = &pipeline.checkpoint else { return Ok(None) };
        let store = Store::new(config.dir.clone(), config.keep as usize);
        let lock = store.lock()?;
        let mut found = None;
        if options.fresh {
            if let Some(aside) = store.move_aside()? {
                tracing::info!("--fresh: moved the old checkpoints to {}", aside.display());
            }
        } else {
            let (latest, warnings) = store.latest()?;
            if latest.is_none() && !warnings.is_empty() {
                // Every checkpoint is unusable: starting from nothing would silently
                // lose the state (and repeat the output) of every earlier run.
                if !options.allow_state_loss {
                    return Err(Error::Usage(format!(
                        "no usable checkpoint in {}: all {} are unusable:\n  {}\n  = help: run with --allow-state-loss to start from the beginning (the unusable checkpoints are moved aside), or --fresh to start over",
                        store.dir().display(),
                        warnings.len(),
                        warnings.iter().map(|w| w.trim_end_matches("; trying the one before it")).collect::<Vec<_>>().join("\n  ")
                    )));
                }
                for w in &warnings {
                    tracing::warn!("{w}");
                }
                let aside = store.move_aside()?;
                tracing::warn!(
                    "--allow-state-loss: every checkpoint is unusable; starting from the beginning{}",
                    aside.map(|a| format!(" (they were moved to {})", a.display())).unwrap_or_default()
                );
            } else {
                for w in warnings {
                    tracing::warn!("{w}");
                }
            }
            found = latest;
        }
        let steps = step_keys(plan);
        if let Some((checkpoint, path)) = &found {
            let problems: Vec<String> = compatibility(checkpoint, &steps)
                .into_iter()
                .filter(|r| !matches!(r, Restore::Keep(_)))
                .map(|r| r.describe())
                .collect();
            if !problems.is_empty() && !options.allow_state_loss {
                return Err(Error::Usage(format!(
                    "the pipeline changed since checkpoint {} ({}):\n  {}\n  = help: run with --allow-state-loss to start those steps empty, or --fresh to start over",
                    checkpoint.epoch,
                    path.display(),
                    problems.join("\n  ")
                )));
            }
        }
        let epoch = found.as_ref().map_or(0, |(c, _)| c.epoch);
        let lineage = found
            .as_ref()
            .map(|(c, _)| c.lineage.clone())
            .filter(|l| !l.is_empty())
            // Unique across runs and machines: sinks key their commit markers by it.
            .unwrap_or_else(|| {
                format!(
                    "{:x}-{}-{:08x}",
                    chrono::Utc::now().timestamp_millis(),
                    std::process::id(),
                    rand::random::<u32>()
                )
            });
        let checkpointing = Checkpointing {
            store,
            _lock: lock,
            interval: config.interval,
            next_due: Instant::now() + config.interval,
            epoch,
            lineage,
            requested: Default::default(),
            pipeline: pipeline.name.clone(),
            steps,
            written: 0,
            bytes: 0,
            longest: Duration::ZERO,
            last_bytes: 0,
            last_pause: Duration::ZERO,
        };
        Ok(Some((checkpointing, found)))
    }

    pub fn due(&self) -> bool {
        Instant::now() >= self.next_due || self.requested.swap(false, std::sync::atomic::Ordering::Relaxed)
    }

    /// Writes the checkpoint of the next epoch; `started` is when the barrier began,
    /// so the recorded pause covers snapshotting and writing.
    pub fn write(&mut self, checkpoint: &Checkpoint, started: Instant) -> Result<()> {
        let (path, size) = self.store.write(checkpoint)?;
        tracing::debug!(
            "checkpoint {} written ({size} bytes, {} ms): {}",
            checkpoint.epoch,
            started.elapsed().as_millis(),
            path.display()
        );
        self.epoch = checkpoint.epoch;
        self.written += 1;
        self.bytes += size;
        self.longest = self.longest.max(started.elapsed());
        self.last_bytes = size;
        self.last_pause = started.elapsed();
        self.next_due = Instant::now() + self.interval;
        Ok(())
    }

    pub fn dir(&self) -> &std::path::Path {
        self.store.dir()
    }
}
