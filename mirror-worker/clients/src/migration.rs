//! `mode: migrate`: the end offsets a migration copies up to, the one definition both sides use. The operator
//! records them once, when the migration starts, in the ConfigMap `<name>-migration` under the key
//! [`MIGRATION_FILE`], mounts that ConfigMap into the worker pods at
//! [`MIGRATION_DIR`](kafka_mirror_crds::worker_pod::MIGRATION_DIR) and passes the file with
//! `--migration-end`; the workers copy exactly up to them and the operator calls the migration complete when the
//! group's commits reached them ([`MigrationRecord::progress`], the one rule for both). `mirror-worker --config`
//! without `--migration-end` (no operator) records its own with [`MigrationRecord::at_start`] when it starts.
//!
//! The format, JSON: `{"startedAt": "<RFC 3339>", "topics": {"<topic>": [<end of partition 0>, ...]}}`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
pub use kafka_mirror_crds::worker_pod::MIGRATION_FILE;
use serde::{Deserialize, Serialize};

use crate::positions::{PartitionPosition, SourcePartition};

/// The end offsets of a migration: by topic, the first offset of each partition (by index) that is not part of
/// it (the partition's high watermark when the migration started), and when they were recorded.
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
    /// The high watermark of every partition in `positions`, recorded at `now`.
    pub fn at_start(positions: &BTreeMap<SourcePartition, PartitionPosition>, now: Time) -> Self {
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

    /// Where the copy of a partition ends: its recorded end offset, or 0 for a partition the record does not
    /// hold (a topic or partition created after the start is not part of the migration: none of it is copied).
    pub fn end(&self, topic: &str, partition: i32) -> i64 {
        usize::try_from(partition)
            .ok()
            .and_then(|index| self.topics.get(topic)?.get(index).copied())
            .unwrap_or(0)
    }

    /// Progress of the mirror group towards the recorded offsets. A recorded partition missing from
    /// `positions` (its topic was deleted, or no longer matches) has nothing left to copy; partitions added
    /// after the start are not part of the migration. Records retention deleted are not remaining.
    pub fn progress(&self, positions: &BTreeMap<SourcePartition, PartitionPosition>) -> Progress {
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

    /// The record in `json`, read from `origin` (a file or a ConfigMap key, for the error message). An error
    /// names `origin` and the field.
    pub fn from_json(json: &str, origin: &str) -> Result<Self, RecordError> {
        let invalid = |field: Option<String>, message: String| RecordError::Invalid {
            origin: origin.to_string(),
            field,
            message,
        };
        let mut deserializer = serde_json::Deserializer::from_str(json);
        let record: Self =
            serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
                let path = error.path().to_string();
                let field = (path != "." && path != "?").then_some(path);
                invalid(field, error.into_inner().to_string())
            })?;
        deserializer
            .end()
            .map_err(|error| invalid(None, error.to_string()))?;
        for (topic, offsets) in &record.topics {
            if let Some((index, end)) = offsets.iter().enumerate().find(|(_, end)| **end < 0) {
                return Err(invalid(
                    Some(format!("topics.{topic}[{index}]")),
                    format!("{end} is not an offset (an end offset is 0 or more)"),
                ));
            }
        }
        Ok(record)
    }

    /// The record in the file `path` (what the worker is given with `--migration-end`).
    pub fn read(path: &Path) -> Result<Self, RecordError> {
        let origin = path.display().to_string();
        let json = std::fs::read_to_string(path).map_err(|source| RecordError::Read {
            origin: origin.clone(),
            source,
        })?;
        Self::from_json(&json, &origin)
    }

    /// Partitions recorded and records between the low watermarks in `positions` and the recorded ends (what
    /// is left to copy from the start, for a log line).
    pub fn remaining_from_start(
        &self,
        positions: &BTreeMap<SourcePartition, PartitionPosition>,
    ) -> i64 {
        positions
            .iter()
            .map(|((topic, partition), position)| {
                (self.end(topic, *partition) - position.next_to_mirror()).max(0)
            })
            .sum()
    }
}

