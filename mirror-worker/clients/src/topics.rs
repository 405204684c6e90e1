//! The topics of a cluster as a metadata answer lists them, and the source topics a mirror copies: one
//! definition for the worker's discovery and the operator's progress report.

use std::collections::BTreeMap;

use kafka_mirror_crds::TopicFilter;
use rdkafka::metadata::Metadata;

/// Partition count by topic name of every topic the cluster reported without error, internal topics included.
pub fn partition_counts(metadata: &Metadata) -> BTreeMap<String, i32> {
    metadata
        .topics()
        .iter()
        .filter(|t| t.error().is_none())
        .map(|t| (t.name().to_string(), t.partitions().len() as i32))
        .collect()
}

/// Partition counts of the source topics `filter` matches: what the mirror's workers subscribe to.
pub fn matching_topics(metadata: &Metadata, filter: &TopicFilter) -> BTreeMap<String, i32> {
    let mut topics = partition_counts(metadata);
    topics.retain(|topic, _| filter.matches(topic));
    topics
}
