//! `spec.consumerGroups`: the source's consumer groups whose positions follow to the target, so their
//! consumers can fail over to it without losing their place.

use kube::KubeSchema;
use serde::{Deserialize, Serialize};

/// Consumer groups of the source whose committed offsets the operator translates and commits to the same
/// group on the target.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ConsumerGroupSync {
    /// Regular expressions (Rust `regex` syntax, matched against the whole group id) of the source's consumer
    /// groups to follow, e.g. `billing` or `orders-.*`. The mirror's own group never is.
    #[schemars(length(min = 1, max = 100))]
    #[x_kube(validation = Rule::new("self.all(p, p.size() > 0)").message("consumerGroups.include must not contain an empty pattern"))]
    pub include: Vec<String>,

    /// Regular expressions of groups to leave out even when `include` matches them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 100))]
    pub exclude: Vec<String>,

    /// Seconds between two syncs. Each reads every matching group's committed offsets on the mirrored topics
    /// of the source, translates them through the offset map the workers publish (topic
    /// `kafka-mirror.offset-syncs.<groupId>` on the target) and commits them to the same group on the target:
    /// only forwards, and never while the group has members on the target. What a consumer would read twice
    /// grows with the interval (it keeps consuming on the source meanwhile).
    #[serde(default = "default_interval_seconds")]
    #[schemars(range(min = 1, max = 3600))]
    pub interval_seconds: i32,
}

/// MirrorMaker 2 syncs group offsets every 60 s (`sync.group.offsets.interval.seconds`); a shorter default
/// halves what a failed-over consumer reads twice.
fn default_interval_seconds() -> i32 {
    30
}
