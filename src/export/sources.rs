//! Sources as Flink `CREATE TABLE` statements: the columns with their types, the
//! event-time attribute as a computed column with its `WATERMARK`, and the connector
//! options (filesystem, kafka, datagen). What Flink cannot read the same way is refused.

use super::expressions;
use super::types::{
    config_duration, interval, literal, quote, Approximations, Column, Refusal, Relation, SqlType, TIME_COLUMN,
};
use crate::spec::node::Span;
use crate::spec::{
    DataFormat, Decoding, KafkaStart, PipelineSpec, SourceKind, SourceSpec, TimeFormat, TimeSource, ValueType,
};

/// A source's table: its DDL and the relation later steps read.
pub struct SourceTable {
    pub ddl: String,
    pub relation: Relation,
}

pub fn table(spec: &PipelineSpec, source: &SourceSpec, approx: &Approximations) -> Result<SourceTable, Refusal> {
    let id = &source.id.value;
    let refuse = |message: String, hint: Option<&str>| Err(Refusal::new(source.type_span, message, hint));
    let (columns, options) = match &source.kind {
        SourceKind::File { path, decoding, follow } => {
            if follow.value {
                return Err(Refusal::new(
                    follow.span,
                    format!("source `{id}`: `follow: true` (tailing files) has no Flink filesystem equivalent"),
                    Some("Flink's `source.monitor-interval` watches for new files, not for lines appended to one"),
                ));
            }
            if path.value.contains(['*', '?', '[']) {
                return Err(Refusal::new(
                    path.span,
                    format!("source `{id}`: a glob path has no Flink filesystem equivalent"),
                    Some("point `path` at one file, or at a directory that holds only the input files"),
                ));
            }
            let mut options =
                vec![("connector", "filesystem".to_string()), ("path", super::types::location(spec, &path.value))];
            let columns = columns(id, source.type_span, decoding, approx)?;
            options.extend(format_options(id, source.type_span, decoding)?);
            (columns, options)
        }
        SourceKind::Kafka {
            brokers,
            topics,
            group,
            start,
            bounded,
            decoding,
            key_field,
            timestamp_field,
            headers_field,
            options: extra,
        } => {
            if key_field.is_some() || timestamp_field.is_some() || headers_field.is_some() {
                return refuse(
                    format!("source `{id}`: `key_field`, `timestamp_field` and `headers_field` are not exported"),
                    Some("Flink reads them as METADATA columns of other types; add them to the script by hand"),
                );
            }
            let mut options = vec![
                ("connector", "kafka".to_string()),
                ("topic", topics.iter().map(|t| t.value.as_str()).collect::<Vec<_>>().join(";")),
                ("properties.bootstrap.servers", brokers.value.clone()),
            ];
            if let Some(g) = group {
                options.push(("properties.group.id", g.clone()));
            }
            let mode = match start {
                KafkaStart::Earliest => "earliest-offset",
                KafkaStart::Latest => "latest-offset",
                KafkaStart::Committed => "group-offsets",
            };
            options.push(("scan.startup.mode", mode.to_string()));
            if *bounded {
                options.push(("scan.bounded.mode", "latest-offset".to_string()));
            }
            let columns = columns(id, source.type_span, decoding, approx)?;
            options.extend(format_options(id, source.type_span, decoding)?);
            let mut options: Vec<(String, String)> = options.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
            options.extend(extra.iter().map(|(k, v)| (format!("properties.{k}"), v.clone())));
            return finish(source, columns, options, approx);
        }
        SourceKind::Datagen { fields, rate, count, .. } => {
            let g = datagen(id, fields, *rate, *count)?;
            return finish_with(source, g.columns, g.lines, g.options, approx);
        }
        SourceKind::Stdin { .. } => {
            return refuse(format!("source `{id}`: stdin has no Flink connector"), Some("read a file instead"))
        }
        SourceKind::Socket { .. } => {
            return refuse(format!("source `{id}`: a socket source has no Flink SQL connector"), None)
        }
        SourceKind::Nexmark { .. } => {
            return refuse(
                format!("source `{id}`: the nexmark generator has no Flink SQL connector"),
                Some("Flink's nexmark benchmark ships its own generator; export the events to a file or topic"),
            )
        }
    };
    finish(source, columns, options.into_iter().map(|(k, v)| (k.to_string(), v)).collect(), approx)
}

fn finish(
    source: &SourceSpec,
    columns: Vec<Column>,
    options: Vec<(String, String)>,
    approx: &Approximations,
) -> Result<SourceTable, Refusal> {
    let lines = columns.iter().map(|c| format!("  {} {}", quote(&c.name), c.ty.name())).collect();
    finish_with(source, columns, lines, options, approx)
}

