//! A consumer group as the group coordinator reports it, asked with Kafka's own `kafka-consumer-groups.sh`:
//! which member owns which partition.

use crate::kafka::kafka_java;

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
    let output = kafka_java()
        .args(["-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Xmx128m"])
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

/// A consumer of a group, as an application runs one: subscribed to a topic, reading `read_committed` from
/// its group's committed offsets (the earliest offset where the group has none), and committing after what it
/// processed. Dropping it leaves the group.
pub struct GroupReader {
    consumer: rdkafka::consumer::BaseConsumer,
}

impl GroupReader {
    pub fn new(bootstrap: &str, group: &str, topic: &str) -> GroupReader {
        use rdkafka::consumer::Consumer;
        let consumer: rdkafka::consumer::BaseConsumer = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .set("isolation.level", "read_committed")
            .create()
            .expect("a group consumer");
        consumer.subscribe(&[topic]).expect("subscribing");
        GroupReader { consumer }
    }

    /// Reads up to `max` records, stopping early once none came for `idle` after the first one (or for `wait`
    /// before it), and commits synchronously after the records read: the records processed.
    pub fn read(
        &self,
        max: usize,
        wait: std::time::Duration,
        idle: std::time::Duration,
    ) -> Vec<kafka_mirror_samples::ReadRecord> {
        use rdkafka::consumer::{CommitMode, Consumer};
        let mut read = Vec::new();
        let mut last = std::time::Instant::now();
        let mut patience = wait;
        while read.len() < max && last.elapsed() < patience {
            match self.consumer.poll(std::time::Duration::from_millis(100)) {
                Some(Ok(message)) => {
                    read.push(kafka_mirror_samples::ReadRecord::from_message(&message));
                    last = std::time::Instant::now();
                    patience = idle;
                }
                Some(Err(error)) => eprintln!("group reader: {error}"),
                None => {}
            }
        }
        let mut next: std::collections::BTreeMap<(String, i32), i64> = Default::default();
        let topic = self
            .consumer
            .subscription()
            .ok()
            .and_then(|s| s.elements().first().map(|e| e.topic().to_string()))
            .unwrap_or_default();
        for record in &read {
            next.insert((topic.clone(), record.partition), record.offset + 1);
        }
        if !next.is_empty() {
            let mut tpl = rdkafka::TopicPartitionList::new();
            for ((topic, partition), offset) in &next {
                tpl.add_partition_offset(topic, *partition, rdkafka::Offset::Offset(*offset))
                    .unwrap();
            }
            self.consumer
                .commit(&tpl, CommitMode::Sync)
                .expect("committing what the reader processed");
        }
        read
    }
}
