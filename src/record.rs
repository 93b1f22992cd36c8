//! Record and Value: the one data type that flows between operators.
//!
//! A [`Record`] is an ordered map of fields stored as a shared [`Schema`] (field
//! names, shared by every record of the same shape) plus a vector of values. Records
//! move between operators in batches ([`Batch`]); strings, lists and maps are
//! reference counted so that copying a record (fan-out, windows) never copies text.

use std::fmt::Write as _;
use std::sync::Arc;

/// A field value. Equality between variants is *structural* (`Int(1) != Float(1.0)`,
/// `Int(1) != Str("1")`), which is what keys need; SQL comparison with numeric
/// promotion lives in the expression evaluator.
/// The string of a [`Value`]: small strings (most keys, codes, short names) are
/// stored inline, so records decoded from text do not allocate per field.
pub type Str = smol_str::SmolStr;

#[derive(Clone, Debug, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub enum Value {
    #[default]
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    /// Up to 23 bytes inline (no allocation); longer ones shared, cloned in O(1).
    Str(Str),
    /// Milliseconds since the Unix epoch, UTC.
    Timestamp(i64),
    List(Arc<Vec<Value>>),
    /// A nested object (from JSON), fields in their original order.
    Map(Arc<Vec<(Arc<str>, Value)>>),
}

impl Value {
    /// A string value. Short ones (most keys, codes, names) are built inline here:
    /// `SmolStr::new` copies them by a call with a variable length and returns them
    /// through memory, which took nearly twice as long per value (W1: -6% CPU).
    #[inline]
    pub fn str(s: &str) -> Value {
        Value::Str(match s.len() <= Str::INLINE_CAP {
            true => Str::new_inline(s),
            false => Str::new(s),
        })
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// The name of this value's type, as used in error messages and schemas.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float",
            Value::Str(_) => "string",
            Value::Timestamp(_) => "timestamp",
            Value::List(_) => "list",
            Value::Map(_) => "map",
        }
    }

    /// A nested field of a map value.
    pub fn get_field(&self, name: &str) -> Option<&Value> {
        match self {
            Value::Map(fields) => fields.iter().find(|(k, _)| &**k == name).map(|(_, v)| v),
            _ => None,
        }
    }

    /// Appends the JSON text of this value to `out`.
    pub fn write_json(&self, out: &mut String) {
        match self {
            Value::Null => out.push_str("null"),
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Value::Int(i) => out.push_str(itoa::Buffer::new().format(*i)),
            Value::Float(f) => write_float(*f, out, true),
            Value::Str(s) => write_json_string(s, out),
            Value::Timestamp(ms) => {
                out.push('"');
                write_timestamp(*ms, out);
                out.push('"');
            }
            Value::List(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.write_json(out);
                }
                out.push(']');
            }
            Value::Map(fields) => write_json_object(fields.iter().map(|(k, v)| (&**k, v)), out),
        }
    }

    /// Appends the plain text form of this value (CSV cells, string conversion):
    /// strings unquoted, null as the empty string, lists and maps as JSON.
    pub fn write_text(&self, out: &mut String) {
        match self {
            Value::Null => {}
            Value::Str(s) => out.push_str(s),
            Value::Float(f) => write_float(*f, out, false),
            Value::Timestamp(ms) => write_timestamp(*ms, out),
            other => other.write_json(out),
        }
    }

    pub fn to_text(&self) -> String {
        let mut s = String::new();
        self.write_text(&mut s);
        s
    }

    pub fn to_json(&self) -> String {
        let mut s = String::new();
        self.write_json(&mut s);
        s
    }

    /// Converts a parsed JSON value, keeping its types (integers that fit i64 stay ints).
    pub fn from_json(v: serde_json::Value) -> Value {
        match v {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(b),
            serde_json::Value::Number(n) => match n.as_i64() {
                Some(i) => Value::Int(i),
                None => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
            },
            serde_json::Value::String(s) => Value::Str(Str::from(s)),
            serde_json::Value::Array(items) => Value::List(Arc::new(items.into_iter().map(Value::from_json).collect())),
            serde_json::Value::Object(map) => {
                Value::Map(Arc::new(map.into_iter().map(|(k, v)| (Arc::from(k), Value::from_json(v))).collect()))
            }
        }
    }
}

