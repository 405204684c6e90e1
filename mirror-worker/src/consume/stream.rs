//! One stream (MirrorMaker's `--num.streams`): a consumer in the mirror's group on the source, feeding the
//! shared target producer. Runs on its own thread because librdkafka delivers rebalances on the thread that
//! polls, and a revoke must be able to wait there until its partitions are drained.

use std::cell::RefCell;
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::watch;
use tracing::{debug, error, info, warn};

use super::commit::{commit_and_confirm, store};
use super::consumer_context::StreamContext;
use super::origin::{Origin, Verdict};
use super::settings::{StreamSettings, consumer_config};
use super::shutdown_gate::ShutdownGate;
use super::transaction_groups::TransactionGroups;
use crate::acks::PartitionState;
use crate::deliver::{
    DeliveryToken, FailedDelivery, MirrorProducer, oversized_record, partitioner, settle_failure,
    stop_at_record,
};
use crate::discover::{Route, Routes};
use crate::observe::health::Health;
use crate::observe::metrics::{Metrics, TopicLabels};
use crate::{Error, Result};
use kafka_mirror_crds::{ORIGIN_HEADER, Partitioning};

/// How long one poll waits for a record before the loop looks at its other duties.
const POLL_TIMEOUT: Duration = Duration::from_millis(100);
/// How often acknowledged positions are handed to librdkafka's offset store (a local, cheap call).
const STORE_INTERVAL: Duration = Duration::from_millis(100);
/// Wait before retrying a record the producer's full queue refused.
const QUEUE_FULL_BACKOFF: Duration = Duration::from_millis(2);

pub struct Stream {
    /// Shared with the transaction groups' consumer (`delivery: exactlyOnce`), whose rebalances assign it.
    consumer: Arc<BaseConsumer<StreamContext>>,
    /// `delivery: exactlyOnce`: this stream's membership in the group that assigns transaction groups; the
    /// source consumer then never joins the source group.
    transaction_groups: Option<TransactionGroups>,
    group_id: String,
    /// The process's shared producer; `None` with `delivery: exactlyOnce`, where each partition has its own.
    producer: Option<Arc<MirrorProducer>>,
    /// How often open transactions commit (`delivery: exactlyOnce`).
    commit_interval: Duration,
    routes: watch::Receiver<Routes>,
    stop: Arc<AtomicBool>,
    health: Arc<Health>,
    metrics: Arc<Metrics>,
    partitioning: Partitioning,
    drain_timeout: Duration,
    gate: Arc<ShutdownGate>,
    compresses: bool,
    /// `spec.markOrigin`: the clusters' ids.
    origin: Option<Arc<Origin>>,
    /// Source partitions paused until the target topic has a partition of their number (`preserve`).
    waiting_for_target: RefCell<HashSet<(String, i32)>>,
}

impl Stream {
    pub fn new(
        settings: StreamSettings,
        producer: Option<Arc<MirrorProducer>>,
        routes: watch::Receiver<Routes>,
        stop: Arc<AtomicBool>,
        health: Arc<Health>,
        metrics: Arc<Metrics>,
    ) -> Result<Self> {
        let config = consumer_config(
            settings.consumer_config.clone(),
            settings.stream,
            &settings.group_id,
            settings.commit_interval,
        );
        let mut context = StreamContext::new(
            settings.stream,
            settings.mirror,
            metrics.clone(),
            health.clone(),
            settings.drain_timeout,
            settings.migration_end,
            config.host_aliases().clone(),
        );
        context.transactions = settings.transactions.clone();
        context.offset_syncs = settings.offset_syncs.clone();
        context.producer = producer.clone();
        let consumer: Arc<BaseConsumer<StreamContext>> = Arc::new(
            config
                .create_with_context(context)
                .map_err(|source| Error::Kafka {
                    what: format!("creating source consumer of stream {}", settings.stream),
                    source,
                })?,
        );
        let transaction_groups = match &settings.transactions {
            Some(transactions) => Some(TransactionGroups::new(
                consumer.clone(),
                transactions,
                &settings.consumer_config,
                &settings.group_id,
            )?),
            None => None,
        };
        Ok(Self {
            consumer,
            transaction_groups,
            group_id: settings.group_id,
            producer,
            commit_interval: settings.commit_interval,
            routes,
            stop,
            health,
            metrics,
            partitioning: settings.partitioning,
            drain_timeout: settings.drain_timeout,
            gate: settings.gate,
            compresses: settings.compresses,
            origin: settings.origin,
            waiting_for_target: RefCell::new(HashSet::new()),
        })
    }

