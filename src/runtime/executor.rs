//! Runs the steps of a plan on one thread: each batch from a source is pushed through
//! the operators that read it (direct calls, in topological order; fan-out clones the
//! batch, which shares its strings) and on to the sink channels.

use super::checkpointing::Checkpointing;
use super::errors::{OriginNames, RecordFailure};
use super::keyed::{Instances, KeyedSteps, Stats};
use super::merge::{Merge, Merged};
use super::{RunSummary, SinkMessage};
use crate::checkpoint::{Checkpoint, Position, SinkState, SourceState, StepState};
use crate::error::{Error, Result};
use crate::expr::Expr;
use crate::graph::NodeRef;
use crate::plan::physical::OnError;
use crate::plan::LogicalPlan as Plan;
use crate::record::{Batch, Record};
use crate::sinks::encode::LineEncoder;
use crate::sinks::SinkError;
use crate::steps::CompiledStep;
use crate::steps::{self, Operator};
use crossbeam_channel::Sender;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

type SinkThread = JoinHandle<Result<(), SinkError>>;

/// Per step: the key expressions of a `key_by` whose output goes to keyed instances.
pub(super) type Exchanges = Vec<Option<Vec<Expr>>>;

pub struct Executor {
    operators: Vec<Box<dyn Operator>>,
    labels: Vec<String>,
    order: Vec<usize>,
    source_consumers: Vec<Vec<NodeRef>>,
    step_consumers: Vec<Vec<NodeRef>>,
    sinks: Vec<Option<Sender<SinkMessage>>>,
    threads: Vec<Option<SinkThread>>,
    /// Sinks counted in "out" (not the error or late sinks).
    counted: Vec<bool>,
    /// Per step: the sink receiving its late records.
    late_sinks: Vec<Option<usize>>,
    on_error: OnError,
    names: OriginNames,
    summary: RunSummary,
    /// A sink failed: the error to report.
    sink_failure: Option<Error>,
    sink_ids: Vec<String>,
    /// The sources' lanes, in the merge's order.
    lanes: Vec<Lane>,
    pub checkpointing: Option<Checkpointing>,
    progress: Option<ProgressReport>,
    metrics: Option<std::sync::Arc<super::metrics::Metrics>>,
    counts: Counts,
    channel_capacity: usize,
    memory: Option<MemoryLimit>,
    /// When the metrics were last refreshed.
    metrics_updated: Option<std::time::Instant>,
    /// The parallel keyed instances running the steps after `key_by` (None: this
    /// executor runs every step itself, or it is one of the instances).
    keyed: Option<Instances>,
    /// Per step: whether parallel instances run it (then the executor's own operator
    /// for it stays unused).
    keyed_steps: Vec<bool>,
    /// The head steps the source lanes run, and their counts.
    head: Option<(Vec<usize>, std::sync::Arc<super::lane_steps::LaneCounts>)>,
    /// The counts the workers of a run split by data publish (`runtime/split.rs`).
    workers: Vec<std::sync::Arc<std::sync::Mutex<Stats>>>,
    /// Per sink: the line format keyed instances encode its records in, when the sink
    /// writes text (`Sink::line_encoder`).
    instance_encoders: Vec<Option<LineEncoder>>,
    /// Per sink: the line format this executor (an instance) encodes its records in
    /// before sending them; None: records are sent as they are.
    encoders: Vec<Option<LineEncoder>>,
    /// Per step: the sink whose lines it writes itself (`Operator::write_lines`).
    writes_lines: Vec<Option<usize>>,
    /// SIGINT / SIGTERM: the exit code once one arrived (0 before).
    signal: Arc<AtomicUsize>,
    /// A signal arrived and a sink then took nothing for [`SIGNAL_GRACE`] (a reader
    /// that stopped reading, a database away): the exit code. Later output is dropped and the run ends without
    /// a final checkpoint; the last one stays the place to resume from.
    stalled: Option<i32>,
    /// When a signal was first seen while waiting for a sink.
    signal_seen: Option<std::time::Instant>,
}

