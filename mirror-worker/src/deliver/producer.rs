//! The target-side producer shared by every stream of the process: idempotent, acks=all, and a delivery
//! callback that settles each record in its partition's tracker.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use kafka_mirror_clients::client_config::KafkaClientConfig;
use kafka_mirror_clients::host_aliases::HostAliases;
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{
    BaseRecord, DeliveryResult, Producer, ProducerContext, PurgeConfig, ThreadedProducer,
};
use tracing::{debug, error, info, warn};

use super::failure::{FailedDelivery, settle_failure};
use crate::acks::PartitionState;
use crate::observe::health::Health;
use crate::observe::metrics::Metrics;
use crate::{Error, Result};

/// Carried by every record through librdkafka and handed back on delivery.
pub struct DeliveryToken {
    pub state: Arc<PartitionState>,
    pub offset: i64,
    pub generation: u64,
    pub bytes: u64,
}

/// The offset a [`DeliveryToken`] carries for a record of the mirror's own, which no tracker counts: the
/// partition's position in the positions topic (`delivery: exactlyOnce`) or its offset map in the offset syncs
/// topic (`spec.consumerGroups`).
pub const POSITION_RECORD: i64 = -1;

pub type MirrorProducer = ThreadedProducer<DeliveryContext>;

/// A record of the mirror's own for `partition` of one of its topics on the target (a position, an offset map)
/// about the source partition `state`; its delivery report is not counted (see [`POSITION_RECORD`]).
pub fn own_record<'a>(
    topic: &'a str,
    partition: i32,
    key: &'a str,
    value: &'a [u8],
    state: &Arc<PartitionState>,
) -> BaseRecord<'a, str, [u8], Box<DeliveryToken>> {
    let token = DeliveryToken {
        state: state.clone(),
        offset: POSITION_RECORD,
        generation: 0,
        bytes: 0,
    };
    BaseRecord::with_opaque_to(topic, Box::new(token))
        .partition(partition)
        .key(key)
        .payload(value)
}

pub struct DeliveryContext {
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    /// librdkafka stopped the producer rather than let a refused batch leave a gap in its partition (see
    /// [`producer_config`]); the reports of that batch come next and name the record the mirror stops at.
    gap: AtomicBool,
    /// `spec.target.hostAliases`: the producer resolves the brokers' names through them.
    host_aliases: HostAliases,
    /// One source partition's transactional producer (`delivery: exactlyOnce`): its fatal errors (fencing)
    /// end that partition's transactions, not the process, and a failed delivery aborts the transaction.
    transactional: bool,
}

impl DeliveryContext {
    pub fn new(
        metrics: Arc<Metrics>,
        health: Arc<Health>,
        host_aliases: HostAliases,
        transactional: bool,
    ) -> Self {
        Self {
            metrics,
            health,
            gap: AtomicBool::new(false),
            host_aliases,
            transactional,
        }
    }
}

/// Notices that librdkafka stopped the producer for good (a fatal error, e.g. the gap-less guarantee), which no
/// callback says as such. The engine calls it every tick.
#[derive(Default)]
pub struct FatalWatch {
    seen: bool,
}

impl FatalWatch {
    /// The first time the producer is seen stopped, fails what it still holds (nothing of it can be delivered
    /// any more), so drains end at once instead of at their timeout; none of it is committed. One tick later,
    /// unless a delivery report named the refused record, the producer's own reason becomes the stop.
    pub fn check(&mut self, producer: &MirrorProducer, health: &Health) {
        let Some((code, reason)) = producer.client().fatal_error() else {
            return;
        };
        if !self.seen {
            self.seen = true;
            producer.purge(PurgeConfig::default().queue().inflight().non_blocking());
            return;
        }
        health.set_fatal(format!("target producer: {reason} ({code:?})"));
    }
}

/// librdkafka's default `batch.size`.
const DEFAULT_BATCH_SIZE: i64 = 1_000_000;

/// Keeps every batch the producer sends within `limit`, the smallest `max.message.bytes` of the target
/// topics. A broker refuses a whole batch larger than its topic's limit, and librdkafka (unlike the Java
/// producer) does not split it and try again: small records batched together beyond the limit would stop the
/// mirror, naming a record that fits. With `batch.size` at most the limit, only a record larger than the limit
/// by itself is refused, alone in its batch.
pub fn fit_batches(mut config: KafkaClientConfig, limit: Option<i64>) -> KafkaClientConfig {
    let batch_size = config
        .get("batch.size")
        .and_then(|v| v.parse::<i64>().ok())
        .unwrap_or(DEFAULT_BATCH_SIZE);
    if let Some(limit) = limit.filter(|limit| *limit > 0 && *limit < batch_size) {
        info!(
            batch_size = limit,
            "batch.size lowered to the smallest max.message.bytes of the target topics"
        );
        config.set("batch.size", limit.to_string());
    }
    config
}

/// Whether the producer compresses batches (`compression.type` or its alias `compression.codec`), so the
/// broker judges a record by its compressed size and a large record may still fit.
pub fn compresses(config: &KafkaClientConfig) -> bool {
    ["compression.type", "compression.codec"]
        .iter()
        .any(|key| config.get(key).is_some_and(|codec| codec != "none"))
}

impl ClientContext for DeliveryContext {
    const ENABLE_RESOLVE_BROKER: bool = true;

