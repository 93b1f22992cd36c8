//! The `kafka` source: one consumer per source, manually assigned (no group
//! rebalancing: offsets live in checkpoints, as in Flink), its partitions split into
//! one queue each. Every partition is a *lane* of the source: read on its own thread,
//! with its own watermark in the merge (the source's watermark is their minimum, idle
//! partitions excluded after `idle_timeout`) and its own offset in checkpoints.
//!
//! Start offsets are fixed when the run starts (`earliest`, `latest`, the group's
//! `committed` offsets, or a checkpoint's), so a run is repeatable; `bounded: true`
//! also fixes each partition's end offset then (cron mode). After a checkpoint is
//! written the offsets are committed to the group as well, for lag tools.

use super::decode::Decoding;
use super::decode::{parse_json_object, Decoder, KnownColumns};
use super::{BadRecord, Committer, Source};
use crate::error::{Error, Result};
use crate::format::DataFormat;
use crate::kafka::{self, FlowContext};
use crate::record::{Batch, Origin, Record, Schema, SchemaMaker, Value};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::{Headers, OwnedMessage};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::Message;
use std::sync::Arc;
use std::time::Duration;

/// Where a Kafka source starts reading (`start:`).
#[derive(Clone, Debug, PartialEq)]
pub enum KafkaStart {
    Earliest,
    Latest,
    Committed,
}

type KafkaConsumer = BaseConsumer<FlowContext>;

/// How long one poll waits for a message before handing on what it has.
const POLL: Duration = Duration::from_millis(100);

/// A `kafka` source's configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct KafkaConfig {
    pub brokers: String,
    pub topics: Vec<String>,
    /// The consumer group (`group:`, else `flowctl-<pipeline>-<source>`).
    pub group: String,
    pub start: KafkaStart,
    /// Read up to the end offsets at start-up, then end.
    pub bounded: bool,
    pub decoding: Decoding,
    /// Fields for the message's key, timestamp and headers, when wanted.
    pub key_field: Option<String>,
    pub timestamp_field: Option<String>,
    pub headers_field: Option<String>,
    /// librdkafka settings passed as given.
    pub options: Vec<(String, String)>,
}

/// Opens the source: checks the brokers and topics, fixes start (and, bounded, end)
/// offsets, and returns one lane per partition, in topic then partition order.
pub fn open(settings: &KafkaConfig, id: &str, index: usize) -> Result<Vec<Box<dyn Source>>> {
    let (brokers, group, start) = (&settings.brokers, &settings.group, &settings.start);
    let owner = format!("source `{id}`");
    let config = kafka::config(
        brokers,
        &[
            ("group.id", group.as_str()),
            ("enable.auto.commit", "false"),
            ("enable.auto.offset.store", "false"),
            ("enable.partition.eof", "false"),
            // Bounded memory: at most this much prefetched per partition.
            ("queued.max.messages.kbytes", "16384"),
        ],
        &settings.options,
    );
    let consumer: Arc<KafkaConsumer> = Arc::new(
        config
            .create_with_context(FlowContext::new(owner.clone()))
            .map_err(|e| Error::External(format!("{owner}: cannot create a Kafka consumer: {e}")))?,
    );
    let mut partitions = Vec::new();
    for topic in &settings.topics {
        for p in kafka::partitions(consumer.client(), brokers, topic)? {
            partitions.push((topic.clone(), p));
        }
    }
    let committed = if *start == KafkaStart::Committed {
        let mut tpl = TopicPartitionList::new();
        for (t, p) in &partitions {
            tpl.add_partition(t, *p);
        }
        Some(consumer.committed_offsets(tpl, kafka::METADATA_TIMEOUT).map_err(|e| {
            Error::External(format!("{owner}: cannot read the committed offsets of group `{group}`: {e}"))
        })?)
    } else {
        None
    };
    let extras = [&settings.key_field, &settings.timestamp_field, &settings.headers_field];
    let layout = Arc::new(Layout::new(&settings.decoding, extras));
    let mut lanes: Vec<Box<dyn Source>> = Vec::new();
    for (k, (topic, partition)) in partitions.into_iter().enumerate() {
        let (low, high) = consumer
            .fetch_watermarks(&topic, partition, kafka::METADATA_TIMEOUT)
            .map_err(|e| Error::External(format!("{owner}: cannot read the offsets of `{topic}/{partition}`: {e}")))?;
        let first = match start {
            KafkaStart::Earliest => low,
            KafkaStart::Latest => high,
            KafkaStart::Committed => match committed.as_ref().and_then(|c| c.find_partition(&topic, partition)) {
                Some(e) => match e.offset() {
                    Offset::Offset(o) => o.max(low),
                    _ => low,
                },
                None => low,
            },
        };
        lanes.push(Box::new(KafkaLane {
            consumer: consumer.clone(),
            queue: None,
            name: Arc::from(format!("{topic}/{partition}")),
            topic,
            partition,
            origin: Origin { source: index as u32, file: k as u32, ..Origin::default() },
            next: first,
            end: settings.bounded.then_some(high),
            text_schema: SchemaMaker::new(&layout.text_schema),
            layout: layout.clone(),
            json_schema: None,
            csv_schema: None,
            extended: None,
        }));
    }
    Ok(lanes)
}

