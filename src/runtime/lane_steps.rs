//! The stateless steps at the head of a pipeline (filter, map, set, drop, flat_map
//! reading every source), run on each source lane's own thread, so that they run in
//! parallel over Kafka partitions and sources, on records still hot in that core's
//! cache, and dropped records never cross threads.
//!
//! Watermarks stay those of one thread: every record a source reads advances its
//! watermark, including records these steps drop or fail on. So the lane sends, in
//! input order, for every input record either its outputs, or a *tick* (dropped: its
//! event time and origin only), or a *failure* marker; the merge advances the
//! watermark on each, stamps all outputs of one input with the watermark before that
//! input (outputs share their input's origin), never splits an input's outputs across
//! batches, and hands failures to the `on_error` policy.

use super::errors::RecordFailure;
use crate::expr::Expr;
use crate::record::{Origin, Record, Schema, SchemaMaker, Value};
use crate::steps::Operator;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

/// The steps one lane runs, with counters shared by every lane (records in and out
/// per step, for the summary and metrics).
pub struct LaneSteps {
    steps: Vec<(usize, String, Box<dyn Operator>)>,
    /// The steps' predicates, when every step is a filter: records are then judged
    /// where they lie and replaced by their markers when dropped or failed.
    filters: Option<Vec<Expr>>,
    counts: Arc<LaneCounts>,
    current: Vec<Record>,
    next: Vec<Record>,
    /// The marker schemas, as this lane makes them (see [`SchemaMaker`]).
    tick: SchemaMaker,
    failure: SchemaMaker,
}

/// Per source, records the lanes read; per step index, records in and out; summed
/// over lanes. A source's count grows before its steps' (metrics never show a step
/// ahead of its source).
#[derive(Default)]
pub struct LaneCounts {
    pub sources: Vec<AtomicU64>,
    pub step_in: Vec<AtomicU64>,
    pub step_out: Vec<AtomicU64>,
}

impl LaneCounts {
    pub fn new(sources: usize, steps: usize) -> LaneCounts {
        let zeros = |n: usize| (0..n).map(|_| AtomicU64::new(0)).collect();
        LaneCounts { sources: zeros(sources), step_in: zeros(steps), step_out: zeros(steps) }
    }
}

fn tick_schema() -> &'static Arc<Schema> {
    static TICK: OnceLock<Arc<Schema>> = OnceLock::new();
    TICK.get_or_init(|| Schema::new(Vec::new()))
}

fn failure_schema() -> &'static Arc<Schema> {
    static FAILURE: OnceLock<Arc<Schema>> = OnceLock::new();
    FAILURE.get_or_init(|| Schema::from_names(&["step", "input", "error"]))
}

/// What a lane sends for an input record that left no output.
pub enum Marker {
    /// Dropped by a step: only its event time counts.
    Tick,
    /// A step failed on it.
    Failure(RecordFailure),
}

/// Whether the record is a tick (an input a step dropped).
pub fn is_tick(record: &Record) -> bool {
    Schema::same(record.schema(), tick_schema())
}

/// Whether the record is a failure marker.
pub fn is_failure(record: &Record) -> bool {
    Schema::same(record.schema(), failure_schema())
}

/// The marker a record stands for, if it is one.
pub fn marker(record: &Record) -> Option<Marker> {
    if is_tick(record) {
        return Some(Marker::Tick);
    }
    if !is_failure(record) {
        return None;
    }
    let [Value::Str(step), input, Value::Str(error)] = record.values() else { return None };
    Some(Marker::Failure(RecordFailure {
        origin: record.origin,
        step: Some(step.to_string()),
        input: input.clone(),
        error: error.to_string(),
    }))
}

fn marked(schema: Arc<Schema>, values: Vec<Value>, origin: Origin, event_time: Option<i64>) -> Record {
    let mut r = Record::new(schema, values);
    r.origin = origin;
    r.event_time = event_time;
    r
}