/// How long a send to a sink waits before looking for a signal.
const SIGNAL_CHECK: std::time::Duration = std::time::Duration::from_millis(100);

/// How long a sink may take nothing (or not answer a final checkpoint) after a signal.
const SIGNAL_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

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

/// Records per source, per step (in and out) and per sink, for metrics.
#[derive(Default)]
struct Counts {
    sources: Vec<u64>,
    /// Per source: input that could not be decoded (counted as read, as in the
    /// summary, also when the lanes count what they read themselves).
    undecodable: Vec<u64>,
    step_in: Vec<u64>,
    step_out: Vec<u64>,
    sinks: Vec<u64>,
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
        let p = &plan.pipeline;
        let operators = p
            .steps
            .iter()
            .enumerate()
            .map(|(i, s)| {
                steps::build(s)
                    .ok_or_else(|| Error::Internal(format!("step `{}` has no runtime", p.step_names[i].label)))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Executor {
            operators,
            labels: p.step_names.iter().map(|n| n.label.clone()).collect(),
            order: p.graph.step_order.clone(),
            source_consumers: (0..p.sources.len()).map(|i| p.graph.consumers(NodeRef::Source(i))).collect(),
            step_consumers: (0..p.steps.len()).map(|i| p.graph.consumers(NodeRef::Step(i))).collect(),
            counted: (0..p.sinks.len())
                .map(|i| p.graph.error_sink != Some(i) && !p.graph.late_sinks.values().any(|s| *s == i))
                .collect(),
            late_sinks: p
                .steps
                .iter()
                .map(|s| match s {
                    CompiledStep::Reduce { window_step: Some(w), .. } => p.graph.late_sinks.get(w).copied(),
                    _ => None,
                })
                .collect(),
            sinks,
            threads,
            on_error,
            names,
            summary: RunSummary::default(),
            sink_failure: None,
            sink_ids: p.sinks.iter().map(|s| s.id.clone()).collect(),
            lanes,
            checkpointing,
            progress: None,
            metrics: None,
            memory: None,
            metrics_updated: None,
            counts: Counts {
                sources: vec![0; p.sources.len()],
                undecodable: vec![0; p.sources.len()],
                step_in: vec![0; p.steps.len()],
                step_out: vec![0; p.steps.len()],
                sinks: vec![0; p.sinks.len()],
            },
            channel_capacity: 0,
            keyed: None,
            keyed_steps: vec![false; p.steps.len()],
            head: None,
            workers: Vec::new(),
            instance_encoders: Vec::new(),
            encoders: Vec::new(),
            writes_lines: vec![None; p.steps.len()],
            signal: Arc::new(AtomicUsize::new(0)),
            stalled: None,
            signal_seen: None,
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
        self.signal = signal;
    }

    /// The exit code of a signal that arrived, if one did.
    fn signalled(&self) -> Option<i32> {
        match self.signal.load(Ordering::Relaxed) {
            0 => None,
            code => Some(code as i32),
        }
    }

    /// The exit code of a signal that arrived over [`SIGNAL_GRACE`] ago while this
    /// executor waited for a sink: a sink slow to take or answer gets that long.
    fn signal_outwaited(&mut self) -> Option<i32> {
        let code = self.signalled()?;
        let since = *self.signal_seen.get_or_insert_with(std::time::Instant::now);
        (since.elapsed() >= SIGNAL_GRACE).then_some(code)
    }

    /// Sends to a sink's channel, giving way to a signal while the sink takes nothing:
    /// Err(message) when the sink thread has gone, Ok(false) when a signal stopped the
    /// wait (the message is dropped).
    fn send_or_signal(&mut self, sink: usize, message: SinkMessage) -> std::result::Result<bool, SinkMessage> {
        let mut message = message;
        loop {
            let sent = match &self.sinks[sink] {
                Some(tx) => tx.send_timeout(message, SIGNAL_CHECK),
                None => return Err(message),
            };
            match sent {
                Ok(()) => return Ok(true),
                Err(crossbeam_channel::SendTimeoutError::Disconnected(m)) => return Err(m),
                Err(crossbeam_channel::SendTimeoutError::Timeout(m)) => {
                    if let Some(code) = self.signal_outwaited() {
                        self.stalled = Some(code);
                        return Ok(false);
                    }
                    message = m;
                }
            }
        }
    }

    /// The steps `head` (a chain read by every source) run on the source lanes: the
    /// merge's records go straight to the readers of the last of them.
    pub fn run_head_on_lanes(&mut self, head: Vec<usize>, counts: std::sync::Arc<super::lane_steps::LaneCounts>) {
        let Some(&last) = head.last() else { return };
        self.order.retain(|i| !head.contains(i));
        let readers = self.step_consumers[last].clone();
        for consumers in &mut self.source_consumers {
            *consumers = readers.clone();
        }
        self.head = Some((head, counts));
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
        let (executors, exchanges) = self.instances(plan, keyed, exchange_steps, n, saved)?;
        let executors = executors.into_iter().map(|e| Box::new(e) as Box<dyn KeyedSteps>).collect();
        self.keyed = Some(Instances::start(executors, exchanges, channel_capacity)?);
        Ok(())
    }

    /// Hands the steps marked in `keyed` to `n` instance executors, each running only
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
    ) -> Result<(Vec<Executor>, Exchanges)> {
        let p = &plan.pipeline;
        let is_keyed = |r: &NodeRef| matches!(r, NodeRef::Step(j) if keyed[*j]);
        let mut exchanges = vec![None; p.steps.len()];
        for &k in exchange_steps {
            let CompiledStep::KeyBy { exprs, .. } = &p.steps[k] else {
                return Err(Error::Internal(format!("the plan exchanges after step {k}, not a `key_by`")));
            };
            exchanges[k] = Some(exprs.clone());
        }
        let mut executors = Vec::with_capacity(n);
        for _ in 0..n {
            let threads = (0..self.sinks.len()).map(|_| None).collect();
            let mut exec =
                Executor::new(plan, self.on_error, self.names.clone(), self.sinks.clone(), threads, Vec::new(), None)?;
            exec.encoders = self.instance_encoders.clone();
            exec.signal = self.signal.clone();
            exec.order.retain(|i| keyed[*i]);
            for (k, exchange) in exchanges.iter().enumerate() {
                if exchange.is_some() {
                    exec.step_consumers[k].retain(is_keyed);
                }
            }
            exec.offer_lines();
            executors.push(exec);
        }
        self.order.retain(|i| !keyed[*i]);
        for (k, exchange) in exchanges.iter().enumerate() {
            if exchange.is_some() {
                self.step_consumers[k].retain(|r| !is_keyed(r));
            }
        }
        if let (Some(saved), Some(cp)) = (saved, &self.checkpointing) {
            for (i, (key, fingerprint)) in cp.steps.iter().enumerate().filter(|(i, _)| keyed[*i]) {
                let Some(state) = saved_state(saved, key, fingerprint) else { continue };
                let parts = self.operators[i].rescale(instance_states(state), n).map_err(|e| restore_error(key, e))?;
                for (exec, part) in executors.iter_mut().zip(parts) {
                    exec.operators[i].restore(part).map_err(|e| restore_error(key, e))?;
                }
            }
        }
        self.keyed_steps = keyed;
        Ok((executors, exchanges))
    }

    /// This executor's own counts, with those of the steps the source lanes run.
    pub(super) fn stats(&self) -> Stats {
        let s = &self.summary;
        let mut stats = Stats {
            records_in: s.records_in,
            records_out: s.records_out,
            late: s.late,
            late_to_sink: s.late_to_sink,
            skipped: s.skipped,
            failed: s.failed,
            step_in: self.counts.step_in.clone(),
            step_out: self.counts.step_out.clone(),
            sinks: self.counts.sinks.clone(),
            state_entries: self.operators.iter().map(|o| o.state_entries()).collect(),
            peak_open_windows: self.operators.iter().map(|o| o.peak_open_windows()).collect(),
        };
        if let Some((head, counts)) = &self.head {
            use std::sync::atomic::Ordering::Acquire;
            // Outputs first: the lanes count a batch's input before its output, so a
            // step never shows more out than its in allows.
            for &i in head.iter().rev() {
                stats.step_out[i] = counts.step_out[i].load(Acquire);
                stats.step_in[i] = counts.step_in[i].load(Acquire);
            }
        }
        stats
    }

    /// The counts of the whole run: this executor's and its keyed instances' (or its
    /// workers').
    fn totals(&self) -> Stats {
        let mut total = self.stats();
        let instances = match &self.keyed {
            Some(keyed) => keyed.stats(),
            None if !self.workers.is_empty() => super::keyed::published(&self.workers),
            None => return total,
        };
        let add = |a: &mut Option<usize>, b: Option<&Option<usize>>| {
            if let Some(Some(b)) = b {
                *a = Some(a.unwrap_or(0) + b);
            }
        };
        let steps: Vec<usize> = (0..self.keyed_steps.len()).filter(|i| self.keyed_steps[*i]).collect();
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
                    if let Some(code) = self.signal_outwaited() {
                        self.stalled = Some(code);
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
        self.sinks[i] = None;
        match self.threads[i].take().map(|h| h.join()) {
            Some(Ok(Ok(()))) | Some(Ok(Err(SinkError::Closed))) => None,
            Some(Ok(Err(SinkError::Failed(e)))) => Some(e),
            Some(Err(_)) => Some(Error::Internal(format!("sink `{}` panicked", self.sink_ids[i]))),
            None => Some(self.sink_failure.take().unwrap_or_else(|| {
                Error::Internal(format!("sink `{}` stopped during a checkpoint", self.sink_ids[i]))
            })),
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
        if let Ok(mut detail) = m.detail.lock() {
            *detail = self.detail(lanes, &t);
        }
        m.records_in.store(t.records_in, Relaxed);
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
            .map(|(n, i)| format!("; step `{}` holds the most state ({n} keys or open windows)", self.labels[i]))
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
                let read = match &self.head {
                    Some((_, counts)) => {
                        counts.sources[i].load(std::sync::atomic::Ordering::Acquire) + self.counts.undecodable[i]
                    }
                    // A run split by data has one source, read by its workers.
                    None if !self.workers.is_empty() => totals.records_in,
                    None => self.counts.sources[i] + self.counts.undecodable[i],
                };
                (id.clone(), read, watermark)
            })
            .collect();
        let steps = self
            .labels
            .iter()
            .enumerate()
            .map(|(i, label)| (label.clone(), totals.step_in[i], totals.step_out[i], totals.state_entries[i]))
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
        if let Some(keyed) = &self.keyed {
            for (i, queued) in keyed.queued() {
                channels.push((format!("steps -> keyed instance {i}"), queued, self.channel_capacity));
            }
        }
        for (id, tx) in self.sink_ids.iter().zip(&self.sinks) {
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
        let (records_in, watermark) = (self.summary.records_in, merge.watermark());
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
        for (i, (op, (key, fingerprint))) in self.operators.iter_mut().zip(&cp.steps).enumerate() {
            if self.keyed_steps[i] {
                continue;
            }
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

    /// Records leaving step `step` on another thread (a `key_by` before keyed
    /// instances), handed to this executor's consumers of it.
    pub(super) fn deliver_from(&mut self, step: usize, batch: Batch) -> Result<()> {
        let consumers = self.step_consumers[step].clone();
        self.deliver(&consumers, batch)
    }

    /// Counts `inputs` records read (a split worker reads its own input).
    pub(super) fn count_read(&mut self, inputs: u64) {
        self.summary.records_in += inputs;
    }

    /// Counts `n` records through step `step` (one passing them on unchanged, such as
    /// the `key_by` a split worker evaluates itself).
    pub(super) fn count_through(&mut self, step: usize, n: u64) {
        self.counts.step_in[step] += n;
        self.counts.step_out[step] += n;
    }

    /// Takes the counts the workers of a run split by data publish into the totals.
    pub(super) fn count_workers(&mut self, workers: Vec<std::sync::Arc<std::sync::Mutex<Stats>>>) {
        self.workers = workers;
    }

    /// At the end of input: the watermark goes to +infinity, then every step (and
    /// every keyed instance) runs `on_end`, in topological order.
    pub(super) fn end_steps(&mut self) -> Result<()> {
        self.advance_watermark(i64::MAX)?;
        for i in self.order.clone() {
            let mut out = Vec::new();
            self.operators[i].on_end(&mut out);
            self.emit(i, out)?;
        }
        match &mut self.keyed {
            Some(keyed) => keyed.end(),
            None => Ok(()),
        }
    }

    /// Every step's state (null for the steps this executor does not run).
    pub(super) fn snapshot_states(&self) -> Vec<serde_json::Value> {
        (0..self.operators.len())
            .map(|i| if self.order.contains(&i) { self.operators[i].snapshot() } else { serde_json::Value::Null })
            .collect()
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
                    self.summary.records_in += inputs;
                    self.counts.sources[self.lanes[lane].source] += inputs;
                    let consumers = self.source_consumers[self.lanes[lane].source].clone();
                    self.deliver(&consumers, records)?;
                    for f in failures {
                        self.failure(f)?;
                    }
                }
                Merged::Lines { lane, text, inputs, records } => {
                    self.summary.records_in += inputs;
                    let source = self.lanes[lane].source;
                    self.counts.sources[source] += inputs;
                    let Some(sink) = self.lanes[lane].line_sink else {
                        return Err(Error::Internal("a lane that encodes for no sink sent lines".into()));
                    };
                    self.post(sink, SinkMessage::Lines(text), records);
                }
                Merged::Idle => {}
                Merged::Bad(bad) => {
                    self.summary.records_in += bad.len() as u64;
                    for b in &bad {
                        if let Some(n) = self.counts.undecodable.get_mut(b.origin.source as usize) {
                            *n += 1;
                        }
                    }
                    for b in bad {
                        self.failure(RecordFailure::from(b))?;
                    }
                }
            }
            if merge.watermark() > watermark {
                watermark = merge.watermark();
                self.advance_watermark(watermark)?;
            }
            if self.keyed.is_some() {
                self.poll_sinks();
            }
            if let Some(code) = self.stalled {
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
        self.end_steps()?;
        if self.checkpointing.is_some() {
            self.checkpoint(merge, true)?;
        }
        Ok(())
    }

    /// A signal: with checkpoints, a final one (the sinks keep their in-progress
    /// output for the next run).
    fn interrupted(&mut self, merge: &Merge, code: i32) -> Result<()> {
        if self.checkpointing.is_some() && self.stalled.is_none() {
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
        let instance_states = match &mut self.keyed {
            Some(keyed) => Some(keyed.barrier()?),
            None => None,
        };
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
        let mut sink_states = Vec::with_capacity(self.sinks.len());
        let mut replies = Vec::new();
        for i in 0..self.sinks.len() {
            let Some(tx) = &self.sinks[i] else {
                replies.push((i, None));
                continue;
            };
            let _ = tx;
            let (reply_tx, reply_rx) = crossbeam_channel::bounded(1);
            let sent = self.send_or_signal(i, SinkMessage::Barrier(epoch, reply_tx));
            if let Some(code) = self.stalled {
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
        let steps = self
            .operators
            .iter()
            .zip(&cp.steps)
            .enumerate()
            .map(|(i, (op, (key, fingerprint)))| StepState {
                key: key.clone(),
                fingerprint: fingerprint.clone(),
                state: match &instance_states {
                    Some(states) if self.keyed_steps[i] => {
                        let parts: Vec<serde_json::Value> = states.iter().map(|s| s[i].clone()).collect();
                        if parts.iter().all(serde_json::Value::is_null) {
                            serde_json::Value::Null
                        } else {
                            serde_json::json!({ INSTANCES: parts })
                        }
                    }
                    _ => op.snapshot(),
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
        for tx in self.sinks.iter().flatten() {
            let _ = tx.send(SinkMessage::CheckpointDone(epoch));
        }
        Ok(())
    }

    /// Tells every step, in topological order, how far event time has progressed
    /// (keyed instances after the steps before them).
    pub(super) fn advance_watermark(&mut self, watermark: i64) -> Result<()> {
        for i in self.order.clone() {
            let mut out = Vec::new();
            self.operators[i].on_watermark(watermark, &mut out);
            self.emit(i, out)?;
        }
        match &mut self.keyed {
            Some(keyed) => keyed.watermark(watermark),
            None => Ok(()),
        }
    }

    /// Lets each step this executor runs whose only reader is a sink it encodes lines
    /// for write those lines itself (see `Operator::write_lines`).
    fn offer_lines(&mut self) {
        for &step in &self.order {
            let [NodeRef::Sink(sink)] = self.step_consumers[step][..] else { continue };
            let Some(format) = self.encoders.get(sink).and_then(Option::as_ref) else { continue };
            if self.operators[step].write_lines(format.clone()) {
                self.writes_lines[step] = Some(sink);
            }
        }
    }

    /// Hands a step's output to its consumers (or the lines it wrote to their sink) and
    /// its late records to its late sink.
    fn emit(&mut self, step: usize, out: Batch) -> Result<()> {
        let late = self.operators[step].take_late();
        if !late.is_empty() {
            self.summary.late += late.len() as u64;
            if let Some(sink) = self.late_sinks[step] {
                self.summary.late_to_sink += late.len() as u64;
                self.send(sink, late);
            }
        }
        if let Some(sink) = self.writes_lines[step] {
            if let Some((lines, n)) = self.operators[step].take_lines() {
                self.counts.step_out[step] += n;
                self.post(sink, SinkMessage::Lines(lines), n);
            }
        }
        self.counts.step_out[step] += out.len() as u64;
        if out.is_empty() {
            return Ok(());
        }
        let consumers = self.step_consumers[step].clone();
        let Some(keyed) = self.keyed.as_mut().filter(|k| k.feeds(step)) else {
            return self.deliver(&consumers, out);
        };
        // A `key_by` before the keyed instances: its records go to them (and to any
        // sink reading it here).
        if consumers.is_empty() {
            return keyed.route(step, out);
        }
        keyed.route(step, out.clone())?;
        self.deliver(&consumers, out)
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
        self.sinks.iter().enumerate().all(|(i, s)| s.is_none() || !self.counted[i])
    }

    fn deliver(&mut self, consumers: &[NodeRef], batch: Batch) -> Result<()> {
        let Some((last, rest)) = consumers.split_last() else { return Ok(()) };
        for c in rest {
            self.deliver_one(*c, batch.clone())?;
        }
        self.deliver_one(*last, batch)
    }

    fn deliver_one(&mut self, node: NodeRef, batch: Batch) -> Result<()> {
        match node {
            NodeRef::Step(i) => {
                self.counts.step_in[i] += batch.len() as u64;
                if self.operators[i].passes_through() {
                    return self.emit(i, batch);
                }
                let mut out = Vec::with_capacity(batch.len());
                for record in batch {
                    if let Err(e) = self.operators[i].process(record, &mut out) {
                        let failure = RecordFailure {
                            origin: e.record.origin,
                            step: Some(self.labels[i].clone()),
                            input: e.record.to_map_value(),
                            error: e.error.message,
                        };
                        self.failure(failure)?;
                    }
                }
                self.emit(i, out)
            }
            NodeRef::Sink(i) => {
                self.send(i, batch);
                Ok(())
            }
            NodeRef::Source(_) => Ok(()),
        }
    }

    fn send(&mut self, sink: usize, batch: Batch) {
        let n = batch.len() as u64;
        if self.sinks[sink].is_none() {
            return;
        }
        let message = match self.encoders.get_mut(sink).and_then(Option::as_mut) {
            Some(lines) => {
                let mut text = String::with_capacity(batch.len() * 64);
                for record in &batch {
                    lines.encode(record, &mut text);
                }
                drop(batch);
                SinkMessage::Lines(text)
            }
            None => SinkMessage::Batch(batch),
        };
        self.post(sink, message, n);
    }

    /// Sends `n` records (or their lines) to a sink, noticing a sink that has ended.
    fn post(&mut self, sink: usize, message: SinkMessage, n: u64) {
        if self.sinks[sink].is_none() || self.stalled.is_some() {
            return;
        }
        match self.send_or_signal(sink, message) {
            Ok(true) => {
                self.counts.sinks[sink] += n;
                if self.counted[sink] {
                    self.summary.records_out += n;
                }
                return;
            }
            Ok(false) => return,
            Err(_) => {}
        }
        // The sink thread has ended: closed reader or failure.
        if self.threads[sink].is_some() {
            if let Some(e) = self.sink_ended(sink) {
                self.sink_failure = Some(e);
            }
        }
        self.sinks[sink] = None;
    }

    pub(super) fn failure(&mut self, f: RecordFailure) -> Result<()> {
        match self.on_error {
            OnError::Fail => Err(self.names.fail(&f)),
            OnError::Skip => {
                self.summary.skipped += 1;
                Ok(())
            }
            OnError::Sink(sink) => {
                self.summary.failed += 1;
                let record: Record = self.names.to_record(f);
                self.send(sink, vec![record]);
                Ok(())
            }
        }
    }

    /// Ends the run: on success every sink commits; on failure every sink aborts.
    pub fn finish(mut self, outcome: Result<()>) -> Result<RunSummary> {
        if let Err(Error::Interrupted(code)) = outcome {
            self.summary.interrupted = Some(code);
        }
        let failure = match outcome {
            Err(Error::Interrupted(_)) => None,
            other => other.err(),
        }
        .or(self.sink_failure.take());
        // Keyed instances hold sink senders: they stop before the sinks end.
        let failure = match self.keyed.as_mut().and_then(Instances::stop) {
            Some(e) => failure.or(Some(e)),
            None => failure,
        };
        let interrupted = self.summary.interrupted.is_some();
        // The error sink ends last: other sinks may still hand it rows their targets
        // reject while they commit.
        let error_sink = match self.on_error {
            OnError::Sink(sink) => Some(sink),
            _ => None,
        };
        let mut order: Vec<usize> = (0..self.sinks.len()).filter(|i| Some(*i) != error_sink).collect();
        order.extend(error_sink);
        let mut first_error = failure;
        for i in order {
            if let Some(tx) = self.sinks[i].take() {
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
        self.summary.records_in = totals.records_in;
        self.summary.records_out = totals.records_out;
        self.summary.late = totals.late;
        self.summary.late_to_sink = totals.late_to_sink;
        self.summary.skipped = totals.skipped;
        self.summary.failed = totals.failed;
        self.summary.peak_open_windows = totals.peak_open_windows.iter().flatten().max().copied();
        if let Some(cp) = &self.checkpointing {
            self.summary.checkpoints = Some((cp.written, cp.epoch, cp.bytes, cp.longest));
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(self.summary),
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

impl KeyedSteps for Executor {
    fn deliver_from(&mut self, step: usize, batch: Batch) -> Result<()> {
        Executor::deliver_from(self, step, batch)
    }

    fn advance_watermark(&mut self, watermark: i64) -> Result<()> {
        Executor::advance_watermark(self, watermark)
    }

    fn end_steps(&mut self) -> Result<()> {
        Executor::end_steps(self)
    }

    fn snapshot_states(&self) -> Vec<serde_json::Value> {
        Executor::snapshot_states(self)
    }

    fn stats(&self) -> Stats {
        Executor::stats(self)
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
