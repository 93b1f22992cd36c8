//! The `stdout` sink: jsonl, csv or an aligned table. At-least-once: what was printed
//! before a crash cannot be taken back. A broken pipe (`| head`) ends the run cleanly.
//!
//! A table is printed a page of [`TABLE_PAGE`] rows at a time (and at each
//! checkpoint), so it holds one page, not the whole stream: columns are as wide as
//! the widest value so far, and when a page widens one the header is printed again
//! above it. Pages are cut by row count, so the layout does not depend on batching.

use super::encode::Encoder;
use super::{io_error, Sink, SinkError};
use crate::record::{Record, Value};
use std::io::{Stdout, Write};

/// A `stdout` sink's configuration: how it writes records (`format:`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StdoutFormat {
    Jsonl,
    Csv,
    Table,
}

/// Rows a table holds before printing them.
pub const TABLE_PAGE: usize = 1000;

pub struct StdoutSink {
    mode: Mode,
}

enum Mode {
    Encoded(Box<Encoder<Stdout>>),
    Table(Table),
}

impl StdoutSink {
    pub fn new(format: StdoutFormat) -> StdoutSink {
        let out = std::io::stdout();
        let mode = match format {
            StdoutFormat::Jsonl => Mode::Encoded(Box::new(Encoder::jsonl(out))),
            StdoutFormat::Csv => Mode::Encoded(Box::new(Encoder::csv(out, true, b','))),
            StdoutFormat::Table => Mode::Table(Table::default()),
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
            Mode::Table(table) => {
                for record in records {
                    if table.add(record) {
                        print(&table.page())?;
                    }
                }
                Ok(())
            }
        }
    }

    fn pre_commit(&mut self, _epoch: u64) -> Result<serde_json::Value, SinkError> {
        if let Mode::Table(table) = &mut self.mode {
            print(&table.page())?;
        }
        Ok(serde_json::Value::Null)
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
            Mode::Table(table) => print(&table.page()),
        }
    }
}

fn print(text: &str) -> Result<(), SinkError> {
    if text.is_empty() {
        return Ok(());
    }
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes()).and_then(|_| out.flush()).map_err(|e| io_error("stdout", e))
}

/// An aligned text table printed a page at a time: columns of the first record,
/// numbers right-aligned.
#[derive(Default)]
pub struct Table {
    /// The column names (of the first record), once one has come.
    names: Vec<String>,
    /// Column widths of what has been printed (empty before the first page).
    widths: Vec<usize>,
    /// The rows not printed yet: per column its text and whether it is a number.
    rows: Vec<Vec<(String, bool)>>,
}

impl Table {
    /// Adds a row; true when the page is full.
    pub fn add(&mut self, record: &Record) -> bool {
        if self.names.is_empty() && self.widths.is_empty() {
            self.names = record.schema().names().iter().map(|n| n.to_string()).collect();
        }
        let row = self
            .names
            .iter()
            .map(|n| {
                let v = record.get(n).cloned().unwrap_or_default();
                let numeric = matches!(v, Value::Int(_) | Value::Float(_));
                (if v.is_null() { "null".to_string() } else { v.to_text() }, numeric)
            })
            .collect();
        self.rows.push(row);
        self.rows.len() >= TABLE_PAGE
    }

    /// The rows added since the last page, as text (empty when there are none), with
    /// the header above them on the first page and whenever a column got wider.
    pub fn page(&mut self) -> String {
        let mut out = String::new();
        if self.rows.is_empty() {
            return out;
        }
        let widths: Vec<usize> = (0..self.names.len())
            .map(|i| {
                let widest = self.rows.iter().map(|row| row[i].0.chars().count()).max().unwrap_or(0);
                let name = self.names[i].chars().count();
                widest.max(name).max(self.widths.get(i).copied().unwrap_or(0))
            })
            .collect();
        let line = |out: &mut String, row: &[(String, bool)]| {
            let parts: Vec<String> = row
                .iter()
                .zip(&widths)
                .map(|((text, numeric), w)| if *numeric { format!("{text:>w$}") } else { format!("{text:<w$}") })
                .collect();
            out.push_str(parts.join("  ").trim_end());
            out.push('\n');
        };
        if widths != self.widths {
            let names: Vec<(String, bool)> = self.names.iter().map(|n| (n.clone(), false)).collect();
            line(&mut out, &names);
            line(&mut out, &widths.iter().map(|w| ("-".repeat(*w), false)).collect::<Vec<_>>());
        }
        for row in self.rows.drain(..) {
            line(&mut out, &row);
        }
        self.widths = widths;
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Schema;

    fn record(user: &str, n: i64) -> Record {
        Record::new(Schema::from_names(&["user", "n"]), vec![Value::str(user), Value::Int(n)])
    }

    #[test]
    fn a_table_prints_pages_and_repeats_the_header_when_a_column_widens() {
        let mut table = Table::default();
        assert!(!table.add(&record("a", 1)));
        table.add(&record("bb", 22));
        assert_eq!(table.page(), "user  n\n----  --\na      1\nbb    22\n");
        assert_eq!(table.page(), "");
        table.add(&record("c", 3));
        assert_eq!(table.page(), "c      3\n");
        table.add(&record("a_long_name", 4));
        assert_eq!(table.page(), "user         n\n-----------  --\na_long_name   4\n");
        let full = (0..TABLE_PAGE).map(|i| table.add(&record("x", i as i64))).filter(|&full| full).count();
        assert_eq!(full, 1, "the page is full at its last row");
    }
}
