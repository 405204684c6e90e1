//! `KafkaMirror.spec`: what a user writes by hand. Every doc comment here becomes `kubectl explain` text.

use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use crate::cluster::{SourceCluster, TargetCluster};
use crate::status::KafkaMirrorStatus;
use crate::template::WorkerTemplate;
use crate::topics::TopicSelection;

/// Mirrors Kafka topics from a source cluster to a target cluster, like Apache Kafka's MirrorMaker
/// (`--consumer.config`, `--producer.config`, `--whitelist`, `--num.streams`), declared as one resource.
// Each `printcolumn(...)` repeats the keys `type_` and `priority`, which clippy takes for duplicated attributes.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "kafkamirror.io",
    version = "v1alpha1",
    kind = "KafkaMirror",
    plural = "kafkamirrors",
    shortname = "kmirror",
    category = "kafka",
    namespaced,
    status = "KafkaMirrorStatus",
    scale(
        spec_replicas_path = ".spec.replicas",
        status_replicas_path = ".status.replicas",
        label_selector_path = ".status.selector"
    ),
    printcolumn(
        name = "Source",
        type_ = "string",
        json_path = ".spec.source.bootstrapServers"
    ),
    printcolumn(
        name = "Target",
        type_ = "string",
        json_path = ".spec.target.bootstrapServers"
    ),
    printcolumn(name = "Topics", type_ = "integer", json_path = ".status.topicCount"),
    printcolumn(name = "Lag", type_ = "integer", json_path = ".status.lag.total"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Reason",
        type_ = "string",
        priority = 1,
        json_path = ".status.conditions[?(@.type==\"Ready\")].reason"
    ),
    printcolumn(
        name = "Mode",
        type_ = "string",
        priority = 1,
        json_path = ".spec.mode"
    ),
    printcolumn(
        name = "Delivery",
        type_ = "string",
        priority = 1,
        json_path = ".spec.delivery"
    ),
    printcolumn(
        name = "Replicas",
        type_ = "integer",
        priority = 1,
        json_path = ".status.readyReplicas"
    ),
    printcolumn(
        name = "Lag-Seconds",
        type_ = "integer",
        priority = 1,
        json_path = ".status.lag.seconds"
    ),
    printcolumn(
        name = "Failover",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"FailoverReady\")].status"
    ),
    printcolumn(
        name = "Missed",
        type_ = "integer",
        priority = 1,
        json_path = ".status.failover.missed"
    ),
    printcolumn(
        name = "Re-read",
        type_ = "integer",
        priority = 1,
        json_path = ".status.failover.reRead"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[x_kube(validation = Rule::new(
    "!(has(self.delivery) && self.delivery == 'exactlyOnce' && has(self.mode) && self.mode == 'migrate')"
).message("delivery exactlyOnce is not available with mode migrate yet: a migration's completion is judged on the source group's commits; use delivery atLeastOnce for a migration"))]
#[x_kube(validation = Rule::new(
    "!(self.source.bootstrapServers == self.target.bootstrapServers && self.topics.rename == '{topic}')"
).message("source and target are the same cluster and topics.rename is '{topic}': every topic would be mirrored onto itself; set topics.rename, e.g. 'mirror.{topic}'"))]
#[serde(rename_all = "camelCase")]
pub struct KafkaMirrorSpec {
    /// The cluster records are read from (MirrorMaker's `--consumer.config`).
    pub source: SourceCluster,

    /// The cluster records are written to (MirrorMaker's `--producer.config`).
    pub target: TargetCluster,

    /// Which source topics are mirrored, under which names, and how missing target topics are created
    /// (MirrorMaker's `--whitelist`).
    pub topics: TopicSelection,

    /// How a record's target partition is chosen. `key` (default): the Java client's murmur2 hash of the
    /// key, so consumers of the target see what a Java producer would have written and per-key order holds
    /// even when partition counts differ; records without a key keep their source partition's order.
    /// `preserve`: the same partition number as on the source (the target topic needs at least as many
    /// partitions).
    #[serde(default)]
    pub partitioning: Partitioning,

    /// Delivery guarantee. `atLeastOnce`: a source offset is committed only after the target acknowledged
    /// every earlier record of its partition, so a crash or restart can duplicate records but never loses one.
    /// `exactlyOnce`: records are written to the target in transactions that also hold the source positions
    /// (topic `kafka-mirror.transactions.<groupId>` on the target); consumers of the target that set
    /// `isolation.level=read_committed` see every source record once. Not with `mode: migrate`.
    #[serde(default)]
    pub delivery: Delivery,

