//! The executor: the thread that owns a run. It takes the merged input and runs its
//! steps on it (a [`StepRunner`]; the steps after a `key_by` on keyed instances when
//! the plan says so), and keeps what is the run's alone: the sink threads, checkpoints,
//! progress, metrics, the memory limit and signals. In a run split by data the workers
//! run the steps and the executor keeps the rest (`split.rs`).

use super::checkpointing::Checkpointing;
use super::errors::OriginNames;
use super::keyed::{Instances, KeyedSteps, Stats};
use super::merge::{Merge, Merged};
use super::step_runner::{StepRunner, SIGNAL_GRACE};
use super::{RunSummary, SinkMessage};
use crate::checkpoint::{Checkpoint, Position, SinkState, SourceState, StepState};
use crate::error::{Error, Result};
use crate::expr::Expr;
use crate::plan::physical::OnError;
use crate::plan::LogicalPlan as Plan;
use crate::sinks::encode::LineEncoder;
use crate::sinks::SinkError;
use crate::steps::{CompiledStep, Operator};
use crossbeam_channel::Sender;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

type SinkThread = JoinHandle<Result<(), SinkError>>;

/// Per step: the key expressions of a `key_by` whose output goes to keyed instances.
pub(super) type Exchanges = Vec<Option<Vec<Expr>>>;

pub struct Executor {
    /// The steps this thread runs (and, through it, the keyed instances).
    steps: StepRunner,
    /// Per sink: its thread (None once joined).
    threads: Vec<Option<SinkThread>>,
    on_error: OnError,
    names: OriginNames,
    /// A sink failed: the error to report.
    sink_failure: Option<Error>,
    sink_ids: Vec<String>,
    /// The sources' lanes, in the merge's order.
    lanes: Vec<Lane>,
    pub checkpointing: Option<Checkpointing>,
    progress: Option<ProgressReport>,
    metrics: Option<std::sync::Arc<super::metrics::Metrics>>,
    channel_capacity: usize,
    memory: Option<MemoryLimit>,
    /// When the metrics were last refreshed.
    metrics_updated: Option<std::time::Instant>,
    /// The counts the workers of a run split by data publish (`runtime/split.rs`).
    workers: Vec<std::sync::Arc<std::sync::Mutex<Stats>>>,
    /// Per sink: the line format keyed instances encode its records in, when the sink
    /// writes text (`Sink::line_encoder`).
    instance_encoders: Vec<Option<LineEncoder>>,
}

/// Where a checkpoint is taken: per lane, the origin of the last input handed out and
/// the largest event time seen; the watermark (finite); whether the input has ended.
pub(super) struct Barrier {
    pub positions: Vec<(Option<crate::record::Origin>, Option<i64>)>,
    pub watermark: i64,
    pub completed: bool,
}

/// `memory_limit`: resident memory is read after a batch once `MEMORY_CHECK_EVERY` has
/// passed since the last reading. By time, not by a count of batches: a batch whose
/// records open many windows is slow, so growth as sudden as that is checked after
/// every batch, and fast batches cost one reading every few milliseconds.
struct MemoryLimit {
    bytes: u64,
    checked: Instant,
}

const MEMORY_CHECK_EVERY: Duration = Duration::from_millis(10);

/// The process's resident memory in bytes (Linux `/proc/self/statm`).
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

fn mib(bytes: u64) -> String {
    format!("{:.0} MiB", bytes as f64 / (1u64 << 20) as f64)
}

/// One lane of a source (the source itself, or one Kafka partition): the unit the
/// merge orders and checkpoints record positions of.
pub struct Lane {
    /// The source's index in the pipeline.
    pub source: usize,
    /// Its name among the source's lanes (Kafka: `topic/partition`).
    pub name: Option<String>,
    /// Whether it can resume from a position (only those are recorded).
    pub replayable: bool,
    pub committer: Option<crate::sources::Committer>,
    /// The sink this lane encodes its records for (`PhysicalPlan::sources`), when it sends
    /// lines instead of records.
    pub line_sink: Option<usize>,
}

/// Progress reporting: the callback, per-source file sizes, the last report.
struct ProgressReport {
    report: super::ProgressFn,
    sizes: Vec<Option<Vec<u64>>>,
    last: std::time::Instant,
}

