//! Discover: which source topics match the whitelist, where their records go, and creating missing
//! target topics before their first record.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kafka_mirror_clients::Error as ClientsError;
use kafka_mirror_clients::broker_probe::BrokerProbe;
use kafka_mirror_clients::client_config::KafkaClientConfig;
use kafka_mirror_clients::host_aliases::{self, ResolvingContext};
use kafka_mirror_clients::topics::{matching_topics, partition_counts};
use kafka_mirror_crds::{KafkaMirrorSpec, Partitioning, TopicFilter};
use rdkafka::admin::{
    AdminClient, AdminOptions, NewTopic, OwnedResourceSpecifier, ResourceSpecifier,
    TopicReplication,
};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::metadata::Metadata;
use tracing::{debug, info, warn};

use crate::consume::Origin;
use crate::observe::metrics::Metrics;
use crate::topic_sync::{self, Growth};
use crate::{Error, Result};

const METADATA_TIMEOUT: Duration = Duration::from_secs(15);

/// Where the records of one source topic go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub target_topic: String,
    pub source_partitions: i32,
    pub target_partitions: i32,
    /// The target topic's `max.message.bytes` (DescribeConfigs): the largest record batch it accepts. `None`
    /// when it could not be read (e.g. no DescribeConfigs permission); the broker's refusal then tells.
    pub max_message_bytes: Option<i64>,
}

/// Routes by source topic name: the subscription of every stream.
pub type Routes = Arc<BTreeMap<String, Route>>;

pub struct Discovery {
    /// Metadata requests that explain a failure (see `broker_probe`), one per cluster.
    source_probe: BrokerProbe,
    target_probe: BrokerProbe,
    /// Creates missing target topics and reads their configuration.
    target_admin: AdminClient<ResolvingContext>,
    /// Reads the source topics' configs for `spec.topics.sync`.
    source_admin: AdminClient<ResolvingContext>,
    /// When the configs were last copied (`spec.topics.sync.intervalSeconds`).
    configs_copied_at: Mutex<Option<Instant>>,
    /// Each source topic's partition count at the last refresh, to tell a topic that grew.
    source_partitions_seen: Mutex<HashMap<String, i32>>,
    filter: TopicFilter,
    spec: KafkaMirrorSpec,
    metrics: Arc<Metrics>,
}

/// A matching topic that cannot be mirrored yet, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unroutable {
    pub topic: String,
    pub reason: String,
}

impl Discovery {
    pub fn new(
        source: &KafkaClientConfig,
        target: &KafkaClientConfig,
        filter: TopicFilter,
        spec: KafkaMirrorSpec,
        metrics: Arc<Metrics>,
    ) -> Result<Self> {
        let creating = |what: &str| {
            let what = what.to_string();
            move |source| Error::Kafka { what, source }
        };
        Ok(Self {
            source_probe: BrokerProbe::new(source, "spec.source")
                .map_err(creating("creating the source admin client"))?,
            target_probe: BrokerProbe::new(target, "spec.target")
                .map_err(creating("creating the target admin client"))?,
            target_admin: target
                .create::<AdminClient<ResolvingContext>>()
                .map_err(creating("creating the target admin client"))?,
            source_admin: source
                .create::<AdminClient<ResolvingContext>>()
                .map_err(creating("creating the source admin client"))?,
            configs_copied_at: Mutex::new(None),
            source_partitions_seen: Mutex::new(HashMap::new()),
            filter,
            spec,
            metrics,
        })
    }

    /// `spec.markOrigin`: the source and the target cluster's ids.
    pub fn origin(&self) -> Result<Origin> {
        let id = |probe: &BrokerProbe, cluster: &str| -> Result<String> {
            match blocking(|| probe.cluster_id(METADATA_TIMEOUT)) {
                Ok(Some(id)) => Ok(id),
                Ok(None) => Err(Error::Unsupported(format!(
                    "spec.markOrigin: the {cluster} cluster reports no cluster id (Kafka before 0.10.1), and the \
                     origin header holds it; set spec.markOrigin to false"
                ))),
                Err(source) => Err(ClientsError::Broker {
                    what: format!("reading the {cluster} cluster's id (spec.markOrigin)"),
                    source: Box::new(source),
                }
                .into()),
            }
        };
        Ok(Origin::new(
            id(&self.source_probe, "source")?,
            id(&self.target_probe, "target")?,
        ))
    }

