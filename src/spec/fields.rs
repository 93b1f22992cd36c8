//! The pipeline format as data: every section, field, type and doc string in one table.
//!
//! One description serves three readers, so they cannot drift apart: the shape checker
//! (unknown fields with did-you-mean, required fields, types), the JSON Schema printed
//! by `flowctl schema`, and the reference in docs/reference.md.

/// A field of a YAML mapping.
#[derive(Debug)]
pub struct Field {
    pub name: &'static str,
    pub ty: Ty,
    pub required: bool,
    pub doc: &'static str,
}

/// One variant of a mapping selected by its tag field (`type: file`).
#[derive(Debug)]
pub struct Variant {
    pub name: &'static str,
    pub doc: &'static str,
    pub fields: &'static [Field],
}

/// What a YAML value must look like.
#[derive(Debug)]
pub enum Ty {
    /// Any string (plain scalars such as `42` are accepted as their text).
    Str,
    /// An id: `[a-z][a-z0-9_]*`.
    Id,
    /// An id or a list of ids (`from:`).
    IdList,
    /// A field name or a list of field names.
    NameList,
    Int,
    /// An integer ≥ 1.
    PosInt,
    /// A parallelism: an integer from 1 to [`MAX_PARALLELISM`].
    Parallelism,
    Bool,
    /// `500ms`, `2s`, `5m`, `1h`, `1d`.
    Duration,
    /// Bytes: `512MiB`, `2GiB`, `1GB`.
    Size,
    Enum(&'static [&'static str]),
    /// A SQL scalar expression.
    Expr,
    /// An aggregate call, `sum(x)`.
    Aggregate,
    /// Any YAML value (test records, generator values).
    Any,
    List(&'static Ty),
    /// A mapping with user-chosen keys, each value of this type.
    Map(&'static Ty),
    Object(&'static [Field]),
    /// The first alternative whose YAML kind matches (scalar / list / mapping) applies.
    AnyOf(&'static [Ty]),
    Tagged {
        tag: &'static str,
        variants: &'static [Variant],
    },
    /// The `steps:` list: each item has exactly one step key plus `id`/`from`.
    Steps,
}

pub const fn f(name: &'static str, ty: Ty, doc: &'static str) -> Field {
    Field { name, ty, required: false, doc }
}

pub const fn req(name: &'static str, ty: Ty, doc: &'static str) -> Field {
    Field { name, ty, required: true, doc }
}

/// The largest parallelism (the run's, a keyed step's, a source's; `--parallelism`):
/// each unit is a thread with its own channels and buffers, and a run split by data
/// connects every worker with every other (docs/limits.md).
pub const MAX_PARALLELISM: u64 = 256;

pub const VALUE_TYPES: &[&str] = &["string", "int", "float", "bool", "timestamp", "json"];
pub const SOURCE_FORMATS: &[&str] = &["csv", "jsonl", "text"];
pub const KAFKA_FORMATS: &[&str] = &["jsonl", "csv", "text", "raw"];
pub const SINK_FORMATS: &[&str] = &["csv", "jsonl"];

const CSV_OPTIONS: &[Field] = &[
    f("header", Ty::Bool, "The first line names the columns (default true). Without a header, columns are named by `schema:` or c1, c2, ..."),
    f("delimiter", Ty::Str, "Field separator, one character (default `,`)."),
    f("quote", Ty::Str, "Quote character, one character (default `\"`)."),
];

const EVENT_TIME: &[Field] = &[
    f("field", Ty::Str, "The field holding the event time (nested fields with dots)."),
    f("expr", Ty::Expr, "An expression computing the event time, instead of `field`."),
    f("format", Ty::Str, "epoch_millis | epoch_seconds | rfc3339 | a strftime pattern such as `%Y-%m-%d %H:%M:%S`. Default: epoch_millis for numbers, rfc3339 for strings."),
];

const WATERMARK: &[Field] = &[
    f("max_out_of_orderness", Ty::Duration, "Watermark = largest event time seen minus this (default 0s)."),
    f(
        "idle_timeout",
        Ty::Duration,
        "A source silent this long stops holding the watermark back (default 30s for unbounded sources).",
    ),
];

macro_rules! source_fields {
    ($($extra:expr),* $(,)?) => {
        &[
            req("type", Ty::Str, "The kind of source."),
            f("event_time", Ty::AnyOf(&[Ty::Str, Ty::Object(EVENT_TIME)]), "Where the event time comes from: a field name, or {field|expr, format}. Without it the pipeline runs on processing time."),
            f("watermark", Ty::Object(WATERMARK), "Watermark settings."),
            f("parallelism", Ty::Parallelism, "File sources: threads decoding its files (blocks cut on record boundaries, handed on in order: the same records as one thread). Nexmark: lanes, each on its own thread making every n-th event (event times advance alike on all; a checkpoint resumes only at the same parallelism). Not for followed files or other sources (Kafka reads each partition on its own thread)."),
            $($extra),*
        ]
    };
}

const SCHEMA: Ty = Ty::Map(&Ty::Enum(VALUE_TYPES));

pub const SOURCE_TYPES: &[Variant] = &[
    Variant {
        name: "file",
        doc:
            "Reads files (a path or a glob). Bounded unless `follow: true`; resumes from byte offsets after a restart.",
        fields: source_fields![
            req("path", Ty::Str, "File path or glob; relative paths resolve against the pipeline file."),
            f(
                "format",
                Ty::Enum(SOURCE_FORMATS),
                "csv | jsonl | text. Default: from the extension (.csv, .jsonl/.ndjson, .txt)."
            ),
            f("csv", Ty::Object(CSV_OPTIONS), "CSV options."),
            f(
                "schema",
                SCHEMA,
                "Field types for CSV columns ({ts: int, url: string}); without it, types are inferred per value."
            ),
            f("follow", Ty::Bool, "Keep reading as the file grows, like `tail -F` (unbounded)."),
            f("max_line_length", Ty::Size, "The longest line (a CSV record) read, such as 64MiB (default 16MiB): a longer one stops the run with an error naming the file and line."),
        ],
    },
    Variant {
        name: "stdin",
        doc: "Reads standard input until EOF. Not replayable: after a crash, input already read is not re-read.",
        fields: source_fields![
            f("format", Ty::Enum(SOURCE_FORMATS), "csv | jsonl | text (default jsonl)."),
            f("csv", Ty::Object(CSV_OPTIONS), "CSV options."),
            f("schema", SCHEMA, "Field types for CSV columns."),
            f("max_line_length", Ty::Size, "The longest line (a CSV record) read, such as 64MiB (default 16MiB): a longer one stops the run with an error naming the file and line."),
        ],
    },
    Variant {
        name: "socket",
        doc: "Connects to a TCP server and reads lines. Unbounded; not replayable.",
        fields: source_fields![
            req("address", Ty::Str, "host:port to connect to."),
            f("format", Ty::Enum(SOURCE_FORMATS), "text | jsonl | csv (default text)."),
            f("csv", Ty::Object(CSV_OPTIONS), "CSV options."),
            f("schema", SCHEMA, "Field types for CSV columns."),
            f("max_line_length", Ty::Size, "The longest line (a CSV record) read, such as 64MiB (default 16MiB): a longer one stops the run with an error naming the file and line."),
        ],
    },
    Variant {
        name: "kafka",
        doc: "Reads Kafka topics; offsets are part of checkpoints.",
        fields: source_fields![
            req("brokers", Ty::Str, "Bootstrap servers, host:port[,host:port]."),
            f("topic", Ty::Str, "The topic to read."),
            f("topics", Ty::List(&Ty::Str), "Several topics to read."),
            f("group", Ty::Str, "Consumer group id (default: flowctl-<pipeline>-<source>)."),
            f(
                "start",
                Ty::Enum(&["earliest", "latest", "committed"]),
                "Where a run without a checkpoint starts (default committed, then earliest)."
            ),
            f("bounded", Ty::Bool, "Stop at the end offsets the partitions had at start-up (cron mode)."),
            f("format", Ty::Enum(KAFKA_FORMATS), "jsonl | csv | text | raw (default jsonl)."),
            f("csv", Ty::Object(CSV_OPTIONS), "CSV options."),
            f("schema", SCHEMA, "CSV: the columns of each message and their types (default c1, c2, ...)."),
            f("key_field", Ty::Str, "Expose the message key (a string, null without a key) as this field."),
            f("timestamp_field", Ty::Str, "Expose the message timestamp (a timestamp) as this field."),
            f("headers_field", Ty::Str, "Expose the message headers (an object of strings) as this field."),
            f("options", Ty::Map(&Ty::Str), "librdkafka settings passed through."),
        ],
    },
    Variant {
        name: "datagen",
        doc: "Synthetic records from field generators; unbounded without `count`.",
        fields: source_fields![
            req("fields", Ty::Map(&Ty::Object(GENERATOR)), "Output fields in order, each with a generator."),
            f("rate", Ty::PosInt, "Records per second (default: as fast as possible)."),
            f("count", Ty::Int, "Number of records, then the source ends."),
            f("seed", Ty::Int, "Random seed (default 0): the same seed gives the same records."),
        ],
    },
    Variant {
        name: "nexmark",
        doc: "The Nexmark benchmark's person, auction and bid events.",
        fields: source_fields![
            f("events", Ty::Int, "Number of events, then the source ends (default: unbounded)."),
            f("rate", Ty::PosInt, "Events per second (default: as fast as possible)."),
            f("seed", Ty::Int, "Random seed (default 0)."),
        ],
    },
];

const GENERATOR: &[Field] = &[
    req(
        "type",
        Ty::Enum(&["sequence", "uniform_int", "uniform_float", "choice", "timestamp", "constant"]),
        "The generator.",
    ),
    f("start", Ty::Int, "sequence: first value (default 0); timestamp: first epoch ms (default now)."),
    f("step", Ty::Int, "sequence / timestamp: increment per record (default 1)."),
    f("min", Ty::Any, "uniform_*: smallest value."),
    f("max", Ty::Any, "uniform_*: largest value (inclusive for ints)."),
    f("values", Ty::List(&Ty::Any), "choice: the values to pick from."),
    f("value", Ty::Any, "constant: the value."),
];

macro_rules! sink_fields {
    ($($extra:expr),* $(,)?) => {
        &[
            req("type", Ty::Str, "The kind of sink."),
            f("from", Ty::IdList, "Inputs: step or source ids (default: the last step)."),
            $($extra),*
        ]
    };
}

pub const SINK_TYPES: &[Variant] = &[
    Variant {
        name: "stdout",
        doc: "Writes to standard output; at-least-once. A broken pipe ends the run cleanly.",
        fields: sink_fields![f("format", Ty::Enum(&["jsonl", "csv", "table"]), "jsonl | csv | table (default jsonl). A table is printed 1000 rows at a time (and at each checkpoint), its header again when a page widens a column.")],
    },
    Variant {
        name: "file",
        doc: "Writes a file under a temporary name and renames it when complete; exactly-once with checkpoints.",
        fields: sink_fields![
            req("path", Ty::Str, "Output path; relative paths resolve against the pipeline file."),
            f("format", Ty::Enum(SINK_FORMATS), "csv | jsonl. Default: from the extension."),
            f("header", Ty::Bool, "csv: write a header line (default true)."),
            f("delimiter", Ty::Str, "csv: field separator, one character (default `,`)."),
        ],
    },
    Variant {
        name: "kafka",
        doc: "Writes to a Kafka topic.",
        fields: sink_fields![
            req("brokers", Ty::Str, "Bootstrap servers."),
            req("topic", Ty::Str, "The topic to write."),
            f("key", Ty::Expr, "Message key: a field or expression."),
            f("format", Ty::Enum(&["jsonl", "csv"]), "Value format (default jsonl)."),
            f("partition_by", Ty::Expr, "Partitioning expression (default: hash of the key)."),
            f(
                "delivery",
                Ty::Enum(&["exactly_once", "at_least_once"]),
                "exactly_once: transactions committed with checkpoints (default at_least_once)."
            ),
            f("create_topic", Ty::Bool, "Create the topic when it does not exist (default false)."),
            f("partitions", Ty::PosInt, "create_topic: the new topic's partition count (default 1)."),
            f("options", Ty::Map(&Ty::Str), "librdkafka settings passed through."),
        ],
    },
    Variant {
        name: "mysql",
        doc: "Writes rows to a MySQL/MariaDB table; exactly-once with checkpoints.",
        fields: SQL_SINK,
    },
    Variant {
        name: "postgres",
        doc: "Writes rows to a PostgreSQL table; exactly-once with checkpoints.",
        fields: SQL_SINK,
    },
    Variant {
        name: "socket",
        doc: "Sends lines to host:port.",
        fields: sink_fields![
            req("address", Ty::Str, "host:port to connect to."),
            f("format", Ty::Enum(&["jsonl", "csv"]), "jsonl | csv (default jsonl)."),
        ],
    },
    Variant {
        name: "blackhole",
        doc: "Discards every record (counted in the summary), as Flink's blackhole connector: for benchmarks and dry runs.",
        fields: sink_fields![],
    },
];

const SQL_SINK: &[Field] = sink_fields![
    req("url", Ty::Str, "Connection URL, normally `${ENV_VAR}`; passwords are never printed."),
    req("table", Ty::Str, "Target table."),
    f("key", Ty::NameList, "Key columns: upsert on these; without `key` rows are appended."),
    f("columns", Ty::NameList, "Columns to write (default: all fields)."),
    f("create_table", Ty::Bool, "Create the table from the stream's schema when missing."),
    f("batch_size", Ty::PosInt, "Rows per multi-row statement (default 500)."),
];

/// Step kinds, each the one key of a step item.
/// Every step kind: the built-in ones, then those defined whole in their own files
/// (`steps/registry.rs`).
pub fn step_kinds() -> impl Iterator<Item = &'static Field> {
    BUILTIN_STEP_KINDS.iter().chain(crate::steps::registry::STEP_TYPES.iter().map(|t| &t.field))
}

const BUILTIN_STEP_KINDS: &[Field] = &[
    f(
        "key_by",
        Ty::AnyOf(&[Ty::Expr, Ty::List(&Ty::Expr), Ty::Map(&Ty::Expr)]),
        "Partition by key: a field, an expression, a list, or {name: expr}.",
    ),
    f("window", Ty::Object(WINDOW), "Assign records to event-time windows; a later `reduce` aggregates them."),
    f("reduce", Ty::Map(&Ty::Aggregate), "Aggregate per key (and window): {out_field: agg(expr)}."),
];

/// Keys a step item may have besides its kind.
pub const STEP_COMMON: &[Field] = &[
    f("id", Ty::Id, "Name of the step, for `from:` and for checkpoint state."),
    f("from", Ty::IdList, "Inputs: step or source ids (default: the step before, or all sources)."),
    f(
        "parallelism",
        Ty::Parallelism,
        "On a step after `key_by`: the number of keyed instances (overrides `--parallelism` and the pipeline's; all keyed steps must agree). Refused on other steps.",
    ),
];

pub const WINDOW_KINDS: &[&str] = &["tumbling", "sliding", "session", "count"];

const WINDOW: &[Field] = &[
    f("tumbling", Ty::Duration, "Fixed, non-overlapping windows of this size, aligned to the epoch."),
    f(
        "sliding",
        Ty::Object(&[
            req("size", Ty::Duration, "Window size."),
            req("slide", Ty::Duration, "Distance between window starts."),
        ]),
        "Overlapping windows.",
    ),
    f(
        "session",
        Ty::Object(&[req("gap", Ty::Duration, "Inactivity that closes a session.")]),
        "Sessions per key separated by a gap.",
    ),
    f("count", Ty::PosInt, "Windows of this many records per key."),
    f("allowed_lateness", Ty::Duration, "Late records within this are added and re-emit the window (default 0s)."),
    f("late", Ty::Str, "`drop` (default, counted) or the id of a sink receiving late records."),
];

const CHECKPOINT: &[Field] = &[
    f("dir", Ty::Str, "Checkpoint directory (default .flowctl/<name> next to the pipeline file)."),
    f("interval", Ty::Duration, "Time between checkpoints (default 10s)."),
    f("keep", Ty::PosInt, "Checkpoints kept (default 3)."),
];

const TEST_CASE: &[Field] = &[
    req("name", Ty::Str, "Name of the case."),
    f("input", Ty::Map(&Ty::List(&Ty::Any)), "Records per source id."),
    f("expect", Ty::Map(&Ty::List(&Ty::Any)), "Expected records per sink or step id."),
];

/// The top level of a pipeline file.
pub const PIPELINE: &[Field] = &[
    f("name", Ty::Str, "Pipeline name (default: the file stem); names checkpoints and metrics."),
    f("description", Ty::Str, "Free text."),
    req("sources", Ty::Map(&Ty::Tagged { tag: "type", variants: SOURCE_TYPES }), "Sources by id."),
    f("steps", Ty::Steps, "The processing steps, a chain unless steps say `from:`."),
    req("sinks", Ty::Map(&Ty::Tagged { tag: "type", variants: SINK_TYPES }), "Sinks by id."),
    f("on_error", Ty::Str, "`fail` (default), `skip`, or a sink id receiving bad records with an `error` field."),
    f("parallelism", Ty::Parallelism, "The run's parallelism (default: the number of cores; `--parallelism` overrides it, a keyed step's `parallelism:` overrides both): the instances of the steps after `key_by`, the workers of a file split by data, or the threads reading a stateless pipeline's one source in blocks (`flowctl plan` says which). Results are the same at any parallelism; the order of keyed results may differ."),
    f(
        "memory_limit",
        Ty::Size,
        "Fail with a clear error, naming the step holding the most state, when the process's resident memory goes above this (e.g. `2GiB`); `--memory-limit` overrides it. Default: no limit."
    ),
    f("checkpoint", Ty::Object(CHECKPOINT), "Periodic checkpoints; without it every run starts over."),
    f("tests", Ty::List(&Ty::Object(TEST_CASE)), "Cases for `flowctl test`."),
];