    /// Mirrors until `stop` is raised or a fatal error occurs, then drains and commits.
    pub fn run(mut self) -> Result<()> {
        let result = self.consume();
        self.leave();
        // Leaves the transaction groups' group first: its revoke still reaches the source consumer.
        drop(self.transaction_groups.take());
        result
    }

    /// The consume loop: follows route changes, rewinds after failed deliveries, stores acknowledged offsets,
    /// and mirrors each record polled, until `stop` is raised or a fatal error occurs.
    fn consume(&mut self) -> Result<()> {
        let stream = self.consumer.context().stream;
        let mut routes = self.routes.borrow_and_update().clone();
        self.health.stream_started();
        if self.transaction_groups.is_some() && !self.wait_for_group_members_to_leave() {
            self.health.stream_stopped();
            return Ok(());
        }
        self.subscribe(&routes)?;
        let mut last_store = Instant::now();
        let mut last_transaction = Instant::now();
        let result = loop {
            if self.stop.load(Ordering::Acquire) {
                break Ok(());
            }
            if let Some(reason) = self.health.fatal() {
                break Err(Error::Fatal(reason));
            }
            if self.routes.has_changed().unwrap_or(false) {
                let next = self.routes.borrow_and_update().clone();
                // A failed subscription ends the loop like any stop: drain, commit, then report it.
                if self.transaction_groups.is_some() {
                    self.consumer.context().follow_routes(&self.consumer, &next);
                } else if next.keys().ne(routes.keys())
                    && let Err(e) = self.subscribe(&next)
                {
                    break Err(e);
                }
                self.learn_grown_targets(&routes, &next);
                self.resume_waiting(&next);
                routes = next;
            }
            if let Some(groups) = &self.transaction_groups {
                groups.poll();
            }
            if self.consumer.context().take_attention() {
                self.rewind_failed_partitions();
            }
            if self.consumer.context().transactions.is_some()
                && last_transaction.elapsed() >= self.commit_interval
            {
                self.consumer
                    .context()
                    .commit_transactions(&self.consumer, None, true);
                self.check_fenced(&self.consumer.context().all_states());
                last_transaction = Instant::now();
            }
            if last_store.elapsed() >= STORE_INTERVAL {
                let states = self.consumer.context().all_states();
                self.finish_drained_partitions(&states);
                store(&self.consumer, &states);
                self.publish_offset_maps(&states);
                last_store = Instant::now();
            }
            match self.consumer.poll(POLL_TIMEOUT) {
                None => {}
                Some(Ok(message)) => self.mirror(&message, &routes),
                Some(Err(KafkaError::PartitionEOF(_))) => {}
                Some(Err(error)) => {
                    self.metrics.error("consume");
                    warn!(stream, %error, "consuming from the source failed; librdkafka retries on its own");
                }
            }
        };
        self.health.stream_stopped();
        result
    }

    /// After a shutdown, fatal error or end of migration. Phase one, while the group is stable: stop fetching,
    /// drain, store and commit everything acknowledged. Phase two, once every stream of this process got there:
    /// leave the group (dropping the consumer closes it; its revoke finds nothing new to commit).
    fn leave(&self) {
        let stream = self.consumer.context().stream;
        let deadline = Instant::now() + self.drain_timeout;
        if let Ok(assigned) = self.consumer.assignment() {
            let _ = self.consumer.pause(&assigned);
        }
        let states = self.consumer.context().all_states();
        // Exactly once: what was sent commits with its positions (what cannot is aborted, for the next owner).
        self.consumer
            .context()
            .commit_transactions(&self.consumer, None, false);
        self.finish_drained_partitions(&states);
        self.consumer
            .context()
            .drain_and_store(&self.consumer, &states);
        if commit_and_confirm(&self.consumer, &states, deadline) {
            self.consumer
                .context()
                .leaving
                .store(true, Ordering::Release);
        } else {
            warn!(
                stream,
                "the final commit was not confirmed; the next owner may mirror some records again"
            );
        }
        self.gate.arrive_and_wait(deadline);
        info!(mirror = %self.consumer.context().mirror, stream, "stream stopped");
    }

