//! `spec.consumerGroups`: the source's consumer groups follow to the target. Every matching group's committed
//! offsets on the mirrored topics are translated through the offset maps the workers publish and committed to
//! the same group on the target, forwards only and never while the group has members there; and for each
//! group, what a consumer switching to the target now would miss and read twice. Blocking: run it off the
//! async runtime.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use kafka_mirror_crds::status::{ConsumerGroupStatus, GroupSyncState};
use kafka_mirror_crds::{Partitioning, TopicFilter};

use crate::MirrorPlan;
use crate::offset_map::{self, PublishedMap, Translation, Untranslatable};
use crate::positions::{GroupPositions, PartitionPosition, SourcePartition};

const READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Partitions a status message names at most.
const NAMED: usize = 3;

mod keyed;

/// The offset maps of every source partition, as the workers last published them.
pub type OffsetMaps = HashMap<SourcePartition, PublishedMap>;

/// Syncs every group of the source that `groups` matches (never the mirror's own group, nor the readers it
/// names after it). `mirrored` is the mirror group's position of every mirrored source partition, read before.
///
/// The order of the reads is what makes the end of a copy safe to resume at: the offset maps first, then the
/// target's high watermarks, then the source's again. A group that had read everything the source held then,
/// all of it copied before, resumes at the target's high watermark: no record it has not read can be on the
/// target before it, as none was on the source.
pub fn sync(
    plan: &MirrorPlan,
    groups: &TopicFilter,
    mirrored: &BTreeMap<SourcePartition, PartitionPosition>,
) -> crate::Result<Result<Vec<ConsumerGroupStatus>, String>> {
    let source = GroupPositions::new(&plan.source_admin, &plan.group_id)?;
    let own = format!("{}.", plan.group_id);
    let followed: Vec<String> = source
        .groups()?
        .into_iter()
        .map(|(name, _)| name)
        .filter(|name| groups.matches(name) && name != &plan.group_id && !name.starts_with(&own))
        .collect();
    if followed.is_empty() {
        return Ok(Ok(Vec::new()));
    }
    let maps = match offset_map::read_published(&plan.target_admin, &plan.group_id, READ_TIMEOUT) {
        Ok(maps) => maps,
        Err(why) => return Ok(Err(why)),
    };
    let target = GroupPositions::new(&plan.target_admin, &plan.group_id)?;
    let target_members: HashMap<String, usize> = target.groups()?.into_iter().collect();
    let target_partitions = match plan.spec.partitioning {
        Partitioning::Preserve => mirrored
            .keys()
            .map(|(topic, partition)| (plan.spec.topics.target_name(topic), *partition))
            .collect(),
        Partitioning::Key => target.partitions_of(
            mirrored
                .keys()
                .map(|(topic, _)| plan.spec.topics.target_name(topic)),
        )?,
    };
    let target_ends = target.watermarks(&target_partitions)?;
    let partitions: Vec<SourcePartition> = mirrored.keys().cloned().collect();
    let source_ends = source.watermarks(&partitions)?;
    let view = ClusterView {
        mirrored,
        maps: &maps,
        target_topic: Box::new(|topic| plan.spec.topics.target_name(topic)),
        target_partitions,
        target_end: Box::new(|p| target_ends.get(p).map(|(_, high)| *high)),
        source_end: Box::new(|p| source_ends.get(p).map(|(_, high)| *high)),
    };
    let mut statuses = Vec::new();
    for group in followed {
        let committed: BTreeMap<SourcePartition, i64> =
            GroupPositions::new(&plan.source_admin, &group)?
                .committed(&partitions)?
                .into_iter()
                .filter_map(|(p, offset)| Some((p, offset?)))
                .collect();
        if committed.is_empty() {
            continue;
        }
        let target_group = GroupPositions::new(&plan.target_admin, &group)?;
        let on_target = target_group.committed_with_metadata(&view.target_partitions)?;
        let on_target = |p: &TargetPartition| on_target.get(p).cloned().flatten();
        let active = target_members.get(&group).copied().unwrap_or(0) > 0;
        let plan_of_group = match plan.spec.partitioning {
            Partitioning::Preserve => GroupPlan::preserve(&committed, &view, on_target),
            Partitioning::Key => GroupPlan::keyed(&committed, &view, on_target),
        };
        if !active && !plan_of_group.commits.is_empty() {
            target_group.commit(&plan_of_group.commits)?;
        }
        statuses.push(plan_of_group.status(group, active));
    }
    Ok(Ok(statuses))
}

