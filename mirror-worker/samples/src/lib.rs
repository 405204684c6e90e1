//! Keyed sample records that can be checked one by one after a mirror: seeded by `mirror-worker demo` and by
//! the test suites, then read back from the target and compared — every record, with key, value, headers and
//! timestamp, and per-key order. The demo is a product feature, so this is a crate of its own rather than a
//! test helper inside the engine: the worker links it for the demo, the test kit for its assertions.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use rdkafka::error::KafkaError;

/// A Kafka call of the sample producer or reader failed: what it was doing, and librdkafka's error.
#[derive(Debug, thiserror::Error)]
#[error("{what}: {source}")]
pub struct Error {
    pub what: String,
    pub source: KafkaError,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Timestamps of seeded records start here (2019-11-29, the date of the HDInsight guide), one millisecond
/// apart, so a copy that re-stamps records is caught.
pub const BASE_TIMESTAMP_MS: i64 = 1_575_000_000_000;

/// One seeded record: its key and that key's sequence number identify it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SampleRecord {
    pub key: String,
    pub seq: u64,
    pub value: Vec<u8>,
    pub timestamp: i64,
    pub headers: Vec<(String, Vec<u8>)>,
}

/// One record read back from a cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadRecord {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub timestamp: Option<i64>,
    pub headers: Vec<(String, Vec<u8>)>,
}

impl ReadRecord {
    /// Everything of a consumed record that a copy must keep, and where it was.
    pub fn from_message(m: &impl Message) -> Self {
        Self {
            partition: m.partition(),
            offset: m.offset(),
            key: m.key().map(<[u8]>::to_vec),
            value: m.payload().map(<[u8]>::to_vec),
            timestamp: m.timestamp().to_millis(),
            headers: m
                .headers()
                .map(|h| {
                    h.iter()
                        .map(|h| (h.key.to_string(), h.value.unwrap_or_default().to_vec()))
                        .collect()
                })
                .unwrap_or_default(),
        }
    }
}

/// The `n`-th sample record of a run with `keys` distinct keys (the key cycles, its sequence counts up).
pub fn sample(n: u64, keys: u64, value_size: usize) -> SampleRecord {
    let key_index = n % keys;
    let seq = n / keys;
    let key = format!("key-{key_index:05}");
    let mut value = format!("{key}#{seq}|").into_bytes();
    value.resize(value_size.max(value.len()), b'x');
    SampleRecord {
        headers: vec![
            ("seq".into(), seq.to_string().into_bytes()),
            ("origin".into(), b"kafka-mirror-testkit".to_vec()),
        ],
        key,
        seq,
        value,
        timestamp: BASE_TIMESTAMP_MS + n as i64,
    }
}

/// Produces records `from..to` of a sample run to `topic`, partitioned by key like the Java client.
pub fn produce(
    bootstrap: &str,
    topic: &str,
    from: u64,
    to: u64,
    keys: u64,
    value_size: usize,
) -> Result<Vec<SampleRecord>> {
    produce_with(&plaintext(bootstrap), topic, from, to, keys, value_size)
}

/// [`produce`] through a client configured by `config` (e.g. with TLS or SASL settings).
pub fn produce_with(
    config: &ClientConfig,
    topic: &str,
    from: u64,
    to: u64,
    keys: u64,
    value_size: usize,
) -> Result<Vec<SampleRecord>> {
    let producer: BaseProducer = config
        .clone()
        .set("partitioner", "murmur2_random")
        .set("linger.ms", "5")
        // A retry after a timed-out request must not write a record twice on the source: the tests judge
        // the mirror's duplicates against what was seeded once.
        .set("enable.idempotence", "true")
        .create()
        .map_err(|source| Error {
            what: "creating the sample producer".into(),
            source,
        })?;
    let mut records = Vec::with_capacity((to - from) as usize);
    for n in from..to {
        let record = sample(n, keys, value_size);
        let headers = record
            .headers
            .iter()
            .fold(OwnedHeaders::new(), |h, (k, v)| {
                h.insert(Header {
                    key: k,
                    value: Some(v),
                })
            });
        let mut base = BaseRecord::to(topic)
            .key(&record.key)
            .payload(&record.value)
            .timestamp(record.timestamp)
            .headers(headers);
        loop {
            match producer.send(base) {
                Ok(()) => break,
                Err((_, returned)) => {
                    base = returned;
                    producer.poll(Duration::from_millis(10));
                }
            }
        }
        records.push(record);
        producer.poll(Duration::ZERO);
    }
    producer
        .flush(Duration::from_secs(30))
        .map_err(|source| Error {
            what: format!("flushing sample records to {topic}"),
            source,
        })?;
    Ok(records)
}

