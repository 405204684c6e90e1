//! Reads the mirror's own compacted topics on the target (the exactly-once transaction groups' positions, the
//! offset syncs) into their latest value per key. Blocking: run it off the async runtime.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use crate::client_config::KafkaClientConfig;
use crate::host_aliases::ResolvingContext;

/// What a topic the cluster does not know means to a reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missing {
    /// Nothing was written yet (its writers create it).
    IsEmpty,
    /// An error: the topic must exist.
    IsAnError,
}

/// The latest value of every key of `topic` (partition 0): [`read_latest_of`] one partition.
pub fn read_latest(
    connection: &KafkaClientConfig,
    group_id: &str,
    topic: &str,
    timeout: Duration,
    missing: Missing,
) -> Result<HashMap<Vec<u8>, Vec<u8>>, String> {
    read_latest_of(connection, group_id, topic, &[0], timeout, missing)
}

/// The latest value of every key in `partitions` of `topic`, read `read_committed` up to the high watermarks seen
/// when the read starts: every transaction decided before this call. Reading up to it waits for the last
/// stable offset to pass it, i.e. for transactions being committed meanwhile. `connection` is the target's
/// connection config; `group_id` names the reader (it never joins or commits). An empty topic reads as empty;
/// a topic the cluster does not know reads as empty only when `missing` says so (a reader that must not take
/// a momentarily unknown topic for an empty one says `Missing::IsAnError`).
pub fn read_latest_of(
    connection: &KafkaClientConfig,
    group_id: &str,
    topic: &str,
    partitions: &[i32],
    timeout: Duration,
    missing: Missing,
) -> Result<HashMap<Vec<u8>, Vec<u8>>, String> {
    let mut config = connection.clone();
    config
        .set("group.id", group_id)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("isolation.level", "read_committed");
    let reader: BaseConsumer<ResolvingContext> = config
        .create_with_context(ResolvingContext(connection.host_aliases().clone()))
        .map_err(|e| format!("creating a reader of {topic}: {e}"))?;
    // The high watermark itself, asked by a read_uncommitted client: a read_committed one is answered the last
    // stable offset, which a transaction being committed right now may hold below a record committed after it.
    config.set("isolation.level", "read_uncommitted");
    let watermarks: BaseConsumer<ResolvingContext> = config
        .create_with_context(ResolvingContext(connection.host_aliases().clone()))
        .map_err(|e| format!("creating a reader of {topic}: {e}"))?;
    let mut latest = HashMap::new();
    // Each partition's high watermark; a partition is read from its start up to it.
    let mut tpl = TopicPartitionList::new();
    let mut ends = Vec::new();
    for &partition in partitions {
        let (low, high) = match watermarks.fetch_watermarks(topic, partition, timeout) {
            Ok(watermarks) => watermarks,
            // Not created yet (the workers create it): nothing published yet. librdkafka says so with either code.
            Err(e)
                if missing == Missing::IsEmpty
                    && matches!(
                        e.rdkafka_error_code(),
                        Some(
                            rdkafka::error::RDKafkaErrorCode::UnknownTopicOrPartition
                                | rdkafka::error::RDKafkaErrorCode::UnknownPartition
                        )
                    ) =>
            {
                return Ok(latest);
            }
            Err(e) => {
                return Err(format!(
                    "reading the watermarks of {topic}[{partition}]: {e}"
                ));
            }
        };
        if high > low {
            tpl.add_partition_offset(topic, partition, Offset::Beginning)
                .map_err(|e| e.to_string())?;
            ends.push((partition, high));
        }
    }
    drop(watermarks);
    if ends.is_empty() {
        return Ok(latest);
    }
    reader
        .assign(&tpl)
        .map_err(|e| format!("reading {topic}: {e}"))?;
    let deadline = Instant::now() + timeout;
    loop {
        match reader.poll(Duration::from_millis(100)) {
            Some(Ok(message)) => {
                if let (Some(key), Some(value)) = (message.key(), message.payload()) {
                    latest.insert(key.to_vec(), value.to_vec());
                }
            }
            Some(Err(KafkaError::PartitionEOF(_))) | None => {}
            Some(Err(error)) => tracing::debug!(%error, topic, "reading a compacted topic"),
        }
        let positions = reader.position().ok();
        let behind = ends.iter().find(|(partition, high)| {
            !matches!(
                positions.as_ref().and_then(|p| p.find_partition(topic, *partition)).map(|e| e.offset()),
                Some(Offset::Offset(p)) if p >= *high
            )
        });
        let Some((partition, high)) = behind else {
            return Ok(latest);
        };
        if Instant::now() >= deadline {
            return Err(format!(
                "{topic}[{partition}] could not be read up to offset {high} within {}s",
                timeout.as_secs()
            ));
        }
    }
}
