//! `spec.consumerGroups`: the source's consumer groups follow to the target. Every matching group's committed
//! offsets on the mirrored topics are translated through the offset maps the workers publish and committed to
//! the same group on the target, forwards only and never while the group has members there; and for each
//! group, what a consumer switching to the target now would miss and read twice. Blocking: run it off the
//! async runtime.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use kafka_mirror_crds::TopicFilter;
use kafka_mirror_crds::status::{ConsumerGroupStatus, GroupSyncState};

use crate::MirrorPlan;
use crate::offset_map::{self, OffsetMap, Translation, Untranslatable};
use crate::positions::{GroupPositions, PartitionPosition, SourcePartition};

const READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Partitions a status message names at most.
const NAMED: usize = 3;

/// The offset maps of every source partition, as the workers last published them.
pub type OffsetMaps = HashMap<SourcePartition, OffsetMap>;

/// Syncs every group of the source that `groups` matches (never the mirror's own group, nor the readers it
/// names after it). `mirrored` is the mirror group's position of every mirrored source partition.
pub fn sync(
    plan: &MirrorPlan,
    groups: &TopicFilter,
    mirrored: &BTreeMap<SourcePartition, PartitionPosition>,
) -> crate::Result<Result<Vec<ConsumerGroupStatus>, String>> {
    let source_groups = GroupPositions::new(&plan.source_admin, &plan.group_id)?.groups()?;
    let own = format!("{}.", plan.group_id);
    let followed: Vec<String> = source_groups
        .into_iter()
        .map(|(name, _)| name)
        .filter(|name| groups.matches(name) && name != &plan.group_id && !name.starts_with(&own))
        .collect();
    if followed.is_empty() {
        return Ok(Ok(Vec::new()));
    }
    let maps = match offset_map::read_published(plan, READ_TIMEOUT) {
        Ok(maps) => maps,
        Err(why) => return Ok(Err(why)),
    };
    let target_members: HashMap<String, usize> =
        GroupPositions::new(&plan.target_admin, &plan.group_id)?
            .groups()?
            .into_iter()
            .collect();
    let partitions: Vec<SourcePartition> = mirrored.keys().cloned().collect();
    let mut statuses = Vec::new();
    for group in followed {
        let on_source = GroupPositions::new(&plan.source_admin, &group)?.committed(&partitions)?;
        let committed: Vec<(SourcePartition, i64)> = on_source
            .into_iter()
            .filter_map(|(p, offset)| Some((p, offset?)))
            .collect();
        if committed.is_empty() {
            continue;
        }
        let target_group = GroupPositions::new(&plan.target_admin, &group)?;
        let target_partition = |(topic, partition): &SourcePartition| {
            (plan.spec.topics.target_name(topic), *partition)
        };
        let on_target_partitions: Vec<SourcePartition> =
            committed.iter().map(|(p, _)| target_partition(p)).collect();
        let on_target = target_group.committed(&on_target_partitions)?;
        let target_ends = target_group.watermarks(&on_target_partitions)?;
        let active = target_members.get(&group).copied().unwrap_or(0) > 0;
        let plan_of_group = GroupPlan::new(
            &committed,
            mirrored,
            &maps,
            |p| on_target.get(&target_partition(p)).copied().flatten(),
            |p| target_ends.get(&target_partition(p)).map(|(_, high)| *high),
        );
        if !active && !plan_of_group.commits.is_empty() {
            let commits: Vec<(SourcePartition, i64)> = plan_of_group
                .commits
                .iter()
                .map(|(p, offset)| (target_partition(p), *offset))
                .collect();
            target_group.commit(&commits)?;
        }
        statuses.push(plan_of_group.status(group, active));
    }
    Ok(Ok(statuses))
}

/// What one group's sync commits and reports. Pure.
#[derive(Debug, Default, PartialEq)]
struct GroupPlan {
    partitions: i32,
    /// Source partitions whose translated offset moves the target group forwards.
    commits: Vec<(SourcePartition, i64)>,
    missed: i64,
    re_read: i64,
    /// Partitions without a translation, with why.
    untranslated: Vec<String>,
    /// Partitions whose offset on the target is past the translation, with by how much (not counted as missed:
    /// see `GroupSyncState::AheadOnTarget`).
    ahead: Vec<String>,
}

