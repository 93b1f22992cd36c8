//! Encoding records as CSV or JSON lines onto any writer; shared by the stdout and
//! file sinks.

use crate::record::{Record, Schema, Value};
use std::io::Write;
use std::sync::Arc;

pub enum Encoder<W: Write> {
    Jsonl { out: W, line: String },
    Csv { out: Box<csv::Writer<W>>, header: bool, columns: Option<Arc<Schema>>, cells: Vec<String> },
}

impl<W: Write> Encoder<W> {
    pub fn jsonl(out: W) -> Self {
        Encoder::Jsonl { out, line: String::with_capacity(256) }
    }

    pub fn csv(out: W, header: bool, delimiter: u8) -> Self {
        let out = Box::new(csv::WriterBuilder::new().delimiter(delimiter).buffer_capacity(64 * 1024).from_writer(out));
        Encoder::Csv { out, header, columns: None, cells: Vec::new() }
    }

    /// Writes records. CSV columns are those of the first record; later records are
    /// written by field name (missing fields empty, extra fields left out).
    pub fn write(&mut self, records: &[Record]) -> std::io::Result<()> {
        match self {
            Encoder::Jsonl { out, line } => {
                for record in records {
                    line.clear();
                    record.write_json(line);
                    line.push('\n');
                    out.write_all(line.as_bytes())?;
                }
                Ok(())
            }
            Encoder::Csv { out, header, columns, cells } => {
                for record in records {
                    let cols = match columns {
                        Some(c) => c,
                        None => {
                            let c = columns.insert(record.schema().clone());
                            if *header {
                                out.write_record(c.names().iter().map(|n| n.as_bytes()))?;
                            }
                            c
                        }
                    };
                    cells.resize(cols.len(), String::new());
                    if Arc::ptr_eq(cols, record.schema()) {
                        for (cell, v) in cells.iter_mut().zip(record.values()) {
                            cell.clear();
                            v.write_text(cell);
                        }
                    } else {
                        for (cell, name) in cells.iter_mut().zip(cols.names()) {
                            cell.clear();
                            record.get(name).unwrap_or(&Value::Null).write_text(cell);
                        }
                    }
                    out.write_record(cells.iter().map(String::as_bytes))?;
                }
                Ok(())
            }
        }
    }

    /// The writer underneath (after a flush, for syncing a file).
    pub fn inner(&self) -> &W {
        match self {
            Encoder::Jsonl { out, .. } => out,
            Encoder::Csv { out, .. } => out.get_ref(),
        }
    }

    pub fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Encoder::Jsonl { out, .. } => out.flush(),
            Encoder::Csv { out, .. } => out.flush(),
        }
    }
}
