//! The mirror's position as Kafka itself records it: the group's committed offsets against the source's
//! watermarks. Used to decide when a migration is complete and to show progress; true even when every
//! worker is down, because it asks the source cluster, not the workers.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use kafka_mirror_crds::TopicFilter;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::{Offset, TopicPartitionList};

use crate::broker_probe::{ProbeError, ReasonCollector};
use crate::client_config::KafkaClientConfig;
use crate::{Error, Result, topics};

const TIMEOUT: Duration = Duration::from_secs(10);
/// How long a coordinator that is still loading (see [`GroupPositions::committed`]) is waited for.
const COORDINATOR_PATIENCE: Duration = Duration::from_secs(30);

/// Errors that say the group coordinator will answer soon, not that the request is wrong.
fn coordinator_not_ready(error: &KafkaError) -> bool {
    matches!(
        error.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::NotCoordinator
                | RDKafkaErrorCode::CoordinatorLoadInProgress
                | RDKafkaErrorCode::CoordinatorNotAvailable
        )
    )
}

/// A partition of the source: `(topic, partition)`.
pub type SourcePartition = (String, i32);

/// Reads a consumer group's committed offsets without joining the group.
pub struct GroupPositions {
    /// Keeps librdkafka's reasons, so a source that does not answer is explained (see `broker_probe`).
    consumer: BaseConsumer<ReasonCollector>,
}

/// One partition's watermarks and the group's committed offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionPosition {
    pub low: i64,
    pub high: i64,
    pub committed: Option<i64>,
}

impl PartitionPosition {
    /// The first offset the mirror has yet to copy: the committed offset, or the low watermark when nothing was
    /// committed (what `auto.offset.reset=earliest` will read) or retention deleted records below it (they
    /// cannot be copied any more).
    pub fn next_to_mirror(&self) -> i64 {
        self.committed.unwrap_or(self.low).max(self.low)
    }

    /// Records on the source not yet mirrored.
    pub fn lag(&self) -> i64 {
        (self.high - self.next_to_mirror()).max(0)
    }
}

impl GroupPositions {
    /// `source` is the source cluster's connection config (its `hostAliases` included); `group_id` the
    /// mirror's group.
    pub fn new(source: &KafkaClientConfig, group_id: &str) -> Result<Self> {
        let mut config = source.clone();
        config
            .set("group.id", group_id)
            .set("enable.auto.commit", "false");
        let consumer = config
            .create_with_context(ReasonCollector::new(source.host_aliases().clone()))
            .map_err(|source| Error::Kafka {
                what: "creating the source position reader".into(),
                source,
            })?;
        Ok(Self { consumer })
    }

    /// Partition counts of the source topics `filter` matches (what the mirror's workers subscribe to).
    pub fn matching_topics(&self, filter: &TopicFilter) -> Result<BTreeMap<String, i32>> {
        self.consumer.context().take();
        let metadata = self
            .consumer
            .fetch_metadata(None, TIMEOUT)
            .map_err(|error| {
                // Serve the events queued meanwhile (no partition is assigned, so there are no records):
                // this is where the reasons arrive.
                while self.consumer.poll(Duration::ZERO).is_some() {}
                Error::Broker {
                    what: "reading the source cluster's topic list".into(),
                    source: Box::new(ProbeError::new(
                        "spec.source",
                        error,
                        self.consumer.context(),
                    )),
                }
            })?;
        Ok(topics::matching_topics(&metadata, filter))
    }

    /// Committed offsets of the group for `partitions` (`None` where nothing was committed), once the
    /// group's coordinator answers.
    pub fn committed(
        &self,
        partitions: &[SourcePartition],
    ) -> Result<BTreeMap<SourcePartition, Option<i64>>> {
        Ok(self
            .committed_with_metadata(partitions)?
            .into_iter()
            .map(|(p, committed)| (p, committed.map(|(offset, _)| offset)))
            .collect())
    }