impl GroupPlan {
    /// `committed`: the group's offsets on the source; `mirrored`: the mirror's positions (watermarks and what
    /// it copied); `on_target`: the group's committed offset on the target, by source partition; `target_end`:
    /// the high watermark of the partition's copy on the target.
    fn new(
        committed: &[(SourcePartition, i64)],
        mirrored: &BTreeMap<SourcePartition, PartitionPosition>,
        maps: &OffsetMaps,
        on_target: impl Fn(&SourcePartition) -> Option<i64>,
        target_end: impl Fn(&SourcePartition) -> Option<i64>,
    ) -> Self {
        let mut plan = GroupPlan::default();
        for (partition, offset) in committed {
            plan.partitions += 1;
            let mut all_read_and_copied = false;
            if let Some(position) = mirrored.get(partition) {
                // Not read by the group and not copied yet: lost to the group if the source went away now.
                plan.missed += (position.high - (*offset).max(position.next_to_mirror())).max(0);
                all_read_and_copied = *offset >= position.high && position.lag() == 0;
            }
            let translated = match target_end(partition) {
                // The group read every record and the mirror copied every one: the group resumes at the end of
                // the copy, exactly, whatever the map knows (an idle partition may have no map at all).
                Some(end) if all_read_and_copied => Some(Ok(Translation {
                    offset: end,
                    re_read_at_most: 0,
                })),
                _ => maps.get(partition).map(|m| m.translate(*offset)),
            };
            let translation = match translated {
                Some(Ok(translation)) => translation,
                Some(Err(Untranslatable::BeforeMap { first })) => {
                    plan.untranslated.push(format!(
                        "{}[{}] committed {offset}, before the first copy the offset map knows ({first})",
                        partition.0, partition.1
                    ));
                    continue;
                }
                Some(Err(Untranslatable::Empty)) | None => {
                    plan.untranslated.push(format!(
                        "{}[{}] committed {offset}, and no copy of it is in the offset map yet",
                        partition.0, partition.1
                    ));
                    continue;
                }
            };
            plan.re_read += translation.re_read_at_most;
            match on_target(partition) {
                // Never backwards: a group reset on the source to an earlier offset keeps its later offset
                // on the target, and would miss what lies between.
                Some(current) if current >= translation.offset => {
                    let ahead = current - translation.offset;
                    if ahead > 0 {
                        plan.ahead
                            .push(format!("{}[{}] by {ahead}", partition.0, partition.1));
                    }
                }
                _ => plan.commits.push((partition.clone(), translation.offset)),
            }
        }
        plan
    }

