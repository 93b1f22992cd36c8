//! Executes a [`PhysicalPlan`]: source threads decode batches into bounded channels, the
//! executor runs the fused operators, sink threads write. Knows nothing of YAML or
//! the command line.
//!
//! Data and control share one channel per edge, in order (batches, then `End`), so
//! later watermarks and checkpoint barriers can travel in-band. Channels are bounded:
//! a slow sink holds back the executor, which holds back the sources (backpressure,
//! bounded memory on any input size).

mod block_lanes;
pub mod checkpointing;
mod errors;
pub mod event_time;
mod exchange;
mod executor;
mod keyed;
mod lane_lines;
mod lane_steps;
mod merge;
pub mod metrics;
mod source_thread;
mod split;
mod step_runner;

use crate::error::{Error, Result};
use crate::plan::{physical::OnError, Execution, LogicalPlan, PhysicalPlan};
use crate::record::Batch;
use crate::sinks::{self, SinkError};
use crate::sources::{self, BadRecord};
use crossbeam_channel::{bounded, Receiver, Sender};
use errors::OriginNames;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What travels from a source to the executor.
pub enum Message {
    Batch(Batch),
    /// The lane's records as lines for the one sink they go to (`lane_lines`).
    Lines(lane_lines::EncodedLines),
    Bad(Vec<BadRecord>),
    /// The source is exhausted.
    End,
    /// The source failed (I/O); the run fails with this error.
    Failed(Error),
}

/// Where a lane's messages go, in order.
pub trait Outbox {
    /// False when the receiver has gone.
    fn put(&mut self, message: Message) -> bool;
}

impl Outbox for Sender<Message> {
    fn put(&mut self, message: Message) -> bool {
        self.send(message).is_ok()
    }
}

/// Collected to be sent later as a whole (a block's messages, `block_lanes`).
impl Outbox for Vec<Message> {
    fn put(&mut self, message: Message) -> bool {
        self.push(message);
        true
    }
}

/// What travels from the executor to a sink.
pub enum SinkMessage {
    Batch(Batch),
    /// Lines of text encoded for the sink by the thread that made the records
    /// (`Sink::line_encoder`).
    Lines(String),
    /// A checkpoint barrier for an epoch: flush, make durable and reply with the
    /// commit state.
    Barrier(u64, crossbeam_channel::Sender<Result<serde_json::Value, SinkError>>),
    /// The checkpoint of this epoch is written: commit what was pre-committed.
    CheckpointDone(u64),
    /// Every input ended: commit.
    End,
}

#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Records per batch read by a source.
    pub batch_size: usize,
    /// Batches buffered per channel between threads: few, since records waiting long
    /// have left the caches of the core that made them by the time they are used.
    pub channel_capacity: usize,
    /// `--fresh` and `--allow-state-loss`.
    pub resume: checkpointing::ResumeOptions,
    /// Called with the run's progress at most every 100 ms (the CLI's progress bar).
    pub progress: Option<ProgressFn>,
    /// `--metrics-addr`: serve Prometheus metrics there.
    pub metrics_addr: Option<String>,
    /// `--memory-limit` in bytes (else the pipeline's `memory_limit:`).
    pub memory_limit: Option<u64>,
    /// `--parallelism` (else the pipeline's `parallelism:`, else the number of cores).
    pub parallelism: Option<usize>,
}

/// How far a run is.
#[derive(Clone, Debug, Default)]
pub struct Progress {
    pub records_in: u64,
    /// Bytes of input read, and in all, when every source is a file.
    pub bytes_done: u64,
    pub bytes_total: Option<u64>,
    pub watermark: i64,
}

/// A progress callback.
#[derive(Clone)]
pub struct ProgressFn(pub Arc<dyn Fn(&Progress) + Send + Sync>);

impl std::fmt::Debug for ProgressFn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ProgressFn")
    }
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            batch_size: 1024,
            channel_capacity: 4,
            resume: checkpointing::ResumeOptions::default(),
            progress: None,
            metrics_addr: None,
            memory_limit: None,
            parallelism: None,
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunSummary {
    pub records_in: u64,
    pub records_out: u64,
    pub late: u64,
    pub skipped: u64,
    /// Records sent to the `on_error` sink.
    pub failed: u64,
    pub elapsed: Duration,
    /// The most windows open at once in any windowed step.
    pub peak_open_windows: Option<usize>,
    /// Of the late records, those sent to a `late:` sink (the rest were dropped).
    pub late_to_sink: u64,
    /// Stopped by a signal: the exit code (130 SIGINT, 143 SIGTERM).
    pub interrupted: Option<i32>,
    /// Checkpoints written by this run, the last epoch, total bytes, longest pause.
    pub checkpoints: Option<(u64, u64, u64, Duration)>,
}

