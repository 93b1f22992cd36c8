//! A sink that keeps records in memory (the outputs of a `flowctl test` case).

use super::{Sink, SinkError};
use crate::record::Record;
use std::sync::{Arc, Mutex};

#[derive(Clone, Debug, Default)]
pub struct MemorySink {
    pub records: Arc<Mutex<Vec<Record>>>,
}

impl Sink for MemorySink {
    fn write(&mut self, records: &[Record]) -> Result<(), SinkError> {
        if let Ok(mut all) = self.records.lock() {
            all.extend_from_slice(records);
        }
        Ok(())
    }

    fn commit(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
}
