//! A source of records given in memory (the inputs of a `flowctl test` case).

use super::{BadRecord, Source};
use crate::error::Result;
use crate::record::{Batch, Origin, Record};
use std::sync::Arc;

pub struct MemorySource {
    records: std::vec::IntoIter<Record>,
}

impl MemorySource {
    /// Records in order; each gets `index` as its source and its position as its line.
    pub fn new(records: Vec<Record>, index: usize) -> MemorySource {
        let records: Vec<Record> = records
            .into_iter()
            .enumerate()
            .map(|(i, mut r)| {
                r.origin = Origin { source: index as u32, file: 0, line: i as u64 + 1, offset: i as u64 + 1 };
                r
            })
            .collect();
        MemorySource { records: records.into_iter() }
    }
}

impl Source for MemorySource {
    fn read_batch(&mut self, max: usize, out: &mut Batch, _bad: &mut Vec<BadRecord>) -> Result<bool> {
        out.extend(self.records.by_ref().take(max));
        Ok(self.records.len() > 0)
    }

    fn files(&self) -> Vec<Arc<str>> {
        vec![Arc::from("<test input>")]
    }
}
