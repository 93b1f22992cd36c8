//! Decoding bytes into records: CSV (typed by `schema:` or inferred per value),
//! JSON lines (types kept) and text (one `{line}` record per line). Shared by every
//! source that reads bytes.

use super::csv_rows::{CsvRows, Row};
use super::BadRecord;
use crate::format::DataFormat;
use crate::record::{Batch, Origin, Record, Schema, SchemaMaker, Value};
use std::io::{BufRead, BufReader, Read};
use std::sync::Arc;

/// Declared types of CSV columns (`schema:`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueType {
    String,
    Int,
    Float,
    Bool,
    Timestamp,
    Json,
}

impl ValueType {
    pub(crate) fn parse(s: &str) -> ValueType {
        match s {
            "int" => ValueType::Int,
            "float" => ValueType::Float,
            "bool" => ValueType::Bool,
            "timestamp" => ValueType::Timestamp,
            "json" => ValueType::Json,
            _ => ValueType::String,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct CsvOptions {
    pub header: bool,
    pub delimiter: u8,
    pub quote: u8,
}

impl Default for CsvOptions {
    fn default() -> Self {
        CsvOptions { header: true, delimiter: b',', quote: b'"' }
    }
}

/// How records are decoded, shared by every source that reads bytes.
#[derive(Clone, Debug, PartialEq)]
pub struct Decoding {
    pub format: DataFormat,
    pub csv: CsvOptions,
    /// `schema:`: declared column types.
    pub schema: Vec<(String, ValueType)>,
    /// The longest line (a CSV record: its bytes) read, in bytes: `max_line_length`,
    /// default [`DEFAULT_MAX_LINE`]; a longer one stops the run naming file and line.
    pub max_line: u64,
}

/// The longest line a file, stdin or socket source reads by default (docs/limits.md):
/// a file without newlines or a peer that never sends one cannot fill memory.
pub const DEFAULT_MAX_LINE: u64 = 16 << 20;

/// What is known of a source's columns before reading.
#[derive(Clone, Debug, Default)]
pub struct KnownColumns {
    /// The record layout from `schema:` or the CSV header, the very one compiled field
    /// accesses resolve against (so they take their index fast path).
    pub schema: Option<Arc<Schema>>,
    /// Columns nothing reads, untyped or declared strings (`plan::projection`): CSV
    /// checks they are text and leaves them NULL.
    pub unread: Vec<Arc<str>>,
}

/// A line (a CSV record) longer than the source's `max_line_length`, at `line`
/// (1-based; counted from where the reader started until a decoder adds the lines
/// before it). Reading stops there: the rest of such a line is not read into memory.
#[derive(Debug)]
pub struct LineTooLong {
    pub line: u64,
    pub limit: u64,
}

impl LineTooLong {
    /// The run's error: source `id`, line n of `file`.
    pub fn in_file(&self, id: &str, file: &std::path::Path) -> crate::error::Error {
        crate::error::Error::External(format!(
            "source `{id}`: line {} of {} is longer than {}",
            self.line,
            file.display(),
            self.limit_and_hint()
        ))
    }

    fn limit_and_hint(&self) -> String {
        format!("{} (the source's `max_line_length`; raise it if such lines are expected)", describe_size(self.limit))
    }
}

impl std::fmt::Display for LineTooLong {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {} is longer than {}", self.line, self.limit_and_hint())
    }
}

impl std::error::Error for LineTooLong {}

impl From<LineTooLong> for std::io::Error {
    fn from(e: LineTooLong) -> Self {
        std::io::Error::new(std::io::ErrorKind::InvalidData, e)
    }
}

/// The [`LineTooLong`] inside an I/O error.
pub fn too_long(e: &std::io::Error) -> Option<&LineTooLong> {
    e.get_ref()?.downcast_ref::<LineTooLong>()
}

/// `bytes` as `16 MiB`, `512 KiB` or `1000 bytes`.
pub fn describe_size(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 20 && b % (1 << 20) == 0 => format!("{} MiB", b >> 20),
        b if b >= 1 << 10 && b % (1 << 10) == 0 => format!("{} KiB", b >> 10),
        b => format!("{b} bytes"),
    }
}

/// How a CSV column becomes a value.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Column {
    Declared(ValueType),
    Inferred,
    /// Nothing reads it: only checked to be text, left NULL.
    Unread,
}

