//! The `kafka` sink: records as messages (jsonl or csv values, an optional key, an
//! optional partitioning expression; without one librdkafka's murmur2 partitioner
//! places keyed messages as the Java client does).
//!
//! - `at_least_once` (default): an idempotent producer; every checkpoint (and the end)
//!   waits until everything sent has been acknowledged, so a resumed run only repeats
//!   what came after the last checkpoint.
//! - `exactly_once`: the records of epoch N travel inside checkpoint N and are sent in
//!   one Kafka transaction once that checkpoint is durable (as the database sinks do).
//!   The transaction also commits a marker offset (epoch, lineage) for the group
//!   `flowctl-<pipeline>-<sink>-txn-<lineage>`, atomically with the records: a resumed
//!   run re-sends the checkpoint's records unless the marker says they are already
//!   committed. The group is the lineage's own, so an independent run of the same
//!   pipeline name (another checkpoint directory) cannot overwrite it; a marker in the
//!   group an older flowctl used, `flowctl-<pipeline>-<sink>-txn`, is still honoured.
//!   `transactional.id` is `flowctl-<pipeline>-<sink>`, so a restarted run fences an
//!   old one that still runs, and aborts its open transaction.

use super::{Sink, SinkError, MAX_HELD_RECORDS};
use crate::error::{Error, Result};
use crate::expr::{self, Expr, Scope};
use crate::format::DataFormat;
use crate::kafka::{self, FlowContext, Undelivered};
use crate::record::{Record, Value};
use crate::steps::key::Key;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How long transactional calls (init, commit, abort) may take before they are retried.
const TXN_TIMEOUT: Duration = Duration::from_secs(60);
/// Attempts at one epoch's transaction before the run fails.
const TXN_ATTEMPTS: u32 = 10;
/// Rounds of sending again messages the broker did not take (at-least-once).
const DELIVERY_ATTEMPTS: u32 = 20;
/// Every this many rounds of sending again, the producer is replaced (`new_producer`).
const NEW_PRODUCER_EVERY: u32 = 3;

/// A `kafka` sink's configuration; `lineage` is the run's, set when the sink opens.
#[derive(Clone, Debug)]
pub struct KafkaSinkConfig {
    pub id: String,
    pub pipeline: String,
    pub brokers: String,
    pub topic: String,
    pub key: Option<String>,
    pub partition_by: Option<String>,
    pub format: DataFormat,
    pub exactly_once: bool,
    /// Create the topic with this many partitions when it does not exist.
    pub create_topic: Option<u32>,
    pub options: Vec<(String, String)>,
    pub lineage: String,
}

/// One message, encoded.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Outgoing {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    partition: Option<i32>,
    value: String,
}

/// What a checkpoint records for an exactly-once sink.
#[derive(Debug, Serialize, Deserialize)]
struct EpochState {
    epoch: u64,
    lineage: String,
    messages: Vec<Outgoing>,
}

/// Exactly-once: records held until their checkpoint is durable.
struct Transactions {
    /// Serves `send_offsets_to_transaction` (the marker group).
    marker: BaseConsumer<FlowContext>,
    marker_group: String,
    /// The group older versions kept every lineage's marker in, read when resuming.
    legacy_marker: Option<(BaseConsumer<FlowContext>, String)>,
    lineage: String,
    /// Records since the last barrier.
    pending: Vec<Outgoing>,
    /// Records of the last barrier's epoch, sent when its checkpoint completes.
    sealed: Option<(u64, Vec<Outgoing>)>,
    request_checkpoint: Arc<AtomicBool>,
}

pub struct KafkaSink {
    id: String,
    topic: String,
    producer: BaseProducer<FlowContext>,
    /// The producer's configuration, to make a new one (see `check_deliveries`).
    producer_config: rdkafka::ClientConfig,
    key: Option<Expr>,
    partition_by: Option<Expr>,
    partitions: usize,
    format: DataFormat,
    transactions: Option<Transactions>,
    /// Rounds of resending in a row (reset when a check finds nothing to resend).
    resend_rounds: std::cell::Cell<u32>,
}

