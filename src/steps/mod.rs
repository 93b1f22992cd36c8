//! Operators: the runtime instances of steps. Stateless steps implement only
//! [`Operator::process`]; stateful ones (windows, reduce) add the hooks.

mod drop;
mod filter;
mod flat_map;
mod map;
mod set;

use crate::expr::EvalError;
use crate::record::{Batch, Record};
use crate::validate::CompiledStep;

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

    /// Called once when every input has ended, to emit what the step still holds.
    fn on_end(&mut self, _out: &mut Batch) {}
}

/// Builds the operator of a compiled step; `None` for kinds the runtime does not run
/// yet (the run refuses such pipelines before this is called).
pub fn build(step: &CompiledStep) -> Option<Box<dyn Operator>> {
    Some(match step {
        CompiledStep::Filter(e) => Box::new(filter::Filter::new(e.clone())),
        CompiledStep::Map { schema, exprs } => Box::new(map::Map::new(schema.clone(), exprs.clone())),
        CompiledStep::Set { assignments } => Box::new(set::Set::new(assignments.clone())),
        CompiledStep::Drop(names) => Box::new(drop::Drop::new(names.clone())),
        CompiledStep::FlatMap { each, as_field } => Box::new(flat_map::FlatMap::new(each.clone(), as_field.clone())),
        CompiledStep::KeyBy { .. } | CompiledStep::Window(_) | CompiledStep::Reduce { .. } => return None,
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
    ) -> &L {
        let hit = matches!(&self.last, Some((s, _)) if std::sync::Arc::ptr_eq(s, input));
        if !hit {
            self.last = Some((input.clone(), make(input)));
        }
        match &self.last {
            Some((_, layout)) => layout,
            None => unreachable!("layout cache was just filled"),
        }
    }
}