/// A partition of a target topic.
type TargetPartition = (String, i32);

/// The metadata of an offset the sync commits on the target: the group's source offsets it was translated
/// from, by source partition of the topic (`kafka-mirror sources 0=121 1=130`).
#[derive(Debug, Clone, PartialEq)]
struct SyncNote(BTreeMap<i32, i64>);

const NOTE_PREFIX: &str = "kafka-mirror sources";
/// Kafka refuses a commit whose metadata is longer than `offset.metadata.max.bytes`, 4,096 by default: a
/// longer note (a `partitioning: key` topic of some 300 partitions or more) is left out.
const NOTE_MAX_BYTES: usize = 4_000;

impl std::fmt::Display for SyncNote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(NOTE_PREFIX)?;
        for (partition, offset) in &self.0 {
            write!(f, " {partition}={offset}")?;
        }
        Ok(())
    }
}

impl SyncNote {
    /// The commit's metadata: the note, or nothing when it would be too long.
    fn metadata(&self) -> String {
        let note = self.to_string();
        if note.len() <= NOTE_MAX_BYTES {
            note
        } else {
            String::new()
        }
    }

    fn parse(note: &str) -> Option<SyncNote> {
        let sources = note.strip_prefix(NOTE_PREFIX)?;
        sources
            .split_whitespace()
            .map(|entry| {
                let (partition, offset) = entry.split_once('=')?;
                Some((partition.parse().ok()?, offset.parse().ok()?))
            })
            .collect::<Option<_>>()
            .map(SyncNote)
    }
}

/// A partition's high watermark, as a sync read it.
type EndOf<'a, P> = Box<dyn Fn(&P) -> Option<i64> + 'a>;

/// What a sync read of both clusters, for every group.
struct ClusterView<'a> {
    /// The mirror's positions (watermarks and what it copied), read first.
    mirrored: &'a BTreeMap<SourcePartition, PartitionPosition>,
    maps: &'a OffsetMaps,
    target_topic: Box<dyn Fn(&str) -> String + 'a>,
    /// Every partition of the mirrored topics' copies.
    target_partitions: Vec<TargetPartition>,
    /// High watermarks on the target, read after the maps.
    target_end: EndOf<'a, TargetPartition>,
    /// High watermarks on the source, read after the target's.
    source_end: EndOf<'a, SourcePartition>,
}

impl ClusterView<'_> {
    /// The group read every record the source held when the target's ends were read, and the mirror had
    /// copied every one of them before: the end of the copy is where it resumes, exactly.
    fn read_and_copied_all(&self, partition: &SourcePartition, committed: i64) -> bool {
        self.mirrored.get(partition).is_some_and(|position| {
            committed >= position.high
                && position.lag() == 0
                && (self.source_end)(partition) == Some(position.high)
        })
    }
}

/// What one group's sync commits and reports. Pure.
#[derive(Debug, Default, PartialEq)]
struct GroupPlan {
    /// Source partitions the group committed offsets for.
    partitions: i32,
    /// Target partitions whose translated offset moves the target group forwards, with the commit's
    /// [`SyncNote`].
    commits: Vec<(TargetPartition, i64, String)>,
    missed: i64,
    re_read: i64,
    /// Partitions without a translation, with why.
    untranslated: Vec<String>,
    /// Partitions whose offset on the target is past the translation, with by how much (not counted as missed:
    /// see `GroupSyncState::AheadOnTarget`).
    ahead: Vec<String>,
}