impl KafkaSink {
    /// Connects, checks the topic, and (exactly-once) fences earlier runs and finishes
    /// the transaction of the checkpoint being resumed, `resume`.
    pub fn open(
        config: KafkaSinkConfig,
        checkpointed: bool,
        resume: Option<&serde_json::Value>,
        request_checkpoint: Arc<AtomicBool>,
    ) -> Result<KafkaSink> {
        let owner = format!("sink `{}`", config.id);
        let compile = |text: &Option<String>, what: &str| -> Result<Option<Expr>> {
            text.as_deref()
                .map(|t| {
                    expr::compile(t, &Scope::open()).map_err(|e| {
                        let why = e.into_iter().map(|e| e.message).collect::<Vec<_>>().join("; ");
                        Error::Usage(format!("{owner}: invalid `{what}` expression `{t}`: {why}"))
                    })
                })
                .transpose()
        };
        let key = compile(&config.key, "key")?;
        let partition_by = compile(&config.partition_by, "partition_by")?;
        if config.exactly_once && !checkpointed {
            return Err(Error::Usage(format!(
                "{owner}: `delivery: exactly_once` needs a `checkpoint:` block (transactions commit with checkpoints)"
            )));
        }
        let transactional_id = format!("flowctl-{}-{}", config.pipeline, config.id);
        let mut defaults = vec![("enable.idempotence", "true"), ("partitioner", "murmur2_random"), ("linger.ms", "5")];
        if config.exactly_once {
            defaults.push(("transactional.id", transactional_id.as_str()));
        }
        let producer_config = kafka::config(&config.brokers, &defaults, &config.options);
        let producer: BaseProducer<FlowContext> = producer_config
            .create_with_context(FlowContext::new(owner.clone()))
            .map_err(|e| Error::External(format!("{owner}: cannot create a Kafka producer: {e}")))?;
        if let Some(partitions) = config.create_topic {
            kafka::create_topic(&config.brokers, &config.options, &config.topic, partitions, &owner)?;
        }
        let partitions = kafka::partitions(producer.client(), &config.brokers, &config.topic)?.len();
        let mut sink = KafkaSink {
            id: config.id.clone(),
            topic: config.topic.clone(),
            producer,
            producer_config,
            key,
            partition_by,
            partitions,
            format: config.format,
            transactions: None,
            resend_rounds: std::cell::Cell::new(0),
        };
        if config.exactly_once {
            let consumer = |group: &str| -> Result<BaseConsumer<FlowContext>> {
                kafka::config(&config.brokers, &[("group.id", group)], &config.options)
                    .create_with_context(FlowContext::new(owner.clone()))
                    .map_err(|e| Error::External(format!("{owner}: cannot create a Kafka consumer: {e}")))
            };
            let marker_group = format!("{transactional_id}-txn-{}", config.lineage);
            tracing::debug!("{owner}: transaction markers in group `{marker_group}`");
            let marker = consumer(&marker_group)?;
            let legacy_marker = match resume.filter(|s| !s.is_null()) {
                Some(_) => {
                    let group = format!("{transactional_id}-txn");
                    Some((consumer(&group)?, group))
                }
                None => None,
            };
            sink.producer
                .init_transactions(TXN_TIMEOUT)
                .map_err(|e| Error::External(format!("{owner}: cannot start transactions: {}", kafka::describe(&e))))?;
            sink.transactions = Some(Transactions {
                marker,
                marker_group,
                legacy_marker,
                lineage: config.lineage.clone(),
                pending: Vec::new(),
                sealed: None,
                request_checkpoint,
            });
            if let Some(state) = resume.filter(|s| !s.is_null()) {
                let state: EpochState = serde_json::from_value(state.clone())
                    .map_err(|e| Error::Internal(format!("{owner}: unreadable checkpoint state: {e}")))?;
                sink.finish_resumed(state).map_err(failed_to_error)?;
            }
        }
        Ok(sink)
    }

    fn owner(&self) -> String {
        format!("sink `{}`", self.id)
    }

    /// Encodes one record as a message.
    fn encode(&self, record: &Record) -> Result<Outgoing, SinkError> {
        let eval = |e: &Expr, what: &str| {
            e.eval(record).map_err(|err| {
                SinkError::Failed(Error::Data(format!(
                    "sink `{}`: cannot compute the {what} `{}`: {}",
                    self.id,
                    e.text(),
                    err.message
                )))
            })
        };
        let key = match &self.key {
            Some(e) => Some(eval(e, "key")?).filter(|v| !v.is_null()).map(|v| v.to_text()),
            None => None,
        };
        let partition = match &self.partition_by {
            Some(e) => Some(Key(Arc::from(vec![eval(e, "partition")?])).partition(self.partitions) as i32),
            None => None,
        };
        let value =
            encode_value(record, self.format).map_err(|e| self.failed(format!("cannot encode a record: {e}")))?;
        Ok(Outgoing { key, partition, value })
    }

