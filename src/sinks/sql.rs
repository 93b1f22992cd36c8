//! The `mysql` and `postgres` sinks (sqlx), exactly-once with checkpoints.
//!
//! Without checkpoints each batch is written in its own transaction as it arrives
//! (at-least-once; with `key:` upserts, idempotent). With checkpoints the rows of an
//! epoch are held back (compacted by key when upserting), travel inside checkpoint N,
//! and are written only after checkpoint N is durable, in one transaction that also
//! records N in `flowctl_commits (pipeline, sink, lineage, epoch)`, one row per
//! lineage (a line of runs resuming each other from one checkpoint directory), so
//! independent runs of one pipeline name never overwrite each other's marker. A resumed
//! run whose checkpoint holds rows not yet recorded there writes them; rows of an epoch
//! already recorded are never written again. A table of the older shape (one row per
//! pipeline and sink) is migrated in place: its rows stay valid. So a crash at any moment neither loses nor
//! duplicates rows, in append mode too. A database that goes away is retried with
//! backoff. Values are always bound parameters, never SQL text.

use super::{Sink, SinkError};
use crate::error::Error;
use crate::record::{Record, Value};
use serde::{Deserialize, Serialize};
use sqlx::{Connection, MySqlConnection, PgConnection};
use std::time::Duration;

/// Which database a SQL sink writes to (`type: mysql` or `postgres`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SqlDialect {
    Mysql,
    Postgres,
}

/// The SQL type family of a column, for binding values (and typed NULLs).
#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Int,
    Float,
    Bool,
    Timestamp,
    Json,
    Text,
}

fn kind_of(sql_type: &str) -> Kind {
    let t = sql_type.to_ascii_lowercase();
    match t.as_str() {
        _ if t.contains("int") || t == "serial" || t == "bigserial" => Kind::Int,
        _ if t.contains("double")
            || t.contains("float")
            || t == "real"
            || t.contains("numeric")
            || t.contains("decimal") =>
        {
            Kind::Float
        }
        _ if t.contains("bool") => Kind::Bool,
        _ if t.contains("timestamp") || t.contains("datetime") => Kind::Timestamp,
        _ if t.contains("json") => Kind::Json,
        _ => Kind::Text,
    }
}

enum Db {
    My(MySqlConnection),
    Pg(PgConnection),
}

/// What a checkpoint records: the rows of the epoch being committed.
#[derive(Serialize, Deserialize, Default)]
struct Pending {
    epoch: u64,
    columns: Vec<String>,
    rows: Vec<Vec<Value>>,
}

/// A `mysql` or `postgres` sink's configuration.
#[derive(Clone, Debug)]
pub struct SqlConfig {
    pub dialect: SqlDialect,
    pub url: String,
    pub table: String,
    pub key: Vec<String>,
    pub columns: Vec<String>,
    pub create_table: bool,
    pub batch_size: usize,
    pub pipeline: String,
    pub sink: String,
    /// The checkpoint lineage epochs belong to (see `Checkpoint::lineage`): the run's,
    /// set when the sink opens.
    pub lineage: String,
}

pub struct SqlSink {
    config: SqlConfig,
    runtime: tokio::runtime::Runtime,
    db: Option<Db>,
    checkpointed: bool,
    /// `flowctl_commits` exists in its current shape (checked once per run).
    commit_table_ready: bool,
    /// Column names and kinds, known after the first record (or from a checkpoint).
    columns: Option<Vec<(String, Kind)>>,
    /// Rows written since the last barrier (checkpointed runs).
    buffer: Vec<Vec<Value>>,
    /// Rows of the epoch whose checkpoint is being written.
    pending: Option<Pending>,
    request_checkpoint: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// `on_error: skip` or a sink: rejected rows are handed here and left out.
    on_reject: Option<super::RejectHandler>,
}

impl SqlConfig {
    /// The URL must be one the driver reads (else only `run` finds out, without a
    /// position). The message does not show it: it may hold a password (`${VAR}`).
    pub fn check(&self) -> Result<(), crate::diag::Problem> {
        let example = match self.dialect {
            SqlDialect::Mysql => "mysql://user:password@host:3306/database",
            SqlDialect::Postgres => "postgres://user:password@host:5432/database",
        };
        check_url(self.dialect, &self.url).map_err(|why| crate::diag::Problem {
            message: format!("`url` of sink `{}` is not a connection URL: {why}", self.sink),
            hint: Some(format!("such as {example}")),
        })
    }
}