impl Executor {
    pub fn new(
        plan: &Plan,
        on_error: OnError,
        names: OriginNames,
        sinks: Vec<Option<Sender<SinkMessage>>>,
        threads: Vec<Option<SinkThread>>,
        lanes: Vec<Lane>,
        checkpointing: Option<Checkpointing>,
    ) -> Result<Executor> {
        let sink_ids = plan.pipeline.sinks.iter().map(|s| s.id.clone()).collect();
        Ok(Executor {
            steps: StepRunner::new(plan, on_error, names.clone(), sinks)?,
            threads,
            on_error,
            names,
            sink_failure: None,
            sink_ids,
            lanes,
            checkpointing,
            progress: None,
            metrics: None,
            memory: None,
            metrics_updated: None,
            channel_capacity: 0,
            workers: Vec::new(),
            instance_encoders: Vec::new(),
        })
    }

    /// Keyed instances (and split workers) will encode the records they send to
    /// sinks that write lines of text, per sink in `formats`, so that the records are
    /// freed where they were made and the sink only writes.
    pub fn encode_in_instances(&mut self, formats: Vec<Option<LineEncoder>>) {
        self.instance_encoders = formats;
    }

    /// Where SIGINT / SIGTERM are noted (the exit code), so that a send to a sink that
    /// takes nothing gives way to them.
    pub fn watch_signals(&mut self, signal: Arc<AtomicUsize>) {
        self.steps.watch_signals(signal);
    }

    /// The steps `head` (a chain read by every source) run on the source lanes: the
    /// merge's records go straight to the readers of the last of them.
    pub fn run_head_on_lanes(&mut self, head: Vec<usize>, counts: std::sync::Arc<super::lane_steps::LaneCounts>) {
        self.steps.run_head_on_lanes(head, counts);
    }

    /// Runs the steps marked in `keyed` (the plan's partition chains) on `n` parallel
    /// instances fed by the `key_by` steps before them, with their state from `saved`
    /// (re-split by key when it was saved by a different number of instances).
    pub fn parallel(
        &mut self,
        plan: &Plan,
        keyed: Vec<bool>,
        exchange_steps: &[usize],
        n: usize,
        saved: Option<&[StepState]>,
        channel_capacity: usize,
    ) -> Result<()> {
        let (runners, exchanges) = self.instances(plan, keyed, exchange_steps, n, saved)?;
        let runners = runners.into_iter().map(|e| Box::new(e) as Box<dyn KeyedSteps>).collect();
        self.steps.run_keyed_on(Instances::start(runners, exchanges, channel_capacity)?);
        Ok(())
    }

    /// Hands the steps marked in `keyed` to `n` instance runners, each running only
    /// them (this executor keeps the others), restored from `saved` and re-split by
    /// key. `exchange_steps` are the plan's `key_by` steps whose output goes to them;
    /// returns the instances and, per step, the key expressions of those.
    pub(super) fn instances(
        &mut self,
        plan: &Plan,
        keyed: Vec<bool>,
        exchange_steps: &[usize],
        n: usize,
        saved: Option<&[StepState]>,
    ) -> Result<(Vec<StepRunner>, Exchanges)> {
        let p = &plan.pipeline;
        let mut exchanges = vec![None; p.steps.len()];
        for &k in exchange_steps {
            let CompiledStep::KeyBy { exprs, .. } = &p.steps[k] else {
                return Err(Error::Internal(format!("the plan exchanges after step {k}, not a `key_by`")));
            };
            exchanges[k] = Some(exprs.clone());
        }
        let mut runners = (0..n)
            .map(|_| self.steps.instance(plan, &keyed, exchange_steps, &self.instance_encoders))
            .collect::<Result<Vec<_>>>()?;
        if let (Some(saved), Some(cp)) = (saved, &self.checkpointing) {
            for (i, (key, fingerprint)) in cp.steps.iter().enumerate().filter(|(i, _)| keyed[*i]) {
                let Some(state) = saved_state(saved, key, fingerprint) else { continue };
                let parts =
                    self.steps.operator(i).rescale(instance_states(state), n).map_err(|e| restore_error(key, e))?;
                for (runner, part) in runners.iter_mut().zip(parts) {
                    runner.operator_mut(i).restore(part).map_err(|e| restore_error(key, e))?;
                }
            }
        }
        self.steps.hand_over(keyed, exchange_steps);
        Ok((runners, exchanges))
    }