    /// [`committed`](Self::committed), with the metadata string each commit carries.
    pub fn committed_with_metadata(
        &self,
        partitions: &[SourcePartition],
    ) -> Result<BTreeMap<SourcePartition, Option<(i64, String)>>> {
        let mut tpl = TopicPartitionList::new();
        for (topic, partition) in partitions {
            tpl.add_partition(topic, *partition);
        }
        let committed = self.committed_offsets(tpl)?;
        Ok(committed
            .elements()
            .iter()
            .map(|e| {
                let offset = match e.offset() {
                    Offset::Offset(o) => Some((o, e.metadata().to_string())),
                    _ => None,
                };
                ((e.topic().to_string(), e.partition()), offset)
            })
            .collect())
    }

    /// Commits `offsets`, each with a metadata string, for the group without joining it, and waits for the
    /// answer. The coordinator accepts such a commit only while the group has no members
    /// (`spec.consumerGroups` never commits for a group with members anyway).
    pub fn commit(&self, offsets: &[(SourcePartition, i64, String)]) -> Result<()> {
        let mut tpl = TopicPartitionList::new();
        for ((topic, partition), offset, metadata) in offsets {
            let mut element = tpl.add_partition(topic, *partition);
            element
                .set_offset(Offset::Offset(*offset))
                .map_err(|source| Error::Kafka {
                    what: format!("committing {topic}[{partition}]"),
                    source,
                })?;
            element.set_metadata(metadata);
        }
        self.consumer
            .commit(&tpl, rdkafka::consumer::CommitMode::Sync)
            .map_err(|source| Error::Kafka {
                what: "committing the group's translated offsets".into(),
                source,
            })
    }

    /// The cluster's brokers and topics.
    fn metadata(&self) -> Result<rdkafka::metadata::Metadata> {
        self.consumer
            .fetch_metadata(None, TIMEOUT)
            .map_err(|source| Error::Kafka {
                what: "reading the cluster's metadata".into(),
                source,
            })
    }

    /// Every partition of `topics` on this cluster (a topic it does not have contributes none).
    pub fn partitions_of(
        &self,
        topics: impl IntoIterator<Item = String>,
    ) -> Result<Vec<SourcePartition>> {
        let counts = topics::partition_counts(&self.metadata()?);
        let topics: std::collections::BTreeSet<String> = topics.into_iter().collect();
        Ok(topics
            .into_iter()
            .flat_map(|topic| {
                let count = counts.get(&topic).copied().unwrap_or(0);
                (0..count).map(move |partition| (topic.clone(), partition))
            })
            .collect())
    }

    /// The names, states and member counts of the cluster's consumer groups.
    pub fn groups(&self) -> Result<Vec<(String, usize)>> {
        // librdkafka's ListGroups first waits for the client's first metadata, in steps of broker state changes
        // that took a second on a fresh client (measured: 1.1 s of a 1.3 s group sync); asking for it directly
        // takes milliseconds.
        self.metadata()?;
        let list = self
            .consumer
            .fetch_group_list(None, TIMEOUT)
            .map_err(|source| Error::Kafka {
                what: "listing the cluster's consumer groups".into(),
                source,
            })?;
        Ok(list
            .groups()
            .iter()
            .map(|g| (g.name().to_string(), g.members().len()))
            .collect())
    }

    /// The group coordinator's answer for `tpl`. A cluster whose `__consumer_offsets` is still being created
    /// or loaded (a fresh cluster, a coordinator that just moved) answers NOT_COORDINATOR or
    /// COORDINATOR_LOAD_IN_PROGRESS for a while: those are asked again until [`COORDINATOR_PATIENCE`] ends.
    fn committed_offsets(&self, tpl: TopicPartitionList) -> Result<TopicPartitionList> {
        let deadline = Instant::now() + COORDINATOR_PATIENCE;
        loop {
            match self.consumer.committed_offsets(tpl.clone(), TIMEOUT) {
                Err(error) if coordinator_not_ready(&error) && Instant::now() < deadline => {
                    tracing::debug!(%error, "the group coordinator is not ready yet; asking again");
                    std::thread::sleep(Duration::from_millis(200));
                }
                result => {
                    return result.map_err(|source| Error::Kafka {
                        what: "reading the group's committed offsets".into(),
                        source,
                    });
                }
            }
        }
    }

