//! The partitions one stream owns, and the consumer callbacks that keep them right across rebalances:
//! partitions being revoked are drained and committed before the revoke completes.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::statistics::Statistics;
use rdkafka::{Offset, TopicPartitionList};
use tracing::{debug, error, info, warn};

use crate::health::Health;
use crate::metrics::{Metrics, PartitionLabels, TopicLabels};
use crate::partition_state::PartitionState;
use crate::truncation;

/// Partitions by topic, then partition number (lookup by `&str` without allocating per record).
pub type PartitionMap = HashMap<String, HashMap<i32, Arc<PartitionState>>>;

/// Where a partition must stop in `mode: migrate`: the high watermark seen at start.
pub type MigrationEnd = HashMap<(String, i32), i64>;

pub struct StreamContext {
    pub stream: usize,
    partitions: Mutex<PartitionMap>,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    drain_timeout: Duration,
    migration_end: Option<Arc<MigrationEnd>>,
    /// Set when a partition needs the consumer thread's attention (a failed delivery to rewind).
    pub attention: Arc<AtomicBool>,
    /// When the oldest stored-but-uncommitted offset was stored: the start of the commit latency.
    uncommitted_since: Mutex<Option<Instant>>,
    /// Set once the final commit was confirmed: librdkafka's own commit on leaving the group repeats it and
    /// may be refused by the rebalance other leaving streams started, which is then no news.
    pub leaving: AtomicBool,
}

impl StreamContext {
    pub fn new(
        stream: usize,
        metrics: Arc<Metrics>,
        health: Arc<Health>,
        drain_timeout: Duration,
        migration_end: Option<Arc<MigrationEnd>>,
    ) -> Self {
        Self {
            stream,
            partitions: Mutex::new(HashMap::new()),
            metrics,
            health,
            drain_timeout,
            migration_end,
            attention: Arc::new(AtomicBool::new(false)),
            uncommitted_since: Mutex::new(None),
            leaving: AtomicBool::new(false),
        }
    }

    pub fn partitions(&self) -> MutexGuard<'_, PartitionMap> {
        self.partitions.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every partition state of this stream, cloned out so no lock is held while waiting on them.
    pub fn all_states(&self) -> Vec<Arc<PartitionState>> {
        self.partitions()
            .values()
            .flat_map(|by_partition| by_partition.values().cloned())
            .collect()
    }

    /// Waits for every listed partition to drain (bounded by the drain timeout), then stores their offsets for
    /// librdkafka to commit.
    pub fn drain_and_store(
        &self,
        consumer: &BaseConsumer<StreamContext>,
        states: &[Arc<PartitionState>],
    ) {
        let deadline = Instant::now() + self.drain_timeout;
        for state in states {
            let left = deadline.saturating_duration_since(Instant::now());
            if !state.wait_drained(left) {
                warn!(
                    stream = self.stream,
                    topic = state.topic,
                    partition = state.partition,
                    in_flight = state.in_flight(),
                    "records still unacknowledged after the drain timeout; they will be mirrored again by the next owner"
                );
            }
        }
        store(consumer, states);
    }

    /// Notes that acknowledged offsets were stored and wait for librdkafka's next commit.
    fn stored_uncommitted(&self) {
        self.uncommitted_since
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_or_insert_with(Instant::now);
    }

    fn assign(&self, tpl: &TopicPartitionList) {
        let mut partitions = self.partitions();
        for elem in tpl.elements() {
            let topic = elem.topic().to_string();
            let labels = TopicLabels {
                topic: topic.clone(),
            };
            let end = self
                .migration_end
                .as_ref()
                .and_then(|ends| ends.get(&(topic.clone(), elem.partition())).copied());
            let state = PartitionState::new(
                topic.clone(),
                elem.partition(),
                self.metrics.records_mirrored.get_or_create(&labels).clone(),
                self.metrics.bytes_mirrored.get_or_create(&labels).clone(),
                self.attention.clone(),
                end,
            );
            partitions
                .entry(topic)
                .or_default()
                .insert(elem.partition(), Arc::new(state));
            self.metrics.assigned_partitions.inc();
        }
    }

    /// Stops the mirror at the gap: the partition's records after it are dropped unsent, so its committed
    /// offset stays where the copy really ended (see `truncation`).
    fn source_truncated(&self, reset: &truncation::OffsetReset) {
        if let Some(state) = self
            .partitions()
            .get(&reset.topic)
            .and_then(|by_partition| by_partition.get(&reset.partition))
        {
            state.set_truncated();
        }
        self.metrics.error("source_truncated");
        let reason = reset.reason();
        error!(
            stream = self.stream,
            topic = reset.topic,
            partition = reset.partition,
            offset = reset.wanted,
            "{reason}"
        );
        self.health.set_fatal(reason);
    }

