//! The mirror's own topics on the target (the exactly-once positions, the offset syncs): one partition each,
//! compacted, keyed by source partition.

use std::time::Duration;

use kafka_mirror_clients::MirrorPlan;
use kafka_mirror_clients::host_aliases::ResolvingContext;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::error::RDKafkaErrorCode;
use tracing::info;

use crate::{Error, Result};

/// Creates the topic `name` on the target if it is missing: one partition, compacted, segments rolled every
/// `segment` so a reader reads little more than the latest record of each key (compaction only cleans rolled
/// segments). `purpose` starts the error messages, e.g. "delivery exactlyOnce stores positions in".
pub async fn ensure(plan: &MirrorPlan, name: &str, purpose: &str, segment: Duration) -> Result<()> {
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
    let topic = NewTopic::new(name, 1, TopicReplication::Fixed(replication))
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
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((_, code)) => {
                return Err(Error::Fatal(format!(
                    "{purpose} topic {name} on the target, which cannot be created: {code}"
                )));
            }
        }
    }
    Ok(())
}