impl GroupPlan {
    /// `partitioning: preserve`: each source partition's committed offset translated through its map to its
    /// own target partition.
    fn preserve(
        committed: &BTreeMap<SourcePartition, i64>,
        view: &ClusterView<'_>,
        on_target: impl Fn(&TargetPartition) -> Option<(i64, String)>,
    ) -> Self {
        let mut plan = GroupPlan::default();
        for (partition, offset) in committed {
            plan.partitions += 1;
            plan.count_missed(view, partition, *offset);
            let target = ((view.target_topic)(&partition.0), partition.1);
            let translated = match (view.target_end)(&target) {
                // The end of the copy, exactly, whatever the map knows (an idle partition may have no map at
                // all).
                Some(end) if view.read_and_copied_all(partition, *offset) => Ok(Translation {
                    offset: end,
                    re_read_at_most: 0,
                }),
                _ => match view.maps.get(partition) {
                    Some(PublishedMap::Preserve(map)) => map.translate(*offset),
                    _ => Err(Untranslatable::Empty),
                },
            };
            match translated {
                Ok(translation) => {
                    plan.re_read += translation.re_read_at_most;
                    let sources = [(partition.1, *offset)].into();
                    // An earlier sync's higher offset re-reads less; not counted (a marker between is no record).
                    plan.settle(target, translation.offset, &sources, &on_target);
                }
                Err(why) => plan.untranslated(partition, *offset, why),
            }
        }
        plan
    }

    /// Records not read by the group and not copied yet: lost to the group if the source went away now.
    fn count_missed(
        &mut self,
        view: &ClusterView<'_>,
        partition: &SourcePartition,
        committed: i64,
    ) {
        if let Some(position) = view.mirrored.get(partition) {
            self.missed += (position.high - committed.max(position.next_to_mirror())).max(0);
        }
    }

    fn untranslated(
        &mut self,
        (topic, partition): &SourcePartition,
        committed: i64,
        why: Untranslatable,
    ) {
        self.untranslated.push(match why {
            Untranslatable::BeforeMap { first } => format!(
                "{topic}[{partition}] committed {committed}, before the first copy the offset map knows ({first})"
            ),
            Untranslatable::Empty => format!(
                "{topic}[{partition}] committed {committed}, and no copy of it is in the offset map yet"
            ),
            Untranslatable::NoBound => format!(
                "{topic}[{partition}] committed {committed}, and its offset map bounds its copies in some target \
                 partitions only"
            ),
        });
    }

    /// Commits `offset` to `target` unless the group is there or past it already: never backwards (a group
    /// reset on the source to an earlier offset keeps its later offset on the target, and would miss what lies
    /// between). `sources`: the group's source offsets the translation is of, by source partition.
    ///
    /// A group past the translation is [`AheadOnTarget`](GroupSyncState::AheadOnTarget), unless an earlier
    /// sync committed its offset there for source offsets at or before today's: that offset missed none of
    /// the records then unread, so none of fewer. (A translation is a lower bound that thinned maps can only
    /// lower, so an earlier sync's may be the higher.)
    ///
    /// Where the group resumes on the target: `offset`, or the earlier sync's.
    fn settle(
        &mut self,
        target: TargetPartition,
        offset: i64,
        sources: &BTreeMap<i32, i64>,
        on_target: &impl Fn(&TargetPartition) -> Option<(i64, String)>,
    ) -> i64 {
        match on_target(&target) {
            Some((current, note)) if current >= offset => {
                let synced_before = SyncNote::parse(&note).is_some_and(|earlier| {
                    sources
                        .iter()
                        .all(|(p, now)| earlier.0.get(p).is_some_and(|then| then <= now))
                });
                if synced_before {
                    return current;
                }
                if current > offset {
                    self.ahead.push(format!(
                        "{}[{}] by {}",
                        target.0,
                        target.1,
                        current - offset
                    ));
                }
                offset
            }
            _ => {
                self.commits
                    .push((target, offset, SyncNote(sources.clone()).metadata()));
                offset
            }
        }
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
pub(super) mod tests {
    use super::*;
    use crate::offset_map::OffsetMap;

    /// The mirror's positions: (partition, high watermark, copied through).
    pub(super) fn mirrored_partitions(
        positions: &[(SourcePartition, i64, i64)],
    ) -> BTreeMap<SourcePartition, PartitionPosition> {
        positions
            .iter()
            .map(|(p, high, copied)| {
                (
                    p.clone(),
                    PartitionPosition {
                        low: 0,
                        high: *high,
                        committed: Some(*copied),
                    },
                )
            })
            .collect()
    }

    /// A view of clusters whose target topics have the names and partition counts `target_topics` (no
    /// renaming), with the source's and target's high watermarks.
    pub(super) fn view_of<'a>(
        mirrored: &'a BTreeMap<SourcePartition, PartitionPosition>,
        maps: &'a OffsetMaps,
        target_topics: &[(&str, i32)],
        source_end: impl Fn(&SourcePartition) -> Option<i64> + 'a,
        target_end: impl Fn(&TargetPartition) -> Option<i64> + 'a,
    ) -> ClusterView<'a> {
        ClusterView {
            mirrored,
            maps,
            target_topic: Box::new(|topic| topic.to_string()),
            target_partitions: target_topics
                .iter()
                .flat_map(|(topic, n)| (0..*n).map(|q| (topic.to_string(), q)))
                .collect(),
            target_end: Box::new(target_end),
            source_end: Box::new(source_end),
        }
    }