    /// `delivery: exactlyOnce`: members of the source group are workers that read by the group's assignment
    /// (`atLeastOnce` before a switch, or an exactly-once worker of an earlier version, with a producer per
    /// partition): they would write partitions outside this stream's transaction groups. Waits until none is
    /// left (ready meanwhile, so a rolling update goes on and replaces them); false if the stream stopped first.
    fn wait_for_group_members_to_leave(&self) -> bool {
        let stream = self.consumer.context().stream;
        let mut logged = false;
        loop {
            if self.stop.load(Ordering::Acquire) || self.health.fatal().is_some() {
                return false;
            }
            let members = match self
                .consumer
                .fetch_group_list(Some(&self.group_id), Duration::from_secs(10))
            {
                Ok(list) => list
                    .groups()
                    .first()
                    .map_or(0, |group| group.members().len()),
                Err(error) => {
                    warn!(stream, %error, group = self.group_id, "the source group's members could not be read; going on");
                    return true;
                }
            };
            if members == 0 {
                if logged {
                    info!(
                        stream,
                        group = self.group_id,
                        "the source group has no members left"
                    );
                }
                return true;
            }
            if !logged {
                warn!(
                    stream,
                    group = self.group_id,
                    members,
                    "delivery exactlyOnce waits until the source group has no members: workers that read by the \
                     group's assignment (atLeastOnce, or an earlier version) would write the same partitions"
                );
                logged = true;
            }
            std::thread::sleep(Duration::from_secs(2));
        }
    }

    fn subscribe(&self, routes: &Routes) -> Result<()> {
        let topics: Vec<&str> = routes.keys().map(String::as_str).collect();
        self.metrics.mirrored_topics.set(topics.len() as i64);
        if let Some(groups) = &self.transaction_groups {
            // Exactly once: the routes say which source partitions the owned transaction groups hold.
            self.consumer
                .context()
                .follow_routes(&self.consumer, routes);
            return groups.join();
        }
        if topics.is_empty() {
            self.consumer.unsubscribe();
            return Ok(());
        }
        let context = self.consumer.context();
        info!(mirror = %context.mirror, stream = context.stream, topics = ?topics, "subscribing");
        self.consumer
            .subscribe(&topics)
            .map_err(|source| Error::Kafka {
                what: "subscribing to the source topics".into(),
                source,
            })
    }

    /// `partitioning: preserve` and a source partition the target topic does not have yet (the source topic
    /// grew, and `spec.topics.sync.partitions` adds it at the next refresh): the partition is paused at this
    /// record, which is read again once the routes say the target has the partition.
    fn wait_for_target_partition(&self, message: &BorrowedMessage<'_>, route: &Route) {
        let (topic, partition, offset) = (message.topic(), message.partition(), message.offset());
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition(topic, partition);
        let paused = self.consumer.pause(&tpl).and_then(|()| {
            self.consumer.seek(
                topic,
                partition,
                Offset::Offset(offset),
                Duration::from_secs(10),
            )
        });
        if let Err(error) = paused {
            self.health.set_fatal(format!(
                "{topic}[{partition}] has no target partition yet and could not be paused at offset {offset}: \
                 {error}"
            ));
            return;
        }
        info!(
            topic,
            partition,
            offset,
            target_topic = route.target_topic,
            target_partitions = route.target_partitions,
            "the target topic has no partition of this number yet; waiting for it (spec.topics.sync.partitions)"
        );
        self.waiting_for_target
            .borrow_mut()
            .insert((topic.to_string(), partition));
    }

    /// Resumes the partitions that waited for a target partition the routes now have.
    fn resume_waiting(&self, routes: &Routes) {
        let mut waiting = self.waiting_for_target.borrow_mut();
        let mut tpl = TopicPartitionList::new();
        waiting.retain(|(topic, partition)| {
            let ready = routes
                .get(topic)
                .is_some_and(|route| *partition < route.target_partitions);
            if ready {
                tpl.add_partition(topic, *partition);
            }
            !ready
        });
        if tpl.count() > 0
            && let Err(error) = self.consumer.resume(&tpl)
        {
            self.health.set_fatal(format!(
                "resuming partitions whose target partition now exists: {error}"
            ));
        }
    }

