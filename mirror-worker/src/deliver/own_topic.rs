//! The mirror's own topics on the target (the exactly-once transaction groups' positions, the offset syncs):
//! compacted, keyed by source partition.

use std::time::Duration;

use kafka_mirror_clients::MirrorPlan;
use kafka_mirror_clients::host_aliases::ResolvingContext;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::error::RDKafkaErrorCode;
use tracing::info;

use crate::{Error, Result};

/// Creates the topic `name` on the target if it is missing: `partitions` partitions, compacted, segments rolled
/// every `segment` so a reader reads little more than the latest record of each key (compaction only cleans
/// rolled segments). `purpose` starts the error messages, e.g. "delivery exactlyOnce stores positions in".
/// Returns the partition count the topic has (an existing topic keeps its own).
pub async fn ensure(
    plan: &MirrorPlan,
    name: &str,
    partitions: i32,
    purpose: &str,
    segment: Duration,
) -> Result<i32> {
    if name.len() > 249 {
        return Err(Error::Fatal(format!(
            "{purpose} topic {name}, longer than the 249 characters Kafka allows: set a shorter \
             spec.source.groupId"
        )));
    }
    let admin: AdminClient<ResolvingContext> =
        plan.target_admin.create().map_err(|source| Error::Kafka {
            what: "creating the target admin client".into(),
            source,
        })?;
    let replication = plan.spec.topics.create.replication_factor.unwrap_or(-1);
    let segment_ms = segment.as_millis().to_string();
    let topic = NewTopic::new(name, partitions, TopicReplication::Fixed(replication))
        .set("cleanup.policy", "compact")
        .set("segment.ms", &segment_ms)
        .set("min.compaction.lag.ms", "0");
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let results = admin
        .create_topics([&topic], &options)
        .await
        .map_err(|source| Error::Kafka {
            what: format!("creating the topic {name} on the target"),
            source,
        })?;
    for result in results {
        match result {
            Ok(_) => info!(topic = name, "created the mirror's own topic on the target"),
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {
                return existing_partitions(&admin, name, purpose);
            }
            Err((_, code)) => {
                return Err(Error::Fatal(format!(
                    "{purpose} topic {name} on the target, which cannot be created: {code}"
                )));
            }
        }
    }
    Ok(partitions)
}

/// The partition count of the existing topic `name` (blocking, briefly: the engine runs on a multi-threaded
/// runtime).
fn existing_partitions(
    admin: &AdminClient<ResolvingContext>,
    name: &str,
    purpose: &str,
) -> Result<i32> {
    let metadata = admin
        .inner()
        .fetch_metadata(Some(name), Duration::from_secs(30))
        .map_err(|source| Error::Kafka {
            what: format!("reading the partitions of the topic {name} on the target"),
            source,
        })?;
    match metadata.topics().first() {
        Some(topic) if topic.error().is_none() && !topic.partitions().is_empty() => {
            Ok(topic.partitions().len() as i32)
        }
        _ => Err(Error::Fatal(format!(
            "{purpose} topic {name} on the target, which exists but whose partitions cannot be read"
        ))),
    }
}
