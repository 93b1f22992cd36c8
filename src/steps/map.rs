//! `map`: replaces each record with exactly the listed fields.

use super::{Operator, StepError};
use crate::expr::Expr;
use crate::record::{Batch, Record, Schema, SchemaMaker, Value};
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