    fn failed(&self, what: String) -> SinkError {
        SinkError::Failed(Error::External(format!("{}: {what}", self.owner())))
    }

    /// Hands one message to the producer, waiting while its queue is full.
    fn send(&self, m: &Outgoing) -> Result<(), SinkError> {
        self.send_bytes(m.key.as_deref().map(str::as_bytes), m.value.as_bytes(), m.partition)
    }

    fn send_bytes(&self, key: Option<&[u8]>, value: &[u8], partition: Option<i32>) -> Result<(), SinkError> {
        loop {
            let mut record = BaseRecord::to(&self.topic).payload(value);
            if let Some(k) = key {
                record = record.key(k);
            }
            if let Some(p) = partition {
                record = record.partition(p);
            }
            match self.producer.send(record) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    // Backpressure: wait for deliveries to free the queue.
                    self.producer.poll(Duration::from_millis(100));
                }
                Err((e, _)) => {
                    return Err(self.failed(format!(
                        "cannot send a record of {} bytes to topic `{}`: {}",
                        value.len(),
                        self.topic,
                        kafka::describe(&e)
                    )))
                }
            }
        }
    }

    /// Fails on deliveries that cannot succeed; sends again those that failed for a
    /// reason that may pass (a broker restarting), with backoff, up to
    /// `DELIVERY_ATTEMPTS` rounds. In a transaction a failed delivery fails the attempt
    /// (the transaction is aborted and sent again as a whole).
    /// True when it sent messages again.
    fn check_deliveries(&mut self) -> Result<bool, SinkError> {
        let mut retries = self.undelivered()?;
        let Some(first) = retries.first() else {
            self.resend_rounds.set(0);
            return Ok(false);
        };
        let round = self.resend_rounds.get() + 1;
        if self.transactions.is_some() || round > DELIVERY_ATTEMPTS {
            return Err(self.failed(format!("{} record(s) could not be delivered: {}", retries.len(), first.reason)));
        }
        self.resend_rounds.set(round);
        tracing::warn!(
            "{}: {} record(s) not delivered ({}); sending them again (attempt {round} of {DELIVERY_ATTEMPTS})",
            self.owner(),
            retries.len(),
            first.reason
        );
        std::thread::sleep(Duration::from_millis(250 * u64::from(round)).min(Duration::from_secs(3)));
        if round % NEW_PRODUCER_EVERY == 0 {
            retries.extend(self.new_producer()?);
        }
        for m in &retries {
            self.send_bytes(m.key.as_deref(), &m.payload, Some(m.partition))?;
        }
        Ok(true)
    }

    /// The messages to send again (taken), or the error of a delivery that failed for good.
    fn undelivered(&self) -> Result<Vec<Undelivered>, SinkError> {
        if let Some((n, why)) = self.producer.context().take_delivery_failures() {
            return Err(self.failed(format!("{n} record(s) could not be delivered: {why}")));
        }
        Ok(self.producer.context().take_retries())
    }

    /// Replaces the producer with a new one (a new producer id). A broker that lost the
    /// idempotent producer's state in a restart (tansu does) refuses the old id's
    /// messages for good; a new producer's are taken. Returns what the old one still
    /// held, to be sent again.
    fn new_producer(&mut self) -> Result<Vec<Undelivered>, SinkError> {
        tracing::warn!("{}: the broker keeps refusing deliveries; reconnecting with a new producer", self.owner());
        let producer: BaseProducer<FlowContext> = self
            .producer_config
            .create_with_context(FlowContext::new(self.owner()))
            .map_err(|e| self.failed(format!("cannot create a Kafka producer: {e}")))?;
        let old = std::mem::replace(&mut self.producer, producer);
        old.purge(rdkafka::producer::PurgeConfig::default().queue().inflight());
        old.poll(Duration::ZERO);
        Ok(old.context().take_retries())
    }

    /// Waits until every message sent has been acknowledged (or has failed; a broker
    /// that is away is waited for up to `message.timeout.ms`, failed messages are sent
    /// again).
    fn flush(&mut self) -> Result<(), SinkError> {
        loop {
            self.flush_once()?;
            // Serve the delivery reports of what was flushed (failures among them).
            for _ in 0..100 {
                if self.producer.in_flight_count() == 0 {
                    break;
                }
                self.producer.poll(Duration::from_millis(10));
            }
            if !self.check_deliveries()? {
                return Ok(());
            }
        }
    }

    fn flush_once(&self) -> Result<(), SinkError> {
        loop {
            match self.producer.flush(Duration::from_secs(1)) {
                Ok(()) => return Ok(()),
                Err(KafkaError::Flush(RDKafkaErrorCode::OperationTimedOut)) => {
                    tracing::debug!("{}: waiting for {} deliveries", self.owner(), self.producer.in_flight_count())
                }
                Err(e) => return Err(self.failed(format!("cannot flush: {e}"))),
            }
        }
    }

    /// Sends one epoch's messages in a transaction with its marker; retries what
    /// Kafka says is retriable, fails on fencing.
    fn send_transaction(&self, epoch: u64, messages: &[Outgoing]) -> Result<(), SinkError> {
        let Some(t) = &self.transactions else { return Ok(()) };
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.try_transaction(t, epoch, messages) {
                Ok(()) => return Ok(()),
                Err(TxnError::Sink(e)) => return Err(e),
                Err(TxnError::Delivery(e)) => {
                    if attempt >= TXN_ATTEMPTS {
                        return Err(e);
                    }
                    let _ = self.producer.abort_transaction(TXN_TIMEOUT);
                    std::thread::sleep(Duration::from_millis(200 * u64::from(attempt)));
                }
                Err(TxnError::Kafka(e)) => {
                    let code = match &e {
                        KafkaError::Transaction(t) => Some(t),
                        _ => None,
                    };
                    // A broker without transactions never gets them by retrying: fail
                    // at once with that cause (a retry would only report the commit
                    // librdkafka still has in flight).
                    let unsupported = e.rdkafka_error_code() == Some(RDKafkaErrorCode::UnsupportedFeature);
                    let fatal = unsupported || code.is_some_and(|c| c.is_fatal());
                    if fatal || attempt >= TXN_ATTEMPTS {
                        let fenced = [
                            RDKafkaErrorCode::Fenced,
                            RDKafkaErrorCode::ProducerFenced,
                            RDKafkaErrorCode::InvalidProducerEpoch,
                        ];
                        let hint = if e.rdkafka_error_code().is_some_and(|c| fenced.contains(&c)) {
                            " (another run of this pipeline with the same transactional id has started)"
                        } else {
                            ""
                        };
                        return Err(self.failed(format!(
                            "the transaction of checkpoint {epoch} failed: {}{hint}",
                            kafka::describe(&e)
                        )));
                    }
                    tracing::warn!(
                        "{}: the transaction of checkpoint {epoch} failed ({}); retrying",
                        self.owner(),
                        kafka::describe(&e)
                    );
                    if code.is_some_and(|c| c.txn_requires_abort()) || !code.is_some_and(|c| c.is_retriable()) {
                        let _ = self.producer.abort_transaction(TXN_TIMEOUT);
                    }
                    std::thread::sleep(Duration::from_millis(200 * u64::from(attempt)));
                }
            }
        }
    }

    fn try_transaction(&self, t: &Transactions, epoch: u64, messages: &[Outgoing]) -> Result<(), TxnError> {
        // Failures reported for an earlier, aborted attempt do not concern this one.
        let _ = self.producer.context().take_retries();
        let _ = self.producer.context().take_delivery_failures();
        self.producer.begin_transaction()?;
        for m in messages {
            self.send(m).map_err(TxnError::Sink)?;
        }
        let mut marker = TopicPartitionList::new();
        marker.add_partition_offset(&self.topic, 0, Offset::Offset(epoch as i64))?;
        for mut elem in marker.elements_for_topic(&self.topic) {
            elem.set_metadata(t.lineage.clone());
        }
        let group = t
            .marker
            .group_metadata()
            .ok_or_else(|| TxnError::Sink(self.failed("the marker consumer has no group".into())))?;
        self.producer.send_offsets_to_transaction(&marker, &group, TXN_TIMEOUT)?;
        self.producer.commit_transaction(TXN_TIMEOUT)?;
        // In a transaction a message not delivered fails the attempt.
        let undelivered = self.undelivered().map_err(TxnError::Delivery)?;
        match undelivered.first() {
            None => Ok(()),
            Some(first) => Err(TxnError::Delivery(self.failed(format!(
                "{} record(s) could not be delivered: {}",
                undelivered.len(),
                first.reason
            )))),
        }
    }

    /// After a restart: the checkpoint's epoch is sent again unless its marker shows
    /// that its transaction committed.
    fn finish_resumed(&self, state: EpochState) -> Result<(), SinkError> {
        let Some(t) = &self.transactions else { return Ok(()) };
        let committed_in = |marker: &BaseConsumer<FlowContext>, group: &str| -> Result<bool, SinkError> {
            let mut tpl = TopicPartitionList::new();
            tpl.add_partition(&self.topic, 0);
            let committed = marker
                .committed_offsets(tpl, kafka::METADATA_TIMEOUT)
                .map_err(|e| self.failed(format!("cannot read the offsets of group `{group}`: {e}")))?;
            Ok(committed.find_partition(&self.topic, 0).is_some_and(|e| {
                matches!(e.offset(), Offset::Offset(o) if o >= state.epoch as i64) && e.metadata() == state.lineage
            }))
        };
        let mut done = committed_in(&t.marker, &t.marker_group)?;
        if let (false, Some((legacy, group))) = (done, &t.legacy_marker) {
            done = committed_in(legacy, group)?;
        }
        if done {
            tracing::info!("{}: checkpoint {}'s transaction had committed", self.owner(), state.epoch);
            return Ok(());
        }
        tracing::info!("{}: sending checkpoint {}'s {} records again", self.owner(), state.epoch, state.messages.len());
        self.send_transaction(state.epoch, &state.messages)
    }
}

