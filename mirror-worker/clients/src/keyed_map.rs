//! `spec.partitioning: key`: where the copies of one source partition's records sit among the target
//! partitions, and what a consumer group's committed source offset bounds on each target partition. The
//! `partitioning: preserve` counterpart, one target partition per source partition, is [`crate::offset_map`].
//!
//! A target partition `q` holds records of every source partition, interleaved; a source partition `p`'s
//! records in `q` (its *lane*) keep their order there, because one idempotent producer writes them in order.
//! The map of `p` keeps, per lane, thinned [`Point`]s (source offset, target offset, and the copy's number
//! in the lane), and when published, the *head* of every target partition: the offset after the last copy the
//! worker's producer had acknowledged there. A copy of `p` not yet acknowledged then is written after that
//! copy, so at or after the head. That gives each lane a lower bound for where `p`'s records from a committed
//! offset `S` on lie ([`KeyedMap::resume_at`]):
//! - a point at or past `S` is known: its lane neighbour before `S`, plus one, or the point itself when the
//!   two are neighbours in the lane (their numbers are consecutive);
//! - none is: the head of the lane's target partition.
//!
//! A group resumes each target partition at the smallest bound over all source partitions, and re-reads what
//! lies after it that it read on the source ([`KeyedMap::read_at_or_after`] counts it from the numbers).
//!
//! Only for one shared producer per worker (`delivery: atLeastOnce`): the heads rest on its ordering.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::offset_map::Untranslatable;

/// Points kept per source partition, shared among its lanes (at least [`MIN_LANE_POINTS`] each): the published
/// record stays a few kilobytes at 64 target partitions.
pub const PARTITION_POINTS: usize = 128;
/// Points a lane keeps at least: its first, its newest, and two between.
pub const MIN_LANE_POINTS: usize = 4;
/// Points a lane keeps at most.
pub const MAX_LANE_POINTS: usize = 16;

/// One copy: source offset, target offset, its number among the lane's copies (a gap in the numbers where
/// copies are not known one by one: see [`Lane::gap`]), and where the lane's later copies lie at the earliest.
/// Published as `[source, target, number, after - target - 1]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "[i64; 4]", into = "[i64; 4]")]
pub struct Point {
    pub source: i64,
    pub target: i64,
    pub number: i64,
    /// Copies of later source offsets in the lane lie at or after it: right after this copy, or the head of the
    /// target partition when the map was published with this copy its newest (the later ones were not
    /// acknowledged then).
    pub after: i64,
}

impl From<[i64; 4]> for Point {
    fn from([source, target, number, after]: [i64; 4]) -> Self {
        Point {
            source,
            target,
            number,
            after: target + 1 + after,
        }
    }
}

impl From<Point> for [i64; 4] {
    fn from(p: Point) -> Self {
        [p.source, p.target, p.number, p.after - p.target - 1]
    }
}

/// A source partition's copies in one target partition, ascending in all three.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Lane {
    /// The first copy (never thinned away), the newest, and thinned ones between.
    pub points: Vec<Point>,
    /// The number the next copy gets.
    pub next_number: i64,
}

impl Lane {
    /// Copies between here and the next are not known one by one (superseded by a re-sent range, or made by
    /// an earlier owner after its last publish): the next point is never taken for the neighbour of the last.
    fn gap(&mut self, copies: i64) {
        self.next_number += copies.max(1);
    }

    fn copied(&mut self, source: i64, target: i64, keep: usize) {
        if self.points.last().is_some_and(|last| source <= last.source) {
            // A re-sent range: its copies land after the earlier ones, which are superseded.
            self.points.retain(|p| p.source < source);
            self.gap(1);
        }
        self.points.push(Point {
            source,
            target,
            number: self.next_number,
            after: target + 1,
        });
        self.next_number += 1;
        self.thin(keep);
    }

    /// Drops interior points until `keep` are left, the one whose neighbours are closest relative to how far
    /// they lie behind the newest: old history gets coarser, recent history stays exact.
    fn thin(&mut self, keep: usize) {
        while self.points.len() > keep.max(MIN_LANE_POINTS) {
            let newest = self.points.len() - 1;
            let head = self.points[newest].number;
            let cost = |k: usize| {
                let gap = self.points[k + 1].number - self.points[k - 1].number;
                gap as f64 / (head - self.points[k + 1].number + 1) as f64
            };
            let k = (1..newest)
                .min_by(|a, b| cost(*a).total_cmp(&cost(*b)).then(a.cmp(b)))
                .expect("more points than MIN_LANE_POINTS");
            self.points.remove(k);
        }
    }
}