/// Reads records of one input stream (a file, stdin) in the source's format. Every
/// record's origin carries its line and the byte offset just after it, so a source
/// can resume exactly there.
pub enum Decoder<R: Read> {
    Csv(Box<CsvDecoder<R>>),
    Lines(LineDecoder<BufReader<R>>),
}

impl<R: Read> Decoder<R> {
    /// `buffer` is the read buffer size in bytes. `start` says where `reader` is: its
    /// byte offset and the number of lines before it. A CSV input resumed after its
    /// header gets the header's column names in `header`.
    pub fn new(
        reader: R,
        buffer: usize,
        decoding: &Decoding,
        start: Origin,
        known: KnownColumns,
        header: Option<Vec<String>>,
    ) -> Decoder<R> {
        match decoding.format {
            DataFormat::Csv => {
                let rows = CsvRows::new(reader, buffer, decoding.csv.delimiter, decoding.csv.quote)
                    .with_max_line(decoding.max_line);
                Decoder::Csv(Box::new(CsvDecoder::new(rows, decoding, start, known, header)))
            }
            format => Decoder::Lines(LineDecoder {
                reader: BufReader::with_capacity(buffer, reader),
                json: format == DataFormat::Jsonl,
                origin: start,
                buf: Vec::new(),
                schema_cache: None,
                line_schema: SchemaMaker::new(&Schema::from_names(&["line"])),
                follow: false,
                partial: false,
                max_line: decoding.max_line,
            }),
        }
    }

    /// Where the last record read ends: its line and the byte offset after it.
    pub fn position(&self) -> Origin {
        match self {
            Decoder::Csv(d) => d.origin,
            Decoder::Lines(d) => d.origin,
        }
    }

    /// The byte offset after the last record read.
    pub fn offset(&self) -> u64 {
        match self {
            Decoder::Csv(d) => d.origin.offset,
            Decoder::Lines(d) => d.origin.offset,
        }
    }

    /// Makes a line decoder wait for the newline of a last, incomplete line (a file
    /// being written). CSV input is followed by the file source instead, which hands
    /// the decoder only complete lines.
    pub fn follow(&mut self) {
        if let Decoder::Lines(d) = self {
            d.follow = true;
        }
    }

    /// Appends up to `max` records; false once the input is exhausted. Reading stops
    /// after a record that cannot be decoded (put in `bad`), so that it is handled in
    /// input order, after the good records before it.
    pub fn read(&mut self, max: usize, out: &mut Batch, bad: &mut Vec<BadRecord>) -> std::io::Result<bool> {
        match self {
            Decoder::Csv(d) => d.read(max, out, bad),
            Decoder::Lines(d) => d.read(max, out, bad),
        }
    }
}

impl Decoder<std::io::Cursor<Vec<u8>>> {
    /// A decoder of bytes already in memory (a block of a file, starting on a record
    /// boundary at `start`): CSV is split where it lies instead of being copied into a
    /// buffer of the reader's own.
    pub fn in_memory(
        bytes: Vec<u8>,
        decoding: &Decoding,
        start: Origin,
        known: KnownColumns,
        header: Option<Vec<String>>,
    ) -> Self {
        if decoding.format != DataFormat::Csv {
            let n = bytes.len().max(1);
            return Decoder::new(std::io::Cursor::new(bytes), n, decoding, start, known, header);
        }
        let rows = CsvRows::in_place(bytes, start.offset == 0, decoding.csv.delimiter, decoding.csv.quote)
            .with_max_line(decoding.max_line);
        Decoder::Csv(Box::new(CsvDecoder::new(rows, decoding, start, known, header)))
    }
}

impl Decoder<std::io::Cursor<Vec<u8>>> {
    /// The bytes of a decoder made by [`Decoder::in_memory`], for reading another
    /// block into.
    pub fn into_bytes(self) -> Vec<u8> {
        match self {
            Decoder::Csv(d) => d.rows.into_buffer(),
            Decoder::Lines(d) => d.reader.into_inner().into_inner(),
        }
    }
}

