//! What one reconcile found out about one mirror, built once per reconcile: after the apply, or when the spec
//! was refused. The conditions and the status are pure functions of it.

use k8s_openapi::api::apps::v1::Deployment;
use kafka_mirror_crds::status::{FailoverStatus, KafkaMirrorStatus};
use kafka_mirror_crds::{FieldError, KafkaMirror};

use crate::decide::{self, Decision};
use crate::migration::Progress;
use crate::reason::Reason;

/// Why a spec the schema accepted cannot work: nothing is applied until it is fixed.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    /// [`Reason::InvalidSpec`] or [`Reason::SecretMissing`].
    pub reason: Reason,
    /// Every field at fault, `field: what is wrong`, joined by `; `.
    pub message: String,
}

impl Problem {
    /// Every field at fault, `field: what is wrong`, joined by `; `.
    pub fn from_field_errors(reason: Reason, errors: &[FieldError]) -> Self {
        Problem {
            reason,
            message: errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; "),
        }
    }
}

/// What a reconcile found out about one mirror.
#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    pub generation: Option<i64>,
    pub problem: Option<Problem>,
    pub paused: bool,
    /// `spec.replicas`.
    pub desired_replicas: i32,
    pub ready_replicas: i32,
    /// The worker Deployment's message when it exceeded its progress deadline (pods that never get ready:
    /// image pull errors, crash loops, unschedulable). New pods that are still starting are not a failure.
    pub rollout_stalled: Option<String>,
    /// `Ok(total lag)` when the source answered, `Err(why)` when lag could not be measured.
    pub lag: Result<i64, String>,
    /// `Err(why)` when the target cluster did not answer a metadata request.
    pub target: Result<(), String>,
    /// Partitions that lost records to retention before they were mirrored (see `LagReport::truncated`).
    pub truncated: Vec<String>,
    pub topic_count: usize,
    /// Only with `mode: migrate` and the end offsets recorded.
    pub migration: Option<Progress>,
    /// Only with `spec.consumerGroups`: this reconcile's sync of the followed groups, or why there was none.
    pub failover: Option<Result<FailoverStatus, String>>,
}

impl Observed {
    /// After the desired objects were applied: what this reconcile measured and decided, and the worker
    /// Deployment as the API server stored it.
    pub fn applied(resource: &KafkaMirror, decision: &Decision, deployment: &Deployment) -> Self {
        let lag = decision.lag.as_ref();
        Self {
            generation: resource.metadata.generation,
            problem: None,
            paused: resource.spec.paused,
            desired_replicas: resource.spec.replicas,
            ready_replicas: deployment
                .status
                .as_ref()
                .and_then(|s| s.ready_replicas)
                .unwrap_or(0),
            rollout_stalled: rollout_stalled(deployment),
            lag: lag.map(|l| l.total).map_err(Clone::clone),
            target: decision.target.clone(),
            truncated: lag.map(|l| l.truncated.clone()).unwrap_or_default(),
            topic_count: lag.map_or(0, |l| l.topics.len()),
            migration: decision.migration.clone(),
            failover: decision.failover.clone(),
        }
    }

    /// A spec that cannot work: nothing was applied or measured; the ready replicas are the last ones seen.
    pub fn refused(resource: &KafkaMirror, previous: &KafkaMirrorStatus, problem: Problem) -> Self {
        Self {
            generation: resource.metadata.generation,
            problem: Some(problem),
            paused: resource.spec.paused,
            desired_replicas: resource.spec.replicas,
            ready_replicas: previous.ready_replicas.unwrap_or(0),
            rollout_stalled: None,
            lag: Err("not measured".into()),
            target: Ok(()),
            truncated: Vec::new(),
            topic_count: 0,
            migration: None,
            failover: None,
        }
    }

    /// Workers that should run (see [`decide::worker_replicas`]).
    pub fn worker_replicas(&self) -> i32 {
        decide::worker_replicas(self.desired_replicas, self.paused, self.migration.as_ref())
    }

    pub(crate) fn migration_completed(&self) -> bool {
        self.migration.as_ref().is_some_and(|m| m.completed)
    }
}

/// The Deployment's own verdict that its rollout is stuck: condition `Progressing=False`, reason
/// `ProgressDeadlineExceeded` (after `progressDeadlineSeconds`, 10 minutes by default).
fn rollout_stalled(deployment: &Deployment) -> Option<String> {
    deployment
        .status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| {
            c.type_ == "Progressing"
                && c.status == "False"
                && c.reason.as_deref() == Some("ProgressDeadlineExceeded")
        })
        .map(|c| {
            c.message
                .clone()
                .unwrap_or_else(|| "ProgressDeadlineExceeded".into())
        })
}
