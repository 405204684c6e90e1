//! The test's own client of a cluster: a client configuration with TLS or SASL settings, reading a topic back
//! as the mirror wrote it, and comparing a copy with what was seeded.

use std::time::{Duration, Instant};

use kafka_mirror_samples::{self as samples, ReadRecord, SampleRecord};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

/// A librdkafka client configuration for `bootstrap` with `security` added (e.g. `security.protocol`,
/// `ssl.ca.pem`, `sasl.*`): what the test itself uses to seed and read a broker that needs TLS or SASL.
pub fn client_config(bootstrap: &str, security: &[(&str, &str)]) -> ClientConfig {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", bootstrap);
    for (key, value) in security {
        config.set(*key, *value);
    }
    config
}

/// Reads `topic` from the beginning through `config` until `expected` records arrived or `timeout`.
pub fn read_records(
    config: &ClientConfig,
    topic: &str,
    expected: usize,
    timeout: Duration,
) -> Vec<ReadRecord> {
    let consumer: BaseConsumer = config
        .clone()
        .set("group.id", "kafka-mirror-tests-reader")
        .set("enable.auto.commit", "false")
        .create()
        .expect("a consumer");
    let deadline = Instant::now() + timeout;
    // The topic may not exist yet: the mirror creates it.
    let partitions: Vec<i32> = loop {
        let found: Vec<i32> = consumer
            .fetch_metadata(Some(topic), Duration::from_secs(10))
            .map(|m| {
                m.topics()
                    .iter()
                    .filter(|t| t.error().is_none())
                    .flat_map(|t| t.partitions().iter().map(|p| p.id()))
                    .collect()
            })
            .unwrap_or_default();
        if !found.is_empty() || Instant::now() >= deadline {
            break found;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let mut tpl = TopicPartitionList::new();
    for p in &partitions {
        tpl.add_partition_offset(topic, *p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&tpl).expect("assigning the topic");
    let mut records = Vec::new();
    while records.len() < expected && Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            records.push(ReadRecord::from_message(&m));
        }
    }
    records
}

/// Compares a copy with what was seeded and prints the counts (lost, duplicated, out of per-key order,
/// altered); fails the test on anything but duplicates.
pub fn verify_copy(
    what: &str,
    seeded: &[SampleRecord],
    copy: &[ReadRecord],
) -> samples::Verification {
    let v = samples::verify(seeded, copy);
    eprintln!("{what}: {v}");
    assert!(v.is_intact(), "{what}: {v}");
    v
}
