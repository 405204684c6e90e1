//! The benchmark's brokers: Apache Kafka clusters (KRaft, one broker each) as JVM processes of their own, from
//! the test kit's fixture (`kafka_mirror_tests::KafkaCluster`, over `tests/kafka/cluster.sh`, the Kafka that
//! `tests/kafka/install.sh` fetched from Maven Central). Running them apart keeps the brokers' CPU and memory
//! out of the figures of the process being measured; their CPU is read from /proc and shown beside each row.

use std::time::{Duration, Instant};

use kafka_mirror_tests::positions::Watermarks;
use kafka_mirror_tests::{ClusterOptions, KafkaCluster};
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

/// The broker JVM: the heap and the options of Kafka's own `kafka-server-start.sh` and `kafka-run-class.sh`
/// (`-Xmx1G -Xms1G`, G1), instead of the test kit's small-heap, client-compiler defaults, which start fast but
/// are not what a broker runs with.
pub const BROKER_HEAP: &str = "-Xms1g -Xmx1g";
pub const KAFKA_JVM_PERFORMANCE_OPTS: &str = "-server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
     -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent -XX:MaxInlineLevel=15 \
     -Djava.awt.headless=true";

/// A running Apache Kafka cluster of one broker; stopped when dropped.
pub struct ClusterProcess {
    cluster: KafkaCluster,
    /// The plaintext listener the clients of the benchmark use.
    pub bootstrap: String,
    pid: u32,
}

impl ClusterProcess {
    /// Starts a one-broker cluster (about 10 s on 2 cores) with the JVM settings above (the caller set them in
    /// the environment the cluster script reads, see `main`).
    pub fn start(name: &str) -> ClusterProcess {
        eprintln!("  starting the {name} cluster (Apache Kafka)");
        let cluster = KafkaCluster::start(&ClusterOptions {
            config: vec![
                // Deleted target topics free their disk at once: every copy writes a fresh one.
                ("file.delete.delay.ms".into(), "1000".into()),
            ],
            ..ClusterOptions::default()
        });
        let pid = std::fs::read_to_string(cluster.dir().join("pid-1"))
            .expect("the cluster script writes the broker's pid")
            .trim()
            .parse()
            .expect("a pid");
        ClusterProcess {
            bootstrap: cluster.internal.clone(),
            cluster,
            pid,
        }
    }

    /// CPU time the broker process has used so far.
    pub fn cpu(&self) -> Duration {
        crate::measure::so_far(self.pid).cpu
    }

    pub fn client(&self) -> ClientConfig {
        self.cluster.client()
    }

    /// A client that asks the cluster for `topic`'s watermarks, all partitions in one request. It reads
    /// `read_uncommitted`, so an exactly-once copy's first record counts once written, not once its transaction
    /// commits (librdkafka's default, `read_committed`, answers the last stable offset: the run of 2026-12-03
    /// timed exactly once from its first commit with it).
    pub fn watcher(&self, topic: &str, partitions: i32) -> Watermarks {
        let mut client = self.client();
        client.set("isolation.level", "read_uncommitted");
        Watermarks::new(&client, topic, partitions)
    }