    fn partition(p: i32) -> SourcePartition {
        ("orders".to_string(), p)
    }

    fn mirrored(high: i64, copied: i64) -> BTreeMap<SourcePartition, PartitionPosition> {
        mirrored_partitions(&[(partition(0), high, copied)])
    }

    /// Source offsets 0..100 copied to target offsets 1000..1100.
    fn maps() -> OffsetMaps {
        let mut map = OffsetMap::new(0);
        for s in 0..100 {
            map.copied(s, s + 1000);
        }
        [(partition(0), PublishedMap::Preserve(map))].into()
    }

    /// The plan for a group that committed `committed` on partition 0, its offset on the target
    /// `on_target`; the source's end `high` unchanged since the mirror's positions were read, the target's
    /// `target_end`.
    fn plan(
        committed: i64,
        positions: &BTreeMap<SourcePartition, PartitionPosition>,
        maps: &OffsetMaps,
        on_target: Option<i64>,
        target_end: Option<i64>,
    ) -> GroupPlan {
        let high = positions[&partition(0)].high;
        let view = view_of(
            positions,
            maps,
            &[("orders", 1)],
            move |_| Some(high),
            move |_| target_end,
        );
        GroupPlan::preserve(&[(partition(0), committed)].into(), &view, |_| {
            on_target.map(|offset| (offset, String::new()))
        })
    }

    /// What the plan commits, without the notes.
    pub(super) fn offsets(plan: &GroupPlan) -> Vec<(TargetPartition, i64)> {
        plan.commits
            .iter()
            .map(|(target, offset, _)| (target.clone(), *offset))
            .collect()
    }

    fn target(p: i32) -> TargetPartition {
        ("orders".to_string(), p)
    }

    #[test]
    fn a_caught_up_group_is_committed_exactly_and_misses_nothing() {
        let plan = plan(60, &mirrored(100, 100), &maps(), None, None);
        assert_eq!(offsets(&plan), vec![(target(0), 1060)]);
        assert_eq!((plan.missed, plan.re_read), (0, 0));
        assert_eq!(plan.status("g".into(), false).state, GroupSyncState::Synced);
    }

    #[test]
    fn records_not_copied_yet_count_as_missed_until_the_mirror_has_them() {
        // The source holds 120; the mirror copied 100; the group read 60.
        let plan_60 = plan(60, &mirrored(120, 100), &maps(), None, None);
        assert_eq!(plan_60.missed, 20);
        // A group that read more than the mirror copied misses only what neither has.
        let plan_110 = plan(110, &mirrored(120, 100), &maps(), None, None);
        assert_eq!(plan_110.missed, 10);
        assert_eq!(offsets(&plan_110), vec![(target(0), 1100)]);
        assert_eq!(
            plan_110.re_read, 10,
            "read on the source, copied after the map was published"
        );
    }