    /// Source partition counts of every topic the whitelist matches.
    fn matching_source_topics(&self) -> Result<BTreeMap<String, i32>> {
        let metadata = cluster_metadata(&self.source_probe, "source")?;
        Ok(matching_topics(&metadata, &self.filter))
    }

    /// Routes for every matching topic, creating missing target topics first. Topics that cannot be routed
    /// (creation refused, too few target partitions for `preserve`) are returned apart, to be reported and
    /// tried again at the next refresh.
    pub async fn refresh(&self) -> Result<(BTreeMap<String, Route>, Vec<Unroutable>)> {
        let sources = self.matching_source_topics()?;
        let (mut targets, answering_broker) = {
            let metadata = cluster_metadata(&self.target_probe, "target")?;
            (partition_counts(&metadata), metadata.orig_broker_id())
        };
        let missing: Vec<(String, i32)> = sources
            .iter()
            .map(|(topic, partitions)| (self.spec.topics.target_name(topic), *partitions))
            .filter(|(target, _)| !targets.contains_key(target))
            .collect();
        let mut unroutable = Vec::new();
        let mut created = Vec::new();
        if !missing.is_empty() {
            if self.spec.topics.create.enabled {
                for (topic, result) in self.create_topics(&missing).await {
                    match result {
                        Ok(partitions) => {
                            targets.insert(topic.clone(), partitions);
                            created.push(topic);
                        }
                        Err(reason) => unroutable.push(Unroutable { topic, reason }),
                    }
                }
            } else {
                for (topic, _) in &missing {
                    unroutable.push(Unroutable {
                        topic: topic.clone(),
                        reason:
                            "target topic does not exist and spec.topics.create.enabled is false"
                                .into(),
                    });
                }
            }
        }
        self.grow_target_topics(&sources, &mut targets, &mut unroutable)
            .await;
        let routed: Vec<String> = sources
            .keys()
            .map(|topic| self.spec.topics.target_name(topic))
            .filter(|target| targets.contains_key(target))
            .collect();
        let limits = self.max_message_bytes(&routed, answering_broker).await;
        let mut routes = BTreeMap::new();
        for (source_topic, source_partitions) in sources {
            let target_topic = self.spec.topics.target_name(&source_topic);
            let Some(&target_partitions) = targets.get(&target_topic) else {
                continue;
            };
            if self.spec.partitioning == Partitioning::Preserve
                && target_partitions < source_partitions
            {
                unroutable.push(Unroutable {
                    topic: target_topic,
                    reason: format!(
                        "spec.partitioning is preserve but the target topic has {target_partitions} partitions and \
                         the source topic {source_topic} has {source_partitions}"
                    ),
                });
                continue;
            }
            routes.insert(
                source_topic,
                Route {
                    max_message_bytes: limits.get(&target_topic).copied(),
                    target_topic,
                    source_partitions,
                    target_partitions,
                },
            );
        }
        self.copy_configs(&routes, &created).await;
        for u in &unroutable {
            self.metrics.error("topic_unroutable");
            warn!(
                topic = u.topic,
                reason = u.reason,
                "a matching topic cannot be mirrored yet"
            );
        }
        Ok((routes, unroutable))
    }

