//! What the translation knows of a relation: its columns with their Flink SQL types,
//! whether it carries the event-time attribute, and the key, window and changelog
//! facts that later steps and sinks need. A refusal is a message at a position.

use crate::spec::node::Span;

/// The name of the event-time attribute column every source with `event_time` gets;
/// views pass it along, sinks never write it.
pub const TIME_COLUMN: &str = "flowctl_event_time";

/// flowctl's value types that have a Flink SQL type of the same values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SqlType {
    Bigint,
    Double,
    String,
    Boolean,
    /// The NULL literal: fits any column.
    Null,
}

impl SqlType {
    pub fn name(self) -> &'static str {
        match self {
            SqlType::Bigint => "BIGINT",
            SqlType::Double => "DOUBLE",
            SqlType::String => "STRING",
            SqlType::Boolean => "BOOLEAN",
            SqlType::Null => "NULL",
        }
    }

    pub fn numeric(self) -> bool {
        matches!(self, SqlType::Bigint | SqlType::Double | SqlType::Null)
    }

    /// Whether values of the two types compare as flowctl compares them.
    pub fn comparable(self, other: SqlType) -> bool {
        self == other || self == SqlType::Null || other == SqlType::Null || (self.numeric() && other.numeric())
    }

    /// The type of a value that is one of `a` or `b` (CASE, COALESCE): None when
    /// flowctl would keep both types apart.
    pub fn unify(a: SqlType, b: SqlType) -> Option<SqlType> {
        match (a, b) {
            (x, y) if x == y => Some(x),
            (SqlType::Null, y) => Some(y),
            (x, SqlType::Null) => Some(x),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Column {
    pub name: String,
    pub ty: SqlType,
}

/// A translated expression.
#[derive(Clone, Debug)]
pub struct Sql {
    pub text: String,
    pub ty: SqlType,
}

/// A key column of a `key_by`, as the reduce or dedup after it groups by it.
#[derive(Clone, Debug)]
pub struct KeyColumn {
    pub name: String,
    pub sql: Sql,
}

/// A relation (source table or step view) as later steps see it.
#[derive(Clone, Debug)]
pub struct Relation {
    /// The table or view name (unquoted).
    pub name: String,
    pub columns: Vec<Column>,
    /// Whether it carries [`TIME_COLUMN`] as a rowtime attribute.
    pub time: bool,
    /// The key of the `key_by` it passed through.
    pub key: Option<Vec<KeyColumn>>,
    /// The window (its kind and where it was written) a `reduce` after it aggregates in.
    pub window: Option<(crate::spec::WindowKind, Span)>,
    /// Whether Flink sees its rows in flowctl's arrival order (one file read in
    /// order; not several sources or Kafka partitions, which flowctl merges by event
    /// time).
    pub ordered: bool,
    /// An updating (retracting) changelog: the result of a rolling `reduce`, with the
    /// columns that identify a row.
    pub updating: Option<Vec<String>>,
}

impl Relation {
    /// The columns as a select list, with the time attribute when it has one.
    pub fn select_list(&self) -> String {
        let mut names: Vec<String> = self.columns.iter().map(|c| quote(&c.name)).collect();
        if self.time {
            names.push(quote(TIME_COLUMN));
        }
        names.join(", ")
    }
}

/// Something without a faithful Flink SQL equivalent, where the pipeline says it.
#[derive(Clone, Debug)]
pub struct Refusal {
    pub span: Span,
    pub message: String,
    pub hint: Option<String>,
}

impl Refusal {
    pub fn new(span: Span, message: impl Into<String>, hint: Option<&str>) -> Refusal {
        Refusal { span, message: message.into(), hint: hint.map(str::to_string) }
    }
}

/// An identifier in backquotes (Flink SQL's quoting), so any field name is safe.
pub fn quote(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// A string literal.
pub fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// A duration as a Flink SQL interval literal.
pub fn interval(d: std::time::Duration) -> String {
    let ms = d.as_millis();
    if ms % 1000 == 0 {
        format!("INTERVAL '{}' SECOND", ms / 1000)
    } else {
        format!("INTERVAL '{}.{:03}' SECOND", ms / 1000, ms % 1000)
    }
}

/// A duration as a Flink configuration value (`'10 s'`, `'500 ms'`).
pub fn config_duration(d: std::time::Duration) -> String {
    let ms = d.as_millis();
    if ms % 1000 == 0 {
        format!("{} s", ms / 1000)
    } else {
        format!("{ms} ms")
    }
}

/// A file path of the spec as a Flink filesystem path: a URI (`s3://...`,
/// `hdfs://...`) as written, a local path absolute under `file://`.
pub fn location(spec: &crate::spec::PipelineSpec, path: &str) -> String {
    if path.contains("://") {
        return path.to_string();
    }
    let resolved = spec.resolve(path);
    format!("file://{}", std::path::absolute(&resolved).unwrap_or(resolved).display())
}

/// `--allow-approximate`: the refusals that have a near equivalent become notes (a
/// comment in the script at the statement concerned) instead of errors.
#[derive(Debug, Default)]
pub struct Approximations {
    allowed: bool,
    notes: std::cell::RefCell<Vec<String>>,
}

impl Approximations {
    pub fn new(allowed: bool) -> Approximations {
        Approximations { allowed, notes: Default::default() }
    }

    /// Ok, with a note saying what the script does instead (`how`), when
    /// approximations are allowed; otherwise the refusal.
    pub fn allow(&self, refusal: Refusal, how: &str) -> Result<(), Refusal> {
        if !self.allowed {
            return Err(refusal);
        }
        let at = refusal.span;
        let note = format!("-- APPROXIMATE (line {}, column {}): {}; {how}", at.line, at.col, refusal.message);
        self.notes.borrow_mut().push(note);
        Ok(())
    }

    /// The notes since the last call.
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.notes.borrow_mut())
    }
}
