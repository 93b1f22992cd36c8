//! `drop`: removes fields.

use super::{LayoutCache, Operator, StepError};
use crate::record::{Batch, Record, Schema, SchemaMaker};
use std::sync::Arc;

pub struct Drop {
    names: Vec<Arc<str>>,
    layouts: LayoutCache<(SchemaMaker, Vec<usize>)>,
}

impl Drop {
    pub fn new(names: Vec<Arc<str>>) -> Drop {
        Drop { names, layouts: LayoutCache::default() }
    }
}

impl Operator for Drop {
    fn process(&mut self, record: Record, out: &mut Batch) -> Result<(), StepError> {
        let names = &self.names;
        let (schema, keep) = self.layouts.get(record.schema(), |s| {
            let keep: Vec<usize> = (0..s.len()).filter(|&i| !names.contains(&s.names()[i])).collect();
            (SchemaMaker::new(&Schema::new(keep.iter().map(|&i| s.names()[i].clone()).collect())), keep)
        });
        let values = keep.iter().map(|&i| record.values()[i].clone()).collect();
        out.push(record.with_fields(schema.for_record(), values));
        Ok(())
    }
}
