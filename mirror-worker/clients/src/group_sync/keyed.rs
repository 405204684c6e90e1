//! `partitioning: key`: a target partition holds records of every source partition of its topic, so a group's
//! offset there is the smallest of the bounds each source partition's [`KeyedMap`] gives for its committed
//! offset (see [`crate::keyed_map`]); what lies after it that the group read on the source is its re-read.

use std::collections::BTreeMap;

use super::{ClusterView, GroupPlan, TargetPartition};
use crate::keyed_map::KeyedMap;
use crate::offset_map::{PublishedMap, Untranslatable};
use crate::positions::SourcePartition;

/// What bounds one source partition's copies in every target partition.
enum Bound<'a> {
    Map(&'a KeyedMap),
    /// The group read every record the source held after the target's ends were read: none it has not read can
    /// be on the target yet.
    Nothing,
}

impl GroupPlan {
    pub(super) fn keyed(
        committed: &BTreeMap<SourcePartition, i64>,
        view: &ClusterView<'_>,
        on_target: impl Fn(&TargetPartition) -> Option<(i64, String)>,
    ) -> Self {
        let mut plan = GroupPlan::default();
        let topics: std::collections::BTreeSet<&str> =
            committed.keys().map(|(topic, _)| topic.as_str()).collect();
        for topic in topics {
            plan.keyed_topic(topic, committed, view, &on_target);
        }
        plan
    }

