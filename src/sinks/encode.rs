//! Encoding records as CSV or JSON lines onto any writer; shared by the stdout, file
//! and socket sinks. Records are written straight into one text buffer that goes to
//! the writer in 64 KiB pieces (and on `flush`), so a line costs no allocation and no
//! system call of its own, even on a line-buffered stdout.
//!
//! The line format itself is a [`LineEncoder`], which threads that make records
//! (keyed instances, split workers) clone, so that they hand their sink text instead
//! of records: a record is then encoded and freed on the core that made it.

use crate::record::{write_json_object, Record, Schema, Value};
use std::io::Write;
use std::sync::{Arc, OnceLock};

/// How much encoded text is gathered before it is handed to the writer.
const CHUNK: usize = 64 * 1024;

pub struct Encoder<W: Write> {
    out: W,
    text: String,
    lines: LineEncoder,
    /// A CSV header is still to be written, before the first line.
    header: bool,
}

/// Writes records as lines of text: JSON lines or CSV. Clones share the CSV columns
/// (those of the first record any clone meets), so lines encoded on several threads
/// for one sink all have its header's columns.
#[derive(Clone)]
pub enum LineEncoder {
    Jsonl,
    Csv(Box<Csv>),
    /// No text at all: the `blackhole` sink's format, so that the threads that make
    /// records count and free them there instead of sending them.
    Discard,
}

/// RFC 4180 as the `csv` crate writes it: a field is quoted when it holds the
/// delimiter, a quote, `\r` or `\n`, quotes inside doubled; a record of one empty
/// field is written as `""`.
#[derive(Clone)]
pub struct Csv {
    style: CsvStyle,
    /// The columns, those of the first record, shared by the clones.
    columns: Arc<OnceLock<Arc<Schema>>>,
    /// The id of the last other schema found to have exactly these columns (records of
    /// parallel instances carry equal schemas of their own).
    same_columns: u64,
    quoted: String,
}

#[derive(Clone)]
struct CsvStyle {
    delimiter: char,
    /// The bytes that make a field quoted: the delimiter, `"`, `\r`, `\n`.
    special: [bool; 256],
    /// Whether integers can be written without a check (the delimiter is no digit
    /// or minus sign).
    plain_ints: bool,
}

impl<W: Write> Encoder<W> {
    pub fn jsonl(out: W) -> Self {
        Encoder { out, text: String::with_capacity(CHUNK + 4096), lines: LineEncoder::Jsonl, header: false }
    }

    pub fn csv(out: W, header: bool, delimiter: u8) -> Self {
        Encoder { out, text: String::with_capacity(CHUNK + 4096), lines: LineEncoder::csv(delimiter), header }
    }

    /// The line format, for a thread that encodes records for this writer
    /// ([`Encoder::write_lines`]).
    pub fn line_encoder(&self) -> LineEncoder {
        self.lines.clone()
    }

    /// Writes records. CSV columns are those of the first record; later records are
    /// written by field name (missing fields empty, extra fields left out).
    pub fn write(&mut self, records: &[Record]) -> std::io::Result<()> {
        for record in records {
            if self.header {
                self.header = false;
                self.lines.header(Some(record.schema()), &mut self.text);
            }
            self.lines.encode(record, &mut self.text);
            self.hand_on_a_full_chunk()?;
        }
        Ok(())
    }

    /// Writes whole lines that a clone of [`Encoder::line_encoder`] encoded.
    pub fn write_lines(&mut self, lines: &str) -> std::io::Result<()> {
        if lines.is_empty() {
            return Ok(());
        }
        if self.header {
            self.header = false;
            self.lines.header(None, &mut self.text);
        }
        if self.text.is_empty() && lines.len() >= CHUNK {
            return self.out.write_all(lines.as_bytes());
        }
        self.text.push_str(lines);
        self.hand_on_a_full_chunk()
    }

    /// Hands the gathered text to the writer once it fills a chunk.
    fn hand_on_a_full_chunk(&mut self) -> std::io::Result<()> {
        if self.text.len() >= CHUNK {
            self.out.write_all(self.text.as_bytes())?;
            self.text.clear();
        }
        Ok(())
    }

