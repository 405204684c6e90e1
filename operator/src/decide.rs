//! The pipeline's decision, pure: from what was observed, how many workers run, which migration record to
//! keep, how far the migration is, and the lag and reachability messages the status and Events show.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kafka_mirror_crds::Mode;
use kafka_mirror_crds::status::{FailoverStatus, KafkaMirrorStatus};

use crate::desired::WorkerState;
use crate::kafka_view::KafkaView;
use crate::lag::{LagReport, summarize};
use crate::migration::{MigrationRecord, Progress};
use crate::observe::Observation;
use crate::validate::ValidatedMirror;

/// What this reconcile decided, and the measurement it decided on.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub workers: WorkerState,
    /// The lag report, or why the source could not be asked (the text the status and Events show).
    pub lag: Result<LagReport, String>,
    /// Why the target did not answer, if it did not.
    pub target: Result<(), String>,
    /// Only with `mode: migrate`, once the end offsets are recorded (or the status called it complete).
    pub migration: Option<Progress>,
    /// Only with `spec.consumerGroups`: the followed groups as this reconcile synced them, or why it could not.
    pub failover: Option<Result<FailoverStatus, String>>,
}

/// The one rule for how many workers run: `spec.replicas`, but none while paused or after a completed
/// migration.
pub fn worker_replicas(replicas: i32, paused: bool, migration: Option<&Progress>) -> i32 {
    if paused || migration.is_some_and(|m| m.completed) {
        0
    } else {
        replicas
    }
}

pub fn decide(mirror: &ValidatedMirror, observation: Observation, now: &Time) -> Decision {
    let spec = mirror.spec();
    let view = &observation.kafka;
    let (record, migration) = if spec.mode == Mode::Migrate {
        migration(
            observation.migration_record,
            view,
            &mirror.previous_status(),
            now,
        )
    } else {
        (None, None)
    };
    Decision {
        workers: WorkerState {
            replicas: worker_replicas(spec.replicas, spec.paused, migration.as_ref()),
            migration_record: record,
        },
        lag: view
            .positions
            .as_ref()
            .map(|positions| {
                summarize(
                    &spec.topics,
                    positions,
                    &view.unmirrored_since,
                    now.0.as_millisecond(),
                )
            })
            .map_err(ToString::to_string),
        target: view.target.as_ref().map(drop).map_err(ToString::to_string),
        migration,
        failover: view.groups.as_ref().map(|groups| {
            groups
                .as_ref()
                .map_err(Clone::clone)
                .map(|groups| FailoverStatus {
                    synced_at: Some(now.clone()),
                    missed: groups.iter().map(|g| g.missed).sum(),
                    re_read: groups.iter().map(|g| g.re_read).sum(),
                    groups: groups.clone(),
                })
        }),
    }
}

/// The record to keep (recorded now if missing and the source answered) and the progress towards it. A
/// migration the status already calls complete stays complete while the source cannot be asked.
fn migration(
    recorded: Option<MigrationRecord>,
    view: &KafkaView,
    previous: &KafkaMirrorStatus,
    now: &Time,
) -> (Option<MigrationRecord>, Option<Progress>) {
    let record = match (recorded, &view.positions) {
        (Some(record), _) => Some(record),
        (None, Ok(positions)) => Some(MigrationRecord::at_start(positions, now.clone())),
        (None, Err(_)) => None,
    };
    let progress = match (&record, &view.positions) {
        (Some(record), Ok(positions)) => Some(record.progress(positions)),
        _ => previous
            .migration
            .as_ref()
            .filter(|m| m.completed_at.is_some())
            .map(|m| Progress {
                started_at: m.started_at.clone().unwrap_or_else(|| now.clone()),
                remaining: 0,
                completed: true,
            }),
    };
    (record, progress)
}
