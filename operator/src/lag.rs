//! The mirror's lag as the status shows it, measured from Kafka itself: the source's high watermarks minus
//! the mirror group's committed offsets. True while every worker is down, because no worker is asked.
//! One entry per topic, never per partition, so the status stays small for thousands of partitions.

use std::collections::BTreeMap;

use kafka_mirror_clients::client_config::KafkaClientConfig;
use kafka_mirror_clients::positions::{GroupPositions, PartitionPosition, SourcePartition};
use kafka_mirror_crds::TopicFilter;
use kafka_mirror_crds::status::TopicStatus;
use kafka_mirror_crds::topics::TopicSelection;

/// Lag per mirrored topic and over all partitions.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LagReport {
    pub topics: Vec<TopicStatus>,
    pub total: i64,
    pub max_partition: i64,
    /// Age in seconds of the oldest record not yet mirrored (see [`summarize`]).
    pub seconds: Option<i64>,
    /// Partitions whose committed offset lies below the first offset the source still holds: records were
    /// deleted (retention) before they were mirrored. The workers stop there rather than skip them.
    pub truncated: Vec<String>,
}

/// Watermarks and committed offset of every mirrored source partition.
pub type Positions = BTreeMap<SourcePartition, PartitionPosition>;

/// Timestamps (milliseconds) of the first record not yet mirrored, for partitions behind.
pub type UnmirroredSince = BTreeMap<SourcePartition, i64>;

/// Aggregates partition positions into the per-topic status entries. `unmirrored_since` dates the first record
/// each partition behind has yet to mirror, `now_ms` is the time of the measurement: a topic's age is its oldest
/// such record's, 0 when nothing is behind, unknown when a partition behind has no date.
pub fn summarize(
    selection: &TopicSelection,
    positions: &Positions,
    unmirrored_since: &UnmirroredSince,
    now_ms: i64,
) -> LagReport {
    #[derive(Default)]
    struct Topic {
        partitions: i32,
        lag: i64,
        /// The oldest date among the partitions behind; `None` inside once one behind has no date.
        oldest: Option<Option<i64>>,
    }
    let mut by_topic: BTreeMap<&str, Topic> = BTreeMap::new();
    let mut report = LagReport::default();
    for (key, position) in positions {
        let (topic, partition) = key;
        if let Some(committed) = position.committed
            && committed < position.low
        {
            report.truncated.push(format!(
                "{topic}[{partition}] committed {committed}, first offset on the source {} ({} records deleted before they were mirrored)",
                position.low,
                position.low - committed
            ));
        }
        let lag = position.lag();
        let entry = by_topic.entry(topic.as_str()).or_default();
        entry.partitions += 1;
        entry.lag += lag;
        if lag > 0 {
            let since = unmirrored_since.get(key).copied();
            entry.oldest = Some(match (entry.oldest, since) {
                (Some(Some(a)), Some(b)) => Some(a.min(b)),
                (None, since) => since,
                _ => None,
            });
        }
        report.total += lag;
        report.max_partition = report.max_partition.max(lag);
    }
    let age = |oldest: Option<Option<i64>>| match oldest {
        None => Some(0),
        Some(Some(since)) => Some(((now_ms - since) / 1000).max(0)),
        Some(None) => None,
    };
    report.topics = by_topic
        .into_iter()
        .map(|(topic, t)| TopicStatus {
            name: topic.to_string(),
            target_name: selection.target_name(topic),
            partitions: t.partitions,
            lag: t.lag,
            lag_seconds: age(t.oldest),
        })
        .collect();
    report.seconds = report
        .topics
        .iter()
        .map(|t| t.lag_seconds)
        .try_fold(0, |max, age| age.map(|a| a.max(max)));
    report
}

/// Reads the positions of the group `group_id` on every source topic `filter` matches: a metadata request,
/// the group's committed offsets and the watermarks of all partitions, each one request per broker (see
/// [`GroupPositions::positions`]). Blocking (each request bounded by a timeout): run it off the async runtime.
///
/// The client is made afresh on each read, on purpose: kept between reconciles (one per configuration and
/// group), a read took 10 ms instead of 60-70 ms, but the operator with 100 mirrors held 181 MiB instead of 76
/// MiB (100 idle librdkafka clients with their threads and connections) for no less CPU (2.1 against 1.9 s per
/// minute; the benchmark's "operator with 1, 10 and 100 mirrors", back to back, 2026-12-02).
pub fn read_positions(
    source: &KafkaClientConfig,
    group_id: &str,
    filter: &TopicFilter,
) -> kafka_mirror_clients::Result<Positions> {
    let started = std::time::Instant::now();
    let reader = GroupPositions::new(source, group_id)?;
    let partitions: Vec<SourcePartition> = reader
        .matching_topics(filter)?
        .into_iter()
        .flat_map(|(topic, count)| (0..count).map(move |p| (topic.clone(), p)))
        .collect();
    let positions = reader.positions(&partitions)?;
    // The benchmark's operator section reads these lines for the Kafka part of a reconcile.
    tracing::debug!(
        group_id,
        partitions = partitions.len(),
        elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
        "read the group's positions"
    );
    Ok(positions)
}

/// The lag of the group `group_id` over every source topic `filter` (the validated `selection`) matches.
/// Blocking, like [`read_positions`].
pub fn measure(
    source: &KafkaClientConfig,
    group_id: &str,
    filter: &TopicFilter,
    selection: &TopicSelection,
) -> kafka_mirror_clients::Result<LagReport> {
    Ok(summarize(
        selection,
        &read_positions(source, group_id, filter)?,
        &UnmirroredSince::new(),
        0,
    ))
}

#[cfg(test)]
mod tests {
    use kafka_mirror_clients::positions::PartitionPosition;

    use super::*;

    fn selection() -> TopicSelection {
        serde_json::from_value(serde_json::json!({"include": ["orders", "audit"]})).unwrap()
    }

    fn position(high: i64, committed: i64) -> PartitionPosition {
        PartitionPosition {
            low: 0,
            high,
            committed: Some(committed),
        }
    }

    #[test]
    fn a_topics_age_is_its_oldest_record_not_yet_mirrored() {
        let positions: Positions = [
            (("orders".to_string(), 0), position(100, 90)),
            (("orders".to_string(), 1), position(100, 95)),
            (("audit".to_string(), 0), position(50, 50)),
        ]
        .into();
        let since: UnmirroredSince = [
            (("orders".to_string(), 0), 40_000),
            (("orders".to_string(), 1), 55_000),
        ]
        .into();
        let report = summarize(&selection(), &positions, &since, 100_000);
        let age = |topic: &str| {
            report
                .topics
                .iter()
                .find(|t| t.name == topic)
                .unwrap()
                .lag_seconds
        };
        assert_eq!(
            age("orders"),
            Some(60),
            "the older of the two partitions behind"
        );
        assert_eq!(age("audit"), Some(0), "nothing behind");
        assert_eq!(report.seconds, Some(60));
        assert_eq!(report.total, 15);

        // A partition behind whose first record could not be read leaves the age unknown, not 0.
        let undated = summarize(&selection(), &positions, &UnmirroredSince::new(), 100_000);
        assert_eq!(undated.seconds, None);
        assert_eq!(
            undated
                .topics
                .iter()
                .find(|t| t.name == "audit")
                .unwrap()
                .lag_seconds,
            Some(0)
        );
    }
}
