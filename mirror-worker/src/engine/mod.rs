//! Run: the engine that wires the stages into a mirror. Discovery, the shared producer, `numStreams` streams,
//! and the end of it all — a shutdown signal, a completed migration ([`migration`]), or a fatal error — with
//! every acknowledged record committed.

mod migration;

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use kafka_mirror_clients::MirrorPlan;
use kafka_mirror_clients::migration::MigrationRecord;
use kafka_mirror_crds::{Delivery, Mode};
use tokio::sync::watch;
use tracing::{error, info, warn};

use crate::consume::{Origin, ShutdownGate, Stream, StreamSettings};
use crate::deliver::offset_syncs::OffsetSyncs;
use crate::deliver::transactions::{self, Transactions};
use crate::deliver::{self, MirrorProducer};
use crate::discover::{Discovery, Route, Routes};
use crate::observe::health::Health;
use crate::observe::metrics::{Metrics, TopicLabels};
use crate::{Error, Result};
use migration::Migration;
pub(crate) use migration::MigrationEnd;

/// How often the engine looks at migration progress and fatal errors.
const TICK: Duration = Duration::from_millis(250);
/// How long to keep trying the first topic discovery before giving up in `mode: migrate`.
const DISCOVERY_RETRY: Duration = Duration::from_secs(5);

#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// How often acknowledged positions are committed to the source.
    pub commit_interval: Duration,
    /// How long a revoke or shutdown waits for in-flight records before committing what is acknowledged.
    pub drain_timeout: Duration,
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            commit_interval: Duration::from_secs_f64(
                kafka_mirror_crds::worker_pod::COMMIT_INTERVAL_SECONDS,
            ),
            drain_timeout: Duration::from_secs(30),
        }
    }
}

/// What a finished run did, per source topic.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub topics: BTreeMap<String, TopicSummary>,
    /// `mode: migrate` only: the group's commits reached every partition's end offset.
    pub migration_complete: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TopicSummary {
    pub target_topic: String,
    pub records: u64,
    pub bytes: u64,
}

pub struct Engine {
    plan: MirrorPlan,
    options: EngineOptions,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    /// `mode: migrate`: the end offsets recorded at the migration's start (by the operator); without them the
    /// engine records its own when it starts.
    migration_end: Option<MigrationRecord>,
}

impl Engine {
    pub fn new(
        plan: MirrorPlan,
        options: EngineOptions,
        metrics: Arc<Metrics>,
        health: Arc<Health>,
    ) -> Self {
        Self {
            plan,
            options,
            metrics,
            health,
            migration_end: None,
        }
    }

    /// `mode: migrate`: copy up to `record`, the end offsets recorded when the migration started, instead of
    /// the high watermarks seen when this engine starts. A restart with the same record copies nothing new.
    pub fn migration_end(mut self, record: MigrationRecord) -> Self {
        self.migration_end = Some(record);
        self
    }

    /// Mirrors until `shutdown` resolves (continuous) or the migration completes, then drains and commits. A
    /// migration whose end the group's commits already reached returns at once, complete, having copied nothing.
    /// Must run on a multi-threaded Tokio runtime: librdkafka's blocking calls use `block_in_place`.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<Summary> {
        let plan = &self.plan;
        let spec = &plan.spec;
        let discovery = Discovery::new(
            &plan.source_admin,
            &plan.target_admin,
            plan.filter.clone(),
            spec.clone(),
            self.metrics.clone(),
        )?;
        tokio::pin!(shutdown);

        let routes = tokio::select! {
            routes = first_routes(&discovery, spec.mode) => routes?,
            _ = &mut shutdown => return Ok(Summary::default()),
        };
        info!(mirror = plan.name, group = plan.group_id, topics = ?routes.keys().collect::<Vec<_>>(), "starting");

        let mut migration = match spec.mode {
            Mode::Migrate => Some(Migration::start(
                plan,
                &routes,
                self.migration_end.as_ref(),
            )?),
            Mode::Continuous => None,
        };
        if migration.as_ref().is_some_and(|m| m.complete_at_start) {
            self.metrics.migration_complete.set(1);
            return Ok(Summary {
                topics: self.summary(&Arc::new(routes)),
                migration_complete: true,
            });
        }
        // Exactly once: a transactional producer per transaction group, made by each stream as groups arrive.
        let exactly_once = match spec.delivery {
            Delivery::ExactlyOnce => {
                let source_partitions = routes.values().map(|r| r.source_partitions).sum();
                let (topic, groups) =
                    transactions::ensure_transactions_topic(plan, source_partitions).await?;
                info!(
                    topic,
                    groups,
                    "delivery exactlyOnce: the source partitions fall into transaction groups, each written by one transactional producer"
                );
                Some(ExactlyOnce {
                    topic,
                    groups,
                    smallest_limit: routes.values().filter_map(|r| r.max_message_bytes).min(),
                })
            }
            Delivery::AtLeastOnce => None,
        };
        let origin = if spec.mark_origin {
            let origin = discovery.origin()?;
            info!(
                ?origin,
                "spec.markOrigin: records get the source cluster's id as their origin; records from the target are not mirrored back"
            );
            Some(Arc::new(origin))
        } else {
            None
        };
        let offset_syncs = OffsetSyncs::start(plan).await?;
        let producer = match exactly_once {
            Some(_) => None,
            None => Some(Arc::new(self.create_producer(&routes)?)),
        };
        let (routes_tx, routes_rx) = watch::channel::<Routes>(Arc::new(routes));
        let stop = Arc::new(AtomicBool::new(false));
        let streams = self.start_streams(
            TargetWriters {
                producer: producer.as_ref(),
                exactly_once: exactly_once.as_ref(),
                offset_syncs: offset_syncs.as_ref(),
            },
            origin.as_ref(),
            &routes_rx,
            &stop,
            migration.as_ref(),
        )?;