/// Reads every partition of `topic` from the beginning to its end. Waits while fewer than `expected` records
/// are there and the topic still grows; stops when it stopped growing for two seconds or at `timeout`.
pub fn read_all(
    bootstrap: &str,
    topic: &str,
    expected: usize,
    timeout: Duration,
) -> Result<Vec<ReadRecord>> {
    read_all_with(&plaintext(bootstrap), topic, expected, timeout)
}

/// [`read_all`] through a client configured by `config` (e.g. with TLS or SASL settings).
pub fn read_all_with(
    config: &ClientConfig,
    topic: &str,
    expected: usize,
    timeout: Duration,
) -> Result<Vec<ReadRecord>> {
    read_all_isolated(config, topic, expected, timeout, Isolation::ReadCommitted)
}

/// Which records of transactions a reader sees (librdkafka's `isolation.level`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isolation {
    /// Only records of committed transactions (and records written outside transactions).
    ReadCommitted,
    /// Every record written, aborted transactions' records too.
    ReadUncommitted,
}

/// [`read_all_with`] with the reader's `isolation`.
pub fn read_all_isolated(
    config: &ClientConfig,
    topic: &str,
    expected: usize,
    timeout: Duration,
    isolation: Isolation,
) -> Result<Vec<ReadRecord>> {
    let isolation_level = match isolation {
        Isolation::ReadCommitted => "read_committed",
        Isolation::ReadUncommitted => "read_uncommitted",
    };
    let consumer: BaseConsumer = config
        .clone()
        .set("group.id", "kafka-mirror-testkit-reader")
        .set("enable.auto.commit", "false")
        .set("isolation.level", isolation_level)
        .create()
        .map_err(|source| Error {
            what: "creating the sample reader".into(),
            source,
        })?;
    let kafka = |what: String| move |source| Error { what, source };
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .map_err(kafka(format!("reading metadata of {topic}")))?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    let mut tpl = TopicPartitionList::new();
    for p in &partitions {
        tpl.add_partition_offset(topic, *p, Offset::Beginning)
            .map_err(kafka("building the assignment".into()))?;
    }
    consumer
        .assign(&tpl)
        .map_err(kafka(format!("assigning {topic}")))?;
    let highs = |consumer: &BaseConsumer| -> Result<Vec<i64>> {
        partitions
            .iter()
            .map(|p| {
                consumer
                    .fetch_watermarks(topic, *p, Duration::from_secs(10))
                    .map(|(_, high)| high)
                    .map_err(kafka(format!("reading watermarks of {topic}[{p}]")))
            })
            .collect()
    };
    let deadline = Instant::now() + timeout;
    let mut records = Vec::new();
    let mut ends = highs(&consumer)?;
    let mut unchanged_since = Instant::now();
    while Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(50)) {
            records.push(ReadRecord::from_message(&m));
            continue;
        }
        let position = consumer
            .position()
            .map_err(kafka("reading the reader's position".into()))?;
        let at_end = partitions.iter().zip(&ends).all(|(p, end)| {
            matches!(position.find_partition(topic, *p).map(|e| e.offset()), Some(Offset::Offset(o)) if o >= *end)
                || *end == 0
        });
        if !at_end {
            continue;
        }
        if records.len() >= expected {
            break;
        }
        let now_ends = highs(&consumer)?;
        if now_ends != ends {
            ends = now_ends;
            unchanged_since = Instant::now();
        } else if unchanged_since.elapsed() > Duration::from_secs(2) {
            break;
        }
    }
    Ok(records)
}

/// A client of the cluster at `bootstrap` without TLS or SASL.
fn plaintext(bootstrap: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", bootstrap);
    config
}

/// The outcome of comparing what was seeded with what arrived.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Verification {
    pub expected: usize,
    pub arrived: usize,
    /// Seeded records that never arrived.
    pub lost: usize,
    /// Extra copies of records that did arrive (allowed by at-least-once, counted so it is visible).
    pub duplicated: usize,
    /// Keys whose records arrived in a different order than they were seeded.
    pub keys_out_of_order: usize,
    /// Records whose value, timestamp or headers differ from what was seeded.
    pub altered: usize,
    /// Records on the target that were never seeded.
    pub unknown: usize,
    /// Where the first extra copy sits: its partition, the first copy's offset and its own. Tells a duplicate
    /// the mirror wrote (its copies apart by what was in flight around a restart or rebalance) from one the
    /// source already held.
    pub first_duplicate: Option<(i32, i64, i64)>,
}

impl Verification {
    /// Nothing lost, nothing altered, nothing foreign, every key in order.
    pub fn is_intact(&self) -> bool {
        self.lost == 0 && self.keys_out_of_order == 0 && self.altered == 0 && self.unknown == 0
    }
}