/// The table with these column definitions (`lines`), event time and options.
fn finish_with(
    source: &SourceSpec,
    columns: Vec<Column>,
    mut lines: Vec<String>,
    mut options: Vec<(String, String)>,
    approx: &Approximations,
) -> Result<SourceTable, Refusal> {
    let id = &source.id.value;
    let time = match &source.event_time {
        None => false,
        Some(et) => {
            let ms = event_time_millis(source, et, &columns, approx)?;
            lines.push(format!("  {} AS TO_TIMESTAMP_LTZ({ms}, 3)", quote(TIME_COLUMN)));
            let t = quote(TIME_COLUMN);
            lines.push(format!("  WATERMARK FOR {t} AS {t} - {}", interval(source.watermark.max_out_of_orderness)));
            if let Some(idle) = source.watermark.idle_timeout {
                options.push(("scan.watermark.idle-timeout".into(), config_duration(idle)));
            }
            true
        }
    };
    if columns.iter().any(|c| c.name == TIME_COLUMN) {
        return Err(Refusal::new(
            source.id.span,
            format!("source `{id}` has a field named `{TIME_COLUMN}`, the name the export gives event time"),
            None,
        ));
    }
    let with =
        options.iter().map(|(k, v)| format!("  {} = {}", literal(k), literal(v))).collect::<Vec<_>>().join(",\n");
    let mut ddl = String::new();
    if let SourceKind::File { decoding, .. } | SourceKind::Kafka { decoding, .. } = &source.kind {
        if decoding.format == DataFormat::Jsonl {
            ddl.push_str(&format!(
                "-- `{id}`: Flink reads exactly these columns of each JSON line; flowctl also keeps a line's\n\
             -- undeclared fields, which reach sinks through filter, set, drop and flat_map.\n"
            ));
        }
    }
    ddl.push_str(&format!("CREATE TABLE {} (\n{}\n) WITH (\n{with}\n);", quote(id), lines.join(",\n")));
    // Flink's datagen splits its sequences between subtasks: no one arrival order.
    let ordered = matches!(source.kind, SourceKind::File { .. });
    let relation = Relation { name: id.clone(), columns, time, key: None, window: None, ordered, updating: None };
    Ok(SourceTable { ddl, relation })
}

/// The event time in epoch milliseconds, as SQL over the source's columns.
fn event_time_millis(
    source: &SourceSpec,
    et: &crate::spec::EventTimeSpec,
    columns: &[Column],
    approx: &Approximations,
) -> Result<String, Refusal> {
    let id = &source.id.value;
    let sql = match &et.source {
        TimeSource::Field(f) => match columns.iter().find(|c| c.name == f.value) {
            Some(c) => super::types::Sql { text: quote(&c.name), ty: c.ty },
            None => {
                return Err(Refusal::new(
                    f.span,
                    format!("source `{id}`: event time field `{}` has no declared type", f.value),
                    Some("declare it in `schema:`"),
                ))
            }
        },
        TimeSource::Expr(e) => expressions::translate(e, columns, approx)?,
    };
    match (sql.ty, &et.format) {
        (SqlType::Bigint, None | Some(TimeFormat::EpochMillis)) => Ok(sql.text),
        (SqlType::Bigint, Some(TimeFormat::EpochSeconds)) => Ok(format!("{} * 1000", sql.text)),
        _ => Err(Refusal::new(
            et.span,
            format!("source `{id}`: only event times in epoch milliseconds or seconds (an int field) are exported"),
            Some("Flink parses timestamp strings with other rules than flowctl's RFC 3339 and strftime"),
        )),
    }
}

/// The declared columns; Flink needs every column's type, and the CSV header line
/// cannot be skipped by Flink's csv format.
fn columns(id: &str, at: Span, decoding: &Decoding, approx: &Approximations) -> Result<Vec<Column>, Refusal> {
    if decoding.schema.is_empty() {
        return Err(Refusal::new(
            at,
            format!("source `{id}` declares no `schema:`; a Flink table needs every column's type"),
            Some("declare every field in order, such as `schema: {ts: int, user: string}`"),
        ));
    }
    let csv = decoding.format == DataFormat::Csv;
    decoding
        .schema
        .iter()
        .map(|(name, ty)| {
            let ty = match ty {
                ValueType::Int => SqlType::Bigint,
                ValueType::Float => SqlType::Double,
                ValueType::String => SqlType::String,
                ValueType::Bool if !csv => SqlType::Boolean,
                ValueType::Bool => {
                    let refusal = Refusal::new(
                        at,
                        format!("source `{id}`: field `{name}`: a CSV bool column reads other words as true and false in Flink"),
                        Some("declare it as a string and compare it in a filter or map"),
                    );
                    approx.allow(refusal, "read as BOOLEAN: a word other than true is false")?;
                    SqlType::Boolean
                }
                ValueType::Timestamp | ValueType::Json => {
                    return Err(Refusal::new(
                        at,
                        format!("source `{id}`: field `{name}`: timestamp and json columns are not exported"),
                        Some("declare it as int (epoch milliseconds) or string"),
                    ))
                }
            };
            Ok(Column { name: name.clone(), ty })
        })
        .collect()
}

