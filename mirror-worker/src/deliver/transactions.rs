//! Exactly once across two clusters (`delivery: exactlyOnce`). Kafka's own exactly-once pipeline (KIP-447)
//! commits a consumer's offsets inside the producer's transaction, which works only when both live in one
//! cluster; a mirror's offsets belong to the source and its transactions to the target. So the positions move
//! to the target, and the workers fence each other there:
//!
//! - The source partitions fall into a fixed number of **transaction groups** ([`transaction_group`]: a hash of
//!   the topic plus the partition number, modulo the group count). A group is one partition of the compacted
//!   topic `kafka-mirror.transactions.<groupId>` on the target, which the worker creates with
//!   [`TRANSACTION_GROUPS`] partitions, or as many as the mirrored topics have partitions if fewer (groups are
//!   dealt to streams by count: a group without partitions would leave a stream idle); an existing topic keeps
//!   its count, the one every worker then uses.
//! - Which stream owns a group is decided by a consumer group on the target, `<groupId>.transactions`, whose
//!   members subscribe to that topic (`consume::transaction_groups`): a stream owns the groups whose partitions
//!   it is assigned, and reads the source partitions of its groups by assignment, not by joining the source
//!   group. librdkafka's assignors cannot keep a set of source partitions together; this way a group is never
//!   split between two writers.
//! - Each owned group has one transactional producer, `transactional.id` `kafka-mirror:<groupId>:group-<n>`.
//!   Whoever takes a group over calls `initTransactions` with that id first, which aborts the previous owner's
//!   open transaction and fences its producer epoch: a paused or partitioned old owner can commit nothing more
//!   of any partition of the group.
//! - Each transaction holds the group's mirrored records and, per source partition it wrote, one record in the
//!   group's partition of the transactions topic (key `<topic>:<partition>`, value the next source offset to
//!   read). A `read_committed` view of the target therefore holds the records and the positions after them, or
//!   neither.
//! - A new owner reads its start positions from its groups' partitions `read_committed` after
//!   `initTransactions` (up to the high watermarks seen then, so every transaction decided before is read),
//!   falling back to the positions of the per-partition producers of earlier versions (topic
//!   `kafka-mirror.offsets.<groupId>`, whose transactional ids it fences first), then to the source group's
//!   committed offset, then to `auto.offset.reset`. Such a partition's position is written with the group's
//!   next transaction, so the fallback is taken once.
//! - The source group is still committed after each transaction, to the position it committed, so the
//!   operator's lag (which reads the group) stays true; it is never ahead of the target.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use kafka_mirror_clients::MirrorPlan;
use kafka_mirror_clients::client_config::KafkaClientConfig;
use kafka_mirror_clients::compacted;
use kafka_mirror_clients::offset_map::{parse_partition_key, partition_key};
use kafka_mirror_crds::OWN_TOPIC_PREFIX;
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

/// How many transaction groups a mirror's transactions topic gets at most when the worker creates it (fewer if
/// the mirrored topics have fewer partitions then): how many transactional producers share the work at most
/// (one per group, spread over every stream of every replica), and how many a worker holds at most. Streams
/// beyond this count stay idle.
pub const TRANSACTION_GROUPS: i32 = 16;
/// How long a transaction may stay open on the target before its coordinator aborts it. Longer than a commit
/// interval plus a drain; a paused owner's transaction is aborted sooner, by the next owner's
/// `initTransactions`.
const TRANSACTION_TIMEOUT: Duration = Duration::from_secs(60);
/// How long taking groups or partitions over may take (`initTransactions`, reading the positions) before the
/// worker stops rather than mirror from a position it does not know.
const TAKEOVER_TIMEOUT: Duration = Duration::from_secs(120);

/// The compacted topic on the target that holds the source positions of a mirror's group, one partition per
/// transaction group; its consumer group assigns the transaction groups to streams.
pub fn transactions_topic(group_id: &str) -> String {
    format!("{OWN_TOPIC_PREFIX}transactions.{group_id}")
}