    /// `spec.topics.sync.partitions`: adds partitions to the existing target topics that follow their source
    /// topic's growth, updating `targets`. With `preserve` every target topic with fewer partitions than its
    /// source topic grows (the new source partitions need theirs), and one that cannot is reported unroutable.
    /// With `key` a target topic grows only when this worker saw its source topic grow while the target had the
    /// source's count: a target created with another count on purpose keeps it (and one that cannot grow is
    /// mirrored on into the partitions it has).
    async fn grow_target_topics(
        &self,
        sources: &BTreeMap<String, i32>,
        targets: &mut BTreeMap<String, i32>,
        unroutable: &mut Vec<Unroutable>,
    ) {
        if !self.spec.topics.sync.partitions {
            return;
        }
        let growths: Vec<Growth> = {
            let seen = self
                .source_partitions_seen
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            sources
                .iter()
                .filter_map(|(source, &to)| {
                    let target_topic = self.spec.topics.target_name(source);
                    let from = *targets.get(&target_topic)?;
                    let follows = match self.spec.partitioning {
                        Partitioning::Preserve => from < to,
                        Partitioning::Key => seen
                            .get(source)
                            .is_some_and(|&before| before < to && from == before),
                    };
                    follows.then_some(Growth {
                        target_topic,
                        from,
                        to,
                    })
                })
                .collect()
        };
        let mut failed = Vec::new();
        for (topic, result) in topic_sync::add_partitions(&self.target_admin, &growths).await {
            match result {
                Ok(partitions) => {
                    targets.insert(topic, partitions);
                }
                Err(reason) => {
                    self.metrics.error("topic_sync");
                    warn!(
                        topic,
                        reason, "the target topic keeps fewer partitions than its source topic"
                    );
                    failed.push(topic.clone());
                    if self.spec.partitioning == Partitioning::Preserve {
                        targets.remove(&topic);
                        unroutable.push(Unroutable { topic, reason });
                    }
                }
            }
        }
        // What the next refresh compares with; a growth that failed is tried again then.
        let mut seen = self
            .source_partitions_seen
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        for (source, &count) in sources {
            if !failed.contains(&self.spec.topics.target_name(source)) {
                seen.insert(source.clone(), count);
            }
        }
    }

    /// `spec.topics.sync.configs`: copies the source topics' configs to the target topics of `routes` when
    /// `intervalSeconds` passed since the last copy (at once on the first refresh), and to the target topics
    /// `created` by this refresh in any case. A failed copy waits for the interval too: a cluster that does not
    /// answer DescribeConfigs would otherwise hold every refresh up for the request's timeout.
    async fn copy_configs(&self, routes: &BTreeMap<String, Route>, created: &[String]) {
        let sync = &self.spec.topics.sync;
        let synced: Vec<&str> = sync.configs(&self.spec.topics.create.config).collect();
        if synced.is_empty() {
            return;
        }
        let interval = Duration::from_secs(sync.interval_seconds.max(1) as u64);
        let due = {
            let mut last = self
                .configs_copied_at
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            let due = last.is_none_or(|at| at.elapsed() >= interval);
            if due {
                *last = Some(Instant::now());
            }
            due
        };
        let pairs: Vec<(String, String)> = routes
            .iter()
            .filter(|(_, route)| due || created.contains(&route.target_topic))
            .map(|(source, route)| (source.clone(), route.target_topic.clone()))
            .collect();
        if let Err(reason) =
            topic_sync::copy_configs(&self.source_admin, &self.target_admin, &pairs, &synced).await
        {
            self.metrics.error("topic_sync");
            warn!(
                reason,
                interval_seconds = sync.interval_seconds,
                "the target topics' configs could not follow the source topics'; trying again after the interval"
            );
        }
    }