    fn resolve_broker(&self, host: &str) -> Option<IpAddr> {
        self.host_aliases.resolve(host)
    }

    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        // librdkafka warns at every start that the gap-less guarantee (see `producer_config`) is experimental:
        // a choice made here on purpose, not something an operator must act on.
        if fac == "CONFWARN" && message.contains("enable.gapless.guarantee") {
            debug!(target: "librdkafka", "librdkafka: {fac} {message}");
            return;
        }
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error => error!(target: "librdkafka", "librdkafka: {fac} {message}"),
            RDKafkaLogLevel::Warning => warn!(target: "librdkafka", "librdkafka: {fac} {message}"),
            RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
                info!(target: "librdkafka", "librdkafka: {fac} {message}")
            }
            RDKafkaLogLevel::Debug => debug!(target: "librdkafka", "librdkafka: {fac} {message}"),
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        if error.rdkafka_error_code() == Some(RDKafkaErrorCode::AllBrokersDown) {
            self.health.set_target_reachable(false);
            self.metrics.error("target_unreachable");
        }
        match error.rdkafka_error_code() {
            // Not the reason to show: the refused batch's reports follow and name its record.
            Some(RDKafkaErrorCode::GaplessGuarantee) => self.gap.store(true, Ordering::Release),
            // A transactional producer's fatal error (fencing) is its partition's: see `transactions`.
            Some(RDKafkaErrorCode::Fatal) if !self.transactional => {
                self.health.set_fatal(format!("target producer: {reason}"))
            }
            // Other fatal errors arrive with their own code (rust-rdkafka drops the event's fatal flag):
            // `FatalWatch` finds them.
            _ => {}
        }
        warn!(cluster = "target", %error, reason, "librdkafka reported an error");
    }
}

impl ProducerContext for DeliveryContext {
    type DeliveryOpaque = Box<DeliveryToken>;

    fn delivery(&self, result: &DeliveryResult<'_>, token: Self::DeliveryOpaque) {
        if token.offset == POSITION_RECORD {
            // A position in the positions topic: its transaction's commit reports its fate.
            return;
        }
        self.metrics.in_flight_records.dec();
        match result {
            Ok(message) => {
                self.health.set_target_reachable(true);
                if let Some(syncs) = &token.state.offset_syncs {
                    syncs.copied(token.offset, message.partition(), message.offset());
                }
                token
                    .state
                    .acked(token.offset, token.generation, token.bytes);
            }
            Err((error, message)) => settle_failure(
                &self.metrics,
                &self.health,
                FailedDelivery {
                    state: &token.state,
                    offset: token.offset,
                    generation: token.generation,
                    target_topic: message.topic(),
                    error,
                },
                self.gap.load(Ordering::Acquire),
                self.transactional,
            ),
        }
    }
}

/// Waits until every record handed to `producer` is delivered and its report settled, up to `timeout`; false
/// when some are still on their way then. Unlike `flush`, which also serves delivery reports on the calling
/// thread, this leaves them to the producer's own poll thread: with two threads serving them, two reports of
/// one partition could be settled in reverse order, and the offset maps number copies in the order they are
/// settled.
pub fn wait_delivered(producer: &MirrorProducer, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if producer.in_flight_count() == 0 {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(DELIVERY_WAIT_STEP);
    }
}

/// How often [`wait_delivered`] looks whether everything was delivered.
const DELIVERY_WAIT_STEP: Duration = Duration::from_millis(5);

/// The target producer settings: `config` (connection, defaults, pass-through config) with the guarantees the
/// mirror depends on set last, so nothing can override them. Public so the benchmark's produce-alone limit uses
/// the same.
pub fn producer_config(mut config: KafkaClientConfig) -> KafkaClientConfig {
    config
        .set("enable.idempotence", "true")
        // A batch the target refuses for good (too large, invalid) would otherwise make librdkafka bump the
        // producer epoch and send the partition's later batches anyway: the target would get records after
        // the refused one, and once the mirror resumed at it, they would be out of order. Stop instead.
        .set("enable.gapless.guarantee", "true")
        .set("acks", "all")
        // Never let a metadata request create a target topic with the broker's default partition count.
        .set("allow.auto.create.topics", "false");
    config
}

/// Creates the producer from [`producer_config`].
pub fn create(
    config: KafkaClientConfig,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
) -> Result<MirrorProducer> {
    let config = producer_config(config);
    config
        .create_with_context(DeliveryContext::new(
            metrics,
            health,
            config.host_aliases().clone(),
            false,
        ))
        .map_err(|e| Error::Kafka {
            what: "creating the target producer".into(),
            source: e,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::ClientConfig;

    fn batch_size(config: &KafkaClientConfig) -> Option<&str> {
        config.get("batch.size")
    }

    #[test]
    fn batches_shrink_to_the_smallest_topic_limit_and_never_grow() {
        assert_eq!(
            batch_size(&fit_batches(ClientConfig::new().into(), Some(20_000))),
            Some("20000")
        );
        // Topics that take more than librdkafka's default batch leave it alone.
        assert_eq!(
            batch_size(&fit_batches(ClientConfig::new().into(), Some(2_000_000))),
            None
        );
        assert_eq!(
            batch_size(&fit_batches(ClientConfig::new().into(), None)),
            None
        );
        // A smaller batch.size from spec.target.config is kept.
        let mut configured = ClientConfig::new();
        configured.set("batch.size", "16384");
        assert_eq!(
            batch_size(&fit_batches(configured.into(), Some(20_000))),
            Some("16384")
        );
    }

    #[test]
    fn compression_is_read_under_both_names_and_none_is_none() {
        let with = |key: &str, value: &str| {
            let mut config = ClientConfig::new();
            config.set(key, value);
            compresses(&config.into())
        };
        assert!(with("compression.type", "lz4"));
        assert!(with("compression.codec", "zstd"));
        assert!(!with("compression.type", "none"));
        assert!(!compresses(&ClientConfig::new().into()));
    }
}
