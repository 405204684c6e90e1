//! The Events the operator publishes on a mirror: a refused spec, and what changed in a reconcile (a new
//! generation applied, a migration completed, the source or target lost, records deleted before they were
//! mirrored, the followed consumer groups becoming able to switch to the target or no longer). An Event that cannot be written is logged, never a failed reconcile.

use k8s_openapi::api::core::v1::ObjectReference;
use kafka_mirror_crds::status::KafkaMirrorStatus;
use kube::runtime::events::{Event, EventType, Recorder};

use crate::conditions::{FAILOVER_READY, failover_ready, truncation};
use crate::observed::Observed;
use crate::reason::Reason;

/// What the operator was doing when it published an Event (the Event's `action`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventAction {
    Validate,
    Apply,
    ScaleDown,
    MeasureLag,
    ProbeTarget,
    SyncGroups,
}

impl EventAction {
    pub const fn as_str(self) -> &'static str {
        match self {
            EventAction::Validate => "Validate",
            EventAction::Apply => "Apply",
            EventAction::ScaleDown => "ScaleDown",
            EventAction::MeasureLag => "MeasureLag",
            EventAction::ProbeTarget => "ProbeTarget",
            EventAction::SyncGroups => "SyncGroups",
        }
    }
}

/// Where Events go: the recorder and the mirror they are about.
pub struct EventSink<'a> {
    pub recorder: &'a Recorder,
    pub mirror: ObjectReference,
}

impl EventSink<'_> {
    pub async fn publish(&self, type_: EventType, reason: Reason, action: EventAction, note: &str) {
        let event = Event {
            type_,
            reason: reason.as_str().to_string(),
            // The Events API refuses notes over 1 kB.
            note: Some(truncate(note, 1000)),
            action: action.as_str().to_string(),
            secondary: None,
        };
        if let Err(e) = self.recorder.publish(&event, &self.mirror).await {
            tracing::warn!(error = %e, %reason, "cannot publish an Event");
        }
    }

    /// Events for what changed between `previous` and `status`.
    pub async fn publish_transitions(
        &self,
        previous: &KafkaMirrorStatus,
        status: &KafkaMirrorStatus,
        observed: &Observed,
        workload: &str,
    ) {
        if previous.observed_generation != status.observed_generation {
            let note = format!(
                "generation {}: {} worker(s) of {workload}",
                status.observed_generation.unwrap_or_default(),
                observed.worker_replicas(),
            );
            self.publish(
                EventType::Normal,
                Reason::Applied,
                EventAction::Apply,
                &note,
            )
            .await;
        }
        if migration_completed(status) && !migration_completed(previous) {
            self.publish(
                EventType::Normal,
                Reason::MigrationCompleted,
                EventAction::ScaleDown,
                "every partition was copied up to its high watermark at the start; the workers are scaled to zero",
            )
            .await;
        }
        if let Err(why) = &observed.lag {
            self.publish(
                EventType::Warning,
                Reason::SourceUnreachable,
                EventAction::MeasureLag,
                why,
            )
            .await;
        }
        if let Err(why) = &observed.target {
            self.publish(
                EventType::Warning,
                Reason::TargetUnreachable,
                EventAction::ProbeTarget,
                why,
            )
            .await;
        }
        // Whether the followed groups can switch to the target changed: an Event either way, so it shows in
        // `kubectl get events` beside the source going away.
        if let Some(failover) = &observed.failover {
            let (ready, reason, message) = failover_ready(failover);
            let was_ready = previous
                .conditions
                .iter()
                .find(|c| c.type_ == FAILOVER_READY)
                .map(|c| c.status == "True");
            if was_ready != Some(ready) && (ready || was_ready == Some(true)) {
                let type_ = if ready {
                    EventType::Normal
                } else {
                    EventType::Warning
                };
                self.publish(type_, reason, EventAction::SyncGroups, &message)
                    .await;
            }
        }
        if let Some(why) = truncation(observed) {
            self.publish(
                EventType::Warning,
                Reason::SourceTruncated,
                EventAction::MeasureLag,
                &why,
            )
            .await;
        }
    }
}

fn migration_completed(status: &KafkaMirrorStatus) -> bool {
    status
        .migration
        .as_ref()
        .is_some_and(|m| m.completed_at.is_some())
}

fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max - 3;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &text[..end])
}
