//! Operators: the runtime instances of steps. Stateless steps implement only
//! [`Operator::process`]; stateful ones (windows, reduce) add the hooks.

pub mod aggregate;
pub mod component;
mod dedup;
mod drop;
mod filter;
mod flat_map;
pub mod key;
mod live_keys;
mod map;
mod panes;
mod passthrough;
pub mod reduce;
pub mod registry;
mod results;
mod set;
pub mod window;
mod window_queue;

use crate::expr::EvalError;
use crate::expr::Expr;
use crate::record::{Batch, Record};
use crate::sinks::encode::LineEncoder;
use aggregate::Aggregate;
use component::BuiltStep;
use std::sync::Arc;

/// A step ready to run.
#[derive(Clone, Debug)]
pub enum CompiledStep {
    KeyBy {
        names: Vec<Arc<str>>,
        exprs: Vec<Expr>,
    },
    Window(window::WindowConfig),
    /// `keys`/`key_exprs` come from the `key_by` before it (empty: one global key),
    /// `window` from the `window` before it (with that step's index, for `late:`);
    /// `fingerprint` is [`reduce::fingerprint`] of the aggregates as written.
    Reduce {
        aggregates: Vec<Aggregate>,
        keys: Vec<Arc<str>>,
        key_exprs: Vec<Expr>,
        window: Option<window::WindowConfig>,
        window_step: Option<usize>,
        fingerprint: String,
    },
    /// A step defined whole in its own file (`steps/component.rs`).
    Component(Arc<dyn BuiltStep>),
}

impl CompiledStep {
    /// Every expression the step evaluates on its input records.
    pub fn exprs(&self) -> Vec<&Expr> {
        match self {
            CompiledStep::KeyBy { exprs, .. } => exprs.iter().collect(),
            CompiledStep::Window(_) => Vec::new(),
            CompiledStep::Reduce { aggregates, key_exprs, .. } => {
                aggregates.iter().filter_map(|a| a.arg.as_ref()).chain(key_exprs).collect()
            }
            CompiledStep::Component(c) => c.exprs(),
        }
    }

    /// What decides the meaning of the step's saved state: a checkpoint's state is
    /// restored only into a step with the same fingerprint. Stable across versions
    /// (checkpoints written by earlier ones compare against it; the committed v1
    /// checkpoint's test holds it); not the text `flowctl plan` prints.
    pub fn fingerprint(&self) -> String {
        match self {
            CompiledStep::KeyBy { exprs, .. } => exprs.iter().map(Expr::text).collect::<Vec<_>>().join(", "),
            CompiledStep::Window(w) => w.fingerprint(),
            CompiledStep::Reduce { fingerprint, .. } => fingerprint.clone(),
            CompiledStep::Component(c) => c.fingerprint(),
        }
    }

    /// Whether it keeps nothing between records (it may run on the source lanes).
    pub fn stateless(&self) -> bool {
        matches!(self, CompiledStep::Component(c) if c.stateless())
    }

    /// Whether the step's output records are new ones made of its expressions (`map`,
    /// `reduce`), carrying none of its input's other fields.
    pub fn makes_new_records(&self) -> bool {
        match self {
            CompiledStep::Reduce { .. } => true,
            CompiledStep::Component(c) => c.makes_new_records(),
            _ => false,
        }
    }
}

/// A record that a step could not process, handed back with the reason so the
/// runtime can apply the pipeline's `on_error` policy to it.
#[derive(Debug)]
pub struct StepError {
    pub error: EvalError,
    pub record: Record,
}

/// One step at run time.
pub trait Operator: Send {
    /// Processes one record, appending any output to `out`. Called in input order on
    /// the operator's own thread; must not block.
    fn process(&mut self, record: Record, out: &mut Batch) -> Result<(), StepError>;

    /// Called when the watermark (event-time progress over all sources) advances,
    /// also when no record reached this step; stateful steps fire what is complete.
    fn on_watermark(&mut self, _watermark: i64, _out: &mut Batch) {}

    /// Called once when every input has ended (after a final watermark of +infinity),
    /// to emit what the step still holds.
    fn on_end(&mut self, _out: &mut Batch) {}

