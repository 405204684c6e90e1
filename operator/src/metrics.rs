//! The operator's Prometheus metrics and health, served on `/metrics`, `/healthz` and `/readyz` by the same
//! HTTP endpoint code as the worker's.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use kafka_mirror_crds::status::ConsumerGroupStatus;
use kafka_mirror_runtime::http::Endpoints;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::Error;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FailureLabels {
    /// [`Error::metric_label`]: `kube_api`, `kafka_task`, ...
    pub reason: String,
}

/// One followed consumer group of one mirror (`spec.consumerGroups`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct GroupLabels {
    pub namespace: String,
    pub mirror: String,
    pub group: String,
}

pub struct Metrics {
    registry: Registry,
    pub reconciliations: Counter,
    pub failures: Family<FailureLabels, Counter>,
    pub reconcile_duration: Histogram,
    /// 1 while this replica holds the leader Lease (or runs without leader election).
    pub leader: Gauge,
    /// False until the first list of KafkaMirrors succeeded; true while the controller runs.
    running: AtomicBool,
    /// `status.failover.groups[].missed` and `.reRead`, as of each mirror's last sync.
    pub group_missed: Family<GroupLabels, Gauge>,
    pub group_re_read: Family<GroupLabels, Gauge>,
    /// The groups each mirror (namespace, name) last reported, so a group no longer followed loses its series.
    reported_groups: Mutex<HashMap<(String, String), Vec<String>>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("kafka_mirror_operator");
        let reconciliations = Counter::default();
        let failures = Family::<FailureLabels, Counter>::default();
        // 5 ms .. ~80 s: a reconcile is a few API requests plus one lag measurement against the source.
        let reconcile_duration = Histogram::new(exponential_buckets(0.005, 2.0, 15));
        let leader = Gauge::default();
        let group_missed = Family::<GroupLabels, Gauge>::default();
        let group_re_read = Family::<GroupLabels, Gauge>::default();
        registry.register(
            "failover_missed_records",
            "Records a consumer of the followed group that switched to the target now would miss (not read yet and not on the target, or before its offset there), as of the mirror's last group sync",
            group_missed.clone(),
        );
        registry.register(
            "failover_re_read_records",
            "Records a consumer of the followed group that switched to the target now would read a second time, at most, as of the mirror's last group sync",
            group_re_read.clone(),
        );
        registry.register(
            "reconciliations",
            "KafkaMirror reconciles started",
            reconciliations.clone(),
        );
        registry.register(
            "reconcile_failures",
            "Reconciles that failed and will be retried, by reason (a spec that cannot work is not a failure: see the Ready condition)",
            failures.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "Time one reconcile took, including the lag measurement",
            reconcile_duration.clone(),
        );
        registry.register(
            "leader",
            "1 while this replica holds the leader Lease",
            leader.clone(),
        );
        Self {
            registry,
            reconciliations,
            failures,
            reconcile_duration,
            leader,
            running: AtomicBool::new(false),
            group_missed,
            group_re_read,
            reported_groups: Mutex::new(HashMap::new()),
        }
    }

    /// Counts a reconcile and times it until the returned guard is dropped, whichever way it ends.
    pub fn reconcile_started(&self) -> ReconcileTimer {
        self.reconciliations.inc();
        ReconcileTimer {
            start: Instant::now(),
            histogram: self.reconcile_duration.clone(),
        }
    }

    pub fn failed(&self, error: &Error) {
        self.failures
            .get_or_create(&FailureLabels {
                reason: error.metric_label().to_string(),
            })
            .inc();
    }

    /// A mirror's groups after a sync: their series set, and the series of groups it no longer reports removed.
    pub fn groups_synced(&self, namespace: &str, mirror: &str, groups: &[ConsumerGroupStatus]) {
        let labels = |group: &str| GroupLabels {
            namespace: namespace.to_string(),
            mirror: mirror.to_string(),
            group: group.to_string(),
        };
        let names: Vec<String> = groups.iter().map(|g| g.name.clone()).collect();
        let mut reported = self
            .reported_groups
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let before = reported
            .insert((namespace.to_string(), mirror.to_string()), names.clone())
            .unwrap_or_default();
        for gone in before.iter().filter(|g| !names.contains(g)) {
            self.group_missed.remove(&labels(gone));
            self.group_re_read.remove(&labels(gone));
        }
        for group in groups {
            self.group_missed
                .get_or_create(&labels(&group.name))
                .set(group.missed);
            self.group_re_read
                .get_or_create(&labels(&group.name))
                .set(group.re_read);
        }
    }

    /// A mirror was deleted, or no longer follows groups: its groups' series go.
    pub fn mirror_forgotten(&self, namespace: &str, mirror: &str) {
        self.groups_synced(namespace, mirror, &[]);
        self.reported_groups
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&(namespace.to_string(), mirror.to_string()));
    }

    pub fn set_running(&self, running: bool) {
        self.running.store(running, Ordering::Release);
    }

    pub fn encode(&self) -> String {
        kafka_mirror_runtime::http::encode_registry(&self.registry)
    }
}

