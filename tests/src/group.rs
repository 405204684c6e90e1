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