/// Whether `url` is a connection URL of `dialect` (as the driver reads it, without
/// connecting): the reason when it is not.
pub fn check_url(dialect: SqlDialect, url: &str) -> Result<(), String> {
    let schemes: &[&str] = match dialect {
        SqlDialect::Mysql => &["mysql", "mariadb"],
        SqlDialect::Postgres => &["postgres", "postgresql"],
    };
    match url.split_once("://") {
        Some((scheme, _)) if schemes.contains(&scheme) => {}
        _ => return Err(format!("it must start with {}://", schemes.join(":// or "))),
    }
    let parsed = match dialect {
        SqlDialect::Mysql => url.parse::<sqlx::mysql::MySqlConnectOptions>().map(drop),
        SqlDialect::Postgres => url.parse::<sqlx::postgres::PgConnectOptions>().map(drop),
    };
    parsed.map_err(|e| e.to_string())
}

/// Replaces the password of a connection URL with `***` for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let creds = &url[scheme + 3..at];
            match creds.find(':') {
                Some(colon) => format!("{}{}:***{}", &url[..scheme + 3], &creds[..colon], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

fn quote(dialect: SqlDialect, ident: &str) -> String {
    match dialect {
        SqlDialect::Mysql => format!("`{}`", ident.replace('`', "``")),
        SqlDialect::Postgres => format!("\"{}\"", ident.replace('"', "\"\"")),
    }
}

fn sql_error(config: &SqlConfig, what: &str, e: sqlx::Error) -> Error {
    // sqlx messages do not carry the URL; the redacted one says which database.
    Error::External(format!("sink `{}` ({}): cannot {what}: {e}", config.sink, redact(&config.url)))
}

/// Errors worth retrying after reconnecting: the connection, not the data; also a
/// transaction the database rolled back to break a deadlock or a serialization
/// conflict with another writer (SQLSTATE 40001, PostgreSQL's 40P01), which the
/// database asks the client to run again.
fn transient(e: &sqlx::Error) -> bool {
    if let sqlx::Error::Database(d) = e {
        if matches!(d.code().as_deref(), Some("40001") | Some("40P01")) {
            return true;
        }
    }
    matches!(
        e,
        sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Protocol(_)
    ) || matches!(e, sqlx::Error::Database(d) if d.message().contains("server has gone away") || d.message().contains("terminating connection"))
}

impl SqlSink {
    pub fn open(
        config: SqlConfig,
        checkpointed: bool,
        resume: Option<&serde_json::Value>,
        request_checkpoint: std::sync::Arc<std::sync::atomic::AtomicBool>,
        on_reject: Option<super::RejectHandler>,
    ) -> Result<SqlSink, Error> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::Internal(format!("cannot start the database runtime: {e}")))?;
        let mut sink = SqlSink {
            config,
            runtime,
            db: None,
            checkpointed,
            commit_table_ready: false,
            columns: None,
            buffer: Vec::new(),
            pending: None,
            request_checkpoint,
            on_reject,
        };
        sink.with_retry("connect", |_| Ok(()))?;
        if checkpointed {
            // Before a resumed epoch is committed: an older table is migrated first.
            sink.ensure_commit_table()?;
        }
        if let Some(state) = resume.filter(|s| !s.is_null()) {
            let pending: Pending = serde_json::from_value(state.clone()).map_err(|e| {
                Error::Internal(format!("sink `{}`: unreadable checkpoint state: {e}", sink.config.sink))
            })?;
            if !pending.columns.is_empty() {
                let kinds = sink.table_kinds(&pending.columns)?;
                sink.columns = Some(pending.columns.iter().cloned().zip(kinds).collect());
            }
            let epoch = pending.epoch;
            sink.pending = Some(pending);
            // Rows of a checkpoint that was written but maybe not yet committed.
            sink.commit_pending(epoch)?;
        }
        Ok(sink)
    }

    async fn connect(config: &SqlConfig) -> Result<Db, sqlx::Error> {
        Ok(match config.dialect {
            SqlDialect::Mysql => Db::My(MySqlConnection::connect(&config.url).await?),
            SqlDialect::Postgres => Db::Pg(PgConnection::connect(&config.url).await?),
        })
    }

    /// Runs `op` on a connection, reconnecting with backoff while the database is
    /// unreachable (about two minutes), failing at once on data errors.
    fn with_retry<T>(
        &mut self,
        what: &str,
        mut op: impl FnMut(&mut SqlSink) -> Result<T, sqlx::Error>,
    ) -> Result<T, Error> {
        let mut delay = Duration::from_millis(100);
        let mut waited = Duration::ZERO;
        loop {
            if self.db.is_none() {
                match self.runtime.block_on(Self::connect(&self.config)) {
                    Ok(db) => self.db = Some(db),
                    Err(e) if transient(&e) && waited < Duration::from_secs(120) => {
                        std::thread::sleep(delay);
                        waited += delay;
                        delay = (delay * 2).min(Duration::from_secs(5));
                        continue;
                    }
                    Err(e) => return Err(sql_error(&self.config, "connect", e)),
                }
            }
            match op(self) {
                Ok(v) => return Ok(v),
                Err(e) if transient(&e) && waited < Duration::from_secs(120) => {
                    self.db = None;
                    std::thread::sleep(delay);
                    waited += delay;
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
                Err(e) => return Err(sql_error(&self.config, what, e)),
            }
        }
    }

    /// The kinds of the table's columns named in `columns` (creating the table first
    /// when asked to and it is missing).
    fn table_kinds(&mut self, columns: &[String]) -> Result<Vec<Kind>, Error> {
        let table = self.config.table.clone();
        let found: Vec<(String, String)> = self.with_retry("read the table's columns", |s| {
            let rt = &s.runtime;
            match s.db.as_mut() {
                Some(Db::My(c)) => rt.block_on(
                    sqlx::query_as::<_, (String, String)>(
                        "SELECT CAST(column_name AS CHAR), CAST(data_type AS CHAR) FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = ?",
                    )
                    .bind(&table)
                    .fetch_all(c),
                ),
                Some(Db::Pg(c)) => rt.block_on(
                    sqlx::query_as::<_, (String, String)>(
                        "SELECT column_name::text, data_type::text FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1",
                    )
                    .bind(&table)
                    .fetch_all(c),
                ),
                None => Err(sqlx::Error::PoolClosed),
            }
        })?;
        if found.is_empty() {
            return Err(Error::External(format!(
                "sink `{}`: table `{}` does not exist (add `create_table: true` to create it from the stream)",
                self.config.sink, self.config.table
            )));
        }
        columns
            .iter()
            .map(|c| {
                found.iter().find(|(name, _)| name.eq_ignore_ascii_case(c)).map(|(_, t)| kind_of(t)).ok_or_else(|| {
                    Error::External(format!(
                        "sink `{}`: table `{}` has no column `{c}`",
                        self.config.sink, self.config.table
                    ))
                })
            })
            .collect()
    }

    /// Creates the table from a record's fields and value types.
    fn create_table(&mut self, record: &Record, columns: &[String]) -> Result<(), Error> {
        let d = self.config.dialect;
        let defs: Vec<String> = columns
            .iter()
            .map(|c| {
                let is_key = self.config.key.contains(c);
                let ty = match (record.get(c), d) {
                    (Some(Value::Int(_)), _) => "BIGINT",
                    (Some(Value::Float(_)), SqlDialect::Mysql) => "DOUBLE",
                    (Some(Value::Float(_)), SqlDialect::Postgres) => "DOUBLE PRECISION",
                    (Some(Value::Bool(_)), _) => "BOOLEAN",
                    (Some(Value::Timestamp(_)), _) => "TIMESTAMP",
                    (Some(Value::List(_) | Value::Map(_)), SqlDialect::Mysql) => "JSON",
                    (Some(Value::List(_) | Value::Map(_)), SqlDialect::Postgres) => "JSONB",
                    (_, SqlDialect::Mysql) if is_key => "VARCHAR(191)",
                    _ => "TEXT",
                };
                format!("{} {ty}{}", quote(d, c), if is_key { " NOT NULL" } else { "" })
            })
            .collect();
        let mut sql = format!("CREATE TABLE IF NOT EXISTS {} ({}", quote(d, &self.config.table), defs.join(", "));
        if !self.config.key.is_empty() {
            let keys: Vec<String> = self.config.key.iter().map(|k| quote(d, k)).collect();
            sql.push_str(&format!(", PRIMARY KEY ({})", keys.join(", ")));
        }
        sql.push(')');
        self.execute_plain("create the table", &sql)
    }

    /// Runs DDL built here from quoted identifiers (never from values).
    fn execute_plain(&mut self, what: &str, sql: &str) -> Result<(), Error> {
        let sql = sql.to_string();
        self.with_retry(what, |s| {
            let rt = &s.runtime;
            match s.db.as_mut() {
                Some(Db::My(c)) => rt.block_on(sqlx::query(sqlx::AssertSqlSafe(sql.clone())).execute(c)).map(|_| ()),
                Some(Db::Pg(c)) => rt.block_on(sqlx::query(sqlx::AssertSqlSafe(sql.clone())).execute(c)).map(|_| ()),
                None => Err(sqlx::Error::PoolClosed),
            }
        })
    }

    /// Learns the columns from the first record.
    fn ensure_columns(&mut self, record: &Record) -> Result<(), SinkError> {
        if self.columns.is_some() {
            return Ok(());
        }
        let names: Vec<String> = if self.config.columns.is_empty() {
            record.schema().names().iter().map(|n| n.to_string()).collect()
        } else {
            self.config.columns.clone()
        };
        if self.config.create_table {
            self.create_table(record, &names).map_err(SinkError::Failed)?;
        }
        let kinds = self.table_kinds(&names).map_err(SinkError::Failed)?;
        self.columns = Some(names.into_iter().zip(kinds).collect());
        Ok(())
    }

    fn ensure_commit_table(&mut self) -> Result<(), Error> {
        if self.commit_table_ready {
            return Ok(());
        }
        let sql = match self.config.dialect {
            SqlDialect::Mysql => "CREATE TABLE IF NOT EXISTS flowctl_commits (pipeline VARCHAR(191) NOT NULL, sink VARCHAR(191) NOT NULL, lineage VARCHAR(64) NOT NULL, epoch BIGINT NOT NULL, PRIMARY KEY (pipeline, sink, lineage))",
            SqlDialect::Postgres => "CREATE TABLE IF NOT EXISTS flowctl_commits (pipeline TEXT NOT NULL, sink TEXT NOT NULL, lineage TEXT NOT NULL, epoch BIGINT NOT NULL, PRIMARY KEY (pipeline, sink, lineage))",
        };
        // PostgreSQL's IF NOT EXISTS loses a race with a second run creating the table
        // at the same moment (a catalog unique violation); a second attempt sees it.
        self.execute_plain("create flowctl_commits", sql)
            .or_else(|_| self.execute_plain("create flowctl_commits", sql))?;
        // Another run migrating at the same moment makes one attempt fail; the next
        // attempt finds the table migrated.
        self.migrate_commit_table().or_else(|_| self.migrate_commit_table())?;
        self.commit_table_ready = true;
        Ok(())
    }

    /// Widens the primary key of a `flowctl_commits` made by an older flowctl,
    /// `(pipeline, sink)`, to `(pipeline, sink, lineage)`. Its rows, one per pipeline and
    /// sink, are unique under the new key too and keep meaning what they meant.
    fn migrate_commit_table(&mut self) -> Result<(), Error> {
        let key_columns: i64 = self.with_retry("read the key of flowctl_commits", |s| {
            let rt = &s.runtime;
            match s.db.as_mut() {
                Some(Db::My(c)) => rt.block_on(
                    sqlx::query_scalar(
                        "SELECT COUNT(*) FROM information_schema.key_column_usage WHERE table_schema = DATABASE() AND table_name = 'flowctl_commits' AND constraint_name = 'PRIMARY'",
                    )
                    .fetch_one(c),
                ),
                Some(Db::Pg(c)) => rt.block_on(
                    sqlx::query_scalar(
                        "SELECT COALESCE(MAX(i.indnatts), 0)::bigint FROM pg_index i WHERE i.indrelid = to_regclass('flowctl_commits') AND i.indisprimary",
                    )
                    .fetch_one(c),
                ),
                None => Err(sqlx::Error::PoolClosed),
            }
        })?;
        if key_columns != 2 {
            return Ok(());
        }
        tracing::info!(
            "sink `{}`: migrating flowctl_commits to one row per checkpoint lineage (primary key (pipeline, sink, lineage))",
            self.config.sink
        );
        let sql = match self.config.dialect {
            SqlDialect::Mysql => {
                "ALTER TABLE flowctl_commits DROP PRIMARY KEY, ADD PRIMARY KEY (pipeline, sink, lineage)".to_string()
            }
            SqlDialect::Postgres => {
                let name: String = self.with_retry("read the key of flowctl_commits", |s| {
                    let rt = &s.runtime;
                    match s.db.as_mut() {
                        Some(Db::Pg(c)) => rt.block_on(
                            sqlx::query_scalar(
                                "SELECT conname::text FROM pg_constraint WHERE conrelid = to_regclass('flowctl_commits') AND contype = 'p'",
                            )
                            .fetch_one(c),
                        ),
                        _ => Err(sqlx::Error::PoolClosed),
                    }
                })?;
                format!(
                    "ALTER TABLE flowctl_commits DROP CONSTRAINT {}, ADD PRIMARY KEY (pipeline, sink, lineage)",
                    quote(SqlDialect::Postgres, &name)
                )
            }
        };
        self.execute_plain("migrate flowctl_commits", &sql)
    }

    fn row(&self, record: &Record) -> Vec<Value> {
        let columns = self.columns.as_deref().unwrap_or_default();
        columns.iter().map(|(c, _)| record.get(c).cloned().unwrap_or_default()).collect()
    }

    /// Keeps the last row per key (upserts of one statement must not repeat a key).
    fn compact(&self, rows: Vec<Vec<Value>>) -> Vec<Vec<Value>> {
        let Some(columns) = &self.columns else { return rows };
        let key_idx: Vec<usize> =
            self.config.key.iter().filter_map(|k| columns.iter().position(|(c, _)| c == k)).collect();
        if key_idx.is_empty() {
            return rows;
        }
        let mut last: std::collections::HashMap<Vec<crate::steps::key::HashableValue>, usize> = Default::default();
        for (i, row) in rows.iter().enumerate() {
            last.insert(key_idx.iter().map(|&k| crate::steps::key::HashableValue(row[k].clone())).collect(), i);
        }
        let mut keep: Vec<usize> = last.into_values().collect();
        keep.sort_unstable();
        let mut rows: Vec<Option<Vec<Value>>> = rows.into_iter().map(Some).collect();
        keep.into_iter().filter_map(|i| rows[i].take()).collect()
    }

    /// Writes rows in one transaction; with `epoch`, also records it in
    /// `flowctl_commits`, and writes nothing if that epoch is already recorded. When
    /// the database rejects the data (a constraint, a type), the rejected row is found:
    /// under `on_error: fail` the error names it; otherwise it goes to the reject
    /// handler and the rest is written again without it.
    fn write_rows(&mut self, rows: &[Vec<Value>], epoch: Option<u64>) -> Result<(), Error> {
        let Some(columns) = self.columns.clone() else { return Ok(()) };
        let mut rows = std::borrow::Cow::Borrowed(rows);
        loop {
            let message = match self.write_once(&columns, &rows, epoch) {
                Err(Error::External(message)) if !rows.is_empty() => message,
                other => return other,
            };
            let Some((index, reason)) = self.find_rejected(&columns, &rows) else {
                return Err(Error::External(message));
            };
            let row = Value::Map(std::sync::Arc::new(
                columns
                    .iter()
                    .zip(&rows[index])
                    .map(|((name, _), v)| (std::sync::Arc::from(name.as_str()), v.clone()))
                    .collect(),
            ));
            match &self.on_reject {
                None => {
                    return Err(Error::Data(format!(
                        "sink `{}`: the database rejected the row {}: {reason}",
                        self.config.sink,
                        row.to_json()
                    )))
                }
                Some(handler) => {
                    handler(&self.config.sink, row, &reason);
                    rows.to_mut().remove(index);
                }
            }
        }
    }

    fn write_once(&mut self, columns: &[(String, Kind)], rows: &[Vec<Value>], epoch: Option<u64>) -> Result<(), Error> {
        let statements = self.statements(columns);
        let commit = epoch.map(|e| Commit {
            epoch: e,
            pipeline: self.config.pipeline.clone(),
            sink: self.config.sink.clone(),
            lineage: self.config.lineage.clone(),
        });
        self.with_retry("write rows", |s| {
            let rt = &s.runtime;
            match s.db.as_mut() {
                Some(Db::My(c)) => rt.block_on(write_tx_my(c, &statements, columns, rows, commit.as_ref())),
                Some(Db::Pg(c)) => rt.block_on(write_tx_pg(c, &statements, columns, rows, commit.as_ref())),
                None => Err(sqlx::Error::PoolClosed),
            }
        })
    }

    /// Inserts the rows one by one in a transaction that is rolled back, to find the
    /// first one the database rejects: its index and the reason.
    fn find_rejected(&mut self, columns: &[(String, Kind)], rows: &[Vec<Value>]) -> Option<(usize, String)> {
        let single = Statements { per: 1, ..self.statements(columns) };
        let rt = &self.runtime;
        match self.db.as_mut()? {
            Db::My(c) => rt.block_on(first_rejected_my(c, &single, columns, rows)),
            Db::Pg(c) => rt.block_on(first_rejected_pg(c, &single, columns, rows)),
        }
    }

    /// The INSERT (or upsert) statement around chunks of rows.
    fn statements(&self, columns: &[(String, Kind)]) -> Statements {
        let d = self.config.dialect;
        let cols: Vec<String> = columns.iter().map(|(c, _)| quote(d, c)).collect();
        let head = format!("INSERT INTO {} ({}) ", quote(d, &self.config.table), cols.join(", "));
        let others: Vec<&String> = columns.iter().map(|(c, _)| c).filter(|c| !self.config.key.contains(c)).collect();
        let tail = if self.config.key.is_empty() {
            String::new()
        } else {
            match d {
                SqlDialect::Mysql => {
                    let sets: Vec<String> = if others.is_empty() {
                        vec![format!("{0} = {0}", quote(d, &self.config.key[0]))]
                    } else {
                        others.iter().map(|c| format!("{0} = VALUES({0})", quote(d, c))).collect()
                    };
                    format!(" ON DUPLICATE KEY UPDATE {}", sets.join(", "))
                }
                SqlDialect::Postgres => {
                    let keys: Vec<String> = self.config.key.iter().map(|k| quote(d, k)).collect();
                    if others.is_empty() {
                        format!(" ON CONFLICT ({}) DO NOTHING", keys.join(", "))
                    } else {
                        let sets: Vec<String> =
                            others.iter().map(|c| format!("{0} = EXCLUDED.{0}", quote(d, c))).collect();
                        format!(" ON CONFLICT ({}) DO UPDATE SET {}", keys.join(", "), sets.join(", "))
                    }
                }
            }
        };
        // Stay under the protocols' 65535 bind parameters per statement.
        let per = self.config.batch_size.min(60_000 / columns.len().max(1)).max(1);
        Statements { head, tail, per }
    }

    fn commit_pending(&mut self, epoch: u64) -> Result<(), Error> {
        let Some(pending) = self.pending.take() else { return Ok(()) };
        if pending.epoch != epoch {
            self.pending = Some(pending);
            return Ok(());
        }
        if self.columns.is_none() && !pending.columns.is_empty() {
            let kinds = self.table_kinds(&pending.columns)?;
            self.columns = Some(pending.columns.iter().cloned().zip(kinds).collect());
        }
        if self.columns.is_some() {
            self.ensure_commit_table()?;
        }
        self.write_rows(&pending.rows, Some(epoch))
    }
}

/// The epoch a transaction records in `flowctl_commits`.
pub struct Commit {
    epoch: u64,
    pipeline: String,
    sink: String,
    lineage: String,
}

/// An INSERT statement without its VALUES: the text before and after, and how many
/// rows one statement takes.
pub struct Statements {
    head: String,
    tail: String,
    per: usize,
}

/// Binds one value as the column's kind (typed NULLs included).
macro_rules! bind_value {
    ($sep:expr, $value:expr, $kind:expr) => {{
        let v: &Value = $value;
        match ($kind, v) {
            (Kind::Int, Value::Int(i)) => $sep.push_bind(Some(*i)),
            (Kind::Int, Value::Float(f)) => $sep.push_bind(Some(*f as i64)),
            (Kind::Int, Value::Bool(b)) => $sep.push_bind(Some(i64::from(*b))),
            (Kind::Int, Value::Timestamp(t)) => $sep.push_bind(Some(*t)),
            (Kind::Int, Value::Null) => $sep.push_bind(None::<i64>),
            (Kind::Float, Value::Int(i)) => $sep.push_bind(Some(*i as f64)),
            (Kind::Float, Value::Float(f)) => $sep.push_bind(Some(*f)),
            (Kind::Float, Value::Null) => $sep.push_bind(None::<f64>),
            (Kind::Bool, Value::Bool(b)) => $sep.push_bind(Some(*b)),
            (Kind::Bool, Value::Null) => $sep.push_bind(None::<bool>),
            (Kind::Timestamp, Value::Timestamp(t) | Value::Int(t)) => {
                $sep.push_bind(chrono::DateTime::from_timestamp_millis(*t))
            }
            (Kind::Timestamp, Value::Null) => $sep.push_bind(None::<chrono::DateTime<chrono::Utc>>),
            (Kind::Json, Value::Null) => $sep.push_bind(None::<sqlx::types::Json<serde_json::Value>>),
            (Kind::Json, other) => {
                let json: serde_json::Value = serde_json::from_str(&other.to_json()).unwrap_or_default();
                $sep.push_bind(Some(sqlx::types::Json(json)))
            }
            (_, Value::Null) => $sep.push_bind(None::<String>),
            (_, other) => $sep.push_bind(Some(other.to_text())),
        };
    }};
}

macro_rules! write_tx {
    ($name:ident, $db:ty, $conn:ty, $select:expr, $upsert:expr) => {
        async fn $name(
            conn: &mut $conn,
            st: &Statements,
            columns: &[(String, Kind)],
            rows: &[Vec<Value>],
            commit: Option<&Commit>,
        ) -> Result<(), sqlx::Error> {
            let mut tx = conn.begin().await?;
            if let Some(c) = commit {
                let done: Option<i64> = sqlx::query_scalar($select)
                    .bind(&c.pipeline)
                    .bind(&c.sink)
                    .bind(&c.lineage)
                    .fetch_optional(&mut *tx)
                    .await?;
                if done.is_some_and(|e| e >= c.epoch as i64) {
                    // This epoch's rows are already in: a resumed run must not add them again.
                    return tx.rollback().await;
                }
            }
            for chunk in rows.chunks(st.per) {
                let mut qb = sqlx::QueryBuilder::<$db>::new(&st.head);
                qb.push_values(chunk, |mut sep, row| {
                    for (value, (_, kind)) in row.iter().zip(columns) {
                        bind_value!(sep, value, *kind);
                    }
                });
                qb.push(&st.tail);
                qb.build().execute(&mut *tx).await?;
            }
            if let Some(c) = commit {
                sqlx::query($upsert)
                    .bind(&c.pipeline)
                    .bind(&c.sink)
                    .bind(&c.lineage)
                    .bind(c.epoch as i64)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await
        }
    };
}

/// Inserts rows one at a time (each its own statement) in a transaction that is
/// always rolled back; the index and message of the first rejected row.
macro_rules! first_rejected {
    ($name:ident, $db:ty, $conn:ty) => {
        async fn $name(
            conn: &mut $conn,
            st: &Statements,
            columns: &[(String, Kind)],
            rows: &[Vec<Value>],
        ) -> Option<(usize, String)> {
            let mut tx = conn.begin().await.ok()?;
            let mut found = None;
            for (i, row) in rows.iter().enumerate() {
                let mut qb = sqlx::QueryBuilder::<$db>::new(&st.head);
                qb.push_values(std::iter::once(row), |mut sep, row| {
                    for (value, (_, kind)) in row.iter().zip(columns) {
                        bind_value!(sep, value, *kind);
                    }
                });
                qb.push(&st.tail);
                if let Err(e) = qb.build().execute(&mut *tx).await {
                    found = Some((i, e.to_string()));
                    break;
                }
            }
            let _ = tx.rollback().await;
            found
        }
    };
}

first_rejected!(first_rejected_my, sqlx::MySql, MySqlConnection);
first_rejected!(first_rejected_pg, sqlx::Postgres, PgConnection);

write_tx!(
    write_tx_my,
    sqlx::MySql,
    MySqlConnection,
    "SELECT epoch FROM flowctl_commits WHERE pipeline = ? AND sink = ? AND lineage = ? FOR UPDATE",
    "INSERT INTO flowctl_commits (pipeline, sink, lineage, epoch) VALUES (?, ?, ?, ?) ON DUPLICATE KEY UPDATE epoch = VALUES(epoch)"
);
write_tx!(
    write_tx_pg,
    sqlx::Postgres,
    PgConnection,
    "SELECT epoch FROM flowctl_commits WHERE pipeline = $1 AND sink = $2 AND lineage = $3 FOR UPDATE",
    "INSERT INTO flowctl_commits (pipeline, sink, lineage, epoch) VALUES ($1, $2, $3, $4) ON CONFLICT (pipeline, sink, lineage) DO UPDATE SET epoch = EXCLUDED.epoch"
);

impl Sink for SqlSink {
    fn write(&mut self, records: &[Record]) -> Result<(), SinkError> {
        let Some(first) = records.first() else { return Ok(()) };
        self.ensure_columns(first)?;
        let rows: Vec<Vec<Value>> = records.iter().map(|r| self.row(r)).collect();
        if self.checkpointed {
            self.buffer.extend(rows);
            if !self.config.key.is_empty() && self.buffer.len() > 4 * self.config.batch_size {
                let buffer = std::mem::take(&mut self.buffer);
                self.buffer = self.compact(buffer);
            }
            if self.buffer.len() >= super::MAX_HELD_RECORDS {
                self.request_checkpoint.store(true, std::sync::atomic::Ordering::Relaxed);
            }
            return Ok(());
        }
        let rows = self.compact(rows);
        self.write_rows(&rows, None).map_err(SinkError::Failed)
    }

    fn pre_commit(&mut self, epoch: u64) -> Result<serde_json::Value, SinkError> {
        let buffer = std::mem::take(&mut self.buffer);
        let rows = self.compact(buffer);
        let columns = self.columns.as_deref().unwrap_or_default().iter().map(|(c, _)| c.clone()).collect();
        let pending = Pending { epoch, columns, rows };
        let state = serde_json::to_value(&pending).map_err(|e| SinkError::Failed(Error::Internal(e.to_string())))?;
        self.pending = Some(pending);
        Ok(state)
    }

    fn checkpoint_done(&mut self, epoch: u64) -> Result<(), SinkError> {
        self.commit_pending(epoch).map_err(SinkError::Failed)
    }

    fn commit(&mut self) -> Result<(), SinkError> {
        // Without checkpoints every batch is already written; with them, the final
        // checkpoint's rows were committed by `checkpoint_done`.
        if !self.buffer.is_empty() {
            let buffer = std::mem::take(&mut self.buffer);
            let rows = self.compact(buffer);
            self.write_rows(&rows, None).map_err(SinkError::Failed)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(redact("mysql://root:secret@127.0.0.1:3306/test"), "mysql://root:***@127.0.0.1:3306/test");
        assert_eq!(redact("postgres://postgres@127.0.0.1/test"), "postgres://postgres@127.0.0.1/test");
    }

    #[test]
    fn column_kinds() {
        assert_eq!(kind_of("bigint"), Kind::Int);
        assert_eq!(kind_of("double precision"), Kind::Float);
        assert_eq!(kind_of("timestamp without time zone"), Kind::Timestamp);
        assert_eq!(kind_of("jsonb"), Kind::Json);
        assert_eq!(kind_of("character varying"), Kind::Text);
    }
}
