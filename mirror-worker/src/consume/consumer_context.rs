//! The consumer context of one stream: the partitions it owns, and the librdkafka callbacks that keep them
//! right across rebalances (partitions being revoked are drained and committed before the revoke completes),
//! count commits, read the consumer's statistics and log, and stop the mirror at a source truncation.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use kafka_mirror_clients::host_aliases::HostAliases;
use rdkafka::TopicPartitionList;
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance, RebalanceProtocol};
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::statistics::Statistics;
use rdkafka::types::RDKafkaRespErr;
use tracing::{debug, error, info, warn};

use super::commit::{commit_kept_partitions, commit_unconfirmed, store};
use super::truncation;
use crate::acks::PartitionState;
use crate::deliver::offset_syncs::OffsetSyncs;
use crate::deliver::transactions::{Outcome, Transactions};
use crate::deliver::{MirrorProducer, wait_delivered};
use crate::discover::Routes;
use crate::engine::MigrationEnd;
use crate::observe::health::Health;
use crate::observe::metrics::{Metrics, PartitionLabels, TopicLabels};

/// Partitions by topic, then partition number (lookup by `&str` without allocating per record).
pub type PartitionMap = HashMap<String, HashMap<i32, Arc<PartitionState>>>;

pub struct StreamContext {
    pub stream: usize,
    /// The mirror's name, a field of every lifecycle log line.
    pub mirror: Arc<str>,
    partitions: Mutex<PartitionMap>,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    drain_timeout: Duration,
    migration_end: Option<Arc<MigrationEnd>>,
    /// Set when a partition needs the consumer thread's attention (a failed delivery to rewind).
    attention: Arc<AtomicBool>,
    /// When the oldest stored-but-uncommitted offset was stored: the start of the commit latency.
    uncommitted_since: Mutex<Option<Instant>>,
    /// Set once the final commit was confirmed: librdkafka's own commit on leaving the group repeats it and
    /// may be refused by the rebalance other leaving streams started, which is then no news.
    pub leaving: AtomicBool,
    /// `spec.source.hostAliases`: the consumer resolves the brokers' names through them.
    host_aliases: HostAliases,
    /// `delivery: exactlyOnce`: the transactional producers of this stream's transaction groups.
    pub transactions: Option<Arc<Transactions>>,
    /// `delivery: exactlyOnce`: the routes the stream follows, whose source partitions of its transaction groups
    /// it assigns itself.
    routes: Mutex<Routes>,
    /// `spec.consumerGroups`: the offset maps of the process's partitions.
    pub offset_syncs: Option<Arc<OffsetSyncs>>,
    /// The shared producer (`delivery: atLeastOnce`), for publishing the revoked partitions' offset maps.
    pub producer: Option<Arc<MirrorProducer>>,
}

