//! Exactly once across two clusters (`delivery: exactlyOnce`). Kafka's own exactly-once pipeline (KIP-447)
//! commits a consumer's offsets inside the producer's transaction, which works only when both live in one
//! cluster; a mirror's offsets belong to the source and its transactions to the target. So the positions move
//! to the target:
//!
//! - Every assigned source partition has its own transactional producer on the target, with the transactional
//!   id `kafka-mirror.<groupId>.<topic>.<partition>`. Whoever takes the partition over calls
//!   `initTransactions` with that id first, which aborts the previous owner's open transaction and fences its
//!   producer epoch: a paused or partitioned old owner can commit nothing more of that partition.
//! - Each transaction holds the partition's mirrored records and one record in the compacted topic
//!   `kafka-mirror.offsets.<groupId>` on the target (key `<topic>:<partition>`, value the next source offset to
//!   read). A `read_committed` view of the target therefore holds the records and the position after them, or
//!   neither.
//! - A new owner reads its start positions from that topic `read_committed` after `initTransactions` (up to the
//!   high watermark seen then, so every transaction decided before it is read), falling back to the source
//!   group's committed offset for a partition the topic does not know yet.
//! - The source group is still committed after each transaction, to the position it committed, so the
//!   operator's lag (which reads the group) stays true; it is never ahead of the target.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use kafka_mirror_clients::MirrorPlan;
use kafka_mirror_clients::client_config::KafkaClientConfig;
use kafka_mirror_clients::compacted;
use kafka_mirror_clients::offset_map::{parse_partition_key, partition_key};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::Producer;
use rdkafka::util::Timeout;
use rdkafka::{Offset, TopicPartitionList};
use tracing::{debug, info, warn};

use super::own_topic;
use super::producer::{
    DeliveryContext, MirrorProducer, fit_batches, own_record, producer_config, wait_delivered,
};
use crate::Result;
use crate::acks::PartitionState;
use crate::observe::health::Health;
use crate::observe::metrics::Metrics;

/// How long a transaction may stay open on the target before its coordinator aborts it. Longer than a commit
/// interval plus a drain; a paused owner's transaction is aborted sooner, by the next owner's
/// `initTransactions`.
const TRANSACTION_TIMEOUT: Duration = Duration::from_secs(60);
/// How long taking partitions over may take (`initTransactions`, reading the positions) before the worker
/// stops rather than mirror from a position it does not know.
const TAKEOVER_TIMEOUT: Duration = Duration::from_secs(120);

/// The compacted topic on the target that holds the source positions of a mirror's group.
pub fn positions_topic(group_id: &str) -> String {
    format!("kafka-mirror.offsets.{group_id}")
}

/// The transactional id of a source partition's producer: the same for every owner of the partition, so the
/// next owner fences the previous one. `:` occurs in neither a group id the mirror accepts nor a topic name,
/// so no two partitions of two mirrors share an id.
pub fn transactional_id(group_id: &str, topic: &str, partition: i32) -> String {
    format!("kafka-mirror:{group_id}:{topic}:{partition}")
}

fn parse_position(key: &[u8], value: &[u8]) -> Option<((String, i32), i64)> {
    let offset = std::str::from_utf8(value).ok()?.trim().parse().ok()?;
    Some((parse_partition_key(key)?, offset))
}

/// Creates the positions topic on the target if it is missing (see [`own_topic::ensure`]).
pub async fn ensure_positions_topic(plan: &MirrorPlan) -> Result<String> {
    let name = positions_topic(&plan.group_id);
    // Read once per takeover: ten-minute segments.
    own_topic::ensure(
        plan,
        &name,
        "delivery exactlyOnce stores positions in",
        Duration::from_secs(600),
    )
    .await?;
    Ok(name)
}

/// One source partition's transactional producer and what its open transaction holds.
pub struct PartitionTxn {
    pub producer: MirrorProducer,
    /// The source offset after the last record sent in the open transaction; -1 when it holds none.
    pending: AtomicI64,
}

impl PartitionTxn {
    /// A record at `offset` was handed to this producer in the open transaction.
    pub fn sent(&self, offset: i64) {
        self.pending.fetch_max(offset + 1, Ordering::AcqRel);
    }
}

/// How a partition's transaction ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Committed with the partition's records up to this source offset.
    Committed(i64),
    /// Aborted: nothing of it is visible; re-read from the last committed position.
    Aborted,
    /// Another owner took the partition over: this producer can commit nothing more.
    Fenced,
}

