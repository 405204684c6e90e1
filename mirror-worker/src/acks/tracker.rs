//! Ordered acknowledgement tracking for one source partition: which offset may be committed, given that the
//! target acknowledges records out of order and may fail some of them.
//!
//! The rule that makes the mirror at-least-once: the committed position never passes a record the target has
//! not acknowledged. Pure data structure; the locking lives in [`super::partition_state`].

use std::collections::VecDeque;

/// Entries of `outstanding` a partition keeps room for when it holds few. A fetch hands the stream up to
/// `max.partition.fetch.bytes` of one partition at once, thousands of small records in flight together; a queue
/// that kept each partition's highest count held 7.6 of the 45 MB a worker's heap peaked at with 100-byte
/// records over 64 partitions (jemalloc heap profile, BENCHMARKS.md).
const RETAINED_CAPACITY: usize = 256;

/// How a record handed to the producer has settled so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Settled {
    InFlight,
    Acked,
    /// Delivery failed; the record will be sent again after a rewind, or never if the mirror stops.
    Failed,
}

/// Records of one partition handed to the producer and not yet settled, in offset order.
#[derive(Debug, Default)]
pub struct AckTracker {
    /// Offsets sent that the committable position has not passed yet (not acknowledged, or acknowledged after
    /// one that is not), ascending, with how each settled so far.
    outstanding: VecDeque<(i64, Settled)>,
    /// Entries of `outstanding` still waiting for the target: what a drain waits for.
    in_flight: usize,
    /// Next offset to consume after everything acknowledged so far: the position that may be committed.
    committable: Option<i64>,
    /// Lowest offset whose delivery failed in this generation; the partition must be re-read from
    /// `committable` before anything past it counts.
    failed_at: Option<i64>,
    /// Bumped on every rewind; acknowledgements of an older generation are ignored.
    generation: u64,
}

impl AckTracker {
    /// Starts tracking at a known position (e.g. after an assignment the committed offset is unknown: `None`).
    pub fn new(committable: Option<i64>) -> Self {
        Self {
            committable,
            ..Self::default()
        }
    }

    /// The current generation, to be carried by every record sent.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// A record at `offset` was handed to the producer. Offsets must ascend within a generation.
    pub fn sent(&mut self, offset: i64) {
        debug_assert!(
            self.outstanding
                .back()
                .is_none_or(|(last, _)| *last < offset),
            "offsets must ascend"
        );
        self.outstanding.push_back((offset, Settled::InFlight));
        self.in_flight += 1;
    }

    /// The target acknowledged the record at `offset`. False when it belongs to a generation rewound since
    /// (nothing changed, and it must not be counted as mirrored).
    pub fn acked(&mut self, offset: i64, generation: u64) -> bool {
        if generation != self.generation {
            return false;
        }
        self.settle(offset, Settled::Acked);
        while let Some(&(front, Settled::Acked)) = self.outstanding.front() {
            self.outstanding.pop_front();
            self.committable = Some(front + 1);
        }
        self.release_spare_capacity();
        true
    }

    /// Halves the queue's room while it is less than a quarter full: a burst's memory is given back once it
    /// settles, and each shrink copies fewer entries than the acknowledgements since the last one (amortised
    /// constant time per record).
    fn release_spare_capacity(&mut self) {
        let capacity = self.outstanding.capacity();
        if capacity > RETAINED_CAPACITY && self.outstanding.len() < capacity / 4 {
            self.outstanding
                .shrink_to((capacity / 2).max(RETAINED_CAPACITY));
        }
    }

    /// Delivery of the record at `offset` failed for good (after the producer's own retries). True when it
    /// is the first failure of this generation (the one worth a log line; the rest follow from it).
    pub fn failed(&mut self, offset: i64, generation: u64) -> bool {
        if generation != self.generation {
            return false;
        }
        self.settle(offset, Settled::Failed);
        let first = self.failed_at.is_none();
        self.failed_at = Some(self.failed_at.map_or(offset, |f| f.min(offset)));
        first
    }

    /// Where to re-read from when a delivery failed: the first offset not acknowledged.
    pub fn rewind_point(&self) -> Option<i64> {
        self.failed_at?;
        self.outstanding
            .front()
            .map(|(o, _)| *o)
            .or(self.committable)
    }

    /// Starts a new generation at `offset`: everything in flight is abandoned (it may still arrive on the
    /// target, which at-least-once allows) and will be sent again.
    pub fn rewind(&mut self, offset: i64) {
        self.generation += 1;
        self.outstanding.clear();
        self.outstanding.shrink_to(RETAINED_CAPACITY);
        self.in_flight = 0;
        self.failed_at = None;
        self.committable = Some(offset);
    }