    fn revoke(&self, tpl: &TopicPartitionList) -> Vec<Arc<PartitionState>> {
        let mut partitions = self.partitions();
        let mut revoked = Vec::new();
        for elem in tpl.elements() {
            if let Some(by_partition) = partitions.get_mut(elem.topic()) {
                if let Some(state) = by_partition.remove(&elem.partition()) {
                    revoked.push(state);
                    self.metrics.assigned_partitions.dec();
                    self.metrics.partition_lag.remove(&PartitionLabels {
                        topic: elem.topic().to_string(),
                        partition: elem.partition(),
                    });
                }
                if by_partition.is_empty() {
                    partitions.remove(elem.topic());
                }
            }
        }
        revoked
    }
}

/// Stores the committable offset of every listed partition that moved since it was last stored. librdkafka
/// commits stored offsets on its own: every commit interval, when partitions are unassigned, and when the
/// consumer closes. (A synchronous commit from the polling thread could wait forever on a rebalance that only
/// this same thread can serve.)
pub fn store(consumer: &BaseConsumer<StreamContext>, states: &[Arc<PartitionState>]) {
    let (tpl, storing) = offsets_list(states, PartitionState::store_candidate);
    if storing.is_empty() {
        return;
    }
    match consumer.store_offsets(&tpl) {
        Ok(()) => {
            consumer.context().stored_uncommitted();
            for (state, offset) in storing {
                state.stored(offset);
            }
        }
        // A partition revoked in the meantime refuses the store; its new owner resumes from the last commit.
        Err(error) => debug!(%error, "storing acknowledged offsets failed"),
    }
}

/// Stores the acknowledged offsets of `kept` (the partitions that stay with this member through a rebalance)
/// and commits every stored offset of the assignment, asynchronously. Called from the rebalance callbacks.
///
/// A cooperative rebalance keeps those partitions flowing, but nothing of them is committed while it lasts:
/// librdkafka's interval commit skips every tick outside its steady join state, and no commit could pass
/// anyway while this member's JoinGroup is pending — the coordinator serves one request per connection at a
/// time, and the JoinGroup waits until every member has rejoined (each hears of the rebalance at its next
/// heartbeat; a dead member is only dropped at its session timeout).
/// Committing when the revoke ends (just before the rejoin; librdkafka completes the revoke only once this
/// commit is answered) and again when the new assignment arrives keeps a worker killed during a rebalance from
/// re-reading more than the join phase itself carried. Apache Kafka accepts both: the group is stable or
/// preparing a rebalance with this member's generation then (it refuses commits, REBALANCE_IN_PROGRESS, only
/// between the JoinGroup and SyncGroup answers, or ILLEGAL_GENERATION with an older generation).
fn commit_kept_partitions(consumer: &BaseConsumer<StreamContext>, kept: &[Arc<PartitionState>]) {
    store(consumer, kept);
    match consumer.commit_consumer_state(CommitMode::Async) {
        Ok(()) => {}
        // Nothing stored since the last commit.
        Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
        Err(error) => {
            debug!(stream = consumer.context().stream, %error, "committing the kept partitions was not sent")
        }
    }
}

impl ClientContext for StreamContext {
    fn stats(&self, statistics: Statistics) {
        let partitions = self.partitions();
        for (topic, topic_stats) in &statistics.topics {
            let Some(ours) = partitions.get(topic) else {
                continue;
            };
            for (partition, p) in &topic_stats.partitions {
                if ours.contains_key(partition) && p.consumer_lag >= 0 {
                    self.metrics
                        .partition_lag
                        .get_or_create(&PartitionLabels {
                            topic: topic.clone(),
                            partition: *partition,
                        })
                        .set(p.consumer_lag);
                }
            }
        }
    }

    /// librdkafka's log, as its default would write it; a reset over deleted records also stops the mirror.
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        if let Some(reset) = truncation::parse_offset_reset(level, fac, message) {
            self.source_truncated(&reset);
        }
        // With the stream, since every stream's consumer logs the same way (e.g. its group join states).
        let stream = self.stream;
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error => {
                error!(target: "librdkafka", stream, "librdkafka: {fac} {message}")
            }
            RDKafkaLogLevel::Warning => {
                warn!(target: "librdkafka", stream, "librdkafka: {fac} {message}")
            }
            RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
                info!(target: "librdkafka", stream, "librdkafka: {fac} {message}")
            }
            RDKafkaLogLevel::Debug => {
                debug!(target: "librdkafka", stream, "librdkafka: {fac} {message}")
            }
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.metrics.error("source");
        warn!(cluster = "source", stream = self.stream, %error, reason, "librdkafka reported an error");
    }
}