/// A partition's producer made and initialised, or why not.
type Created = std::result::Result<((String, i32), PartitionTxn), String>;

/// The transactional producers of one stream's partitions.
pub struct Transactions {
    group_id: String,
    positions_topic: String,
    /// `spec.consumerGroups`: the topic the partitions' offset maps are published to.
    offset_syncs_topic: Option<String>,
    /// Target producer settings without a transactional id.
    producer_config: KafkaClientConfig,
    /// The target's connection, for reading the positions topic.
    reader_config: KafkaClientConfig,
    /// The source consumer's `auto.offset.reset`: where a partition without any position starts.
    start_latest: bool,
    commit_timeout: Duration,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    /// By topic, then partition (looked up by `&str` for every record, without allocating).
    producers: Mutex<HashMap<String, HashMap<i32, Arc<PartitionTxn>>>>,
}

impl Transactions {
    pub fn new(
        plan: &MirrorPlan,
        positions_topic: String,
        offset_syncs_topic: Option<String>,
        smallest_limit: Option<i64>,
        commit_timeout: Duration,
        metrics: Arc<Metrics>,
        health: Arc<Health>,
    ) -> Self {
        let mut producer_config =
            producer_config(fit_batches(plan.target_producer.clone(), smallest_limit));
        producer_config
            // Only for the idempotent producer alone: a transaction that fails is aborted and re-read whole.
            .set("enable.gapless.guarantee", "false")
            .set(
                "transaction.timeout.ms",
                TRANSACTION_TIMEOUT.as_millis().to_string(),
            );
        let reader_config = plan.target_admin.clone();
        let start_latest = plan.source_consumer.get("auto.offset.reset") == Some("latest");
        Self {
            group_id: plan.group_id.clone(),
            positions_topic,
            offset_syncs_topic,
            producer_config,
            reader_config,
            start_latest,
            commit_timeout,
            metrics,
            health,
            producers: Mutex::new(HashMap::new()),
        }
    }

    fn producers(&self) -> MutexGuard<'_, HashMap<String, HashMap<i32, Arc<PartitionTxn>>>> {
        self.producers.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The producer of an assigned partition; `None` once it was fenced or removed.
    pub fn producer(&self, topic: &str, partition: i32) -> Option<Arc<PartitionTxn>> {
        self.producers()
            .get(topic)
            .and_then(|by_partition| by_partition.get(&partition))
            .cloned()
    }

    /// The transactional producer of every partition of this stream.
    pub fn all(&self) -> Vec<Arc<PartitionTxn>> {
        self.producers()
            .values()
            .flat_map(|by_partition| by_partition.values().cloned())
            .collect()
    }

    /// Drops the producers of partitions that left this stream (their transactions committed or aborted).
    pub fn remove(&self, topic: &str, partition: i32) {
        let mut producers = self.producers();
        if let Some(by_partition) = producers.get_mut(topic) {
            by_partition.remove(&partition);
            if by_partition.is_empty() {
                producers.remove(topic);
            }
        }
    }

    /// Takes the partitions of `tpl` over: a transactional producer each (fencing the previous owner), then their
    /// start positions, written into `tpl` for the assignment. An error leaves the partitions without a
    /// producer, so nothing of them is mirrored.
    pub fn take_over<C: rdkafka::consumer::ConsumerContext>(
        &self,
        source: &BaseConsumer<C>,
        tpl: &mut TopicPartitionList,
    ) -> std::result::Result<(), String> {
        let partitions: Vec<(String, i32)> = tpl
            .elements()
            .iter()
            .map(|e| (e.topic().to_string(), e.partition()))
            .collect();
        if partitions.is_empty() {
            return Ok(());
        }
        let started = Instant::now();
        // initTransactions waits for the previous owner's transaction to be aborted: in parallel.
        let created: Vec<Created> = parallel(&partitions, |(topic, partition)| {
            self.create_producer(topic, *partition)
                .map(|p| ((topic.clone(), *partition), p))
        });
        let mut producers = Vec::new();
        for result in created {
            producers.push(result?);
        }
        let positions = self.read_positions()?;
        let mut fallback = TopicPartitionList::new();
        for (topic, partition) in &partitions {
            if !positions.contains_key(&(topic.clone(), *partition)) {
                fallback.add_partition(topic, *partition);
            }
        }
        let committed = if fallback.count() > 0 {
            source
                .committed_offsets(fallback, TAKEOVER_TIMEOUT)
                .map_err(|e| format!("reading the source group's committed offsets: {e}"))?
        } else {
            TopicPartitionList::new()
        };
        for (topic, partition) in &partitions {
            let start = match positions.get(&(topic.clone(), *partition)) {
                Some(offset) => *offset,
                None => match committed
                    .find_partition(topic, *partition)
                    .map(|e| e.offset())
                {
                    Some(Offset::Offset(offset)) => offset,
                    _ => {
                        let (low, high) = source
                            .fetch_watermarks(topic, *partition, TAKEOVER_TIMEOUT)
                            .map_err(|e| {
                                format!("reading the watermarks of {topic}[{partition}]: {e}")
                            })?;
                        if self.start_latest { high } else { low }
                    }
                },
            };
            tpl.set_partition_offset(topic, *partition, Offset::Offset(start))
                .map_err(|e| format!("setting the start of {topic}[{partition}]: {e}"))?;
        }
        let mut map = self.producers();
        for ((topic, partition), producer) in producers {
            map.entry(topic)
                .or_default()
                .insert(partition, Arc::new(producer));
        }
        info!(
            partitions = partitions.len(),
            took_ms = started.elapsed().as_millis() as u64,
            "transactional producers started; start positions read from the target"
        );
        Ok(())
    }

