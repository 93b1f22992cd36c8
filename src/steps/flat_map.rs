//! `flat_map`: one output per element of a list, the input record plus `as` = the
//! element. A NULL list gives no output (as SQL's UNNEST).

use super::{LayoutCache, Operator, StepError};
use crate::expr::{EvalError, Expr};
use crate::record::{Batch, Record, Schema, SchemaMaker, Value};
use std::sync::Arc;

pub struct FlatMap {
    each: Expr,
    as_field: Arc<str>,
    layouts: LayoutCache<(SchemaMaker, usize)>,
}

impl FlatMap {
    pub fn new(each: Expr, as_field: Arc<str>) -> FlatMap {
        FlatMap { each, as_field, layouts: LayoutCache::default() }
    }
}

impl Operator for FlatMap {
    fn process(&mut self, record: Record, out: &mut Batch) -> Result<(), StepError> {
        let items = match self.each.eval(&record) {
            Ok(Value::List(items)) => items,
            Ok(Value::Null) => return Ok(()),
            Ok(other) => {
                let error =
                    EvalError { message: format!("flat_map `each` must give a list, got {}", other.type_name()) };
                return Err(StepError { error, record });
            }
            Err(error) => return Err(StepError { error, record }),
        };
        let as_field = &self.as_field;
        let (schema, target) = self.layouts.get(record.schema(), |s| match s.index_of(as_field) {
            Some(i) => (SchemaMaker::new(s), i),
            None => {
                let mut names = s.names().to_vec();
                names.push(as_field.clone());
                let n = names.len() - 1;
                (SchemaMaker::new(&Schema::new(names)), n)
            }
        });
        for item in items.iter() {
            let mut values = record.values().to_vec();
            values.resize(schema.schema().len(), Value::Null);
            values[*target] = item.clone();
            out.push(record.with_fields(schema.for_record(), values));
        }
        Ok(())
    }
}
