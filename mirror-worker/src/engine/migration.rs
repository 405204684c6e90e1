//! `mode: migrate`: where the copy ends, and whether the group's committed offsets on the source got there.
//! The end is a [`MigrationRecord`]: the one the operator recorded when the migration started (given with
//! `--migration-end`), so every worker, restarted or not, copies up to the same point; or, without one
//! (`mirror-worker --config` alone, no operator), the high watermarks this worker sees when it starts.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kafka_mirror_clients::MirrorPlan;
use kafka_mirror_clients::migration::MigrationRecord;
use kafka_mirror_clients::positions::{GroupPositions, PartitionPosition, SourcePartition};
use tracing::{info, warn};

use crate::Result;
use crate::discover::Route;

/// Where each source partition stops in `mode: migrate`: records from its end on are not mirrored. A partition
/// the migration does not hold (created after its start) ends at 0: none of it is copied.
#[derive(Debug, Default)]
pub(crate) struct MigrationEnd {
    ends: HashMap<SourcePartition, i64>,
}

impl MigrationEnd {
    pub(crate) fn of(&self, topic: &str, partition: i32) -> i64 {
        self.ends
            .get(&(topic.to_string(), partition))
            .copied()
            .unwrap_or(0)
    }
}

/// `mode: migrate`: the end offsets, and whether the group's commits reached them.
pub(super) struct Migration {
    positions: GroupPositions,
    record: MigrationRecord,
    pub(super) end: Arc<MigrationEnd>,
    /// The partitions' watermarks at start, with the group's committed offsets as last read.
    seen: BTreeMap<SourcePartition, PartitionPosition>,
    /// Partitions with records left to copy at start.
    to_copy: Vec<SourcePartition>,
    /// The group's commits had reached every end before this worker copied anything (a restart after the
    /// migration completed): nothing is copied.
    pub(super) complete_at_start: bool,
}

impl Migration {
    /// Reads where the group is on every routed partition and fixes the end: `recorded` when given, else the
    /// high watermarks now.
    pub(super) fn start(
        plan: &MirrorPlan,
        routes: &BTreeMap<String, Route>,
        recorded: Option<&MigrationRecord>,
    ) -> Result<Self> {
        let positions = GroupPositions::new(&plan.source_admin, &plan.group_id)?;
        let partitions: Vec<SourcePartition> = routes
            .iter()
            .flat_map(|(topic, route)| {
                (0..route.source_partitions).map(move |p| (topic.clone(), p))
            })
            .collect();
        let seen = tokio::task::block_in_place(|| positions.positions(&partitions))?;
        let record = match recorded {
            Some(record) => record.clone(),
            None => MigrationRecord::at_start(&seen, Time(k8s_openapi::jiff::Timestamp::now())),
        };
        // Never below what the group already committed: nothing there is copied again, and a commit never
        // moves back.
        let end = MigrationEnd {
            ends: seen
                .iter()
                .map(|((topic, partition), position)| {
                    let end = record
                        .end(topic, *partition)
                        .max(position.committed.unwrap_or(0));
                    ((topic.clone(), *partition), end)
                })
                .collect(),
        };
        let to_copy: Vec<SourcePartition> = seen
            .iter()
            .filter(|((topic, partition), position)| {
                record.end(topic, *partition) > position.next_to_mirror()
            })
            .map(|(tp, _)| tp.clone())
            .collect();
        let records = record.remaining_from_start(&seen);
        let complete_at_start = record.progress(&seen).completed;
        match recorded {
            None => info!(
                partitions = partitions.len(),
                records, "migration: copying up to the high watermarks seen now"
            ),
            Some(_) if complete_at_start => info!(
                partitions = partitions.len(),
                started_at = %record.started_at.0,
                "migration complete: the group's commits already reached every recorded end offset; copying nothing"
            ),
            Some(_) => info!(
                partitions = partitions.len(),
                records,
                started_at = %record.started_at.0,
                "migration: copying up to the end offsets recorded at the migration's start"
            ),
        }
        Ok(Self {
            positions,
            record,
            end: Arc::new(end),
            seen,
            to_copy,
            complete_at_start,
        })
    }

    /// Whether the group's commits reached the end of every partition with records to copy. A failed check
    /// counts as not yet: the engine asks again at its next tick.
    pub(super) fn reached_end(&mut self) -> bool {
        match self.complete() {
            Ok(true) => {
                info!("migration complete: every partition reached its end offset");
                true
            }
            Ok(false) => false,
            Err(e) => {
                warn!(error = %e, "checking migration progress failed; retrying");
                false
            }
        }
    }

    /// The group's commits on the partitions left to copy, read now, judged by the record's own rule
    /// ([`MigrationRecord::progress`], the one the operator applies too).
    fn complete(&mut self) -> Result<bool> {
        let committed = tokio::task::block_in_place(|| self.positions.committed(&self.to_copy))?;
        for (tp, offset) in committed {
            if let Some(position) = self.seen.get_mut(&tp) {
                position.committed = offset;
            }
        }
        Ok(self.record.progress(&self.seen).completed)
    }
}