pub struct LineDecoder<R> {
    reader: R,
    json: bool,
    /// The last line read: its number and the byte offset after it.
    origin: Origin,
    buf: Vec<u8>,
    /// JSON lines usually share their keys: reuse the last schema when they match.
    schema_cache: Option<SchemaMaker>,
    line_schema: SchemaMaker,
    /// Following a growing file: a last line without its newline is not a record yet;
    /// its bytes wait in `buf` for the rest (`partial`).
    follow: bool,
    partial: bool,
    /// The longest line read, in bytes; a longer one is a [`LineTooLong`] error.
    max_line: u64,
}

impl<R: Read> LineDecoder<BufReader<R>> {
    fn read(&mut self, max: usize, out: &mut Batch, bad: &mut Vec<BadRecord>) -> std::io::Result<bool> {
        let mut produced = 0;
        while produced < max {
            if !self.partial {
                self.buf.clear();
            }
            // At most one byte past the limit (with the line's newline): a line without
            // one is never read into memory whole.
            let room = self.max_line.saturating_add(1).saturating_sub(self.buf.len() as u64);
            let n = (&mut self.reader).take(room).read_until(b'\n', &mut self.buf)?;
            if n == 0 {
                return Ok(false);
            }
            let content = self.buf.len() - usize::from(self.buf.last() == Some(&b'\n'));
            if content as u64 > self.max_line {
                return Err(LineTooLong { line: self.origin.line + 1, limit: self.max_line }.into());
            }
            if self.follow && self.buf.last() != Some(&b'\n') {
                // The rest of this line has not been written yet.
                self.partial = true;
                return Ok(false);
            }
            self.partial = false;
            let n = self.buf.len();
            self.origin.line += 1;
            self.origin.offset += n as u64;
            let Ok(text) = std::str::from_utf8(&self.buf) else {
                bad.push(BadRecord {
                    origin: self.origin,
                    raw: String::new(),
                    error: "the line is not valid UTF-8".into(),
                });
                return Ok(true);
            };
            let line = text.trim_end_matches(['\n', '\r']);
            // A UTF-8 byte-order mark starts some files (CSV inputs drop it too).
            let line =
                if self.origin.offset == n as u64 { line.strip_prefix('\u{feff}').unwrap_or(line) } else { line };
            if self.json {
                if line.trim().is_empty() {
                    continue;
                }
                match parse_json_object(line, &mut self.schema_cache) {
                    Ok(mut record) => {
                        record.origin = self.origin;
                        out.push(record);
                    }
                    Err(error) => {
                        bad.push(BadRecord { origin: self.origin, raw: line.to_string(), error });
                        return Ok(true);
                    }
                }
            } else {
                let mut record = Record::new(self.line_schema.for_record(), vec![Value::str(line)]);
                record.origin = self.origin;
                out.push(record);
            }
            produced += 1;
            // Hand on what we have rather than wait for input that may come slowly
            // (stdin, sockets): record-at-a-time latency for streams.
            if self.reader.buffer().is_empty() {
                break;
            }
        }
        Ok(true)
    }
}

/// Parses one JSON object into a record, reusing `cache` when the keys are the same.
pub fn parse_json_object(line: &str, cache: &mut Option<SchemaMaker>) -> Result<Record, String> {
    let value: serde_json::Value = serde_json::from_str(line).map_err(|e| format!("invalid JSON: {e}"))?;
    let serde_json::Value::Object(map) = value else {
        return Err(format!("expected a JSON object, found {}", json_kind(&value)));
    };
    if map.values().any(may_be_a_wide_integer) {
        if let Some(literal) = wide_integer_literal(line) {
            return Err(format!(
                "`{literal}` is an integer beyond 64 bits (write it as a string, or as a float with a decimal point, to read it)"
            ));
        }
    }
    let same = cache
        .as_ref()
        .map(SchemaMaker::schema)
        .is_some_and(|s| s.len() == map.len() && s.names().iter().zip(map.keys()).all(|(a, b)| **a == **b));
    if !same {
        *cache = Some(SchemaMaker::new(&Schema::new(map.keys().map(|k| Arc::from(k.as_str())).collect())));
    }
    let schema = cache.as_mut().map_or_else(|| Schema::new(Vec::new()), SchemaMaker::for_record);
    let values = map.into_iter().map(|(_, v)| Value::from_json(v)).collect();
    Ok(Record::new(schema, values))
}

