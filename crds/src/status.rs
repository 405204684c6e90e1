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
}

/// Lag over all mirrored partitions.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LagSummary {
    /// Records on the source not yet mirrored.
    pub total: i64,
    /// The largest lag of any one partition.
    pub max_partition: i64,
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