/// The consumer group on the target whose members own the transaction groups.
pub fn transaction_groups_group(group_id: &str) -> String {
    format!("{group_id}.transactions")
}

/// The positions topic of earlier versions, whose producers were one per source partition: read (and their
/// transactional ids fenced) for partitions the transactions topic does not know yet.
pub fn legacy_positions_topic(group_id: &str) -> String {
    format!("{OWN_TOPIC_PREFIX}offsets.{group_id}")
}

/// The transactional id of a transaction group's producer: the same for every owner of the group, so the next
/// owner fences the previous one. `:` occurs in no group id the mirror accepts, so no two mirrors share an id;
/// the per-partition ids of earlier versions ([`legacy_transactional_id`]) have one more `:`.
pub fn transactional_id(group_id: &str, transaction_group: i32) -> String {
    format!("kafka-mirror:{group_id}:group-{transaction_group}")
}

/// The transactional id earlier versions gave a source partition's own producer.
fn legacy_transactional_id(group_id: &str, topic: &str, partition: i32) -> String {
    format!("kafka-mirror:{group_id}:{topic}:{partition}")
}

/// The transaction group of a source partition: FNV-1a of the topic name plus the partition number, modulo
/// `groups`, so a topic's consecutive partitions go to consecutive groups. Every worker of a mirror must agree
/// on it, and a stored position is looked up by it: it never changes.
pub fn transaction_group(topic: &str, partition: i32, groups: i32) -> i32 {
    let hash = topic.bytes().fold(0x811c_9dc5_u32, |hash, byte| {
        (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193)
    });
    ((u64::from(hash) + partition.max(0) as u64) % groups.max(1) as u64) as i32
}

fn parse_position(key: &[u8], value: &[u8]) -> Option<((String, i32), i64)> {
    let offset = std::str::from_utf8(value).ok()?.trim().parse().ok()?;
    Some((parse_partition_key(key)?, offset))
}

/// How many transaction groups a new transactions topic gets: one per source partition mirrored now, at most
/// [`TRANSACTION_GROUPS`]; all of them when no topic matches yet (a mirror applied before its topics exist must
/// not be left with one group forever).
fn group_count(source_partitions: i32) -> i32 {
    if source_partitions > 0 {
        source_partitions.min(TRANSACTION_GROUPS)
    } else {
        TRANSACTION_GROUPS
    }
}

/// Creates the transactions topic on the target if it is missing (see [`own_topic::ensure`]), with a group
/// per source partition of the mirrored topics up to [`TRANSACTION_GROUPS`]; its name and its partition count,
/// the number of transaction groups.
pub async fn ensure_transactions_topic(
    plan: &MirrorPlan,
    source_partitions: i32,
) -> Result<(String, i32)> {
    let name = transactions_topic(&plan.group_id);
    // Read once per takeover: ten-minute segments.
    let groups = own_topic::ensure(
        plan,
        &name,
        group_count(source_partitions),
        "delivery exactlyOnce stores positions in",
        Duration::from_secs(600),
    )
    .await?;
    Ok((name, groups))
}

/// The transactional producer of one transaction group owned by this stream.
pub struct GroupTxn {
    pub number: i32,
    pub producer: MirrorProducer,
}

/// A source partition of an owned group, and what the group's open transaction holds of it.
pub struct PartitionTxn {
    pub group: Arc<GroupTxn>,
    /// The source position to write with the open transaction: the offset after the last record sent in it, or
    /// (for a partition whose position is not on the target yet) its start; -1 when there is none to write.
    pending: AtomicI64,
}

impl PartitionTxn {
    /// A record at `offset` was handed to the group's producer in the open transaction.
    pub fn sent(&self, offset: i64) {
        self.pending.fetch_max(offset + 1, Ordering::AcqRel);
    }