/// A record as a message value: a JSON object, or one CSV row (no header).
fn encode_value(record: &Record, format: DataFormat) -> std::result::Result<String, String> {
    if format != DataFormat::Csv {
        let mut out = String::with_capacity(128);
        record.write_json(&mut out);
        return Ok(out);
    }
    let mut w =
        csv::WriterBuilder::new().has_headers(false).terminator(csv::Terminator::Any(b'\n')).from_writer(Vec::new());
    w.write_record(record.values().iter().map(Value::to_text)).map_err(|e| e.to_string())?;
    let mut bytes = w.into_inner().map_err(|e| e.to_string())?;
    bytes.pop();
    String::from_utf8(bytes).map_err(|e| e.to_string())
}

enum TxnError {
    Kafka(KafkaError),
    /// Messages of the transaction were not delivered: abort and send it again.
    Delivery(SinkError),
    Sink(SinkError),
}

impl From<KafkaError> for TxnError {
    fn from(e: KafkaError) -> Self {
        TxnError::Kafka(e)
    }
}

fn failed_to_error(e: SinkError) -> Error {
    match e {
        SinkError::Failed(e) => e,
        SinkError::Closed => Error::External("the Kafka sink closed".into()),
    }
}

impl Sink for KafkaSink {
    fn write(&mut self, records: &[Record]) -> Result<(), SinkError> {
        for record in records {
            let m = self.encode(record)?;
            match &mut self.transactions {
                Some(t) => t.pending.push(m),
                None => self.send(&m)?,
            }
        }
        match &self.transactions {
            Some(t) if t.pending.len() >= MAX_HELD_RECORDS => t.request_checkpoint.store(true, Ordering::Relaxed),
            Some(_) => {}
            None => {
                self.producer.poll(Duration::ZERO);
                self.check_deliveries()?;
            }
        }
        Ok(())
    }

