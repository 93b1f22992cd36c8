//! The `stdout` sink: jsonl, csv or an aligned table. At-least-once: what was printed
//! before a crash cannot be taken back. A broken pipe (`| head`) ends the run cleanly.

use super::encode::Encoder;
use super::{io_error, Sink, SinkError};
use crate::record::Record;
use crate::spec::StdoutFormat;
use std::io::{Stdout, Write};

pub struct StdoutSink {
    mode: Mode,
}

enum Mode {
    Encoded(Box<Encoder<Stdout>>),
    /// Tables need every row to size their columns, so they print at the end.
    Table(Vec<Record>),
}

impl StdoutSink {
    pub fn new(format: StdoutFormat) -> StdoutSink {
        let out = std::io::stdout();
        let mode = match format {
            StdoutFormat::Jsonl => Mode::Encoded(Box::new(Encoder::jsonl(out))),
            StdoutFormat::Csv => Mode::Encoded(Box::new(Encoder::csv(out, true, b','))),
            StdoutFormat::Table => Mode::Table(Vec::new()),
        };
        StdoutSink { mode }
    }
}

impl Sink for StdoutSink {
    fn write(&mut self, records: &[Record]) -> Result<(), SinkError> {
        match &mut self.mode {
            Mode::Encoded(e) => {
                e.write(records).map_err(|e| io_error("stdout", e))?;
                // Line-at-a-time consumers (tail -f style) see each batch promptly.
                e.flush().map_err(|e| io_error("stdout", e))
            }
            Mode::Table(rows) => {
                rows.extend_from_slice(records);
                Ok(())
            }
        }
    }

    fn line_encoder(&self) -> Option<super::encode::LineEncoder> {
        match &self.mode {
            Mode::Encoded(e) => Some(e.line_encoder()),
            Mode::Table(_) => None,
        }
    }

    fn write_lines(&mut self, lines: &str) -> Result<(), SinkError> {
        match &mut self.mode {
            Mode::Encoded(e) => e.write_lines(lines).and_then(|_| e.flush()).map_err(|e| io_error("stdout", e)),
            Mode::Table(_) => Err(SinkError::Failed(crate::error::Error::Internal("a table takes records".into()))),
        }
    }

    fn commit(&mut self) -> Result<(), SinkError> {
        match &mut self.mode {
            Mode::Encoded(e) => e.flush().map_err(|e| io_error("stdout", e)),
            Mode::Table(rows) => {
                let text = render_table(rows);
                let mut out = std::io::stdout().lock();
                out.write_all(text.as_bytes()).and_then(|_| out.flush()).map_err(|e| io_error("stdout", e))
            }
        }
    }
}

/// An aligned text table: columns of the first record, numbers right-aligned.
pub fn render_table(rows: &[Record]) -> String {
    let Some(first) = rows.first() else { return String::new() };
    let names: Vec<&str> = first.schema().names().iter().map(|n| &**n).collect();
    let cells: Vec<Vec<(String, bool)>> = rows
        .iter()
        .map(|r| {
            names
                .iter()
                .map(|n| {
                    let v = r.get(n).cloned().unwrap_or_default();
                    let numeric = matches!(v, crate::record::Value::Int(_) | crate::record::Value::Float(_));
                    (if v.is_null() { "null".to_string() } else { v.to_text() }, numeric)
                })
                .collect()
        })
        .collect();
    let widths: Vec<usize> = (0..names.len())
        .map(|i| cells.iter().map(|row| row[i].0.chars().count()).chain([names[i].chars().count()]).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    let line = |out: &mut String, row: Vec<(String, bool)>| {
        let parts: Vec<String> = row
            .into_iter()
            .zip(&widths)
            .map(|((text, numeric), w)| if numeric { format!("{text:>w$}") } else { format!("{text:<w$}") })
            .collect();
        out.push_str(parts.join("  ").trim_end());
        out.push('\n');
    };
    line(&mut out, names.iter().map(|n| (n.to_string(), false)).collect());
    line(&mut out, widths.iter().map(|w| ("-".repeat(*w), false)).collect());
    for row in cells {
        line(&mut out, row);
    }
    out
}
