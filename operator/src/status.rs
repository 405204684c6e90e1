//! The status the operator writes, as a pure function of what the reconcile observed. Lag that could not be
//! measured this time keeps the last measurement and its time, so `measuredAt` says how old it is, and the
//! conditions say why.

use k8s_openapi::api::apps::v1::DeploymentStatus;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kafka_mirror_crds::status::{KafkaMirrorStatus, LagSummary, MigrationStatus};

use crate::conditions::conditions;
use crate::lag::LagReport;
use crate::observed::Observed;

/// Everything a reconcile learned, beyond the conditions' inputs.
pub struct StatusInputs<'a> {
    pub observed: &'a Observed,
    /// This reconcile's lag measurement, when the source answered.
    pub lag: Option<&'a LagReport>,
    /// The worker Deployment's status, when it was applied.
    pub deployment: Option<&'a DeploymentStatus>,
    /// `app.kubernetes.io/...=...` selector of the worker pods.
    pub selector: String,
}

pub fn build(
    previous: &KafkaMirrorStatus,
    inputs: &StatusInputs<'_>,
    now: &Time,
) -> KafkaMirrorStatus {
    let observed = inputs.observed;
    let mut status = KafkaMirrorStatus {
        observed_generation: observed.generation,
        conditions: conditions(&previous.conditions, observed, now),
        replicas: previous.replicas,
        ready_replicas: previous.ready_replicas,
        selector: Some(inputs.selector.clone()),
        delivery: previous.delivery,
        topic_count: previous.topic_count,
        topics: previous.topics.clone(),
        lag: previous.lag.clone(),
        migration: None,
        // A sync that could not run (the source does not answer: a disaster) keeps the last one's numbers and
        // its `syncedAt`: the offsets on the target are still those.
        failover: match &observed.failover {
            Some(Ok(failover)) => Some(failover.clone()),
            Some(Err(_)) => previous.failover.clone(),
            None => None,
        },
    };
    if let Some(deployment) = inputs.deployment {
        status.replicas = Some(deployment.replicas.unwrap_or(0));
        status.ready_replicas = Some(deployment.ready_replicas.unwrap_or(0));
    }
    if let Some(lag) = inputs.lag {
        status.topic_count = Some(lag.topics.len() as i32);
        status.topics = lag.topics.clone();
        status.lag = Some(LagSummary {
            total: lag.total,
            max_partition: lag.max_partition,
            seconds: lag.seconds,
            measured_at: Some(now.clone()),
        });
    }
    if let Some(progress) = &observed.migration {
        let completed_before = previous
            .migration
            .as_ref()
            .and_then(|m| m.completed_at.clone());
        status.migration = Some(MigrationStatus {
            started_at: Some(progress.started_at.clone()),
            remaining: progress.remaining,
            completed_at: progress
                .completed
                .then(|| completed_before.unwrap_or_else(|| now.clone())),
        });
    }
    status
}

#[cfg(test)]
mod tests {
    use kafka_mirror_crds::status::TopicStatus;

    use super::*;
    use crate::conditions::READY;
    use crate::migration::Progress;
    use crate::observed::Problem;
    use crate::reason::Reason;

    fn time(seconds: i64) -> Time {
        Time(k8s_openapi::jiff::Timestamp::from_second(seconds).unwrap())
    }

    fn observed() -> Observed {
        Observed {
            generation: Some(2),
            problem: None,
            paused: false,
            desired_replicas: 2,
            ready_replicas: 1,
            rollout_stalled: None,
            lag: Ok(30),
            target: Ok(()),
            truncated: Vec::new(),
            topic_count: 1,
            migration: None,
            failover: None,
        }
    }

    fn report() -> LagReport {
        LagReport {
            topics: vec![TopicStatus {
                name: "orders".into(),
                target_name: "mirror.orders".into(),
                partitions: 2,
                lag: 30,
                lag_seconds: Some(4),
            }],
            total: 30,
            max_partition: 20,
            seconds: Some(4),
            truncated: Vec::new(),
        }
    }

    #[test]
    fn a_measurement_fills_topics_lag_and_replicas() {
        let observed = observed();
        let deployment = DeploymentStatus {
            replicas: Some(2),
            ready_replicas: Some(1),
            ..DeploymentStatus::default()
        };
        let status = build(
            &KafkaMirrorStatus::default(),
            &StatusInputs {
                observed: &observed,
                lag: Some(&report()),
                deployment: Some(&deployment),
                selector: "a=b".into(),
            },
            &time(50),
        );
        assert_eq!(status.observed_generation, Some(2));
        assert_eq!((status.replicas, status.ready_replicas), (Some(2), Some(1)));
        assert_eq!(status.topic_count, Some(1));
        assert_eq!(status.topics, report().topics);
        let lag = status.lag.unwrap();
        assert_eq!((lag.total, lag.max_partition), (30, 20));
        assert_eq!(lag.measured_at, Some(time(50)));
        assert_eq!(status.selector.as_deref(), Some("a=b"));
    }

    #[test]
    fn without_a_measurement_the_last_one_stays_with_its_time() {
        let first = build(
            &KafkaMirrorStatus::default(),
            &StatusInputs {
                observed: &observed(),
                lag: Some(&report()),
                deployment: None,
                selector: "a=b".into(),
            },
            &time(50),
        );
        let unreachable = Observed {
            lag: Err("spec.source.bootstrapServers: down".into()),
            ready_replicas: 2,
            ..observed()
        };
        let second = build(
            &first,
            &StatusInputs {
                observed: &unreachable,
                lag: None,
                deployment: None,
                selector: "a=b".into(),
            },
            &time(80),
        );
        assert_eq!(second.topics, first.topics);
        assert_eq!(second.lag.unwrap().measured_at, Some(time(50)));
        let ready = second.conditions.iter().find(|c| c.type_ == READY).unwrap();
        assert_eq!(ready.reason, "LagUnknown");
    }

    #[test]
    fn an_invalid_spec_keeps_everything_but_the_conditions() {
        let first = build(
            &KafkaMirrorStatus::default(),
            &StatusInputs {
                observed: &observed(),
                lag: Some(&report()),
                deployment: None,
                selector: "a=b".into(),
            },
            &time(50),
        );
        let invalid = Observed {
            generation: Some(3),
            problem: Some(Problem {
                reason: Reason::InvalidSpec,
                message: "spec.topics.include[0]: bad".into(),
            }),
            ..observed()
        };
        let second = build(
            &first,
            &StatusInputs {
                observed: &invalid,
                lag: None,
                deployment: None,
                selector: "a=b".into(),
            },
            &time(80),
        );
        assert_eq!(second.observed_generation, Some(3));
        assert_eq!(second.lag, first.lag);
        let ready = second.conditions.iter().find(|c| c.type_ == READY).unwrap();
        assert_eq!(ready.message, "spec.topics.include[0]: bad");
    }

    #[test]
    fn completion_time_is_set_once() {
        let done = Observed {
            migration: Some(Progress {
                started_at: time(1),
                remaining: 0,
                completed: true,
            }),
            ..observed()
        };
        let inputs = StatusInputs {
            observed: &done,
            lag: None,
            deployment: None,
            selector: "a=b".into(),
        };
        let first = build(&KafkaMirrorStatus::default(), &inputs, &time(10));
        let again = build(&first, &inputs, &time(20));
        assert_eq!(again.migration.unwrap().completed_at, Some(time(10)));
    }
}