/// Floats as Flink writes doubles: NaN and the infinities are values, not NULL (so
/// what `IS NULL` says and what is written agree). JSON has no literal for them:
/// they are the strings `"NaN"`, `"Infinity"`, `"-Infinity"`, as Jackson (Flink's JSON
/// format) writes them; in text (CSV cells) the same words.
fn write_float(f: f64, out: &mut String, json: bool) {
    if f.is_finite() {
        out.push_str(ryu::Buffer::new().format_finite(f));
        return;
    }
    let word = match f {
        f if f.is_nan() => "NaN",
        f if f > 0.0 => "Infinity",
        _ => "-Infinity",
    };
    if json {
        out.push('"');
        out.push_str(word);
        out.push('"');
    } else {
        out.push_str(word);
    }
}

/// Writes epoch milliseconds as RFC 3339 UTC with millisecond precision.
pub fn write_timestamp(ms: i64, out: &mut String) {
    use chrono::{Datelike, Timelike};
    match chrono::DateTime::from_timestamp_millis(ms) {
        // Digit by digit: a strftime pattern is parsed again on every call, which was
        // a twelfth of Nexmark q14's time.
        Some(t) if (0..=9999).contains(&t.year()) => {
            let parts = [
                (t.year() as u32, 4, '-'),
                (t.month(), 2, '-'),
                (t.day(), 2, 'T'),
                (t.hour(), 2, ':'),
                (t.minute(), 2, ':'),
                (t.second(), 2, '.'),
                (t.timestamp_subsec_millis(), 3, 'Z'),
            ];
            for (n, width, after) in parts {
                for place in (0..width).rev() {
                    out.push(char::from(b'0' + (n / 10u32.pow(place) % 10) as u8));
                }
                out.push(after);
            }
        }
        Some(t) => {
            let _ = write!(out, "{}", t.format("%Y-%m-%dT%H:%M:%S%.3fZ"));
        }
        None => out.push_str(itoa::Buffer::new().format(ms)),
    }
}

/// Appends `s` as a JSON string (quoted, escaped as `serde_json` escapes it).
pub fn write_json_string(s: &str, out: &mut String) {
    out.push('"');
    // Runs of bytes that need no escape are copied whole (a push per character was
    // a seventh of Nexmark q22's time); every byte escaped is ASCII, so the runs
    // between them are whole characters.
    let mut run = 0;
    for (i, &b) in s.as_bytes().iter().enumerate() {
        let escaped = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0..=0x1f => "",
            _ => continue,
        };
        out.push_str(&s[run..i]);
        match escaped {
            "" => {
                let _ = write!(out, "\\u{b:04x}");
            }
            e => out.push_str(e),
        }
        run = i + 1;
    }
    out.push_str(&s[run..]);
    out.push('"');
}

/// Appends a JSON object of `fields`, in order.
pub fn write_json_object<'a>(fields: impl Iterator<Item = (&'a str, &'a Value)>, out: &mut String) {
    out.push('{');
    for (i, (k, v)) in fields.enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_json_string(k, out);
        out.push(':');
        v.write_json(out);
    }
    out.push('}');
}

/// The field names of a record shape. Shared (`Arc`) by all records of that shape, so
/// compiled expressions can resolve a field to an index once and check the shape by
/// its `id`. A thread that makes records of a shape holds its own [`Schema::twin`]
/// (same names, same id), so that threads do not count references on one shared
/// cache line per record.
#[derive(Debug)]
pub struct Schema {
    names: Vec<Arc<str>>,
    index: ahash::HashMap<Arc<str>, usize>,
    id: u64,
}

impl PartialEq for Schema {
    fn eq(&self, other: &Schema) -> bool {
        self.names == other.names
    }
}

impl Eq for Schema {}

impl Schema {
    pub fn new(names: Vec<Arc<str>>) -> Arc<Schema> {
        static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        let index = names.iter().enumerate().map(|(i, n)| (n.clone(), i)).collect();
        let id = NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Arc::new(Schema { names, index, id })
    }