/// Whether a parsed value holds a number that could have been written as an integer
/// beyond 64 bits: serde_json reads those as floats (or, up to 2^64, as u64), which
/// would silently change the value. Checked on the value first, so ordinary lines pay
/// nothing more.
fn may_be_a_wide_integer(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::Number(n) => {
            n.as_i64().is_none() && (n.is_u64() || n.as_f64().is_some_and(|f| f.abs() >= 9.2e18 && f.fract() == 0.0))
        }
        serde_json::Value::Array(items) => items.iter().any(may_be_a_wide_integer),
        serde_json::Value::Object(map) => map.values().any(may_be_a_wide_integer),
        _ => false,
    }
}

/// The first number of a JSON line written as an integer (no `.`, `e` or `E`) that
/// does not fit in 64 bits, outside strings.
fn wide_integer_literal(line: &str) -> Option<&str> {
    let bytes = line.as_bytes();
    let (mut i, mut in_string) = (0, false);
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if in_string => i += 1,
            b'"' => in_string = !in_string,
            b'-' | b'0'..=b'9' if !in_string => {
                let start = i;
                while i < bytes.len() && matches!(bytes[i], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9') {
                    i += 1;
                }
                let token = &line[start..i];
                if !token.contains(['.', 'e', 'E']) && token.parse::<i64>().is_err() {
                    return Some(token);
                }
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    None
}

fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a bool",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

pub struct CsvDecoder<R: Read> {
    rows: CsvRows<R>,
    header: bool,
    /// Where the reader started (positions from the csv crate are relative to it).
    start: Origin,
    origin: Origin,
    declared: Vec<(String, ValueType)>,
    /// Schema and how each column is decoded, once known (after the header).
    layout: Option<(SchemaMaker, Vec<Column>)>,
    known: KnownColumns,
    row: Row,
}

impl<R: Read> CsvDecoder<R> {
    fn new(
        rows: CsvRows<R>,
        decoding: &Decoding,
        start: Origin,
        known: KnownColumns,
        header: Option<Vec<String>>,
    ) -> Self {
        let mut decoder = CsvDecoder {
            rows,
            header: decoding.csv.header,
            start,
            origin: start,
            declared: decoding.schema.clone(),
            layout: None,
            known,
            row: Row::default(),
        };
        if let Some(names) = header {
            decoder.layout = Some(decoder.make_layout(names));
        }
        decoder
    }

    fn make_layout(&self, names: Vec<String>) -> (SchemaMaker, Vec<Column>) {
        let names = unique_names(names);
        let columns = names
            .iter()
            .map(|n| match self.declared.iter().find(|(d, _)| d == n).map(|(_, t)| *t) {
                _ if self.known.unread.iter().any(|u| **u == **n) => Column::Unread,
                Some(t) => Column::Declared(t),
                None => Column::Inferred,
            })
            .collect();
        let schema = match &self.known.schema {
            Some(s) if s.names().iter().map(|n| &**n).eq(names.iter().map(String::as_str)) => SchemaMaker::new(s),
            _ => SchemaMaker::new(&Schema::from_names(&names)),
        };
        (schema, columns)
    }

    /// Updates the origin to the record just read: its line and the offset after it.
    fn advance(&mut self) {
        self.origin.offset = self.start.offset + self.rows.position().byte;
        self.origin.line = self.start.line + self.rows.record_start().line;
    }

    fn read(&mut self, max: usize, out: &mut Batch, bad: &mut Vec<BadRecord>) -> std::io::Result<bool> {
        let mut produced = 0;
        while produced < max {
            // The parser is lenient (as the `csv` crate's): any bytes make rows, so
            // only reading can fail.
            let start_line = self.start.line;
            let read = self.rows.read(&mut self.row).map_err(|e| match too_long(&e) {
                // The line counted from the start of the input, not of this reader.
                Some(&LineTooLong { line, limit }) => LineTooLong { line: start_line + line, limit }.into(),
                None => e,
            })?;
            if !read {
                return Ok(false);
            }
            self.advance();
            if self.rows.unterminated_quote() {
                let lines = self.rows.position().line.saturating_sub(self.rows.record_start().line);
                bad.push(BadRecord {
                    origin: self.origin,
                    raw: raw_row(&self.row).chars().take(200).collect(),
                    error: format!(
                        "a quoted field opened in this record never closes: the record runs to the end of the input ({} more line{})",
                        lines,
                        if lines == 1 { "" } else { "s" }
                    ),
                });
                return Ok(true);
            }
            if self.layout.is_none() {
                let names: Vec<String> = if self.header {
                    let names = self.row.iter().map(|f| String::from_utf8_lossy(f).trim().to_string()).collect();
                    self.layout = Some(self.make_layout(names));
                    continue;
                } else if !self.declared.is_empty() {
                    self.declared.iter().map(|(n, _)| n.clone()).collect()
                } else {
                    (1..=self.row.len()).map(|i| format!("c{i}")).collect()
                };
                self.layout = Some(self.make_layout(names));
            }
            let Some((maker, columns)) = &mut self.layout else { continue };
            let schema = maker.schema();
            if self.row.len() != schema.len() {
                if self.row.len() == 1 && self.row.get(0).is_some_and(|f| f.is_empty()) {
                    continue;
                }
                bad.push(BadRecord {
                    origin: self.origin,
                    raw: raw_row(&self.row),
                    error: format!("expected {} fields, found {}", schema.len(), self.row.len()),
                });
                return Ok(true);
            }
            match decode_row(&self.row, schema, columns) {
                Ok(values) => {
                    let mut record = Record::new(maker.for_record(), values);
                    record.origin = self.origin;
                    out.push(record);
                    produced += 1;
                }
                Err(error) => {
                    bad.push(BadRecord { origin: self.origin, raw: raw_row(&self.row), error });
                    return Ok(true);
                }
            }
        }
        Ok(true)
    }
}

fn raw_row(row: &Row) -> String {
    row.iter().map(|f| String::from_utf8_lossy(f).into_owned()).collect::<Vec<_>>().join(",")
}

fn decode_row(row: &Row, schema: &Schema, columns: &[Column]) -> Result<Vec<Value>, String> {
    // Each value is assigned where it goes: a value chosen among variants and then
    // pushed is first built in a slot on the stack and copied from there, and that copy
    // (wide loads over the narrower stores of the variant's tag and payload) stalls on
    // store forwarding, which was most of decoding's time.
    let mut values = vec![Value::Null; row.len()];
    // One UTF-8 check for the whole row; a field is then a slice of it (the check per
    // field only when the row is invalid, to name the column, or a field boundary
    // falls inside a character).
    let whole = std::str::from_utf8(row.bytes()).ok();
    for (i, value) in values.iter_mut().enumerate() {
        let field = row.get(i).unwrap_or_default();
        // Declared ints (most numeric columns) straight from the bytes: no UTF-8 pass.
        if columns[i] == Column::Declared(ValueType::Int) {
            let parsed = match row.range(i) {
                Some(r) => int_in(row.bytes(), r.start, r.end),
                None => int_from_ascii(field),
            };
            if let Some(n) = parsed {
                *value = Value::Int(n);
                continue;
            }
        }
        let text = match whole.zip(row.range(i)).and_then(|(w, r)| w.get(r)) {
            Some(text) => text,
            None => {
                std::str::from_utf8(field).map_err(|_| format!("column `{}` is not valid UTF-8", schema.names()[i]))?
            }
        };
        match columns[i] {
            Column::Unread => {}
            Column::Inferred => *value = infer(text).map_err(|e| format!("column `{}`: {e}", schema.names()[i]))?,
            // `convert`'s string case, without a `Result` to copy the value out of.
            Column::Declared(ValueType::String) if !text.is_empty() => *value = Value::str(text),
            Column::Declared(t) => {
                *value = convert(text, t).map_err(|e| format!("column `{}`: {e}", schema.names()[i]))?
            }
        }
    }
    Ok(values)
}

/// A plain decimal integer (optional sign, digits only, no overflow); None for
/// anything else, which then takes the general path (trimming, errors, NULL).
fn int_from_ascii(bytes: &[u8]) -> Option<i64> {
    let (negative, digits) = match bytes.first()? {
        b'-' => (true, &bytes[1..]),
        b'+' => (false, &bytes[1..]),
        _ => (false, bytes),
    };
    if digits.is_empty() || digits.len() > 18 {
        return None;
    }
    let mut n: i64 = 0;
    for &b in digits {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n * 10 + i64::from(b - b'0');
    }
    Some(if negative { -n } else { n })
}

/// [`int_from_ascii`] of `bytes[start..end]`, reading the digits eight at a time
/// (a loop per digit was a fifth of decoding W1's rows) where at least eight bytes
/// follow each run of digits.
fn int_in(bytes: &[u8], start: usize, end: usize) -> Option<i64> {
    let (negative, digits) = match bytes.get(start)? {
        b'-' => (true, start + 1),
        b'+' => (false, start + 1),
        _ => (false, start),
    };
    let len = end.checked_sub(digits)?;
    let word = |at: usize| bytes.get(at..at + 8).and_then(|w| <[u8; 8]>::try_from(w).ok()).map(u64::from_le_bytes);
    let n = match len {
        1..=8 => word(digits).and_then(|w| eight_digits(w, len)),
        9..=16 => word(digits)
            .and_then(|w| eight_digits(w, 8))
            .zip(word(digits + 8).and_then(|w| eight_digits(w, len - 8)))
            .map(|(high, low)| high * 10u64.pow(len as u32 - 8) + low),
        _ => None,
    };
    match n {
        Some(n) => Some(if negative { -(n as i64) } else { n as i64 }),
        None => int_from_ascii(bytes.get(start..end)?),
    }
}

/// The number the first `len` (1 to 8) bytes of `word` (read little-endian) spell in
/// decimal digits; None unless they all are digits. Lemire's method: the digits are
/// moved up and led by '0's, checked all at once and combined in pairs, then pairs of
/// pairs, by three multiplications.
fn eight_digits(word: u64, len: usize) -> Option<u64> {
    const ZEROS: u64 = 0x3030_3030_3030_3030;
    let shift = 8 * (8 - len as u32);
    let w = match shift {
        0 => word,
        _ => (word << shift) | (ZEROS >> (64 - shift)),
    };
    let high_nibbles = w & 0xF0F0_F0F0_F0F0_F0F0;
    let past_nine = (w.wrapping_add(0x0606_0606_0606_0606) & 0xF0F0_F0F0_F0F0_F0F0) >> 4;
    if high_nibbles | past_nine != 0x3333_3333_3333_3333 {
        return None;
    }
    let v = w - ZEROS;
    let v = v.wrapping_mul(10).wrapping_add(v >> 8);
    let pairs = (v & 0x0000_00FF_0000_00FF).wrapping_mul(100 + (1_000_000 << 32));
    let quads = ((v >> 16) & 0x0000_00FF_0000_00FF).wrapping_mul(1 + (10_000 << 32));
    Some(pairs.wrapping_add(quads) >> 32)
}

/// Types an untyped CSV value: empty is NULL, then int, float, bool, else string.
///
/// An integer beyond 64 bits is an error rather than a float that silently loses its
/// last digits: a schema can declare the column `float` or `string`.
pub fn infer(text: &str) -> Result<Value, String> {
    if text.is_empty() {
        return Ok(Value::Null);
    }
    let first = text.as_bytes()[0];
    if first.is_ascii_digit() || first == b'-' || first == b'+' || first == b'.' {
        if let Ok(i) = text.parse::<i64>() {
            return Ok(Value::Int(i));
        }
        let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
        if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!(
                "`{text}` is an integer beyond 64 bits (declare the column `float` or `string` in `schema:` to read it)"
            ));
        }
        if text.bytes().all(|b| b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E')) {
            if let Ok(f) = text.parse::<f64>() {
                return Ok(Value::Float(f));
            }
        }
    }
    if text.eq_ignore_ascii_case("true") {
        return Ok(Value::Bool(true));
    }
    if text.eq_ignore_ascii_case("false") {
        return Ok(Value::Bool(false));
    }
    Ok(Value::str(text))
}