        let migration_complete = self
            .supervise(
                shutdown.as_mut(),
                &discovery,
                migration.as_mut(),
                &routes_tx,
                producer.as_deref(),
                &streams,
            )
            .await;

        stop.store(true, Ordering::Release);
        if migration_complete {
            self.metrics.migration_complete.set(1);
        }
        let first_error = join_streams(streams).await;
        // Streams drained before returning; this only waits for anything left after a drain timeout.
        if let Some(producer) = &producer {
            let _ = deliver::wait_delivered(producer, self.options.drain_timeout);
        }
        if let Some(reason) = self.health.fatal() {
            error!(
                reason,
                "stopped on a fatal error; offsets were committed only up to acknowledged records"
            );
            return Err(Error::Fatal(reason));
        }
        if let Some(e) = first_error {
            return Err(e);
        }
        Ok(Summary {
            topics: self.summary(&routes_rx.borrow()),
            migration_complete,
        })
    }

    /// The target producer every stream shares, its batches within the smallest target topic limit known now.
    /// A topic found later with a smaller one still has a record larger than its limit stopped before it is
    /// sent (`Stream::exceeds_limit`); a batch of smaller records beyond it is refused by the broker, and the stop
    /// names the batch's first record and says to lower batch.size (`deliver::failure::refused_record`).
    fn create_producer(&self, routes: &BTreeMap<String, Route>) -> Result<MirrorProducer> {
        let smallest_limit = routes.values().filter_map(|r| r.max_message_bytes).min();
        deliver::create(
            deliver::fit_batches(self.plan.target_producer.clone(), smallest_limit),
            self.metrics.clone(),
            self.health.clone(),
        )
    }

    /// Starts `numStreams` streams, each on a thread of its own.
    fn start_streams(
        &self,
        writers: TargetWriters<'_>,
        origin: Option<&Arc<Origin>>,
        routes: &watch::Receiver<Routes>,
        stop: &Arc<AtomicBool>,
        migration: Option<&Migration>,
    ) -> Result<Vec<StreamTask>> {
        let plan = &self.plan;
        let streams = plan.spec.num_streams as usize;
        let gate = Arc::new(ShutdownGate::new(streams));
        // A subscribed topic's new partitions reach a consumer with librdkafka's metadata refresh, every 5
        // minutes by default: as often as the worker reads the topic list instead, so that partitions added on
        // the source are mirrored within the same interval as new topics (unless the source config sets it).
        let mut consumer_config = plan.source_consumer.clone();
        if consumer_config
            .get("topic.metadata.refresh.interval.ms")
            .is_none()
        {
            consumer_config.set(
                "topic.metadata.refresh.interval.ms",
                (i64::from(plan.spec.topics.refresh_interval_seconds) * 1000).to_string(),
            );
        }
        let mut tasks = Vec::new();
        for stream in 0..streams {
            let settings = StreamSettings {
                stream,
                mirror: Arc::from(plan.name.as_str()),
                consumer_config: consumer_config.clone(),
                group_id: plan.group_id.clone(),
                partitioning: plan.spec.partitioning,
                commit_interval: self.options.commit_interval,
                drain_timeout: self.options.drain_timeout,
                migration_end: migration.map(|m| m.end.clone()),
                gate: gate.clone(),
                compresses: deliver::compresses(&plan.target_producer),
                transactions: writers.exactly_once.map(|e| {
                    Arc::new(Transactions::new(
                        plan,
                        e.topic.clone(),
                        e.groups,
                        writers.offset_syncs.map(|s| s.topic.clone()),
                        e.smallest_limit,
                        self.options.drain_timeout,
                        self.metrics.clone(),
                        self.health.clone(),
                    ))
                }),
                origin: origin.cloned(),
                offset_syncs: writers.offset_syncs.cloned(),
            };
            let stream = Stream::new(
                settings,
                writers.producer.cloned(),
                routes.clone(),
                stop.clone(),
                self.health.clone(),
                self.metrics.clone(),
            )?;
            tasks.push(tokio::task::spawn_blocking(move || stream.run()));
        }
        Ok(tasks)
    }

    /// Watches the running mirror until it must end: `shutdown`, a fatal error, a stream that ended, or (in
    /// `mode: migrate`) the migration complete, which is what it returns. Meanwhile, in `mode: continuous`,
    /// refreshes the topic routes every `refreshIntervalSeconds`.
    async fn supervise<F: Future<Output = ()>>(
        &self,
        mut shutdown: Pin<&mut F>,
        discovery: &Discovery,
        mut migration: Option<&mut Migration>,
        routes: &watch::Sender<Routes>,
        producer: Option<&MirrorProducer>,
        streams: &[StreamTask],
    ) -> bool {
        let refresh =
            Duration::from_secs(self.plan.spec.topics.refresh_interval_seconds.max(1) as u64);
        let mut refresh_timer =
            tokio::time::interval_at(tokio::time::Instant::now() + refresh, refresh);
        let mut tick = tokio::time::interval(TICK);
        let mut producer_watch = deliver::FatalWatch::default();
        loop {
            tokio::select! {
                _ = &mut shutdown => {
                    info!("shutdown requested; draining in-flight records and committing");
                    return false;
                }
                _ = refresh_timer.tick(), if migration.is_none() => {
                    self.refresh_routes(discovery, routes).await;
                }
                _ = tick.tick() => {
                    if let Some(producer) = producer {
                        producer_watch.check(producer, &self.health);
                    }
                    if self.health.fatal().is_some() || streams.iter().any(|s| s.is_finished()) {
                        return false;
                    }
                    if migration.as_deref_mut().is_some_and(Migration::reached_end) {
                        return true;
                    }
                }
            }
        }
    }

    /// Discovers the topics again and hands the streams the new routes if they changed; a failed discovery
    /// keeps the current ones.
    async fn refresh_routes(&self, discovery: &Discovery, routes_tx: &watch::Sender<Routes>) {
        match discovery.refresh().await {
            Ok((routes, _)) => {
                routes_tx.send_if_modified(|current| {
                    let changed = **current != routes;
                    if changed {
                        info!(topics = ?routes.keys().collect::<Vec<_>>(), "topic routes changed");
                        *current = Arc::new(routes);
                    }
                    changed
                });
            }
            Err(e) => {
                self.metrics.error("discovery");
                warn!(error = %e, "topic discovery failed; keeping the current topics");
            }
        }
    }

    fn summary(&self, routes: &Routes) -> BTreeMap<String, TopicSummary> {
        routes
            .iter()
            .map(|(topic, route)| {
                let labels = TopicLabels {
                    topic: topic.clone(),
                };
                let summary = TopicSummary {
                    target_topic: route.target_topic.clone(),
                    records: self.metrics.records_mirrored.get_or_create(&labels).get(),
                    bytes: self.metrics.bytes_mirrored.get_or_create(&labels).get(),
                };
                (topic.clone(), summary)
            })
            .collect()
    }
}

