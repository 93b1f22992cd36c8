//! `set`: adds or overwrites fields and keeps the rest. Every expression sees the
//! input record; an overwritten field keeps its position, a new one is appended.

use super::component::{BuiltStep, Compiled, Output, Relational, StepConfig, StepInput, StepType};
use super::{LayoutCache, Operator, StepError};
use crate::diag::Diagnostics;
use crate::expr::Expr;
use crate::record::{Batch, Record, Schema, SchemaMaker};
use crate::spec::fields::{f, Ty};
use crate::spec::model::StepReader;
use crate::spec::{ExprSpec, Spanned};
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

pub const TYPE: StepType =
    StepType { field: f("set", Ty::Map(&Ty::Expr), "Add or overwrite fields, keep the rest."), parse };

/// `set:` as written.
#[derive(Debug)]
struct SetConfig(Vec<(Spanned<String>, ExprSpec)>);

fn parse(reader: &StepReader, _diags: &mut Diagnostics) -> Option<Arc<dyn StepConfig>> {
    Some(Arc::new(SetConfig(reader.named_exprs(reader.body))))
}

impl StepConfig for SetConfig {
    fn kind(&self) -> &'static str {
        "set"
    }

    fn relational(&self) -> Relational<'_> {
        Relational::Assign(&self.0)
    }

    fn describe(&self) -> String {
        super::map::named_text(&self.0)
    }

    fn compile(&self, input: &StepInput, diags: &mut Diagnostics) -> Option<Compiled> {
        let names: Vec<Arc<str>> = self.0.iter().map(|(n, _)| Arc::from(n.value.as_str())).collect();
        let fields = input.fields.map(|known| {
            let mut fields = known.to_vec();
            fields.extend(names.iter().filter(|n| !known.contains(n)).cloned());
            fields
        });
        let exprs: Vec<ExprSpec> = self.0.iter().map(|(_, e)| e.clone()).collect();
        let exprs = input.compile_all(&exprs, diags)?;
        let step = SetStep { assignments: names.into_iter().zip(exprs).collect(), fingerprint: self.describe() };
        Some(Compiled { step: Arc::new(step), output: Output::Fields(fields) })
    }
}

#[derive(Debug)]
struct SetStep {
    assignments: Vec<(Arc<str>, Expr)>,
    fingerprint: String,
}

impl BuiltStep for SetStep {
    fn operator(&self) -> Box<dyn Operator> {
        Box::new(Set::new(self.assignments.clone()))
    }

    fn exprs(&self) -> Vec<&Expr> {
        self.assignments.iter().map(|(_, e)| e).collect()
    }

    fn fingerprint(&self) -> String {
        self.fingerprint.clone()
    }

    fn stateless(&self) -> bool {
        true
    }
}
