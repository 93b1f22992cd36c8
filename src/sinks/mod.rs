//! Sinks: where records go. One file per sink kind; this module holds the trait and
//! the `build` registry.

pub mod encode;
mod file;
mod kafka;
pub mod memory;
mod socket;
pub mod sql;
mod stdout;

pub use stdout::StdoutFormat;

use crate::error::{Error, Result};
use crate::record::Record;
use crate::spec::{PipelineSpec, SinkKind, SinkSpec};

/// Records a sink may hold for the next checkpoint before it asks for one early
/// (sinks that write on checkpoint completion: databases, Kafka transactions), so
/// memory stays bounded at any input rate.
pub(crate) const MAX_HELD_RECORDS: usize = 20_000;

/// What a failed write means for the run.
#[derive(Debug)]
pub enum SinkError {
    /// The reader went away (stdout closed by `head`): stop writing, not a failure.
    Closed,
    Failed(Error),
}

/// A running sink, on its own thread.
pub trait Sink: Send {
    /// Writes records; may block (that is backpressure).
    fn write(&mut self, records: &[Record]) -> Result<(), SinkError>;

    /// The line format of a sink that writes records as lines of text (files, stdout
    /// and sockets in CSV or JSON lines): threads that make many records (keyed
    /// instances, split workers) encode them with a clone and hand over the text
    /// ([`Sink::write_lines`]), so a record is encoded and freed on the core that made
    /// it. None: the sink takes records.
    fn line_encoder(&self) -> Option<encode::LineEncoder> {
        None
    }

    /// Writes whole lines encoded by a clone of [`Sink::line_encoder`]; may block.
    fn write_lines(&mut self, _lines: &str) -> Result<(), SinkError> {
        Err(SinkError::Failed(Error::Internal("this sink takes records, not lines of text".into())))
    }

    /// Makes everything written so far durable and returns what a checkpoint must
    /// record to come back to exactly this point (the first phase of a two-phase
    /// commit). Called at a checkpoint barrier, after every earlier write.
    fn pre_commit(&mut self, _epoch: u64) -> Result<serde_json::Value, SinkError> {
        Ok(serde_json::Value::Null)
    }

    /// Checkpoint `epoch` is durable: make its pre-committed output visible (the
    /// second phase; databases commit the epoch's transaction here).
    fn checkpoint_done(&mut self, _epoch: u64) -> Result<(), SinkError> {
        Ok(())
    }

    /// Makes everything written visible (files are renamed to their final name).
    /// Called once, after the last write of a successful run.
    fn commit(&mut self) -> Result<(), SinkError>;

    /// Called instead of `commit` when the run fails: leave nothing half-written
    /// under a final name.
    fn abort(&mut self) {}
}

/// Opens a sink. With checkpoints, `resume` is its state in the checkpoint being
/// resumed (None: a checkpointed run from scratch).
/// What a sink knows of the run it belongs to.
pub struct RunContext<'a> {
    /// The pipeline has a `checkpoint:` block.
    pub checkpointed: bool,
    /// The checkpoint lineage (see `Checkpoint::lineage`).
    pub lineage: &'a str,
    /// Set by a sink that holds too much output for the next checkpoint: the executor
    /// then takes one before the interval is up, keeping memory bounded.
    pub request_checkpoint: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// Where rows the target rejects go (`on_error: skip` or a sink); None: `fail`.
    pub on_reject: Option<RejectHandler>,
}

/// Takes a rejected row: the sink's id, the row (as a map) and the target's reason.
pub type RejectHandler = std::sync::Arc<dyn Fn(&str, crate::record::Value, &str) + Send + Sync>;

/// Whether the sink writes lines of text (or nothing) that the thread making its
/// records can encode for it (`Sink::line_encoder` gives the encoder).
pub fn writes_lines(kind: &SinkKind) -> bool {
    match kind {
        SinkKind::File { .. } | SinkKind::Socket { .. } | SinkKind::Blackhole => true,
        SinkKind::Stdout { format } => *format != crate::spec::StdoutFormat::Table,
        SinkKind::Kafka { .. } | SinkKind::Sql { .. } => false,
    }
}

pub fn build(
    spec: &PipelineSpec,
    sink: &SinkSpec,
    run: &RunContext,
    resume: Option<&serde_json::Value>,
) -> Result<Box<dyn Sink>> {
    let checkpointed = run.checkpointed;
    match &sink.kind {
        SinkKind::Stdout { format } => Ok(Box::new(stdout::StdoutSink::new(*format))),
        SinkKind::File { path, format, header, delimiter } => {
            let start = match (checkpointed, resume) {
                (false, _) => file::Start::Plain,
                (true, Some(state)) if !state.is_null() => file::Start::Resume(state),
                (true, _) => file::Start::Fresh,
            };
            Ok(Box::new(file::FileSink::create(
                &sink.id.value,
                spec.resolve(&path.value),
                format.value,
                *header,
                *delimiter,
                start,
            )?))
        }
        SinkKind::Sql { dialect, url, table, key, columns, create_table, batch_size } => {
            let config = sql::SqlConfig {
                dialect: *dialect,
                url: url.value.clone(),
                table: table.value.clone(),
                key: key.iter().map(|k| k.value.clone()).collect(),
                columns: columns.iter().map(|c| c.value.clone()).collect(),
                create_table: *create_table,
                batch_size: *batch_size as usize,
                pipeline: spec.name.clone(),
                sink: sink.id.value.clone(),
                lineage: run.lineage.to_string(),
            };
            Ok(Box::new(sql::SqlSink::open(
                config,
                checkpointed,
                resume,
                run.request_checkpoint.clone(),
                run.on_reject.clone(),
            )?))
        }
        SinkKind::Blackhole => Ok(Box::new(Blackhole)),
        SinkKind::Socket { address, format } => {
            Ok(Box::new(socket::SocketSink::connect(&sink.id.value, &address.value, *format)?))
        }
        SinkKind::Kafka { brokers, topic, key, partition_by, format, exactly_once, create_topic, options } => {
            let config = kafka::KafkaSinkConfig {
                id: sink.id.value.clone(),
                pipeline: spec.name.clone(),
                brokers: brokers.value.clone(),
                topic: topic.value.clone(),
                key: key.as_ref().map(|k| k.text.clone()),
                partition_by: partition_by.as_ref().map(|k| k.text.clone()),
                format: *format,
                exactly_once: *exactly_once,
                create_topic: *create_topic,
                options: options.clone(),
                lineage: run.lineage.to_string(),
            };
            Ok(Box::new(kafka::KafkaSink::open(config, checkpointed, resume, run.request_checkpoint.clone())?))
        }
    }
}

/// The `blackhole` sink: takes every record and keeps none.
struct Blackhole;

impl Sink for Blackhole {
    fn write(&mut self, _records: &[Record]) -> Result<(), SinkError> {
        Ok(())
    }

    fn line_encoder(&self) -> Option<encode::LineEncoder> {
        Some(encode::LineEncoder::Discard)
    }

    fn write_lines(&mut self, _lines: &str) -> Result<(), SinkError> {
        Ok(())
    }

    fn commit(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
}

/// Maps an I/O error of a sink: a broken pipe closes it, anything else fails the run.
pub(crate) fn io_error(context: &str, e: std::io::Error) -> SinkError {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        SinkError::Closed
    } else {
        SinkError::Failed(Error::io(context, e))
    }
}
