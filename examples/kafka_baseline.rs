//! The plain-librdkafka baselines of the Kafka benchmark (`scripts/bench`): what the
//! same client library does without flowctl around it.
//!
//!   kafka_baseline create BROKERS TOPIC P    create a topic with P partitions
//!   kafka_baseline produce BROKERS TOPIC N   N 100-byte JSON records, acks=all
//!   kafka_baseline consume BROKERS TOPIC     read every message to the end offsets
//!   kafka_baseline pipe BROKERS FROM TO      read every message and write it to TO
//!
//! Each prints the number of messages it handled.

#![allow(clippy::unwrap_used)]

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::Message;
use std::time::Duration;

fn producer(brokers: &str) -> BaseProducer {
    ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("enable.idempotence", "true")
        .set("partitioner", "murmur2_random")
        .set("linger.ms", "5")
        .create()
        .unwrap()
}

fn send(producer: &BaseProducer, topic: &str, key: &[u8], value: &[u8]) {
    let mut record = BaseRecord::to(topic).key(key).payload(value);
    loop {
        match producer.send(record) {
            Ok(()) => return,
            Err((_, r)) => {
                producer.poll(Duration::from_millis(10));
                record = r;
            }
        }
    }
}

/// The benchmark's record `i`: 100 bytes of JSON.
pub fn record(i: u64) -> (String, String) {
    let user = format!("u{}", i % 1000);
    let head =
        format!(r#"{{"id":{i},"user":"{user}","amount":{},"ts":{},"pad":""#, i % 997, 1_700_000_000_000 + i * 10);
    let pad = "x".repeat(100usize.saturating_sub(head.len() + 2));
    (user, format!("{head}{pad}\"}}"))
}

/// Calls `f` on every message of `topic` up to the end offsets it has now.
fn read_all(brokers: &str, topic: &str, mut f: impl FnMut(&[u8], &[u8])) -> u64 {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "flowctl-bench-baseline")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10)).unwrap();
    let mut tpl = TopicPartitionList::new();
    let mut ends = Vec::new();
    for p in metadata.topics()[0].partitions() {
        let (low, high) = consumer.fetch_watermarks(topic, p.id(), Duration::from_secs(10)).unwrap();
        tpl.add_partition_offset(topic, p.id(), Offset::Offset(low)).unwrap();
        ends.push((p.id(), high, high <= low));
    }
    consumer.assign(&tpl).unwrap();
    let mut n = 0;
    while ends.iter().any(|(_, _, done)| !done) {
        let Some(Ok(m)) = consumer.poll(Duration::from_millis(500)) else { continue };
        f(m.key().unwrap_or_default(), m.payload().unwrap_or_default());
        n += 1;
        if let Some(e) = ends.iter_mut().find(|(p, _, _)| *p == m.partition()) {
            e.2 = m.offset() + 1 >= e.1;
        }
    }
    n
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: kafka_baseline create BROKERS TOPIC P | produce BROKERS TOPIC N | consume BROKERS TOPIC | pipe BROKERS FROM TO";
    let arg = |i: usize| args.get(i).cloned().unwrap_or_else(|| panic!("{usage}"));
    let n = match arg(1).as_str() {
        "create" => {
            flowctl::kafka::create_topic(&arg(2), &[], &arg(3), arg(4).parse().unwrap(), "kafka_baseline").unwrap();
            0
        }
        "produce" => {
            let (p, topic, n) = (producer(&arg(2)), arg(3), arg(4).parse::<u64>().unwrap());
            for i in 0..n {
                let (key, value) = record(i);
                send(&p, &topic, key.as_bytes(), value.as_bytes());
            }
            p.flush(Duration::from_secs(300)).unwrap();
            n
        }
        "consume" => read_all(&arg(2), &arg(3), |_, _| {}),
        "pipe" => {
            let (p, to) = (producer(&arg(2)), arg(4));
            let n = read_all(&arg(2), &arg(3), |key, value| send(&p, &to, key, value));
            p.flush(Duration::from_secs(300)).unwrap();
            n
        }
        _ => panic!("{usage}"),
    };
    println!("{n}");
}