/// How a message becomes a record: the value's format, and the optional fields for
/// the key, timestamp and headers appended after the value's fields.
struct Layout {
    decoding: Decoding,
    extras: Vec<Arc<str>>,
    key: bool,
    timestamp: bool,
    headers: bool,
    text_schema: Arc<Schema>,
}

impl Layout {
    /// `fields`: the names for the key, the timestamp and the headers, when wanted.
    fn new(decoding: &Decoding, fields: [&Option<String>; 3]) -> Layout {
        let [key, timestamp, headers] = fields.map(Option::is_some);
        Layout {
            decoding: decoding.clone(),
            extras: fields.into_iter().flatten().map(|f| Arc::from(f.as_str())).collect(),
            key,
            timestamp,
            headers,
            text_schema: Schema::from_names(&[value_field(decoding.format)]),
        }
    }
}

/// The field holding a text or raw message value.
pub fn value_field(format: DataFormat) -> &'static str {
    if format == DataFormat::Raw {
        "value"
    } else {
        "line"
    }
}

/// One partition of a Kafka source.
struct KafkaLane {
    consumer: Arc<KafkaConsumer>,
    /// This partition's queue, once assigned (at the first read, after any seek).
    queue: Option<rdkafka::consumer::base_consumer::PartitionQueue<FlowContext>>,
    name: Arc<str>,
    topic: String,
    partition: i32,
    origin: Origin,
    /// The offset of the next message to hand on.
    next: i64,
    /// Bounded: the end offset at start-up (exclusive).
    end: Option<i64>,
    layout: Arc<Layout>,
    /// The schema of text and raw values, as this partition makes them.
    text_schema: SchemaMaker,
    json_schema: Option<SchemaMaker>,
    /// The schema of the last CSV value: the next message's decoder takes it when the
    /// columns are the same, so the values of one partition keep one shape (`id`).
    csv_schema: Option<Arc<Schema>>,
    /// The value schema last extended with the extra fields, and the result.
    extended: Option<(Arc<Schema>, SchemaMaker)>,
}

