//! The data set: keyed records with two headers, from the test kit's generator (printable values without tabs
//! or newlines, so the kcat pipeline can carry them as lines), and producing it with the worker's producer.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use kafka_mirror_samples::{self as samples, SampleRecord};
use mirror_worker::partitioner;
use rdkafka::ClientConfig;
use rdkafka::client::ClientContext;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};

use crate::measure::RoleReport;

/// Distinct keys in the data set.
pub const KEYS: u64 = 10_000;

/// The bytes of a record the figures count: key, value, and header names and values.
pub fn record_bytes(record: &SampleRecord) -> u64 {
    let headers: usize = record.headers.iter().map(|(k, v)| k.len() + v.len()).sum();
    (record.key.len() + record.value.len() + headers) as u64
}

/// Records `0..count` with values of `value_size` bytes.
pub fn generate(count: u64, value_size: usize) -> Vec<SampleRecord> {
    (0..count)
        .map(|n| samples::sample(n, KEYS, value_size))
        .collect()
}

/// Counts acknowledged and failed deliveries, and notes when the first acknowledgement came.
#[derive(Default)]
pub struct Acks {
    pub acked: AtomicU64,
    pub failed: AtomicU64,
    pub first: std::sync::OnceLock<Instant>,
}

impl ClientContext for Acks {}

impl ProducerContext for Acks {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        self.first.get_or_init(Instant::now);
        match result {
            Ok(_) => self.acked.fetch_add(1, Ordering::Relaxed),
            Err(_) => self.failed.fetch_add(1, Ordering::Relaxed),
        };
    }
}

pub fn headers_of(record: &SampleRecord) -> OwnedHeaders {
    record
        .headers
        .iter()
        .fold(OwnedHeaders::new_with_capacity(2), |h, (k, v)| {
            h.insert(Header {
                key: k,
                value: Some(v),
            })
        })
}

/// Sends `record` (key, value, timestamp and its headers) to `partition` of `topic`. A full queue is
/// backpressure, as in the worker: it waits for acknowledgements, then sends again.
pub fn send(producer: &ThreadedProducer<Acks>, topic: &str, partition: i32, record: &SampleRecord) {
    let mut base = BaseRecord::to(topic)
        .partition(partition)
        .key(record.key.as_bytes())
        .payload(&record.value)
        .timestamp(record.timestamp)
        .headers(headers_of(record));
    while let Err((_, back)) = producer.send(base) {
        base = back;
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Waits for every acknowledgement and checks that all `sent` records were acknowledged, none failed.
pub fn flush_all(producer: &ThreadedProducer<Acks>, sent: u64) -> &Acks {
    producer
        .flush(Duration::from_secs(120))
        .expect("flushing the producer");
    let acks = producer.context();
    assert_eq!(acks.failed.load(Ordering::Relaxed), 0, "deliveries failed");
    assert_eq!(acks.acked.load(Ordering::Relaxed), sent);
    acks
}

/// Produces `records` to `topic` with `config`, placing each by its key as the worker does, and waits for every
/// acknowledgement. The time runs from the first acknowledgement to the last, as a copy's runs from the first
/// record on the target to the last: neither counts connecting and fetching metadata.
pub fn produce_all(
    config: &ClientConfig,
    topic: &str,
    partitions: i32,
    records: &[SampleRecord],
) -> RoleReport {
    let producer: ThreadedProducer<Acks> = config
        .create_with_context(Acks::default())
        .expect("creating the producer");
    let mut bytes = 0;
    for record in records {
        bytes += record_bytes(record);
        let partition = partitioner::target_partition(
            Default::default(),
            Some(record.key.as_bytes()),
            0,
            partitions,
        );
        send(&producer, topic, partition, record);
    }
    let acks = flush_all(&producer, records.len() as u64);
    RoleReport {
        records: records.len() as u64,
        bytes,
        seconds: acks.first.get().unwrap().elapsed().as_secs_f64(),
    }
}