impl StreamContext {
    pub fn new(
        stream: usize,
        mirror: Arc<str>,
        metrics: Arc<Metrics>,
        health: Arc<Health>,
        drain_timeout: Duration,
        migration_end: Option<Arc<MigrationEnd>>,
        host_aliases: HostAliases,
    ) -> Self {
        Self {
            stream,
            mirror,
            partitions: Mutex::new(HashMap::new()),
            metrics,
            health,
            drain_timeout,
            migration_end,
            attention: Arc::new(AtomicBool::new(false)),
            uncommitted_since: Mutex::new(None),
            leaving: AtomicBool::new(false),
            host_aliases,
            transactions: None,
            routes: Mutex::new(Routes::default()),
            offset_syncs: None,
            producer: None,
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

    /// `delivery: exactlyOnce`: commits the open transactions of the owned transaction groups (only `groups`'
    /// when given) that hold anything, then acts on how each partition's share ended: a committed position
    /// becomes what the source group commits; an aborted transaction re-reads its partitions from their last
    /// committed positions (`seek`: unless they are leaving); a fenced partition is paused and mirrors nothing
    /// more here.
    pub fn commit_transactions(
        &self,
        consumer: &BaseConsumer<StreamContext>,
        groups: Option<&[i32]>,
        seek: bool,
    ) {
        let Some(transactions) = &self.transactions else {
            return;
        };
        for (state, outcome) in transactions.commit(&self.all_states(), groups) {
            self.settle_transaction(consumer, &state, outcome, seek);
        }
    }

    /// `delivery: exactlyOnce`: aborts the open transaction of the group of a partition whose delivery failed
    /// and re-reads every partition it held from its last committed position.
    pub fn abort_transaction(
        &self,
        consumer: &BaseConsumer<StreamContext>,
        state: &Arc<PartitionState>,
    ) {
        if let Some(transactions) = &self.transactions {
            for (state, outcome) in transactions.abort(state, &self.all_states()) {
                self.settle_transaction(consumer, &state, outcome, true);
            }
        }
    }

    /// `delivery: exactlyOnce`: the routes changed; the stream's transaction groups gain the partitions of new
    /// topics (and topics that grew) and lose those of topics no longer routed.
    pub fn follow_routes(&self, consumer: &BaseConsumer<StreamContext>, routes: &Routes) {
        *self.routes.lock().unwrap_or_else(|p| p.into_inner()) = routes.clone();
        let Some(transactions) = &self.transactions else {
            return;
        };
        let owned = transactions.owned_groups();
        let wanted: BTreeSet<(String, i32)> = self.partitions_of(&owned).into_iter().collect();
        let held: Vec<Arc<PartitionState>> = self.all_states();
        let leaving: Vec<Arc<PartitionState>> = held
            .iter()
            .filter(|state| !wanted.contains(&(state.topic.clone(), state.partition)))
            .cloned()
            .collect();
        if !leaving.is_empty() {
            self.let_go(
                consumer,
                &leaving,
                "partitions of topics no longer mirrored; committing them",
            );
        }
        let held: BTreeSet<(String, i32)> = held
            .iter()
            .map(|state| (state.topic.clone(), state.partition))
            .collect();
        let new: Vec<(String, i32)> = wanted.difference(&held).cloned().collect();
        self.assign_transactional(consumer, &new);
    }

    /// `delivery: exactlyOnce`: the transaction groups' consumer assigned `groups` to this stream: their
    /// producers fence the previous owners, then their source partitions are assigned from the positions on the
    /// target. A takeover that fails stops the worker (nothing of those partitions is mirrored meanwhile).
    pub fn take_over_groups(&self, consumer: &BaseConsumer<StreamContext>, groups: &[i32]) {
        let Some(transactions) = &self.transactions else {
            return;
        };
        if groups.is_empty() {
            return;
        }
        info!(mirror = %self.mirror, stream = self.stream, groups = ?groups, "transaction groups assigned; taking them over");
        if let Err(reason) = transactions.take_over_groups(groups) {
            self.takeover_failed(&reason);
            return;
        }
        self.assign_transactional(consumer, &self.partitions_of(groups));
    }

    /// `delivery: exactlyOnce`: `groups` were revoked from this stream: their transactions commit (or abort),
    /// their source partitions are drained, committed on the source and unassigned, and their producers close,
    /// all before the revoke completes.
    pub fn release_groups(&self, consumer: &BaseConsumer<StreamContext>, groups: &[i32]) {
        let Some(transactions) = &self.transactions else {
            return;
        };
        if groups.is_empty() {
            return;
        }
        info!(mirror = %self.mirror, stream = self.stream, groups = ?groups, "transaction groups revoked; committing them");
        let leaving: Vec<Arc<PartitionState>> = self
            .all_states()
            .into_iter()
            .filter(|state| groups.contains(&transactions.group_of(&state.topic, state.partition)))
            .collect();
        self.let_go(
            consumer,
            &leaving,
            "partitions revoked; draining and committing them",
        );
        for group in groups {
            transactions.release_group(*group);
        }
    }

    /// The source partitions of `groups` among the routed topics.
    fn partitions_of(&self, groups: &[i32]) -> Vec<(String, i32)> {
        let Some(transactions) = &self.transactions else {
            return Vec::new();
        };
        let routes = self
            .routes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        routes
            .iter()
            .flat_map(|(topic, route)| {
                (0..route.source_partitions)
                    .filter(|partition| groups.contains(&transactions.group_of(topic, *partition)))
                    .map(|partition| (topic.clone(), partition))
            })
            .collect()
    }

    /// `delivery: exactlyOnce`: assigns `partitions` (of owned groups) to the source consumer, each from its
    /// position read from the target.
    fn assign_transactional(
        &self,
        consumer: &BaseConsumer<StreamContext>,
        partitions: &[(String, i32)],
    ) {
        let Some(transactions) = &self.transactions else {
            return;
        };
        if partitions.is_empty() {
            return;
        }
        let tpl = match transactions.start(consumer, partitions) {
            Ok(tpl) => tpl,
            Err(reason) => return self.takeover_failed(&reason),
        };
        self.metrics.rebalances.inc();
        self.log_by_topic(&tpl, "partitions assigned");
        self.assign(&tpl);
        if let Err(error) = consumer.incremental_assign(&tpl) {
            self.health.set_fatal(format!(
                "delivery exactlyOnce: assigning the source partitions of this stream's transaction groups failed: {error}"
            ));
        }
    }

    fn takeover_failed(&self, reason: &str) {
        self.metrics.error("transaction_takeover");
        self.health.set_fatal(format!(
            "delivery exactlyOnce: taking transaction groups over failed: {reason}"
        ));
    }

    /// `delivery: exactlyOnce`: `leaving` partitions leave this stream. Their groups' transactions commit (with
    /// their last offset maps), then they are drained, committed on the source and unassigned.
    fn let_go(
        &self,
        consumer: &BaseConsumer<StreamContext>,
        leaving: &[Arc<PartitionState>],
        event: &str,
    ) {
        let Some(transactions) = &self.transactions else {
            return;
        };
        offset_maps_due(leaving);
        let groups: Vec<i32> = leaving
            .iter()
            .map(|state| transactions.group_of(&state.topic, state.partition))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        self.commit_transactions(consumer, Some(&groups), false);
        let mut tpl = TopicPartitionList::new();
        for state in leaving {
            tpl.add_partition(&state.topic, state.partition);
        }
        self.log_by_topic(&tpl, event);
        let revoked = self.revoke(&tpl);
        self.drain_and_store(consumer, &revoked);
        for state in &revoked {
            transactions.remove(&state.topic, state.partition);
        }
        commit_unconfirmed(consumer, &revoked);
        if let Err(error) = consumer.incremental_unassign(&tpl) {
            warn!(stream = self.stream, %error, "unassigning the leaving source partitions failed");
        }
    }

    fn settle_transaction(
        &self,
        consumer: &BaseConsumer<StreamContext>,
        state: &Arc<PartitionState>,
        outcome: Outcome,
        seek: bool,
    ) {
        match outcome {
            Outcome::Committed(position) => state.transaction_committed(position),
            Outcome::Aborted => {
                let Some(position) = state.transaction_aborted() else {
                    return;
                };
                self.metrics.rewinds.inc();
                warn!(
                    stream = self.stream,
                    topic = state.topic,
                    partition = state.partition,
                    offset = position,
                    "transaction aborted; re-reading the partition from its last committed position"
                );
                if seek
                    && let Err(error) = consumer.seek(
                        &state.topic,
                        state.partition,
                        rdkafka::Offset::Offset(position),
                        Duration::from_secs(10),
                    )
                {
                    self.health.set_fatal(format!(
                        "cannot re-read {}[{}] from offset {position} after an aborted transaction: {error}",
                        state.topic, state.partition
                    ));
                }
            }
            Outcome::Fenced => {
                state.set_fenced();
                let mut tpl = TopicPartitionList::new();
                tpl.add_partition(&state.topic, state.partition);
                let _ = consumer.pause(&tpl);
            }
        }
    }

    /// One line per topic of a rebalance event: the mirror, stream and topic as fields, the partitions listed
    /// (a line per partition would flood the log at thousands of partitions).
    fn log_by_topic(&self, tpl: &TopicPartitionList, event: &str) {
        for (topic, partitions) in by_topic(tpl) {
            let partitions: Vec<i32> = partitions.iter().map(|(p, _)| *p).collect();
            info!(mirror = %self.mirror, stream = self.stream, topic, partitions = ?partitions, "{event}");
        }
    }

    /// True once after a partition asked for the consumer thread's attention, then false until one asks again.
    pub fn take_attention(&self) -> bool {
        self.attention.swap(false, Ordering::AcqRel)
    }

    /// Notes that acknowledged offsets were stored and wait for librdkafka's next commit.
    pub(super) fn stored_uncommitted(&self) {
        self.uncommitted_since
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_or_insert_with(Instant::now);
    }

    fn assign(&self, tpl: &TopicPartitionList) {
        if let Some(syncs) = &self.offset_syncs
            && tpl.count() > 0
        {
            syncs.read_before_assigning();
        }
        let mut partitions = self.partitions();
        for elem in tpl.elements() {
            let topic = elem.topic().to_string();
            let labels = TopicLabels {
                topic: topic.clone(),
            };
            let end = self
                .migration_end
                .as_ref()
                .map(|ends| ends.of(&topic, elem.partition()));
            let state = PartitionState::new(
                topic.clone(),
                elem.partition(),
                self.metrics.records_mirrored.get_or_create(&labels).clone(),
                self.metrics.bytes_mirrored.get_or_create(&labels).clone(),
                self.attention.clone(),
                end,
            )
            .with_offset_syncs(
                self.offset_syncs
                    .as_ref()
                    .map(|syncs| syncs.partition(&topic, elem.partition())),
            );
            if let Some(transactions) = &self.transactions {
                // `take_over` set the start position read from the target; a partition it could not take over
                // has no producer and mirrors nothing (the worker is stopping).
                match (
                    elem.offset(),
                    transactions.producer(&topic, elem.partition()),
                ) {
                    (rdkafka::Offset::Offset(start), Some(_)) => state.start_transactional(start),
                    _ => state.set_fenced(),
                }
            }
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

    /// `spec.consumerGroups`, at least once: the drained `revoked` partitions' maps, published and delivered
    /// before the revoke completes (within the drain timeout).
    fn publish_last_offset_maps(&self, revoked: &[Arc<PartitionState>]) {
        if let (Some(syncs), Some(producer)) = (&self.offset_syncs, &self.producer)
            && !revoked.is_empty()
        {
            syncs.publish_due(producer, revoked);
            if !wait_delivered(producer, self.drain_timeout) {
                warn!(
                    stream = self.stream,
                    "the revoked partitions' offset maps may not be on the target; their next owner starts from earlier ones"
                );
            }
        }
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

impl ClientContext for StreamContext {
    const ENABLE_RESOLVE_BROKER: bool = true;

    fn resolve_broker(&self, host: &str) -> Option<IpAddr> {
        self.host_aliases.resolve(host)
    }

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
    /// librdkafka's rebalance as rust-rdkafka does it (pre-rebalance callback, incremental assign or unassign,
    /// post-rebalance callback). With `delivery: exactlyOnce` the source consumer never joins the group (it is
    /// assigned its transaction groups' partitions, see `transaction_groups`), so this is never called.
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        let assign = err == RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS;
        let rebalance = match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => Rebalance::Assign(tpl),
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => Rebalance::Revoke(tpl),
            _ => Rebalance::Error(KafkaError::Rebalance(err.into())),
        };
        self.pre_rebalance(consumer, &rebalance);
        let cooperative = matches!(
            consumer.rebalance_protocol(),
            RebalanceProtocol::Cooperative
        );
        let result = match (assign, cooperative) {
            (true, true) => consumer.incremental_assign(tpl),
            (true, false) => consumer.assign(tpl),
            (false, true) => consumer.incremental_unassign(tpl),
            (false, false) => consumer.unassign(),
        };
        if let Err(error) = result {
            warn!(stream = self.stream, %error, "applying the rebalance failed");
        }
        self.post_rebalance(consumer, &rebalance);
    }

    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        self.metrics.rebalances.inc();
        match rebalance {
            Rebalance::Assign(tpl) => {
                self.log_by_topic(tpl, "partitions assigned");
                // The end of a rebalance (librdkafka calls this with an empty list too when nothing new
                // comes): the partitions this member kept mirrored through it without a commit, so commit
                // them now rather than at the next tick of the interval.
                commit_kept_partitions(consumer, &self.all_states());
                self.assign(tpl);
            }
            Rebalance::Revoke(tpl) => {
                let revoked = self.revoke(tpl);
                self.log_by_topic(tpl, "partitions revoked; draining and committing them");
                // `spec.consumerGroups`: their offset maps are published as they leave, so the next owner's
                // start from all of this one's.
                offset_maps_due(&revoked);
                // The revoke completes only after this returns, and librdkafka then commits the stored offsets
                // of the removed partitions: the next owner starts after every record acknowledged here.
                self.drain_and_store(consumer, &revoked);
                self.publish_last_offset_maps(&revoked);
                // The kept partitions too, before this member rejoins (see `commit_kept_partitions`).
                commit_kept_partitions(consumer, &self.all_states());
            }
            Rebalance::Error(error) => {
                self.metrics.error("rebalance");
                warn!(stream = self.stream, %error, "rebalance error");
            }
        }
    }

    fn commit_callback(&self, result: KafkaResult<()>, offsets: &TopicPartitionList) {
        match result {
            Ok(()) => {
                // Every commit interval: a debug line, not a lifecycle event (the final commits are, below).
                for (topic, committed) in by_topic(offsets) {
                    debug!(mirror = %self.mirror, stream = self.stream, topic, offsets = ?committed, "committed");
                }
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

/// `spec.consumerGroups`: the offset maps of partitions leaving this stream are published with their last
/// commit, so their next owner starts from all of this one's copies.
fn offset_maps_due(leaving: &[Arc<PartitionState>]) {
    for state in leaving {
        if let Some(syncs) = &state.offset_syncs {
            syncs.due_now();
        }
    }
}

/// The partitions of `tpl` by topic, each with its offset (`-1001`, librdkafka's "invalid", where none is set).
pub(super) fn by_topic(tpl: &TopicPartitionList) -> BTreeMap<String, Vec<(i32, i64)>> {
    let mut topics: BTreeMap<String, Vec<(i32, i64)>> = BTreeMap::new();
    for e in tpl.elements() {
        let offset = e.offset().to_raw().unwrap_or(-1001);
        topics
            .entry(e.topic().to_string())
            .or_default()
            .push((e.partition(), offset));
    }
    topics
}