    /// Watermarks and committed offset of every partition: one OffsetFetch request to the group's coordinator
    /// and two ListOffsets requests (earliest, latest) to each broker leading some of `partitions`, however many
    /// partitions there are.
    pub fn positions(
        &self,
        partitions: &[SourcePartition],
    ) -> Result<BTreeMap<SourcePartition, PartitionPosition>> {
        if partitions.is_empty() {
            return Ok(BTreeMap::new());
        }
        let committed = self.committed(partitions)?;
        let watermarks = self.watermarks(partitions)?;
        Ok(watermarks
            .into_iter()
            .map(|(key, (low, high))| {
                let committed = committed.get(&key).copied().flatten();
                (
                    key,
                    PartitionPosition {
                        low,
                        high,
                        committed,
                    },
                )
            })
            .collect())
    }

    /// The low and high watermark of every partition, as `fetch_watermarks` reads them one partition at a time
    /// (`rd_kafka_query_watermark_offsets`: a ListOffsets request for the earliest offset and one for the
    /// latest, with the client's `isolation.level`), but for all partitions at once: `offsets_for_times` with
    /// the timestamps -2 (`Offset::Beginning`, the earliest offset) and -1 (`Offset::End`, the latest) sends
    /// one ListOffsets request per leader broker for each.
    pub fn watermarks(
        &self,
        partitions: &[SourcePartition],
    ) -> Result<BTreeMap<SourcePartition, (i64, i64)>> {
        if partitions.is_empty() {
            return Ok(BTreeMap::new());
        }
        let high = self.list_offsets(partitions, Offset::End)?;
        let low = self.list_offsets(partitions, Offset::Beginning)?;
        Ok(high
            .into_iter()
            .map(|(key, high)| {
                // As rd_kafka_query_watermark_offsets: a broker that answers no earliest offset for an empty
                // partition has its low watermark at its high one.
                let low = low.get(&key).copied().filter(|l| *l >= 0).unwrap_or(high);
                (key, (low, high))
            })
            .collect())
    }

    /// The earliest (`Offset::Beginning`) or latest (`Offset::End`) offset of each partition, in one request
    /// per leader broker.
    fn list_offsets(
        &self,
        partitions: &[SourcePartition],
        which: Offset,
    ) -> Result<BTreeMap<SourcePartition, i64>> {
        let name = if which == Offset::End { "high" } else { "low" };
        let mut tpl = TopicPartitionList::with_capacity(partitions.len());
        let mut seen = std::collections::BTreeSet::new();
        for (topic, partition) in partitions {
            if seen.insert((topic.as_str(), *partition)) {
                tpl.add_partition_offset(topic, *partition, which)
                    .map_err(|source| Error::Kafka {
                        what: format!("asking for the {name} watermark of {topic}[{partition}]"),
                        source,
                    })?;
            }
        }
        let answer = self
            .consumer
            .offsets_for_times(tpl, TIMEOUT)
            .map_err(|source| Error::Kafka {
                what: format!("reading the {name} watermarks of {} partitions", seen.len()),
                source,
            })?;
        answer
            .elements()
            .iter()
            .map(|e| {
                let what = || {
                    format!(
                        "reading the {name} watermark of {}[{}]",
                        e.topic(),
                        e.partition()
                    )
                };
                e.error().map_err(|source| Error::Kafka {
                    what: what(),
                    source,
                })?;
                match e.offset() {
                    Offset::Offset(offset) => Ok(((e.topic().to_string(), e.partition()), offset)),
                    // An earliest or latest query is answered with an offset; anything else is no answer.
                    _ => Err(Error::Kafka {
                        what: what(),
                        source: KafkaError::OffsetFetch(RDKafkaErrorCode::NoOffset),
                    }),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::PartitionPosition;

    #[test]
    fn lag_counts_from_the_committed_offset_or_the_low_watermark() {
        assert_eq!(
            PartitionPosition {
                low: 0,
                high: 100,
                committed: Some(40)
            }
            .lag(),
            60
        );
        assert_eq!(
            PartitionPosition {
                low: 10,
                high: 100,
                committed: None
            }
            .lag(),
            90
        );
        // Retention deleted records the mirror never read: they are gone, not lag.
        assert_eq!(
            PartitionPosition {
                low: 50,
                high: 100,
                committed: Some(20)
            }
            .lag(),
            50
        );
        assert_eq!(
            PartitionPosition {
                low: 0,
                high: 100,
                committed: Some(100)
            }
            .lag(),
            0
        );
    }
}
