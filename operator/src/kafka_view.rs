//! What the operator asks Kafka on every reconcile: the mirror group's positions on the source (for lag and
//! migration progress) and whether the target answers at all. Blocking librdkafka calls, each bounded by a
//! timeout: run [`ask`] on the blocking thread pool. A cluster that does not answer is an error naming the
//! field to check; its text is what the status and the Events show.

use std::time::Duration;

use kafka_mirror_clients::MirrorPlan;
use kafka_mirror_clients::broker_probe::{BrokerProbe, ProbeError};
use kafka_mirror_clients::client_config::KafkaClientConfig;
use kafka_mirror_clients::{group_sync, record_age};
use kafka_mirror_crds::TopicFilter;
use kafka_mirror_crds::consumer_groups::ConsumerGroupSync;
use kafka_mirror_crds::status::ConsumerGroupStatus;
use rdkafka::error::KafkaError;

use crate::lag::{Positions, UnmirroredSince, read_positions};

const TARGET_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the first records not yet mirrored are waited for (their age is shown, not acted on).
const HEAD_TIMEOUT: Duration = Duration::from_secs(3);

/// The answers of both clusters.
#[derive(Debug)]
pub struct KafkaView {
    pub positions: Result<Positions, SourceUnreachable>,
    pub target: Result<(), TargetUnreachable>,
    /// The timestamp of the first record not yet mirrored, for the partitions behind (the most behind first,
    /// up to [`record_age::MAX_PARTITIONS`]) that answered.
    pub unmirrored_since: UnmirroredSince,
    /// Only with `spec.consumerGroups`: the followed groups after this sync, or why they could not be synced.
    pub groups: Option<Result<Vec<ConsumerGroupStatus>, String>>,
}

/// The source's positions could not be read.
#[derive(Debug, thiserror::Error)]
#[error("spec.source.bootstrapServers {bootstrap_servers:?}: {source}")]
pub struct SourceUnreachable {
    pub bootstrap_servers: String,
    #[source]
    pub source: kafka_mirror_clients::Error,
}

/// The target did not answer a metadata request.
#[derive(Debug, thiserror::Error)]
#[error("spec.target.bootstrapServers {bootstrap_servers:?}: {source}")]
pub struct TargetUnreachable {
    pub bootstrap_servers: String,
    #[source]
    pub source: ProbeFailure,
}

#[derive(Debug, thiserror::Error)]
pub enum ProbeFailure {
    #[error("creating a client: {source}")]
    CreateClient { source: KafkaError },
    #[error("reading the cluster's metadata: {source}")]
    ReadMetadata { source: ProbeError },
}

/// Asks the source for the group's positions and the target for its metadata.
pub fn ask(plan: &MirrorPlan) -> KafkaView {
    let positions =
        read_positions(&plan.source_admin, &plan.group_id, &plan.filter).map_err(|source| {
            SourceUnreachable {
                bootstrap_servers: plan.spec.source.connection.bootstrap_servers.clone(),
                source,
            }
        });
    let target = probe(&plan.target_admin, "spec.target").map_err(|source| TargetUnreachable {
        bootstrap_servers: plan.spec.target.connection.bootstrap_servers.clone(),
        source,
    });
    let unmirrored_since = positions
        .as_ref()
        .map(|positions| unmirrored_since(plan, positions))
        .unwrap_or_default();
    let groups = plan
        .spec
        .consumer_groups
        .as_ref()
        .map(|groups| sync_groups(plan, groups, &positions));
    KafkaView {
        positions,
        target,
        unmirrored_since,
        groups,
    }
}

/// Reads the first record not yet mirrored of the partitions behind, for its timestamp. Best effort: a source
/// that answered the positions a moment ago is asked; what does not answer within a few seconds stays undated.
fn unmirrored_since(plan: &MirrorPlan, positions: &Positions) -> UnmirroredSince {
    let mut behind: Vec<_> = positions
        .iter()
        .filter(|(_, p)| p.lag() > 0)
        .map(|(key, p)| (p.lag(), key.clone(), p.next_to_mirror()))
        .collect();
    behind.sort_by_key(|b| std::cmp::Reverse(b.0));
    let heads: Vec<_> = behind
        .into_iter()
        .take(record_age::MAX_PARTITIONS)
        .map(|(_, key, offset)| (key, offset))
        .collect();
    record_age::head_timestamps(&plan.source_admin, &heads, HEAD_TIMEOUT).unwrap_or_else(|error| {
        tracing::debug!(%error, "the first records not yet mirrored could not be read");
        UnmirroredSince::new()
    })
}

/// `spec.consumerGroups`, once the source answered: translated and committed on the target (see
/// [`group_sync`]).
fn sync_groups(
    plan: &MirrorPlan,
    groups: &ConsumerGroupSync,
    positions: &Result<Positions, SourceUnreachable>,
) -> Result<Vec<ConsumerGroupStatus>, String> {
    let positions = positions.as_ref().map_err(|e| {
        format!("the groups cannot be synced while the source does not answer: {e}")
    })?;
    let filter = TopicFilter::of_field("spec.consumerGroups", &groups.include, &groups.exclude)
        .map_err(|errors| format!("{errors:?}"))?;
    let started = std::time::Instant::now();
    match group_sync::sync(plan, &filter, positions) {
        Ok(Ok(groups)) => {
            tracing::info!(
                mirror = plan.name,
                groups = groups.len(),
                missed = groups.iter().map(|g| g.missed).sum::<i64>(),
                re_read = groups.iter().map(|g| g.re_read).sum::<i64>(),
                elapsed_ms = started.elapsed().as_millis() as u64,
                "synced the consumer groups to the target"
            );
            Ok(groups)
        }
        Ok(Err(why)) => Err(format!(
            "reading the offset maps from spec.target.bootstrapServers {:?}: {why}",
            plan.spec.target.connection.bootstrap_servers
        )),
        Err(e) => Err(format!("syncing the consumer groups: {e}")),
    }
}

/// One metadata request: proves the brokers are reachable and the credentials accepted, or says why not.
fn probe(config: &KafkaClientConfig, prefix: &str) -> Result<(), ProbeFailure> {
    let client =
        BrokerProbe::new(config, prefix).map_err(|source| ProbeFailure::CreateClient { source })?;
    client
        .metadata(None, TARGET_TIMEOUT)
        .map(|_| ())
        .map_err(|source| ProbeFailure::ReadMetadata { source })
}