impl LaneSteps {
    /// `steps`: (step index, label, operator) in order.
    pub fn new(steps: Vec<(usize, String, Box<dyn Operator>)>, counts: Arc<LaneCounts>) -> LaneSteps {
        let filters = steps.iter().map(|(_, _, op)| op.predicate().cloned()).collect();
        LaneSteps {
            steps,
            filters,
            counts,
            current: Vec::new(),
            next: Vec::new(),
            tick: SchemaMaker::new(tick_schema()),
            failure: SchemaMaker::new(failure_schema()),
        }
    }

    /// Runs the steps over a batch (left empty), appending to `out` for each input
    /// record its outputs, a tick or failure markers.
    pub fn run(&mut self, batch: &mut Vec<Record>, out: &mut Vec<Record>) {
        if let Some(source) = batch.first().and_then(|r| self.counts.sources.get(r.origin.source as usize)) {
            source.fetch_add(batch.len() as u64, Ordering::Release);
        }
        let mut counted = vec![(0u64, 0u64); self.steps.len()];
        if self.filters.is_some() {
            self.filter_in_place(batch, &mut counted);
            out.append(batch);
        } else {
            self.run_through(batch, out, &mut counted);
        }
        self.count(counted);
    }

    /// A chain of filters: each record is judged where it lies and overwritten by its
    /// tick or failure marker when a filter drops it or fails on it.
    fn filter_in_place(&mut self, batch: &mut [Record], counted: &mut [(u64, u64)]) {
        let Some(filters) = &self.filters else { return };
        for record in batch.iter_mut() {
            for (k, predicate) in filters.iter().enumerate() {
                counted[k].0 += 1;
                let failure = match predicate.eval_predicate(record) {
                    Ok(true) => {
                        counted[k].1 += 1;
                        continue;
                    }
                    Ok(false) => None,
                    Err(e) => Some(vec![Value::str(&self.steps[k].1), record.to_map_value(), Value::str(&e.message)]),
                };
                let (origin, event_time) = (record.origin, record.event_time);
                *record = match failure {
                    None => marked(self.tick.for_record(), Vec::new(), origin, event_time),
                    Some(values) => marked(self.failure.for_record(), values, origin, event_time),
                };
                break;
            }
        }
    }

    /// Moves each record through the steps in turn.
    fn run_through(&mut self, batch: &mut Vec<Record>, out: &mut Vec<Record>, counted: &mut [(u64, u64)]) {
        let last = self.steps.len().saturating_sub(1);
        for record in batch.drain(..) {
            let (origin, event_time) = (record.origin, record.event_time);
            let produced = out.len();
            // The first step reads the record itself, each step writes into `next`
            // and the last one straight into `out`: a record is moved as few times as
            // the steps need. Failure markers and outputs of one input stay together.
            let mut first = Some(record);
            for (k, (_, label, op)) in self.steps.iter_mut().enumerate() {
                let to_out = k == last;
                let before = out.len();
                let mut failed = 0;
                for r in first.take().into_iter().chain(self.current.drain(..)) {
                    counted[k].0 += 1;
                    let target = if to_out { &mut *out } else { &mut self.next };
                    if let Err(e) = op.process(r, target) {
                        let values = vec![Value::str(label), e.record.to_map_value(), Value::str(&e.error.message)];
                        out.push(marked(self.failure.for_record(), values, e.record.origin, event_time));
                        failed += 1;
                    }
                }
                if to_out {
                    counted[k].1 += (out.len() - before - failed) as u64;
                } else {
                    counted[k].1 += self.next.len() as u64;
                    std::mem::swap(&mut self.current, &mut self.next);
                }
            }
            // Without steps the record passes as it is.
            out.extend(first);
            if out.len() == produced {
                out.push(marked(self.tick.for_record(), Vec::new(), origin, event_time));
            }
        }
    }

    /// Adds records in and out per step to the counts every lane shares.
    fn count(&self, counted: Vec<(u64, u64)>) {
        for ((step, _, _), (i, o)) in self.steps.iter().zip(counted) {
            self.counts.step_in[*step].fetch_add(i, Ordering::Release);
            self.counts.step_out[*step].fetch_add(o, Ordering::Release);
        }
    }
}