    /// Records that arrived too late for their windows since the last call.
    fn take_late(&mut self) -> Vec<Record> {
        Vec::new()
    }

    /// Offers the step the line format of the one sink that reads its outputs, when
    /// the thread running it encodes that sink's lines: a step that accepts (true)
    /// writes its outputs as lines from then on, without making records, and hands
    /// them on through [`Operator::take_lines`].
    fn write_lines(&mut self, _format: LineEncoder) -> bool {
        false
    }

    /// The lines written since the last call, and how many there are.
    fn take_lines(&mut self) -> Option<(String, u64)> {
        None
    }

    /// The most windows this step held open at once (windowed steps only).
    fn peak_open_windows(&self) -> Option<usize> {
        None
    }

    /// The predicate of a step that only keeps or drops records (`filter`): a thread
    /// running a chain of such steps judges each record where it lies, without moving it.
    fn predicate(&self) -> Option<&crate::expr::Expr> {
        None
    }

    /// Whether every record leaves unchanged (the executor then hands on whole
    /// batches without calling `process`).
    fn passes_through(&self) -> bool {
        false
    }

    /// How much state the step holds now: keys (rolling reduce) or open windows; None
    /// for stateless steps.
    fn state_entries(&self) -> Option<usize> {
        None
    }

    /// The step's state for a checkpoint (null: stateless). Called between batches.
    fn snapshot(&self) -> serde_json::Value {
        serde_json::Value::Null
    }

    /// Takes back the state of `snapshot`, before any record is processed.
    fn restore(&mut self, _state: serde_json::Value) -> Result<(), String> {
        Ok(())
    }

    /// Re-splits the states that `parts.len()` parallel instances saved into the
    /// states of `n` instances, each holding the keys that [`key::Key::instance`]
    /// gives it. Keyed steps override this; the rest hold no state.
    fn rescale(&self, parts: Vec<serde_json::Value>, n: usize) -> Result<Vec<serde_json::Value>, String> {
        if parts.len() == n {
            return Ok(parts);
        }
        if parts.iter().all(serde_json::Value::is_null) {
            return Ok(vec![serde_json::Value::Null; n]);
        }
        Err(format!("its state was saved by {} parallel instances and cannot be split for {n}", parts.len()))
    }
}

/// Builds the operator of a compiled step; `None` for kinds the runtime does not run
/// yet (the run refuses such pipelines before this is called).
pub fn build(step: &CompiledStep) -> Option<Box<dyn Operator>> {
    Some(match step {
        // The key and the windows are computed by the `reduce` that follows them.
        CompiledStep::KeyBy { .. } | CompiledStep::Window(_) => Box::new(passthrough::Passthrough),
        CompiledStep::Reduce { aggregates, keys, key_exprs, window: None, .. } => {
            Box::new(reduce::RollingReduce::new(keys.clone(), key_exprs.clone(), aggregates.clone()))
        }
        CompiledStep::Reduce { aggregates, keys, key_exprs, window: Some(w), .. } => Box::new(
            window::WindowReduce::new(keys.clone(), key_exprs.clone(), aggregates.clone(), &w.kind, w.allowed_lateness),
        ),
        CompiledStep::Component(c) => c.operator(),
    })
}

/// Output layout for records whose schema is derived from the input's: computed once
/// per distinct input schema (usually once per run) rather than per record.
pub(crate) struct LayoutCache<L> {
    last: Option<(std::sync::Arc<crate::record::Schema>, L)>,
}

impl<L> Default for LayoutCache<L> {
    fn default() -> Self {
        LayoutCache { last: None }
    }
}

impl<L> LayoutCache<L> {
    pub(crate) fn get(
        &mut self,
        input: &std::sync::Arc<crate::record::Schema>,
        make: impl FnOnce(&std::sync::Arc<crate::record::Schema>) -> L,
    ) -> &mut L {
        let hit = matches!(&self.last, Some((s, _)) if crate::record::Schema::same(s, input));
        if !hit {
            self.last = Some((input.clone(), make(input)));
        }
        match &mut self.last {
            Some((_, layout)) => layout,
            None => unreachable!("layout cache was just filled"),
        }
    }
}