    /// The offset that may be committed: every record before it is on the target.
    pub fn committable(&self) -> Option<i64> {
        self.committable
    }

    /// Moves the committable position forward over offsets that carried no record (transaction markers,
    /// compacted gaps) once nothing is outstanding, so a drained partition commits its true end.
    pub fn advance_idle(&mut self, position: i64) {
        if self.outstanding.is_empty()
            && self.failed_at.is_none()
            && self.committable.is_none_or(|c| c < position)
        {
            self.committable = Some(position);
        }
    }

    /// Records sent and still waiting for the target (neither acknowledged nor failed).
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    fn settle(&mut self, offset: i64, how: Settled) {
        if let Ok(i) = self.outstanding.binary_search_by_key(&offset, |(o, _)| *o)
            && self.outstanding[i].1 == Settled::InFlight
        {
            self.outstanding[i].1 = how;
            self.in_flight -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sent(offsets: &[i64]) -> AckTracker {
        let mut t = AckTracker::new(None);
        offsets.iter().for_each(|o| t.sent(*o));
        t
    }

    #[test]
    fn commit_point_waits_for_the_earliest_unacknowledged_record() {
        let mut t = sent(&[10, 11, 12]);
        t.acked(12, 0);
        t.acked(11, 0);
        assert_eq!(t.committable(), None, "10 is not on the target yet");
        t.acked(10, 0);
        assert_eq!(t.committable(), Some(13));
        assert_eq!(t.in_flight(), 0);
    }

    #[test]
    fn gaps_in_offsets_do_not_block_the_commit_point() {
        let mut t = sent(&[5, 9, 20]);
        t.acked(5, 0);
        t.acked(9, 0);
        assert_eq!(t.committable(), Some(10));
        t.acked(20, 0);
        assert_eq!(t.committable(), Some(21));
    }

    #[test]
    fn a_failure_holds_the_commit_point_and_asks_for_a_rewind() {
        let mut t = sent(&[0, 1, 2, 3]);
        t.acked(0, 0);
        assert!(t.failed(1, 0), "the first failure of a generation");
        assert!(!t.failed(2, 0), "later failures follow from the first");
        t.acked(2, 0);
        t.acked(3, 0);
        assert_eq!(t.committable(), Some(1), "never past the failed record");
        assert_eq!(t.rewind_point(), Some(1));
        t.rewind(1);
        assert_eq!(t.generation(), 1);
        assert_eq!(t.rewind_point(), None);
        // A late acknowledgement of the abandoned generation must not move anything.
        assert!(!t.acked(1, 0), "stale");
        t.sent(1);
        assert_eq!(t.committable(), Some(1));
        t.acked(1, 1);
        assert_eq!(t.committable(), Some(2));
    }

    #[test]
    fn a_failed_record_is_no_longer_in_flight_so_a_drain_does_not_wait_for_it() {
        let mut t = sent(&[5, 6, 7]);
        assert!(t.failed(6, 0));
        assert_eq!(t.in_flight(), 2, "5 and 7 are still on their way");
        t.acked(5, 0);
        t.acked(7, 0);
        assert_eq!(t.in_flight(), 0);
        assert_eq!(
            t.committable(),
            Some(6),
            "nothing past the failed record counts"
        );
        assert!(!t.failed(6, 0), "settling twice changes nothing");
        assert_eq!(t.in_flight(), 0);
    }

    #[test]
    fn a_settled_burst_gives_its_memory_back() {
        let burst: Vec<i64> = (0..100_000).collect();
        let mut t = sent(&burst);
        assert!(t.outstanding.capacity() >= 100_000);
        burst.iter().for_each(|o| {
            t.acked(*o, 0);
        });
        assert_eq!(t.committable(), Some(100_000));
        assert!(
            t.outstanding.capacity() <= RETAINED_CAPACITY,
            "room for {} entries kept after the burst settled",
            t.outstanding.capacity()
        );
        let mut rewound = sent(&burst);
        rewound.rewind(0);
        assert!(rewound.outstanding.capacity() <= RETAINED_CAPACITY);
    }

    #[test]
    fn idle_advance_only_when_nothing_is_pending() {
        let mut t = sent(&[7]);
        t.advance_idle(100);
        assert_eq!(t.committable(), None, "a record is still in flight");
        t.acked(7, 0);
        t.advance_idle(100);
        assert_eq!(t.committable(), Some(100));
        t.advance_idle(50);
        assert_eq!(t.committable(), Some(100), "never moves backwards");
    }
}
