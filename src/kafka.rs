//! Kafka clients shared by the Kafka source and sink: client configuration from the
//! spec (brokers, flowctl's defaults, then `options:` passed through to librdkafka),
//! a client context that routes librdkafka's log and errors to our log and remembers
//! the last error (so a timeout can say *why*), and the metadata check that turns an
//! unreachable broker or a missing topic into a clear error before anything runs.

use crate::error::{Error, Result};
use rdkafka::client::{Client, ClientContext};
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::ConsumerContext;
use rdkafka::error::KafkaError;
use rdkafka::producer::{DeliveryResult, ProducerContext};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::Message;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// How long start-up waits for the brokers to answer a metadata request.
pub const METADATA_TIMEOUT: Duration = Duration::from_secs(10);

/// Our client context: logs through `tracing`, keeps the last client error, counts
/// failed deliveries and keeps those worth sending again (producers).
pub struct FlowContext {
    /// What the client belongs to, for log lines: "source `orders`".
    pub owner: String,
    last_error: Mutex<Option<String>>,
    failed_deliveries: AtomicU64,
    last_delivery_error: Mutex<Option<String>>,
    retries: Mutex<Vec<Undelivered>>,
}

/// A message the broker did not take for a reason that may pass (a broker restarting,
/// a leader moving), to be sent again.
pub struct Undelivered {
    pub topic: String,
    pub partition: i32,
    pub key: Option<Vec<u8>>,
    pub payload: Vec<u8>,
    pub reason: String,
}

/// Delivery errors that sending again cannot fix.
fn permanent(error: &KafkaError) -> bool {
    matches!(
        error.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::MessageSizeTooLarge
                | RDKafkaErrorCode::InvalidMessage
                | RDKafkaErrorCode::InvalidMessageSize
                | RDKafkaErrorCode::InvalidRecord
                | RDKafkaErrorCode::TopicAuthorizationFailed
                | RDKafkaErrorCode::ClusterAuthorizationFailed
                | RDKafkaErrorCode::Fenced
                | RDKafkaErrorCode::ProducerFenced
        )
    )
}

impl FlowContext {
    pub fn new(owner: String) -> FlowContext {
        FlowContext {
            owner,
            last_error: Mutex::new(None),
            failed_deliveries: AtomicU64::new(0),
            last_delivery_error: Mutex::new(None),
            retries: Mutex::new(Vec::new()),
        }
    }

    /// Messages that failed for a reason that may pass, since the last call.
    pub fn take_retries(&self) -> Vec<Undelivered> {
        self.retries.lock().map(|mut r| std::mem::take(&mut *r)).unwrap_or_default()
    }

    /// The last error the client reported (connection refused, authentication failed).
    pub fn last_error(&self) -> Option<String> {
        self.last_error.lock().ok()?.clone()
    }

    /// Deliveries that failed since the last call, with the last reason.
    pub fn take_delivery_failures(&self) -> Option<(u64, String)> {
        let n = self.failed_deliveries.swap(0, Ordering::SeqCst);
        let reason = self.last_delivery_error.lock().ok()?.take().unwrap_or_default();
        (n > 0).then_some((n, reason))
    }
}

impl ClientContext for FlowContext {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        match level {
            RDKafkaLogLevel::Emerg | RDKafkaLogLevel::Alert | RDKafkaLogLevel::Critical | RDKafkaLogLevel::Error => {
                tracing::warn!("{}: librdkafka {facility}: {message}", self.owner)
            }
            RDKafkaLogLevel::Warning | RDKafkaLogLevel::Notice => {
                tracing::info!("{}: librdkafka {facility}: {message}", self.owner)
            }
            _ => tracing::debug!("{}: librdkafka {facility}: {message}", self.owner),
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        // Connection errors repeat while a broker is away; librdkafka retries by itself.
        tracing::debug!("{}: Kafka client error: {error}: {reason}", self.owner);
        if let Ok(mut last) = self.last_error.lock() {
            *last = Some(reason.to_string());
        }
    }
}

impl ConsumerContext for FlowContext {}