impl RunSummary {
    /// The one-line summary of the contract.
    pub fn line(&self) -> String {
        let secs = self.elapsed.as_secs_f64();
        let rate = if secs > 0.0 { self.records_in as f64 / secs } else { 0.0 };
        format!(
            "flowctl: {} in, {} out, {} late, {} skipped, {} failed in {:.2} s ({} records/s)",
            self.records_in,
            self.records_out,
            self.late,
            self.skipped,
            self.failed,
            secs,
            human(rate)
        )
    }
}

impl RunSummary {
    /// The second summary line of windowed pipelines.
    pub fn windows_line(&self) -> Option<String> {
        let peak = self.peak_open_windows?;
        Some(format!(
            "flowctl: windows: at most {peak} open at once; late records: {} dropped, {} sent to a late sink",
            self.late - self.late_to_sink,
            self.late_to_sink
        ))
    }
}

fn human(rate: f64) -> String {
    match rate {
        r if r >= 1e6 => format!("{:.1}M", r / 1e6),
        r if r >= 1e3 => format!("{:.1}k", r / 1e3),
        r => format!("{r:.0}"),
    }
}

/// How long an unbounded source may stay silent before it stops holding back the
/// watermark, unless its `watermark.idle_timeout` says otherwise.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs the plan to completion (bounded input), until it fails, or until a signal.
/// With a `checkpoint:` block, resumes from the newest valid checkpoint first.
pub fn run(physical: &PhysicalPlan, options: &RunOptions) -> Result<RunSummary> {
    let plan: &LogicalPlan = &physical.logical;
    let started = Instant::now();
    let pipeline = &plan.pipeline;
    let stop = Arc::new(AtomicBool::new(false));
    let interrupt = Arc::new(AtomicUsize::new(0));
    for (signal, code) in [(signal_hook::consts::SIGINT, 130), (signal_hook::consts::SIGTERM, 143)] {
        signal_hook::flag::register_usize(signal, interrupt.clone(), code)
            .map_err(|e| Error::Internal(format!("cannot handle signals: {e}")))?;
    }

    let opened_checkpointing = checkpointing::Checkpointing::open(plan, options.resume)?;
    let (checkpointing, resume) = match opened_checkpointing {
        Some((c, found)) => (Some(c), found),
        None => (None, None),
    };
    if let Some((checkpoint, path)) = &resume {
        tracing::info!("resuming from checkpoint {} ({})", checkpoint.epoch, path.display());
    }
    let resume = resume.map(|(c, _)| c);

    // Every source as its lanes (one, or one per Kafka partition), in order.
    let mut opened = Vec::new();
    let mut lanes = Vec::new();
    // Per lane: where it resumes and the event time it had seen.
    let mut resumed_at = Vec::new();
    for (i, source) in pipeline.sources.iter().enumerate() {
        let columns = sources::KnownColumns {
            schema: pipeline.source_schemas[i].clone(),
            unread: physical.sources[i].unread_columns.clone(),
        };
        let source_lanes = source.config.build(&source.id, i, columns, physical.sources[i].decode_threads)?;
        for mut s in source_lanes {
            let lane = s.lane();
            let saved = resume.as_ref().and_then(|c| c.sources.iter().find(|s| s.id == source.id && s.lane == lane));
            if saved.is_none() && s.fixed_lanes() {
                let taken: Vec<String> = resume
                    .iter()
                    .flat_map(|c| c.sources.iter().filter(|s| s.id == source.id))
                    .map(|s| format!("`{}`", s.lane.as_deref().unwrap_or("(one lane)")))
                    .collect();
                if !taken.is_empty() {
                    return Err(Error::Usage(format!(
                        "source `{}`: the checkpoint holds positions for lanes {} but this run reads lane `{}`: the source's `parallelism` changed since the checkpoint\n  = help: run with the parallelism the checkpoint was taken at, or --fresh to start over",
                        source.id,
                        taken.join(", "),
                        lane.as_deref().unwrap_or("(one lane)")
                    )));
                }
            }
            let mut at = None;
            if let Some(position) = saved.and_then(|s| s.position.as_ref()) {
                if s.replayable() {
                    let origin = crate::record::Origin {
                        source: i as u32,
                        file: position.file,
                        line: position.line,
                        offset: position.offset,
                    };
                    s.seek(&origin)?;
                    at = Some(origin);
                } else {
                    tracing::warn!("source `{}` cannot replay; it continues with new input", source.id);
                }
            }
            resumed_at.push((at, saved.and_then(|s| s.max_event_time)));
            lanes.push(executor::Lane {
                source: i,
                name: lane,
                replayable: s.replayable(),
                committer: s.committer(),
                line_sink: None,
            });
            opened.push(s);
        }
    }
    let mut files = vec![Vec::new(); pipeline.sources.len()];
    for (lane, s) in lanes.iter().zip(&opened) {
        files[lane.source].extend(s.files());
    }
    let names = OriginNames { sources: pipeline.sources.iter().map(|s| s.id.clone()).collect(), files };
    let bounded_inputs = opened.iter().all(|s| s.bounded());
    let sizes: Vec<Option<Vec<u64>>> = opened.iter().map(|s| s.sizes()).collect();
    // Channels first: a sink may hand rows its target rejects to the error sink.
    let (sink_senders, sink_receivers): (Vec<_>, Vec<_>) =
        pipeline.sinks.iter().map(|_| bounded::<SinkMessage>(options.channel_capacity)).unzip();
    let rejected = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let on_reject = reject_handler(physical.on_error, &sink_senders, &rejected);
    let mut sink_writers = Vec::new();
    for sink in &pipeline.sinks {
        let saved = resume.as_ref().and_then(|c| c.sinks.iter().find(|s| s.id == sink.id)).map(|s| &s.state);
        let run = sinks::RunContext {
            checkpointed: checkpointing.is_some(),
            lineage: checkpointing.as_ref().map(|c| c.lineage.as_str()).unwrap_or_default(),
            request_checkpoint: checkpointing.as_ref().map(|c| c.requested.clone()).unwrap_or_default(),
            on_reject: on_reject.clone(),
        };
        sink_writers.push(sink.config.build(&sink.id, &run, saved)?);
    }
    // The sinks that reject rows hold their own handles on the error sink; this one
    // would keep its channel open, and an interrupted run (no `End`) would wait for
    // the error sink forever.
    drop(on_reject);

    // The stateless head of the pipeline runs on every lane's thread.
    let head = physical.head.clone();
    let head_counts = Arc::new(lane_steps::LaneCounts::new(pipeline.sources.len(), pipeline.steps.len()));
    let lane_head = || -> Result<Option<lane_steps::LaneSteps>> {
        if head.is_empty() {
            return Ok(None);
        }
        let steps = head
            .iter()
            .map(|&i| {
                let op = crate::steps::build(&pipeline.steps[i]).ok_or_else(|| {
                    Error::Internal(format!("step `{}` has no runtime", pipeline.step_names[i].label))
                })?;
                Ok((i, pipeline.step_names[i].label.clone(), op))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Some(lane_steps::LaneSteps::new(steps, head_counts.clone())))
    };
    let parallelism = physical.parallelism;
    // A file read by the keyed steps' workers themselves (`split.rs`); else the
    // sources' threads feed the merge.
    let feeds = match (&physical.execution, &opened[..]) {
        (Execution::SplitByData { .. }, [source]) => Some(
            source
                .split_into_blocks(parallelism)
                .ok_or_else(|| Error::Internal("the plan splits a source that cannot be read in blocks".into()))?,
        ),
        (Execution::SplitByData { .. }, _) => {
            return Err(Error::Internal("the plan splits the data of more than one lane".into()))
        }
        _ => None,
    };
    if feeds.is_some() {
        opened.clear();
    }
    let line_encoders: Vec<_> = sink_writers.iter().map(|s| s.line_encoder()).collect();
    // The executor posts a lane's lines to the sink they were encoded for.
    for lane in &mut lanes {
        lane.line_sink = physical.sources[lane.source].encodes_for;
        if lane.line_sink.is_some_and(|sink| line_encoders[sink].is_none()) {
            return Err(Error::Internal("the plan encodes lines for a sink that takes records".into()));
        }
    }
    let lane_work = |lane: &executor::Lane| -> Result<source_thread::LaneWork> {
        Ok(source_thread::LaneWork {
            stop: stop.clone(),
            batch_size: options.batch_size,
            event_time: pipeline.event_times[lane.source].clone(),
            steps: lane_head()?,
            lines: lane.line_sink.and_then(|sink| line_encoders[sink].clone()).map(lane_lines::LaneLines::new),
        })
    };
    // A stateless pipeline reading one source into its one sink reads the source on
    // every core (`block_lanes`).
    let shares = match (&physical.execution, &opened[..]) {
        (Execution::BlockLanes { threads }, [source]) => Some(
            source
                .block_shares(*threads)
                .ok_or_else(|| Error::Internal("the plan reads in blocks a source that cannot be".into()))?,
        ),
        (Execution::BlockLanes { .. }, _) => {
            return Err(Error::Internal("the plan reads more than one lane in blocks".into()))
        }
        _ => None,
    };
    let mut shares = shares.into_iter();
    let receivers: Vec<Receiver<Message>> = opened
        .into_iter()
        .zip(&lanes)
        .enumerate()
        .map(|(n, (source, lane))| {
            let (tx, rx) = bounded(options.channel_capacity);
            let name = format!("source-{n}");
            if let Some(shares) = shares.next() {
                let works = shares.iter().map(|_| lane_work(lane)).collect::<Result<_>>()?;
                return block_lanes::start(shares, works, tx, &name).map(|_| rx);
            }
            let reader = source_thread::SourceThread { source, work: lane_work(lane)?, tx };
            source_thread::spawn(name, move || reader.run()).map(|_| rx)
        })
        .collect::<Result<_>>()?;

    let mut sink_threads = Vec::new();
    let sink_senders: Vec<_> = sink_senders.into_iter().map(Some).collect();
    for (i, (sink, rx)) in sink_writers.into_iter().zip(sink_receivers).enumerate() {
        let name = format!("sink-{}", pipeline.sinks[i].id);
        let handle = std::thread::Builder::new()
            .name(name)
            .spawn(move || sink_thread(sink, rx))
            .map_err(|e| Error::Internal(format!("cannot start a sink thread: {e}")))?;
        sink_threads.push(Some(handle));
    }

    let clocks: Vec<merge::SourceClock> = lanes
        .iter()
        .map(|lane| &pipeline.sources[lane.source])
        .map(|s| merge::SourceClock {
            out_of_orderness: s.out_of_orderness.as_millis() as i64,
            idle_timeout: s.idle_timeout.or((!bounded_inputs).then_some(DEFAULT_IDLE_TIMEOUT)),
        })
        .collect();
    let by_event_time = pipeline.event_times.iter().any(Option::is_some);
    let out_of_orderness = clocks.first().map_or(0, |c| c.out_of_orderness);
    let mut merge =
        merge::Merge::new(receivers, clocks, by_event_time, bounded_inputs, options.batch_size, interrupt.clone());
    let mut exec =
        executor::Executor::new(plan, physical.on_error, names, sink_senders, sink_threads, lanes, checkpointing)?;
    exec.encode_in_instances(line_encoders);
    exec.watch_signals(interrupt.clone());
    if !head.is_empty() {
        exec.run_head_on_lanes(head.clone(), head_counts.clone());
    }
    if let Some(report) = &options.progress {
        exec.report_progress(report.clone(), sizes);
    }
    if let Some(address) = &options.metrics_addr {
        let m = Arc::new(metrics::Metrics::default());
        metrics::serve(address, m.clone(), pipeline.name.clone()).map_err(Error::External)?;
        exec.publish_metrics(m, options.channel_capacity);
    }
    exec.limit_memory(options.memory_limit.or(pipeline.memory_limit));
    if let Some(c) = &resume {
        merge.restore(&resumed_at, c.watermark);
    }
    if let (Some(feeds), Execution::SplitByData { key_by, .. }) = (feeds, &physical.execution) {
        let (key_by, keyed) = (*key_by, physical.keyed.clone());
        let saved = resume.as_ref().map(|c| c.steps.as_slice());
        let (instances, mut exchanges) = exec.instances(plan, keyed, &[key_by], parallelism, saved)?;
        if let Some(c) = &resume {
            exec.restore(&c.steps)?;
        }
        let exprs = exchanges[key_by].take().ok_or_else(|| Error::Internal("the split has no `key_by`".into()))?;
        let heads = (0..parallelism).map(|_| lane_head()).collect::<Result<_>>()?;
        let (end, max_ts) = resumed_at.first().copied().unwrap_or_default();
        let watermark = resume.as_ref().map_or(crate::record::NO_WATERMARK, |c| c.watermark);
        let start = split::Applied { end, max_ts, watermark };
        let event_time = pipeline.event_times[0].clone();
        let work = split::Split { feeds, event_time, out_of_orderness, heads, key_by, exprs, instances, start };
        let outcome = split::run(&mut exec, work, &interrupt);
        return finish(exec, outcome, physical.on_error, &rejected, started);
    }
    if let Execution::KeyedInstances { instances, exchanges } = &physical.execution {
        let saved = resume.as_ref().map(|c| c.steps.as_slice());
        let keyed = physical.keyed.clone();
        exec.parallel(plan, keyed, exchanges, *instances, saved, options.channel_capacity)?;
    }
    if let Some(c) = &resume {
        exec.restore(&c.steps)?;
    }
    let outcome = exec.run(&mut merge);
    stop.store(true, Ordering::Relaxed);
    finish(exec, outcome, physical.on_error, &rejected, started)
}

/// Ends a run: the sinks commit (or abort), the summary adds the rows a sink's target
/// rejected under `on_error: skip` or `<sink>`.
fn finish(
    exec: executor::Executor,
    outcome: Result<()>,
    on_error: OnError,
    rejected: &std::sync::atomic::AtomicU64,
    started: Instant,
) -> Result<RunSummary> {
    let mut summary = exec.finish(outcome)?;
    match on_error {
        OnError::Skip => summary.skipped += rejected.load(Ordering::Relaxed),
        _ => summary.failed += rejected.load(Ordering::Relaxed),
    }
    summary.elapsed = started.elapsed();
    Ok(summary)
}

/// What a sink does with a row its target rejects, from the pipeline's `on_error`:
/// `fail` has no handler (the sink fails naming the row); `skip` counts it; a sink id
/// receives an error record (`step` names the sink, `input` the row).
fn reject_handler(
    on_error: OnError,
    senders: &[crossbeam_channel::Sender<SinkMessage>],
    rejected: &Arc<std::sync::atomic::AtomicU64>,
) -> Option<sinks::RejectHandler> {
    let counter = rejected.clone();
    match on_error {
        OnError::Fail => None,
        OnError::Skip => Some(Arc::new(move |_: &str, _: crate::record::Value, _: &str| {
            counter.fetch_add(1, Ordering::Relaxed);
        })),
        OnError::Sink(error_sink) => {
            let tx = senders.get(error_sink)?.clone();
            Some(Arc::new(move |sink: &str, row: crate::record::Value, error: &str| {
                counter.fetch_add(1, Ordering::Relaxed);
                let record = crate::record::Record::from_pairs(vec![
                    ("source", crate::record::Value::Null),
                    ("file", crate::record::Value::Null),
                    ("line", crate::record::Value::Null),
                    ("step", crate::record::Value::str(&format!("sink {sink}"))),
                    ("input", row),
                    ("error", crate::record::Value::str(error)),
                ]);
                let _ = tx.send(SinkMessage::Batch(vec![record]));
            }))
        }
    }
}

/// A sink's thread: writes batches, answers checkpoint barriers, commits at the end,
/// aborts when the run stops early (the channel closes without `End`).
fn sink_thread(mut sink: Box<dyn sinks::Sink>, rx: Receiver<SinkMessage>) -> Result<(), SinkError> {
    loop {
        let done = match rx.recv() {
            Ok(SinkMessage::Batch(batch)) => sink.write(&batch),
            Ok(SinkMessage::Lines(text)) => sink.write_lines(&text),
            Ok(SinkMessage::CheckpointDone(epoch)) => sink.checkpoint_done(epoch),
            Ok(SinkMessage::Barrier(epoch, reply)) => {
                let state = sink.pre_commit(epoch);
                let failed = state.is_err();
                let _ = reply.send(state);
                match failed {
                    true => Err(SinkError::Failed(Error::External("a sink failed at a checkpoint".into()))),
                    false => Ok(()),
                }
            }
            Ok(SinkMessage::End) => return sink.commit(),
            Err(_) => Err(SinkError::Failed(Error::Internal("the run stopped before the end".into()))),
        };
        if let Err(e) = done {
            sink.abort();
            return Err(e);
        }
    }
}
