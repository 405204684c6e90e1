//! What a failed delivery means: a failure worth trying again re-reads the partition from its last
//! acknowledged offset; a record the target refuses for good stops the mirror there, uncommitted, with a reason
//! that says what to change. The one path for both, whether librdkafka refused the record when the stream
//! handed it over or reported it failed later.

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use tracing::{error, warn};

use crate::acks::PartitionState;
use crate::observe::health::Health;
use crate::observe::metrics::Metrics;

/// A record the target did not take: its partition, its offset and the generation it was sent in, where it
/// was going, and librdkafka's error.
pub(crate) struct FailedDelivery<'a> {
    pub state: &'a PartitionState,
    pub offset: i64,
    pub generation: u64,
    pub target_topic: &'a str,
    pub error: &'a KafkaError,
}

/// Settles a failed delivery: the record counts as failed in its partition's tracker, so the partition is
/// re-read from its last acknowledged offset; when trying again cannot help, the mirror stops at the record.
/// `after_gap`: librdkafka stopped the producer rather than leave a gap, and this report is the refused batch's
/// first record unless it is a consequence of the stop (see `producer_config`). One log line per partition and
/// rewind; every failure is counted in the metric. `transactional`: the record was sent in a transaction
/// (`delivery: exactlyOnce`), which is aborted and re-read whole; only a refusal of the record itself stops the
/// mirror, not the producer's own fatal state (fencing ends the partition's transactions, see `transactions`).
pub(crate) fn settle_failure(
    metrics: &Metrics,
    health: &Health,
    failed: FailedDelivery<'_>,
    after_gap: bool,
    transactional: bool,
) {
    let FailedDelivery {
        state,
        offset,
        generation,
        target_topic,
        error,
    } = failed;
    let first = state.failed(offset, generation);
    let source = format!("{}[{}]@{offset}", state.topic, state.partition);
    let class = if transactional && !refuses_record(error) {
        FailureClass::Retriable
    } else {
        failure_class(error, after_gap)
    };
    match class {
        FailureClass::Retriable => {
            metrics.error("delivery_retriable");
            if first {
                warn!(%error, source, target = target_topic, "delivery failed; the partition will be re-read from its last acknowledged offset");
            }
        }
        FailureClass::Fatal => {
            // A refused batch fails each of its records: one line per partition, the first.
            if first {
                error!(%error, source, target = target_topic, "the target refused a record for good");
            }
            stop_at_record(
                metrics,
                health,
                refused_record(&source, target_topic, error),
            );
        }
    }
}

/// Stops the mirror at a record the target cannot take: counted as `delivery_fatal`, and the engine's stop
/// reason unless an earlier one was set (see `Health::set_fatal`). Nothing from the record on is committed.
pub(crate) fn stop_at_record(metrics: &Metrics, health: &Health, reason: String) {
    metrics.error("delivery_fatal");
    health.set_fatal(reason);
}

/// How a failed delivery is handled, `after_gap` as in [`settle_failure`]. A failure caused only by the
/// producer having stopped is a consequence of the cause another report names, not a refusal of this record.
fn failure_class(error: &KafkaError, after_gap: bool) -> FailureClass {
    if stopped_producer(error) {
        FailureClass::Retriable
    } else if after_gap {
        FailureClass::Fatal
    } else {
        classify(error)
    }
}

/// How a failed delivery is handled.
#[derive(Debug, PartialEq, Eq)]
enum FailureClass {
    /// Worth trying again: the partition is re-read from its last acknowledged offset.
    Retriable,
    /// Trying again cannot help (the target refuses the record or the credentials); the worker stops rather
    /// than skip a record. Its offset stays uncommitted, so nothing is lost.
    Fatal,
}

/// Sorts a producer error into retriable and fatal.
fn classify(error: &KafkaError) -> FailureClass {
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

/// Whether the target refused the record itself, so that sending it again cannot help.
fn refuses_record(error: &KafkaError) -> bool {
    use RDKafkaErrorCode::*;
    matches!(
        error.rdkafka_error_code(),
        Some(
            MessageSizeTooLarge
                | InvalidMessageSize
                | InvalidRecord
                | InvalidTopic
                | TopicAuthorizationFailed
                | PolicyViolation
                | InvalidTimestamp
        )
    )
}

/// Whether a delivery failed only because the producer stopped (a fatal error, and the queues librdkafka
/// purged then): a consequence of the cause another report names, not a refusal of this record.
pub fn stopped_producer(error: &KafkaError) -> bool {
    matches!(
        error.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::Fatal
                | RDKafkaErrorCode::PurgeQueue
                | RDKafkaErrorCode::PurgeInflight
        )
    )
}

/// Why the mirror stops on a record the target refuses for good, and what to do about it. The policy for a
/// record larger than the target accepts is to stop, not to skip it: its offset and every later one stay
/// uncommitted, so raising the limit and restarting mirrors it with nothing lost.
fn refused_record(source: &str, target_topic: &str, error: &KafkaError) -> String {
    let hint = match error.rdkafka_error_code() {
        Some(RDKafkaErrorCode::MessageSizeTooLarge | RDKafkaErrorCode::InvalidMessageSize) => {
            ": the record is larger than the target accepts. Raise max.message.bytes of the target topic and \
             message.max.bytes in spec.target.config, then restart; nothing after this record was committed. (If \
             the record itself is smaller than the topic's max.message.bytes, the batch it was sent in was not: \
             set batch.size in spec.target.config to at most that limit.)"
        }
        Some(
            RDKafkaErrorCode::TopicAuthorizationFailed
            | RDKafkaErrorCode::ClusterAuthorizationFailed,
        ) => ": the target's ACLs do not let spec.target.authentication.username write this topic",
        _ => "",
    };
    format!("the target refused record {source} for topic {target_topic}: {error}{hint}")
}

/// Why the mirror stops before sending a record the target topic cannot take: its key, value and headers alone
/// (`bytes`) exceed the topic's `max.message.bytes` (`limit`). Not sending it keeps every later record of its
/// partition off the target too, so after the limit is raised the copy resumes at this record, in order.
pub fn oversized_record(source: &str, target_topic: &str, bytes: usize, limit: i64) -> String {
    format!(
        "record {source} is larger than the target accepts: its key, value and headers take {bytes} bytes and \
         the max.message.bytes of target topic {target_topic} is {limit}. Raise max.message.bytes of the target \
         topic (and message.max.bytes in spec.target.config if it is set lower), then restart; nothing from this \
         record on was committed or sent"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_caused_by_a_stopped_producer_are_not_refusals() {
        let produce = |code| KafkaError::MessageProduction(code);
        assert!(stopped_producer(&produce(RDKafkaErrorCode::PurgeQueue)));
        assert!(stopped_producer(&produce(RDKafkaErrorCode::PurgeInflight)));
        assert!(stopped_producer(&produce(RDKafkaErrorCode::Fatal)));
        assert!(!stopped_producer(&produce(
            RDKafkaErrorCode::MessageSizeTooLarge
        )));
        assert_eq!(
            classify(&produce(RDKafkaErrorCode::MessageSizeTooLarge)),
            FailureClass::Fatal
        );
    }
}
