//! The typed pipeline spec: what the user wrote, with a position on every part.
//!
//! Built from a [`Node`] tree that passed the shape check (`check.rs`), so the
//! conversions here only interpret values; the few rules that need the typed view
//! (a format that cannot be told from a file extension, a window with two kinds) add
//! diagnostics as they go.

use super::check::{scalar_bool, scalar_int, step_kind};
use super::duration::parse_duration;
use super::node::{Node, NodeKind, ScalarStyle, Span};
use crate::diag::Diagnostics;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A value with the place it was written.
#[derive(Clone, Debug, PartialEq)]
pub struct Spanned<T> {
    pub value: T,
    pub span: Span,
}

impl<T> Spanned<T> {
    pub fn new(value: T, span: Span) -> Self {
        Spanned { value, span }
    }
}

/// An expression as written, with what is needed to map an offset inside it back to
/// a line and column of the file.
#[derive(Clone, Debug, PartialEq)]
pub struct ExprSpec {
    pub text: String,
    pub span: Span,
    style: ScalarStyle,
    block_indent: usize,
}

impl ExprSpec {
    /// The file position of a byte offset inside the expression text, `len`
    /// characters long (0: the length of the word or operator found there).
    pub fn span_at(&self, offset: usize, len: usize) -> Span {
        let offset = offset.min(self.text.len());
        let before = &self.text[..offset];
        let len = if len > 0 { len } else { token_len(&self.text[offset..]) };
        match self.style {
            ScalarStyle::Block => {
                let line_in_block = before.matches('\n').count();
                let col_in_line = before.rsplit('\n').next().unwrap_or("").chars().count();
                Span::new(self.span.line + 1 + line_in_block, self.block_indent + col_in_line + 1, len)
            }
            _ if before.contains('\n') => self.span,
            ScalarStyle::Quoted => self.span.shifted(1 + before.chars().count(), len),
            ScalarStyle::Plain => self.span.shifted(before.chars().count(), len),
        }
    }
}

/// Characters of the identifier, number or operator at the start of `text`.
fn token_len(text: &str) -> usize {
    let word = text.chars().take_while(|c| c.is_alphanumeric() || *c == '_').count();
    if word > 0 {
        return word;
    }
    text.chars().take_while(|c| "=<>!|".contains(*c)).count().max(1)
}

pub use crate::format::DataFormat;
pub use crate::sinks::{sql::SqlDialect, StdoutFormat};
pub use crate::sources::decode::{CsvOptions, Decoding, ValueType, DEFAULT_MAX_LINE};
pub use crate::sources::{KafkaStart, TimeFormat};

#[derive(Clone, Debug, PartialEq)]
pub enum TimeSource {
    Field(Spanned<String>),
    Expr(ExprSpec),
}

#[derive(Clone, Debug, PartialEq)]
pub struct EventTimeSpec {
    pub source: TimeSource,
    /// None: epoch_millis for numbers, rfc3339 for strings.
    pub format: Option<TimeFormat>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Default)]
