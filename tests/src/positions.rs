//! Where a mirror stands, as the clusters record it: a consumer group's committed offsets on one topic
//! ([`GroupOffsets`]) and a topic's watermarks ([`Watermarks`]). The readers return the cluster's answer or
//! its error and leave the meaning of a failed read, or of a partition the group never committed, to the
//! caller's assertion; [`retried`] is the patient way of reading for callers that sample while clusters
//! settle, and [`Progress`] samples both sides of one mirror that way.

use std::time::{Duration, Instant};

use kafka_mirror_clients::positions::GroupPositions;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use crate::records::client_config;

/// How long one request to a cluster may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// A consumer group's position on partitions `0..partitions` of one topic (or of several,
/// [`GroupOffsets::for_topics`]), read without joining the group.
pub struct GroupOffsets {
    reader: GroupPositions,
    partitions: Vec<(String, i32)>,
}

impl GroupOffsets {
    /// `cluster` is the client configuration of the cluster the group lives on (the mirror's source).
    pub fn new(cluster: &ClientConfig, group: &str, topic: &str, partitions: i32) -> GroupOffsets {
        GroupOffsets::for_topics(cluster, group, &[topic], partitions)
    }

    /// Partitions `0..partitions` of each of `topics`; per-partition answers come topic by topic, in partition
    /// order.
    pub fn for_topics(
        cluster: &ClientConfig,
        group: &str,
        topics: &[impl AsRef<str>],
        partitions: i32,
    ) -> GroupOffsets {
        GroupOffsets {
            // The test clusters' own names resolve: no hostAliases.
            reader: GroupPositions::new(&cluster.clone().into(), group)
                .expect("a committed-offsets reader"),
            partitions: topics
                .iter()
                .flat_map(|t| (0..partitions).map(move |p| (t.as_ref().to_string(), p)))
                .collect(),
        }
    }

    /// The committed offset of each partition, in partition order; `None` where the group committed nothing.
    pub fn committed(&self) -> kafka_mirror_clients::Result<Vec<Option<i64>>> {
        let committed = self.reader.committed(&self.partitions)?;
        Ok(self
            .partitions
            .iter()
            .map(|tp| committed.get(tp).copied().flatten())
            .collect())
    }

    /// The committed offsets summed, a partition without a commit counting 0.
    pub fn committed_total(&self) -> kafka_mirror_clients::Result<i64> {
        Ok(self.committed()?.iter().map(|c| c.unwrap_or(0)).sum())
    }

    /// Records on the partitions the group has not committed yet (from the low watermark where it never
    /// committed), summed.
    pub fn lag(&self) -> kafka_mirror_clients::Result<i64> {
        let positions = self.reader.positions(&self.partitions)?;
        Ok(positions.values().map(|p| p.lag()).sum())
    }
}

/// The watermarks of partitions `0..partitions` of one topic (or of several, [`Watermarks::for_topics`]), asked
/// in one ListOffsets request for all of them: cheap enough to poll every few milliseconds (the benchmark's
/// arrival clock does).
pub struct Watermarks {
    consumer: BaseConsumer,
    latest: TopicPartitionList,
}

impl Watermarks {
    /// `cluster` is the client configuration of the cluster holding the topic.
    pub fn new(cluster: &ClientConfig, topic: &str, partitions: i32) -> Watermarks {
        Watermarks::for_topics(cluster, &[topic], partitions)
    }

    /// Partitions `0..partitions` of each of `topics`, in one request; per-partition answers come topic by
    /// topic, in partition order.
    pub fn for_topics(
        cluster: &ClientConfig,
        topics: &[impl AsRef<str>],
        partitions: i32,
    ) -> Watermarks {
        let consumer = cluster
            .create()
            .expect("a watermark reader (a consumer without a group)");
        let mut latest = TopicPartitionList::new();
        for topic in topics {
            for p in 0..partitions {
                latest
                    .add_partition_offset(topic.as_ref(), p, Offset::End)
                    .expect("a partition of the watermark request");
            }
        }
        Watermarks { consumer, latest }
    }

    /// For each partition in order, its high watermark (how many records it holds, counting the deleted), or
    /// the error the cluster answered for it. An error for the whole request when it got no answer.
    pub fn high_of_each(&self) -> KafkaResult<Vec<KafkaResult<i64>>> {
        self.ask(self.latest.clone())
    }

    /// The high watermark of each partition; the first partition's error when any failed.
    pub fn high(&self) -> KafkaResult<Vec<i64>> {
        self.high_of_each()?.into_iter().collect()
    }

    /// The high watermarks summed: the records the topic holds, counting those deleted or trimmed.
    pub fn high_total(&self) -> KafkaResult<i64> {
        Ok(self.high()?.iter().sum())
    }

    /// The low watermark of each partition: the first offset the cluster still holds (above 0 once records
    /// were deleted or trimmed).
    pub fn low(&self) -> KafkaResult<Vec<i64>> {
        let mut earliest = self.latest.clone();
        earliest.set_all_offsets(Offset::Beginning)?;
        self.ask(earliest)?.into_iter().collect()
    }

    /// One ListOffsets request: `Offset::End` asks for the latest offset, `Offset::Beginning` the earliest.
    fn ask(&self, partitions: TopicPartitionList) -> KafkaResult<Vec<KafkaResult<i64>>> {
        let answer = self
            .consumer
            .offsets_for_times(partitions, REQUEST_TIMEOUT)?;
        Ok(answer
            .elements()
            .iter()
            .map(|e| {
                e.error()?;
                match e.offset() {
                    Offset::Offset(o) => Ok(o),
                    // A latest or earliest query is always answered with an offset; anything else is no answer.
                    _ => Err(KafkaError::OffsetFetch(RDKafkaErrorCode::NoOffset)),
                }
            })
            .collect())
    }
}

/// `read`, tried again for up to 30 s while it fails: a topic created a moment ago has no leader in the
/// metadata yet (NOT_LEADER_FOR_PARTITION), a coordinator that is just loading the group's offsets answers
/// with an error. Panics with `what` and the last error after that.
pub fn retried<T, E: std::fmt::Display>(what: &str, mut read: impl FnMut() -> Result<T, E>) -> T {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match read() {
            Ok(value) => return value,
            Err(e) if Instant::now() >= deadline => panic!("{what}: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

/// The mirror's position per partition of one topic, read from the clusters with one client each (so a test
/// can sample it every 50 ms without creating clients), each read retried while the clusters settle.
pub struct Progress {
    committed: GroupOffsets,
    target: Watermarks,
}

impl Progress {
    pub fn new(source: &str, target: &str, group: &str, topic: &str, partitions: i32) -> Progress {
        Progress {
            committed: GroupOffsets::new(&client_config(source, &[]), group, topic, partitions),
            target: Watermarks::new(&client_config(target, &[]), topic, partitions),
        }
    }

    /// The group's committed offset of each source partition (0 where nothing was committed yet).
    pub fn committed(&self) -> Vec<i64> {
        retried("reading the group's committed offsets", || {
            self.committed.committed()
        })
        .iter()
        .map(|c| c.unwrap_or(0))
        .collect()
    }

    /// The high watermark of each target partition: how many records the target holds there.
    pub fn on_target(&self) -> Vec<i64> {
        retried("reading the target's watermarks", || self.target.high())
    }

    pub fn committed_total(&self) -> i64 {
        self.committed().iter().sum()
    }

    pub fn on_target_total(&self) -> i64 {
        self.on_target().iter().sum()
    }
}