    fn create_producer(
        &self,
        topic: &str,
        partition: i32,
    ) -> std::result::Result<PartitionTxn, String> {
        let id = transactional_id(&self.group_id, topic, partition);
        let mut config = self.producer_config.clone();
        config.set("transactional.id", &id);
        let context = DeliveryContext::new(
            self.metrics.clone(),
            self.health.clone(),
            config.host_aliases().clone(),
            true,
        );
        let producer: MirrorProducer = config
            .create_with_context(context)
            .map_err(|e| format!("creating the transactional producer {id}: {e}"))?;
        producer
            .init_transactions(TAKEOVER_TIMEOUT)
            .map_err(|e| format!("initTransactions of {id}: {e}"))?;
        producer
            .begin_transaction()
            .map_err(|e| format!("beginning a transaction of {id}: {e}"))?;
        Ok(PartitionTxn {
            producer,
            pending: AtomicI64::new(-1),
        })
    }

    /// The latest committed position of every source partition in the positions topic, read `read_committed`
    /// up to its high watermark now: every transaction decided before this call, and so (after
    /// `initTransactions`) every transaction of the partitions being taken over. Reading up to it waits for the
    /// last stable offset to pass it, i.e. for transactions of other partitions being committed meanwhile.
    fn read_positions(&self) -> std::result::Result<HashMap<(String, i32), i64>, String> {
        let latest = compacted::read_latest(
            &self.reader_config,
            &format!("{}.positions-reader", self.group_id),
            &self.positions_topic,
            TAKEOVER_TIMEOUT,
            // Created before the first takeover: a topic the target does not know now is no empty history.
            compacted::Missing::IsAnError,
        )?;
        Ok(latest
            .iter()
            .filter_map(|(key, value)| parse_position(key, value))
            .collect())
    }

    /// Commits the open transaction of each of `states` that holds records, with the partition's position in
    /// the positions topic; aborts the ones that cannot commit. Transactions commit in parallel.
    pub fn commit(&self, states: &[Arc<PartitionState>]) -> Vec<(Arc<PartitionState>, Outcome)> {
        let work: Vec<(Arc<PartitionState>, Arc<PartitionTxn>, i64)> = states
            .iter()
            .filter_map(|state| {
                let txn = self.producer(&state.topic, state.partition)?;
                let pending = txn.pending.load(Ordering::Acquire);
                (pending >= 0).then(|| (state.clone(), txn, pending))
            })
            .collect();
        if work.is_empty() {
            return Vec::new();
        }
        parallel(&work, |(state, txn, pending)| {
            (state.clone(), self.commit_one(state, txn, *pending))
        })
    }

