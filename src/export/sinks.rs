//! Sinks as Flink `CREATE TABLE` statements (filesystem, print, blackhole, kafka,
//! jdbc) and the `INSERT INTO` that feeds each. Sinks that cannot take what their
//! input produces (updates into an append-only sink) or that Flink cannot write the
//! same way are refused.

use super::types::{literal, quote, Column, Refusal, Relation};
use crate::spec::{DataFormat, PipelineSpec, SinkKind, SinkSpec, SqlDialect, StdoutFormat};

/// A sink's DDL, the INSERT that feeds it, and comments about how it differs.
pub struct SinkTable {
    pub ddl: String,
    pub insert: String,
}

pub fn table(spec: &PipelineSpec, sink: &SinkSpec, input: &Relation) -> Result<SinkTable, Refusal> {
    let id = &sink.id.value;
    let at = sink.type_span;
    let refuse = |message: String, hint: Option<&str>| Err(Refusal::new(at, message, hint));
    let updating = input.updating.is_some();
    let mut columns: Vec<Column> = input.columns.clone();
    let mut primary_key: Vec<String> = Vec::new();
    let mut notes: Vec<String> = Vec::new();
    let options: Vec<(String, String)> = match &sink.kind {
        SinkKind::Stdout { format } => {
            if *format != StdoutFormat::Jsonl {
                notes.push("-- flowctl's stdout formats become Flink's print rows (+I[...], -U/+U for updates)".into());
            }
            vec![opt("connector", "print")]
        }
        SinkKind::Blackhole => vec![opt("connector", "blackhole")],
        SinkKind::File { path, format, header, delimiter } => {
            if updating {
                return refuse(
                    format!("sink `{id}` reads a rolling reduce's updates; Flink's filesystem sink appends only"),
                    Some("send the updates to stdout or to a mysql/postgres sink with a `key`"),
                );
            }
            let location = super::types::location(spec, &path.value);
            notes.push(format!(
                "-- Flink writes part files into the directory {location}, committed at checkpoints and at the end of bounded input"
            ));
            let mut o = vec![opt("connector", "filesystem"), opt("path", &location)];
            match format.value {
                DataFormat::Csv if *header => {
                    return Err(Refusal::new(
                        format.span,
                        format!("sink `{id}`: Flink's csv format writes no header line"),
                        Some("set `header: false` on the sink"),
                    ))
                }
                DataFormat::Csv => {
                    o.extend([opt("format", "csv"), opt("csv.null-literal", "")]);
                    if *delimiter != b',' {
                        o.push(opt("csv.field-delimiter", &(*delimiter as char).to_string()));
                    }
                }
                _ => o.push(opt("format", "json")),
            }
            o
        }
        SinkKind::Kafka { brokers, topic, key, partition_by, format, exactly_once, options, .. } => {
            if updating {
                return refuse(
                    format!("sink `{id}` reads a rolling reduce's updates; Flink's kafka sink appends only"),
                    Some("Flink's upsert-kafka connector takes updates; it needs a primary key and writes tombstones"),
                );
            }
            if let Some(e) = key.as_ref().or(partition_by.as_ref()) {
                return Err(Refusal::new(
                    e.span,
                    format!("sink `{id}`: message keys computed by an expression are not exported"),
                    Some("Flink's kafka sink takes `key.fields` of the row in its own key format"),
                ));
            }
            let format = match format {
                DataFormat::Jsonl => "json",
                DataFormat::Csv => "csv",
                other => return refuse(format!("sink `{id}`: the {} format is not exported", other.name()), None),
            };
            let mut o = vec![
                opt("connector", "kafka"),
                opt("topic", &topic.value),
                opt("properties.bootstrap.servers", &brokers.value),
                opt("format", format),
            ];
            if *exactly_once {
                o.push(opt("sink.delivery-guarantee", "exactly-once"));
                o.push(opt("sink.transactional-id-prefix", &format!("{}-{id}", spec.name)));
                notes.push("-- exactly-once needs Flink checkpoints: transactions commit with them".into());
            } else {
                o.push(opt("sink.delivery-guarantee", "at-least-once"));
            }
            o.extend(options.iter().map(|(k, v)| (format!("properties.{k}"), v.clone())));
            o
        }
        SinkKind::Sql { dialect, url, table, key, columns: chosen, .. } => {
            if updating {
                let keys = input.updating.clone().unwrap_or_default();
                let given: Vec<&str> = key.iter().map(|k| k.value.as_str()).collect();
                if keys.is_empty() || given != keys.iter().map(String::as_str).collect::<Vec<_>>() {
                    return refuse(
                        format!("sink `{id}` reads a rolling reduce's updates; it needs `key:` equal to the reduce's key ({})", keys.join(", ")),
                        None,
                    );
                }
            }
            if !chosen.is_empty() {
                columns.retain(|c| chosen.iter().any(|n| n.value == c.name));
            }
            primary_key = key.iter().map(|k| k.value.clone()).collect();
            let (jdbc, user, password) = jdbc_url(*dialect, &url.value).ok_or_else(|| {
                Refusal::new(url.span, format!("sink `{id}`: cannot read the url as host, port and database"), None)
            })?;
            let mut o = vec![opt("connector", "jdbc"), opt("url", &jdbc), opt("table-name", &table.value)];
            if let Some(u) = user {
                o.push(opt("username", &u));
            }
            if let Some(pw) = password {
                notes.push("-- the password comes from the pipeline's url: keep this script secret".into());
                o.push(opt("password", &pw));
            }
            o
        }
        SinkKind::Socket { .. } => {
            return refuse(format!("sink `{id}`: a socket sink has no Flink SQL connector"), None)
        }
    };
    let mut lines: Vec<String> = columns.iter().map(|c| format!("  {} {}", quote(&c.name), c.ty.name())).collect();
    if !primary_key.is_empty() {
        lines.push(format!(
            "  PRIMARY KEY ({}) NOT ENFORCED",
            primary_key.iter().map(|k| quote(k)).collect::<Vec<_>>().join(", ")
        ));
    }
    let with =
        options.iter().map(|(k, v)| format!("  {} = {}", literal(k), literal(v))).collect::<Vec<_>>().join(",\n");
    let mut ddl = notes.join("\n");
    if !ddl.is_empty() {
        ddl.push('\n');
    }
    ddl.push_str(&format!("CREATE TABLE {} (\n{}\n) WITH (\n{with}\n);", quote(id), lines.join(",\n")));
    let names = columns.iter().map(|c| quote(&c.name)).collect::<Vec<_>>().join(", ");
    let insert = format!("INSERT INTO {} SELECT {names} FROM {};", quote(id), quote(&input.name));
    Ok(SinkTable { ddl, insert })
}

fn opt(k: &str, v: &str) -> (String, String) {
    (k.to_string(), v.to_string())
}

/// `mysql://user:pw@host:3306/db?x=y` as Flink's JDBC url, user and password.
fn jdbc_url(dialect: SqlDialect, url: &str) -> Option<(String, Option<String>, Option<String>)> {
    let (_, rest) = url.split_once("://")?;
    let (creds, location) = match rest.rsplit_once('@') {
        Some((c, l)) => (Some(c), l),
        None => (None, rest),
    };
    let (user, password) = match creds.map(|c| c.split_once(':').map_or((c, None), |(u, p)| (u, Some(p)))) {
        Some((u, p)) => (Some(u.to_string()).filter(|u| !u.is_empty()), p.map(str::to_string)),
        None => (None, None),
    };
    let scheme = match dialect {
        SqlDialect::Mysql => "mysql",
        SqlDialect::Postgres => "postgresql",
    };
    Some((format!("jdbc:{scheme}://{location}"), user, password))
}