/// Observes the reconcile's duration when dropped.
pub struct ReconcileTimer {
    start: Instant,
    histogram: Histogram,
}

impl Drop for ReconcileTimer {
    fn drop(&mut self) {
        self.histogram.observe(self.start.elapsed().as_secs_f64());
    }
}

impl Endpoints for Metrics {
    fn metrics(&self) -> String {
        self.encode()
    }

    /// Alive while the process runs: a lost API server connection is retried inside, not fixed by a restart.
    fn live(&self) -> Result<(), String> {
        Ok(())
    }

    /// Ready once the KafkaMirror API answered (a standby replica waiting for the Lease is ready too: it can
    /// take over at any moment).
    fn ready(&self) -> Result<(), String> {
        if self.running.load(Ordering::Acquire) {
            Ok(())
        } else {
            Err("the KafkaMirror API has not answered yet".to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_mirror_runtime::http::{assert_series_list, exported_series};

    #[test]
    fn a_reconcile_is_counted_and_timed_when_its_guard_drops() {
        let metrics = Metrics::new();
        {
            let _timer = metrics.reconcile_started();
        }
        metrics.failed(&Error::Validate(crate::validate::Error::MissingObjectKey(
            "metadata.uid",
        )));
        let text = metrics.encode();
        assert!(
            text.contains("kafka_mirror_operator_reconciliations_total 1"),
            "{text}"
        );
        assert!(
            text.contains("kafka_mirror_operator_reconcile_duration_seconds_count 1"),
            "{text}"
        );
        assert!(
            text.contains(
                "kafka_mirror_operator_reconcile_failures_total{reason=\"missing_object_key\"} 1"
            ),
            "{text}"
        );
    }

    /// tests/monitoring/metrics/operator.txt lists every series the operator exports, from the `# TYPE` lines;
    /// the chart's alerts and dashboard are checked against it (tests/deploy/test_monitoring.py).
    #[test]
    fn the_exported_series_are_the_list_the_alerts_and_dashboard_are_checked_against() {
        // A family shows its `# TYPE` line once it has a series: one of each (a new family goes here too).
        let metrics = Metrics::new();
        metrics.failed(&Error::Validate(crate::validate::Error::MissingObjectKey(
            "metadata.uid",
        )));
        metrics.groups_synced(
            "ns",
            "dr",
            &[ConsumerGroupStatus {
                name: "billing".into(),
                missed: 3,
                ..ConsumerGroupStatus::default()
            }],
        );
        let text = metrics.encode();
        assert!(
            text.contains(
                "kafka_mirror_operator_failover_missed_records{namespace=\"ns\",mirror=\"dr\",group=\"billing\"} 3"
            ),
            "{text}"
        );
        let names = exported_series(&text);
        assert!(names.contains(&"kafka_mirror_operator_reconcile_failures_total".to_string()));
        // A group no longer reported loses its series; so do a deleted mirror's groups.
        metrics.groups_synced("ns", "dr", &[]);
        assert!(!metrics.encode().contains("group=\"billing\""));
        metrics.groups_synced(
            "ns",
            "gone",
            &[ConsumerGroupStatus {
                name: "audit".into(),
                ..ConsumerGroupStatus::default()
            }],
        );
        assert!(metrics.encode().contains("group=\"audit\""));
        metrics.mirror_forgotten("ns", "gone");
        assert!(!metrics.encode().contains("group=\"audit\""));
        assert_series_list(
            &names,
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../tests/monitoring/metrics/operator.txt"
            ),
            "cargo test -p kafka-mirror-operator --lib exported_series",
        );
    }
}
