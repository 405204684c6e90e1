//! Where the copies of a source partition's records sit on the target, and what a consumer group's committed
//! source offset becomes on the target. The worker builds an [`OffsetMap`] from its delivery reports and
//! publishes it to the compacted topic [`offset_syncs_topic`] on the target; the operator reads it back to
//! commit `spec.consumerGroups`' offsets on the target. Pure, but for [`read_published`], the one reader of that
//! topic both sides use.
//!
//! A map is a list of [`Segment`]s, ascending and disjoint in source offsets (and so in target offsets: a
//! partition's copies are written in order). A segment says: each record of the source offsets
//! `start..=end` has a copy at `s + delta + e` for some `e` in `0..=spread`. A plain at-least-once mirror of a
//! partition is one segment with spread 0 for as long as nothing is re-sent: the translation is then exact.
//! A new segment starts where the distance between source and target offsets changes: a re-sent range after a
//! failed delivery (copies later on the target), a gap in the source (compaction, transaction markers), a
//! transaction marker on the target (`delivery: exactlyOnce`, one per transaction).
//!
//! Translating a committed offset `S` (the next record the group reads) to `S + delta` of the segment that
//! holds `S` misses nothing: every record at `S` or later has a copy at or after it. It re-reads at most
//! `spread` records (copies between that point and the exact one). Beyond the map's end (the group read
//! records not yet copied) it translates to just after the last copy: those records are read again on the
//! target once they arrive.

use std::collections::HashMap;
use std::time::Duration;

use kafka_mirror_crds::OWN_TOPIC_PREFIX;
use serde::{Deserialize, Serialize};

use crate::client_config::KafkaClientConfig;
use crate::compacted;
use crate::keyed_map::KeyedMap;

/// Segments kept per partition. Beyond it, neighbours are merged (see `OffsetMap::thin`), so old positions
/// stay translatable, a little less exactly, and recent ones stay exact.
pub const MAX_SEGMENTS: usize = 64;

/// The compacted topic on the target that holds the offset maps of a mirror's group, one record per source
/// partition (key [`partition_key`]).
pub fn offset_syncs_topic(group_id: &str) -> String {
    format!("{OWN_TOPIC_PREFIX}offset-syncs.{group_id}")
}

/// A source partition's record in the [`offset_syncs_topic`]: its [`OffsetMap`] under `partitioning:
/// preserve`, its [`KeyedMap`] under `partitioning: key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublishedMap {
    Preserve(OffsetMap),
    Key(KeyedMap),
}

impl PublishedMap {
    /// The map a record of the offset syncs topic holds: an [`OffsetMap`] has a `targetPartition`. (Not serde's
    /// `untagged`: it buffers the record, and a buffered map's keys no longer read as the target partition
    /// numbers of a [`KeyedMap`]'s lanes.)
    pub fn parse(value: &[u8]) -> Option<PublishedMap> {
        serde_json::from_slice(value)
            .map(PublishedMap::Preserve)
            .or_else(|_| serde_json::from_slice(value).map(PublishedMap::Key))
            .ok()
    }
}

/// Every source partition's map as last published to the mirror's [`offset_syncs_topic`] (read
/// `read_committed`: an exactly-once worker writes them in its transactions; a topic not created yet reads as
/// empty). Blocking: run it off the async runtime.
/// `target` is the target's connection, `group_id` the mirror's.
pub fn read_published(
    target: &KafkaClientConfig,
    group_id: &str,
    timeout: Duration,
) -> Result<HashMap<(String, i32), PublishedMap>, String> {
    let latest = compacted::read_latest(
        target,
        &format!("{group_id}.offset-syncs-reader"),
        &offset_syncs_topic(group_id),
        timeout,
        compacted::Missing::IsEmpty,
    )?;
    Ok(latest
        .iter()
        .filter_map(|(key, value)| Some((parse_partition_key(key)?, PublishedMap::parse(value)?)))
        .collect())
}

/// The key of a source partition's record in the mirror's own topics on the target (positions, offset syncs):
/// `<topic>:<partition>` (`:` cannot occur in a topic name).
pub fn partition_key(topic: &str, partition: i32) -> String {
    format!("{topic}:{partition}")
}

/// The source partition a [`partition_key`] names.
pub fn parse_partition_key(key: &[u8]) -> Option<(String, i32)> {
    let key = std::str::from_utf8(key).ok()?;
    let (topic, partition) = key.rsplit_once(':')?;
    Some((topic.to_string(), partition.parse().ok()?))
}

/// Source offsets `start..=end` whose copies sit at `s + delta + e`, `0 <= e <= spread`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Segment {
    pub start: i64,
    pub end: i64,
    pub delta: i64,
    pub spread: i64,
}

impl Segment {
    /// The two neighbours `self` (earlier) and `next` as one segment: the smaller delta, so no translation
    /// points past a copy.
    fn merged(&self, next: &Segment) -> Segment {
        let delta = self.delta.min(next.delta);
        let top = (self.delta + self.spread).max(next.delta + next.spread);
        Segment {
            start: self.start,
            end: next.end,
            delta,
            spread: top - delta,
        }
    }
}

