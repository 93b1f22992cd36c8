//! Runs steps of a plan on one thread: each batch is pushed through the operators
//! that read it (direct calls, in topological order; fan-out clones the batch, which
//! shares its strings) and on to the sink channels. One role, played three times: the
//! executor's own steps (`executor.rs`), each keyed instance (`keyed.rs`) and each
//! worker of a run split by data (`split.rs`) is a `StepRunner`.
//!
//! A runner sends to sinks but does not own their threads: a sink it finds gone is
//! noted ([`StepRunner::take_gone`]) for the executor, which joins the thread and
//! learns why.

use super::errors::{OriginNames, RecordFailure};
use super::keyed::{Instances, KeyedSteps, Stats};
use super::lane_steps::LaneCounts;
use super::{RunSummary, SinkMessage};
use crate::error::{Error, Result};
use crate::graph::NodeRef;
use crate::plan::physical::OnError;
use crate::plan::LogicalPlan as Plan;
use crate::record::{Batch, Record};
use crate::sinks::encode::LineEncoder;
use crate::sources::BadRecord;
use crate::steps::CompiledStep;
use crate::steps::{self, Operator};
use crossbeam_channel::Sender;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a send to a sink waits before looking for a signal.
const SIGNAL_CHECK: Duration = Duration::from_millis(100);

/// How long a sink may take nothing (or not answer a final checkpoint) after a signal.
pub(super) const SIGNAL_GRACE: Duration = Duration::from_secs(2);

/// Records per source, per step (in and out) and per sink, for metrics.
#[derive(Default)]
pub(super) struct Counts {
    pub sources: Vec<u64>,
    /// Per source: input that could not be decoded (counted as read, as in the
    /// summary, also when the lanes count what they read themselves).
    pub undecodable: Vec<u64>,
    pub step_in: Vec<u64>,
    pub step_out: Vec<u64>,
    pub sinks: Vec<u64>,
}

pub struct StepRunner {
    operators: Vec<Box<dyn Operator>>,
    labels: Vec<String>,
    /// The steps this runner runs, in topological order.
    order: Vec<usize>,
    source_consumers: Vec<Vec<NodeRef>>,
    step_consumers: Vec<Vec<NodeRef>>,
    sinks: Vec<Option<Sender<SinkMessage>>>,
    /// Sinks found gone since the executor last asked.
    gone: Vec<usize>,
    /// Sinks counted in "out" (not the error or late sinks).
    counted: Vec<bool>,
    /// Per step: the sink receiving its late records.
    late_sinks: Vec<Option<usize>>,
    on_error: OnError,
    names: OriginNames,
    pub(super) summary: RunSummary,
    pub(super) counts: Counts,
    /// The parallel keyed instances running the steps after `key_by` (None: this
    /// runner runs every step itself, or it is one of the instances).
    keyed: Option<Instances>,
    /// Per step: whether parallel instances run it (then this runner's operator for it
    /// stays unused).
    keyed_steps: Vec<bool>,
    /// The head steps the source lanes run, and their counts.
    head: Option<(Vec<usize>, Arc<LaneCounts>)>,
    /// Per sink: the line format this runner encodes its records in before sending
    /// them; None: records are sent as they are.
    encoders: Vec<Option<LineEncoder>>,
    /// Per step: the sink whose lines it writes itself (`Operator::write_lines`).
    writes_lines: Vec<Option<usize>>,
    /// SIGINT / SIGTERM: the exit code once one arrived (0 before).
    signal: Arc<AtomicUsize>,
    /// A signal arrived and a sink then took nothing for [`SIGNAL_GRACE`] (a reader
    /// that stopped reading, a database away): the exit code. Later output is dropped
    /// and the run ends without a final checkpoint; the last one stays the place to
    /// resume from.
    stalled: Option<i32>,
    /// When a signal was first seen while waiting for a sink.
    signal_seen: Option<Instant>,
}

impl StepRunner {
    /// Runs every step of `plan`, sending to `sinks`.
    pub fn new(
        plan: &Plan,
        on_error: OnError,
        names: OriginNames,
        sinks: Vec<Option<Sender<SinkMessage>>>,
    ) -> Result<StepRunner> {
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
        Ok(StepRunner {
            operators,
            labels: p.step_names.iter().map(|n| n.label.clone()).collect(),
            order: p.graph.step_order.clone(),
            source_consumers: (0..p.sources.len()).map(|i| p.graph.consumers(NodeRef::Source(i))).collect(),
            step_consumers: (0..p.steps.len()).map(|i| p.graph.consumers(NodeRef::Step(i))).collect(),
            gone: Vec::new(),
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
            counts: Counts {
                sources: vec![0; p.sources.len()],
                undecodable: vec![0; p.sources.len()],
                step_in: vec![0; p.steps.len()],
                step_out: vec![0; p.steps.len()],
                sinks: vec![0; sinks.len()],
            },
            sinks,
            on_error,
            names,
            summary: RunSummary::default(),
            keyed: None,
            keyed_steps: vec![false; p.steps.len()],
            head: None,
            encoders: Vec::new(),
            writes_lines: vec![None; p.steps.len()],
            signal: Arc::new(AtomicUsize::new(0)),
            stalled: None,
            signal_seen: None,
        })
    }

