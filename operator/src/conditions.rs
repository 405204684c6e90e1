//! The status conditions, following the Kubernetes API conventions: `Ready`, `Progressing` and `Degraded`,
//! each with a CamelCase reason and a message a person can act on; the transition time changes only when the
//! condition's status does. Pure: computed from what the reconcile observed.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use kafka_mirror_crds::status::{FailoverStatus, GroupSyncState};

use crate::observed::Observed;
use crate::reason::Reason;

pub const READY: &str = "Ready";
pub const PROGRESSING: &str = "Progressing";
pub const DEGRADED: &str = "Degraded";
/// Only with `spec.consumerGroups`: whether the followed groups' consumers can switch to the target now.
pub const FAILOVER_READY: &str = "FailoverReady";

/// The three conditions for `observed` (four with `spec.consumerGroups`), keeping transition times of
/// `previous` where the status holds.
pub fn conditions(previous: &[Condition], observed: &Observed, now: &Time) -> Vec<Condition> {
    [
        (READY, ready(observed)),
        (PROGRESSING, progressing(observed)),
        (DEGRADED, degraded(observed)),
    ]
    .into_iter()
    .chain(
        observed
            .failover
            .as_ref()
            .map(|failover| (FAILOVER_READY, failover_ready(failover))),
    )
    .map(|(type_, (status, reason, message))| {
        let status = if status { "True" } else { "False" }.to_string();
        let last_transition_time = previous
            .iter()
            .find(|c| c.type_ == type_ && c.status == status)
            .map_or_else(|| now.clone(), |c| c.last_transition_time.clone());
        Condition {
            type_: type_.to_string(),
            status,
            reason: reason.as_str().to_string(),
            message,
            observed_generation: observed.generation,
            last_transition_time,
        }
    })
    .collect()
}

fn ready(o: &Observed) -> (bool, Reason, String) {
    if let Some(problem) = &o.problem {
        return (false, problem.reason, problem.message.clone());
    }
    if o.paused {
        return (false, Reason::Paused, "spec.paused is true: the workers are scaled to zero and the consumer group keeps its committed offsets".into());
    }
    if o.migration_completed() {
        return (
            true,
            Reason::Completed,
            "migration complete: every partition was copied up to its high watermark at the start; the workers are scaled to zero".into(),
        );
    }
    if o.desired_replicas == 0 {
        return (
            false,
            Reason::NoReplicas,
            "spec.replicas is 0: nothing is mirrored".into(),
        );
    }
    // Before the replica count: the workers stop on the gap, so this is why they are not ready.
    if let Some(why) = truncation(o) {
        return (false, Reason::SourceTruncated, why);
    }
    if o.ready_replicas < o.desired_replicas {
        let workers = format!(
            "{} of {} workers ready",
            o.ready_replicas, o.desired_replicas
        );
        // A cluster the operator cannot reach either is the likely reason the workers are not ready (they are
        // ready only while they consume and reach the target): say that first, as Degraded does.
        return match (&o.lag, &o.target) {
            (Err(why), _) => (
                false,
                Reason::SourceUnreachable,
                format!("{why} ({workers})"),
            ),
            (_, Err(why)) => (
                false,
                Reason::TargetUnreachable,
                format!("{why} ({workers})"),
            ),
            _ => (false, Reason::WorkersNotReady, workers),
        };
    }
    if let Err(why) = &o.target {
        return (false, Reason::TargetUnreachable, why.clone());
    }
    match &o.lag {
        Err(why) => (false, Reason::LagUnknown, why.clone()),
        Ok(lag) => (
            true,
            Reason::Mirroring,
            format!(
                "{} workers mirroring {} topics, {lag} records behind",
                o.ready_replicas, o.topic_count
            ),
        ),
    }
}

