//! Sources: where records come from. One file per source kind; this module holds the
//! trait and the `build` registry.

mod csv_rows;
mod datagen;
pub mod decode;
mod file;
mod kafka;
pub mod memory;
mod nexmark;
mod nexmark_generator;
pub mod parallel_decode;
mod stream;
mod synthetic;

use crate::error::{Error, Result};
use crate::format::DataFormat;
use crate::record::{Batch, Origin, Record};
use std::sync::Arc;
use std::time::Duration;

pub use datagen::{DatagenConfig, FieldGenerator};
pub use decode::KnownColumns;
pub use file::FileConfig;
pub use kafka::{value_field, KafkaConfig, KafkaStart};
pub use nexmark::NexmarkConfig;
pub use stream::{check_address, SocketConfig, StdinConfig};

/// Called once a checkpoint holding a lane's position is durable (Kafka commits the
/// offset to its consumer group, for lag tools).
pub type Committer = Box<dyn Fn(&Origin) + Send>;

/// A record that could not be decoded, with where it was and why.
#[derive(Clone, Debug)]
pub struct BadRecord {
    pub origin: Origin,
    /// The raw input text (empty when it was not text).
    pub raw: String,
    pub error: String,
}

/// A running source. Each runs on its own thread and may block while reading.
pub trait Source: Send {
    /// Appends up to `max` records to `out` and any undecodable input to `bad`.
    /// Returns false once the input is exhausted (bounded sources only).
    fn read_batch(&mut self, max: usize, out: &mut Batch, bad: &mut Vec<BadRecord>) -> Result<bool>;

    /// Display names of the inputs, indexed by `Origin::file`.
    fn files(&self) -> Vec<Arc<str>>;

    /// Whether the source ends by itself.
    fn bounded(&self) -> bool {
        true
    }

    /// Continues after the record at `position` (from a checkpoint). Sources that
    /// cannot replay (stdin, sockets) say so.
    fn seek(&mut self, _position: &Origin) -> Result<()> {
        Err(Error::External("this source cannot resume from a position (it is not replayable)".into()))
    }

    /// Sizes in bytes of the inputs (files), for progress; None when unknown.
    fn sizes(&self) -> Option<Vec<u64>> {
        None
    }

    /// Whether `seek` works; checkpoints record positions only for these.
    fn replayable(&self) -> bool {
        false
    }

    /// The name of this lane when a source reads several independently ordered lanes,
    /// each with its own watermark and position (Kafka partitions: `topic/partition`).
    fn lane(&self) -> Option<String> {
        None
    }

    /// Whether the source's lanes follow from its settings (a `nexmark` source's
    /// `parallelism`), so that a checkpoint without this lane's position was taken
    /// with other settings and cannot be resumed from; Kafka's lanes follow the topic,
    /// where a new partition is simply read from its start.
    fn fixed_lanes(&self) -> bool {
        false
    }

    /// What to call after a checkpoint with this lane's position is written.
    fn committer(&self) -> Option<Committer> {
        None
    }

    /// The input from where it stands (its start, or where `seek` put it) cut into
    /// blocks on record boundaries, dealt in turn to
    /// `workers` feeds (block k to feed k mod `workers`) that decode them on their own
    /// threads; None when the source cannot be read in blocks (only a bounded file
    /// source can).
    fn split_into_blocks(&self, _workers: usize) -> Option<Vec<parallel_decode::BlockFeed>> {
        None
    }

    /// The input from where it stands read in blocks by `workers` threads: share k
    /// reads blocks k, k + `workers`, ..., so taking one block from each share in turn
    /// gives the records of reading the whole input in order; None when the source
    /// cannot be read in blocks.
    fn block_shares(&self, workers: usize) -> Option<Vec<Box<dyn BlockShare>>> {
        let feeds = self.split_into_blocks(workers)?;
        Some(
            feeds
                .into_iter()
                .map(|feed| Box::new(parallel_decode::FeedShare::new(feed)) as Box<dyn BlockShare>)
                .collect(),
        )
    }
}

/// How an event time is written: `event_time.format`.
#[derive(Clone, Debug, PartialEq)]
pub enum TimeFormat {
    EpochMillis,
    EpochSeconds,
    Rfc3339,
    /// A strftime pattern.
    Strftime(String),
}

/// How a source's records get their event time.
#[derive(Clone, Debug)]
pub struct EventTime {
    pub expr: crate::expr::Expr,
    pub format: Option<TimeFormat>,
}

/// One thread's share of a source read in blocks (`Source::block_shares`).
pub trait BlockShare: Send {
    /// Moves on to the share's next block; false after the last one.
    fn next_block(&mut self) -> Result<bool>;

    /// Appends up to `max` records of the current block to `out` and any undecodable
    /// input to `bad`; false at the block's end.
    fn read(&mut self, max: usize, out: &mut Batch, bad: &mut Vec<BadRecord>) -> Result<bool>;
}