    fn pre_commit(&mut self, epoch: u64) -> Result<serde_json::Value, SinkError> {
        let Some(t) = &mut self.transactions else {
            self.flush()?;
            return Ok(serde_json::Value::Null);
        };
        let messages = std::mem::take(&mut t.pending);
        let state = EpochState { epoch, lineage: t.lineage.clone(), messages };
        let value = serde_json::to_value(&state).map_err(|e| self.failed(format!("cannot save state: {e}")))?;
        if let Some(t) = &mut self.transactions {
            t.sealed = Some((epoch, state.messages));
        }
        Ok(value)
    }

    fn checkpoint_done(&mut self, epoch: u64) -> Result<(), SinkError> {
        let Some(t) = &mut self.transactions else { return Ok(()) };
        match t.sealed.take() {
            Some((sealed, messages)) if sealed == epoch => self.send_transaction(epoch, &messages),
            other => {
                if let Some(t) = &mut self.transactions {
                    t.sealed = other;
                }
                Ok(())
            }
        }
    }

    fn commit(&mut self) -> Result<(), SinkError> {
        self.flush()
    }

    fn abort(&mut self) {
        // At-least-once: what was sent stays sent. Exactly-once: nothing is open
        // between transactions, and a crashed one is aborted by the next run's fencing.
        let _ = self.producer.flush(Duration::from_secs(5));
    }
}