fn progressing(o: &Observed) -> (bool, Reason, String) {
    if o.problem.is_some() || o.paused {
        return (
            false,
            Reason::NotRunning,
            "no workers are meant to run".into(),
        );
    }
    if o.migration_completed() {
        return (false, Reason::Completed, "the migration is complete".into());
    }
    if o.ready_replicas != o.desired_replicas {
        return (
            true,
            Reason::Scaling,
            format!(
                "{} of {} workers ready",
                o.ready_replicas, o.desired_replicas
            ),
        );
    }
    if let Some(migration) = &o.migration {
        return (
            true,
            Reason::Migrating,
            format!(
                "{} records left to copy up to the end offsets recorded at the start",
                migration.remaining
            ),
        );
    }
    match o.lag {
        Ok(lag) if lag > 0 => (true, Reason::CatchingUp, format!("{lag} records to mirror")),
        _ => (false, Reason::Steady, "every worker is ready".into()),
    }
}

fn degraded(o: &Observed) -> (bool, Reason, String) {
    if let Some(problem) = &o.problem {
        return (true, problem.reason, problem.message.clone());
    }
    if let Err(why) = &o.lag {
        return (true, Reason::SourceUnreachable, why.clone());
    }
    if let Err(why) = &o.target {
        return (true, Reason::TargetUnreachable, why.clone());
    }
    if let Some(why) = truncation(o) {
        return (true, Reason::SourceTruncated, why);
    }
    if let Some(stalled) = &o.rollout_stalled
        && o.worker_replicas() > 0
        && o.ready_replicas == 0
    {
        return (
            true,
            Reason::NoWorkerReady,
            format!(
                "0 of {} workers ready and the rollout stopped progressing: {stalled}",
                o.desired_replicas
            ),
        );
    }
    (false, Reason::AsExpected, "nothing is failing".into())
}

/// Whether every followed group's consumers could switch to the target now without missing a record.
pub(crate) fn failover_ready(failover: &Result<FailoverStatus, String>) -> (bool, Reason, String) {
    let failover = match failover {
        Err(why) => {
            return (
                false,
                Reason::GroupSyncFailed,
                format!(
                    "{why}. The groups' offsets on the target are those of the last sync (status.failover.syncedAt); \
                     records their consumers read on the source since then are read again after switching"
                ),
            );
        }
        Ok(failover) => failover,
    };
    let switching: Vec<_> = failover
        .groups
        .iter()
        .filter(|g| {
            !matches!(
                g.state,
                GroupSyncState::ActiveOnTarget | GroupSyncState::AheadOnTarget
            )
        })
        .collect();
    if switching.is_empty() {
        return (
            false,
            Reason::NoGroupToFollow,
            if failover.groups.is_empty() {
                "no consumer group of the source matches spec.consumerGroups and has committed offsets on the \
                 mirrored topics"
                    .into()
            } else {
                "every followed group already consumes on the target (members there, or offsets there past the \
                 source's: see status.failover.groups)"
                    .into()
            },
        );
    }
    let named = |groups: Vec<String>| groups.into_iter().take(3).collect::<Vec<_>>().join("; ");
    let missing: Vec<String> = switching
        .iter()
        .filter(|g| g.missed > 0)
        .map(|g| format!("{} would miss {}", g.name, g.missed))
        .collect();
    if !missing.is_empty() {
        return (
            false,
            Reason::RecordsNotOnTarget,
            format!(
                "{} groups would miss records not on the target yet (or before their offset there): {}",
                missing.len(),
                named(missing)
            ),
        );
    }
    let untranslated: Vec<String> = switching
        .iter()
        .filter(|g| g.state == GroupSyncState::NotTranslated)
        .map(|g| format!("{}: {}", g.name, g.message.as_deref().unwrap_or_default()))
        .collect();
    if !untranslated.is_empty() {
        return (
            false,
            Reason::GroupsNotTranslated,
            format!(
                "{} groups have partitions without an offset on the target: {}",
                untranslated.len(),
                named(untranslated)
            ),
        );
    }
    (
        true,
        Reason::GroupsSynced,
        format!(
            "{} groups can switch to the target: 0 records missed, at most {} read again",
            switching.len(),
            switching.iter().map(|g| g.re_read).sum::<i64>()
        ),
    )
}

