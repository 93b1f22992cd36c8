//! A window step's results, each the key's values, the window's bounds and the
//! aggregates: records for the steps and sinks after it, or, when its only reader is
//! a sink whose lines the running thread encodes (keyed instances, split workers),
//! those lines written straight from the window's state, so that no record is made,
//! handed on and freed per result.

use super::aggregate::Acc;
use crate::record::{Batch, Record, Schema, SchemaMaker, Value};
use crate::sinks::encode::LineEncoder;
use std::sync::Arc;

pub struct Results {
    schema: SchemaMaker,
    lines: Option<Lines>,
}

struct Lines {
    format: LineEncoder,
    text: String,
    count: u64,
    /// One result's values, reused.
    row: Vec<Value>,
}

impl Results {
    pub fn new(schema: &Arc<Schema>) -> Results {
        Results { schema: SchemaMaker::new(schema), lines: None }
    }

    /// From now on, results are lines in `format` (see [`Results::take_lines`]).
    pub fn write_lines(&mut self, format: LineEncoder) {
        self.lines = Some(Lines { format, text: String::new(), count: 0, row: Vec::new() });
    }

    /// Emits the result of a window of `key` from `start` to `end`: a record stamped
    /// with the window's last instant and the current watermark, or its line.
    pub fn push(&mut self, out: &mut Batch, watermark: i64, key: &[Value], (start, end): (i64, i64), accs: &[Acc]) {
        let Some(lines) = &mut self.lines else {
            out.push(result(self.schema.for_record(), watermark, key, (start, end), accs));
            return;
        };
        let row = &mut lines.row;
        row.clear();
        fill(row, key, (start, end), accs);
        lines.format.encode_row(self.schema.schema(), row, &mut lines.text);
        lines.count += 1;
    }

    /// The lines written since the last call, and how many.
    pub fn take_lines(&mut self) -> Option<(String, u64)> {
        let lines = self.lines.as_mut().filter(|l| l.count > 0)?;
        let capacity = lines.text.len();
        let text = std::mem::replace(&mut lines.text, String::with_capacity(capacity));
        Some((text, std::mem::take(&mut lines.count)))
    }
}

/// The output record of a window.
fn result(schema: Arc<Schema>, watermark: i64, key: &[Value], bounds: (i64, i64), accs: &[Acc]) -> Record {
    let mut values = Vec::with_capacity(schema.len());
    fill(&mut values, key, bounds, accs);
    let mut r = Record::new(schema, values);
    r.event_time = Some(bounds.1 - 1);
    r.watermark = watermark;
    r
}

/// One extend of known length (see [`crate::record::extend_or_first_error`]).
fn fill(values: &mut Vec<Value>, key: &[Value], (start, end): (i64, i64), accs: &[Acc]) {
    let bounds = [start, end].into_iter().map(Value::Int);
    values.extend(key.iter().cloned().chain(bounds).chain(accs.iter().map(Acc::value)));
}