    pub fn producer(&self) -> &MirrorProducer {
        &self.group.producer
    }
}

/// How a partition's share of its group's transaction ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Committed with the partition's records up to this source offset.
    Committed(i64),
    /// Aborted: nothing of it is visible; re-read from the last committed position.
    Aborted,
    /// Another owner took the group over: this stream can commit nothing more of the partition.
    Fenced,
}

/// What a group's transaction holds: each partition with its state, its entry and the position to write.
type GroupWork = Vec<(Arc<PartitionState>, Arc<PartitionTxn>, i64)>;
/// Each partition's outcome.
type Outcomes = Vec<(Arc<PartitionState>, Outcome)>;

/// The transactional producers of one stream's transaction groups.
pub struct Transactions {
    group_id: String,
    /// The transactions topic: positions, one partition per group.
    topic: String,
    /// How many transaction groups the mirror has (the topic's partition count).
    groups: i32,
    /// `spec.consumerGroups`: the topic the partitions' offset maps are published to.
    offset_syncs_topic: Option<String>,
    /// Target producer settings without a transactional id.
    producer_config: KafkaClientConfig,
    /// The target's connection, for reading the positions.
    reader_config: KafkaClientConfig,
    /// The group id the positions' reader names (it never joins nor commits).
    reader_group: String,
    /// The source consumer's `auto.offset.reset`: where a partition without any position starts.
    start_latest: bool,
    commit_timeout: Duration,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    /// The owned groups' producers.
    owned: Mutex<BTreeMap<i32, Arc<GroupTxn>>>,
    /// The owned groups' source partitions by topic, then partition (looked up by `&str` for every record,
    /// without allocating).
    partitions: Mutex<HashMap<String, HashMap<i32, Arc<PartitionTxn>>>>,
}