impl ConsumerContext for StreamContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        self.metrics.rebalances.inc();
        match rebalance {
            Rebalance::Assign(tpl) => {
                info!(stream = self.stream, partitions = %describe(tpl), "partitions assigned");
                // The end of a rebalance (librdkafka calls this with an empty list too when nothing new
                // comes): the partitions this member kept mirrored through it without a commit, so commit
                // them now rather than at the next tick of the interval.
                commit_kept_partitions(consumer, &self.all_states());
                self.assign(tpl);
            }
            Rebalance::Revoke(tpl) => {
                let revoked = self.revoke(tpl);
                info!(stream = self.stream, partitions = %describe(tpl), "partitions revoked; draining and committing them");
                // The revoke completes only after this returns, and librdkafka then commits the stored offsets
                // of the removed partitions: the next owner starts after every record acknowledged here.
                self.drain_and_store(consumer, &revoked);
                // The kept partitions too, before this member rejoins (see `commit_kept_partitions`).
                commit_kept_partitions(consumer, &self.all_states());
            }
            Rebalance::Error(error) => {
                self.metrics.error("rebalance");
                warn!(stream = self.stream, %error, "rebalance error");
            }
        }
    }

    fn commit_callback(&self, result: KafkaResult<()>, _offsets: &TopicPartitionList) {
        match result {
            Ok(()) => {
                if let Some(since) = self
                    .uncommitted_since
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .take()
                {
                    self.metrics
                        .commit_latency
                        .observe(since.elapsed().as_secs_f64());
                }
            }
            // A commit with nothing new stored.
            Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
            Err(error) if self.leaving.load(Ordering::Acquire) => {
                debug!(stream = self.stream, %error, "commit while leaving the group refused; the final commit was confirmed before");
            }
            Err(error) => {
                self.metrics.error("commit");
                warn!(stream = self.stream, %error, "committing source offsets failed; librdkafka retries with the next commit");
            }
        }
    }
}

fn describe(tpl: &TopicPartitionList) -> String {
    tpl.elements()
        .iter()
        .map(|e| format!("{}[{}]", e.topic(), e.partition()))
        .collect::<Vec<_>>()
        .join(",")
}

/// Commits the committable offsets of `states` and confirms them by reading the group's committed offsets
/// back, retrying until `deadline`. Does not rely on commit callbacks (librdkafka sends none for an empty
/// commit) and never blocks on a synchronous commit, which could wait on a rebalance only this thread
/// serves. Records polled meanwhile are dropped unstored: their next owner reads them again.
pub fn commit_and_confirm(
    consumer: &BaseConsumer<StreamContext>,
    states: &[Arc<PartitionState>],
    deadline: Instant,
) -> bool {
    let (tpl, wanted) = offsets_list(states, PartitionState::committable);
    if wanted.is_empty() {
        return true;
    }
    loop {
        if let Err(error) = consumer.commit(&tpl, CommitMode::Async) {
            debug!(%error, "final commit not sent");
        }
        let round = Instant::now() + Duration::from_millis(300);
        while Instant::now() < round.min(deadline) {
            let _ = consumer.poll(Duration::from_millis(50));
        }
        let confirmed = consumer.committed_offsets(tpl.clone(), Duration::from_secs(2)).is_ok_and(|committed| {
            wanted.iter().all(|(state, offset)| {
                matches!(committed.find_partition(&state.topic, state.partition).map(|e| e.offset()), Some(Offset::Offset(c)) if c >= *offset)
            })
        });
        if confirmed {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
    }
}

/// The offsets `offset_of` picks for `states`, as a list for librdkafka and as pairs for the caller.
fn offsets_list(
    states: &[Arc<PartitionState>],
    offset_of: impl Fn(&PartitionState) -> Option<i64>,
) -> (TopicPartitionList, Vec<(&Arc<PartitionState>, i64)>) {
    let mut tpl = TopicPartitionList::new();
    let mut picked = Vec::new();
    for state in states {
        if let Some(offset) = offset_of(state)
            && tpl
                .add_partition_offset(&state.topic, state.partition, Offset::Offset(offset))
                .is_ok()
        {
            picked.push((state, offset));
        }
    }
    (tpl, picked)
}

/// True once and then false until set again: whether something asked for attention.
pub fn take(flag: &AtomicBool) -> bool {
    flag.swap(false, Ordering::AcqRel)
}
