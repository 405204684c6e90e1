//! `delivery: exactlyOnce`: which transaction groups (see `deliver::transactions`) a stream owns. Each stream
//! is a member of the consumer group `<groupId>.transactions` on the target, subscribed to the transactions
//! topic, whose partitions are the transaction groups: the partitions it is assigned are the groups it owns.
//! It reads none of their records (they are the positions, read at a takeover); the assignment is all it is
//! for. The stream then assigns itself the source partitions of its groups, so no group is ever split between
//! two writers, which librdkafka's own assignors could not promise (they deal out source partitions one by one).
//!
//! Its rebalance callback runs on the stream's thread (the stream polls it), so a revoked group's transaction
//! commits, and its source partitions are drained and committed, before the revoke completes and the next
//! owner's `initTransactions` could abort it.

use std::sync::Arc;
use std::time::Duration;

use kafka_mirror_clients::client_config::KafkaClientConfig;
use kafka_mirror_clients::host_aliases::HostAliases;
use rdkafka::TopicPartitionList;
use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaRespErr;
use tracing::{debug, info, warn};

use super::consumer_context::StreamContext;
use crate::deliver::transactions::{Transactions, transaction_groups_group};
use crate::{Error, Result};

/// The session settings the coordination consumer takes from the source consumer's, so a stream that stops
/// answering loses its transaction groups as soon as it would lose source partitions.
const SESSION_SETTINGS: [&str; 3] = [
    "session.timeout.ms",
    "heartbeat.interval.ms",
    "max.poll.interval.ms",
];

/// A stream's membership in the group that assigns the transaction groups.
pub struct TransactionGroups {
    consumer: BaseConsumer<GroupsContext>,
    topic: String,
}

struct GroupsContext {
    /// The stream's source consumer, which the owned groups' source partitions are assigned to.
    source: Arc<BaseConsumer<StreamContext>>,
    host_aliases: HostAliases,
}

impl TransactionGroups {
    /// The membership of stream `source`, not joined yet (see [`Self::join`]); `source_config` is the source
    /// consumer's settings.
    pub fn new(
        source: Arc<BaseConsumer<StreamContext>>,
        transactions: &Transactions,
        source_config: &KafkaClientConfig,
        group_id: &str,
    ) -> Result<Self> {
        let stream = source.context().stream;
        let mut config = transactions.target().clone();
        let client_id = source_config.get("client.id").unwrap_or("kafka-mirror");
        config
            .set("client.id", format!("{client_id}-{stream}-transactions"))
            .set("group.id", transaction_groups_group(group_id))
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            // A group moves only when its owner changes; the others keep committing through a rebalance.
            .set("partition.assignment.strategy", "cooperative-sticky");
        for key in SESSION_SETTINGS {
            if let Some(value) = source_config.get(key) {
                config.set(key, value);
            }
        }
        let context = GroupsContext {
            host_aliases: config.host_aliases().clone(),
            source,
        };
        let consumer = config
            .create_with_context(context)
            .map_err(|source| Error::Kafka {
                what: format!("creating the transaction groups' consumer of stream {stream}"),
                source,
            })?;
        Ok(Self {
            consumer,
            topic: transactions.topic().to_string(),
        })
    }

    /// Joins the group: transaction groups arrive with the rebalances [`Self::poll`] serves.
    pub fn join(&self) -> Result<()> {
        let context = self.consumer.context().source.context();
        info!(mirror = %context.mirror, stream = context.stream, topic = self.topic, "joining the transaction groups' consumer group");
        self.consumer
            .subscribe(&[&self.topic])
            .map_err(|source| Error::Kafka {
                what: format!("subscribing to {}", self.topic),
                source,
            })
    }

    /// Serves the group's heartbeats and rebalances (taking groups over, letting them go) on this thread.
    pub fn poll(&self) {
        match self.consumer.poll(Duration::ZERO) {
            None | Some(Ok(_)) | Some(Err(KafkaError::PartitionEOF(_))) => {}
            Some(Err(error)) => {
                debug!(%error, "the transaction groups' consumer reported an error")
            }
        }
    }
}

/// The transaction groups (partitions of the transactions topic) in `tpl`.
fn groups(tpl: &TopicPartitionList) -> Vec<i32> {
    tpl.elements().iter().map(|e| e.partition()).collect()
}

impl ClientContext for GroupsContext {
    const ENABLE_RESOLVE_BROKER: bool = true;

    fn resolve_broker(&self, host: &str) -> Option<std::net::IpAddr> {
        self.host_aliases.resolve(host)
    }

    fn error(&self, error: KafkaError, reason: &str) {
        let stream = self.source.context().stream;
        warn!(cluster = "target", stream, %error, reason, "librdkafka reported an error (transaction groups' consumer)");
    }
}

impl ConsumerContext for GroupsContext {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        let context = self.source.context();
        let groups = groups(tpl);
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                if let Err(error) = consumer.incremental_assign(tpl) {
                    warn!(stream = context.stream, %error, "applying the transaction groups' assignment failed");
                }
                // Their records are positions, read by the takeover: nothing to fetch.
                let _ = consumer.pause(tpl);
                context.take_over_groups(&self.source, &groups);
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                context.release_groups(&self.source, &groups);
                if let Err(error) = consumer.incremental_unassign(tpl) {
                    warn!(stream = context.stream, %error, "applying the transaction groups' revoke failed");
                }
            }
            other => {
                warn!(stream = context.stream, error = %KafkaError::Rebalance(other.into()), "transaction groups' rebalance error");
            }
        }
    }
}
