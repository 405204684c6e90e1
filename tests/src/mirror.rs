//! What the worker-process tests on Apache Kafka (`tests/faults.rs`, `tests/sigterm.rs`) share: a
//! continuous `KafkaMirror` document between two clusters, source records produced in the background while
//! workers run, the mirror's position as the clusters record it (the group's committed offsets on the source,
//! the high watermarks on the target, the group's owners as Kafka's own tool describes them), and a worker's
//! `/metrics` read by name.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use kafka_mirror_samples::{self as samples, SampleRecord};
use rdkafka::ClientConfig;

use crate::positions::{GroupOffsets, Watermarks, retried};

/// Topic configs for the topics of these tests: no time-based retention. The sample records carry
/// timestamps from 2019 (`samples::BASE_TIMESTAMP_MS`, so a copy that re-stamps records is caught), and with
/// the default `retention.ms` of 7 days the broker's first retention check, 30 s after it starts, deletes every
/// segment of them, the active one included: the source would lose records under the mirror (which then stops
/// with "no longer holds offset") and the target would lose the copy. `tests/kafka/cluster.sh` now turns
/// time retention off broker-wide too; the topics say it themselves so these tests do not rest on that.
pub const KEEP_FOREVER: &[(&str, &str)] = &[("retention.ms", "-1")];

/// The mirror's position per partition of one topic, read from the clusters with one client each (so a test
/// can sample it every 50 ms without creating clients), each read retried while the clusters settle.
pub struct Progress {
    committed: GroupOffsets,
    target: Watermarks,
}

impl Progress {
    pub fn new(source: &str, target: &str, group: &str, topic: &str, partitions: i32) -> Progress {
        let cluster = |bootstrap: &str| {
            let mut config = ClientConfig::new();
            config.set("bootstrap.servers", bootstrap);
            config
        };
        Progress {
            committed: GroupOffsets::new(&cluster(source), group, topic, partitions),
            target: Watermarks::new(&cluster(target), topic, partitions),
        }
    }

    /// The group's committed offset of each source partition (0 where nothing was committed yet).
    pub fn committed(&self) -> Vec<i64> {
        retried("reading the group's committed offsets", || {
            self.committed.committed()
        })
        .iter()
        .map(|c| c.unwrap_or(0))
        .collect()
    }

    /// The high watermark of each target partition: how many records the target holds there.
    pub fn on_target(&self) -> Vec<i64> {
        retried("reading the target's watermarks", || self.target.high())
    }

    pub fn committed_total(&self) -> i64 {
        self.committed().iter().sum()
    }

    pub fn on_target_total(&self) -> i64 {
        self.on_target().iter().sum()
    }
}

/// Sample records produced to the source on a thread of their own while the test does other things.
pub struct BackgroundProducer {
    produced: Arc<AtomicU64>,
    thread: JoinHandle<Vec<SampleRecord>>,
}

impl BackgroundProducer {
    /// Produces `batches` batches of `batch` sample records (`keys` keys, values of `value_size` bytes) to
    /// `topic`, one batch every `pause`, each flushed before the next starts.
    pub fn start(
        bootstrap: &str,
        topic: &str,
        batches: u64,
        batch: u64,
        pause: Duration,
        keys: u64,
        value_size: usize,
    ) -> BackgroundProducer {
        let produced = Arc::new(AtomicU64::new(0));
        let (bootstrap, topic, counter) =
            (bootstrap.to_string(), topic.to_string(), produced.clone());
        let thread = std::thread::spawn(move || {
            let mut records = Vec::with_capacity((batches * batch) as usize);
            for i in 0..batches {
                std::thread::sleep(pause);
                let (from, to) = (i * batch, (i + 1) * batch);
                records.extend(
                    samples::produce(&bootstrap, &topic, from, to, keys, value_size)
                        .expect("producing to the source"),
                );
                counter.store(to, Ordering::Release);
            }
            records
        });
        BackgroundProducer { produced, thread }
    }

    /// Records acknowledged by the source so far.
    pub fn produced(&self) -> u64 {
        self.produced.load(Ordering::Acquire)
    }

    pub fn is_finished(&self) -> bool {
        self.thread.is_finished()
    }

    /// Waits for the last batch; every record produced, in order.
    pub fn join(self) -> Vec<SampleRecord> {
        self.thread.join().expect("the background producer")
    }
}

/// One row of `kafka-consumer-groups.sh --describe`: who owns a partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionOwner {
    pub topic: String,
    pub partition: i32,
    /// The member (`client.id` plus a broker-made suffix); `None` when no member owns the partition.
    pub consumer_id: Option<String>,
}

/// The group's partitions and their owners as the group coordinator reports them, asked with Kafka's own
/// `kafka-consumer-groups.sh --describe` (the tool `tests/kafka/install.sh` fetched). `None` while the group
/// is rebalancing (the tool then lists no owners).
pub fn describe_group(bootstrap: &str, group: &str) -> Option<Vec<PartitionOwner>> {
    let install = Path::new(env!("CARGO_MANIFEST_DIR")).join("kafka/install.sh");
    let libs = Command::new("bash")
        .arg(&install)
        .output()
        .expect("running tests/kafka/install.sh");
    assert!(
        libs.status.success(),
        "{}",
        String::from_utf8_lossy(&libs.stderr)
    );
    let libs = String::from_utf8_lossy(&libs.stdout);
    let libs = libs
        .lines()
        .last()
        .expect("install.sh prints the jar directory");
    let output = Command::new("java")
        .args(["-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Xmx128m"])
        .arg("-cp")
        .arg(format!("{libs}/*"))
        .arg("org.apache.kafka.tools.consumer.group.ConsumerGroupCommand")
        .args([
            "--bootstrap-server",
            bootstrap,
            "--describe",
            "--group",
            group,
        ])
        .output()
        .expect("running kafka-consumer-groups --describe");
    let stdout = String::from_utf8_lossy(&output.stdout);
    if stdout.contains("is rebalancing") {
        return None;
    }
    assert!(
        output.status.success(),
        "kafka-consumer-groups --describe --group {group} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // GROUP TOPIC PARTITION CURRENT-OFFSET LOG-END-OFFSET LAG CONSUMER-ID HOST CLIENT-ID
    let owners = stdout
        .lines()
        .map(|line| line.split_whitespace().collect::<Vec<_>>())
        .filter(|columns| columns.len() == 9 && columns[0] == group)
        .filter_map(|columns| {
            Some(PartitionOwner {
                topic: columns[1].to_string(),
                partition: columns[2].parse().ok()?,
                consumer_id: (columns[6] != "-").then(|| columns[6].to_string()),
            })
        })
        .collect();
    Some(owners)
}