    /// Where SIGINT / SIGTERM are noted (the exit code), so that a send to a sink that
    /// takes nothing gives way to them.
    pub fn watch_signals(&mut self, signal: Arc<AtomicUsize>) {
        self.signal = signal;
    }

    /// The exit code of a signal that arrived over [`SIGNAL_GRACE`] ago while this
    /// runner waited for a sink: a sink slow to take or answer gets that long.
    pub(super) fn signal_outwaited(&mut self) -> Option<i32> {
        let code = match self.signal.load(Ordering::Relaxed) {
            0 => return None,
            code => code as i32,
        };
        let since = *self.signal_seen.get_or_insert_with(Instant::now);
        (since.elapsed() >= SIGNAL_GRACE).then_some(code)
    }

    /// The exit code of a signal a sink outwaited (see [`StepRunner::signal_outwaited`]).
    pub(super) fn stalled(&self) -> Option<i32> {
        self.stalled
    }

    /// Notes that a sink outwaited a signal.
    pub(super) fn stall(&mut self, code: i32) {
        self.stalled = Some(code);
    }

    /// Sends to a sink's channel, giving way to a signal while the sink takes nothing:
    /// Err(message) when the sink thread has gone, Ok(false) when a signal stopped the
    /// wait (the message is dropped).
    pub(super) fn send_or_signal(
        &mut self,
        sink: usize,
        message: SinkMessage,
    ) -> std::result::Result<bool, SinkMessage> {
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

    /// The sink channels (None: the sink has gone).
    pub(super) fn sinks(&self) -> &[Option<Sender<SinkMessage>>] {
        &self.sinks
    }

    /// Stops sending to sink `i` (it has gone); returns its sender.
    pub(super) fn close_sink(&mut self, i: usize) -> Option<Sender<SinkMessage>> {
        self.sinks[i].take()
    }

    /// The sinks found gone since the last call.
    pub(super) fn take_gone(&mut self) -> Vec<usize> {
        std::mem::take(&mut self.gone)
    }

    pub(super) fn all_closed(&self) -> bool {
        self.sinks.iter().enumerate().all(|(i, s)| s.is_none() || !self.counted[i])
    }

    /// The steps `head` (a chain read by every source) run on the source lanes: the
    /// sources' records go straight to the readers of the last of them.
    pub fn run_head_on_lanes(&mut self, head: Vec<usize>, counts: Arc<LaneCounts>) {
        let Some(&last) = head.last() else { return };
        self.order.retain(|i| !head.contains(i));
        let readers = self.step_consumers[last].clone();
        for consumers in &mut self.source_consumers {
            *consumers = readers.clone();
        }
        self.head = Some((head, counts));
    }

    /// A runner for one keyed instance: it runs only the steps marked in `keyed`, fed
    /// by the `key_by` steps in `exchanges`, and encodes its records for the sinks in
    /// `encoders`. This runner stops running them and hands those `key_by` steps'
    /// output to [`StepRunner::run_keyed_on`]'s instances instead.
    pub(super) fn instance(
        &self,
        plan: &Plan,
        keyed: &[bool],
        exchanges: &[usize],
        encoders: &[Option<LineEncoder>],
    ) -> Result<StepRunner> {
        let is_keyed = |r: &NodeRef| matches!(r, NodeRef::Step(j) if keyed[*j]);
        let mut runner = StepRunner::new(plan, self.on_error, self.names.clone(), self.sinks.clone())?;
        runner.encoders = encoders.to_vec();
        runner.signal = self.signal.clone();
        runner.order.retain(|i| keyed[*i]);
        for &k in exchanges {
            runner.step_consumers[k].retain(is_keyed);
        }
        runner.offer_lines();
        Ok(runner)
    }

    /// The steps marked in `keyed` run elsewhere (keyed instances, or a split run's
    /// workers), fed by the `key_by` steps in `exchanges`.
    pub(super) fn hand_over(&mut self, keyed: Vec<bool>, exchanges: &[usize]) {
        let is_keyed = |r: &NodeRef| matches!(r, NodeRef::Step(j) if keyed[*j]);
        self.order.retain(|i| !keyed[*i]);
        for &k in exchanges {
            self.step_consumers[k].retain(|r| !is_keyed(r));
        }
        self.keyed_steps = keyed;
    }

    /// The keyed steps run on `instances`.
    pub(super) fn run_keyed_on(&mut self, instances: Instances) {
        self.keyed = Some(instances);
    }

    pub(super) fn keyed(&self) -> Option<&Instances> {
        self.keyed.as_ref()
    }

    /// Stops the keyed instances (see [`Instances::stop`]).
    pub(super) fn stop_instances(&mut self) -> Option<Error> {
        self.keyed.as_mut().and_then(Instances::stop)
    }

    /// Whether parallel instances (or workers) run step `i`.
    pub(super) fn is_keyed(&self, i: usize) -> bool {
        self.keyed_steps[i]
    }

    pub(super) fn operator(&self, i: usize) -> &dyn Operator {
        self.operators[i].as_ref()
    }

    pub(super) fn operator_mut(&mut self, i: usize) -> &mut Box<dyn Operator> {
        &mut self.operators[i]
    }

    pub(super) fn step_count(&self) -> usize {
        self.operators.len()
    }

    pub(super) fn label(&self, i: usize) -> &str {
        &self.labels[i]
    }

    /// A checkpoint barrier through the keyed instances: per instance, every step's
    /// state (None: no instances). Once they answer, their output before the barrier
    /// is in the sink channels.
    pub(super) fn barrier_instances(&mut self) -> Result<Option<Vec<Vec<serde_json::Value>>>> {
        self.keyed.as_mut().map(Instances::barrier).transpose()
    }

    /// This runner's own counts, with those of the steps the source lanes run.
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

    /// What the lanes of source `i` have read, when they run the head steps and count
    /// it themselves.
    pub(super) fn read_by_lanes(&self, i: usize) -> Option<u64> {
        let (_, counts) = self.head.as_ref()?;
        Some(counts.sources[i].load(Ordering::Acquire))
    }

    /// A batch of source `source`'s records (`inputs` inputs read, `failures` among
    /// them), run through the steps reading the source.
    pub(super) fn take_batch(
        &mut self,
        source: usize,
        records: Batch,
        inputs: u64,
        failures: Vec<RecordFailure>,
    ) -> Result<()> {
        self.summary.records_in += inputs;
        self.counts.sources[source] += inputs;
        let consumers = self.source_consumers[source].clone();
        self.deliver(&consumers, records)?;
        for f in failures {
            self.failure(f)?;
        }
        Ok(())
    }

    /// Lines a lane of source `source` encoded for `sink` (`inputs` read, `records`
    /// written), posted to the sink.
    pub(super) fn take_lines(&mut self, source: usize, sink: usize, text: String, inputs: u64, records: u64) {
        self.summary.records_in += inputs;
        self.counts.sources[source] += inputs;
        self.post(sink, SinkMessage::Lines(text), records);
    }

    /// Input that could not be decoded.
    pub(super) fn take_bad(&mut self, bad: Vec<BadRecord>) -> Result<()> {
        self.summary.records_in += bad.len() as u64;
        for b in &bad {
            if let Some(n) = self.counts.undecodable.get_mut(b.origin.source as usize) {
                *n += 1;
            }
        }
        for b in bad {
            self.failure(RecordFailure::from(b))?;
        }
        Ok(())
    }

    /// Records leaving step `step` on another thread (a `key_by` before keyed
    /// instances), handed to this runner's consumers of it.
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

    /// Every step's state (null for the steps this runner does not run).
    pub(super) fn snapshot_states(&self) -> Vec<serde_json::Value> {
        (0..self.operators.len())
            .map(|i| if self.order.contains(&i) { self.operators[i].snapshot() } else { serde_json::Value::Null })
            .collect()
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

    /// Lets each step this runner runs whose only reader is a sink it encodes lines
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

    /// Sends `n` records (or their lines) to a sink, noting a sink that has gone.
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
            }
            Ok(false) => {}
            // The sink thread has ended: closed reader or failure.
            Err(_) => {
                self.sinks[sink] = None;
                self.gone.push(sink);
            }
        }
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
}

impl KeyedSteps for StepRunner {
    fn deliver_from(&mut self, step: usize, batch: Batch) -> Result<()> {
        StepRunner::deliver_from(self, step, batch)
    }

    fn advance_watermark(&mut self, watermark: i64) -> Result<()> {
        StepRunner::advance_watermark(self, watermark)
    }

    fn end_steps(&mut self) -> Result<()> {
        StepRunner::end_steps(self)
    }

    fn snapshot_states(&self) -> Vec<serde_json::Value> {
        StepRunner::snapshot_states(self)
    }

    fn stats(&self) -> Stats {
        StepRunner::stats(self)
    }
}