    /// A number no other schema of this process has (from 1): a shape's identity that,
    /// unlike its address, is never reused after the schema is dropped.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// A copy of this schema with the same identity (`id`), for one thread to put in
    /// the records it makes: counting references to a schema shared by several busy
    /// threads took one contended atomic per record (W1 split between two workers:
    /// about 5% of the run's time on one `lock inc`).
    pub fn twin(&self) -> Arc<Schema> {
        Arc::new(Schema { names: self.names.clone(), index: self.index.clone(), id: self.id })
    }

    /// Whether two schemas are the same shape (one schema or twins of it).
    #[inline]
    pub fn same(a: &Schema, b: &Schema) -> bool {
        a.id == b.id
    }

    pub fn from_names<S: AsRef<str>>(names: &[S]) -> Arc<Schema> {
        Schema::new(names.iter().map(|n| Arc::from(n.as_ref())).collect())
    }

    pub fn names(&self) -> &[Arc<str>] {
        &self.names
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// Position of a field. Small schemas are scanned linearly: faster than hashing.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        if self.names.len() <= 8 {
            self.names.iter().position(|n| &**n == name)
        } else {
            self.index.get(name).copied()
        }
    }
}

/// The schema one thread puts in the records it makes, renewed (a fresh
/// [`Schema::twin`]) every [`RENEW_TWIN_AFTER`] records. The records are usually freed
/// on another thread (a sink's, the next step's), whose reference counting then
/// touches a twin this thread has stopped using, instead of one cache line both
/// threads write for every record (Nexmark q0: 98% of a sink's record drops waited on
/// that line).
#[derive(Debug)]
pub struct SchemaMaker {
    schema: Arc<Schema>,
    made: u32,
}

/// Records per twin of a [`SchemaMaker`].
pub const RENEW_TWIN_AFTER: u32 = 1024;

impl SchemaMaker {
    /// Makes records of `schema`'s shape with twins of it.
    pub fn new(schema: &Schema) -> SchemaMaker {
        SchemaMaker { schema: schema.twin(), made: 0 }
    }

    /// The schema for the next record.
    #[inline]
    pub fn for_record(&mut self) -> Arc<Schema> {
        self.made += 1;
        if self.made > RENEW_TWIN_AFTER {
            self.made = 1;
            self.schema = self.schema.twin();
        }
        self.schema.clone()
    }

    /// The current twin, to compare shapes or read names.
    pub fn schema(&self) -> &Arc<Schema> {
        &self.schema
    }
}

/// Where a record came from: the source (index in the pipeline's source list), the
/// file (index in that source's file list), the 1-based line number (0 = unknown) and
/// the byte offset just after the record. Names the place of a bad record in errors,
/// and is where a restarted source resumes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Origin {
    pub source: u32,
    pub file: u32,
    pub line: u64,
    pub offset: u64,
}

/// Appends the values `results` gives, or returns the first error (each error's place
/// then holds `T::default()`, for the caller to clear). Written as one extend of known
/// length, each value goes straight into the vector, where a `push` per value builds
/// it on the stack and copies it, and that copy (wide loads over the separate stores
/// of an enum's tag and payload) stalls on store forwarding: 3x slower per value in
/// isolation (keys, aggregate arguments and `map` outputs are built this way).
#[inline(always)]
pub fn extend_or_first_error<T: Default, E>(
    values: &mut Vec<T>,
    results: impl Iterator<Item = Result<T, E>>,
) -> Result<(), E> {
    let mut first = None;
    values.extend(results.map(|r| {
        r.unwrap_or_else(|e| {
            first.get_or_insert(e);
            T::default()
        })
    }));
    first.map_or(Ok(()), Err)
}

/// The watermark before any record: nothing is known about event time yet.
pub const NO_WATERMARK: i64 = i64::MIN;

/// One record: field values laid out as its schema says, plus its event time (epoch
/// ms, carried like Flink's StreamRecord timestamp so that steps may drop the field),
/// the watermark as it stood before the record entered the pipeline (so windows decide
/// lateness per record, whatever the batch size) and its origin.
#[derive(Clone, Debug)]
pub struct Record {
    schema: Arc<Schema>,
    values: Vec<Value>,
    pub event_time: Option<i64>,
    pub watermark: i64,
    pub origin: Origin,
}