    /// The counts of the whole run: this executor's and its keyed instances' (or its
    /// workers').
    fn totals(&self) -> Stats {
        let mut total = self.steps.stats();
        let instances = match self.steps.keyed() {
            Some(keyed) => keyed.stats(),
            None if !self.workers.is_empty() => super::keyed::published(&self.workers),
            None => return total,
        };
        let add = |a: &mut Option<usize>, b: Option<&Option<usize>>| {
            if let Some(Some(b)) = b {
                *a = Some(a.unwrap_or(0) + b);
            }
        };
        let steps: Vec<usize> = (0..self.steps.step_count()).filter(|i| self.steps.is_keyed(*i)).collect();
        for &i in &steps {
            total.state_entries[i] = None;
            total.peak_open_windows[i] = None;
        }
        for s in instances {
            total.records_in += s.records_in;
            total.records_out += s.records_out;
            total.late += s.late;
            total.late_to_sink += s.late_to_sink;
            total.skipped += s.skipped;
            total.failed += s.failed;
            for (t, v) in total.sinks.iter_mut().zip(&s.sinks) {
                *t += v;
            }
            // Instances count only the steps they run (a split worker its `key_by` too).
            for i in 0..total.step_in.len() {
                total.step_in[i] += s.step_in.get(i).copied().unwrap_or(0);
                total.step_out[i] += s.step_out.get(i).copied().unwrap_or(0);
            }
            for &i in &steps {
                add(&mut total.state_entries[i], s.state_entries.get(i));
                add(&mut total.peak_open_windows[i], s.peak_open_windows.get(i));
            }
        }
        total
    }