/// Where a source partition's copies sit among the target partitions; see the module.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyedMap {
    /// The first source offset the map knows the copies of (from the earliest owner it carries on from).
    pub start: Option<i64>,
    /// The first source offset this owner copied: from here on, [`heads`](Self::heads) bound what the map does
    /// not know.
    pub since: Option<i64>,
    /// By target partition.
    pub lanes: BTreeMap<i32, Lane>,
    /// When published: by target partition, the offset after the last copy the owner's producer had
    /// acknowledged there.
    pub heads: BTreeMap<i32, i64>,
    /// The same bound for what earlier owners copied after their last publish: the lowest of their heads.
    pub earlier_heads: BTreeMap<i32, i64>,
    /// When published: every source offset below it was copied (or left unmirrored) and is in the map.
    pub copied_through: Option<i64>,
    /// After a hand-over: what was copied through when this map last knew; the copies another owner made
    /// since (at most one per source offset from here to this owner's first copy) are counted as a gap.
    #[serde(skip)]
    unknown_from: Option<i64>,
}

impl KeyedMap {
    /// Carries on from what an earlier owner of the partition published (read back when this worker
    /// started).
    pub fn after(earlier: &KeyedMap) -> KeyedMap {
        let mut map = earlier.clone();
        map.handed_over();
        map
    }

    /// This map carries on from an earlier owner's: copies the map does not know may have been made since its
    /// last publish, after every copy it knows and after the heads it published. From here, source offsets
    /// before this owner's first copy resume no earlier than that bound (the lowest over all earlier owners),
    /// and each lane's next copy is not taken for the neighbour of its last.
    fn handed_over(&mut self) {
        let first_owner = self.since.is_some() && self.since == self.start;
        let partitions: std::collections::BTreeSet<i32> = self
            .lanes
            .keys()
            .chain(self.heads.keys())
            .copied()
            .collect();
        let mut bounds = BTreeMap::new();
        for q in partitions {
            let newest = self
                .lanes
                .get(&q)
                .and_then(|l| l.points.last())
                .map(|p| p.target + 1);
            let Some(ours) = newest.max(self.heads.get(&q).copied()) else {
                continue;
            };
            match self.earlier_heads.get(&q) {
                Some(earlier) => {
                    bounds.insert(q, ours.min(*earlier));
                }
                // Before this owner, no one copied: this owner's bound is the only one.
                None if first_owner => {
                    bounds.insert(q, ours);
                }
                // An earlier owner gave no bound there: none is known.
                None => {}
            }
        }
        self.earlier_heads = bounds;
        self.since = None;
        // Never published: a gap of one copy (what another owner copied is then not counted).
        self.unknown_from = Some(
            self.copied_through
                .or(self.unknown_from)
                .unwrap_or(i64::MAX),
        );
    }

    /// The record at source offset `source` was copied to `target` in target partition `partition`.
    pub fn copied(&mut self, source: i64, partition: i32, target: i64) {
        self.start.get_or_insert(source);
        if self.since.is_none() {
            self.since = Some(source);
            if let Some(from) = self.unknown_from.take() {
                let unknown = source.saturating_sub(from);
                self.lanes.values_mut().for_each(|l| l.gap(unknown));
            }
        }
        let lanes = self.lanes.len() + usize::from(!self.lanes.contains_key(&partition));
        let keep = (PARTITION_POINTS / lanes).min(MAX_LANE_POINTS);
        self.lanes
            .entry(partition)
            .or_default()
            .copied(source, target, keep);
    }

    /// Records the producer's `heads` and what was copied through, for publishing the map now: the heads
    /// read under the lock that orders this map's updates, so a copy acknowledged below a head is in the map;
    /// `copied_through` read before taking it.
    pub fn publish(&mut self, heads: BTreeMap<i32, i64>, copied_through: Option<i64>) -> &KeyedMap {
        for (partition, lane) in &mut self.lanes {
            if let (Some(newest), Some(head)) = (lane.points.last_mut(), heads.get(partition)) {
                newest.after = newest.after.max(*head);
            }
        }
        self.heads = heads;
        self.copied_through = copied_through;
        self
    }

