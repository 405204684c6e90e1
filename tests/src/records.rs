//! The test's own client of a cluster: a client configuration with TLS or SASL settings, reading a topic back
//! as the mirror wrote it, and comparing a copy with what was seeded.

use std::time::{Duration, Instant};

use kafka_mirror_samples::{self as samples, ReadRecord, SampleRecord};
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};

use crate::positions::Watermarks;

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

/// Reads `topic` back through `config` while a mirror may still be creating and writing it: waits until the
/// topic holds `expected` records (or `timeout`), then reads every record it holds with the samples' reader.
pub fn read_records(
    config: &ClientConfig,
    topic: &str,
    expected: usize,
    timeout: Duration,
) -> Vec<ReadRecord> {
    let deadline = Instant::now() + timeout;
    wait_for_records(config, topic, expected, deadline);
    samples::read_all_with(
        config,
        topic,
        expected,
        deadline.saturating_duration_since(Instant::now()),
    )
    .unwrap_or_else(|e| panic!("reading {topic} back: {e}"))
}

/// [`read_records`] with the reader's `isolation`: `ReadUncommitted` sees the records of aborted transactions
/// too (what a consumer of the target that does not set `isolation.level=read_committed` would see).
pub fn read_records_isolated(
    config: &ClientConfig,
    topic: &str,
    expected: usize,
    timeout: Duration,
    isolation: samples::Isolation,
) -> Vec<ReadRecord> {
    let deadline = Instant::now() + timeout;
    wait_for_records(config, topic, expected, deadline);
    samples::read_all_isolated(
        config,
        topic,
        expected,
        deadline.saturating_duration_since(Instant::now()),
        isolation,
    )
    .unwrap_or_else(|e| panic!("reading {topic} back: {e}"))
}

/// Returns once `topic` exists and its high watermarks add up to `expected` records, or at `deadline`.
fn wait_for_records(config: &ClientConfig, topic: &str, expected: usize, deadline: Instant) {
    let probe: BaseConsumer = config.create().expect("a metadata reader");
    let pause = || std::thread::sleep(Duration::from_millis(200));
    // The mirror creates the topic: its partition count is known once it exists.
    let partitions = loop {
        let found = probe
            .fetch_metadata(Some(topic), Duration::from_secs(10))
            .map(|m| {
                m.topics()
                    .iter()
                    .filter(|t| t.error().is_none())
                    .map(|t| t.partitions().len())
                    .sum::<usize>()
            })
            .unwrap_or(0);
        if found > 0 {
            break found;
        }
        if Instant::now() >= deadline {
            return;
        }
        pause();
    };
    let watermarks = Watermarks::new(config, topic, partitions as i32);
    while Instant::now() < deadline {
        if watermarks
            .high_total()
            .is_ok_and(|held| held >= expected as i64)
        {
            return;
        }
        pause();
    }
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
