//! `KafkaMirror.status`: written by the operator, read by users, `kubectl get` and Argo CD.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::Delivery;

/// What the mirror is doing and how far behind it is. Lag is measured from Kafka (source high watermarks
/// minus the mirror group's committed offsets), so it stays true while every worker is down.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KafkaMirrorStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready`, `Progressing` and `Degraded`, each with a reason and a message.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// Worker pods that exist.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    /// Worker pods that are ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_replicas: Option<i32>,
    /// Label selector of the worker pods (for the scale subresource).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
    /// The delivery guarantee the workers run: `spec.delivery` of the last spec applied to them
    /// (`exactlyOnce`: consumers of the target must read with `isolation.level=read_committed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery: Option<Delivery>,
    /// Number of source topics being mirrored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic_count: Option<i32>,
    /// Per mirrored topic: partitions and lag. One entry per topic, never per partition, so the status stays
    /// small for mirrors of thousands of partitions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub topics: Vec<TopicStatus>,
    /// Lag over all mirrored partitions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lag: Option<LagSummary>,
    /// Only with `mode: migrate`: how far the one-time copy is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub migration: Option<MigrationStatus>,
    /// Only with `spec.consumerGroups`: whether the followed groups' consumers can switch to the target now
    /// (condition `FailoverReady` says the same in a sentence).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failover: Option<FailoverStatus>,
}

/// The followed consumer groups as of the last sync.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FailoverStatus {
    /// When the groups were last synced to the target. Older than `spec.consumerGroups.intervalSeconds` while
    /// the source does not answer (a disaster): the numbers are those of this time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub synced_at: Option<Time>,
    /// Records some followed group has not read yet that are not on the target (or lie before its committed
    /// offset there): what its consumers would miss if they switched now. 0 when switching is safe.
    pub missed: i64,
    /// Records some followed group would read a second time on the target, at most: read on the source after
    /// the offset its target group has.
    pub re_read: i64,
    /// Every followed group of the source, by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<ConsumerGroupStatus>,
}

/// One followed consumer group.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConsumerGroupStatus {
    /// The group id, the same on both clusters.
    pub name: String,
    /// Mirrored partitions the group has committed offsets for on the source.
    pub partitions: i32,
    /// Records a consumer of the group that switched to the target now would miss: not read yet and not on
    /// the target yet (replication lag), or before the group's offset on the target. 0 when it is safe.
    pub missed: i64,
    /// Records such a consumer would read a second time, at most.
    pub re_read: i64,
    /// Whether the group's offsets on the target are up to date, and why not.
    pub state: GroupSyncState,
    /// What to do when the state is not `Synced`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// How far a group's offsets on the target are.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum GroupSyncState {
    /// Every partition's offset on the target is the translation of the source's (or already past it).
    #[default]
    Synced,
    /// The group has members on the target: nothing is committed for it there (its consumers run there).
    ActiveOnTarget,
    /// The group's offsets on the target are past the translation of the source's in some partition: it
    /// consumed on the target (a failover happened), or it was reset to an earlier offset on the source (then a
    /// consumer switching would skip what lies between; the message says by how much). Never moved back.
    AheadOnTarget,
    /// Some partition's source offset has no translation yet (committed before the workers published the
    /// offset map, or nothing of the partition was copied yet); the message names them.
    NotTranslated,
}

/// One mirrored topic.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TopicStatus {
    /// Source topic name.
    pub name: String,
    /// Target topic name.
    pub target_name: String,
    /// Partitions of the source topic.
    pub partitions: i32,
    /// Records on the source not yet mirrored, summed over the topic's partitions.
    pub lag: i64,
    /// Age in seconds of the oldest record of the topic not yet mirrored (by its timestamp: the producer's
    /// clock, unless the topic uses `LogAppendTime`): what a failover now would lose, in time. 0 when nothing
    /// is behind; absent when the record could not be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lag_seconds: Option<i64>,
}

/// Lag over all mirrored partitions.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LagSummary {
    /// Records on the source not yet mirrored.
    pub total: i64,
    /// The largest lag of any one partition.
    pub max_partition: i64,
    /// Age in seconds of the oldest record not yet mirrored, over all topics: the recovery point (see
    /// `topics[].lagSeconds`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds: Option<i64>,
    /// When the lag was measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measured_at: Option<Time>,
}

/// A migration copies every mirrored partition up to the high watermark it had when the migration started
/// (recorded by the operator in the ConfigMap `<name>-migration`), then the workers are scaled to zero.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MigrationStatus {
    /// When the end offsets were recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Time>,
    /// Records between the mirror group's committed offsets and the recorded end offsets.
    pub remaining: i64,
    /// When every partition was first seen copied up to its recorded end offset. The workers stay at zero
    /// replicas from then on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<Time>,
}