/// A source as validation built it: what the planner and the runtime read of it.
#[derive(Clone, Debug)]
pub struct BuiltSource {
    pub id: String,
    pub config: SourceConfig,
    /// `watermark.max_out_of_orderness`: how far the watermark stays behind the
    /// largest event time read.
    pub out_of_orderness: Duration,
    /// `watermark.idle_timeout`: how long the source may stay silent before it stops
    /// holding the watermark back.
    pub idle_timeout: Option<Duration>,
}

/// A source's configuration, one variant per kind; each kind's file owns its type
/// and how it opens.
#[derive(Clone, Debug)]
pub enum SourceConfig {
    File(FileConfig),
    Stdin(StdinConfig),
    Socket(SocketConfig),
    Kafka(KafkaConfig),
    Datagen(DatagenConfig),
    Nexmark(NexmarkConfig),
    /// Records given in memory (`flowctl test`).
    Memory(Vec<Record>),
}

impl SourceConfig {
    /// How many lanes (ordered readers, each on a thread of its own) `build` opens
    /// the source as: a `nexmark` source's `parallelism`, one otherwise; None for
    /// Kafka (one per partition, known once connected).
    pub fn lanes(&self) -> Option<usize> {
        match self {
            SourceConfig::Kafka(_) => None,
            SourceConfig::Nexmark(n) => Some(n.lanes),
            _ => Some(1),
        }
    }

    /// Whether the source can be cut into blocks ahead of reading
    /// (`Source::block_shares` and `split_into_blocks` give them): a bounded file,
    /// or a `nexmark` source on one unpaced lane. The physical plan reads such a
    /// source in blocks on several threads.
    pub fn readable_in_blocks(&self) -> bool {
        match self {
            SourceConfig::File(f) => !f.follow,
            SourceConfig::Nexmark(n) => n.readable_in_blocks(),
            _ => false,
        }
    }

    /// How the source decodes bytes, for the sources that read bytes.
    pub fn decoding(&self) -> Option<&decode::Decoding> {
        match self {
            SourceConfig::File(FileConfig { decoding, .. })
            | SourceConfig::Stdin(StdinConfig { decoding })
            | SourceConfig::Socket(SocketConfig { decoding, .. })
            | SourceConfig::Kafka(KafkaConfig { decoding, .. }) => Some(decoding),
            _ => None,
        }
    }

    /// The fields the configuration itself declares: text lines, generator fields,
    /// or the `schema:` of a CSV source without a header (with a header, the header
    /// names the fields); a Kafka message's key, timestamp and headers follow its
    /// value's fields.
    pub fn declared_fields(&self) -> Option<Vec<Arc<str>>> {
        if let SourceConfig::Datagen(d) = self {
            return Some(d.fields.iter().map(|g| Arc::from(g.field.as_str())).collect());
        }
        let decoding = self.decoding()?;
        let mut fields: Vec<Arc<str>> = match decoding.format {
            DataFormat::Text | DataFormat::Raw => vec![Arc::from(value_field(decoding.format))],
            DataFormat::Csv if !decoding.csv.header && !decoding.schema.is_empty() => {
                decoding.schema.iter().map(|(n, _)| Arc::from(n.as_str())).collect()
            }
            _ => return None,
        };
        if let SourceConfig::Kafka(k) = self {
            let extras = [&k.key_field, &k.timestamp_field, &k.headers_field];
            fields.extend(extras.into_iter().flatten().map(|f| Arc::from(f.as_str())));
        }
        Some(fields)
    }

    /// The fields only the input can tell: the CSV header of a file source's first
    /// file.
    pub fn peek_fields(&self) -> Option<Vec<String>> {
        match self {
            SourceConfig::File(f) => f.peek_csv_header(),
            _ => None,
        }
    }

    /// The source's own checks of its configuration.
    pub fn check(&self) -> Result<(), crate::diag::Problem> {
        match self {
            SourceConfig::Socket(c) => c.check(),
            _ => Ok(()),
        }
    }

    /// Opens the source as its lanes: one for most sources, one per partition for
    /// Kafka, `parallelism` for Nexmark. `index` is the source's position in the
    /// pipeline (for origins); `columns` is what validation and planning know of its
    /// columns; `decode_threads` the physical plan's threads decoding a file.
    pub fn build(
        &self,
        id: &str,
        index: usize,
        columns: KnownColumns,
        decode_threads: usize,
    ) -> Result<Vec<Box<dyn Source>>> {
        let origin = Origin { source: index as u32, ..Origin::default() };
        Ok(match self {
            SourceConfig::File(c) => vec![c.build(id, origin, columns, decode_threads)?],
            SourceConfig::Stdin(c) => vec![c.build(origin, columns)],
            SourceConfig::Socket(c) => vec![c.build(id, origin, columns)?],
            SourceConfig::Kafka(c) => kafka::open(c, id, index)?,
            SourceConfig::Datagen(c) => vec![c.build(id, origin)?],
            SourceConfig::Nexmark(c) => c.build(origin),
            SourceConfig::Memory(records) => vec![Box::new(memory::MemorySource::new(records.clone(), index))],
        })
    }
}
