//! One assigned source partition, shared between the consumer thread that sends its records and the
//! producer thread that reports their delivery.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;

use super::tracker::AckTracker;
use crate::deliver::offset_syncs::PartitionSyncs;

/// Offset value meaning "nothing committed by this process yet".
const NONE: i64 = -1;

pub struct PartitionState {
    pub topic: String,
    pub partition: i32,
    tracker: Mutex<AckTracker>,
    /// Signalled when the last record in flight settles, so a drain can wait without spinning. Only then:
    /// every notify is a futex syscall, and one per record took a fifth of the delivery thread (BENCHMARKS.md).
    drained: Condvar,
    /// The last offset this process stored for librdkafka to commit.
    last_stored: AtomicI64,
    /// Counters of the partition's topic, resolved once instead of per record.
    records: Counter,
    bytes: Counter,
    /// The owning stream's flag, raised when this partition must be rewound.
    attention: Arc<AtomicBool>,
    /// `mode: migrate`: the high watermark seen at start; records from here on are not mirrored.
    pub end: Option<i64>,
    /// `mode: migrate`: every record before `end` has been handed to the producer.
    reached_end: AtomicBool,
    /// The source deleted records of this partition before they were mirrored; nothing after the gap is
    /// sent (see `truncation`).
    truncated: AtomicBool,
    /// `delivery: exactlyOnce`: the source offset after the partition's last committed transaction (NONE
    /// before the partition is taken over); what the source group commits, instead of the acknowledged one.
    transaction_position: AtomicI64,
    /// `delivery: exactlyOnce`: another worker took the partition over (or it could not be); nothing more of it
    /// is mirrored here.
    fenced: Mutex<Option<std::time::Instant>>,
    /// `spec.consumerGroups`: where the copies of this partition's records sit on the target.
    pub offset_syncs: Option<Arc<PartitionSyncs>>,
}

impl PartitionState {
    pub fn new(
        topic: String,
        partition: i32,
        records: Counter,
        bytes: Counter,
        attention: Arc<AtomicBool>,
        end: Option<i64>,
    ) -> Self {
        Self {
            topic,
            partition,
            tracker: Mutex::new(AckTracker::new(None)),
            drained: Condvar::new(),
            last_stored: AtomicI64::new(NONE),
            records,
            bytes,
            attention,
            end,
            reached_end: AtomicBool::new(false),
            truncated: AtomicBool::new(false),
            transaction_position: AtomicI64::new(NONE),
            fenced: Mutex::new(None),
            offset_syncs: None,
        }
    }

    /// `spec.consumerGroups`: the delivery reports of this partition's records feed `syncs`.
    pub fn with_offset_syncs(mut self, syncs: Option<Arc<PartitionSyncs>>) -> Self {
        self.offset_syncs = syncs;
        self
    }

    /// `delivery: exactlyOnce`: the partition was taken over at `start` (its position on the target); from
    /// now on the source group commits only positions of committed transactions.
    pub fn start_transactional(&self, start: i64) {
        self.transaction_position.store(start, Ordering::Release);
        self.tracker().rewind(start);
    }

    /// Whether the partition is mirrored in transactions.
    pub fn transactional(&self) -> bool {
        self.transaction_position.load(Ordering::Acquire) != NONE
    }

    /// The source offset after the last committed transaction.
    pub fn transaction_position(&self) -> Option<i64> {
        let position = self.transaction_position.load(Ordering::Acquire);
        (position != NONE).then_some(position)
    }

    /// A transaction committed the partition's records up to `position`.
    pub fn transaction_committed(&self, position: i64) {
        self.transaction_position
            .fetch_max(position, Ordering::AcqRel);
    }

    /// The open transaction was aborted: everything sent since the last commit is abandoned (late reports of it
    /// are ignored) and the partition is read again from the last committed position, which is returned.
    pub fn transaction_aborted(&self) -> Option<i64> {
        let position = self.transaction_position()?;
        self.tracker().rewind(position);
        Some(position)
    }

    pub fn set_fenced(&self) {
        self.fenced
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_or_insert_with(std::time::Instant::now);
    }