    /// The lowest offset of target partition `partition` at or after which every copy of this partition's
    /// records from source offset `committed` on lies: where a group that committed `committed` here resumes
    /// there, as far as this source partition is concerned.
    pub fn resume_at(&self, partition: i32, committed: i64) -> Result<i64, Untranslatable> {
        let start = self.start.ok_or(Untranslatable::Empty)?;
        if committed < start {
            return Err(Untranslatable::BeforeMap { first: start });
        }
        let points = self
            .lanes
            .get(&partition)
            .map_or(&[][..], |l| l.points.as_slice());
        let j = points.partition_point(|p| p.source < committed);
        if let Some(at) = points.get(j) {
            return Ok(match j.checked_sub(1).map(|i| points[i]) {
                // The lane's first copy is at or past `committed`: nothing of the lane lies before it.
                None => at.target,
                Some(before) if before.number + 1 == at.number => at.target,
                Some(before) => before.after,
            });
        }
        // Every copy the map knows is before `committed`: the rest come after the newest, and after the head.
        let heads = if self.since.is_some_and(|since| committed >= since) {
            &self.heads
        } else {
            &self.earlier_heads
        };
        let after_newest = points.last().map(|p| p.after);
        match (heads.get(&partition).copied(), after_newest) {
            (None, None) => Err(Untranslatable::NoBound),
            (head, newest) => Ok(head.max(newest).unwrap_or_default()),
        }
    }

    /// At most how many copies of source offsets below `committed` lie at or after `from` in target partition
    /// `partition`: records a group that committed `committed` reads again when it resumes at `from`. Copies
    /// the map does not know yet are counted once per source partition by [`not_in_map`](Self::not_in_map).
    pub fn read_at_or_after(&self, partition: i32, committed: i64, from: i64) -> i64 {
        let Some(lane) = self.lanes.get(&partition) else {
            return 0;
        };
        let points = &lane.points;
        // Copies numbered up to the last point before `from` lie before it; the lane's first copy is its first
        // point.
        let lowest = points
            .iter()
            .take_while(|p| p.target < from)
            .last()
            .map_or(points.first().map_or(0, |p| p.number), |p| p.number + 1);
        // Copies numbered below the first point at or past `committed` may be below `committed`.
        let below = points
            .iter()
            .find(|p| p.source >= committed)
            .map_or(lane.next_number, |p| p.number);
        (below - lowest).max(0)
    }

