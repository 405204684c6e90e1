//! What a stream is configured with: the settings the engine hands each stream, and the source consumer
//! settings the mirror's guarantees depend on.

use std::sync::Arc;
use std::time::Duration;

use kafka_mirror_clients::client_config::KafkaClientConfig;
use kafka_mirror_crds::Partitioning;

use super::origin::Origin;
use super::shutdown_gate::ShutdownGate;
use crate::deliver::offset_syncs::OffsetSyncs;
use crate::deliver::transactions::Transactions;
use crate::engine::MigrationEnd;

/// Everything a stream needs, cloned per stream.
pub struct StreamSettings {
    pub stream: usize,
    /// The mirror's name, a field of every lifecycle log line.
    pub mirror: Arc<str>,
    pub consumer_config: KafkaClientConfig,
    pub group_id: String,
    pub partitioning: Partitioning,
    pub commit_interval: Duration,
    pub drain_timeout: Duration,
    pub migration_end: Option<Arc<MigrationEnd>>,
    /// Shared by the streams of one process, so all commit before any leaves the group.
    pub gate: Arc<ShutdownGate>,
    /// The target producer compresses: a record larger than a topic's limit may still fit once compressed.
    pub compresses: bool,
    /// `delivery: exactlyOnce`: this stream's transactional producers, one per owned transaction group, instead of
    /// the process's shared producer.
    pub transactions: Option<Arc<Transactions>>,
    /// `spec.markOrigin`: the two clusters' ids.
    pub origin: Option<Arc<Origin>>,
    /// `spec.consumerGroups`: the offset maps of the process's partitions.
    pub offset_syncs: Option<Arc<OffsetSyncs>>,
}

/// The source consumer settings of stream `stream`: `base` (connection, defaults, pass-through config) plus
/// what the mirror's guarantees depend on. Public so the benchmark's consume-alone limit uses the same.
pub fn consumer_config(
    mut config: KafkaClientConfig,
    stream: usize,
    group_id: &str,
    commit_interval: Duration,
) -> KafkaClientConfig {
    let client_id = config
        .get("client.id")
        .unwrap_or("kafka-mirror")
        .to_string();
    config
        .set("client.id", format!("{client_id}-{stream}"))
        .set("group.id", group_id)
        // The stream stores offsets only up to what the target acknowledged; librdkafka commits what is
        // stored every interval, on unassign and on close.
        .set("enable.auto.commit", "true")
        .set("enable.auto.offset.store", "false")
        .set(
            "auto.commit.interval.ms",
            commit_interval.as_millis().max(1).to_string(),
        )
        // A rebalance moves only the partitions that change owner; the others keep flowing.
        .set("partition.assignment.strategy", "cooperative-sticky")
        // Aborted transactions on the source are not mirrored.
        .set("isolation.level", "read_committed");
    config
}