    fn commit_one(
        &self,
        state: &Arc<PartitionState>,
        txn: &PartitionTxn,
        position: i64,
    ) -> Outcome {
        let key = partition_key(&state.topic, state.partition);
        let value = position.to_string();
        let record = own_record(&self.positions_topic, &key, value.as_bytes(), state);
        if let Err((error, _)) = txn.producer.send(record) {
            warn!(%error, topic = state.topic, partition = state.partition, "the position could not join the transaction; aborting it");
            return self.abort_txn(state, txn);
        }
        // `spec.consumerGroups`: the partition's offset map joins the transaction when due, so it becomes
        // visible together with the copies it maps.
        if let (Some(syncs), Some(topic)) = (&state.offset_syncs, &self.offset_syncs_topic)
            && let Some(map) = syncs.take_due(Some(position))
            && let Err((error, _)) = txn
                .producer
                .send(own_record(topic, &syncs.key, &map, state))
        {
            syncs.not_published();
            warn!(%error, topic = state.topic, partition = state.partition, "the offset map could not join the transaction; aborting it");
            return self.abort_txn(state, txn);
        }
        // Delivered first, within the commit timeout (the target may be unreachable): what is not delivered by
        // then is aborted and read again. The commit itself is then given the transaction's remaining time, as
        // librdkafka recommends (a commit that times out midway must be retried, not aborted).
        if !wait_delivered(&txn.producer, self.commit_timeout) {
            warn!(
                topic = state.topic,
                partition = state.partition,
                "the transaction's records were not delivered in time; aborting it, the partition is re-read from its last committed position"
            );
            return self.abort_txn(state, txn);
        }
        let deadline = Instant::now() + TRANSACTION_TIMEOUT;
        loop {
            match txn.producer.commit_transaction(Timeout::Never) {
                Ok(()) => {
                    txn.pending.store(-1, Ordering::Release);
                    return match txn.producer.begin_transaction() {
                        Ok(()) => Outcome::Committed(position),
                        Err(error) => self.broken(state, &error),
                    };
                }
                Err(error) if fenced(&error) => return self.fenced_outcome(state, &error),
                Err(error) if retriable(&error) && Instant::now() < deadline => {
                    debug!(%error, topic = state.topic, partition = state.partition, "committing the transaction again");
                }
                Err(error) => {
                    warn!(%error, topic = state.topic, partition = state.partition, "the transaction could not commit; aborting it, the partition is re-read from its last committed position");
                    return self.abort_txn(state, txn);
                }
            }
        }
    }

    /// Aborts the open transaction of a partition whose delivery failed; nothing of it becomes visible.
    pub fn abort(&self, state: &PartitionState) -> Outcome {
        match self.producer(&state.topic, state.partition) {
            Some(txn) => self.abort_txn(state, &txn),
            None => Outcome::Fenced,
        }
    }

    /// Aborts, within the transaction's remaining time (librdkafka's recommendation), trying again while the
    /// target does not answer (an abort cannot be skipped: the producer starts no new transaction before it), up
    /// to the transaction timeout, after which the target's coordinator aborts the transaction itself and this
    /// producer cannot go on.
    fn abort_txn(&self, state: &PartitionState, txn: &PartitionTxn) -> Outcome {
        self.metrics.error("transaction_aborted");
        let deadline = Instant::now() + TRANSACTION_TIMEOUT;
        loop {
            match txn.producer.abort_transaction(Timeout::Never) {
                Ok(()) => {
                    txn.pending.store(-1, Ordering::Release);
                    return match txn.producer.begin_transaction() {
                        Ok(()) => Outcome::Aborted,
                        Err(error) => self.broken(state, &error),
                    };
                }
                Err(error) if fenced(&error) => return self.fenced_outcome(state, &error),
                Err(error) if retriable(&error) && Instant::now() < deadline => {
                    debug!(%error, topic = state.topic, partition = state.partition, "aborting the transaction again");
                }
                Err(error) if fatal(&error) => return self.renewed(state, &error),
                Err(error) => return self.broken(state, &error),
            }
        }
    }

    fn fenced_outcome(&self, state: &PartitionState, error: &KafkaError) -> Outcome {
        self.metrics.error("producer_fenced");
        warn!(%error, topic = state.topic, partition = state.partition,
            "fenced: another worker took this partition over; this worker mirrors nothing more of it");
        self.remove(&state.topic, state.partition);
        Outcome::Fenced
    }

