//! `mode: migrate`: the high watermarks seen at start are where the copy ends, and the group's committed
//! offsets on the source say when it got there.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use kafka_mirror_clients::MirrorPlan;
use kafka_mirror_clients::positions::{GroupPositions, SourcePartition};
use tracing::{info, warn};

use crate::Result;
use crate::discover::Route;

/// Where each source partition stops in `mode: migrate`: the high watermark seen at start. Records from there
/// on are not mirrored.
pub(crate) type MigrationEnd = HashMap<SourcePartition, i64>;

/// `mode: migrate`: the high watermarks seen at start, and whether the group's commits reached them.
pub(super) struct Migration {
    positions: GroupPositions,
    pub(super) end: Arc<MigrationEnd>,
    /// Partitions with records to copy (`high > low` at start).
    to_copy: Vec<SourcePartition>,
}

impl Migration {
    pub(super) fn start(plan: &MirrorPlan, routes: &BTreeMap<String, Route>) -> Result<Self> {
        let positions = GroupPositions::new(&plan.source_admin, &plan.group_id)?;
        let partitions: Vec<SourcePartition> = routes
            .iter()
            .flat_map(|(topic, route)| {
                (0..route.source_partitions).map(move |p| (topic.clone(), p))
            })
            .collect();
        let start = tokio::task::block_in_place(|| positions.positions(&partitions))?;
        let end: MigrationEnd = start
            .iter()
            .map(|(tp, pos)| (tp.clone(), pos.high))
            .collect::<HashMap<_, _>>();
        let to_copy = start
            .iter()
            .filter(|(_, pos)| pos.high > pos.low)
            .map(|(tp, _)| tp.clone())
            .collect();
        let records: i64 = start.values().map(|p| p.lag()).sum();
        info!(
            partitions = partitions.len(),
            records, "migration: copying up to the high watermarks seen now"
        );
        Ok(Self {
            positions,
            end: Arc::new(end),
            to_copy,
        })
    }

    /// Whether the group's commits reached the end of every partition with records to copy. A failed check
    /// counts as not yet: the engine asks again at its next tick.
    pub(super) fn reached_end(&self) -> bool {
        match self.complete() {
            Ok(true) => {
                info!("migration complete: every partition reached its start-time high watermark");
                true
            }
            Ok(false) => false,
            Err(e) => {
                warn!(error = %e, "checking migration progress failed; retrying");
                false
            }
        }
    }

    fn complete(&self) -> Result<bool> {
        let committed = tokio::task::block_in_place(|| self.positions.committed(&self.to_copy))?;
        Ok(self.to_copy.iter().all(|tp| {
            committed
                .get(tp)
                .copied()
                .flatten()
                .is_some_and(|c| c >= self.end[tp])
        }))
    }
}