    /// Waits for sink `i` to answer a barrier. A sink thread that ended meanwhile
    /// (its barrier still queued) cannot answer: its own error is returned instead.
    fn await_reply(
        &mut self,
        i: usize,
        rx: &crossbeam_channel::Receiver<Result<serde_json::Value, SinkError>>,
    ) -> Result<Result<serde_json::Value, SinkError>> {
        loop {
            let ended = match rx.recv_timeout(std::time::Duration::from_millis(100)) {
                Ok(reply) => return Ok(reply),
                // The sink thread ended and dropped the queued barrier with its reply channel.
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => true,
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                    // A final checkpoint the sink cannot answer is given up.
                    if let Some(code) = self.steps.signal_outwaited() {
                        self.steps.stall(code);
                        return Err(Error::Interrupted(code));
                    }
                    self.threads[i].as_ref().is_some_and(|h| h.is_finished())
                }
            };
            if ended {
                return match self.sink_ended(i) {
                    Some(e) => Err(e),
                    None => Ok(Err(SinkError::Closed)),
                };
            }
        }
    }
    /// Sink `i`'s thread has ended (or is ending): joins it. None when it ended
    /// cleanly (its reader closed); else the error that stopped it.
    fn sink_ended(&mut self, i: usize) -> Option<Error> {
        self.steps.close_sink(i);
        match self.threads[i].take().map(|h| h.join()) {
            Some(Ok(Ok(()))) | Some(Ok(Err(SinkError::Closed))) => None,
            Some(Ok(Err(SinkError::Failed(e)))) => Some(e),
            Some(Err(_)) => Some(Error::Internal(format!("sink `{}` panicked", self.sink_ids[i]))),
            None => Some(self.sink_failure.take().unwrap_or_else(|| {
                Error::Internal(format!("sink `{}` stopped during a checkpoint", self.sink_ids[i]))
            })),
        }
    }

    /// Joins the threads of the sinks the steps found gone: the first failure is the
    /// run's sink failure.
    fn collect_gone(&mut self) {
        for i in self.steps.take_gone() {
            if self.threads[i].is_some() {
                if let Some(e) = self.sink_ended(i) {
                    self.sink_failure.get_or_insert(e);
                }
            }
        }
    }
    /// Keeps `metrics` up to date during the run; channels hold `channel_capacity` batches.
    pub fn publish_metrics(&mut self, metrics: std::sync::Arc<super::metrics::Metrics>, channel_capacity: usize) {
        self.metrics = Some(metrics);
        self.channel_capacity = channel_capacity;
    }
    /// Refreshes the metrics, at most every 100 ms (they are read by scrapes, not per
    /// batch).
    fn update_metrics(&mut self, merge: &Merge) {
        if self.metrics.is_some() {
            self.publish(merge.watermark(), &merge.lanes());
        }
    }
    /// Refreshes the metrics (at most every 100 ms) from the watermark and, per lane,
    /// its watermark and the batches queued on its channel.
    pub(super) fn publish(&mut self, watermark: i64, lanes: &[(Option<i64>, usize)]) {
        use std::sync::atomic::Ordering::Relaxed;
        let Some(m) = &self.metrics else { return };
        if self.metrics_updated.is_some_and(|t| t.elapsed() < std::time::Duration::from_millis(100)) {
            return;
        }
        self.metrics_updated = Some(std::time::Instant::now());
        let t = self.totals();
        let detail = self.detail(lanes, &t);
        // What the sources have read, as each source's count says (lanes that run
        // steps count their input as they read it, ahead of the executor).
        m.records_in.store(detail.sources.iter().map(|(_, read, _)| read).sum(), Relaxed);
        if let Ok(mut published) = m.detail.lock() {
            *published = detail;
        }
        m.records_out.store(t.records_out, Relaxed);
        m.late.store(t.late, Relaxed);
        m.skipped.store(t.skipped, Relaxed);
        m.failed.store(t.failed, Relaxed);
        m.watermark_ms.store(watermark, Relaxed);
        if let Some(cp) = &self.checkpointing {
            if m.checkpoints.swap(cp.written, Relaxed) != cp.written {
                m.checkpoint_last_unix_ms.store(chrono::Utc::now().timestamp_millis(), Relaxed);
            }
            m.checkpoint_bytes.store(cp.last_bytes, Relaxed);
            m.checkpoint_last_ms.store(cp.last_pause.as_millis() as u64, Relaxed);
        }
        let peak = t.peak_open_windows.iter().flatten().max().copied().unwrap_or(0);
        m.open_windows_peak.store(peak as u64, Relaxed);
    }
    /// Fails the run when resident memory goes above `bytes` (None: no limit).
    pub fn limit_memory(&mut self, bytes: Option<u64>) {
        self.memory = bytes.map(|bytes| MemoryLimit { bytes, checked: Instant::now() });
    }
    /// Under a memory limit, after a batch (at most every `MEMORY_CHECK_EVERY`): the
    /// error when resident memory is above it, naming the step that holds the most state.
    fn check_memory(&mut self) -> Result<()> {
        let Some(limit) = &mut self.memory else { return Ok(()) };
        if limit.checked.elapsed() < MEMORY_CHECK_EVERY {
            return Ok(());
        }
        limit.checked = Instant::now();
        self.check_memory_now()
    }
    /// The memory limit's check itself (see [`Executor::check_memory`]).
    pub(super) fn check_memory_now(&self) -> Result<()> {
        let Some(limit) = &self.memory else { return Ok(()) };
        let (bytes, resident) = (limit.bytes, resident_bytes().unwrap_or(0));
        if resident <= bytes {
            return Ok(());
        }
        let entries = self.totals().state_entries;
        let biggest = (0..entries.len())
            .filter_map(|i| entries[i].map(|n| (n, i)))
            .max()
            .map(|(n, i)| format!("; step `{}` holds the most state ({n} keys or open windows)", self.steps.label(i)))
            .unwrap_or_default();
        Err(Error::External(format!(
            "memory limit of {} exceeded: {} resident{biggest}. Use coarser keys or shorter windows, \
             less allowed lateness, or a higher `memory_limit` / `--memory-limit`",
            mib(bytes),
            mib(resident)
        )))
    }
    /// Per source, step, sink and channel metrics.
    fn detail(&self, lanes: &[(Option<i64>, usize)], totals: &Stats) -> super::metrics::Detail {
        let sources = self
            .names
            .sources
            .iter()
            .enumerate()
            .map(|(i, id)| {
                let watermark = lanes
                    .iter()
                    .zip(&self.lanes)
                    .filter(|(_, lane)| lane.source == i)
                    .filter_map(|((wm, _), _)| *wm)
                    .min()
                    .unwrap_or(i64::MIN);
                // With head steps on the lanes, what the lanes read (loaded after the
                // steps' counts, so never behind them).
                let counts = &self.steps.counts;
                let read = match self.steps.read_by_lanes(i) {
                    Some(read) => read + counts.undecodable[i],
                    // A run split by data has one source, read by its workers.
                    None if !self.workers.is_empty() => totals.records_in,
                    None => counts.sources[i] + counts.undecodable[i],
                };
                (id.clone(), read, watermark)
            })
            .collect();
        let steps = (0..self.steps.step_count())
            .map(|i| (self.steps.label(i).to_string(), totals.step_in[i], totals.step_out[i], totals.state_entries[i]))
            .collect();
        let sinks = self.sink_ids.iter().cloned().zip(totals.sinks.iter().copied()).collect();
        let mut channels: Vec<(String, usize, usize)> = lanes
            .iter()
            .zip(&self.lanes)
            .map(|((_, queued), lane)| {
                let name = &self.names.sources[lane.source];
                let lane_name = lane.name.as_ref().map_or(String::new(), |l| format!(" {l}"));
                // A lane that encodes its sink's lines sends them straight on: what
                // fills its channel is the sink.
                let edge = match lane.line_sink {
                    Some(sink) => format!("source {name}{lane_name} -> sink {} (lines)", self.sink_ids[sink]),
                    None => format!("source {name}{lane_name} -> steps"),
                };
                (edge, *queued, self.channel_capacity)
            })
            .collect();
        if let Some(keyed) = self.steps.keyed() {
            for (i, queued) in keyed.queued() {
                channels.push((format!("steps -> keyed instance {i}"), queued, self.channel_capacity));
            }
        }
        for (id, tx) in self.sink_ids.iter().zip(self.steps.sinks()) {
            if let Some(tx) = tx {
                channels.push((format!("steps -> sink {id}"), tx.len(), self.channel_capacity));
            }
        }
        super::metrics::Detail { sources, steps, sinks, channels }
    }
    /// Reports progress through `report` during the run.
    pub fn report_progress(&mut self, report: super::ProgressFn, sizes: Vec<Option<Vec<u64>>>) {
        self.progress = Some(ProgressReport { report, sizes, last: std::time::Instant::now() });
    }
    fn tell_progress(&mut self, merge: &Merge, force: bool) {
        let Some(ProgressReport { sizes, last, .. }) = &self.progress else { return };
        if !force && last.elapsed() < std::time::Duration::from_millis(100) {
            return;
        }
        let done = merge
            .positions()
            .iter()
            .zip(sizes.iter())
            .map(|((position, _), sizes)| match (position, sizes) {
                (Some(p), Some(s)) => s.iter().take(p.file as usize).sum::<u64>() + p.offset,
                _ => 0,
            })
            .sum();
        let (records_in, watermark) = (self.steps.summary.records_in, merge.watermark());
        self.report(records_in, done, watermark, force);
    }
    /// Reports progress (at most every 100 ms unless `force`; the caller may check
    /// first, to skip working out what to report).
    pub(super) fn report(&mut self, records_in: u64, bytes_done: u64, watermark: i64, force: bool) {
        let Some(ProgressReport { report, sizes, last }) = &mut self.progress else { return };
        if !force && last.elapsed() < std::time::Duration::from_millis(100) {
            return;
        }
        *last = std::time::Instant::now();
        let bytes_total: Option<u64> = sizes.iter().map(|s| s.as_ref().map(|v| v.iter().sum::<u64>())).sum();
        (report.0)(&super::Progress { records_in, bytes_done, bytes_total, watermark });
    }
    /// Puts saved step states back (by step key) before the first record, into the
    /// steps this executor runs itself (see [`Executor::parallel`] for keyed instances).
    pub fn restore(&mut self, saved: &[StepState]) -> Result<()> {
        let Some(cp) = &self.checkpointing else { return Ok(()) };
        for (i, (key, fingerprint)) in cp.steps.iter().enumerate() {
            if self.steps.is_keyed(i) {
                continue;
            }
            let op = self.steps.operator_mut(i);
            if let Some(state) = saved_state(saved, key, fingerprint) {
                let restore = |op: &mut Box<dyn Operator>| -> std::result::Result<(), String> {
                    let one = op.rescale(instance_states(state), 1)?.pop().unwrap_or_default();
                    op.restore(one)
                };
                restore(op).map_err(|e| restore_error(key, e))?;
            }
        }
        Ok(())
    }
    /// Takes the counts the workers of a run split by data publish into the totals.
    pub(super) fn count_workers(&mut self, workers: Vec<std::sync::Arc<std::sync::Mutex<Stats>>>) {
        self.workers = workers;
    }
    /// Notices sink threads that ended by themselves (a closed reader, a failure)
    /// when this executor does not write to them itself.
    pub(super) fn poll_sinks(&mut self) {
        for i in 0..self.threads.len() {
            if self.threads[i].as_ref().is_some_and(|h| h.is_finished()) {
                if let Some(e) = self.sink_ended(i) {
                    self.sink_failure.get_or_insert(e);
                }
            }
        }
    }
    /// Processes every message until the sources end, a record fails under `fail`, a
    /// source or sink fails, every sink has closed, or a signal arrives. At the end of
    /// input the watermark jumps to +infinity so every open window fires. Checkpoints
    /// are taken between batches, where every record handed out has passed every step.
    pub fn run(&mut self, merge: &mut Merge) -> Result<()> {
        let mut watermark = merge.watermark();
        loop {
            let next = match merge.next() {
                Ok(n) => n,
                Err(Error::Interrupted(code)) => return self.interrupted(merge, code),
                Err(e) => return Err(e),
            };
            let Some(merged) = next else { break };
            match merged {
                Merged::Batch { lane, records, inputs, failures } => {
                    self.steps.take_batch(self.lanes[lane].source, records, inputs, failures)?
                }
                Merged::Lines { lane, text, inputs, records } => {
                    let Some(sink) = self.lanes[lane].line_sink else {
                        return Err(Error::Internal("a lane that encodes for no sink sent lines".into()));
                    };
                    self.steps.take_lines(self.lanes[lane].source, sink, text, inputs, records);
                }
                Merged::Idle => {}
                Merged::Bad(bad) => self.steps.take_bad(bad)?,
            }
            if merge.watermark() > watermark {
                watermark = merge.watermark();
                self.steps.advance_watermark(watermark)?;
            }
            self.collect_gone();
            if self.steps.keyed().is_some() {
                self.poll_sinks();
            }
            if let Some(code) = self.steps.stalled() {
                return Err(Error::Interrupted(code));
            }
            if self.sink_failure.is_some() || self.all_closed() {
                return Ok(());
            }
            self.check_memory()?;
            if self.checkpointing.as_ref().is_some_and(|c| c.due()) {
                self.checkpoint(merge, false)?;
            }
            self.tell_progress(merge, false);
            self.update_metrics(merge);
        }
        self.tell_progress(merge, true);
        self.steps.end_steps()?;
        self.collect_gone();
        if self.checkpointing.is_some() {
            self.checkpoint(merge, true)?;
        }
        Ok(())
    }
    /// A signal: with checkpoints, a final one (the sinks keep their in-progress
    /// output for the next run).
    fn interrupted(&mut self, merge: &Merge, code: i32) -> Result<()> {
        if self.checkpointing.is_some() && self.steps.stalled().is_none() {
            self.checkpoint(merge, false)?;
        }
        Err(Error::Interrupted(code))
    }
    /// Takes checkpoint epoch N+1: every sink flushes and reports what it committed
    /// (in channel order, so after every record sent before), every step snapshots its
    /// state, the sources' positions come from the merge; then the file is written.
    fn checkpoint(&mut self, merge: &Merge, completed: bool) -> Result<()> {
        let started = std::time::Instant::now();
        // Keyed instances first: once they answer, their output before the barrier is
        // in the sink channels, ahead of the barrier the sinks get next.
        let instance_states = self.steps.barrier_instances()?;
        let at = Barrier { positions: merge.positions(), watermark: merge.finite_watermark(), completed };
        self.write_checkpoint(instance_states, at, started)
    }
    /// Takes checkpoint epoch N+1 once every record before the barrier has passed every
    /// step: `instance_states` are the keyed instances' (or a split run's workers')
    /// states, their output already in the sink channels; the sinks get the barrier
    /// after it and answer with their commit state; then the file is written and the
    /// sinks commit the epoch.
    pub(super) fn write_checkpoint(
        &mut self,
        instance_states: Option<Vec<Vec<serde_json::Value>>>,
        at: Barrier,
        started: std::time::Instant,
    ) -> Result<()> {
        let epoch = self.checkpointing.as_ref().map_or(0, |c| c.epoch) + 1;
        let sinks = self.steps.sinks().len();
        let mut sink_states = Vec::with_capacity(sinks);
        let mut replies = Vec::new();
        for i in 0..sinks {
            if self.steps.sinks()[i].is_none() {
                replies.push((i, None));
                continue;
            }
            let (reply_tx, reply_rx) = crossbeam_channel::bounded(1);
            let sent = self.steps.send_or_signal(i, SinkMessage::Barrier(epoch, reply_tx));
            if let Some(code) = self.steps.stalled() {
                return Err(Error::Interrupted(code));
            }
            if sent.is_err() {
                // The sink thread has ended: its own error says why.
                match self.sink_ended(i) {
                    Some(e) => return Err(e),
                    None => {
                        replies.push((i, None));
                        continue;
                    }
                }
            }
            replies.push((i, Some(reply_rx)));
        }
        for (i, rx) in replies {
            let state = match rx {
                None => serde_json::Value::Null,
                Some(rx) => match self.await_reply(i, &rx)? {
                    Ok(state) => state,
                    Err(SinkError::Closed) => serde_json::Value::Null,
                    Err(SinkError::Failed(e)) => return Err(e),
                },
            };
            sink_states.push(SinkState { id: self.sink_ids[i].clone(), state });
        }
        let Some(cp) = &mut self.checkpointing else { return Ok(()) };
        let runner = &self.steps;
        let steps = cp
            .steps
            .iter()
            .enumerate()
            .map(|(i, (key, fingerprint))| StepState {
                key: key.clone(),
                fingerprint: fingerprint.clone(),
                state: match &instance_states {
                    Some(states) if runner.is_keyed(i) => {
                        let parts: Vec<serde_json::Value> = states.iter().map(|s| s[i].clone()).collect();
                        if parts.iter().all(serde_json::Value::is_null) {
                            serde_json::Value::Null
                        } else {
                            serde_json::json!({ INSTANCES: parts })
                        }
                    }
                    _ => runner.operator(i).snapshot(),
                },
            })
            .collect();
        let Barrier { positions, watermark, completed } = at;
        let sources = positions
            .iter()
            .zip(&self.lanes)
            .map(|((position, max_ts), lane)| SourceState {
                id: self.names.sources[lane.source].clone(),
                lane: lane.name.clone(),
                position: position.filter(|_| lane.replayable).map(|o| Position {
                    file: o.file,
                    path: self.names.files[lane.source].get(o.file as usize).map(|f| f.to_string()).unwrap_or_default(),
                    offset: o.offset,
                    line: o.line,
                }),
                max_event_time: *max_ts,
            })
            .collect();
        let checkpoint = Checkpoint {
            pipeline: cp.pipeline.clone(),
            lineage: cp.lineage.clone(),
            epoch,
            created_ms: chrono::Utc::now().timestamp_millis(),
            completed,
            watermark,
            sources,
            steps,
            sinks: sink_states,
        };
        cp.write(&checkpoint, started)?;
        for ((position, _), lane) in positions.iter().zip(&self.lanes) {
            if let (Some(position), Some(commit)) = (position, &lane.committer) {
                commit(position);
            }
        }
        // The second phase: sinks make this epoch's output visible.
        for tx in self.steps.sinks().iter().flatten() {
            let _ = tx.send(SinkMessage::CheckpointDone(epoch));
        }
        Ok(())
    }
    /// Whether a checkpoint is due (its interval passed, or a sink asked for one).
    pub(super) fn checkpoint_due(&self) -> bool {
        self.checkpointing.as_ref().is_some_and(|c| c.due())
    }
    /// Whether a sink failed (the error is reported when the run finishes).
    pub(super) fn sink_failed(&self) -> bool {
        self.sink_failure.is_some()
    }

    pub(super) fn all_closed(&self) -> bool {
        self.steps.all_closed()
    }
    /// Ends the run: on success every sink commits; on failure every sink aborts.
    pub fn finish(mut self, outcome: Result<()>) -> Result<RunSummary> {
        if let Err(Error::Interrupted(code)) = outcome {
            self.steps.summary.interrupted = Some(code);
        }
        let failure = match outcome {
            Err(Error::Interrupted(_)) => None,
            other => other.err(),
        }
        .or(self.sink_failure.take());
        // Keyed instances hold sink senders: they stop before the sinks end.
        let failure = match self.steps.stop_instances() {
            Some(e) => failure.or(Some(e)),
            None => failure,
        };
        let interrupted = self.steps.summary.interrupted.is_some();
        // The error sink ends last: other sinks may still hand it rows their targets
        // reject while they commit.
        let error_sink = match self.on_error {
            OnError::Sink(sink) => Some(sink),
            _ => None,
        };
        let mut order: Vec<usize> = (0..self.threads.len()).filter(|i| Some(*i) != error_sink).collect();
        order.extend(error_sink);
        let mut first_error = failure;
        for i in order {
            if let Some(tx) = self.steps.close_sink(i) {
                // Interrupted runs do not commit: checkpointed sinks keep their
                // in-progress output for the next run, the others discard it.
                if first_error.is_none() && !interrupted {
                    let _ = tx.send(SinkMessage::End);
                }
            }
            let Some(handle) = self.threads[i].take() else { continue };
            if interrupted && !finishes_soon(&handle) {
                // A sink blocked in a write that will not return (a reader that stopped
                // reading): the process ends without it.
                continue;
            }
            match handle.join() {
                Ok(Ok(())) | Ok(Err(SinkError::Closed)) => {}
                Ok(Err(SinkError::Failed(_))) if interrupted => {}
                Ok(Err(SinkError::Failed(e))) => {
                    if first_error.is_none() {
                        first_error = Some(e);
                    }
                }
                Err(_) => {
                    first_error.get_or_insert(Error::Internal("a sink thread panicked".into()));
                }
            }
        }
        let totals = self.totals();
        let summary = &mut self.steps.summary;
        summary.records_in = totals.records_in;
        summary.records_out = totals.records_out;
        summary.late = totals.late;
        summary.late_to_sink = totals.late_to_sink;
        summary.skipped = totals.skipped;
        summary.failed = totals.failed;
        summary.peak_open_windows = totals.peak_open_windows.iter().flatten().max().copied();
        if let Some(cp) = &self.checkpointing {
            summary.checkpoints = Some((cp.written, cp.epoch, cp.bytes, cp.longest));
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(std::mem::take(summary)),
        }
    }
}

