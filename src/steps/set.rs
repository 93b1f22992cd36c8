//! `set`: adds or overwrites fields and keeps the rest. Every expression sees the
//! input record; an overwritten field keeps its position, a new one is appended.

use super::{LayoutCache, Operator, StepError};
use crate::expr::Expr;
use crate::record::{Batch, Record, Schema, SchemaMaker};
use std::sync::Arc;

pub struct Set {
    assignments: Vec<(Arc<str>, Expr)>,
    layouts: LayoutCache<Layout>,
}

/// For one input schema: the output schema and, per assignment, the output position.
struct Layout {
    schema: SchemaMaker,
    targets: Vec<usize>,
}

impl Set {
    pub fn new(assignments: Vec<(Arc<str>, Expr)>) -> Set {
        Set { assignments, layouts: LayoutCache::default() }
    }
}

fn layout(input: &Schema, assignments: &[(Arc<str>, Expr)]) -> Layout {
    let mut names = input.names().to_vec();
    let targets = assignments
        .iter()
        .map(|(name, _)| match names.iter().position(|n| n == name) {
            Some(i) => i,
            None => {
                names.push(name.clone());
                names.len() - 1
            }
        })
        .collect();
    Layout { schema: SchemaMaker::new(&Schema::new(names)), targets }
}

impl Operator for Set {
    fn process(&mut self, record: Record, out: &mut Batch) -> Result<(), StepError> {
        let mut computed = Vec::with_capacity(self.assignments.len());
        for (_, e) in &self.assignments {
            match e.eval(&record) {
                Ok(v) => computed.push(v),
                Err(error) => return Err(StepError { error, record }),
            }
        }
        let assignments = &self.assignments;
        let layout = self.layouts.get(record.schema(), |s| layout(s, assignments));
        let schema = layout.schema.for_record();
        let mut values = record.values().to_vec();
        values.resize(schema.len(), crate::record::Value::Null);
        for (target, v) in layout.targets.iter().zip(computed) {
            values[*target] = v;
        }
        out.push(record.with_fields(schema, values));
        Ok(())
    }
}