impl PartialEq for Record {
    /// Records are equal when they have the same fields in the same order with equal values.
    fn eq(&self, other: &Self) -> bool {
        (Schema::same(&self.schema, &other.schema) || self.schema.names == other.schema.names)
            && self.values == other.values
    }
}

impl Record {
    /// Builds a record; `values` must have one value per schema field.
    pub fn new(schema: Arc<Schema>, values: Vec<Value>) -> Record {
        debug_assert_eq!(schema.len(), values.len(), "record values do not match its schema");
        Record { schema, values, event_time: None, watermark: NO_WATERMARK, origin: Origin::default() }
    }

    /// Builds a record from name/value pairs (tests, small outputs).
    pub fn from_pairs<S: AsRef<str>>(pairs: Vec<(S, Value)>) -> Record {
        let names: Vec<Arc<str>> = pairs.iter().map(|(n, _)| Arc::from(n.as_ref())).collect();
        let values = pairs.into_iter().map(|(_, v)| v).collect();
        Record::new(Schema::new(names), values)
    }

    /// The same metadata (event time, origin) with other fields.
    pub fn with_fields(&self, schema: Arc<Schema>, values: Vec<Value>) -> Record {
        debug_assert_eq!(schema.len(), values.len(), "record values do not match its schema");
        Record { schema, values, event_time: self.event_time, watermark: self.watermark, origin: self.origin }
    }

    /// Takes the values out, leaving none (give the record new ones with
    /// [`Record::set_fields`]).
    pub fn take_values(&mut self) -> Vec<Value> {
        std::mem::take(&mut self.values)
    }

    /// Gives the record a new shape and values, keeping its event time, watermark and
    /// origin.
    pub fn set_fields(&mut self, schema: Arc<Schema>, values: Vec<Value>) {
        debug_assert_eq!(schema.len(), values.len(), "record values do not match its schema");
        self.schema = schema;
        self.values = values;
    }

    pub fn schema(&self) -> &Arc<Schema> {
        &self.schema
    }

    /// This record moved into a value vector allocated by the calling thread, holding
    /// `schema`, a twin of its own (see [`SchemaMaker`]): what a thread keeps of a
    /// record another thread made. The values are moved, not cloned; this record keeps
    /// its emptied vector, so that its maker frees that allocation.
    pub fn move_to_own(&mut self, schema: Arc<Schema>) -> Record {
        debug_assert!(Schema::same(&self.schema, &schema), "a moved record keeps its shape");
        let mut values = Vec::with_capacity(self.values.len());
        values.append(&mut self.values);
        Record { schema, values, ..*self }
    }

    pub fn values(&self) -> &[Value] {
        &self.values
    }

    /// Takes field `i`'s value out, leaving NULL in its place.
    pub fn take_value(&mut self, i: usize) -> Value {
        self.values.get_mut(i).map(std::mem::take).unwrap_or_default()
    }

    /// Puts a value back into field `i` (see [`Record::take_value`]).
    pub fn put_value(&mut self, i: usize, value: Value) {
        if let Some(slot) = self.values.get_mut(i) {
            *slot = value;
        }
    }

    pub fn into_values(self) -> Vec<Value> {
        self.values
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    pub fn get(&self, name: &str) -> Option<&Value> {
        self.schema.index_of(name).map(|i| &self.values[i])
    }

    pub fn fields(&self) -> impl Iterator<Item = (&Arc<str>, &Value)> {
        self.schema.names.iter().zip(self.values.iter())
    }

    /// Appends the record as one JSON object (no newline).
    pub fn write_json(&self, out: &mut String) {
        write_json_object(self.fields().map(|(k, v)| (&**k, v)), out);
    }

    pub fn to_json(&self) -> String {
        let mut s = String::new();
        self.write_json(&mut s);
        s
    }

    /// The record as a map value (for an error sink's `input` field, nesting).
    pub fn to_map_value(&self) -> Value {
        Value::Map(Arc::new(self.fields().map(|(k, v)| (k.clone(), v.clone())).collect()))
    }
}

/// Records travel between operators in batches.
pub type Batch = Vec<Record>;

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// Quotes, backslashes and control characters among any others: JSON that
        /// reads back as the string, with no control character left raw.
        /// Written digit by digit as chrono's RFC 3339 pattern writes them.
        #[test]
        fn timestamps_are_written_as_the_rfc_3339_pattern_writes_them(ms in -70_000_000_000_000i64..300_000_000_000_000) {
            let mut out = String::new();
            write_timestamp(ms, &mut out);
            let t = chrono::DateTime::from_timestamp_millis(ms).unwrap();
            proptest::prop_assert_eq!(out, t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string());
        }