/// What the user must decide when the source deleted records the mirror had not copied.
pub fn truncation(o: &Observed) -> Option<String> {
    if o.truncated.is_empty() {
        return None;
    }
    Some(format!(
        "records were deleted from the source before they were mirrored: {}. The workers stop rather than \
         skip them; to accept the loss, reset the group's offsets past the gap (kafka-consumer-groups.sh \
         --reset-offsets --to-earliest)",
        o.truncated.join("; ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::migration::Progress;
    use crate::observed::Problem;
    use kafka_mirror_crds::status::ConsumerGroupStatus;

    fn time(seconds: i64) -> Time {
        Time(k8s_openapi::jiff::Timestamp::from_second(seconds).unwrap())
    }

    fn healthy() -> Observed {
        Observed {
            generation: Some(3),
            problem: None,
            paused: false,
            desired_replicas: 2,
            ready_replicas: 2,
            rollout_stalled: None,
            lag: Ok(0),
            target: Ok(()),
            truncated: Vec::new(),
            topic_count: 1,
            migration: None,
            failover: None,
        }
    }

    fn find<'a>(conditions: &'a [Condition], type_: &str) -> &'a Condition {
        conditions.iter().find(|c| c.type_ == type_).unwrap()
    }

    #[test]
    fn a_healthy_mirror_is_ready_steady_and_not_degraded() {
        let c = conditions(&[], &healthy(), &time(100));
        assert_eq!(
            (
                find(&c, READY).status.as_str(),
                find(&c, READY).reason.as_str()
            ),
            ("True", "Mirroring")
        );
        assert_eq!(find(&c, PROGRESSING).status, "False");
        assert_eq!(find(&c, DEGRADED).status, "False");
        assert!(c.iter().all(|c| c.observed_generation == Some(3)));
    }

    #[test]
    fn an_invalid_spec_names_the_field_in_ready_and_degraded() {
        let observed = Observed {
            problem: Some(Problem {
                reason: Reason::InvalidSpec,
                message: "spec.topics.include[0]: invalid regular expression".into(),
            }),
            ..healthy()
        };
        let c = conditions(&[], &observed, &time(100));
        let ready = find(&c, READY);
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("False", "InvalidSpec")
        );
        assert!(ready.message.starts_with("spec.topics.include[0]"));
        assert_eq!(find(&c, DEGRADED).status, "True");
    }

    #[test]
    fn paused_says_so_and_is_not_degraded() {
        let observed = Observed {
            paused: true,
            ready_replicas: 0,
            ..healthy()
        };
        let c = conditions(&[], &observed, &time(100));
        assert_eq!(find(&c, READY).reason, "Paused");
        assert_eq!(find(&c, DEGRADED).status, "False");
    }

    #[test]
    fn lag_that_cannot_be_measured_is_degraded_not_silently_zero() {
        let observed = Observed {
            lag: Err("spec.source.bootstrapServers: a:9092 unreachable".into()),
            ..healthy()
        };
        let c = conditions(&[], &observed, &time(100));
        assert_eq!(find(&c, READY).reason, "LagUnknown");
        assert_eq!(find(&c, DEGRADED).reason, "SourceUnreachable");
    }

    #[test]
    fn workers_coming_up_are_progressing_and_lag_is_catching_up() {
        let c = conditions(
            &[],
            &Observed {
                ready_replicas: 1,
                ..healthy()
            },
            &time(100),
        );
        assert_eq!(
            (
                find(&c, READY).reason.as_str(),
                find(&c, PROGRESSING).reason.as_str()
            ),
            ("WorkersNotReady", "Scaling")
        );
        let c = conditions(
            &[],
            &Observed {
                lag: Ok(42),
                ..healthy()
            },
            &time(100),
        );
        assert_eq!(find(&c, PROGRESSING).reason, "CatchingUp");
        assert_eq!(find(&c, READY).status, "True");
    }

    #[test]
    fn transition_time_changes_only_when_the_status_does() {
        let first = conditions(&[], &healthy(), &time(100));
        let same = conditions(
            &first,
            &Observed {
                lag: Ok(0),
                topic_count: 2,
                ..healthy()
            },
            &time(200),
        );
        assert_eq!(
            find(&same, READY).last_transition_time,
            time(100),
            "still ready: time kept"
        );
        let flipped = conditions(
            &same,
            &Observed {
                ready_replicas: 0,
                rollout_stalled: Some("timed out progressing".into()),
                ..healthy()
            },
            &time(300),
        );
        assert_eq!(find(&flipped, READY).last_transition_time, time(300));
        assert_eq!(find(&flipped, DEGRADED).last_transition_time, time(300));
    }

    #[test]
    fn a_completed_migration_is_ready_with_no_workers() {
        let observed = Observed {
            ready_replicas: 0,
            migration: Some(Progress {
                started_at: time(10),
                remaining: 0,
                completed: true,
            }),
            ..healthy()
        };
        assert_eq!(observed.worker_replicas(), 0);
        let c = conditions(&[], &observed, &time(100));
        assert_eq!(
            (
                find(&c, READY).status.as_str(),
                find(&c, READY).reason.as_str()
            ),
            ("True", "Completed")
        );
        assert_eq!(find(&c, PROGRESSING).reason, "Completed");
        assert_eq!(find(&c, DEGRADED).status, "False");
        let running = Observed {
            migration: Some(Progress {
                started_at: time(10),
                remaining: 5,
                completed: false,
            }),
            ..healthy()
        };
        assert_eq!(running.worker_replicas(), 2);
        let c = conditions(&[], &running, &time(100));
        assert_eq!(find(&c, PROGRESSING).reason, "Migrating");
        assert!(find(&c, PROGRESSING).message.starts_with("5 records left"));
    }

    #[test]
    fn an_unreachable_target_is_degraded() {
        let observed = Observed {
            target: Err("spec.target.bootstrapServers: b:9092 unreachable".into()),
            ..healthy()
        };
        let c = conditions(&[], &observed, &time(100));
        assert_eq!(find(&c, READY).reason, "TargetUnreachable");
        assert!(
            find(&c, READY)
                .message
                .starts_with("spec.target.bootstrapServers")
        );
        assert_eq!(find(&c, DEGRADED).reason, "TargetUnreachable");
    }

    #[test]
    fn workers_still_starting_are_not_degraded_but_a_stalled_rollout_is() {
        let starting = Observed {
            ready_replicas: 0,
            ..healthy()
        };
        let c = conditions(&[], &starting, &time(100));
        assert_eq!(find(&c, DEGRADED).status, "False");
        assert_eq!(find(&c, READY).reason, "WorkersNotReady");
        let stalled = Observed {
            rollout_stalled: Some("ReplicaSet \"m-worker-1\" has timed out progressing.".into()),
            ..starting
        };
        let c = conditions(&[], &stalled, &time(100));
        assert_eq!(find(&c, DEGRADED).reason, "NoWorkerReady");
        assert!(
            find(&c, DEGRADED)
                .message
                .ends_with("has timed out progressing.")
        );
    }

    #[test]
    fn workers_not_ready_while_a_cluster_is_unreachable_are_not_ready_for_that_reason() {
        let source_down = Observed {
            ready_replicas: 0,
            lag: Err("spec.source.bootstrapServers \"127.0.0.1:1\": no broker answered".into()),
            ..healthy()
        };
        let c = conditions(&[], &source_down, &time(100));
        let ready = find(&c, READY);
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("False", "SourceUnreachable")
        );
        assert_eq!(
            ready.message,
            "spec.source.bootstrapServers \"127.0.0.1:1\": no broker answered (0 of 2 workers ready)"
        );
        let target_down = Observed {
            ready_replicas: 1,
            target: Err("spec.target.bootstrapServers \"127.0.0.1:2\": no broker answered".into()),
            ..healthy()
        };
        let c = conditions(&[], &target_down, &time(100));
        assert_eq!(find(&c, READY).reason, "TargetUnreachable");
        assert!(find(&c, READY).message.ends_with("(1 of 2 workers ready)"));
    }

    #[test]
    fn records_deleted_before_they_were_mirrored_are_degraded_with_the_way_out() {
        let observed = Observed {
            ready_replicas: 0,
            truncated: vec!["orders[2] committed 1200, first offset on the source 5000 (3800 records deleted before they were mirrored)".into()],
            ..healthy()
        };
        let conditions = conditions(&[], &observed, &time(10));
        let degraded = find(&conditions, "Degraded");
        assert_eq!(
            (degraded.status.as_str(), degraded.reason.as_str()),
            ("True", "SourceTruncated")
        );
        assert!(
            degraded.message.contains("orders[2] committed 1200"),
            "{}",
            degraded.message
        );
        assert!(
            degraded.message.contains("--reset-offsets"),
            "{}",
            degraded.message
        );
        let ready = find(&conditions, "Ready");
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("False", "SourceTruncated")
        );
    }

    fn group(name: &str, missed: i64, re_read: i64, state: GroupSyncState) -> ConsumerGroupStatus {
        ConsumerGroupStatus {
            name: name.into(),
            partitions: 3,
            missed,
            re_read,
            state,
            message: None,
        }
    }

    fn failover_condition(failover: Result<FailoverStatus, String>) -> Condition {
        let observed = Observed {
            failover: Some(failover),
            ..healthy()
        };
        find(&conditions(&[], &observed, &time(10)), FAILOVER_READY).clone()
    }

    fn groups(groups: Vec<ConsumerGroupStatus>) -> Result<FailoverStatus, String> {
        Ok(FailoverStatus {
            synced_at: Some(time(5)),
            missed: groups.iter().map(|g| g.missed).sum(),
            re_read: groups.iter().map(|g| g.re_read).sum(),
            groups,
        })
    }

    #[test]
    fn failover_is_ready_only_when_no_group_would_miss_a_record() {
        let ready = failover_condition(groups(vec![
            group("billing", 0, 12, GroupSyncState::Synced),
            group("shipping", 40, 0, GroupSyncState::ActiveOnTarget),
            group("audit", 0, 0, GroupSyncState::AheadOnTarget),
        ]));
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("True", "GroupsSynced")
        );
        assert!(
            ready.message.contains("1 groups can switch") && ready.message.contains("at most 12"),
            "{}",
            ready.message
        );

        let missing =
            failover_condition(groups(vec![group("billing", 7, 0, GroupSyncState::Synced)]));
        assert_eq!(
            (missing.status.as_str(), missing.reason.as_str()),
            ("False", "RecordsNotOnTarget")
        );
        assert!(
            missing.message.contains("billing would miss 7"),
            "{}",
            missing.message
        );

        let untranslated = failover_condition(groups(vec![group(
            "billing",
            0,
            0,
            GroupSyncState::NotTranslated,
        )]));
        assert_eq!(untranslated.reason, "GroupsNotTranslated");

        let none = failover_condition(groups(Vec::new()));
        assert_eq!(
            (none.status.as_str(), none.reason.as_str()),
            ("False", "NoGroupToFollow")
        );

        let failed = failover_condition(Err("the source does not answer".into()));
        assert_eq!(
            (failed.status.as_str(), failed.reason.as_str()),
            ("False", "GroupSyncFailed")
        );
        assert!(failed.message.starts_with("the source does not answer"));
    }

    #[test]
    fn without_consumer_groups_there_is_no_failover_condition() {
        let c = conditions(&[], &healthy(), &time(10));
        assert!(c.iter().all(|c| c.type_ != FAILOVER_READY));
    }
}
