//! `map`: replaces each record with exactly the listed fields.

use super::{Operator, StepError};
use crate::expr::Expr;
use crate::record::{Batch, Record, Schema};
use std::sync::Arc;

pub struct Map {
    schema: Arc<Schema>,
    exprs: Vec<Expr>,
}

impl Map {
    pub fn new(schema: Arc<Schema>, exprs: Vec<Expr>) -> Map {
        Map { schema, exprs }
    }
}

impl Operator for Map {
    fn process(&mut self, record: Record, out: &mut Batch) -> Result<(), StepError> {
        let mut values = Vec::with_capacity(self.exprs.len());
        for e in &self.exprs {
            match e.eval(&record) {
                Ok(v) => values.push(v),
                Err(error) => return Err(StepError { error, record }),
            }
        }
        out.push(record.with_fields(self.schema.clone(), values));
        Ok(())
    }
}