        #[test]
        fn json_strings_read_back_as_written(s in "(\\PC|[\"\\\\\\x00-\\x1f])*") {
            let mut out = String::new();
            write_json_string(&s, &mut out);
            proptest::prop_assert!(!out.bytes().any(|b| b < 0x20), "{}", out);
            proptest::prop_assert_eq!(serde_json::from_str::<String>(&out).unwrap(), s);
        }
    }

    #[test]
    fn a_maker_renews_its_twin_every_so_many_records() {
        let schema = Schema::from_names(&["a"]);
        let mut maker = SchemaMaker::new(&schema);
        let first = maker.for_record();
        assert!(!Arc::ptr_eq(&first, &schema) && Schema::same(&first, &schema));
        for _ in 1..RENEW_TWIN_AFTER {
            assert!(Arc::ptr_eq(&maker.for_record(), &first));
        }
        let renewed = maker.for_record();
        assert!(!Arc::ptr_eq(&renewed, &first) && Schema::same(&renewed, &schema));
        assert!(Arc::ptr_eq(maker.schema(), &renewed));
    }

    #[test]
    fn twins_are_the_same_shape_in_another_allocation() {
        let schema = Schema::from_names(&["a", "b"]);
        let twin = schema.twin();
        assert!(!Arc::ptr_eq(&schema, &twin));
        assert!(Schema::same(&schema, &twin));
        assert_eq!(twin.names(), schema.names());
        assert_eq!(twin.index_of("b"), Some(1));
        // A schema with the same names made elsewhere is equal but another shape.
        let lookalike = Schema::from_names(&["a", "b"]);
        assert!(!Schema::same(&schema, &lookalike));
        let values = vec![Value::Int(1), Value::Int(2)];
        assert_eq!(Record::new(schema.clone(), values.clone()), Record::new(twin, values));
    }

    #[test]
    fn a_record_moved_to_own_keeps_its_values_and_stamps_and_leaves_an_empty_vector() {
        let schema = Schema::from_names(&["a", "s"]);
        let long = "a string longer than the inline twenty-three bytes";
        let mut made = Record::new(schema.clone(), vec![Value::Int(1), Value::str(long)]);
        made.event_time = Some(7);
        made.watermark = 5;
        made.origin.line = 3;
        let expected = made.clone();
        let twin = schema.twin();
        let own = made.move_to_own(twin.clone());
        assert_eq!(own, expected);
        assert!(Arc::ptr_eq(own.schema(), &twin));
        assert_eq!((own.event_time, own.watermark, own.origin), (Some(7), 5, expected.origin));
        assert!(made.values().is_empty());
    }

    #[test]
    fn values_stay_three_words() {
        // A record's values are a Vec<Value>: the inline strings must not make them wider.
        assert_eq!(std::mem::size_of::<Value>(), 24);
    }

    #[test]
    fn json_output_keeps_field_order_and_types() {
        let r = Record::from_pairs(vec![
            ("b", Value::Int(1)),
            ("a", Value::Float(2.5)),
            ("s", Value::str("x\"y")),
            ("n", Value::Null),
            ("t", Value::Timestamp(0)),
        ]);
        assert_eq!(r.to_json(), r#"{"b":1,"a":2.5,"s":"x\"y","n":null,"t":"1970-01-01T00:00:00.000Z"}"#);
    }

    #[test]
    fn keys_keep_their_types() {
        assert_ne!(Value::Int(1), Value::str("1"));
        assert_ne!(Value::Int(1), Value::Float(1.0));
    }

    #[test]
    fn schema_lookup_small_and_large() {
        let small = Schema::from_names(&["a", "b"]);
        assert_eq!(small.index_of("b"), Some(1));
        let names: Vec<String> = (0..20).map(|i| format!("f{i}")).collect();
        let large = Schema::from_names(&names);
        assert_eq!(large.index_of("f17"), Some(17));
        assert_eq!(large.index_of("zz"), None);
    }
}