/// Converts a CSV value to a declared type; empty is NULL for every type.
pub fn convert(text: &str, ty: ValueType) -> Result<Value, String> {
    if text.is_empty() {
        return Ok(Value::Null);
    }
    let bad = |what: &str| format!("`{text}` is not {what}");
    Ok(match ty {
        ValueType::String => Value::str(text),
        ValueType::Int => Value::Int(text.trim().parse().map_err(|_| bad("an int"))?),
        ValueType::Float => Value::Float(text.trim().parse().map_err(|_| bad("a float"))?),
        ValueType::Bool => match text.trim().to_ascii_lowercase().as_str() {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => return Err(bad("a bool (true or false)")),
        },
        ValueType::Timestamp => match text.trim().parse::<i64>() {
            Ok(ms) => Value::Timestamp(ms),
            Err(_) => Value::Timestamp(
                chrono::DateTime::parse_from_rfc3339(text.trim())
                    .map_err(|_| bad("a timestamp (epoch ms or RFC 3339)"))?
                    .timestamp_millis(),
            ),
        },
        ValueType::Json => {
            Value::from_json(serde_json::from_str(text).map_err(|e| format!("`{text}` is not JSON: {e}"))?)
        }
    })
}

/// Column names made unique: a name seen before gets `_2`, `_3`... (the first free
/// one), so a header `a,a,c` gives fields `a`, `a_2`, `c` instead of a record with
/// two fields `a` (and JSON output with a duplicate key).
pub fn unique_names(names: Vec<String>) -> Vec<String> {
    let mut seen: std::collections::HashSet<String> = std::collections::HashSet::with_capacity(names.len());
    if names.iter().all(|n| seen.insert(n.clone())) {
        return names;
    }
    let mut taken: std::collections::HashSet<String> = names.iter().cloned().collect();
    let mut used = std::collections::HashSet::with_capacity(names.len());
    names
        .into_iter()
        .map(|name| {
            if used.insert(name.clone()) {
                return name;
            }
            let unique = (2..).map(|i| format!("{name}_{i}")).find(|n| !taken.contains(n)).unwrap_or_default();
            taken.insert(unique.clone());
            used.insert(unique.clone());
            unique
        })
        .collect()
}