    fn keyed_topic(
        &mut self,
        topic: &str,
        committed: &BTreeMap<SourcePartition, i64>,
        view: &ClusterView<'_>,
        on_target: &impl Fn(&TargetPartition) -> Option<(i64, String)>,
    ) {
        let sources: Vec<(&SourcePartition, Option<i64>)> = view
            .mirrored
            .keys()
            .filter(|(t, _)| t == topic)
            .map(|p| (p, committed.get(p).copied()))
            .collect();
        let mut positions = Vec::new();
        let mut never_committed = Vec::new();
        for (partition, offset) in sources {
            match offset {
                Some(offset) => {
                    self.partitions += 1;
                    self.count_missed(view, partition, offset);
                    positions.push((partition, offset));
                }
                None => never_committed.push(partition.1.to_string()),
            }
        }
        // Every source partition has records in every target partition: one the group never committed leaves
        // no offset there that misses none of its records.
        if !never_committed.is_empty() {
            self.untranslated.push(format!(
                "{topic}[{}] has no committed offset on the source; with partitioning: key its records are in \
                 every target partition",
                never_committed.join(", ")
            ));
            return;
        }
        let all_copied = positions
            .iter()
            .all(|(p, offset)| view.read_and_copied_all(p, *offset));
        let mut bounds = Vec::new();
        for (partition, offset) in &positions {
            let bound = match view.maps.get(*partition) {
                Some(PublishedMap::Key(map)) => Bound::Map(map),
                _ if (view.source_end)(partition).is_some_and(|end| *offset >= end) => {
                    Bound::Nothing
                }
                _ => return self.untranslated(partition, *offset, Untranslatable::Empty),
            };
            bounds.push((*partition, *offset, bound));
        }
        let target_topic = (view.target_topic)(topic);
        let mut resume = Vec::new();
        for target in view
            .target_partitions
            .iter()
            .filter(|(t, _)| *t == target_topic)
        {
            let end = (view.target_end)(target);
            let mut at = if all_copied { end } else { None };
            if at.is_none() {
                for (partition, offset, bound) in &bounds {
                    let Bound::Map(map) = bound else { continue };
                    match map.resume_at(target.1, *offset) {
                        Ok(offset) => at = Some(at.map_or(offset, |at: i64| at.min(offset))),
                        Err(why) => return self.untranslated(partition, *offset, why),
                    }
                }
            }
            // No map bounds it: every source partition was read to its end.
            let Some(at) = at.or(end) else {
                self.untranslated.push(format!(
                    "{}[{}] on the target has no high watermark",
                    target.0, target.1
                ));
                return;
            };
            resume.push((target.clone(), at));
        }
        let sources = positions.iter().map(|(p, offset)| (p.1, *offset)).collect();
        for (target, at) in resume {
            let resumes_at = self.settle(target.clone(), at, &sources, on_target);
            if !all_copied {
                for (_, offset, bound) in &bounds {
                    if let Bound::Map(map) = bound {
                        self.re_read += map.read_at_or_after(target.1, *offset, resumes_at);
                    }
                }
            }
        }
        if !all_copied {
            for (_, offset, bound) in &bounds {
                if let Bound::Map(map) = bound {
                    self.re_read += map.not_in_map(*offset);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{mirrored_partitions, offsets, view_of};
    use super::*;
    use crate::keyed_map::KeyedMap;

    fn partition(p: i32) -> SourcePartition {
        ("orders".to_string(), p)
    }

    /// The plan for a group that committed `committed` of two source partitions mirrored into two target
    /// partitions: source offsets 0..30 of each alternate between them (15 copies per lane: every one a point),
    /// copied by one producer, the maps published with `heads`. The source's ends are `source_end` when the
    /// target's are read (`target_end`), 30 when the mirror's positions were.
    fn plan(committed: &[(i32, i64)], heads: i64, source_end: i64, target_end: i64) -> GroupPlan {
        let mut ends = [0i64; 2];
        let mut maps = [KeyedMap::default(), KeyedMap::default()];
        for s in 0..30 {
            for (p, map) in maps.iter_mut().enumerate() {
                let q = ((s + p as i64) % 2) as i32;
                map.copied(s, q, ends[q as usize]);
                ends[q as usize] += 1;
            }
        }
        let maps: super::super::OffsetMaps = maps
            .into_iter()
            .enumerate()
            .map(|(p, mut m)| {
                let published = m.publish([(0, heads), (1, heads)].into(), Some(30)).clone();
                (partition(p as i32), PublishedMap::Key(published))
            })
            .collect();
        let mirrored = mirrored_partitions(&[(partition(0), 30, 30), (partition(1), 30, 30)]);
        let view = view_of(
            &mirrored,
            &maps,
            &[("orders", 2)],
            move |_| Some(source_end),
            move |_| Some(target_end),
        );
        let committed = committed
            .iter()
            .map(|(p, offset)| (partition(*p), *offset))
            .collect();
        GroupPlan::keyed(&committed, &view, |_| None)
    }

    #[test]
    fn each_target_partition_resumes_at_the_lowest_bound_and_counts_what_it_re_reads() {
        // Partition 0 read 20, partition 1 read 26.
        let plan = plan(&[(0, 20), (1, 26)], 30, 30, 40);
        assert_eq!(plan.partitions, 2);
        assert_eq!(plan.missed, 0);
        // Target offset t holds source offset t of one partition: in target 0, source 0's even and source 1's
        // odd offsets. Target 0 resumes at 20 (source 0's offset 20), re-reading source 1's 21, 23, 25 (3);
        // target 1 at 21 (source 0's offset 21), re-reading source 1's 22, 24 (2).
        assert_eq!(
            offsets(&plan),
            vec![(("orders".into(), 0), 20), (("orders".into(), 1), 21)]
        );
        assert_eq!(plan.re_read, 5, "exact here: every copy is still a point");
        assert!(plan.untranslated.is_empty());
    }

    #[test]
    fn a_group_that_read_everything_copied_resumes_at_the_ends() {
        let plan_at_end = plan(&[(0, 30), (1, 30)], 20, 30, 50);
        assert_eq!(
            offsets(&plan_at_end),
            vec![(("orders".into(), 0), 50), (("orders".into(), 1), 50)]
        );
        assert_eq!((plan_at_end.missed, plan_at_end.re_read), (0, 0));
        // New records arrived on the source after the target's ends were read: the maps bound it instead (the
        // newest copies here, the heads being older).
        let grown = plan(&[(0, 30), (1, 30)], 20, 31, 50);
        assert_eq!(
            offsets(&grown),
            vec![(("orders".into(), 0), 29), (("orders".into(), 1), 29)]
        );
    }

    #[test]
    fn a_source_partition_the_group_never_committed_leaves_the_topic_untranslated() {
        let plan = plan(&[(0, 20)], 30, 30, 30);
        assert!(plan.commits.is_empty());
        assert!(plan.untranslated[0].contains("orders[1] has no committed offset"));
    }
}