fn format_options(id: &str, at: Span, decoding: &Decoding) -> Result<Vec<(&'static str, String)>, Refusal> {
    match decoding.format {
        DataFormat::Csv if decoding.csv.header => Err(Refusal::new(
            at,
            format!("source `{id}`: Flink's csv format cannot skip a header line"),
            Some("write the input without its header and set `csv: {header: false}` with a `schema:` naming the columns in order"),
        )),
        DataFormat::Csv => {
            let mut o = vec![("format", "csv".to_string()), ("csv.null-literal", String::new())];
            if decoding.csv.delimiter != b',' {
                o.push(("csv.field-delimiter", (decoding.csv.delimiter as char).to_string()));
            }
            if decoding.csv.quote != b'"' {
                o.push(("csv.quote-character", (decoding.csv.quote as char).to_string()));
            }
            Ok(o)
        }
        DataFormat::Jsonl => Ok(vec![("format", "json".to_string())]),
        DataFormat::Text | DataFormat::Raw => Err(Refusal::new(
            at,
            format!("source `{id}`: text lines are not exported"),
            Some("Flink's raw format reads whole files or messages, not lines"),
        )),
    }
}

/// flowctl's generators that give the same values in Flink's datagen: `sequence` with
/// step 1 (Flink's sequence kind) and `constant` (a computed column). The random
/// kinds draw other values and timestamps are a column type the export lacks.
fn datagen(
    id: &str,
    fields: &[crate::spec::Generator],
    rate: Option<u64>,
    count: Option<u64>,
) -> Result<Generated, Refusal> {
    use crate::record::Value;
    let mut options = vec![("connector".to_string(), "datagen".to_string())];
    if let Some(n) = count {
        options.push(("number-of-rows".into(), n.to_string()));
    }
    if let Some(r) = rate {
        options.push(("rows-per-second".into(), r.to_string()));
    }
    let (mut columns, mut lines) = (Vec::new(), Vec::new());
    for g in fields {
        let name = &g.field.value;
        let int = |key: &str, default: i64| match g.node.get(key).map(|v| v.to_value()) {
            None => Some(default),
            Some(Value::Int(i)) => Some(i),
            Some(_) => None,
        };
        let refuse = |why: &str| {
            Err(Refusal::new(g.field.span, format!("source `{id}`: field `{name}` ({}): {why}", g.kind), None))
        };
        match g.kind.as_str() {
            "sequence" => {
                let (Some(start), Some(1)) = (int("start", 0), int("step", 1)) else {
                    return refuse("Flink's sequences step by 1");
                };
                let Some(n) = count else {
                    return refuse("a Flink sequence needs an end: give the source a `count`");
                };
                let end = i64::try_from(n).ok().and_then(|n| start.checked_add(n - 1));
                let Some(end) = end.filter(|_| n > 0) else { return refuse("the sequence leaves 64 bits") };
                options.push((format!("fields.{name}.kind"), "sequence".into()));
                options.push((format!("fields.{name}.start"), start.to_string()));
                options.push((format!("fields.{name}.end"), end.to_string()));
                lines.push(format!("  {} BIGINT", quote(name)));
                columns.push(Column { name: name.clone(), ty: SqlType::Bigint });
            }
            "constant" => {
                let (text, ty) = match g.node.get("value").map(|v| v.to_value()).unwrap_or_default() {
                    Value::Int(i) => (format!("CAST({i} AS BIGINT)"), SqlType::Bigint),
                    Value::Float(f) if f.is_finite() => (format!("CAST({f:?} AS DOUBLE)"), SqlType::Double),
                    Value::Str(s) => (format!("CAST({} AS STRING)", literal(&s)), SqlType::String),
                    Value::Bool(b) => (if b { "TRUE" } else { "FALSE" }.to_string(), SqlType::Boolean),
                    _ => return refuse("only int, float, string and bool constants are exported"),
                };
                lines.push(format!("  {} AS {text}", quote(name)));
                columns.push(Column { name: name.clone(), ty });
            }
            _ => return refuse("Flink's datagen draws other values than flowctl's seeded generators"),
        }
    }
    Ok(Generated { columns, lines, options })
}

/// A datagen table's columns, their definitions and its options.
struct Generated {
    columns: Vec<Column>,
    lines: Vec<String>,
    options: Vec<(String, String)>,
}