    /// Target topics that got partitions (`spec.topics.sync.partitions`): the producers ask for their metadata
    /// now, before any record is routed to a new partition. Otherwise a producer learns of them only at its
    /// next metadata refresh and refuses such records meanwhile (unknown partition), each refusal a re-read.
    fn learn_grown_targets(&self, current: &Routes, next: &Routes) {
        let grown: Vec<&str> = next
            .iter()
            .filter(|(source, route)| {
                current
                    .get(*source)
                    .is_some_and(|before| before.target_partitions < route.target_partitions)
            })
            .map(|(_, route)| route.target_topic.as_str())
            .collect();
        if grown.is_empty() {
            return;
        }
        let transactional = match &self.consumer.context().transactions {
            Some(transactions) => transactions.group_producers(),
            None => Vec::new(),
        };
        let producers = self
            .producer
            .as_deref()
            .into_iter()
            .chain(transactional.iter().map(|txn| &txn.producer));
        for producer in producers {
            for topic in &grown {
                if let Err(error) = producer
                    .client()
                    .fetch_metadata(Some(topic), Duration::from_secs(10))
                {
                    warn!(topic, %error, "the target topic's new partitions could not be read; the producer learns of them at its next metadata refresh");
                }
            }
        }
    }

    /// `spec.consumerGroups`: publishes the offset maps that are due (with `delivery: exactlyOnce` they go
    /// inside each partition's transaction instead).
    fn publish_offset_maps(&self, states: &[Arc<PartitionState>]) {
        if let (Some(producer), Some(syncs)) =
            (&self.producer, &self.consumer.context().offset_syncs)
        {
            syncs.publish_due(producer, states);
        }
    }

    /// Hands one source record to the producer, keeping key, value, headers and timestamp.
    fn mirror(&self, message: &BorrowedMessage<'_>, routes: &Routes) {
        let Some((route, state)) = self.admit(message, routes) else {
            return;
        };
        let offset = message.offset();
        let origin = match self.origin.as_deref().map(|o| o.judge(message)) {
            Some(Verdict::FromTarget) => {
                self.settle_from_target(&state, offset);
                return;
            }
            Some(Verdict::Mark(origin)) => Some(origin),
            Some(Verdict::Keep) | None => None,
        };
        let generation = state.sent(offset);
        let record = target_record(
            message,
            route,
            self.partitioning,
            origin,
            DeliveryToken {
                state: state.clone(),
                offset,
                generation,
                bytes: (message.key().map_or(0, <[u8]>::len)
                    + message.payload().map_or(0, <[u8]>::len)) as u64,
            },
        );
        let sent = match &self.producer {
            Some(producer) => self.send(producer, record, route, &state, offset, generation),
            None => match self
                .consumer
                .context()
                .transactions
                .as_ref()
                .and_then(|t| t.producer(&state.topic, state.partition))
            {
                Some(txn) => {
                    let sent = self.send(txn.producer(), record, route, &state, offset, generation);
                    if sent {
                        txn.sent(offset);
                    }
                    sent
                }
                // Fenced in the meantime: nothing more of the partition is mirrored here.
                None => {
                    state.failed(offset, generation);
                    false
                }
            },
        };
        if sent && state.end.is_some_and(|end| offset + 1 >= end) {
            self.reach_end(&state);
        }
    }

    /// `spec.markOrigin`: a record that came from the target is not sent back; its offset is settled in order
    /// (and, exactly once, joins the partition's open transaction as its position) as a delivered one would be.
    fn settle_from_target(&self, state: &Arc<PartitionState>, offset: i64) {
        if let Some(transactions) = &self.consumer.context().transactions {
            match transactions.producer(&state.topic, state.partition) {
                Some(txn) => txn.sent(offset),
                // Fenced in the meantime: nothing more of the partition is settled here.
                None => return,
            }
        }
        state.skipped(offset);
        self.metrics
            .records_from_target
            .get_or_create(&TopicLabels {
                topic: state.topic.clone(),
            })
            .inc();
        if state.end.is_some_and(|end| offset + 1 >= end) {
            self.reach_end(state);
        }
    }

    /// `delivery: exactlyOnce`: a partition fenced and still assigned long after its new owner took it over
    /// means this worker's group membership and the target disagree; the worker stops rather than stall.
    fn check_fenced(&self, states: &[Arc<PartitionState>]) {
        const FENCED_LIMIT: Duration = Duration::from_secs(120);
        if let Some(state) = states
            .iter()
            .find(|s| s.fenced_since().is_some_and(|t| t.elapsed() > FENCED_LIMIT))
        {
            self.health.set_fatal(format!(
                "{}[{}] was fenced by another worker's transactional producer {}s ago and is still assigned to \
                 this one",
                state.topic,
                state.partition,
                FENCED_LIMIT.as_secs()
            ));
        }
    }