    #[test]
    fn never_backwards_and_a_group_ahead_on_the_target_says_by_how_much() {
        let ahead = plan(60, &mirrored(100, 100), &maps(), Some(1070), None);
        assert!(ahead.commits.is_empty());
        assert_eq!(
            ahead.missed, 0,
            "it consumed there, or was reset on the source: not a miss"
        );
        let status = ahead.status("g".into(), false);
        assert_eq!(status.state, GroupSyncState::AheadOnTarget);
        assert!(status.message.unwrap().contains("orders[0] by 10"));
        let there = plan(60, &mirrored(100, 100), &maps(), Some(1060), None);
        assert!(there.commits.is_empty(), "already there");
        assert_eq!(there.missed, 0);
    }

    #[test]
    fn a_position_before_the_map_is_named_and_not_committed() {
        let mut map = OffsetMap::new(0);
        map.copied(50, 7);
        let maps: OffsetMaps = [(partition(0), PublishedMap::Preserve(map))].into();
        let before = plan(10, &mirrored(100, 100), &maps, None, None);
        assert!(before.commits.is_empty());
        let status = before.status("g".into(), false);
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
        let idle = plan(
            100,
            &mirrored(100, 100),
            &OffsetMaps::new(),
            None,
            Some(2000),
        );
        assert_eq!(offsets(&idle), vec![(target(0), 2000)]);
        assert_eq!((idle.missed, idle.re_read), (0, 0));
        assert!(idle.untranslated.is_empty());
        // Not while the mirror is behind: the end of the copy is not where the group's next record will be.
        let behind = plan(
            100,
            &mirrored(120, 100),
            &OffsetMaps::new(),
            None,
            Some(2000),
        );
        assert!(behind.commits.is_empty());
        assert_eq!(behind.untranslated.len(), 1);
    }

    #[test]
    fn not_when_the_source_grew_after_the_targets_end_was_read() {
        // The group and the mirror were at the source's end, 100; record 100 arrived and may have been copied
        // before the target's end was read: resuming there could skip it. The map is used instead.
        let positions = mirrored(100, 100);
        let maps = maps();
        let view = view_of(
            &positions,
            &maps,
            &[("orders", 1)],
            |_| Some(101),
            |_| Some(1101),
        );
        let grown = GroupPlan::preserve(&[(partition(0), 100)].into(), &view, |_| None);
        assert_eq!(offsets(&grown), vec![(target(0), 1100)]);
    }

    #[test]
    fn an_offset_an_earlier_sync_committed_for_fewer_records_read_stays_and_is_not_ahead() {
        let positions = mirrored(100, 100);
        let maps = maps();
        let view = view_of(&positions, &maps, &[("orders", 1)], |_| Some(100), |_| None);
        let first = GroupPlan::preserve(&[(partition(0), 60)].into(), &view, |_| None);
        let (_, offset, note) = first.commits[0].clone();
        assert_eq!(note, "kafka-mirror sources 0=60");
        // A later translation of the same or a later position came out lower (a thinned map): not ahead.
        let on_target = |_: &TargetPartition| Some((offset + 5, note.clone()));
        let later = GroupPlan::preserve(&[(partition(0), 60)].into(), &view, on_target);
        assert!(
            later.commits.is_empty() && later.ahead.is_empty(),
            "{later:?}"
        );
        // Reset to an earlier offset on the source since: ahead, the skipped records counted.
        let reset = GroupPlan::preserve(&[(partition(0), 50)].into(), &view, on_target);
        assert_eq!(reset.ahead, vec!["orders[0] by 15".to_string()]);
        assert_eq!(
            SyncNote::parse("kafka-mirror sources 0=60 3=7"),
            Some(SyncNote([(0, 60), (3, 7)].into()))
        );
        assert_eq!(SyncNote::parse("something else"), None);
        let wide = SyncNote((0..500).map(|p| (p, 1_000_000)).collect());
        assert_eq!(wide.metadata(), "", "longer than Kafka keeps: left out");
    }
}