/// The header of a CSV input, for validation (`flowctl run` checks field names
/// against it before starting), with duplicate names made unique as the decoder
/// does (and a warning naming them).
pub fn read_csv_header(reader: impl Read, decoding: &Decoding) -> Option<Vec<String>> {
    let raw = read_raw_csv_header(reader, decoding)?;
    let names = unique_names(raw.clone());
    for (before, after) in raw.iter().zip(&names).filter(|(b, a)| b != a) {
        tracing::warn!("the CSV header repeats the column `{before}`: this one is the field `{after}`");
    }
    Some(names)
}

fn read_raw_csv_header(reader: impl Read, decoding: &Decoding) -> Option<Vec<String>> {
    let mut r = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(decoding.csv.delimiter)
        .quote(decoding.csv.quote)
        // A header longer than the limit is refused when its line is read as a record.
        .from_reader(reader.take(decoding.max_line.saturating_add(1)));
    let mut row = csv::StringRecord::new();
    r.read_record(&mut row).ok()?;
    Some(row.iter().map(|f| f.trim().to_string()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ints_from_ascii_agree_with_the_general_parser() {
        for text in ["0", "42", "-7", "+9", "123456789012345678", "-123456789012345678"] {
            assert_eq!(int_from_ascii(text.as_bytes()), text.parse::<i64>().ok(), "{text}");
        }
        for text in ["", "-", " 1", "1 ", "1.5", "1234567890123456789", "x"] {
            assert_eq!(int_from_ascii(text.as_bytes()), None, "{text}");
        }
    }

    #[test]
    fn inference_order() {
        assert_eq!(infer("42"), Ok(Value::Int(42)));
        assert_eq!(infer("-4.5"), Ok(Value::Float(-4.5)));
        assert_eq!(infer("TRUE"), Ok(Value::Bool(true)));
        assert_eq!(infer("inf"), Ok(Value::str("inf")));
        assert_eq!(infer("1-2"), Ok(Value::str("1-2")));
        assert_eq!(infer(""), Ok(Value::Null));
        assert!(infer("99999999999999999999").unwrap_err().contains("beyond 64 bits"));
        assert!(infer("-9223372036854775809").is_err());
        assert_eq!(infer("9223372036854775807"), Ok(Value::Int(i64::MAX)));
        assert_eq!(infer("1e20"), Ok(Value::Float(1e20)));
    }

    #[test]
    fn utf8_is_checked_once_per_row_and_a_bad_column_is_named() {
        let schema = Schema::from_names(&["a", "b"]);
        let decode_all = |bytes: &[u8]| {
            let mut rows = CsvRows::new(bytes, 64, b',', b'"');
            let mut row = Row::default();
            let mut out = Vec::new();
            while rows.read(&mut row).unwrap() {
                out.push(decode_row(&row, &schema, &[Column::Inferred, Column::Inferred]));
            }
            out
        };
        // The first row goes through csv_core, later plain ones take the fast path.
        let decoded = decode_all("é,x\nü,y\n".as_bytes());
        assert_eq!(decoded[0].as_ref().unwrap(), &vec![Value::str("é"), Value::str("x")]);
        assert_eq!(decoded[1].as_ref().unwrap(), &vec![Value::str("ü"), Value::str("y")]);
        let decoded = decode_all(b"h,h\nok,\xff\n\"\xc3\",\"\xa9\"\n");
        assert!(decoded[1].as_ref().unwrap_err().contains("column `b` is not valid UTF-8"));
        // Quoted fields back to back make valid UTF-8 as a whole, but not each alone.
        assert!(decoded[2].as_ref().unwrap_err().contains("column `a` is not valid UTF-8"));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4000))]
        /// Digits read eight at a time give what the loop per digit gives, whatever
        /// the field holds (signs, digits, other bytes, up to 20 long) and whatever
        /// follows it in the row.
        #[test]
        fn ints_in_a_row_agree_with_the_loop_per_digit(
            before in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..3),
            field in proptest::collection::vec(proptest::prop_oneof![
                8 => b'0'..=b'9', 1 => proptest::strategy::Just(b'-'), 1 => proptest::prelude::any::<u8>()
            ], 0..21),
            after in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..20),
        ) {
            let row = [&before[..], &field[..], &after[..]].concat();
            let (start, end) = (before.len(), before.len() + field.len());
            proptest::prop_assert_eq!(int_in(&row, start, end), int_from_ascii(&field));
        }
    }

    #[test]
    fn eight_digits_at_once() {
        assert_eq!(eight_digits(u64::from_le_bytes(*b"12345678"), 8), Some(12_345_678));
        assert_eq!(eight_digits(u64::from_le_bytes(*b"907,abcd"), 3), Some(907));
        assert_eq!(eight_digits(u64::from_le_bytes(*b"0000000x"), 7), Some(0));
        assert_eq!(eight_digits(u64::from_le_bytes(*b"99999999"), 8), Some(99_999_999));
        for bad in [*b"1234567/", *b"1234567:", *b"1x345678", *b"\xff2345678"] {
            assert_eq!(eight_digits(u64::from_le_bytes(bad), 8), None);
        }
        let row = b"1700000000123,u1";
        assert_eq!(int_in(row, 0, 13), Some(1_700_000_000_123));
        assert_eq!(int_in(b"-1700000000123,u", 0, 14), Some(-1_700_000_000_123));
    }

    #[test]
    fn integers_beyond_64_bits_in_json_are_errors_and_floats_are_not() {
        let mut cache = None;
        for line in [
            r#"{"id": 99999999999999999999}"#,
            r#"{"a": [1, {"b": -9223372036854775809}]}"#,
            r#"{"u": 18446744073709551615}"#,
        ] {
            let error = parse_json_object(line, &mut cache).unwrap_err();
            assert!(error.contains("is an integer beyond 64 bits"), "{line}: {error}");
        }
        for line in [r#"{"f": 1e20, "s": "99999999999999999999"}"#, r#"{"i": -9223372036854775808, "g": 2.5e19}"#] {
            assert!(parse_json_object(line, &mut cache).is_ok(), "{line}");
        }
    }

    #[test]
    fn json_lines_share_schemas() {
        let mut cache = None;
        let a = parse_json_object(r#"{"a":1,"b":"x"}"#, &mut cache).expect("valid");
        let b = parse_json_object(r#"{"a":2,"b":"y"}"#, &mut cache).expect("valid");
        assert!(Arc::ptr_eq(a.schema(), b.schema()));
        assert!(parse_json_object("[1]", &mut cache).unwrap_err().contains("expected a JSON object"));
    }
}
