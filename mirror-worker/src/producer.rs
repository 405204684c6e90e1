//! The target-side producer shared by every stream of the process: idempotent, acks=all, and a delivery
//! callback that settles each record in its partition's tracker.

use std::sync::Arc;

use rdkafka::ClientConfig;
use rdkafka::client::ClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{DeliveryResult, ProducerContext, ThreadedProducer};
use tracing::{error, warn};

use crate::health::Health;
use crate::metrics::Metrics;
use crate::partition_state::PartitionState;
use crate::{Error, Result};

/// Carried by every record through librdkafka and handed back on delivery.
pub struct DeliveryToken {
    pub state: Arc<PartitionState>,
    pub offset: i64,
    pub generation: u64,
    pub bytes: u64,
}

pub type MirrorProducer = ThreadedProducer<DeliveryContext>;

pub struct DeliveryContext {
    metrics: Arc<Metrics>,
    health: Arc<Health>,
}

/// How a failed delivery is handled.
#[derive(Debug, PartialEq, Eq)]
pub enum FailureClass {
    /// Worth trying again: the partition is re-read from its last acknowledged offset.
    Retriable,
    /// Trying again cannot help (the target refuses the record or the credentials); the worker stops rather
    /// than skip a record. Its offset stays uncommitted, so nothing is lost.
    Fatal,
}

/// Why the mirror stops on a record the target refuses for good, and what to do about it. The policy for a
/// record larger than the target accepts is to stop, not to skip it: its offset and every later one stay
/// uncommitted, so raising the limit and restarting mirrors it with nothing lost.
pub fn refused_record(source: &str, target_topic: &str, error: &KafkaError) -> String {
    let hint = match error.rdkafka_error_code() {
        Some(RDKafkaErrorCode::MessageSizeTooLarge | RDKafkaErrorCode::InvalidMessageSize) => {
            ": the record is larger than the target accepts. Raise max.message.bytes of the target topic and \
             message.max.bytes in spec.target.config, then restart; nothing after this record was committed"
        }
        Some(
            RDKafkaErrorCode::TopicAuthorizationFailed
            | RDKafkaErrorCode::ClusterAuthorizationFailed,
        ) => ": the target's ACLs do not let spec.target.authentication.username write this topic",
        _ => "",
    };
    format!("the target refused record {source} for topic {target_topic}: {error}{hint}")
}

/// Sorts a producer error into retriable and fatal.
pub fn classify(error: &KafkaError) -> FailureClass {
    use RDKafkaErrorCode::*;
    match error.rdkafka_error_code() {
        Some(
            MessageSizeTooLarge
            | InvalidMessageSize
            | InvalidRecord
            | InvalidTopic
            | TopicAuthorizationFailed
            | ClusterAuthorizationFailed
            | SaslAuthenticationFailed
            | PolicyViolation
            | InvalidTimestamp
            | Fatal,
        ) => FailureClass::Fatal,
        _ => FailureClass::Retriable,
    }
}

impl ClientContext for DeliveryContext {
    fn error(&self, error: KafkaError, reason: &str) {
        if error.rdkafka_error_code() == Some(RDKafkaErrorCode::AllBrokersDown) {
            self.health.set_target_reachable(false);
            self.metrics.error("target_unreachable");
        }
        if error.rdkafka_error_code() == Some(RDKafkaErrorCode::Fatal) {
            self.health.set_fatal(format!("target producer: {reason}"));
        }
        warn!(cluster = "target", %error, reason, "librdkafka reported an error");
    }
}

impl ProducerContext for DeliveryContext {
    type DeliveryOpaque = Box<DeliveryToken>;

    fn delivery(&self, result: &DeliveryResult<'_>, token: Self::DeliveryOpaque) {
        self.metrics.in_flight_records.dec();
        match result {
            Ok(_) => {
                self.health.set_target_reachable(true);
                token
                    .state
                    .acked(token.offset, token.generation, token.bytes);
            }
            Err((error, message)) => {
                let first = token.state.failed(token.offset, token.generation);
                let source = format!(
                    "{}[{}]@{}",
                    token.state.topic, token.state.partition, token.offset
                );
                match classify(error) {
                    FailureClass::Retriable => {
                        self.metrics.error("delivery_retriable");
                        // One line per partition and rewind; every failure is counted in the metric.
                        if first {
                            warn!(%error, source, target = message.topic(), "delivery failed; the partition will be re-read from its last acknowledged offset");
                        }
                    }
                    FailureClass::Fatal => {
                        self.metrics.error("delivery_fatal");
                        error!(%error, source, target = message.topic(), "the target refused a record for good");
                        self.health
                            .set_fatal(refused_record(&source, message.topic(), error));
                    }
                }
            }
        }
    }
}

/// The target producer settings: `config` (connection, defaults, pass-through config) with the guarantees the
/// mirror depends on set last, so nothing can override them. Public so the benchmark's produce-alone limit uses
/// the same.
pub fn producer_config(mut config: ClientConfig) -> ClientConfig {
    config
        .set("enable.idempotence", "true")
        .set("acks", "all")
        // Never let a metadata request create a target topic with the broker's default partition count.
        .set("allow.auto.create.topics", "false");
    config
}

/// Creates the producer from [`producer_config`].
pub fn create(
    config: ClientConfig,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
) -> Result<MirrorProducer> {
    producer_config(config)
        .create_with_context(DeliveryContext { metrics, health })
        .map_err(|e| Error::Kafka {
            what: "creating the target producer".into(),
            source: e,
        })
}