    /// Creates `topic`, deleting it first when it exists (a copy before wrote it), and waits until its
    /// metadata lists every partition.
    pub fn fresh_topic(&self, topic: &str, partitions: i32) {
        let admin: AdminClient<DefaultClientContext> = self.client().create().unwrap();
        let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
        let deadline = Instant::now() + Duration::from_secs(120);
        if self.cluster.partitions(topic) > 0 {
            let deleted =
                block_on(admin.delete_topics(&[topic], &options)).expect("deleting a topic");
            for result in deleted {
                if let Err((name, code)) = result {
                    assert_eq!(
                        code,
                        RDKafkaErrorCode::UnknownTopicOrPartition,
                        "deleting {name}"
                    );
                }
            }
        }
        loop {
            let new_topic = NewTopic::new(topic, partitions, TopicReplication::Fixed(1))
                .set("retention.ms", "-1");
            let created =
                block_on(admin.create_topics(&[new_topic], &options)).expect("creating a topic");
            match created.into_iter().next().expect("one result") {
                Ok(_) => break,
                // A topic just deleted is still being removed for a moment.
                Err((_, RDKafkaErrorCode::TopicAlreadyExists)) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(250));
                }
                Err((name, code)) => panic!("creating {name}: {code}"),
            }
        }
        while self.cluster.partitions(topic) != partitions as usize {
            assert!(
                Instant::now() < deadline,
                "{topic} did not list {partitions} partitions"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        // Every partition has a leader that answers (a fresh topic says "not leader" for a moment).
        let watcher = self.watcher(topic, partitions);
        while watcher.high_total() != Ok(0) {
            assert!(
                Instant::now() < deadline,
                "{topic} did not answer for its end offsets"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Deletes `topic` (a copy's target, once measured), so the broker's disk holds one copy at a time.
    pub fn delete_topic(&self, topic: &str) {
        let admin: AdminClient<DefaultClientContext> = self.client().create().unwrap();
        let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
        let _ = block_on(admin.delete_topics(&[topic], &options));
    }

    /// Commits offset 0 of every partition of `topic` for `group`: a consumer group that starts from the
    /// beginning whatever its `auto.offset.reset` (MirrorMaker 1 with the seed guide's properties starts at the
    /// end of a partition without a committed offset, as the guide runs it: started before the data).
    pub fn commit_beginning(&self, group: &str, topic: &str, partitions: i32) {
        let consumer: BaseConsumer = self
            .client()
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .create()
            .unwrap();
        let mut offsets = TopicPartitionList::new();
        for p in 0..partitions {
            offsets
                .add_partition_offset(topic, p, Offset::Offset(0))
                .unwrap();
        }
        consumer
            .commit(&offsets, CommitMode::Sync)
            .unwrap_or_else(|e| panic!("committing the beginning of {topic} for {group}: {e}"));
    }
}

/// Runs one admin future to completion on a runtime of its own.
fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(future)
}

// ---------------------------------------------------------------------------------------------------------------
// For the growth section (`growth`): many partitions at once, and what they cost the broker.
// ---------------------------------------------------------------------------------------------------------------

impl ClusterProcess {
    /// Creates `topics`, each of `partitions` partitions, in one CreateTopics request (deleting those that
    /// exist first), and waits until every partition's leader answers for its end offset.
    pub fn fresh_topics(&self, topics: &[String], partitions: i32) {
        let admin: AdminClient<DefaultClientContext> = self.client().create().unwrap();
        let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(120)));
        let deadline = Instant::now() + Duration::from_secs(300);
        self.delete_topics(topics);
        let mut missing: Vec<&String> = topics.iter().collect();
        while !missing.is_empty() {
            let new_topics: Vec<NewTopic> = missing
                .iter()
                .map(|t| {
                    NewTopic::new(t, partitions, TopicReplication::Fixed(1))
                        .set("retention.ms", "-1")
                })
                .collect();
            let created =
                block_on(admin.create_topics(&new_topics, &options)).expect("creating topics");
            let mut again = Vec::new();
            for result in created {
                match result {
                    Ok(_) => {}
                    // A topic just deleted is still being removed for a moment.
                    Err((name, RDKafkaErrorCode::TopicAlreadyExists))
                        if Instant::now() < deadline =>
                    {
                        again.push(topics.iter().find(|t| **t == name).unwrap());
                    }
                    Err((name, code)) => panic!("creating {name}: {code}"),
                }
            }
            if !again.is_empty() {
                std::thread::sleep(Duration::from_millis(250));
            }
            missing = again;
        }
        // Every partition has a leader that answers (a fresh topic says "not leader" for a moment).
        let watcher = Watermarks::for_topics(&self.client(), topics, partitions);
        while watcher.high_total().ok() != Some(0) {
            assert!(
                Instant::now() < deadline,
                "{} topics of {partitions} partitions did not answer for their end offsets",
                topics.len()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// Deletes `topics` (one DeleteTopics request; those that do not exist are ignored).
    pub fn delete_topics(&self, topics: &[String]) {
        let admin: AdminClient<DefaultClientContext> = self.client().create().unwrap();
        let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(120)));
        let names: Vec<&str> = topics.iter().map(String::as_str).collect();
        let _ = block_on(admin.delete_topics(&names, &options));
    }

    /// The broker process's open file descriptors, those of them in deleted topics' directories (renamed
    /// `*-delete` and closed a while later), and its memory mappings now (each partition holds its log segment
    /// open and maps its offset and time indexes).
    pub fn files_and_maps(&self) -> BrokerFiles {
        let mut files = BrokerFiles::default();
        if let Ok(dir) = std::fs::read_dir(format!("/proc/{}/fd", self.pid)) {
            for entry in dir.flatten() {
                files.open += 1;
                if std::fs::read_link(entry.path())
                    .is_ok_and(|target| target.to_string_lossy().contains("-delete/"))
                {
                    files.deleted += 1;
                }
            }
        }
        files.maps = std::fs::read_to_string(format!("/proc/{}/maps", self.pid))
            .map(|m| m.lines().count())
            .unwrap_or(0);
        files
    }

    /// The broker process's limit on open files (`Max open files` of /proc/<pid>/limits, the soft limit).
    pub fn open_files_limit(&self) -> Option<u64> {
        let limits = std::fs::read_to_string(format!("/proc/{}/limits", self.pid)).ok()?;
        limits
            .lines()
            .find_map(|l| l.strip_prefix("Max open files"))?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    }

    /// The broker's log since it started.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.cluster.dir().join("broker-1.log")).unwrap_or_default()
    }
}

/// A broker's open files and memory maps (see `ClusterProcess::files_and_maps`).
#[derive(Debug, Clone, Copy, Default)]
pub struct BrokerFiles {
    pub open: usize,
    /// Of `open`, those in deleted topics' directories.
    pub deleted: usize,
    pub maps: usize,
}
