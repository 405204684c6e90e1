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
    /// are picked up without a restart. Internal topics (names starting with `__`) are never mirrored.
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

    /// How often, in seconds, the source's topic list is read to find new matching topics.
    #[serde(default = "default_refresh_seconds")]
    #[schemars(range(min = 1, max = 3600))]
    pub refresh_interval_seconds: i32,
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