/// What the streams write to the target with: the shared producer (`atLeastOnce`) or the transactional setup
/// (`exactlyOnce`), and the offset maps they publish (`spec.consumerGroups`).
#[derive(Clone, Copy)]
struct TargetWriters<'a> {
    producer: Option<&'a Arc<MirrorProducer>>,
    exactly_once: Option<&'a ExactlyOnce>,
    offset_syncs: Option<&'a Arc<OffsetSyncs>>,
}

/// `delivery: exactlyOnce`: what every stream's transactions share.
struct ExactlyOnce {
    /// The transactions topic, and its partition count: the number of transaction groups.
    topic: String,
    groups: i32,
    smallest_limit: Option<i64>,
}

/// A stream's thread, and how it ended.
type StreamTask = tokio::task::JoinHandle<Result<()>>;

/// Waits for every stream to drain, commit and stop; returns the first error one of them ended with.
async fn join_streams(streams: Vec<StreamTask>) -> Option<Error> {
    let mut first_error = None;
    for stream in streams {
        match stream.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                first_error.get_or_insert(e);
            }
            Err(join) => {
                first_error
                    .get_or_insert(Error::Fatal(format!("a stream thread panicked: {join}")));
            }
        }
    }
    first_error
}

/// The first discovery: `continuous` keeps trying until the clusters answer; `migrate` needs every matching
/// topic routable, since its set of topics is fixed at start.
async fn first_routes(discovery: &Discovery, mode: Mode) -> Result<BTreeMap<String, Route>> {
    loop {
        match discovery.refresh().await {
            Ok((routes, unroutable)) if mode == Mode::Migrate => {
                if let Some(u) = unroutable.first() {
                    return Err(Error::Fatal(format!(
                        "cannot migrate topic {}: {}",
                        u.topic, u.reason
                    )));
                }
                return Ok(routes);
            }
            Ok((routes, _)) => return Ok(routes),
            Err(e) if mode == Mode::Migrate => return Err(e),
            Err(e) => {
                warn!(error = %e, "topic discovery failed; retrying");
                tokio::time::sleep(DISCOVERY_RETRY).await;
            }
        }
    }
}
