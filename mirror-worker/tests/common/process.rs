//! The mirror's state as the clusters record it (records on the target, the group's commits on the source),
//! for the suites that run the worker as a process (the test kit's `Launch`).

use std::time::Duration;

use kafka_mirror_clients::positions::GroupPositions;
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};

/// Records on the target: the sum of the high watermarks of `partitions` partitions of `topic`.
pub fn target_records(bootstrap: &str, topic: &str, partitions: i32) -> i64 {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .unwrap();
    (0..partitions)
        .map(|p| {
            consumer
                .fetch_watermarks(topic, p, Duration::from_secs(5))
                .unwrap()
                .1
        })
        .sum()
}

/// The group's committed offsets on the source, summed over `partitions` partitions of `topic`.
pub fn committed(source: &str, group: &str, topic: &str, partitions: i32) -> i64 {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", source);
    let parts: Vec<_> = (0..partitions).map(|p| (topic.to_string(), p)).collect();
    GroupPositions::new(&config, group)
        .unwrap()
        .committed(&parts)
        .unwrap()
        .values()
        .map(|c| c.unwrap_or(0))
        .sum()
}
