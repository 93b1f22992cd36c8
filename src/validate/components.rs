//! The spanned spec of sources, sinks and checkpoints turned, once, into the plain
//! configurations their components define (`sources::SourceConfig`,
//! `sinks::SinkConfig`, `checkpoint::Config`): what the planner and the runtime read.
//! Paths are resolved against the pipeline file's directory here.

use crate::checkpoint;
use crate::sinks::{self, BuiltSink, SinkConfig};
use crate::sources::{self, BuiltSource, SourceConfig};
use crate::spec::{PipelineSpec, SinkKind, SinkSpec, SourceKind, SourceSpec};

/// A source's built configuration.
pub fn source(spec: &PipelineSpec, source: &SourceSpec) -> BuiltSource {
    let parallelism = source.parallelism.as_ref().map_or(1, |p| p.value as usize);
    let config = match &source.kind {
        SourceKind::File { path, decoding, follow } => SourceConfig::File(sources::FileConfig {
            pattern: path.value.clone(),
            path: spec.resolve(&path.value),
            decoding: decoding.clone(),
            follow: follow.value,
            parallelism,
        }),
        SourceKind::Stdin { decoding } => SourceConfig::Stdin(sources::StdinConfig { decoding: decoding.clone() }),
        SourceKind::Socket { address, decoding } => {
            SourceConfig::Socket(sources::SocketConfig { address: address.value.clone(), decoding: decoding.clone() })
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
            options,
        } => SourceConfig::Kafka(sources::KafkaConfig {
            brokers: brokers.value.clone(),
            topics: topics.iter().map(|t| t.value.clone()).collect(),
            group: group.clone().unwrap_or_else(|| format!("flowctl-{}-{}", spec.name, source.id.value)),
            start: start.clone(),
            bounded: *bounded,
            decoding: decoding.clone(),
            key_field: key_field.clone(),
            timestamp_field: timestamp_field.clone(),
            headers_field: headers_field.clone(),
            options: options.clone(),
        }),
        SourceKind::Datagen { fields, rate, count, seed } => SourceConfig::Datagen(sources::DatagenConfig {
            fields: fields
                .iter()
                .map(|g| sources::FieldGenerator {
                    field: g.field.value.clone(),
                    kind: g.kind.clone(),
                    settings: g.node.to_value(),
                })
                .collect(),
            rate: *rate,
            count: *count,
            seed: *seed,
        }),
        SourceKind::Nexmark { events, rate, seed } => SourceConfig::Nexmark(sources::NexmarkConfig {
            events: *events,
            rate: *rate,
            seed: *seed,
            lanes: parallelism,
        }),
    };
    BuiltSource {
        id: source.id.value.clone(),
        config,
        out_of_orderness: source.watermark.max_out_of_orderness,
        idle_timeout: source.watermark.idle_timeout,
    }
}

/// A sink's built configuration.
pub fn sink(spec: &PipelineSpec, sink: &SinkSpec) -> BuiltSink {
    let id = sink.id.value.clone();
    let config = match &sink.kind {
        SinkKind::Stdout { format } => SinkConfig::Stdout(*format),
        SinkKind::File { path, format, header, delimiter } => SinkConfig::File(sinks::FileConfig {
            path: spec.resolve(&path.value),
            format: format.value,
            header: *header,
            delimiter: *delimiter,
        }),
        SinkKind::Sql { dialect, url, table, key, columns, create_table, batch_size } => {
            SinkConfig::Sql(sinks::SqlConfig {
                dialect: *dialect,
                url: url.value.clone(),
                table: table.value.clone(),
                key: key.iter().map(|k| k.value.clone()).collect(),
                columns: columns.iter().map(|c| c.value.clone()).collect(),
                create_table: *create_table,
                batch_size: *batch_size as usize,
                pipeline: spec.name.clone(),
                sink: id.clone(),
                lineage: String::new(),
            })
        }
        SinkKind::Kafka { brokers, topic, key, partition_by, format, exactly_once, create_topic, options } => {
            SinkConfig::Kafka(sinks::KafkaSinkConfig {
                id: id.clone(),
                pipeline: spec.name.clone(),
                brokers: brokers.value.clone(),
                topic: topic.value.clone(),
                key: key.as_ref().map(|k| k.text.clone()),
                partition_by: partition_by.as_ref().map(|k| k.text.clone()),
                format: *format,
                exactly_once: *exactly_once,
                create_topic: *create_topic,
                options: options.clone(),
                lineage: String::new(),
            })
        }
        SinkKind::Socket { address, format } => {
            SinkConfig::Socket(sinks::SocketConfig { address: address.value.clone(), format: *format })
        }
        SinkKind::Blackhole => SinkConfig::Blackhole,
    };
    BuiltSink { id, config }
}

/// The pipeline's checkpoint settings, when it has a `checkpoint:` block.
pub fn checkpoint(spec: &PipelineSpec) -> Option<checkpoint::Config> {
    spec.checkpoint.as_ref().map(|c| checkpoint::Config { dir: c.dir.clone(), interval: c.interval, keep: c.keep })
}