impl KafkaLane {
    fn assign(&mut self) -> Result<()> {
        // Split before assigning, so no message of this partition reaches the main queue.
        let queue = self
            .consumer
            .split_partition_queue(&self.topic, self.partition)
            .ok_or_else(|| Error::Internal(format!("cannot open a queue for Kafka partition {}", self.name)))?;
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&self.topic, self.partition, Offset::Offset(self.next))
            .and_then(|_| self.consumer.incremental_assign(&tpl))
            .map_err(|e| {
                Error::External(format!("{}: cannot assign `{}`: {e}", self.consumer.context().owner, self.name))
            })?;
        self.queue = Some(queue);
        Ok(())
    }

    fn finished(&self) -> bool {
        self.end.is_some_and(|end| self.next >= end)
    }

    /// Decodes one message into `out`, or into `bad` (false: stop this batch there).
    fn decode(&mut self, message: &OwnedMessage, out: &mut Batch, bad: &mut Vec<BadRecord>) -> bool {
        let offset = message.offset();
        let origin = Origin { line: offset as u64 + 1, offset: offset as u64, ..self.origin };
        let payload = message.payload().unwrap_or_default();
        let decoded = self.decode_value(payload, origin);
        match decoded {
            Ok(record) => {
                let mut record = self.add_extras(record, message);
                record.origin = origin;
                out.push(record);
                true
            }
            Err(error) => {
                bad.push(BadRecord { origin, raw: String::from_utf8_lossy(payload).into_owned(), error });
                false
            }
        }
    }

    fn decode_value(&mut self, payload: &[u8], origin: Origin) -> std::result::Result<Record, String> {
        let layout = &self.layout;
        match layout.decoding.format {
            DataFormat::Raw => {
                Ok(Record::new(self.text_schema.for_record(), vec![Value::str(&String::from_utf8_lossy(payload))]))
            }
            DataFormat::Text => {
                let text = std::str::from_utf8(payload).map_err(|_| "the message is not valid UTF-8".to_string())?;
                Ok(Record::new(self.text_schema.for_record(), vec![Value::str(text.trim_end_matches(['\n', '\r']))]))
            }
            DataFormat::Jsonl => {
                let text = std::str::from_utf8(payload).map_err(|_| "the message is not valid UTF-8".to_string())?;
                parse_json_object(text, &mut self.json_schema)
            }
            DataFormat::Csv => {
                let known = KnownColumns { schema: self.csv_schema.clone(), unread: Vec::new() };
                let mut decoder = Decoder::new(payload, payload.len().max(64), &layout.decoding, origin, known, None);
                let (mut out, mut bad) = (Vec::with_capacity(1), Vec::new());
                decoder.read(1, &mut out, &mut bad).map_err(|e| e.to_string())?;
                match (out.pop(), bad.pop()) {
                    (_, Some(b)) => Err(b.error),
                    (Some(r), None) => {
                        self.csv_schema = Some(r.schema().clone());
                        Ok(r)
                    }
                    (None, None) => Err("the message is empty".into()),
                }
            }
        }
    }

    fn add_extras(&mut self, record: Record, message: &OwnedMessage) -> Record {
        let layout = &self.layout;
        if layout.extras.is_empty() {
            return record;
        }
        let schema = match &mut self.extended {
            Some((base, ext)) if Schema::same(base, record.schema()) => ext.for_record(),
            _ => {
                let mut names = record.schema().names().to_vec();
                names.extend(layout.extras.iter().cloned());
                let mut ext = SchemaMaker::new(&Schema::new(names));
                let schema = ext.for_record();
                self.extended = Some((record.schema().clone(), ext));
                schema
            }
        };
        let mut values = record.into_values();
        if layout.key {
            values.push(message.key().map_or(Value::Null, |k| Value::str(&String::from_utf8_lossy(k))));
        }
        if layout.timestamp {
            values.push(message.timestamp().to_millis().map_or(Value::Null, Value::Timestamp));
        }
        if layout.headers {
            let pairs = message
                .headers()
                .map(|h| {
                    h.iter()
                        .map(|h| {
                            let v = h.value.map_or(Value::Null, |v| Value::str(&String::from_utf8_lossy(v)));
                            (Arc::from(h.key), v)
                        })
                        .collect()
                })
                .unwrap_or_default();
            values.push(Value::Map(Arc::new(pairs)));
        }
        Record::new(schema, values)
    }

    /// Bounded, when no message comes: offsets without a message to hand on
    /// (transaction markers, compacted records) can end a partition, so the consumer's
    /// fetch position counts as read.
    fn skip_to_position(&mut self) {
        if self.end.is_none() {
            return;
        }
        let Ok(positions) = self.consumer.position() else { return };
        if let Some(Offset::Offset(p)) = positions.find_partition(&self.topic, self.partition).map(|e| e.offset()) {
            self.next = self.next.max(p);
        }
    }

    /// Serves the consumer's main queue (client events); logs what it carries.
    fn serve_events(&self) {
        if let Some(Err(e)) = self.consumer.poll(Duration::ZERO) {
            tracing::debug!("{}: {e}", self.consumer.context().owner);
        }
    }
}

impl Source for KafkaLane {
    fn read_batch(&mut self, max: usize, out: &mut Batch, bad: &mut Vec<BadRecord>) -> Result<bool> {
        if self.finished() {
            return Ok(false);
        }
        if self.queue.is_none() {
            self.assign()?;
        }
        self.serve_events();
        while out.len() < max {
            let wait = if out.is_empty() { POLL } else { Duration::ZERO };
            let Some(queue) = &self.queue else { break };
            let Some(polled) = queue.poll(wait) else {
                self.skip_to_position();
                break;
            };
            let message = match polled {
                Ok(m) => m,
                Err(e) => {
                    // Transport errors: librdkafka reconnects and fetches again by itself.
                    tracing::debug!("{}: {}: {e}", self.consumer.context().owner, self.name);
                    continue;
                }
            };
            if message.offset() < self.next {
                continue;
            }
            if self.end.is_some_and(|end| message.offset() >= end) {
                self.next = message.offset();
                break;
            }
            self.next = message.offset() + 1;
            // Detached from the queue, so that decoding may borrow `self`.
            let message = message.detach();
            if !self.decode(&message, out, bad) || self.finished() {
                break;
            }
        }
        Ok(!self.finished())
    }

    fn files(&self) -> Vec<Arc<str>> {
        vec![self.name.clone()]
    }

    fn bounded(&self) -> bool {
        self.end.is_some()
    }

    fn seek(&mut self, position: &Origin) -> Result<()> {
        self.next = position.offset as i64 + 1;
        Ok(())
    }

    fn replayable(&self) -> bool {
        true
    }

    fn lane(&self) -> Option<String> {
        Some(self.name.to_string())
    }

    fn committer(&self) -> Option<Committer> {
        let consumer = self.consumer.clone();
        let (topic, partition) = (self.topic.clone(), self.partition);
        Some(Box::new(move |position: &Origin| {
            let mut tpl = TopicPartitionList::new();
            let next = Offset::Offset(position.offset as i64 + 1);
            if tpl.add_partition_offset(&topic, partition, next).is_ok() {
                if let Err(e) = consumer.commit(&tpl, CommitMode::Async) {
                    tracing::debug!("{}: cannot commit offsets to the group: {e}", consumer.context().owner);
                }
            }
        }))
    }
}