    /// Since when the partition is fenced, if it is.
    pub fn fenced_since(&self) -> Option<std::time::Instant> {
        *self.fenced.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn set_truncated(&self) {
        self.truncated.store(true, Ordering::Release);
    }

    pub fn truncated(&self) -> bool {
        self.truncated.load(Ordering::Acquire)
    }

    /// `mode: migrate`: marks that nothing before `end` remains to be read.
    pub fn set_reached_end(&self) {
        self.reached_end.store(true, Ordering::Release);
    }

    /// A rewind past the end undoes it: the partition must be read again up to `end`.
    pub fn clear_reached_end(&self) -> bool {
        self.reached_end.swap(false, Ordering::AcqRel)
    }

    pub fn reached_end(&self) -> bool {
        self.reached_end.load(Ordering::Acquire)
    }

    fn tracker(&self) -> MutexGuard<'_, AckTracker> {
        // A panic while holding the lock leaves a tracker that is still consistent (every method keeps its
        // invariants before it can panic), so a poisoned lock is used as it is.
        self.tracker
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Registers a record about to be produced; returns the generation its token must carry.
    pub fn sent(&self, offset: i64) -> u64 {
        let mut tracker = self.tracker();
        tracker.sent(offset);
        tracker.generation()
    }

    /// The target acknowledged a record.
    pub fn acked(&self, offset: i64, generation: u64, bytes: u64) {
        let mut tracker = self.tracker();
        if tracker.acked(offset, generation) {
            self.records.inc();
            self.bytes.inc_by(bytes);
        }
        self.notify_if_drained(&tracker);
    }

    /// A record deliberately left unmirrored (`spec.markOrigin`: it came from the target): settled at once, as
    /// if acknowledged, so the committed offset moves past it in order; not counted as mirrored.
    pub fn skipped(&self, offset: i64) {
        let mut tracker = self.tracker();
        tracker.sent(offset);
        let generation = tracker.generation();
        tracker.acked(offset, generation);
        self.notify_if_drained(&tracker);
    }

    /// A record could not be delivered; the partition will be re-read from its last acknowledged offset.
    /// True for the first failure since the last rewind.
    pub fn failed(&self, offset: i64, generation: u64) -> bool {
        let mut tracker = self.tracker();
        let first = tracker.failed(offset, generation);
        self.attention.store(true, Ordering::Release);
        self.notify_if_drained(&tracker);
        first
    }

    /// Wakes `wait_drained` when its condition became true; called with the tracker locked, so a waiter
    /// cannot miss it between checking and sleeping.
    fn notify_if_drained(&self, tracker: &AckTracker) {
        if tracker.in_flight() == 0 {
            self.drained.notify_all();
        }
    }

    /// Where to seek to after a failed delivery, if one happened; starts a new generation there.
    pub fn take_rewind(&self) -> Option<i64> {
        let mut tracker = self.tracker();
        let point = tracker.rewind_point()?;
        tracker.rewind(point);
        Some(point)
    }

    /// Moves the commit point over offsets without records once the partition is drained.
    pub fn advance_idle(&self, position: i64) {
        self.tracker().advance_idle(position);
    }

    /// Records of this partition sent and still waiting for the target.
    pub fn in_flight(&self) -> usize {
        self.tracker().in_flight()
    }

    /// The offset the source group may commit: after the last record acknowledged in order, or with
    /// `delivery: exactlyOnce` after the last committed transaction.
    pub fn committable(&self) -> Option<i64> {
        if let Some(position) = self.transaction_position() {
            return Some(position);
        }
        self.tracker().committable()
    }

    /// The committable offset when it moved since it was last stored.
    pub fn store_candidate(&self) -> Option<i64> {
        let committable = self.committable()?;
        (committable > self.last_stored.load(Ordering::Acquire)).then_some(committable)
    }

    /// Records that `offset` was stored for commit.
    pub fn stored(&self, offset: i64) {
        self.last_stored.fetch_max(offset, Ordering::AcqRel);
    }

    /// Waits until no record of this partition is in flight, or until `timeout`. True when drained.
    pub fn wait_drained(&self, timeout: Duration) -> bool {
        let (tracker, _) = self
            .drained
            .wait_timeout_while(self.tracker(), timeout, |tracker| tracker.in_flight() > 0)
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        tracker.in_flight() == 0
    }
}

#[cfg(test)]
mod tests {
    use std::thread;
    use std::time::Instant;

    use super::*;

    fn state() -> Arc<PartitionState> {
        Arc::new(PartitionState::new(
            "orders".into(),
            0,
            Counter::default(),
            Counter::default(),
            Arc::new(AtomicBool::new(false)),
            None,
        ))
    }

    /// A drain waiting for the partition wakes as soon as its last record settles, acknowledged or failed,
    /// not at its timeout: the wake-up is sent only then, so missing it would show here as a 30 s wait.
    #[test]
    fn a_drain_wakes_when_the_last_record_settles() {
        for last_fails in [false, true] {
            let state = state();
            let generation = (0..3).fold(0, |_, offset| state.sent(offset));
            let waiter = {
                let state = state.clone();
                thread::spawn(move || {
                    let started = Instant::now();
                    (
                        state.wait_drained(Duration::from_secs(30)),
                        started.elapsed(),
                    )
                })
            };
            thread::sleep(Duration::from_millis(50));
            state.acked(0, generation, 10);
            state.acked(1, generation, 10);
            thread::sleep(Duration::from_millis(50));
            assert!(!waiter.is_finished(), "woke with a record still in flight");
            if last_fails {
                state.failed(2, generation);
            } else {
                state.acked(2, generation, 10);
            }
            let (drained, waited) = waiter.join().unwrap();
            assert!(drained);
            assert!(waited < Duration::from_secs(5), "woke after {waited:?}");
        }
    }
}