    /// Source offsets below `committed` that the map did not know copied when published (in flight then, or
    /// copied since): at most that many records are read again wherever they landed.
    pub fn not_in_map(&self, committed: i64) -> i64 {
        (committed - self.copied_through.unwrap_or(committed)).max(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// A deterministic stream of (source partition, target partition) choices.
    struct Lcg(u64);
    impl Lcg {
        fn next(&mut self, n: u64) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (self.0 >> 33) % n
        }
    }

    /// Two source partitions copied by one producer into three target partitions, the records of each source
    /// partition spread by key; the map of each published after every record. For every committed pair, the
    /// resume offsets miss nothing, and the re-read count bounds what lies after them that was read.
    #[test]
    fn resuming_misses_nothing_and_the_re_read_bound_holds() {
        const P: usize = 2;
        const Q: i32 = 3;
        let mut rng = Lcg(7);
        let mut maps = vec![KeyedMap::default(); P];
        let mut next_source = [0i64; P];
        let mut ends = vec![0i64; Q as usize];
        // Every copy: (source partition, source offset, target partition, target offset).
        let mut copies: Vec<(usize, i64, i32, i64)> = Vec::new();
        for i in 0..3000 {
            // Published now and then: each lane's newest point then bounds later copies by the heads.
            if i % 37 == 0 {
                let heads: BTreeMap<i32, i64> = (0..Q).map(|q| (q, ends[q as usize])).collect();
                for (p, map) in maps.iter_mut().enumerate() {
                    map.publish(heads.clone(), Some(next_source[p]));
                }
            }
            let p = rng.next(P as u64) as usize;
            let q = rng.next(Q as u64) as i32;
            let s = next_source[p];
            next_source[p] += 1;
            let t = ends[q as usize];
            ends[q as usize] += 1;
            maps[p].copied(s, q, t);
            copies.push((p, s, q, t));
        }
        let heads: BTreeMap<i32, i64> = (0..Q).map(|q| (q, ends[q as usize])).collect();
        let published: Vec<KeyedMap> = maps
            .iter()
            .enumerate()
            .map(|(p, m)| {
                m.clone()
                    .publish(heads.clone(), Some(next_source[p]))
                    .clone()
            })
            .collect();
        for _ in 0..300 {
            let committed: Vec<i64> = (0..P)
                .map(|p| rng.next(next_source[p] as u64 + 1) as i64)
                .collect();
            for q in 0..Q {
                let from = (0..P)
                    .map(|p| published[p].resume_at(q, committed[p]).unwrap())
                    .min()
                    .unwrap();
                let in_q = copies.iter().filter(|c| c.2 == q);
                let missed = in_q
                    .clone()
                    .filter(|c| c.1 >= committed[c.0] && c.3 < from)
                    .count();
                assert_eq!(missed, 0, "{committed:?} resumes {q} at {from}");
                let re_read = in_q.filter(|c| c.1 < committed[c.0] && c.3 >= from).count() as i64;
                let bound: i64 = (0..P)
                    .map(|p| published[p].read_at_or_after(q, committed[p], from))
                    .sum();
                assert!(
                    re_read <= bound,
                    "{committed:?} at {from} in {q}: re-reads {re_read}, bound {bound}"
                );
            }
        }
    }

    #[test]
    fn a_group_at_the_end_resumes_at_the_head_and_a_recent_position_exactly() {
        let mut m = KeyedMap::default();
        // Source offsets 0..100 alternate between target partitions 0 and 1, at 10, 11, ... in each.
        for s in 0..100 {
            m.copied(s, (s % 2) as i32, 10 + s / 2);
        }
        let m = m.publish([(0, 70), (1, 80)].into(), Some(100));
        assert_eq!(m.resume_at(0, 100), Ok(70), "nothing of it past the head");
        assert_eq!(m.resume_at(1, 100), Ok(80));
        // The newest copies are points, and neighbours: exact.
        assert_eq!(m.resume_at(0, 98), Ok(59));
        assert_eq!(m.resume_at(1, 97), Ok(58));
        assert_eq!(
            m.resume_at(0, 97),
            Ok(59),
            "97 went to 1; 98 is the next in 0"
        );
        assert_eq!(m.read_at_or_after(0, 98, 59), 0);
        assert_eq!(m.not_in_map(105), 5);
        assert_eq!(
            m.resume_at(0, -1),
            Err(Untranslatable::BeforeMap { first: 0 })
        );
    }

    #[test]
    fn a_re_sent_range_supersedes_the_earlier_copies() {
        let mut m = KeyedMap::default();
        for s in 0..10 {
            m.copied(s, 0, s);
        }
        // 5..10 sent again after a failed delivery: copies at 10..15.
        for s in 5..10 {
            m.copied(s, 0, s + 5);
        }
        let m = m.publish([(0, 15)].into(), Some(10));
        assert_eq!(
            m.resume_at(0, 5),
            Ok(5),
            "after 4's copy: the later copies follow"
        );
        assert_eq!(m.resume_at(0, 7), Ok(12), "exact among the re-sent ones");
    }

    #[test]
    fn an_earlier_owners_map_carries_on_with_its_heads_for_what_it_did_not_publish() {
        let mut earlier = KeyedMap::default();
        for s in 0..10 {
            earlier.copied(s, 0, s);
        }
        earlier.publish([(0, 10), (1, 40)].into(), Some(10));
        let mut m = KeyedMap::after(&earlier);
        // The earlier owner copied 10 and 11 after publishing (at 10 and 11) and stopped; this one resumes at 12.
        m.copied(12, 0, 30);
        let m = m.publish([(0, 31), (1, 50)].into(), Some(13));
        assert_eq!(
            m.resume_at(0, 10),
            Ok(10),
            "not the neighbour of 9: after it"
        );
        assert_eq!(m.resume_at(1, 11), Ok(40), "the earlier owner's head");
        assert_eq!(m.resume_at(1, 12), Ok(50), "this owner's head");
        let sources: BTreeSet<i64> = m.lanes[&0].points.iter().map(|p| p.source).collect();
        assert!(sources.contains(&0) && sources.contains(&12));
    }

    #[test]
    fn a_lane_keeps_its_first_and_newest_points_and_the_record_stays_small() {
        let mut m = KeyedMap::default();
        for s in 0..100_000 {
            m.copied(s, (s % 64) as i32, s / 64);
        }
        let json = serde_json::to_vec(m.publish(BTreeMap::new(), Some(100_000))).unwrap();
        assert!(json.len() < 16_000, "{} bytes", json.len());
        let lane = &m.lanes[&5];
        assert_eq!(lane.points.first().unwrap().source, 5);
        assert_eq!(lane.points.last().unwrap().source, 99_973);
    }

    #[test]
    fn a_published_keyed_map_reads_back_as_one() {
        let mut m = KeyedMap::default();
        for s in 0..100 {
            m.copied(s, (s % 3) as i32, s);
        }
        let json = serde_json::to_vec(m.publish([(0, 100)].into(), Some(100))).unwrap();
        assert_eq!(
            crate::offset_map::PublishedMap::parse(&json),
            Some(crate::offset_map::PublishedMap::Key(m.clone()))
        );
        let preserve = serde_json::to_vec(&crate::offset_map::OffsetMap::new(2)).unwrap();
        assert!(matches!(
            crate::offset_map::PublishedMap::parse(&preserve),
            Some(crate::offset_map::PublishedMap::Preserve(_))
        ));
    }
}