    /// The route and partition state of a record to mirror now, or `None` for one left unsent: its topic is
    /// no longer routed (its next owner mirrors it), its partition is not this stream's or lost records at the
    /// source, it is past the migration's end (which pauses the partition), or it is larger than its target
    /// topic accepts (which stops the mirror).
    fn admit<'r>(
        &self,
        message: &BorrowedMessage<'_>,
        routes: &'r Routes,
    ) -> Option<(&'r Route, Arc<PartitionState>)> {
        let topic = message.topic();
        let Some(route) = routes.get(topic) else {
            debug!(
                topic,
                "record of a topic no longer routed; left for its next owner"
            );
            return None;
        };
        let state = self.state(topic, message.partition())?;
        if state.truncated() || state.fenced_since().is_some() {
            return None;
        }
        if let Some(end) = state.end
            && message.offset() >= end
        {
            self.reach_end(&state);
            return None;
        }
        if self.partitioning == Partitioning::Preserve
            && message.partition() >= route.target_partitions
        {
            self.wait_for_target_partition(message, route);
            return None;
        }
        if self.exceeds_limit(message, route) {
            return None;
        }
        Some((route, state))
    }

    /// Whether a record is larger than its target topic's `max.message.bytes`; if so, stops the mirror at it.
    /// It is not sent: the broker would refuse it, and later records of the partition stay off the target too,
    /// so the copy resumes at this record, in order, once the limit is raised. A compressing producer may still
    /// fit it, so the broker judges then.
    fn exceeds_limit(&self, message: &BorrowedMessage<'_>, route: &Route) -> bool {
        let Some(limit) = route.max_message_bytes.filter(|_| !self.compresses) else {
            return false;
        };
        let bytes = record_bytes(message);
        if bytes as i64 <= limit {
            return false;
        }
        let (topic, partition, offset) = (message.topic(), message.partition(), message.offset());
        let reason = oversized_record(
            &format!("{topic}[{partition}]@{offset}"),
            &route.target_topic,
            bytes,
            limit,
        );
        error!(topic, partition, offset, bytes, limit, "{reason}");
        stop_at_record(&self.metrics, &self.health, reason);
        true
    }

    /// Hands `record` to the producer, waiting while its queue is full. True once it is sent; false when it
    /// was settled as failed instead (refused, or the queue stayed full until the stream stopped).
    fn send(
        &self,
        producer: &MirrorProducer,
        mut record: TargetRecord<'_>,
        route: &Route,
        state: &PartitionState,
        offset: i64,
        generation: u64,
    ) -> bool {
        loop {
            match producer.send(record) {
                Ok(()) => {
                    self.metrics.in_flight_records.inc();
                    return true;
                }
                // Backpressure: the producer's bounded queue is full, so this thread waits instead of buffering.
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), returned)) => {
                    if self.stop.load(Ordering::Acquire) || self.health.fatal().is_some() {
                        state.failed(offset, generation);
                        return false;
                    }
                    record = returned;
                    std::thread::sleep(QUEUE_FULL_BACKOFF);
                }
                Err((error, _)) => {
                    // Refused before it was sent: settled as a delivery report would settle it.
                    settle_failure(
                        &self.metrics,
                        &self.health,
                        FailedDelivery {
                            state,
                            offset,
                            generation,
                            target_topic: &route.target_topic,
                            error: &error,
                        },
                        false,
                        state.transactional(),
                    );
                    return false;
                }
            }
        }
    }

    fn state(&self, topic: &str, partition: i32) -> Option<Arc<PartitionState>> {
        self.consumer
            .context()
            .partitions()
            .get(topic)
            .and_then(|by_partition| by_partition.get(&partition))
            .cloned()
    }

    /// `mode: migrate`: nothing more of this partition is mirrored; stop fetching it.
    fn reach_end(&self, state: &PartitionState) {
        if state.reached_end() {
            return;
        }
        state.set_reached_end();
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition(&state.topic, state.partition);
        if let Err(error) = self.consumer.pause(&tpl) {
            warn!(%error, topic = state.topic, partition = state.partition, "pausing a migrated partition failed");
        }
    }

    /// `mode: migrate`: partitions whose position passed their end (nothing left, or only markers) and whose
    /// records are all acknowledged commit their end offset.
    fn finish_drained_partitions(&self, states: &[Arc<PartitionState>]) {
        let with_end: Vec<_> = states.iter().filter(|s| s.end.is_some()).collect();
        if with_end.is_empty() {
            return;
        }
        let positions = self.consumer.position().unwrap_or_default();
        for state in with_end {
            let end = state.end.expect("filtered on end");
            let position = positions
                .find_partition(&state.topic, state.partition)
                .and_then(|e| {
                    if let Offset::Offset(o) = e.offset() {
                        Some(o)
                    } else {
                        None
                    }
                });
            if state.reached_end() || position.is_some_and(|p| p >= end) {
                self.reach_end(state);
                state.advance_idle(end);
            }
        }
    }

    /// Seeks every partition with a failed delivery back to its first unacknowledged record.
    fn rewind_failed_partitions(&self) {
        for state in self.consumer.context().all_states() {
            if state.transactional() {
                // Exactly once: the transaction holding the failed record is aborted whole.
                if state.take_rewind().is_some() {
                    self.consumer
                        .context()
                        .abort_transaction(&self.consumer, &state);
                }
                continue;
            }
            if let Some(offset) = state.take_rewind() {
                self.metrics.rewinds.inc();
                warn!(
                    topic = state.topic,
                    partition = state.partition,
                    offset,
                    "re-reading the partition after a failed delivery"
                );
                if state.clear_reached_end() {
                    let mut tpl = TopicPartitionList::new();
                    tpl.add_partition(&state.topic, state.partition);
                    let _ = self.consumer.resume(&tpl);
                }
                if let Err(error) = self.consumer.seek(
                    &state.topic,
                    state.partition,
                    Offset::Offset(offset),
                    Duration::from_secs(10),
                ) {
                    // The tracker already waits at `offset`; without the seek the partition stalls rather than
                    // skip a record, and the health check shows it.
                    self.health.set_fatal(format!(
                        "cannot re-read {}[{}] from offset {offset} after a failed delivery: {error}",
                        state.topic, state.partition
                    ));
                }
            }
        }
    }
}