/// How the state of a step run by parallel instances is saved: `{"instances": [..]}`,
/// one state per instance.
const INSTANCES: &str = "instances";

fn restore_error(step: &str, e: String) -> Error {
    Error::Internal(format!("cannot restore the state of step `{step}`: {e}"))
}

/// The saved state of a step, when the checkpoint has one for an identical step.
fn saved_state<'a>(saved: &'a [StepState], key: &str, fingerprint: &str) -> Option<&'a serde_json::Value> {
    saved.iter().find(|s| s.key == key && s.fingerprint == fingerprint && !s.state.is_null()).map(|s| &s.state)
}

/// A saved step state as the states of the instances that saved it (one when a
/// single thread ran the step).
fn instance_states(state: &serde_json::Value) -> Vec<serde_json::Value> {
    match state.as_object().and_then(|o| o.get(INSTANCES)).and_then(|v| v.as_array()) {
        Some(parts) if state.as_object().is_some_and(|o| o.len() == 1) => parts.clone(),
        _ => vec![state.clone()],
    }
}

/// Whether a sink thread ends within [`SIGNAL_GRACE`] once its channel is closed.
fn finishes_soon(handle: &SinkThread) -> bool {
    let deadline = std::time::Instant::now() + SIGNAL_GRACE;
    while !handle.is_finished() {
        if std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    true
}
