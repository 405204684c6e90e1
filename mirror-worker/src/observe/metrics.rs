//! Prometheus metrics of one worker process, served as text on `/metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TopicLabels {
    pub topic: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PartitionLabels {
    pub topic: String,
    pub partition: i32,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    /// `delivery_retriable`, `delivery_fatal`, `consume`, `commit`, `topic_creation`, `target_unreachable`, ...
    pub kind: String,
}

/// Every metric the worker exports. Cheap to clone handles out of: each is an `Arc` inside.
pub struct Metrics {
    registry: Registry,
    pub records_mirrored: Family<TopicLabels, Counter>,
    pub bytes_mirrored: Family<TopicLabels, Counter>,
    /// `spec.markOrigin`: source records not mirrored because they came from the target.
    pub records_from_target: Family<TopicLabels, Counter>,
    pub errors: Family<ErrorLabels, Counter>,
    pub partition_lag: Family<PartitionLabels, Gauge>,
    pub commit_latency: Histogram,
    pub in_flight_records: Gauge,
    pub assigned_partitions: Gauge,
    pub rebalances: Counter,
    pub rewinds: Counter,
    pub mirrored_topics: Gauge,
    pub migration_complete: Gauge,
    /// 1 while `/readyz` answers 200; set when `/metrics` is read (see `health::WorkerEndpoints`).
    pub ready: Gauge,
    /// 0 while librdkafka reports every target broker down; set when `/metrics` is read.
    pub target_reachable: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("kafka_mirror");
        let records_mirrored = Family::<TopicLabels, Counter>::default();
        let bytes_mirrored = Family::<TopicLabels, Counter>::default();
        let records_from_target = Family::<TopicLabels, Counter>::default();
        let errors = Family::<ErrorLabels, Counter>::default();
        let partition_lag = Family::<PartitionLabels, Gauge>::default();
        // 1 ms .. ~16 s: a commit is a round trip to the group coordinator.
        let commit_latency = Histogram::new(exponential_buckets(0.001, 2.0, 15));
        let in_flight_records = Gauge::default();
        let assigned_partitions = Gauge::default();
        let rebalances = Counter::default();
        let rewinds = Counter::default();
        let mirrored_topics = Gauge::default();
        let migration_complete = Gauge::default();
        let ready = Gauge::default();
        let target_reachable = Gauge::default();
        registry.register(
            "records_mirrored",
            "Records written to the target and acknowledged by it, by source topic",
            records_mirrored.clone(),
        );
        registry.register(
            "bytes_mirrored",
            "Key and value bytes written to the target and acknowledged by it, by source topic",
            bytes_mirrored.clone(),
        );
        registry.register(
            "records_from_target",
            "Source records not mirrored because their kafka-mirror.origin header names the target cluster \
             (spec.markOrigin), by source topic",
            records_from_target.clone(),
        );
        registry.register(
            "errors",
            "Errors by kind; see the worker's log for each one",
            errors.clone(),
        );
        registry.register(
            "partition_lag",
            "Records on the source partition after the mirror's committed offset (from the consumer's statistics)",
            partition_lag.clone(),
        );
        registry.register(
            "commit_latency_seconds",
            "Time from sending an offset commit to the source cluster's answer",
            commit_latency.clone(),
        );
        registry.register(
            "in_flight_records",
            "Records handed to the producer and not yet acknowledged by the target",
            in_flight_records.clone(),
        );
        registry.register(
            "assigned_partitions",
            "Source partitions assigned to this process",
            assigned_partitions.clone(),
        );
        registry.register(
            "rebalances",
            "Consumer group rebalances seen by this process",
            rebalances.clone(),
        );
        registry.register(
            "rewinds",
            "Partitions re-read from their last acknowledged offset after a failed delivery",
            rewinds.clone(),
        );
        registry.register(
            "mirrored_topics",
            "Source topics matched and subscribed",
            mirrored_topics.clone(),
        );
        registry.register(
            "migration_complete",
            "1 once the group's commits reached every end offset of a mode: migrate run (the worker then idles \
             until stopped when it was given the operator's end offsets); 0 before, and in mode: continuous",
            migration_complete.clone(),
        );
        registry.register(
            "ready",
            "1 while the worker is ready (/readyz answers 200): alive, every stream consuming and the target \
             reachable, or the migration complete",
            ready.clone(),
        );
        registry.register(
            "target_reachable",
            "0 while librdkafka reports every target broker down, 1 again after the next acknowledged delivery",
            target_reachable.clone(),
        );
        Self {
            registry,
            records_mirrored,
            bytes_mirrored,
            records_from_target,
            errors,
            partition_lag,
            commit_latency,
            in_flight_records,
            assigned_partitions,
            rebalances,
            rewinds,
            mirrored_topics,
            migration_complete,
            ready,
            target_reachable,
        }
    }

    /// Counts one error of `kind`.
    pub fn error(&self, kind: &str) {
        self.errors
            .get_or_create(&ErrorLabels {
                kind: kind.to_string(),
            })
            .inc();
    }

    /// The Prometheus text exposition of every metric.
    pub fn encode(&self) -> String {
        kafka_mirror_runtime::http::encode_registry(&self.registry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_mirror_runtime::http::{assert_series_list, exported_series};

    /// tests/monitoring/metrics/mirror-worker.txt lists every series the worker exports; the chart's alerts and
    /// dashboard are checked against it (tests/deploy/test_monitoring.py), so renaming a metric fails here until
    /// the list is regenerated (UPDATE_GOLDEN=1), and there until every query uses the new name.
    #[test]
    fn the_exported_series_are_the_list_the_alerts_and_dashboard_are_checked_against() {
        // A family shows its `# TYPE` line once it has a series: one of each (a new family goes here too).
        let metrics = Metrics::new();
        let topic = TopicLabels { topic: "t".into() };
        metrics.records_mirrored.get_or_create(&topic).inc();
        metrics.bytes_mirrored.get_or_create(&topic).inc();
        metrics.error("consume");
        metrics
            .partition_lag
            .get_or_create(&PartitionLabels {
                topic: "t".into(),
                partition: 0,
            })
            .set(1);
        let text = metrics.encode();
        let names = exported_series(&text);
        assert!(
            names.contains(&"kafka_mirror_errors_total".to_string()),
            "{text}"
        );
        assert_series_list(
            &names,
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../tests/monitoring/metrics/mirror-worker.txt"
            ),
            "cargo test -p mirror-worker --lib exported_series",
        );
    }
}
