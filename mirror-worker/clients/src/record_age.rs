//! How old the first record the mirror has yet to copy is, per partition: the recovery point a failover now
//! would have, in time. Read from the source itself (one record per partition), so it stays true while every
//! worker is down. Blocking: run it off the async runtime.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use crate::client_config::KafkaClientConfig;
use crate::host_aliases::ResolvingContext;
use crate::positions::SourcePartition;
use crate::{Error, Result};

/// Partitions whose first unmirrored record is read at most: the ones with the most records behind. Beyond
/// that, the age shown is the oldest among them.
pub const MAX_PARTITIONS: usize = 200;

/// The timestamp (milliseconds since the epoch, as the record carries it: its producer's clock with
/// `CreateTime`) of the record at `offset` of each partition of `heads`, for the partitions that answer within
/// `timeout`. Fetches are kept small: one record per partition is wanted, not a batch of a megabyte each.
pub fn head_timestamps(
    source: &KafkaClientConfig,
    heads: &[(SourcePartition, i64)],
    timeout: Duration,
) -> Result<BTreeMap<SourcePartition, i64>> {
    let mut found = BTreeMap::new();
    if heads.is_empty() {
        return Ok(found);
    }
    let mut config = source.clone();
    config
        .set("group.id", "kafka-mirror.record-age")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "false")
        .set("fetch.max.bytes", "1048576")
        .set("max.partition.fetch.bytes", "16384")
        .set("queued.max.messages.kbytes", "1024");
    let consumer: BaseConsumer<ResolvingContext> = config
        .create_with_context(ResolvingContext(source.host_aliases().clone()))
        .map_err(|source| Error::Kafka {
            what: "creating the source record reader".into(),
            source,
        })?;
    let mut tpl = TopicPartitionList::with_capacity(heads.len());
    for ((topic, partition), offset) in heads {
        tpl.add_partition_offset(topic, *partition, Offset::Offset(*offset))
            .map_err(|source| Error::Kafka {
                what: format!("reading {topic}[{partition}] at {offset}"),
                source,
            })?;
    }
    consumer.assign(&tpl).map_err(|source| Error::Kafka {
        what: "assigning the partitions behind".into(),
        source,
    })?;
    let wanted: BTreeMap<SourcePartition, i64> = heads.iter().cloned().collect();
    let deadline = Instant::now() + timeout;
    while found.len() < wanted.len() && Instant::now() < deadline {
        let Some(Ok(message)) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        let key = (message.topic().to_string(), message.partition());
        // The first record at or after the offset asked for (a compacted or transactional source has gaps).
        if wanted.get(&key).is_some_and(|o| message.offset() >= *o)
            && !found.contains_key(&key)
            && let Some(timestamp) = message.timestamp().to_millis()
        {
            found.insert(key.clone(), timestamp);
            let _ = consumer.pause(&{
                let mut one = TopicPartitionList::new();
                one.add_partition(&key.0, key.1);
                one
            });
        }
    }
    Ok(found)
}
