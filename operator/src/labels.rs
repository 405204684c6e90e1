//! Names and labels of the objects the operator creates for one mirror. The recommended
//! `app.kubernetes.io/*` labels let `kubectl get all -l app.kubernetes.io/instance=<mirror>` find them.

use std::collections::BTreeMap;

/// Names of the objects derived from a mirror called `mirror` (at most 48 characters, so these stay DNS labels).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerNames {
    /// Deployment, ServiceAccount and PodDisruptionBudget.
    pub workload: String,
    pub config_map: String,
    pub metrics_service: String,
    /// `mode: migrate` only: the end offsets recorded at the start.
    pub migration_record: String,
}

impl WorkerNames {
    pub fn new(mirror: &str) -> Self {
        Self {
            workload: format!("{mirror}-worker"),
            config_map: format!("{mirror}-worker-config"),
            metrics_service: format!("{mirror}-worker-metrics"),
            migration_record: format!("{mirror}-migration"),
        }
    }
}

pub const NAME_LABEL: &str = "app.kubernetes.io/name";
pub const INSTANCE_LABEL: &str = "app.kubernetes.io/instance";
pub const COMPONENT_LABEL: &str = "app.kubernetes.io/component";
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
pub const PART_OF_LABEL: &str = "app.kubernetes.io/part-of";

/// The field manager and `managed-by` value of everything the operator applies.
pub const MANAGER: &str = "kafka-mirror-operator";

/// Labels that select a mirror's worker pods. Never change them: a Deployment's selector is immutable.
pub fn selector(mirror: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (NAME_LABEL.to_string(), "kafka-mirror-worker".to_string()),
        (INSTANCE_LABEL.to_string(), mirror.to_string()),
    ])
}

/// Labels on every object of a mirror: the selector plus ownership and grouping.
pub fn object_labels(mirror: &str) -> BTreeMap<String, String> {
    let mut labels = selector(mirror);
    labels.insert(COMPONENT_LABEL.to_string(), "worker".to_string());
    labels.insert(MANAGED_BY_LABEL.to_string(), MANAGER.to_string());
    labels.insert(PART_OF_LABEL.to_string(), "kafka-mirror".to_string());
    labels
}

/// The selector as `kubectl`/the scale subresource write it: `k=v,k=v`.
pub fn selector_string(mirror: &str) -> String {
    selector(mirror)
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}