    /// A producer that failed for good without being fenced (librdkafka raised a fatal error, e.g. the target's
    /// coordinator answered an abort with INVALID_TXN_STATE after it came back from an outage): replaced by a
    /// new producer with the same transactional id, whose initTransactions aborts whatever the old one left open
    /// on the target, as a new owner's would. Nothing of the old transaction becomes visible; the partition is
    /// read again from its last committed position.
    fn renewed(&self, state: &PartitionState, error: &KafkaError) -> Outcome {
        warn!(%error, topic = state.topic, partition = state.partition,
            "the transactional producer failed; starting a new one with the same transactional id, which aborts what the old one left open");
        self.metrics.error("producer_renewed");
        self.remove(&state.topic, state.partition);
        // The position is read again after initTransactions, as a takeover reads it: if another worker
        // committed one since this worker's last commit, the partition is not this worker's any more.
        let renewed = self
            .create_producer(&state.topic, state.partition)
            .and_then(|txn| {
                let positions = self.read_positions()?;
                Ok((
                    txn,
                    positions
                        .get(&(state.topic.clone(), state.partition))
                        .copied(),
                ))
            });
        match renewed {
            Ok((_, Some(position))) if Some(position) != state.transaction_position() => {
                warn!(
                    topic = state.topic,
                    partition = state.partition,
                    position,
                    "another worker committed this partition meanwhile; this worker mirrors nothing more of it"
                );
                self.metrics.error("producer_fenced");
                Outcome::Fenced
            }
            Ok((txn, _)) => {
                self.producers()
                    .entry(state.topic.clone())
                    .or_default()
                    .insert(state.partition, Arc::new(txn));
                Outcome::Aborted
            }
            Err(why) => {
                self.health.set_fatal(format!(
                    "the transactional producer of {}[{}] failed ({error}) and a new one could not start: {why}",
                    state.topic, state.partition
                ));
                Outcome::Fenced
            }
        }
    }

    /// A producer that can neither commit nor abort (not fenced): the process stops, nothing uncommitted counts.
    fn broken(&self, state: &PartitionState, error: &KafkaError) -> Outcome {
        self.remove(&state.topic, state.partition);
        self.health.set_fatal(format!(
            "the transactional producer of {}[{}] failed: {error}",
            state.topic, state.partition
        ));
        Outcome::Fenced
    }
}

/// How many transactional calls (each blocking on the target) a stream makes at once.
const PARALLEL: usize = 16;

/// `f` of every item, in order, on at most [`PARALLEL`] threads.
fn parallel<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    if items.len() <= 1 {
        return items.iter().map(f).collect();
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut results: Vec<(usize, R)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..PARALLEL.min(items.len()))
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::AcqRel);
                        let Some(item) = items.get(i) else {
                            return done;
                        };
                        done.push((i, f(item)));
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| {
                w.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    });
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}

/// Whether a transactional call failed because a newer producer with the same transactional id exists: another
/// worker took the partition over. librdkafka raises fencing as a fatal error with one of these codes; other
/// fatal errors are [`fatal`].
fn fenced(error: &KafkaError) -> bool {
    let code = match error {
        KafkaError::Transaction(e) => Some(e.code()),
        other => other.rdkafka_error_code(),
    };
    matches!(
        code,
        Some(
            RDKafkaErrorCode::ProducerFenced
                | RDKafkaErrorCode::InvalidProducerEpoch
                | RDKafkaErrorCode::Fenced
        )
    )
}

/// Whether the producer cannot go on (librdkafka's fatal error state) for another reason than fencing.
fn fatal(error: &KafkaError) -> bool {
    match error {
        KafkaError::Transaction(e) => e.is_fatal(),
        other => other.rdkafka_error_code() == Some(RDKafkaErrorCode::Fatal),
    }
}

/// Whether trying the commit again may succeed (a timeout while the target is slow or unreachable).
fn retriable(error: &KafkaError) -> bool {
    match error {
        KafkaError::Transaction(e) => e.is_retriable(),
        KafkaError::Flush(_) => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parallel_keeps_the_order_and_every_item() {
        let items: Vec<u32> = (0..100).collect();
        assert_eq!(
            parallel(&items, |i| i * 2),
            items.iter().map(|i| i * 2).collect::<Vec<_>>()
        );
        assert_eq!(parallel(&[7u32], |i| i + 1), vec![8]);
        assert!(parallel(&Vec::<u32>::new(), |i| *i).is_empty());
    }

    #[test]
    fn names_and_keys() {
        assert_eq!(positions_topic("g"), "kafka-mirror.offsets.g");
        assert_eq!(
            transactional_id("g", "orders", 3),
            "kafka-mirror:g:orders:3"
        );
        assert_eq!(
            parse_position(b"orders.eu:3", b"1200"),
            Some((("orders.eu".into(), 3), 1200))
        );
        assert_eq!(parse_position(b"orders", b"1"), None);
        assert_eq!(parse_position(b"orders:1", b"x"), None);
    }
}