pub struct WatermarkSpec {
    pub max_out_of_orderness: Duration,
    pub idle_timeout: Option<Duration>,
    pub span: Option<Span>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Generator {
    pub field: Spanned<String>,
    pub kind: String,
    pub node: Node,
}

#[derive(Clone, Debug, PartialEq)]
pub enum SourceKind {
    File {
        path: Spanned<String>,
        decoding: Decoding,
        follow: Spanned<bool>,
    },
    Stdin {
        decoding: Decoding,
    },
    Socket {
        address: Spanned<String>,
        decoding: Decoding,
    },
    Kafka {
        brokers: Spanned<String>,
        topics: Vec<Spanned<String>>,
        group: Option<String>,
        start: KafkaStart,
        bounded: bool,
        decoding: Decoding,
        key_field: Option<String>,
        timestamp_field: Option<String>,
        headers_field: Option<String>,
        options: Vec<(String, String)>,
    },
    Datagen {
        fields: Vec<Generator>,
        rate: Option<u64>,
        count: Option<u64>,
        seed: u64,
    },
    Nexmark {
        events: Option<u64>,
        rate: Option<u64>,
        seed: u64,
    },
}

impl SourceKind {
    pub fn type_name(&self) -> &'static str {
        match self {
            SourceKind::File { .. } => "file",
            SourceKind::Stdin { .. } => "stdin",
            SourceKind::Socket { .. } => "socket",
            SourceKind::Kafka { .. } => "kafka",
            SourceKind::Datagen { .. } => "datagen",
            SourceKind::Nexmark { .. } => "nexmark",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct SourceSpec {
    pub id: Spanned<String>,
    /// The position of the `type:` value, where "not supported" errors point.
    pub type_span: Span,
    pub kind: SourceKind,
    pub event_time: Option<EventTimeSpec>,
    pub watermark: WatermarkSpec,
    pub parallelism: Option<Spanned<u64>>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum KeySpec {
    /// `key_by: expr` or `key_by: [a, b]`: names derived from the expressions.
    Exprs(Vec<ExprSpec>),
    /// `key_by: {name: expr}`.
    Named(Vec<(Spanned<String>, ExprSpec)>),
}

pub use crate::steps::window::WindowKind;

#[derive(Clone, Debug, PartialEq)]
pub enum LatePolicy {
    Drop,
    Sink(String),
}

#[derive(Clone, Debug, PartialEq)]
pub struct WindowSpec {
    pub kind: Spanned<WindowKind>,
    pub allowed_lateness: Duration,
    pub late: Spanned<LatePolicy>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum StepKind {
    KeyBy(KeySpec),
    Window(WindowSpec),
    Reduce(Vec<(Spanned<String>, ExprSpec)>),
    /// A step defined whole in its own file (`steps/registry.rs`).
    Component(std::sync::Arc<dyn crate::steps::component::StepConfig>),
}

impl StepKind {
    pub fn name(&self) -> &'static str {
        match self {
            StepKind::Component(c) => c.kind(),
            StepKind::KeyBy(_) => "key_by",
            StepKind::Window(_) => "window",
            StepKind::Reduce(_) => "reduce",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct StepSpec {
    pub id: Option<Spanned<String>>,
    pub from: Option<Vec<Spanned<String>>>,
    pub kind: StepKind,
    /// The position of the step's kind key (`filter:`).
    pub span: Span,
    pub parallelism: Option<Spanned<u64>>,
}

impl StepSpec {
    /// How the step is named in messages and plans: its id, or `<kind> #<n>`.
    pub fn label(&self, index: usize) -> String {
        match &self.id {
            Some(id) => id.value.clone(),
            None => format!("{} #{}", self.kind.name(), index + 1),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum SinkKind {
    Stdout {
        format: StdoutFormat,
    },
    File {
        path: Spanned<String>,
        format: Spanned<DataFormat>,
        header: bool,
        delimiter: u8,
    },
    Kafka {
        brokers: Spanned<String>,
        topic: Spanned<String>,
        key: Option<ExprSpec>,
        partition_by: Option<ExprSpec>,
        format: DataFormat,
        exactly_once: bool,
        /// Create the topic with this many partitions when it does not exist.
        create_topic: Option<u32>,
        options: Vec<(String, String)>,
    },
    Sql {
        dialect: SqlDialect,
        url: Spanned<String>,
        table: Spanned<String>,
        key: Vec<Spanned<String>>,
        columns: Vec<Spanned<String>>,
        create_table: bool,
        batch_size: u64,
    },
    Socket {
        address: Spanned<String>,
        format: DataFormat,
    },
    /// Discards records.
    Blackhole,
}

impl SinkKind {
    pub fn type_name(&self) -> &'static str {
        match self {
            SinkKind::Stdout { .. } => "stdout",
            SinkKind::File { .. } => "file",
            SinkKind::Kafka { .. } => "kafka",
            SinkKind::Sql { dialect: SqlDialect::Mysql, .. } => "mysql",
            SinkKind::Sql { dialect: SqlDialect::Postgres, .. } => "postgres",
            SinkKind::Socket { .. } => "socket",
            SinkKind::Blackhole => "blackhole",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct SinkSpec {
    pub id: Spanned<String>,
    pub type_span: Span,
    pub from: Option<Vec<Spanned<String>>>,
    pub kind: SinkKind,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ErrorPolicy {
    Fail,
    Skip,
    Sink(String),
}

#[derive(Clone, Debug, PartialEq)]
pub struct CheckpointSpec {
    pub dir: PathBuf,
    pub interval: Duration,
    pub keep: u64,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct TestCaseSpec {
    pub name: Spanned<String>,
    pub input: Vec<(Spanned<String>, Vec<Node>)>,
    pub expect: Vec<(Spanned<String>, Vec<Node>)>,
}

/// A whole pipeline file, typed.
#[derive(Clone, Debug, PartialEq)]
pub struct PipelineSpec {
    /// The pipeline file, as given on the command line.
    pub path: PathBuf,
    /// Relative paths in the spec resolve against this directory.
    pub base_dir: PathBuf,
    pub name: String,
    pub sources: Vec<SourceSpec>,
    pub steps: Vec<StepSpec>,
    /// Where `steps:` was written (or the top of the file).
    pub steps_span: Span,
    /// Where the `sources:` and `sinks:` keys were written, when they were.
    pub sources_span: Option<Span>,
    pub sinks_span: Option<Span>,
    pub sinks: Vec<SinkSpec>,
    pub on_error: Spanned<ErrorPolicy>,
    pub parallelism: Option<Spanned<u64>>,
    /// `memory_limit`, in bytes.
    pub memory_limit: Option<u64>,
    pub checkpoint: Option<CheckpointSpec>,
    pub tests: Vec<TestCaseSpec>,
}

impl PipelineSpec {
    /// Resolves a path written in the spec against the pipeline file's directory.
    pub fn resolve(&self, path: &str) -> PathBuf {
        let p = Path::new(path);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            normalize(&self.base_dir.join(p))
        }
    }
}

/// Removes `.` and resolvable `..` components without touching the file system, so
/// messages say `fixtures/a.csv` rather than `pipelines/../fixtures/a.csv`.
pub fn normalize(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out: Vec<Component> = Vec::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir if matches!(out.last(), Some(Component::Normal(_))) => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    if out.is_empty() {
        PathBuf::from(".")
    } else {
        out.iter().collect()
    }
}

/// Builds the typed spec from a shape-checked tree.
pub fn build(root: &Node, path: &Path, source_text: &str, diags: &mut Diagnostics) -> PipelineSpec {
    let b = ModelBuilder { lines: source_text.lines().collect() };
    let base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let base_dir = if base_dir.as_os_str().is_empty() { PathBuf::from(".") } else { base_dir };
    let name = root
        .get("name")
        .and_then(Node::scalar)
        .map(str::to_string)
        .unwrap_or_else(|| path.file_stem().and_then(|s| s.to_str()).unwrap_or("pipeline").to_string());
    let sources = root
        .get("sources")
        .map(|n| n.entries())
        .unwrap_or_default()
        .iter()
        .map(|(k, v)| b.source(k, v, diags))
        .collect();
    let steps_node = root.get("steps");
    let steps =
        steps_node.map(|n| n.items()).unwrap_or_default().iter().filter_map(|item| b.step(item, diags)).collect();
    let sinks =
        root.get("sinks").map(|n| n.entries()).unwrap_or_default().iter().map(|(k, v)| b.sink(k, v, diags)).collect();
    let on_error = match root.get("on_error") {
        Some(n) => Spanned::new(
            match n.scalar().unwrap_or("fail") {
                "fail" => ErrorPolicy::Fail,
                "skip" => ErrorPolicy::Skip,
                other => ErrorPolicy::Sink(other.to_string()),
            },
            n.span,
        ),
        None => Spanned::new(ErrorPolicy::Fail, root.span),
    };
    let checkpoint = root.get("checkpoint").map(|n| CheckpointSpec {
        dir: n
            .get("dir")
            .and_then(Node::scalar)
            .map(|d| base_dir.join(d))
            .unwrap_or_else(|| base_dir.join(".flowctl").join(&name)),
        interval: duration(n.get("interval")).unwrap_or(Duration::from_secs(10)),
        keep: n.get("keep").and_then(scalar_int).unwrap_or(3).max(1) as u64,
        span: root.key_node("checkpoint").map(|k| k.span).unwrap_or(n.span),
    });
    let tests = root.get("tests").map(|n| n.items()).unwrap_or_default().iter().map(|t| b.test_case(t)).collect();
    PipelineSpec {
        path: path.to_path_buf(),
        base_dir,
        name,
        sources,
        steps,
        steps_span: root.key_node("steps").map(|k| k.span).unwrap_or(root.span),
        sources_span: root.key_node("sources").map(|k| k.span),
        sinks_span: root.key_node("sinks").map(|k| k.span),
        sinks,
        on_error,
        parallelism: positive(root.get("parallelism")),
        memory_limit: root
            .get("memory_limit")
            .and_then(Node::scalar)
            .and_then(|s| crate::spec::duration::parse_size(s).ok()),
        checkpoint,
        tests,
    }
}

/// The longest window size, slide, gap or allowed lateness, in days: window ends
/// computed from any event time (at most about 262,000 years from 1970) stay far from
/// 64-bit overflow.
pub const MAX_WINDOW_DAYS: u64 = 1_000_000;
const MAX_WINDOW_DURATION: Duration = Duration::from_secs(MAX_WINDOW_DAYS * 86_400);

/// The most windows one record may fall into (a sliding window's size / slide): each is
/// state a record opens at once, so `sliding: {size: 1d, slide: 1ms}` (86,400,000 per
/// record) is refused instead of allocating gigabytes for the first record.
pub const MAX_WINDOWS_PER_RECORD: u64 = 10_000;

/// How many windows of a sliding window each record falls into (size / slide,
/// rounded up) when that is more than [`MAX_WINDOWS_PER_RECORD`].
fn windows_per_record(size: Duration, slide: Duration) -> Option<u128> {
    let windows = size.as_nanos().div_ceil(slide.as_nanos().max(1));
    (windows > u128::from(MAX_WINDOWS_PER_RECORD)).then_some(windows)
}

/// A uniform generator's `min` must not exceed its `max` (the defaults are 0 and 100
/// for ints, 0 and 1 for floats).
fn check_generator_range(kind: &str, node: &Node, diags: &mut Diagnostics) {
    use crate::record::Value;
    // Values of the wrong type (found only by `run` before).
    let wrong = |key: &str, want: &str, ok: fn(&Value) -> bool| {
        node.get(key).filter(|n| !ok(&n.to_value())).map(|n| {
            (
                n.span,
                format!(
                    "`{key}` of a `{kind}` generator must be {want}, found `{}`",
                    n.scalar().unwrap_or("a collection")
                ),
            )
        })
    };
    let is_int: fn(&Value) -> bool = |v| matches!(v, Value::Int(_));
    let is_number: fn(&Value) -> bool = |v| matches!(v, Value::Int(_) | Value::Float(_));
    let problems: Vec<(Span, String)> = match kind {
        "uniform_int" => ["min", "max"].iter().filter_map(|k| wrong(k, "an integer", is_int)).collect(),
        "uniform_float" => ["min", "max"].iter().filter_map(|k| wrong(k, "a number", is_number)).collect(),
        "choice" => match node.get("values") {
            Some(v) if !v.items().is_empty() => Vec::new(),
            Some(v) => vec![(v.span, "`values` of a `choice` generator must list at least one value".into())],
            None => vec![(node.span, "a `choice` generator needs `values:`, a list of the values to pick from".into())],
        },
        _ => Vec::new(),
    };
    if !problems.is_empty() {
        for (span, message) in problems {
            diags.error(span, message, None);
        }
        return;
    }
    let number = |key: &str, default: f64| match node.get(key).map(Node::to_value) {
        Some(Value::Int(i)) => Some(i as f64),
        Some(Value::Float(f)) => Some(f),
        None => Some(default),
        Some(_) => None,
    };
    let (min, max) = match kind {
        "uniform_int" => match (node.get("min").map(Node::to_value), node.get("max").map(Node::to_value)) {
            (Some(Value::Int(min)), Some(Value::Int(max))) if min > max => (min.to_string(), max.to_string()),
            (Some(Value::Int(min)), None) if min > 100 => (min.to_string(), "100 (the default)".into()),
            (None, Some(Value::Int(max))) if max < 0 => ("0 (the default)".into(), max.to_string()),
            _ => return,
        },
        "uniform_float" => match (number("min", 0.0), number("max", 1.0)) {
            (Some(min), Some(max)) if min > max => (min.to_string(), max.to_string()),
            _ => return,
        },
        _ => return,
    };
    let span = node.get("max").or_else(|| node.get("min")).map_or(node.span, |n| n.span);
    diags.error(
        span,
        format!("`{kind}` needs `min` at most `max`; found min {min} and max {max}"),
        Some("the defaults are min 0 and max 100 (uniform_int) or 1 (uniform_float)".into()),
    );
}

fn duration(node: Option<&Node>) -> Option<Duration> {
    node.and_then(Node::scalar).and_then(|s| parse_duration(s).ok())
}

fn text(node: &Node) -> Spanned<String> {
    Spanned::new(node.scalar().unwrap_or_default().to_string(), node.span)
}

/// A required string field; the shape check reports it when missing.
fn required(node: &Node, key: &str) -> Spanned<String> {
    node.get(key).map(text).unwrap_or_else(|| Spanned::new(String::new(), node.span))
}

fn positive(node: Option<&Node>) -> Option<Spanned<u64>> {
    let n = node?;
    Some(Spanned::new(scalar_int(n)?.max(1) as u64, n.span))
}

fn name_list(node: Option<&Node>) -> Vec<Spanned<String>> {
    match node {
        None => Vec::new(),
        Some(n) if matches!(n.kind, NodeKind::Seq(_)) => n.items().iter().map(text).collect(),
        Some(n) => vec![text(n)],
    }
}

fn string_map(node: Option<&Node>) -> Vec<(String, String)> {
    node.map(|n| n.entries()).unwrap_or_default().iter().map(|(k, v)| (text(k).value, text(v).value)).collect()
}

struct ModelBuilder<'a> {
    lines: Vec<&'a str>,
}

/// A registered step's body (`steps/component.rs`), with what its configuration is
/// read through: expressions keep what maps their offsets back to the file.
pub struct StepReader<'a> {
    builder: &'a ModelBuilder<'a>,
    /// The step's body (the value of its kind key).
    pub body: &'a Node,
    /// Where the step's kind key is.
    pub span: Span,
}

impl StepReader<'_> {
    /// The body's field `key`.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.body.get(key)
    }

    /// An expression.
    pub fn expr(&self, node: &Node) -> ExprSpec {
        self.builder.expr(node)
    }

    /// One expression or a list of them.
    pub fn exprs(&self, node: &Node) -> Vec<ExprSpec> {
        match &node.kind {
            NodeKind::Seq(items) => items.iter().map(|i| self.expr(i)).collect(),
            _ => vec![self.expr(node)],
        }
    }

    /// A mapping of names to expressions (`map:`, `set:`).
    pub fn named_exprs(&self, node: &Node) -> Vec<(Spanned<String>, ExprSpec)> {
        self.builder.named_exprs(node)
    }

    /// A name or a list of names.
    pub fn names(&self, node: &Node) -> Vec<Spanned<String>> {
        name_list(Some(node))
    }

    /// A duration field (the shape check has reported one that does not parse).
    pub fn duration(&self, key: &str) -> Option<Spanned<Duration>> {
        let node = self.get(key)?;
        Some(Spanned::new(duration(Some(node))?, node.span))
    }

    /// A string field.
    pub fn text(&self, key: &str) -> Option<Spanned<String>> {
        self.get(key).map(text)
    }
}

impl ModelBuilder<'_> {
    fn expr(&self, node: &Node) -> ExprSpec {
        let style = match &node.kind {
            NodeKind::Scalar { style, .. } => *style,
            _ => ScalarStyle::Plain,
        };
        let block_indent = match style {
            ScalarStyle::Block => self.lines.get(node.span.line).map(|l| l.len() - l.trim_start().len()).unwrap_or(0),
            _ => 0,
        };
        ExprSpec {
            text: node.scalar().unwrap_or_default().trim_end().to_string(),
            span: node.span,
            style,
            block_indent,
        }
    }

    fn named_exprs(&self, node: &Node) -> Vec<(Spanned<String>, ExprSpec)> {
        node.entries().iter().map(|(k, v)| (text(k), self.expr(v))).collect()
    }

    fn decoding(
        &self,
        node: &Node,
        default: Option<DataFormat>,
        path: Option<&Node>,
        diags: &mut Diagnostics,
    ) -> Decoding {
        let format = match node.get("format") {
            Some(f) => DataFormat::parse(f.scalar().unwrap_or_default()).unwrap_or(DataFormat::Jsonl),
            None => {
                let from_path = path.and_then(|p| DataFormat::from_extension(p.scalar().unwrap_or_default()));
                match (from_path.or(default), path) {
                    (Some(f), _) => f,
                    (None, Some(p)) => {
                        diags.error(
                            p.span,
                            format!(
                                "cannot tell the format of `{}` from its extension",
                                p.scalar().unwrap_or_default()
                            ),
                            Some("add `format: csv`, `format: jsonl` or `format: text`".into()),
                        );
                        DataFormat::Text
                    }
                    (None, None) => DataFormat::Jsonl,
                }
            }
        };
        let mut csv = CsvOptions::default();
        if let Some(c) = node.get("csv") {
            if let Some(h) = c.get("header").and_then(scalar_bool) {
                csv.header = h;
            }
            csv.delimiter = single_byte(c.get("delimiter"), b',', "delimiter", diags);
            csv.quote = single_byte(c.get("quote"), b'"', "quote", diags);
        }
        let schema = node
            .get("schema")
            .map(|n| n.entries())
            .unwrap_or_default()
            .iter()
            .map(|(k, v)| {
                (k.scalar().unwrap_or_default().to_string(), ValueType::parse(v.scalar().unwrap_or_default()))
            })
            .collect();
        let max_line = match node.get("max_line_length") {
            Some(n) => match n.scalar().map(super::duration::parse_size) {
                Some(Ok(0)) => {
                    diags.error(n.span, "`max_line_length` must be more than 0", None);
                    DEFAULT_MAX_LINE
                }
                Some(Ok(bytes)) => bytes,
                // The shape check reports what is not a size.
                _ => DEFAULT_MAX_LINE,
            },
            None => DEFAULT_MAX_LINE,
        };
        Decoding { format, csv, schema, max_line }
    }

    fn source(&self, key: &Node, node: &Node, diags: &mut Diagnostics) -> SourceSpec {
        let type_node = node.get("type");
        let kind_name = type_node.and_then(Node::scalar).unwrap_or_default();
        let kind = match kind_name {
            "stdin" => SourceKind::Stdin { decoding: self.decoding(node, Some(DataFormat::Jsonl), None, diags) },
            "socket" => SourceKind::Socket {
                address: required(node, "address"),
                decoding: self.decoding(node, Some(DataFormat::Text), None, diags),
            },
            "kafka" => SourceKind::Kafka {
                brokers: required(node, "brokers"),
                topics: {
                    let mut topics = name_list(node.get("topic"));
                    topics.extend(name_list(node.get("topics")));
                    if topics.is_empty() {
                        diags.error(
                            node.span,
                            format!("kafka source `{}` needs `topic` or `topics`", key.scalar().unwrap_or_default()),
                            None,
                        );
                    }
                    topics
                },
                group: node.get("group").and_then(Node::scalar).map(str::to_string),
                start: match node.get("start").and_then(Node::scalar) {
                    Some("earliest") => KafkaStart::Earliest,
                    Some("latest") => KafkaStart::Latest,
                    _ => KafkaStart::Committed,
                },
                bounded: node.get("bounded").and_then(scalar_bool).unwrap_or(false),
                decoding: {
                    // A message holds one record: CSV values have no header line.
                    let mut d = self.decoding(node, Some(DataFormat::Jsonl), None, diags);
                    d.csv.header = false;
                    // The broker bounds a message's size.
                    d.max_line = u64::MAX;
                    d
                },
                key_field: node.get("key_field").and_then(Node::scalar).map(str::to_string),
                timestamp_field: node.get("timestamp_field").and_then(Node::scalar).map(str::to_string),
                headers_field: node.get("headers_field").and_then(Node::scalar).map(str::to_string),
                options: string_map(node.get("options")),
            },
            "datagen" => SourceKind::Datagen {
                fields: node
                    .get("fields")
                    .map(|n| n.entries())
                    .unwrap_or_default()
                    .iter()
                    .map(|(k, v)| {
                        let kind = v.get("type").and_then(Node::scalar).unwrap_or_default().to_string();
                        check_generator_range(&kind, v, diags);
                        Generator { field: text(k), kind, node: v.clone() }
                    })
                    .collect(),
                rate: node.get("rate").and_then(scalar_int).map(|v| v as u64),
                count: node.get("count").and_then(scalar_int).map(|v| v.max(0) as u64),
                seed: node.get("seed").and_then(scalar_int).unwrap_or(0) as u64,
            },
            "nexmark" => SourceKind::Nexmark {
                events: node.get("events").and_then(scalar_int).map(|v| v.max(0) as u64),
                rate: node.get("rate").and_then(scalar_int).map(|v| v as u64),
                seed: node.get("seed").and_then(scalar_int).unwrap_or(0) as u64,
            },
            _ => {
                let path = node.get("path");
                SourceKind::File {
                    path: required(node, "path"),
                    decoding: self.decoding(node, None, path, diags),
                    follow: node
                        .get("follow")
                        .map(|f| Spanned::new(scalar_bool(f).unwrap_or(false), f.span))
                        .unwrap_or(Spanned::new(false, node.span)),
                }
            }
        };
        let event_time = node.get("event_time").map(|et| match &et.kind {
            NodeKind::Map(_) => EventTimeSpec {
                source: match (et.get("field"), et.get("expr")) {
                    (_, Some(e)) => TimeSource::Expr(self.expr(e)),
                    (Some(f), None) => TimeSource::Field(text(f)),
                    (None, None) => {
                        diags.error(
                            et.span,
                            "event_time needs `field` or `expr`",
                            Some("for example `event_time: {field: ts, format: epoch_millis}`".into()),
                        );
                        TimeSource::Field(Spanned::new(String::new(), et.span))
                    }
                },
                format: et.get("format").map(|f| time_format(f, diags)),
                span: et.span,
            },
            _ => EventTimeSpec { source: TimeSource::Field(text(et)), format: None, span: et.span },
        });
        if let Some(et) = node.get("event_time").filter(|et| et.get("field").is_some() && et.get("expr").is_some()) {
            diags.error(et.span, "event_time has both `field` and `expr`", Some("keep one of them".into()));
        }
        let watermark = node
            .get("watermark")
            .map(|w| WatermarkSpec {
                max_out_of_orderness: duration(w.get("max_out_of_orderness")).unwrap_or_default(),
                idle_timeout: duration(w.get("idle_timeout")),
                span: Some(w.span),
            })
            .unwrap_or_default();
        SourceSpec {
            id: text(key),
            type_span: type_node.map(|t| t.span).unwrap_or(node.span),
            kind,
            event_time,
            watermark,
            parallelism: positive(node.get("parallelism")),
        }
    }

    fn step(&self, item: &Node, diags: &mut Diagnostics) -> Option<StepSpec> {
        let (key, body) = step_kind(item)?;
        let kind = match key.scalar().unwrap_or_default() {
            "key_by" => StepKind::KeyBy(match &body.kind {
                NodeKind::Map(_) => KeySpec::Named(self.named_exprs(body)),
                NodeKind::Seq(items) => KeySpec::Exprs(items.iter().map(|i| self.expr(i)).collect()),
                _ => KeySpec::Exprs(vec![self.expr(body)]),
            }),
            "window" => StepKind::Window(self.window(key, body, diags)?),
            "reduce" => StepKind::Reduce(self.named_exprs(body)),
            other => {
                let step_type = crate::steps::registry::find(other)?;
                let reader = StepReader { builder: self, body, span: key.span };
                StepKind::Component((step_type.parse)(&reader, diags)?)
            }
        };
        Some(StepSpec {
            id: item.get("id").map(text),
            from: item.get("from").map(|f| name_list(Some(f))),
            kind,
            span: key.span,
            parallelism: positive(item.get("parallelism")),
        })
    }

    fn window(&self, key: &Node, body: &Node, diags: &mut Diagnostics) -> Option<WindowSpec> {
        let mut kinds = Vec::new();
        for (k, v) in body.entries() {
            let kind = match k.scalar().unwrap_or_default() {
                "tumbling" => WindowKind::Tumbling(duration(Some(v))?),
                "sliding" => {
                    let size = duration(v.get("size"))?;
                    let slide = duration(v.get("slide"))?;
                    if slide.is_zero() || slide > size {
                        diags.error(
                            v.span,
                            "a sliding window's `slide` must be more than 0 and at most its `size`",
                            Some(
                                "for windows with gaps between them, use a filter; for size = slide, use `tumbling`"
                                    .into(),
                            ),
                        );
                    } else if let Some(windows) = windows_per_record(size, slide) {
                        let shortest = size.as_millis().div_ceil(u128::from(MAX_WINDOWS_PER_RECORD));
                        let shortest = super::duration::format_duration(Duration::from_millis(shortest as u64));
                        diags.error(
                            v.span,
                            format!(
                                "a sliding window of {} every {} puts each record in {windows} windows; \
                                 at most {MAX_WINDOWS_PER_RECORD} are allowed",
                                super::duration::format_duration(size),
                                super::duration::format_duration(slide)
                            ),
                            Some(format!("make `slide` at least {shortest} (the size / {MAX_WINDOWS_PER_RECORD})")),
                        );
                    }
                    WindowKind::Sliding { size, slide }
                }
                "session" => WindowKind::Session { gap: duration(v.get("gap"))? },
                "count" => WindowKind::Count(scalar_int(v)?.max(1) as u64),
                _ => continue,
            };
            if matches!(kind, WindowKind::Tumbling(d) | WindowKind::Session { gap: d } if d.is_zero()) {
                diags.error(v.span, "a window size must be more than 0", None);
            }
            let longest = match kind {
                WindowKind::Tumbling(d) | WindowKind::Session { gap: d } => d,
                WindowKind::Sliding { size, slide } => size.max(slide),
                WindowKind::Count(_) => Duration::ZERO,
            };
            if longest > MAX_WINDOW_DURATION {
                diags.error(v.span, format!("a window duration must be at most {MAX_WINDOW_DAYS}d"), None);
            }
            kinds.push(Spanned::new(kind, k.span));
        }
        if kinds.len() > 1 {
            diags.error(
                kinds[1].span,
                "a window has exactly one kind; found more than one",
                Some("keep one of: tumbling, sliding, session, count".into()),
            );
        }
        let Some(kind) = kinds.into_iter().next() else {
            diags.error(key.span, "a window needs a kind", Some("add one of: `tumbling: 10s`, `sliding: {size: 1m, slide: 10s}`, `session: {gap: 30s}`, `count: 100`".into()));
            return None;
        };
        let late = match body.get("late") {
            Some(n) => Spanned::new(
                match n.scalar().unwrap_or("drop") {
                    "drop" => LatePolicy::Drop,
                    other => LatePolicy::Sink(other.to_string()),
                },
                n.span,
            ),
            None => Spanned::new(LatePolicy::Drop, key.span),
        };
        let allowed_lateness = duration(body.get("allowed_lateness")).unwrap_or_default();
        if let Some(n) = body.get("allowed_lateness").filter(|_| allowed_lateness > MAX_WINDOW_DURATION) {
            diags.error(n.span, format!("`allowed_lateness` must be at most {MAX_WINDOW_DAYS}d"), None);
        }
        Some(WindowSpec { kind, allowed_lateness, late })
    }

    fn sink(&self, key: &Node, node: &Node, diags: &mut Diagnostics) -> SinkSpec {
        let type_node = node.get("type").unwrap_or(node);
        let format_of = |default: DataFormat| {
            node.get("format").and_then(Node::scalar).and_then(DataFormat::parse).unwrap_or(default)
        };
        let kind = match type_node.scalar().unwrap_or_default() {
            "stdout" => SinkKind::Stdout {
                format: match node.get("format").and_then(Node::scalar) {
                    Some("csv") => StdoutFormat::Csv,
                    Some("table") => StdoutFormat::Table,
                    _ => StdoutFormat::Jsonl,
                },
            },
            "file" => {
                let format = match (node.get("format"), node.get("path")) {
                    (Some(f), _) => Spanned::new(format_of(DataFormat::Jsonl), f.span),
                    // A missing path was reported by the shape check.
                    (None, None) => Spanned::new(DataFormat::Jsonl, node.span),
                    (None, Some(path)) => match DataFormat::from_extension(path.scalar().unwrap_or_default()) {
                        Some(f @ (DataFormat::Csv | DataFormat::Jsonl)) => Spanned::new(f, path.span),
                        _ => {
                            diags.error(
                                path.span,
                                format!(
                                    "cannot tell the output format of `{}` from its extension",
                                    path.scalar().unwrap_or_default()
                                ),
                                Some("add `format: csv` or `format: jsonl`".into()),
                            );
                            Spanned::new(DataFormat::Jsonl, path.span)
                        }
                    },
                };
                SinkKind::File {
                    path: required(node, "path"),
                    format,
                    header: node.get("header").and_then(scalar_bool).unwrap_or(true),
                    delimiter: single_byte(node.get("delimiter"), b',', "delimiter", diags),
                }
            }
            "kafka" => {
                SinkKind::Kafka {
                    brokers: required(node, "brokers"),
                    topic: required(node, "topic"),
                    key: node.get("key").map(|k| self.expr(k)),
                    partition_by: node.get("partition_by").map(|k| self.expr(k)),
                    format: format_of(DataFormat::Jsonl),
                    exactly_once: node.get("delivery").and_then(Node::scalar) == Some("exactly_once"),
                    create_topic: node.get("create_topic").and_then(scalar_bool).unwrap_or(false).then(|| {
                        node.get("partitions").and_then(scalar_int).unwrap_or(1).clamp(1, i32::MAX as i64) as u32
                    }),
                    options: string_map(node.get("options")),
                }
            }
            kind @ ("mysql" | "postgres") => SinkKind::Sql {
                dialect: if kind == "mysql" { SqlDialect::Mysql } else { SqlDialect::Postgres },
                url: required(node, "url"),
                table: required(node, "table"),
                key: name_list(node.get("key")),
                columns: name_list(node.get("columns")),
                create_table: node.get("create_table").and_then(scalar_bool).unwrap_or(false),
                batch_size: node.get("batch_size").and_then(scalar_int).unwrap_or(500).max(1) as u64,
            },
            "socket" => SinkKind::Socket { address: required(node, "address"), format: format_of(DataFormat::Jsonl) },
            "blackhole" => SinkKind::Blackhole,
            // An unknown or missing type was reported by the shape check; a placeholder
            // keeps the sink visible to the graph rules.
            _ => SinkKind::Stdout { format: StdoutFormat::Jsonl },
        };
        SinkSpec { id: text(key), type_span: type_node.span, from: node.get("from").map(|f| name_list(Some(f))), kind }
    }

    fn test_case(&self, node: &Node) -> TestCaseSpec {
        let records = |key: &str| -> Vec<(Spanned<String>, Vec<Node>)> {
            node.get(key)
                .map(|n| n.entries())
                .unwrap_or_default()
                .iter()
                .map(|(k, v)| (text(k), v.items().to_vec()))
                .collect()
        };
        TestCaseSpec {
            name: node.get("name").map(text).unwrap_or_else(|| Spanned::new(String::new(), node.span)),
            input: records("input"),
            expect: records("expect"),
        }
    }
}

fn single_byte(node: Option<&Node>, default: u8, what: &str, diags: &mut Diagnostics) -> u8 {
    let Some(n) = node else { return default };
    let s = n.scalar().unwrap_or_default();
    let s = if s == "\\t" { "\t" } else { s };
    if s.len() == 1 {
        s.as_bytes()[0]
    } else {
        diags.error(
            n.span,
            format!("the CSV {what} must be exactly one character, found `{s}`"),
            Some("write `\\t` for a tab".into()),
        );
        default
    }
}

fn time_format(node: &Node, diags: &mut Diagnostics) -> TimeFormat {
    match node.scalar().unwrap_or_default() {
        "epoch_millis" => TimeFormat::EpochMillis,
        "epoch_seconds" => TimeFormat::EpochSeconds,
        "rfc3339" => TimeFormat::Rfc3339,
        other if other.contains('%') => TimeFormat::Strftime(other.to_string()),
        other => {
            diags.error(
                node.span,
                format!("unknown event time format `{other}`"),
                crate::diag::did_you_mean(other, ["epoch_millis", "epoch_seconds", "rfc3339"]).or_else(|| {
                    Some(
                        "use epoch_millis, epoch_seconds, rfc3339 or a strftime pattern such as `%Y-%m-%d %H:%M:%S`"
                            .into(),
                    )
                }),
            );
            TimeFormat::EpochMillis
        }
    }
}