impl std::fmt::Display for Verification {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} of {} records arrived: {} lost, {} duplicated, {} keys out of order, {} altered, {} unknown",
            self.arrived,
            self.expected,
            self.lost,
            self.duplicated,
            self.keys_out_of_order,
            self.altered,
            self.unknown
        )?;
        if let Some((partition, first, again)) = self.first_duplicate {
            write!(
                f,
                " (the first duplicate: partition {partition}, offset {first} and again at {again})"
            )?;
        }
        Ok(())
    }
}

/// Compares seeded records with the records read from the target. Order is judged per key in the order the
/// target holds them (by partition, then offset; one key always lands in one partition).
pub fn verify(seeded: &[SampleRecord], arrived: &[ReadRecord]) -> Verification {
    let by_id: HashMap<(&str, u64), &SampleRecord> = seeded
        .iter()
        .map(|r| ((r.key.as_str(), r.seq), r))
        .collect();
    let mut sorted: Vec<&ReadRecord> = arrived.iter().collect();
    sorted.sort_by_key(|r| (r.partition, r.offset));
    let mut seen: HashMap<(String, u64), (usize, i64)> = HashMap::new();
    let mut last_seq: BTreeMap<String, u64> = BTreeMap::new();
    let mut out_of_order = std::collections::BTreeSet::new();
    let mut v = Verification {
        expected: seeded.len(),
        arrived: arrived.len(),
        ..Default::default()
    };
    for record in sorted {
        let Some(key) = record
            .key
            .as_deref()
            .and_then(|k| std::str::from_utf8(k).ok())
        else {
            v.unknown += 1;
            continue;
        };
        let Some(seq) = record
            .headers
            .iter()
            .find(|(k, _)| k == "seq")
            .and_then(|(_, value)| std::str::from_utf8(value).ok()?.parse().ok())
        else {
            v.unknown += 1;
            continue;
        };
        let Some(original) = by_id.get(&(key, seq)) else {
            v.unknown += 1;
            continue;
        };
        let (count, first_offset) = seen
            .entry((key.to_string(), seq))
            .or_insert((0, record.offset));
        *count += 1;
        if *count > 1 {
            v.duplicated += 1;
            v.first_duplicate
                .get_or_insert((record.partition, *first_offset, record.offset));
            continue;
        }
        if record.value.as_deref() != Some(original.value.as_slice())
            || record.timestamp != Some(original.timestamp)
            || record.headers != original.headers
        {
            v.altered += 1;
        }
        // A first copy of seq n after seq m > n of the same key: order broken.
        if let Some(last) = last_seq.get(key)
            && seq < *last
        {
            out_of_order.insert(key.to_string());
        }
        let entry = last_seq.entry(key.to_string()).or_insert(seq);
        *entry = (*entry).max(seq);
    }
    v.lost = seeded.len() - seen.len();
    v.keys_out_of_order = out_of_order.len();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arrived(records: &[(i32, i64, &SampleRecord)]) -> Vec<ReadRecord> {
        records
            .iter()
            .map(|(partition, offset, r)| ReadRecord {
                partition: *partition,
                offset: *offset,
                key: Some(r.key.clone().into_bytes()),
                value: Some(r.value.clone()),
                timestamp: Some(r.timestamp),
                headers: r.headers.clone(),
            })
            .collect()
    }

    #[test]
    fn an_exact_copy_is_intact() {
        let seeded: Vec<_> = (0..6).map(|n| sample(n, 2, 16)).collect();
        let copy = arrived(
            &seeded
                .iter()
                .enumerate()
                .map(|(i, r)| (0, i as i64, r))
                .collect::<Vec<_>>(),
        );
        let v = verify(&seeded, &copy);
        assert!(v.is_intact(), "{v}");
        assert_eq!((v.lost, v.duplicated), (0, 0));
    }

    #[test]
    fn loss_duplicates_reordering_and_alteration_are_each_counted() {
        let seeded: Vec<_> = (0..6).map(|n| sample(n, 2, 16)).collect();
        // key-00000 has seq 0,1,2 = records 0,2,4; key-00001 has records 1,3,5.
        let mut copy = arrived(&[
            (0, 0, &seeded[2]), // key 0 seq 1 before seq 0: out of order
            (0, 1, &seeded[0]),
            (0, 2, &seeded[4]),
            (1, 0, &seeded[1]),
            (1, 1, &seeded[1]), // duplicate
            (1, 2, &seeded[5]), // record 3 lost
        ]);
        copy[5].timestamp = Some(0); // altered
        let v = verify(&seeded, &copy);
        assert_eq!(v.lost, 1);
        assert_eq!(v.duplicated, 1);
        assert_eq!(v.keys_out_of_order, 1);
        assert_eq!(v.altered, 1);
        assert!(!v.is_intact());
    }
}