/// A migration record that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("cannot read the migration's end offsets {origin}: {source}")]
    Read {
        origin: String,
        source: std::io::Error,
    },
    #[error("{}", InvalidDisplay { origin, field: field.as_deref(), message })]
    Invalid {
        origin: String,
        /// Where in the record, as `topics.orders[1]`; `None` for the whole document (a syntax error).
        field: Option<String>,
        message: String,
    },
}

struct InvalidDisplay<'a> {
    origin: &'a str,
    field: Option<&'a str>,
    message: &'a str,
}

impl fmt::Display for InvalidDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid migration end offsets {}: ", self.origin)?;
        if let Some(field) = self.field {
            write!(f, "{field}: ")?;
        }
        f.write_str(self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn time(seconds: i64) -> Time {
        Time(k8s_openapi::jiff::Timestamp::from_second(seconds).unwrap())
    }

    fn positions(
        entries: &[(&str, i32, i64, i64, Option<i64>)],
    ) -> BTreeMap<SourcePartition, PartitionPosition> {
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
        let json = record.to_json();
        assert!(
            json.contains("\"startedAt\": \"1970-01-01T00:16:40Z\""),
            "{json}"
        );
        assert_eq!(MigrationRecord::from_json(&json, "f").unwrap(), record);
    }

    #[test]
    fn what_the_record_does_not_hold_is_not_part_of_the_migration() {
        let record = MigrationRecord::from_json(
            r#"{"startedAt":"2026-01-01T00:00:00Z","topics":{"orders":[100,40]}}"#,
            "f",
        )
        .unwrap();
        assert_eq!(record.end("orders", 0), 100);
        assert_eq!(record.end("orders", 1), 40);
        assert_eq!(record.end("orders", 2), 0, "a partition added later");
        assert_eq!(record.end("created-later", 0), 0, "a topic created later");
        assert_eq!(record.end("orders", -1), 0);
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
        assert_eq!(record.remaining_from_start(&now), 60);
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

    fn error(json: &str) -> String {
        MigrationRecord::from_json(json, "/m/end-offsets.json")
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn a_bad_record_is_refused_naming_the_file_and_the_field() {
        assert_eq!(
            error(r#"{"startedAt":"2026-01-01T00:00:00Z","topics":{"orders":[100,"x"]}}"#),
            "invalid migration end offsets /m/end-offsets.json: topics.orders[1]: invalid type: string \"x\", \
             expected i64 at line 1 column 63"
        );
        assert_eq!(
            error(r#"{"startedAt":"2026-01-01T00:00:00Z","topics":{"orders":[100,-3]}}"#),
            "invalid migration end offsets /m/end-offsets.json: topics.orders[1]: -3 is not an offset (an end \
             offset is 0 or more)"
        );
        let no_time = error(r#"{"topics":{}}"#);
        assert!(
            no_time.starts_with(
                "invalid migration end offsets /m/end-offsets.json: missing field `startedAt`"
            ),
            "{no_time}"
        );
        let bad_time = error(r#"{"startedAt":"yesterday","topics":{}}"#);
        assert!(
            bad_time.starts_with("invalid migration end offsets /m/end-offsets.json: startedAt: "),
            "{bad_time}"
        );
        let not_json = error("{");
        assert!(
            not_json.starts_with(
                "invalid migration end offsets /m/end-offsets.json: EOF while parsing"
            ),
            "{not_json}"
        );
        let trailing = error(r#"{"startedAt":"2026-01-01T00:00:00Z","topics":{}} x"#);
        assert!(
            trailing.starts_with(
                "invalid migration end offsets /m/end-offsets.json: trailing characters"
            ),
            "{trailing}"
        );
    }

    #[test]
    fn a_missing_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(MIGRATION_FILE);
        let error = MigrationRecord::read(&path).unwrap_err().to_string();
        assert!(
            error.starts_with(&format!(
                "cannot read the migration's end offsets {}: ",
                path.display()
            )),
            "{error}"
        );
        std::fs::write(
            &path,
            r#"{"startedAt":"2026-01-01T00:00:00Z","topics":{"t":[3]}}"#,
        )
        .unwrap();
        assert_eq!(MigrationRecord::read(&path).unwrap().end("t", 0), 3);
    }
}