    /// The writer underneath (after a flush, for syncing a file).
    pub fn inner(&self) -> &W {
        &self.out
    }

    pub fn flush(&mut self) -> std::io::Result<()> {
        self.out.write_all(self.text.as_bytes())?;
        self.text.clear();
        self.out.flush()
    }
}

impl LineEncoder {
    pub fn csv(delimiter: u8) -> LineEncoder {
        let mut special = [false; 256];
        for b in [delimiter, b'"', b'\r', b'\n'] {
            special[usize::from(b)] = true;
        }
        let plain_ints = !(delimiter.is_ascii_digit() || delimiter == b'-');
        let style = CsvStyle { delimiter: char::from(delimiter), special, plain_ints };
        LineEncoder::Csv(Box::new(Csv { style, columns: Arc::default(), same_columns: 0, quoted: String::new() }))
    }

    /// Appends the record's line to `text`.
    pub fn encode(&mut self, record: &Record, text: &mut String) {
        self.encode_row(record.schema(), record.values(), text);
    }

    /// Appends the line of a record with these fields, without the record (steps that
    /// write their outputs as lines, see `Operator::write_lines`).
    pub fn encode_row(&mut self, schema: &Arc<Schema>, values: &[Value], text: &mut String) {
        match self {
            LineEncoder::Jsonl => {
                write_json_object(schema.names().iter().map(|n| &**n).zip(values), text);
                text.push('\n');
            }
            LineEncoder::Csv(csv) => csv.write(schema, values, text),
            LineEncoder::Discard => {}
        }
    }

    /// Appends the CSV header: the columns, those of `first` unless a clone already
    /// met a record (nothing for JSON lines, or before any record).
    fn header(&mut self, first: Option<&Arc<Schema>>, text: &mut String) {
        let LineEncoder::Csv(csv) = self else { return };
        let columns = match first {
            Some(first) => Some(csv.columns.get_or_init(|| first.clone())),
            None => csv.columns.get(),
        };
        if let Some(columns) = columns {
            csv.style.line(columns.names().iter().map(|n| Cell::Name(n)), &mut csv.quoted, text);
        }
    }
}

impl Csv {
    fn write(&mut self, shape: &Arc<Schema>, values: &[Value], text: &mut String) {
        let Csv { style, columns, same_columns, quoted } = self;
        let columns = columns.get_or_init(|| shape.clone());
        let same = Schema::same(columns, shape)
            || shape.id() == *same_columns
            || (columns.names() == shape.names() && {
                *same_columns = shape.id();
                true
            });
        if same {
            style.line(values.iter().map(Cell::Value), quoted, text);
        } else {
            let value_of = |name| shape.index_of(name).and_then(|i| values.get(i)).unwrap_or(&Value::Null);
            let by_name = columns.names().iter().map(|name| Cell::Value(value_of(name)));
            style.line(by_name, quoted, text);
        }
    }
}

impl CsvStyle {
    fn line<'a>(&self, cells: impl Iterator<Item = Cell<'a>>, quoted: &mut String, text: &mut String) {
        let start = text.len();
        for (i, cell) in cells.enumerate() {
            if i > 0 {
                text.push(self.delimiter);
            }
            let field = text.len();
            match cell {
                Cell::Value(Value::Int(i)) if self.plain_ints => {
                    text.push_str(itoa::Buffer::new().format(*i));
                    continue;
                }
                Cell::Value(Value::Str(s)) => text.push_str(s),
                Cell::Name(n) => text.push_str(n),
                Cell::Value(v) => v.write_text(text),
            }
            if text.as_bytes()[field..].iter().any(|&b| self.special[usize::from(b)]) {
                quoted.clear();
                quoted.push('"');
                for c in text[field..].chars() {
                    if c == '"' {
                        quoted.push('"');
                    }
                    quoted.push(c);
                }
                quoted.push('"');
                text.truncate(field);
                text.push_str(quoted);
            }
        }
        if text.len() == start {
            text.push_str("\"\"");
        }
        text.push('\n');
    }
}