/// A committed source offset translated to the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Translation {
    /// Where the group resumes on the target: no record it has not read lies before it.
    pub offset: i64,
    /// At most this many records between `offset` and the exact position: records the group read on the
    /// source and reads again on the target.
    pub re_read_at_most: i64,
}

/// Why a committed offset has no translation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Untranslatable {
    /// Nothing of the partition was copied since the map began.
    Empty,
    /// The group's position lies before the map's first copy (it was committed before this mirror published
    /// offset syncs): a consumer of the target could only start from the beginning to be sure.
    BeforeMap { first: i64 },
    /// `partitioning: key`: in the target partition asked for, the map has no bound for copies it does not know
    /// (its owners never had one acknowledged there).
    NoBound,
}

/// The copies of one source partition in one target partition.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OffsetMap {
    pub target_partition: i32,
    pub segments: Vec<Segment>,
}

impl OffsetMap {
    pub fn new(target_partition: i32) -> Self {
        Self {
            target_partition,
            segments: Vec::new(),
        }
    }

    /// The record at source offset `source` was copied to target offset `target`. Reports arrive in target
    /// order; a source offset at or below the end of the map is a re-sent range, which replaces the map from
    /// there on (the later copies are the ones to resume from; the earlier ones stay before them).
    pub fn copied(&mut self, source: i64, target: i64) {
        let delta = target - source;
        if let Some(last) = self.segments.last_mut()
            && source > last.end
        {
            if delta == last.delta && last.spread == 0 {
                last.end = source;
                return;
            }
        } else {
            self.cut_from(source);
        }
        self.segments.push(Segment {
            start: source,
            end: source,
            delta,
            spread: 0,
        });
        self.thin();
    }

    /// Drops what the map says about `from` and later.
    fn cut_from(&mut self, from: i64) {
        self.segments.retain(|s| s.start < from);
        if let Some(last) = self.segments.last_mut() {
            last.end = last.end.min(from - 1);
        }
    }

    /// Merges neighbours until [`MAX_SEGMENTS`] are left, the pair whose merged spread is smallest relative to
    /// how far its end lies behind the map's end: old history gets coarser, recent history stays exact, and a
    /// group `n` transactions (or re-sent ranges) behind re-reads at most about `n / 4` records (the unit test
    /// below holds it to that over 500 transactions). The newest segment, still growing, is never merged.
    fn thin(&mut self) {
        while self.segments.len() > MAX_SEGMENTS {
            let newest = self.segments.len() - 1;
            let head = self.segments[newest].end;
            let cost = |i: usize| {
                let merged = self.segments[i].merged(&self.segments[i + 1]);
                (merged.spread + 1) as f64 / (head - self.segments[i + 1].end + 1) as f64
            };
            let i = (0..newest - 1)
                .min_by(|a, b| cost(*a).total_cmp(&cost(*b)).then(a.cmp(b)))
                .expect("more than MAX_SEGMENTS segments");
            self.segments[i] = self.segments[i].merged(&self.segments[i + 1]);
            self.segments.remove(i + 1);
        }
    }

    /// Adds what an earlier map of the partition (a previous owner's, read back from the offset syncs topic)
    /// says about source offsets before this map's first copy.
    pub fn prepend(&mut self, earlier: &OffsetMap) {
        let first = self.segments.first().map_or(i64::MAX, |s| s.start);
        let mut kept: Vec<Segment> = earlier
            .segments
            .iter()
            .filter(|s| s.start < first)
            .map(|s| Segment {
                end: s.end.min(first - 1),
                ..*s
            })
            .collect();
        kept.append(&mut self.segments);
        self.segments = kept;
        self.thin();
    }

    /// The last source offset with a copy, if any.
    pub fn end(&self) -> Option<i64> {
        self.segments.last().map(|s| s.end)
    }