    /// The `max.message.bytes` of each target topic in `topics` whose configuration can be read. librdkafka does
    /// not split a batch the broker refuses as too large, so the engine keeps batches and records within it.
    /// `broker` is the target broker that answered this refresh's metadata request.
    async fn max_message_bytes(&self, topics: &[String], broker: i32) -> HashMap<String, i64> {
        if topics.is_empty() {
            return HashMap::new();
        }
        // Asked of the broker that answered metadata (naming it as a resource makes librdkafka send the request
        // there) rather than of the controller, librdkafka's choice for topics alone: a cluster without
        // DescribeConfigs then says so at once, instead of after the timeout.
        let resources: Vec<ResourceSpecifier<'_>> = topics
            .iter()
            .map(|topic| ResourceSpecifier::Topic(topic))
            .chain([ResourceSpecifier::Broker(broker)])
            .collect();
        let options = AdminOptions::new().request_timeout(Some(METADATA_TIMEOUT));
        match self
            .target_admin
            .describe_configs(&resources, &options)
            .await
        {
            Ok(results) => results
                .into_iter()
                .filter_map(|result| {
                    let resource = result
                        .map_err(
                            |code| debug!(%code, "a target topic's configuration cannot be read"),
                        )
                        .ok()?;
                    let limit = resource
                        .get("max.message.bytes")?
                        .value
                        .as_deref()?
                        .parse()
                        .ok()?;
                    match resource.specifier {
                        OwnedResourceSpecifier::Topic(topic) => Some((topic, limit)),
                        _ => None,
                    }
                })
                .collect(),
            Err(error) => {
                debug!(%error, "reading the target topics' max.message.bytes failed");
                HashMap::new()
            }
        }
    }

    /// Creates target topics with the source's partition count; an "already exists" answer (another worker
    /// was faster) counts as success. Returns the partition count each topic now has, or why it failed.
    async fn create_topics(&self, topics: &[(String, i32)]) -> Vec<(String, Result<i32, String>)> {
        let create = &self.spec.topics.create;
        // -1: the target cluster's default.replication.factor (KIP-464).
        let replication_factor = create.replication_factor.unwrap_or(-1);
        let new_topics: Vec<NewTopic<'_>> = topics
            .iter()
            .map(|(name, partitions)| {
                create.config.iter().fold(
                    NewTopic::new(
                        name,
                        *partitions,
                        TopicReplication::Fixed(replication_factor),
                    ),
                    |t, (k, v)| t.set(k, v),
                )
            })
            .collect();
        let options = AdminOptions::new().operation_timeout(Some(METADATA_TIMEOUT));
        let partitions: HashMap<&str, i32> = topics.iter().map(|(n, p)| (n.as_str(), *p)).collect();
        match self.target_admin.create_topics(&new_topics, &options).await {
            Ok(results) => results
                .into_iter()
                .map(|result| match result {
                    Ok(topic) => {
                        let p = partitions[topic.as_str()];
                        info!(topic, partitions = p, "created target topic");
                        (topic, Ok(p))
                    }
                    Err((topic, RDKafkaErrorCode::TopicAlreadyExists)) => {
                        let p = partitions[topic.as_str()];
                        (topic, Ok(p))
                    }
                    Err((topic, code)) => {
                        self.metrics.error("topic_creation");
                        (
                            topic,
                            Err(format!("creating the target topic failed: {code}")),
                        )
                    }
                })
                .collect(),
            Err(e) => {
                self.metrics.error("topic_creation");
                topics
                    .iter()
                    .map(|(t, _)| {
                        (
                            t.clone(),
                            Err(format!("creating the target topic failed: {e}")),
                        )
                    })
                    .collect()
            }
        }
    }
}

/// The metadata of every topic of a cluster. Fails when a broker advertises a name that is neither one of the
/// cluster's `hostAliases` nor resolved by this machine (see `host_aliases::check_advertised`).
fn cluster_metadata(client: &BrokerProbe, cluster: &str) -> Result<Metadata> {
    let metadata = blocking(|| client.metadata(None, METADATA_TIMEOUT)).map_err(|source| {
        ClientsError::Broker {
            what: format!("reading the {cluster} cluster's topic list"),
            source: Box::new(source),
        }
    })?;
    blocking(|| {
        host_aliases::check_advertised(&format!("spec.{cluster}"), &metadata, client.host_aliases())
    })
    .map_err(|source| ClientsError::Broker {
        what: format!("reaching the {cluster} cluster's brokers"),
        source: Box::new(source),
    })?;
    Ok(metadata)
}

/// Runs a blocking librdkafka call without stalling the async runtime's other tasks.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}