impl ProducerContext for FlowContext {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((error, message)) = result {
            if !permanent(error) {
                if let Ok(mut retries) = self.retries.lock() {
                    retries.push(Undelivered {
                        topic: message.topic().to_string(),
                        partition: message.partition(),
                        key: message.key().map(<[u8]>::to_vec),
                        payload: message.payload().map(<[u8]>::to_vec).unwrap_or_default(),
                        reason: describe(error),
                    });
                    return;
                }
            }
            self.failed_deliveries.fetch_add(1, Ordering::SeqCst);
            if let Ok(mut last) = self.last_delivery_error.lock() {
                *last = Some(format!(
                    "{} (topic `{}`, {} bytes)",
                    describe(error),
                    message.topic(),
                    message.payload().map_or(0, <[u8]>::len)
                ));
            }
        }
    }
}

/// A client configuration: bootstrap servers, `defaults` (flowctl's choices), then the
/// user's `options:` (which win).
pub fn config(brokers: &str, defaults: &[(&str, &str)], options: &[(String, String)]) -> ClientConfig {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", brokers);
    config.set("client.id", "flowctl");
    config.set_log_level(RDKafkaLogLevel::Warning);
    for (k, v) in defaults {
        config.set(*k, *v);
    }
    for (k, v) in options {
        config.set(k, v);
    }
    config
}

/// A readable reason for a Kafka error, with a hint where one helps.
pub fn describe(error: &KafkaError) -> String {
    match error.rdkafka_error_code() {
        Some(RDKafkaErrorCode::MessageSizeTooLarge) => format!(
            "{error}: the record is larger than the producer's `message.max.bytes` or the broker's limit \
             (raise them with `options:` or make records smaller)"
        ),
        Some(RDKafkaErrorCode::UnsupportedFeature) => format!("{error} (the broker does not implement it)"),
        _ => error.to_string(),
    }
}

/// The partitions of `topic`, failing clearly when the brokers cannot be reached (with
/// the client's last error, e.g. refused connections or failed authentication) or the
/// topic does not exist.
pub fn partitions(client: &Client<FlowContext>, brokers: &str, topic: &str) -> Result<Vec<i32>> {
    let metadata = client.fetch_metadata(Some(topic), METADATA_TIMEOUT).map_err(|e| {
        let why = client.context().last_error().map(|r| format!(" (last error: {r})")).unwrap_or_default();
        Error::External(format!(
            "{}: cannot reach the Kafka brokers `{brokers}` within {} s: {e}{why}",
            client.context().owner,
            METADATA_TIMEOUT.as_secs()
        ))
    })?;
    let missing =
        || Error::External(format!("{}: topic `{topic}` does not exist on `{brokers}`", client.context().owner));
    let t = metadata.topics().iter().find(|t| t.name() == topic).ok_or_else(missing)?;
    if t.error().is_some() || t.partitions().is_empty() {
        return Err(missing());
    }
    let mut ids: Vec<i32> = t.partitions().iter().map(|p| p.id()).collect();
    ids.sort_unstable();
    Ok(ids)
}

/// Creates `topic` with `partitions` partitions (replication 1) unless it exists.
pub fn create_topic(
    brokers: &str,
    options: &[(String, String)],
    topic: &str,
    partitions: u32,
    owner: &str,
) -> Result<()> {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    let admin: AdminClient<FlowContext> = config(brokers, &[], options)
        .create_with_context(FlowContext::new(owner.to_string()))
        .map_err(|e| Error::External(format!("{owner}: cannot create a Kafka admin client: {e}")))?;
    let new = NewTopic::new(topic, partitions as i32, TopicReplication::Fixed(1));
    let request = admin.create_topics([&new], &AdminOptions::new().operation_timeout(Some(METADATA_TIMEOUT)));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .map_err(|e| Error::Internal(format!("cannot start a runtime: {e}")))?;
    let results = runtime
        .block_on(async { tokio::time::timeout(METADATA_TIMEOUT, request).await })
        .map_err(|_| {
            Error::External(format!("{owner}: cannot reach the Kafka brokers `{brokers}` to create topic `{topic}`"))
        })?
        .map_err(|e| Error::External(format!("{owner}: cannot create topic `{topic}`: {e}")))?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((_, code)) => return Err(Error::External(format!("{owner}: cannot create topic `{topic}`: {code}"))),
        }
    }
    Ok(())
}