    /// The target offset a group whose committed source offset is `committed` resumes from.
    pub fn translate(&self, committed: i64) -> Result<Translation, Untranslatable> {
        let first = self.segments.first().ok_or(Untranslatable::Empty)?;
        if committed < first.start {
            return Err(Untranslatable::BeforeMap { first: first.start });
        }
        // The last segment starting at or before the committed offset.
        let i = self.segments.partition_point(|s| s.start <= committed) - 1;
        let segment = &self.segments[i];
        Ok(if committed <= segment.end + 1 {
            Translation {
                offset: committed + segment.delta,
                re_read_at_most: segment.spread,
            }
        } else {
            // Past the segment's last copy: records between are not copied yet, or copied by a previous owner
            // of the partition after its last publish, or do not exist (a gap in the source, records left
            // unmirrored by `markOrigin`): resume after the last copy, and count them all as read again (the
            // map cannot tell them apart).
            Translation {
                offset: segment.end + 1 + segment.delta,
                re_read_at_most: segment.spread + committed - segment.end - 1,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(copies: &[(i64, i64)]) -> OffsetMap {
        let mut map = OffsetMap::new(0);
        for (s, t) in copies {
            map.copied(*s, *t);
        }
        map
    }

    fn exact(offset: i64) -> Result<Translation, Untranslatable> {
        Ok(Translation {
            offset,
            re_read_at_most: 0,
        })
    }

    #[test]
    fn a_plain_copy_is_one_segment_and_translates_exactly() {
        let m = map(&(100..200).map(|s| (s, s - 100)).collect::<Vec<_>>());
        assert_eq!(m.segments.len(), 1);
        assert_eq!(m.translate(100), exact(0));
        assert_eq!(m.translate(150), exact(50));
        assert_eq!(m.translate(200), exact(100), "everything read: the end");
        assert_eq!(
            m.translate(99),
            Err(Untranslatable::BeforeMap { first: 100 })
        );
        assert_eq!(OffsetMap::new(0).translate(5), Err(Untranslatable::Empty));
    }

    #[test]
    fn a_group_ahead_of_the_copy_resumes_after_the_last_copy_and_re_reads_the_rest() {
        let m = map(&[(0, 0), (1, 1), (2, 2)]);
        assert_eq!(
            m.translate(10),
            Ok(Translation {
                offset: 3,
                re_read_at_most: 7
            })
        );
    }

    #[test]
    fn a_re_sent_range_translates_to_its_later_copies() {
        // 0..=9 copied to 0..=9; 5..=9 failed to be confirmed and were sent again, landing at 10..=14.
        let mut copies: Vec<(i64, i64)> = (0..10).map(|s| (s, s)).collect();
        copies.extend((5..12).map(|s| (s, s + 5)));
        let m = map(&copies);
        assert_eq!(m.segments.len(), 2);
        assert_eq!(m.translate(3), exact(3));
        assert_eq!(m.translate(5), exact(10), "the later copy of 5");
        assert_eq!(m.translate(12), exact(17));
    }

    #[test]
    fn a_source_gap_never_translates_past_the_next_copy() {
        // Source offsets 10..=14 hold no records (compacted away): 15 lands right after 9.
        let m = map(&[(8, 8), (9, 9), (15, 10), (16, 11)]);
        assert_eq!(
            m.translate(12),
            Ok(Translation {
                offset: 10,
                re_read_at_most: 2
            }),
            "resume at the copy of 15; 10 and 11 might have been copies the map does not know"
        );
        assert_eq!(m.translate(15), exact(10));
        assert_eq!(m.translate(16), exact(11));
    }

    #[test]
    fn thinning_keeps_translations_safe_and_bounds_the_re_reads_by_the_spread() {
        // Exactly once: each transaction of 10 records ends with a marker on the target (one offset).
        let mut m = OffsetMap::new(0);
        let mut target = 0;
        let mut exact_position = std::collections::BTreeMap::new();
        for transaction in 0..500 {
            for s in transaction * 10..transaction * 10 + 10 {
                m.copied(s, target);
                exact_position.insert(s, target);
                target += 1;
            }
            target += 1; // the marker
        }
        assert_eq!(m.segments.len(), MAX_SEGMENTS);
        for (s, t) in &exact_position {
            let translation = m.translate(*s).expect("translatable");
            assert!(translation.offset <= *t, "{s}: {translation:?} passes {t}");
            // Between the translation and the exact position lie only copies of earlier records and markers.
            assert!(
                *t - translation.offset <= translation.re_read_at_most,
                "{s}: {translation:?}, exact {t}"
            );
            // The further behind, the coarser, in proportion: a quarter of the transactions behind at most.
            let behind = (4_999 - s) / 10;
            assert!(
                translation.re_read_at_most <= behind / 4 + 1,
                "{s}, {behind} transactions behind: {translation:?}"
            );
        }
        let newest = m.translate(4_995).unwrap();
        assert_eq!(newest.re_read_at_most, 0, "recent positions stay exact");
    }

    #[test]
    fn an_earlier_owners_map_fills_in_before_this_one() {
        let earlier = map(&[(0, 0), (1, 1), (2, 2), (3, 3)]);
        let mut m = map(&[(2, 10), (3, 11)]);
        m.prepend(&earlier);
        assert_eq!(m.translate(1), exact(1));
        assert_eq!(m.translate(2), exact(10));
        assert_eq!(m.segments.len(), 2);
    }

    #[test]
    fn keys_name_the_source_partition() {
        assert_eq!(partition_key("orders.eu", 3), "orders.eu:3");
        assert_eq!(
            parse_partition_key(b"orders.eu:3"),
            Some(("orders.eu".into(), 3))
        );
        assert_eq!(parse_partition_key(b"orders"), None);
        assert_eq!(offset_syncs_topic("g"), "kafka-mirror.offset-syncs.g");
    }
}