    fn status(self, name: String, active: bool) -> ConsumerGroupStatus {
        let (state, message) = if active {
            (
                GroupSyncState::ActiveOnTarget,
                Some(
                    "the group has members on the target; its offsets there are left to them"
                        .to_string(),
                ),
            )
        } else if !self.untranslated.is_empty() {
            let count = self.untranslated.len();
            let named = self
                .untranslated
                .into_iter()
                .take(NAMED)
                .collect::<Vec<_>>()
                .join("; ");
            (
                GroupSyncState::NotTranslated,
                Some(format!(
                    "{count} partitions have no offset on the target yet: {named}. A consumer switching now would \
                     start them at its auto.offset.reset"
                )),
            )
        } else if !self.ahead.is_empty() {
            (
                GroupSyncState::AheadOnTarget,
                Some(format!(
                    "the group's offsets on the target are past the source's, and are never moved back: {}. \
                     It consumed on the target; or it was reset to an earlier offset on the source, and a consumer \
                     switching now would skip what lies between",
                    self.ahead
                        .into_iter()
                        .take(NAMED)
                        .collect::<Vec<_>>()
                        .join("; ")
                )),
            )
        } else {
            (GroupSyncState::Synced, None)
        };
        ConsumerGroupStatus {
            name,
            partitions: self.partitions,
            missed: self.missed,
            re_read: self.re_read,
            state,
            message,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn partition(p: i32) -> SourcePartition {
        ("orders".to_string(), p)
    }

    fn mirrored(high: i64, copied: i64) -> BTreeMap<SourcePartition, PartitionPosition> {
        [(
            partition(0),
            PartitionPosition {
                low: 0,
                high,
                committed: Some(copied),
            },
        )]
        .into()
    }

    /// Source offsets 0..100 copied to target offsets 1000..1100.
    fn maps() -> OffsetMaps {
        let mut map = OffsetMap::new(0);
        for s in 0..100 {
            map.copied(s, s + 1000);
        }
        [(partition(0), map)].into()
    }

    #[test]
    fn a_caught_up_group_is_committed_exactly_and_misses_nothing() {
        let plan = GroupPlan::new(
            &[(partition(0), 60)],
            &mirrored(100, 100),
            &maps(),
            |_| None,
            |_| None,
        );
        assert_eq!(plan.commits, vec![(partition(0), 1060)]);
        assert_eq!((plan.missed, plan.re_read), (0, 0));
        assert_eq!(plan.status("g".into(), false).state, GroupSyncState::Synced);
    }

    #[test]
    fn records_not_copied_yet_count_as_missed_until_the_mirror_has_them() {
        // The source holds 120; the mirror copied 100; the group read 60.
        let plan = GroupPlan::new(
            &[(partition(0), 60)],
            &mirrored(120, 100),
            &maps(),
            |_| None,
            |_| None,
        );
        assert_eq!(plan.missed, 20);
        // A group that read more than the mirror copied misses only what neither has.
        let plan = GroupPlan::new(
            &[(partition(0), 110)],
            &mirrored(120, 100),
            &maps(),
            |_| None,
            |_| None,
        );
        assert_eq!(plan.missed, 10);
        assert_eq!(plan.commits, vec![(partition(0), 1100)]);
        assert_eq!(
            plan.re_read, 10,
            "read on the source, copied after the map was published"
        );
    }

    #[test]
    fn never_backwards_and_a_group_ahead_on_the_target_says_by_how_much() {
        let plan = GroupPlan::new(
            &[(partition(0), 60)],
            &mirrored(100, 100),
            &maps(),
            |_| Some(1070),
            |_| None,
        );
        assert!(plan.commits.is_empty());
        assert_eq!(
            plan.missed, 0,
            "it consumed there, or was reset on the source: not a miss"
        );
        let status = plan.status("g".into(), false);
        assert_eq!(status.state, GroupSyncState::AheadOnTarget);
        assert!(status.message.unwrap().contains("orders[0] by 10"));
        let plan = GroupPlan::new(
            &[(partition(0), 60)],
            &mirrored(100, 100),
            &maps(),
            |_| Some(1060),
            |_| None,
        );
        assert!(plan.commits.is_empty(), "already there");
        assert_eq!(plan.missed, 0);
    }

    #[test]
    fn a_position_before_the_map_is_named_and_not_committed() {
        let mut map = OffsetMap::new(0);
        map.copied(50, 7);
        let maps: OffsetMaps = [(partition(0), map)].into();
        let plan = GroupPlan::new(
            &[(partition(0), 10)],
            &mirrored(100, 100),
            &maps,
            |_| None,
            |_| None,
        );
        assert!(plan.commits.is_empty());
        let status = plan.status("g".into(), false);
        assert_eq!(status.state, GroupSyncState::NotTranslated);
        assert!(
            status
                .message
                .unwrap()
                .contains("orders[0] committed 10, before the first copy")
        );
    }

    #[test]
    fn a_group_that_read_everything_the_mirror_copied_resumes_at_the_end_of_the_copy() {
        // No map at all (the partition was idle since the map began): the end of the copy is exact.
        let plan = GroupPlan::new(
            &[(partition(0), 100)],
            &mirrored(100, 100),
            &OffsetMaps::new(),
            |_| None,
            |_| Some(2000),
        );
        assert_eq!(plan.commits, vec![(partition(0), 2000)]);
        assert_eq!((plan.missed, plan.re_read), (0, 0));
        assert!(plan.untranslated.is_empty());
        // Not while the mirror is behind: the end of the copy is not where the group's next record will be.
        let plan = GroupPlan::new(
            &[(partition(0), 100)],
            &mirrored(120, 100),
            &OffsetMaps::new(),
            |_| None,
            |_| Some(2000),
        );
        assert!(plan.commits.is_empty());
        assert_eq!(plan.untranslated.len(), 1);
    }
}
