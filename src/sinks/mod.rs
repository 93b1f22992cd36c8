//! Sinks: where records go. One file per sink kind; this module holds the trait and
//! the `build` registry.

pub mod encode;
mod file;
mod kafka;
pub mod memory;
mod socket;
pub mod sql;
mod stdout;

pub use file::FileConfig;
pub use kafka::KafkaSinkConfig;
pub use socket::SocketConfig;
pub use sql::SqlConfig;
pub use stdout::StdoutFormat;

use crate::error::{Error, Result};
use crate::record::Record;

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

/// A sink as validation built it: what the planner and the runtime read of it.
#[derive(Clone, Debug)]
pub struct BuiltSink {
    pub id: String,
    pub config: SinkConfig,
}

/// A sink's configuration, one variant per kind; each kind's file owns its type and
/// how it opens.
#[derive(Clone, Debug)]
pub enum SinkConfig {
    Stdout(StdoutFormat),
    File(FileConfig),
    Sql(SqlConfig),
    Kafka(KafkaSinkConfig),
    Socket(SocketConfig),
    /// Discards records.
    Blackhole,
    /// Keeps records in memory (`flowctl test`'s outputs and taps).
    Memory(memory::MemorySink),
}

impl SinkConfig {
    /// Whether the sink writes lines of text (or nothing) that the thread making its
    /// records can encode for it (`Sink::line_encoder` gives the encoder).
    pub fn writes_lines(&self) -> bool {
        match self {
            SinkConfig::File(_) | SinkConfig::Socket(_) | SinkConfig::Blackhole => true,
            SinkConfig::Stdout(format) => *format != StdoutFormat::Table,
            SinkConfig::Kafka(_) | SinkConfig::Sql(_) | SinkConfig::Memory(_) => false,
        }
    }

    /// The sink's own checks of its configuration.
    pub fn check(&self) -> Result<(), crate::diag::Problem> {
        match self {
            SinkConfig::Socket(c) => c.check(),
            SinkConfig::Sql(c) => c.check(),
            _ => Ok(()),
        }
    }

    /// Opens the sink. With checkpoints, `resume` is its state in the checkpoint being
    /// resumed (None: a checkpointed run from scratch).
    pub fn build(&self, id: &str, run: &RunContext, resume: Option<&serde_json::Value>) -> Result<Box<dyn Sink>> {
        let checkpointed = run.checkpointed;
        Ok(match self {
            SinkConfig::Stdout(format) => Box::new(stdout::StdoutSink::new(*format)),
            SinkConfig::File(c) => Box::new(c.build(id, checkpointed, resume)?),
            SinkConfig::Sql(c) => Box::new(sql::SqlSink::open(
                SqlConfig { lineage: run.lineage.to_string(), ..c.clone() },
                checkpointed,
                resume,
                run.request_checkpoint.clone(),
                run.on_reject.clone(),
            )?),
            SinkConfig::Kafka(c) => Box::new(kafka::KafkaSink::open(
                KafkaSinkConfig { lineage: run.lineage.to_string(), ..c.clone() },
                checkpointed,
                resume,
                run.request_checkpoint.clone(),
            )?),
            SinkConfig::Socket(c) => Box::new(c.build(id)?),
            SinkConfig::Blackhole => Box::new(Blackhole),
            SinkConfig::Memory(m) => Box::new(m.clone()),
        })
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