impl Transactions {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        plan: &MirrorPlan,
        topic: String,
        groups: i32,
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
            topic,
            groups,
            offset_syncs_topic,
            producer_config,
            reader_config,
            reader_group: format!("{}.positions-reader", plan.group_id),
            start_latest,
            commit_timeout,
            metrics,
            health,
            owned: Mutex::new(BTreeMap::new()),
            partitions: Mutex::new(HashMap::new()),
        }
    }

    fn owned(&self) -> MutexGuard<'_, BTreeMap<i32, Arc<GroupTxn>>> {
        self.owned.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn partitions(&self) -> MutexGuard<'_, HashMap<String, HashMap<i32, Arc<PartitionTxn>>>> {
        self.partitions.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The transactions topic (the coordination consumer subscribes to it).
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The target's connection.
    pub fn target(&self) -> &KafkaClientConfig {
        &self.reader_config
    }

    /// The transaction group of a source partition.
    pub fn group_of(&self, topic: &str, partition: i32) -> i32 {
        transaction_group(topic, partition, self.groups)
    }

    /// The transaction groups this stream owns (and has not lost).
    pub fn owned_groups(&self) -> Vec<i32> {
        self.owned().keys().copied().collect()
    }

    /// The entry of a partition of an owned group; `None` once the group was fenced or released.
    pub fn producer(&self, topic: &str, partition: i32) -> Option<Arc<PartitionTxn>> {
        self.partitions()
            .get(topic)
            .and_then(|by_partition| by_partition.get(&partition))
            .cloned()
    }

    /// The producer of every owned group.
    pub fn group_producers(&self) -> Vec<Arc<GroupTxn>> {
        self.owned().values().cloned().collect()
    }

    /// Forgets a partition that left this stream (its group's transaction committed or aborted before).
    pub fn remove(&self, topic: &str, partition: i32) {
        let mut partitions = self.partitions();
        if let Some(by_partition) = partitions.get_mut(topic) {
            by_partition.remove(&partition);
            if by_partition.is_empty() {
                partitions.remove(topic);
            }
        }
    }

    /// Forgets a group and its partitions; its producer closes once the last entry holding it is dropped.
    pub fn release_group(&self, group: i32) {
        self.owned().remove(&group);
        self.partitions().retain(|_, by_partition| {
            by_partition.retain(|_, txn| txn.group.number != group);
            !by_partition.is_empty()
        });
    }

    /// Takes the transaction groups `groups` over: a transactional producer each, whose `initTransactions`
    /// fences the previous owner (aborting its open transaction). An error leaves them without a producer.
    pub fn take_over_groups(&self, groups: &[i32]) -> std::result::Result<(), String> {
        if groups.is_empty() {
            return Ok(());
        }
        let started = Instant::now();
        // initTransactions waits for the previous owner's transaction to be aborted: in parallel.
        let created = parallel(groups, |group| {
            self.group_producer(*group)
                .map(|producer| (*group, producer))
        });
        let mut owned = Vec::new();
        for result in created {
            owned.push(result?);
        }
        let mut map = self.owned();
        for (group, producer) in owned {
            map.insert(group, Arc::new(producer));
        }
        info!(
            groups = ?groups,
            took_ms = started.elapsed().as_millis() as u64,
            "transaction groups taken over: their producers fenced the previous owners"
        );
        Ok(())
    }

    /// The start positions of `partitions` (of owned groups), for their assignment; each gets its entry. See the
    /// module's documentation for where a position comes from.
    pub fn start<C: rdkafka::consumer::ConsumerContext>(
        &self,
        source: &BaseConsumer<C>,
        partitions: &[(String, i32)],
    ) -> std::result::Result<TopicPartitionList, String> {
        let mut tpl = TopicPartitionList::new();
        if partitions.is_empty() {
            return Ok(tpl);
        }
        // Each partition's group, which this stream must own: checked before anything is read or fenced.
        let mut groups: BTreeMap<i32, Arc<GroupTxn>> = BTreeMap::new();
        for (topic, partition) in partitions {
            let group = self.group_of(topic, *partition);
            let Some(txn) = self.owned().get(&group).cloned() else {
                return Err(format!(
                    "{topic}[{partition}] belongs to transaction group {group}, which this stream does not own"
                ));
            };
            groups.insert(group, txn);
        }
        let positions = self.read_positions(&groups.keys().copied().collect::<Vec<_>>())?;
        let unknown: Vec<(String, i32)> = partitions
            .iter()
            .filter(|key| !positions.contains_key(*key))
            .cloned()
            .collect();
        let legacy = self.legacy_positions(&unknown)?;
        let mut fallback = TopicPartitionList::new();
        for key in &unknown {
            if !legacy.contains_key(key) {
                fallback.add_partition(&key.0, key.1);
            }
        }
        let committed = if fallback.count() > 0 {
            source
                .committed_offsets(fallback, TAKEOVER_TIMEOUT)
                .map_err(|e| format!("reading the source group's committed offsets: {e}"))?
        } else {
            TopicPartitionList::new()
        };
        let mut entries = Vec::new();
        for (topic, partition) in partitions {
            let key = (topic.clone(), *partition);
            let start = match positions.get(&key).or_else(|| legacy.get(&key)) {
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
            let group = groups[&self.group_of(topic, *partition)].clone();
            // A position not on the transactions topic yet is written with the group's next transaction.
            let pending = if positions.contains_key(&key) {
                -1
            } else {
                start
            };
            entries.push((key, group, pending));
            tpl.add_partition_offset(topic, *partition, Offset::Offset(start))
                .map_err(|e| format!("setting the start of {topic}[{partition}]: {e}"))?;
        }
        let mut map = self.partitions();
        for ((topic, partition), group, pending) in entries {
            map.entry(topic).or_default().insert(
                partition,
                Arc::new(PartitionTxn {
                    group,
                    pending: AtomicI64::new(pending),
                }),
            );
        }
        Ok(tpl)
    }

    /// The latest committed position of every source partition in the partitions `groups` of the transactions
    /// topic, read `read_committed` up to their high watermarks now: every transaction decided before this
    /// call, and so (after `initTransactions`) every transaction of the groups being taken over.
    fn read_positions(
        &self,
        groups: &[i32],
    ) -> std::result::Result<HashMap<(String, i32), i64>, String> {
        let latest = compacted::read_latest_of(
            &self.reader_config,
            &self.reader_group,
            &self.topic,
            groups,
            TAKEOVER_TIMEOUT,
            // Created before the first takeover: a topic the target does not know now is no empty history.
            compacted::Missing::IsAnError,
        )?;
        Ok(latest
            .iter()
            .filter_map(|(key, value)| parse_position(key, value))
            .collect())
    }

    /// For partitions the transactions topic does not know: the positions earlier versions' per-partition
    /// producers committed, if that topic exists. Their transactional ids are fenced first (in parallel), so
    /// an old worker still running cannot commit more of them; nothing to fence where the topic never existed.
    fn legacy_positions(
        &self,
        unknown: &[(String, i32)],
    ) -> std::result::Result<HashMap<(String, i32), i64>, String> {
        if unknown.is_empty() {
            return Ok(HashMap::new());
        }
        let topic = legacy_positions_topic(&self.group_id);
        let read = || {
            compacted::read_latest(
                &self.reader_config,
                &self.reader_group,
                &topic,
                TAKEOVER_TIMEOUT,
                compacted::Missing::IsEmpty,
            )
        };
        if read()?.is_empty() {
            return Ok(HashMap::new());
        }
        for result in parallel(unknown, |(source_topic, partition)| {
            // Dropped at once: fencing is the broker's, and thousands of producers would not fit at once.
            self.transactional_producer(&legacy_transactional_id(
                &self.group_id,
                source_topic,
                *partition,
            ))
            .map(drop)
        }) {
            result?;
        }
        // Read again: a transaction of an old producer decided while it was being fenced is in it now.
        let latest = read()?;
        info!(
            partitions = unknown.len(),
            topic,
            "fenced the per-partition producers of an earlier version and read their positions"
        );
        Ok(latest
            .iter()
            .filter_map(|(key, value)| parse_position(key, value))
            .filter(|(key, _)| unknown.contains(key))
            .collect())
    }

    /// A producer with the transactional id `id`, initialised: any earlier producer with that id is fenced and
    /// its open transaction aborted.
    fn transactional_producer(&self, id: &str) -> std::result::Result<MirrorProducer, String> {
        let mut config = self.producer_config.clone();
        config.set("transactional.id", id);
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
        Ok(producer)
    }

    fn group_producer(&self, group: i32) -> std::result::Result<GroupTxn, String> {
        let id = transactional_id(&self.group_id, group);
        let producer = self.transactional_producer(&id)?;
        producer
            .begin_transaction()
            .map_err(|e| format!("beginning a transaction of {id}: {e}"))?;
        Ok(GroupTxn {
            number: group,
            producer,
        })
    }

    /// What each owned group's open transaction holds, among `states`; only `groups`' when given.
    fn work(
        &self,
        states: &[Arc<PartitionState>],
        groups: Option<&[i32]>,
    ) -> BTreeMap<i32, GroupWork> {
        let mut work: BTreeMap<i32, GroupWork> = BTreeMap::new();
        for state in states {
            let Some(txn) = self.producer(&state.topic, state.partition) else {
                continue;
            };
            let group = txn.group.number;
            if groups.is_some_and(|groups| !groups.contains(&group)) {
                continue;
            }
            let pending = txn.pending.load(Ordering::Acquire);
            if pending >= 0 {
                work.entry(group)
                    .or_default()
                    .push((state.clone(), txn, pending));
            }
        }
        work
    }

    /// Commits the open transaction of every owned group (only `groups`' when given) that holds anything, with
    /// the positions of its partitions; aborts the ones that cannot commit. `states` are all of the stream's
    /// partitions: a group's transaction commits all of its partitions' records, so it writes all their
    /// positions. Groups commit in parallel.
    pub fn commit(&self, states: &[Arc<PartitionState>], groups: Option<&[i32]>) -> Outcomes {
        let work: Vec<(i32, GroupWork)> = self.work(states, groups).into_iter().collect();
        if work.is_empty() {
            return Vec::new();
        }
        parallel(&work, |(group, work)| {
            self.commit_group(*group, work, states)
        })
        .into_iter()
        .flatten()
        .collect()
    }

    fn commit_group(
        &self,
        group: i32,
        work: &GroupWork,
        states: &[Arc<PartitionState>],
    ) -> Outcomes {
        let Some(txn) = self.owned().get(&group).cloned() else {
            return self.group_states(group, states, Outcome::Fenced);
        };
        for (state, _, position) in work {
            let key = partition_key(&state.topic, state.partition);
            let value = position.to_string();
            let record = own_record(&self.topic, group, &key, value.as_bytes(), state);
            if let Err((error, _)) = txn.producer.send(record) {
                warn!(%error, group, topic = state.topic, partition = state.partition, "a position could not join the transaction; aborting it");
                return self.abort_group(&txn, work, states);
            }
            // `spec.consumerGroups`: the partition's offset map joins the transaction when due, so it becomes
            // visible together with the copies it maps.
            if let (Some(syncs), Some(topic)) = (&state.offset_syncs, &self.offset_syncs_topic)
                && let Some(map) = syncs.take_due(Some(*position))
                && let Err((error, _)) = txn
                    .producer
                    .send(own_record(topic, 0, &syncs.key, &map, state))
            {
                syncs.not_published();
                warn!(%error, group, topic = state.topic, partition = state.partition, "an offset map could not join the transaction; aborting it");
                return self.abort_group(&txn, work, states);
            }
        }
        // Delivered first, within the commit timeout (the target may be unreachable): what is not delivered by
        // then is aborted and read again. The commit itself is then given the transaction's remaining time, as
        // librdkafka recommends (a commit that times out midway must be retried, not aborted).
        if !wait_delivered(&txn.producer, self.commit_timeout) {
            warn!(
                group,
                "the transaction's records were not delivered in time; aborting it, its partitions are re-read from their last committed positions"
            );
            return self.abort_group(&txn, work, states);
        }
        let deadline = Instant::now() + TRANSACTION_TIMEOUT;
        loop {
            match txn.producer.commit_transaction(Timeout::Never) {
                Ok(()) => {
                    for (_, entry, _) in work {
                        entry.pending.store(-1, Ordering::Release);
                    }
                    return match txn.producer.begin_transaction() {
                        Ok(()) => work
                            .iter()
                            .map(|(state, _, position)| {
                                (state.clone(), Outcome::Committed(*position))
                            })
                            .collect(),
                        Err(error) => self.broken(group, &error, states),
                    };
                }
                Err(error) if fenced(&error) => return self.fenced_group(group, &error, states),
                Err(error) if retriable(&error) && Instant::now() < deadline => {
                    debug!(%error, group, "committing the transaction again");
                }
                Err(error) => {
                    warn!(%error, group, "the transaction could not commit; aborting it, its partitions are re-read from their last committed positions");
                    return self.abort_group(&txn, work, states);
                }
            }
        }
    }

    /// Aborts the open transaction of the group of a partition whose delivery failed: nothing of it becomes
    /// visible, and every partition it held is re-read. `states` are all of the stream's partitions.
    pub fn abort(&self, state: &Arc<PartitionState>, states: &[Arc<PartitionState>]) -> Outcomes {
        let Some(entry) = self.producer(&state.topic, state.partition) else {
            return vec![(state.clone(), Outcome::Fenced)];
        };
        let group = entry.group.clone();
        let mut work = self
            .work(states, Some(&[group.number]))
            .remove(&group.number)
            .unwrap_or_default();
        if !work.iter().any(|(s, _, _)| Arc::ptr_eq(s, state)) {
            work.push((state.clone(), entry, -1));
        }
        self.abort_group(&group, &work, states)
    }

    /// Aborts, within the transaction's remaining time (librdkafka's recommendation), trying again while the
    /// target does not answer (an abort cannot be skipped: the producer starts no new transaction before it), up
    /// to the transaction timeout, after which the target's coordinator aborts the transaction itself and this
    /// producer cannot go on.
    fn abort_group(
        &self,
        txn: &GroupTxn,
        work: &GroupWork,
        states: &[Arc<PartitionState>],
    ) -> Outcomes {
        self.metrics.error("transaction_aborted");
        let group = txn.number;
        let deadline = Instant::now() + TRANSACTION_TIMEOUT;
        loop {
            match txn.producer.abort_transaction(Timeout::Never) {
                Ok(()) => {
                    for (_, entry, _) in work {
                        entry.pending.store(-1, Ordering::Release);
                    }
                    return match txn.producer.begin_transaction() {
                        Ok(()) => work
                            .iter()
                            .map(|(state, _, _)| (state.clone(), Outcome::Aborted))
                            .collect(),
                        Err(error) => self.broken(group, &error, states),
                    };
                }
                Err(error) if fenced(&error) => return self.fenced_group(group, &error, states),
                Err(error) if retriable(&error) && Instant::now() < deadline => {
                    debug!(%error, group, "aborting the transaction again");
                }
                Err(error) if fatal(&error) => return self.renewed(group, &error, work, states),
                Err(error) => return self.broken(group, &error, states),
            }
        }
    }

    /// `outcome` for every partition of `group` among `states`.
    fn group_states(
        &self,
        group: i32,
        states: &[Arc<PartitionState>],
        outcome: Outcome,
    ) -> Outcomes {
        self.states_of(group, states)
            .map(|state| (state.clone(), outcome))
            .collect()
    }

    /// The partitions of `group` among `states`.
    fn states_of<'s>(
        &self,
        group: i32,
        states: &'s [Arc<PartitionState>],
    ) -> impl Iterator<Item = &'s Arc<PartitionState>> {
        states
            .iter()
            .filter(move |state| self.group_of(&state.topic, state.partition) == group)
    }

    fn fenced_group(
        &self,
        group: i32,
        error: &KafkaError,
        states: &[Arc<PartitionState>],
    ) -> Outcomes {
        self.metrics.error("producer_fenced");
        warn!(%error, group,
            "fenced: another worker took this transaction group over; this worker mirrors nothing more of its partitions");
        self.release_group(group);
        self.group_states(group, states, Outcome::Fenced)
    }

    /// A producer that failed for good without being fenced (librdkafka raised a fatal error, e.g. the target's
    /// coordinator answered an abort with INVALID_TXN_STATE after it came back from an outage): replaced by a
    /// new producer with the same transactional id, whose initTransactions aborts whatever the old one left open
    /// on the target, as a new owner's would. Nothing of the old transaction becomes visible; the group's
    /// partitions are read again from their last committed positions.
    fn renewed(
        &self,
        group: i32,
        error: &KafkaError,
        work: &GroupWork,
        states: &[Arc<PartitionState>],
    ) -> Outcomes {
        warn!(%error, group,
            "the transactional producer failed; starting a new one with the same transactional id, which aborts what the old one left open");
        self.metrics.error("producer_renewed");
        let members: Vec<(String, i32)> = self
            .partitions()
            .iter()
            .flat_map(|(topic, by_partition)| {
                by_partition
                    .iter()
                    .filter(|(_, txn)| txn.group.number == group)
                    .map(|(partition, _)| (topic.clone(), *partition))
            })
            .collect();
        self.release_group(group);
        // The positions are read again after initTransactions, as a takeover reads them: if another worker
        // committed one since this worker's last commit, the group is not this worker's any more.
        let renewed = self.group_producer(group).and_then(|txn| {
            let positions = self.read_positions(&[group])?;
            Ok((txn, positions))
        });
        match renewed {
            Ok((_, positions))
                if self.states_of(group, states).any(|state| {
                    positions
                        .get(&(state.topic.clone(), state.partition))
                        .is_some_and(|p| Some(*p) != state.transaction_position())
                }) =>
            {
                warn!(
                    group,
                    "another worker committed this transaction group meanwhile; this worker mirrors nothing more of it"
                );
                self.metrics.error("producer_fenced");
                self.group_states(group, states, Outcome::Fenced)
            }
            Ok((txn, _)) => {
                let txn = Arc::new(txn);
                self.owned().insert(group, txn.clone());
                let mut partitions = self.partitions();
                for (topic, partition) in members {
                    partitions.entry(topic).or_default().insert(
                        partition,
                        Arc::new(PartitionTxn {
                            group: txn.clone(),
                            pending: AtomicI64::new(-1),
                        }),
                    );
                }
                work.iter()
                    .map(|(state, _, _)| (state.clone(), Outcome::Aborted))
                    .collect()
            }
            Err(why) => {
                self.health.set_fatal(format!(
                    "the transactional producer of transaction group {group} failed ({error}) and a new one could not start: {why}"
                ));
                self.group_states(group, states, Outcome::Fenced)
            }
        }
    }

    /// A producer that can neither commit nor abort (not fenced): the process stops, nothing uncommitted counts.
    fn broken(&self, group: i32, error: &KafkaError, states: &[Arc<PartitionState>]) -> Outcomes {
        self.release_group(group);
        self.health.set_fatal(format!(
            "the transactional producer of transaction group {group} failed: {error}"
        ));
        self.group_states(group, states, Outcome::Fenced)
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
        assert_eq!(transactions_topic("g"), "kafka-mirror.transactions.g");
        assert_eq!(transaction_groups_group("g"), "g.transactions");
        assert_eq!(legacy_positions_topic("g"), "kafka-mirror.offsets.g");
        assert_eq!(transactional_id("g", 3), "kafka-mirror:g:group-3");
        assert_eq!(
            legacy_transactional_id("g", "orders", 3),
            "kafka-mirror:g:orders:3"
        );
        assert_eq!(
            parse_position(b"orders.eu:3", b"1200"),
            Some((("orders.eu".into(), 3), 1200))
        );
        assert_eq!(parse_position(b"orders", b"1"), None);
        assert_eq!(parse_position(b"orders:1", b"x"), None);
    }

    #[test]
    fn transaction_groups_are_fixed_and_spread_consecutive_partitions() {
        // Stored positions are found by these numbers: they must never change.
        // (FNV-1a of "orders" is 0x...c, computed independently.)
        assert_eq!(transaction_group("orders", 0, 16), 12);
        assert_eq!(transaction_group("orders", 5, 16), 1);
        let first = transaction_group("orders", 0, 16);
        for partition in 0..64 {
            assert_eq!(
                transaction_group("orders", partition, 16),
                (first + partition) % 16
            );
        }
        // Every group gets a share of a topic's partitions.
        let mut counts = [0; 16];
        for partition in 0..64 {
            counts[transaction_group("testtopic", partition, 16) as usize] += 1;
        }
        assert_eq!(counts, [4; 16]);
        assert_eq!(transaction_group("t", 5, 1), 0);
    }

    #[test]
    fn a_group_per_partition_up_to_the_most_and_the_most_before_any_topic() {
        assert_eq!(group_count(8), 8);
        assert_eq!(group_count(16), 16);
        assert_eq!(group_count(5000), TRANSACTION_GROUPS);
        assert_eq!(group_count(0), TRANSACTION_GROUPS);
    }
}
