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
use crate::record::{Batch, Origin};
use crate::spec::{PipelineSpec, SourceKind, SourceSpec};
use std::sync::Arc;

pub use decode::KnownColumns;
pub use kafka::{value_field, KafkaStart};

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

/// How many lanes (ordered readers, each on a thread of its own) `build` opens the
/// source as: a `nexmark` source's `parallelism`, one otherwise; None for Kafka (one
/// per partition, known once connected).
pub fn lanes(source: &SourceSpec) -> Option<usize> {
    match &source.kind {
        SourceKind::Kafka { .. } => None,
        SourceKind::Nexmark { .. } => Some(source.parallelism.as_ref().map_or(1, |p| p.value as usize)),
        _ => Some(1),
    }
}

/// Whether the source can be cut into blocks ahead of reading (`Source::block_shares`
/// and `split_into_blocks` give them): a bounded file, or a `nexmark` source on one
/// unpaced lane. The physical plan reads such a source in blocks on several threads.
pub fn readable_in_blocks(source: &SourceSpec) -> bool {
    match &source.kind {
        SourceKind::File { follow, .. } => !follow.value,
        SourceKind::Nexmark { rate, .. } => rate.is_none() && source.parallelism.as_ref().is_none_or(|p| p.value <= 1),
        _ => false,
    }
}

/// Opens a source as its lanes: one for most sources, one per partition for Kafka,
/// `parallelism` for Nexmark.
/// `index` is the source's position in the pipeline (for origins); `columns` is what
/// validation and planning know of its columns.
pub fn build(
    spec: &PipelineSpec,
    source: &SourceSpec,
    index: usize,
    columns: KnownColumns,
    decode_threads: usize,
) -> Result<Vec<Box<dyn Source>>> {
    if let SourceKind::Kafka { .. } = &source.kind {
        return kafka::open(spec, source, index);
    }
    if let SourceKind::Nexmark { events, rate, seed } = &source.kind {
        let origin = Origin { source: index as u32, ..Origin::default() };
        let lanes = lanes(source).unwrap_or(1) as u64;
        return Ok((0..lanes)
            .map(|lane| -> Box<dyn Source> {
                Box::new(nexmark::NexmarkSource::new(*events, *rate, *seed, origin, (lane, lanes)))
            })
            .collect());
    }
    build_one(spec, source, index, columns, decode_threads).map(|s| vec![s])
}

fn build_one(
    spec: &PipelineSpec,
    source: &SourceSpec,
    index: usize,
    columns: KnownColumns,
    decode_threads: usize,
) -> Result<Box<dyn Source>> {
    let origin = Origin { source: index as u32, ..Origin::default() };
    match &source.kind {
        SourceKind::File { path, decoding, follow } => {
            let files = file::expand(spec, &path.value)
                .map_err(|e| Error::External(format!("source `{}`: {e}", source.id.value)))?;
            let mut s = file::FileSource::open(files, decoding.clone(), origin, columns, &source.id.value)?;
            if decode_threads > 1 {
                s.decode_in_parallel(decode_threads)?;
            }
            if follow.value {
                let resolved = spec.resolve(&path.value).to_string_lossy().to_string();
                s.follow(resolved.contains(['*', '?', '[']).then_some(resolved))?;
            }
            Ok(Box::new(s))
        }
        SourceKind::Stdin { decoding } => Ok(Box::new(stream::StreamSource::stdin(decoding, origin, columns))),
        SourceKind::Socket { address, decoding } => {
            Ok(Box::new(stream::StreamSource::socket(&address.value, &source.id.value, decoding, origin, columns)?))
        }
        SourceKind::Datagen { fields, rate, count, seed } => {
            Ok(Box::new(datagen::DatagenSource::new(fields, *rate, *count, *seed, origin, &source.id.value)?))
        }
        SourceKind::Kafka { .. } | SourceKind::Nexmark { .. } => {
            Err(Error::Internal("kafka and nexmark sources open as lanes".into()))
        }
    }
}

/// The CSV header of a source's first input, if it is a CSV file with a header.
pub fn peek_csv_header(spec: &PipelineSpec, source: &SourceSpec) -> Option<Vec<String>> {
    match &source.kind {
        SourceKind::File { path, decoding, .. }
            if decoding.format == crate::spec::DataFormat::Csv && decoding.csv.header =>
        {
            let first = file::expand(spec, &path.value).ok()?.into_iter().next()?;
            decode::read_csv_header(std::fs::File::open(first).ok()?, decoding)
        }
        _ => None,
    }
}