/// A record on its way to the target, carrying its delivery token.
type TargetRecord<'a> = BaseRecord<'a, [u8], [u8], Box<DeliveryToken>>;

/// The target copy of a source record: same key, value, timestamp and headers (plus the origin header `origin`
/// asks for), in the target topic's partition `partitioning` picks.
fn target_record<'a>(
    message: &'a BorrowedMessage<'_>,
    route: &'a Route,
    partitioning: Partitioning,
    origin: Option<&str>,
    token: DeliveryToken,
) -> TargetRecord<'a> {
    let key = message.key();
    let payload = message.payload();
    let target_partition = partitioner::target_partition(
        partitioning,
        key,
        message.partition(),
        route.target_partitions,
    );
    let mut record = BaseRecord::with_opaque_to(&route.target_topic, Box::new(token))
        .partition(target_partition);
    if let Some(key) = key {
        record = record.key(key);
    }
    if let Some(payload) = payload {
        record = record.payload(payload);
    }
    if let Some(timestamp) = message.timestamp().to_millis() {
        record = record.timestamp(timestamp);
    }
    let headers = message.headers().map(|h| h.detach());
    match (headers, origin) {
        (headers, Some(origin)) => {
            record = record.headers(headers.unwrap_or_else(OwnedHeaders::new).insert(Header {
                key: ORIGIN_HEADER,
                value: Some(origin),
            }));
        }
        (Some(headers), None) => record = record.headers(headers),
        (None, None) => {}
    }
    record
}

/// The bytes of a record's key, value and headers: fewer than the record batch that would carry it alone, so a
/// record with more than a topic's `max.message.bytes` of them is refused by the broker for certain.
fn record_bytes(message: &BorrowedMessage<'_>) -> usize {
    let headers = message.headers().map_or(0, |headers| {
        headers
            .iter()
            .map(|h| h.key.len() + h.value.map_or(0, <[u8]>::len))
            .sum()
    });
    message.key().map_or(0, <[u8]>::len) + message.payload().map_or(0, <[u8]>::len) + headers
}