enum Cell<'a> {
    Name(&'a str),
    Value(&'a Value),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csv_of(records: &[Record], delimiter: u8) -> String {
        let mut out = Vec::new();
        let mut e = Encoder::csv(&mut out, true, delimiter);
        e.write(records).unwrap();
        e.flush().unwrap();
        drop(e);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn csv_quotes_exactly_as_the_csv_crate_does() {
        let texts = ["plain", "a,b", "say \"hi\"", "two\nlines", "cr\rhere", "", "semi;colon", "ünïcödé"];
        for delimiter in [b',', b';', b'\t', b'3', b'-'] {
            let records: Vec<Record> = texts
                .iter()
                .map(|t| Record::from_pairs(vec![("text", Value::str(t)), ("n", Value::Int(-3)), ("x", Value::Null)]))
                .chain([Record::from_pairs(vec![("text", Value::Float(1.5))])])
                .collect();
            let mut expected = csv::WriterBuilder::new().delimiter(delimiter).from_writer(Vec::new());
            expected.write_record(["text", "n", "x"]).unwrap();
            for t in texts {
                expected.write_record([t, "-3", ""]).unwrap();
            }
            expected.write_record(["1.5", "", ""]).unwrap();
            let expected = String::from_utf8(expected.into_inner().unwrap()).unwrap();
            assert_eq!(csv_of(&records, delimiter), expected);
        }
    }

    #[test]
    fn csv_columns_are_the_first_records_whatever_shape_the_others_have() {
        let pairs = |a: i64, b: i64| vec![("a", Value::Int(a)), ("b", Value::Int(b))];
        let records = [
            Record::from_pairs(pairs(1, 2)),
            Record::from_pairs(pairs(3, 4)),
            Record::from_pairs(vec![("b", Value::Int(6)), ("a", Value::Int(5))]),
            Record::from_pairs(pairs(7, 8)),
            Record::from_pairs(vec![("a", Value::Int(9))]),
        ];
        assert_eq!(csv_of(&records, b','), "a,b\n1,2\n3,4\n5,6\n7,8\n9,\n");
    }

    #[test]
    fn lines_encoded_by_clones_share_the_header_columns() {
        let mut out = Vec::new();
        let mut sink = Encoder::csv(&mut out, true, b',');
        let (mut a, mut b) = (sink.line_encoder(), sink.line_encoder());
        let (mut text_a, mut text_b) = (String::new(), String::new());
        // The first record a clone meets sets the columns for every clone.
        b.encode(&Record::from_pairs(vec![("x", Value::Int(1)), ("y", Value::str("a,b"))]), &mut text_b);
        a.encode(&Record::from_pairs(vec![("y", Value::str("q")), ("x", Value::Int(2))]), &mut text_a);
        sink.write_lines(&text_a).unwrap();
        sink.write(&[Record::from_pairs(vec![("y", Value::Null), ("x", Value::Int(3))])]).unwrap();
        sink.write_lines(&text_b).unwrap();
        sink.flush().unwrap();
        drop(sink);
        assert_eq!(String::from_utf8(out).unwrap(), "x,y\n2,q\n3,\n1,\"a,b\"\n");
    }

    #[test]
    fn a_record_of_one_empty_field_is_quoted() {
        let records = [Record::from_pairs(vec![("only", Value::Null)])];
        assert_eq!(csv_of(&records, b','), "only\n\"\"\n");
    }

    #[test]
    fn output_reaches_the_writer_in_chunks_and_on_flush() {
        let mut out = Vec::new();
        let mut e = Encoder::jsonl(&mut out);
        let record = Record::from_pairs(vec![("s", Value::str(&"x".repeat(1000)))]);
        e.write(std::slice::from_ref(&record)).unwrap();
        assert!(e.inner().is_empty());
        e.write(&vec![record; 100]).unwrap();
        assert!(e.inner().len() >= CHUNK);
        e.flush().unwrap();
        drop(e);
        assert_eq!(out.iter().filter(|&&b| b == b'\n').count(), 101);
    }
}
