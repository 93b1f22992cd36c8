//! `map`: replaces each record with exactly the listed fields.

use super::component::{BuiltStep, Compiled, Output, Relational, StepConfig, StepInput, StepType};
use super::{Operator, StepError};
use crate::diag::Diagnostics;
use crate::expr::Expr;
use crate::record::{Batch, Record, Schema, SchemaMaker, Value};
use crate::spec::fields::{f, Ty};
use crate::spec::model::StepReader;
use crate::spec::{ExprSpec, Spanned};
use std::sync::Arc;

pub struct Map {
    schema: SchemaMaker,
    exprs: Vec<Expr>,
    /// Which expressions are bare fields named by no other: their values are moved
    /// from the input record, not cloned.
    moved: Vec<bool>,
    /// The last input record's value vector, emptied: the next output's values.
    spare: Vec<Value>,
}

impl Map {
    pub fn new(schema: Arc<Schema>, exprs: Vec<Expr>) -> Map {
        let names: Vec<Option<&str>> = exprs.iter().map(Expr::bare_field_name).collect();
        let moved = names.iter().map(|n| n.is_some() && names.iter().filter(|m| *m == n).count() == 1).collect();
        Map { schema: SchemaMaker::new(&schema), exprs, moved, spare: Vec::new() }
    }
}

impl Operator for Map {
    fn process(&mut self, mut record: Record, out: &mut Batch) -> Result<(), StepError> {
        let mut values = std::mem::take(&mut self.spare);
        // Computed fields first, while the input record is whole, into slots made NULL
        // in one go (a NULL handed through an iterator per moved field was written as
        // its tag byte and read back as a word: a store-forwarding stall per field, 38%
        // of this function on Nexmark q0).
        values.resize(self.exprs.len(), Value::Null);
        for ((e, &moved), value) in self.exprs.iter().zip(&self.moved).zip(values.iter_mut()) {
            if moved {
                continue;
            }
            match e.eval(&record) {
                Ok(v) => *value = v,
                Err(error) => {
                    values.clear();
                    self.spare = values;
                    return Err(StepError { error, record });
                }
            }
        }
        let mut input = record.take_values();
        for ((e, &moved), value) in self.exprs.iter().zip(&self.moved).zip(values.iter_mut()) {
            if !moved {
                continue;
            }
            if let Some(Some(i)) = e.field_index(record.schema()) {
                *value = std::mem::take(&mut input[i]);
            }
        }
        record.set_fields(self.schema.for_record(), values);
        out.push(record);
        input.clear();
        self.spare = input;
        Ok(())
    }
}

pub const TYPE: StepType =
    StepType { field: f("map", Ty::Map(&Ty::Expr), "Replace the record with exactly these fields."), parse };

/// `map:` as written.
#[derive(Debug)]
struct MapConfig(Vec<(Spanned<String>, ExprSpec)>);

fn parse(reader: &StepReader, _diags: &mut Diagnostics) -> Option<Arc<dyn StepConfig>> {
    Some(Arc::new(MapConfig(reader.named_exprs(reader.body))))
}

/// `name = expr, ...`, as `flowctl plan` shows named expressions and as their
/// checkpoint fingerprint has always read.
pub(super) fn named_text(fields: &[(Spanned<String>, ExprSpec)]) -> String {
    fields.iter().map(|(n, e)| format!("{} = {}", n.value, e.text)).collect::<Vec<_>>().join(", ")
}

impl StepConfig for MapConfig {
    fn kind(&self) -> &'static str {
        "map"
    }

    fn relational(&self) -> Relational<'_> {
        Relational::Project(&self.0)
    }

    fn describe(&self) -> String {
        named_text(&self.0)
    }

    fn compile(&self, input: &StepInput, diags: &mut Diagnostics) -> Option<Compiled> {
        let exprs: Vec<ExprSpec> = self.0.iter().map(|(_, e)| e.clone()).collect();
        let exprs = input.compile_all(&exprs, diags)?;
        // Output records carry this very layout: expressions after the map resolve
        // their fields by index.
        let schema = Schema::new(self.0.iter().map(|(n, _)| Arc::from(n.value.as_str())).collect());
        let step = MapStep { schema: schema.clone(), exprs, fingerprint: self.describe() };
        Some(Compiled { step: Arc::new(step), output: Output::Schema(schema) })
    }
}

#[derive(Debug)]
struct MapStep {
    schema: Arc<Schema>,
    exprs: Vec<Expr>,
    fingerprint: String,
}

impl BuiltStep for MapStep {
    fn operator(&self) -> Box<dyn Operator> {
        Box::new(Map::new(self.schema.clone(), self.exprs.clone()))
    }

    fn exprs(&self) -> Vec<&Expr> {
        self.exprs.iter().collect()
    }

    fn fingerprint(&self) -> String {
        self.fingerprint.clone()
    }

    fn stateless(&self) -> bool {
        true
    }

    fn makes_new_records(&self) -> bool {
        true
    }
}
