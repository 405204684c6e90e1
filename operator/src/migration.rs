//! `mode: migrate`: the operator records every mirrored partition's high watermark when the migration starts
//! and calls it complete when the mirror group's committed offsets reached all of them. The record lives in
//! the ConfigMap `<name>-migration` (owned by the mirror), not in the status: it holds one offset per
//! partition, and the status stays small. Pure: positions in, record and progress out.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde::{Deserialize, Serialize};

use crate::lag::Positions;

/// Key of the record in the ConfigMap.
pub const END_OFFSETS_KEY: &str = "end-offsets.json";

/// What the operator records when a migration starts: the offsets it copies up to, by topic and partition
/// index. (The worker keeps end offsets of its own; this record is the operator's.)
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MigrationRecord {
    pub started_at: Time,
    pub topics: BTreeMap<String, Vec<i64>>,
}

/// How far a migration is.
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    pub started_at: Time,
    /// Records between the committed offsets and the recorded end offsets.
    pub remaining: i64,
    pub completed: bool,
}

impl MigrationRecord {
    /// The high watermark of every partition in `positions`, now.
    pub fn at_start(positions: &Positions, now: Time) -> Self {
        let mut topics: BTreeMap<String, Vec<i64>> = BTreeMap::new();
        for ((topic, partition), position) in positions {
            let offsets = topics.entry(topic.clone()).or_default();
            let index = *partition as usize;
            if offsets.len() <= index {
                offsets.resize(index + 1, 0);
            }
            offsets[index] = position.high;
        }
        Self {
            started_at: now,
            topics,
        }
    }

    /// Progress of the mirror group towards the recorded offsets. A recorded partition that no longer exists
    /// (its topic was deleted) has nothing left to copy; partitions added after the start are not part of
    /// the migration.
    pub fn progress(&self, positions: &Positions) -> Progress {
        let mut remaining = 0;
        for (topic, offsets) in &self.topics {
            for (partition, end) in offsets.iter().enumerate() {
                if let Some(position) = positions.get(&(topic.clone(), partition as i32)) {
                    remaining += (end - position.next_to_mirror()).max(0);
                }
            }
        }
        Progress {
            started_at: self.started_at.clone(),
            remaining,
            completed: remaining == 0,
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("offsets and a timestamp always serialize")
    }

    /// The record in a ConfigMap read back from the API server.
    pub fn from_config_map(config_map: &ConfigMap) -> Result<Self, UnreadableRecord> {
        let name = config_map
            .metadata
            .name
            .as_deref()
            .unwrap_or("?")
            .to_string();
        let json = config_map
            .data
            .as_ref()
            .and_then(|data| data.get(END_OFFSETS_KEY))
            .ok_or_else(|| UnreadableRecord::MissingKey { name: name.clone() })?;
        serde_json::from_str(json).map_err(|source| UnreadableRecord::Damaged { name, source })
    }
}

/// A migration record ConfigMap that does not hold a record: it is recorded anew.
#[derive(Debug, thiserror::Error)]
pub enum UnreadableRecord {
    #[error("ConfigMap {name} has no key {END_OFFSETS_KEY}")]
    MissingKey { name: String },
    #[error(
        "ConfigMap {name} key {END_OFFSETS_KEY}: {source}; delete the ConfigMap to record the end offsets again"
    )]
    Damaged {
        name: String,
        source: serde_json::Error,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_mirror_clients::positions::PartitionPosition;

    fn time(seconds: i64) -> Time {
        Time(k8s_openapi::jiff::Timestamp::from_second(seconds).unwrap())
    }

    fn positions(entries: &[(&str, i32, i64, i64, Option<i64>)]) -> Positions {
        entries
            .iter()
            .map(|(topic, partition, low, high, committed)| {
                (
                    (topic.to_string(), *partition),
                    PartitionPosition {
                        low: *low,
                        high: *high,
                        committed: *committed,
                    },
                )
            })
            .collect()
    }

    #[test]
    fn the_record_holds_each_partitions_high_watermark_and_round_trips() {
        let start = positions(&[
            ("orders", 0, 0, 100, None),
            ("orders", 1, 0, 40, Some(10)),
            ("payments", 0, 5, 7, None),
        ]);
        let record = MigrationRecord::at_start(&start, time(1000));
        assert_eq!(record.topics["orders"], vec![100, 40]);
        assert_eq!(record.topics["payments"], vec![7]);
        let config_map = ConfigMap {
            data: Some(BTreeMap::from([(
                END_OFFSETS_KEY.to_string(),
                record.to_json(),
            )])),
            ..ConfigMap::default()
        };
        assert_eq!(
            MigrationRecord::from_config_map(&config_map).unwrap(),
            record
        );
    }

    #[test]
    fn progress_counts_to_the_recorded_offsets_not_to_new_records() {
        let record = MigrationRecord::at_start(
            &positions(&[("orders", 0, 0, 100, None), ("orders", 1, 0, 40, None)]),
            time(1000),
        );
        // 60 left on partition 0; partition 1 is done although 500 new records arrived after the start.
        let now = positions(&[
            ("orders", 0, 0, 150, Some(40)),
            ("orders", 1, 0, 540, Some(40)),
        ]);
        let progress = record.progress(&now);
        assert_eq!((progress.remaining, progress.completed), (60, false));
        let done = positions(&[
            ("orders", 0, 0, 150, Some(100)),
            ("orders", 1, 0, 540, Some(41)),
        ]);
        assert!(record.progress(&done).completed);
    }

    #[test]
    fn records_deleted_by_retention_are_not_remaining() {
        let record = MigrationRecord::at_start(&positions(&[("orders", 0, 0, 100, None)]), time(1));
        let now = positions(&[("orders", 0, 100, 100, None)]);
        assert!(record.progress(&now).completed);
    }

    #[test]
    fn a_damaged_record_says_what_to_do() {
        let config_map = ConfigMap {
            metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                name: Some("m-migration".into()),
                ..Default::default()
            },
            data: Some(BTreeMap::from([(
                END_OFFSETS_KEY.to_string(),
                "{".to_string(),
            )])),
            ..ConfigMap::default()
        };
        let error = MigrationRecord::from_config_map(&config_map)
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("ConfigMap m-migration key end-offsets.json"),
            "{error}"
        );
        assert!(error.contains("delete the ConfigMap"), "{error}");
    }
}