    /// `continuous` (default): mirror until stopped, picking up new matching topics.
    /// `migrate`: copy every matching partition up to the high watermark seen at start, then finish.
    #[serde(default)]
    pub mode: Mode,

    /// Number of worker pods. All of them join one consumer group on the source and share the partitions.
    /// Changed by `kubectl scale kafkamirror/NAME --replicas=N`.
    #[serde(default = "default_replicas")]
    #[schemars(range(min = 0, max = 1000))]
    pub replicas: i32,

    /// Consumer instances per worker pod (MirrorMaker's `--num.streams`). Each one takes a share of the
    /// partitions; more streams than partitions leaves streams idle.
    #[serde(default = "default_num_streams")]
    #[schemars(range(min = 1, max = 64))]
    pub num_streams: i32,

    /// Stops mirroring without deleting anything: the workers are scaled to zero and the consumer group keeps
    /// its committed positions, so resuming continues where it stopped.
    #[serde(default)]
    pub paused: bool,

    /// Active-active without loops. Every mirrored record that has no `kafka-mirror.origin` header gets one,
    /// holding the source cluster's id, and a source record whose `kafka-mirror.origin` is the target cluster's
    /// id is not mirrored (it came from there; its offset is committed all the same). Two mirrors of opposite
    /// directions between the same clusters, both with `markOrigin: true`, then copy each record once instead
    /// of back and forth forever; a record keeps the origin it already has, so a ring A → B → C → A stops at A
    /// too. Off by default: the copies then carry exactly the source's headers, and a mirror copies every
    /// record, including ones that came from its target (what failing back to a source cluster rebuilt empty
    /// needs).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub mark_origin: bool,

    /// Consumer groups of the source that follow to the target, for disaster recovery: their committed
    /// offsets are translated to the target's offsets (which differ: the target topic has its own history)
    /// and committed to the same group on the target, so a consumer pointed at the target resumes without
    /// missing a record. The status shows, per group, how many records a consumer failing over now would read
    /// twice and miss, and the condition `FailoverReady`. With `partitioning: preserve` a group's offsets
    /// translate one to one, exactly for positions the offset map holds. With `key` a target partition holds
    /// records of several source partitions: each resumes where no record the group has not read lies before
    /// it, and the status counts what it would read again (at-least-once only). Absent: no group follows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consumer_groups: Option<crate::consumer_groups::ConsumerGroupSync>,

    /// Pod settings for the workers: image, resources, scheduling, annotations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<WorkerTemplate>,
}

/// The header `markOrigin` adds to mirrored records: the id of the cluster the record was first written to.
pub const ORIGIN_HEADER: &str = "kafka-mirror.origin";

/// How a record's target partition is chosen.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema,
)]
#[serde(rename_all = "camelCase")]
pub enum Partitioning {
    /// murmur2 of the key, exactly as the Java producer's default partitioner.
    #[default]
    Key,
    /// The source partition number.
    Preserve,
}

/// Delivery guarantee between source and target.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema,
)]
#[serde(rename_all = "camelCase")]
pub enum Delivery {
    /// No record is lost; a restart may write a record twice.
    #[default]
    AtLeastOnce,
    /// No record is lost, and a `read_committed` consumer of the target sees each one once: transactions on the
    /// target, fenced per transaction group of source partitions, holding the records and their source positions
    /// together.
    ExactlyOnce,
}

/// Whether the mirror runs forever or copies what exists and finishes.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema,
)]
#[serde(rename_all = "camelCase")]
pub enum Mode {
    /// Mirror until stopped.
    #[default]
    Continuous,
    /// Copy up to the high watermarks seen at start, then finish.
    Migrate,
}

impl KafkaMirrorSpec {
    /// Every Secret key the mirror reads, with the document path of the field that names it.
    pub fn secret_refs(&self) -> Vec<(String, &crate::cluster::SecretKeyRef)> {
        let mut refs = self.source.connection.secret_refs("spec.source");
        refs.extend(self.target.connection.secret_refs("spec.target"));
        refs
    }
}

fn default_replicas() -> i32 {
    1
}

fn default_num_streams() -> i32 {
    1
}
