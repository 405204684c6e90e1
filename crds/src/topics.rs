//! `spec.topics`: which source topics are mirrored and what they are called on the target.

use std::collections::BTreeMap;

use kube::KubeSchema;
use serde::{Deserialize, Serialize};

/// The placeholder `topics.rename` replaces with the source topic's name.
pub const TOPIC_PLACEHOLDER: &str = "{topic}";

/// Which source topics are mirrored, under which names.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TopicSelection {
    /// Regular expressions (Rust `regex` syntax, matched against the whole topic name) of the topics to
    /// mirror, e.g. `testtopic` or `orders\..*` (MirrorMaker's `--whitelist`). Topics created later that match
    /// are picked up without a restart. Internal topics (names starting with `__`) and kafka-mirror's own
    /// (`kafka-mirror.` followed by their purpose and a group id) are never mirrored.
    #[schemars(length(min = 1, max = 100))]
    #[x_kube(validation = Rule::new("self.all(p, p.size() > 0)").message("topics.include must not contain an empty pattern"))]
    pub include: Vec<String>,

    /// Regular expressions of topics to leave out even when `include` matches them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 100))]
    pub exclude: Vec<String>,

    /// Name of the target topic; `{topic}` stands for the source topic's name, e.g. `primary.{topic}`.
    #[serde(default = "default_rename")]
    #[schemars(length(min = 7, max = 249))]
    #[x_kube(validation = Rule::new("self.contains('{topic}')").message("topics.rename must contain {topic}, or every source topic would be written into one target topic"))]
    pub rename: String,

    /// How missing target topics are created.
    #[serde(default)]
    pub create: TopicCreation,

    /// How often, in seconds, the source's topic list is read to find new matching topics and topics whose
    /// partition count grew.
    #[serde(default = "default_refresh_seconds")]
    #[schemars(range(min = 1, max = 3600))]
    pub refresh_interval_seconds: i32,

    /// How target topics follow their source topics, so that the target stays a usable replica.
    #[serde(default)]
    pub sync: TopicSync,
}

/// The topic configs `topics.sync.configs` copies from each source topic to its target topic: the ones that
/// decide what a consumer of the replica finds and what a producer failing over to it may write.
/// `message.timestamp.type` is not among them: `LogAppendTime` on the target would replace the source
/// timestamps the mirror keeps.
pub const SYNCED_CONFIGS: &[&str] = &[
    "cleanup.policy",
    "compression.type",
    "delete.retention.ms",
    "max.compaction.lag.ms",
    "max.message.bytes",
    "min.cleanable.dirty.ratio",
    "min.compaction.lag.ms",
    "retention.bytes",
    "retention.ms",
    "segment.bytes",
    "segment.ms",
];

/// How target topics follow their source topics.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TopicSync {
    /// Add partitions to a target topic when its source topic gets more (checked every
    /// `refreshIntervalSeconds`). With `partitioning: preserve`, whenever the target topic has fewer than the
    /// source topic (the new source partitions need theirs; their records wait until they exist). With `key`,
    /// when the worker sees the source topic grow while the target topic has the source's count: keys then
    /// land where the Java producer puts them with the new count, as on the source since it grew, and a
    /// target topic created with another count on purpose keeps it. Kafka cannot remove partitions.
    #[serde(default = "default_true")]
    pub partitions: bool,
    /// Copy these configs of each source topic, where the topic itself sets them (not the broker's defaults),
    /// to its target topic: cleanup.policy, compression.type, delete.retention.ms, max.compaction.lag.ms,
    /// max.message.bytes, min.cleanable.dirty.ratio, min.compaction.lag.ms, retention.bytes, retention.ms,
    /// segment.bytes, segment.ms. Right after the mirror creates a target topic and then every
    /// `intervalSeconds`. A config the source topic does not set, and one given in `topics.create.config`, is
    /// left as the target topic has it; so are the target topic's other configs.
    #[serde(default = "default_true")]
    pub configs: bool,
    /// Configs of the list above not to copy, e.g. `retention.ms` to keep the target's own retention.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 20))]
    pub exclude_configs: Vec<String>,
    /// Seconds between two copies of the configs.
    #[serde(default = "default_config_sync_seconds")]
    #[schemars(range(min = 1, max = 86400))]
    pub interval_seconds: i32,
}

impl Default for TopicSync {
    fn default() -> Self {
        Self {
            partitions: true,
            configs: true,
            exclude_configs: Vec::new(),
            interval_seconds: default_config_sync_seconds(),
        }
    }
}

impl TopicSync {
    /// The configs copied: the synced list without the excluded ones and without the ones `created` (the
    /// configs of `topics.create.config`) sets; none when config sync is off.
    pub fn configs<'a>(
        &'a self,
        created: &'a BTreeMap<String, String>,
    ) -> impl Iterator<Item = &'static str> + 'a {
        SYNCED_CONFIGS.iter().copied().filter(move |c| {
            self.configs
                && !self.exclude_configs.iter().any(|e| e == c)
                && !created.contains_key(*c)
        })
    }
}

/// Creation of missing target topics (HDInsight disables `auto.create.topics.enable` by default).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TopicCreation {
    /// Create a missing target topic before the first record is written to it, with the source topic's
    /// partition count. `false`: the topic must exist, and the mirror reports it when it does not.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Replication factor of created topics. Absent: the target cluster's `default.replication.factor`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 32))]
    pub replication_factor: Option<i32>,
    /// Topic configs for created topics, e.g. `retention.ms: "604800000"`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub config: BTreeMap<String, String>,
}

impl Default for TopicCreation {
    fn default() -> Self {
        Self {
            enabled: true,
            replication_factor: None,
            config: BTreeMap::new(),
        }
    }
}

impl TopicSelection {
    /// The target topic name for a source topic.
    pub fn target_name(&self, source_topic: &str) -> String {
        self.rename.replace(TOPIC_PLACEHOLDER, source_topic)
    }
}

fn default_rename() -> String {
    TOPIC_PLACEHOLDER.to_string()
}

fn default_refresh_seconds() -> i32 {
    30
}

fn default_true() -> bool {
    true
}

/// Ten minutes, MirrorMaker 2's default for its config sync (`sync.topic.configs.interval.seconds`).
fn default_config_sync_seconds() -> i32 {
    600
}
