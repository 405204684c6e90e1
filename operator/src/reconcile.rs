//! One reconcile of one `KafkaMirror`, as a pipeline: validate (pure) → read the referenced Secrets → ask
//! Kafka for positions (off the async runtime) → build every desired object (pure) → server-side apply →
//! delete orphans → status. A spec that cannot work stops before anything is applied and says why in the
//! status and an Event; only what a retry can fix is an error.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kafka_mirror_clients::MirrorPlan;
use kafka_mirror_clients::secrets::Secrets;
use kafka_mirror_crds::status::KafkaMirrorStatus;
use kafka_mirror_crds::{FieldError, KafkaMirror, KafkaMirrorSpec, Mode};
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder};
use kube::{Api, Client, Resource, ResourceExt};

use crate::conditions::{Observed, Problem};
use crate::desired::{BuildSettings, WorkerState, desired_objects};
use crate::kafka_view::{self, KafkaView};
use crate::labels::{MANAGER, WorkerNames, selector_string};
use crate::lag::{LagReport, summarize};
use crate::metrics::Metrics;
use crate::migration::{EndOffsets, Progress};
use crate::reason::Reason;
use crate::status::{self, StatusInputs};
use crate::{Error, Result, apply, secret_values};

/// How often what cannot be seen through watches is looked at again.
#[derive(Debug, Clone)]
pub struct Intervals {
    /// Lag measurement of a working mirror.
    pub lag: Duration,
    /// A spec that cannot work: nothing changes until the user edits it (an edit triggers a reconcile at
    /// once), but a missing Secret may be created meanwhile.
    pub invalid: Duration,
    /// After a failed reconcile (API server errors).
    pub error: Duration,
}

impl Default for Intervals {
    fn default() -> Self {
        Self {
            lag: Duration::from_secs(30),
            invalid: Duration::from_secs(300),
            error: Duration::from_secs(15),
        }
    }
}

/// What every reconcile shares.
pub struct Context {
    pub client: Client,
    pub settings: BuildSettings,
    pub recorder: Recorder,
    pub metrics: Arc<Metrics>,
    pub intervals: Intervals,
}

pub async fn reconcile(mirror: Arc<KafkaMirror>, ctx: Arc<Context>) -> Result<Action> {
    let _timer = ctx.metrics.reconcile_started();
    let namespace = mirror
        .namespace()
        .ok_or(Error::MissingObjectKey("metadata.namespace"))?;
    let name = mirror.name_any();
    let previous = mirror.status.clone().unwrap_or_default();
    let mirrors = Api::<KafkaMirror>::namespaced(ctx.client.clone(), &namespace);

    // Validate (pure), then resolve the Secrets the spec names: both are the user's to fix.
    let plan = match check_spec(&mirror.spec) {
        Err(problem) => Err(problem),
        Ok(()) => {
            let secrets = secret_values::read(
                &Api::<Secret>::namespaced(ctx.client.clone(), &namespace),
                &mirror.spec,
            )
            .await?;
            build_plan(&mirror, secrets)
        }
    };
    let plan = match plan {
        Ok(plan) => plan,
        Err(problem) => return refuse(&mirror, &mirrors, &previous, &ctx, problem).await,
    };

    // Kafka: positions for lag and migration progress, and whether the target answers.
    let record_api = Api::<ConfigMap>::namespaced(ctx.client.clone(), &namespace);
    let names = WorkerNames::new(&name);
    let recorded = if mirror.spec.mode == Mode::Migrate {
        read_record(&record_api, &names.migration_record).await?
    } else {
        None
    };
    let plan = Arc::new(plan);
    let view: KafkaView = {
        let plan = plan.clone();
        tokio::task::spawn_blocking(move || kafka_view::observe(&plan)).await?
    };
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    // One measurement: the lag report, or why the source could not be asked.
    let lag: Result<LagReport, String> = view
        .positions
        .as_ref()
        .map(|positions| summarize(&mirror.spec.topics, positions))
        .map_err(Clone::clone);
    let (end_offsets, migration) = migration(&mirror, recorded, &view, &previous, &now);

    let mut observed = Observed {
        generation: mirror.metadata.generation,
        problem: None,
        paused: mirror.spec.paused,
        desired_replicas: mirror.spec.replicas,
        ready_replicas: 0,
        rollout_stalled: None,
        lag: lag.as_ref().map(|l| l.total).map_err(Clone::clone),
        target: view.target.clone(),
        truncated: lag
            .as_ref()
            .map(|l| l.truncated.clone())
            .unwrap_or_default(),
        topic_count: lag.as_ref().map_or(0, |l| l.topics.len()),
        migration,
    };

    // Build (pure) and apply.
    let state = WorkerState {
        replicas: observed.worker_replicas(),
        end_offsets,
    };
    let objects = desired_objects(&mirror, &ctx.settings, &state)?;
    let deployment = apply::apply(&ctx.client, &namespace, &objects).await?;
    let uid = mirror
        .uid()
        .ok_or(Error::MissingObjectKey("metadata.uid"))?;
    apply::delete_orphans(&ctx.client, &namespace, &name, &uid, &objects).await?;

    observed.ready_replicas = deployment
        .status
        .as_ref()
        .and_then(|s| s.ready_replicas)
        .unwrap_or(0);
    observed.rollout_stalled = rollout_stalled(&deployment);
    let status = status::build(
        &previous,
        &StatusInputs {
            observed: &observed,
            lag: lag.as_ref().ok(),
            deployment: deployment.status.as_ref(),
            selector: selector_string(&name),
        },
        &now,
    );
    publish_transitions(&mirror, &previous, &status, &observed, &ctx).await;
    patch_status(&mirrors, &name, &status).await?;
    Ok(Action::requeue(ctx.intervals.lag))
}

/// The Deployment's own verdict that its rollout is stuck: condition `Progressing=False`, reason
/// `ProgressDeadlineExceeded` (after `progressDeadlineSeconds`, 10 minutes by default).
fn rollout_stalled(deployment: &k8s_openapi::api::apps::v1::Deployment) -> Option<String> {
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

/// Retry failed reconciles at a steady pace; count them by reason.
pub fn error_policy(mirror: Arc<KafkaMirror>, error: &Error, ctx: Arc<Context>) -> Action {
    ctx.metrics.failed(error);
    tracing::warn!(mirror = %mirror.name_any(), namespace = ?mirror.namespace(), error = %error, "reconcile failed, retrying");
    Action::requeue(ctx.intervals.error)
}

/// The pipeline's first step, pure and before any Secret is read: a spec [`kafka_mirror_crds::validate`]
/// refuses is `InvalidSpec`, naming every field at fault.
pub fn check_spec(spec: &KafkaMirrorSpec) -> std::result::Result<(), Problem> {
    kafka_mirror_crds::validate(spec)
        .map(drop)
        .map_err(|errors| problem(Reason::InvalidSpec, &errors))
}

/// The worker plan of a checked spec with the Secrets [`secret_values::read`] resolved (pure): a Secret or key
/// that is missing is `SecretMissing`.
pub fn build_plan(
    mirror: &KafkaMirror,
    secrets: std::result::Result<Secrets, Vec<FieldError>>,
) -> std::result::Result<MirrorPlan, Problem> {
    let secrets = secrets.map_err(|errors| problem(Reason::SecretMissing, &errors))?;
    MirrorPlan::from_resource(mirror.clone(), &secrets).map_err(|e| Problem {
        reason: Reason::InvalidSpec,
        message: e.to_string(),
    })
}

fn problem(reason: Reason, errors: &[FieldError]) -> Problem {
    Problem {
        reason,
        message: errors
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; "),
    }
}

/// A spec that cannot work: nothing is applied (the workers keep running what they ran), the status and a
/// Warning Event say what is wrong, and the next look is slow.
async fn refuse(
    mirror: &KafkaMirror,
    mirrors: &Api<KafkaMirror>,
    previous: &KafkaMirrorStatus,
    ctx: &Context,
    problem: Problem,
) -> Result<Action> {
    tracing::warn!(mirror = %mirror.name_any(), namespace = ?mirror.namespace(), reason = %problem.reason, message = %problem.message, "spec cannot work");
    publish(
        mirror,
        ctx,
        EventType::Warning,
        problem.reason,
        "Validate",
        &problem.message,
    )
    .await;
    let status = refused_status(
        mirror,
        previous,
        problem,
        &Time(k8s_openapi::jiff::Timestamp::now()),
    );
    patch_status(mirrors, &mirror.name_any(), &status).await?;
    Ok(Action::requeue(ctx.intervals.invalid))
}

/// The status of a mirror whose spec cannot work (pure): `Ready=False` and `Degraded=True` with the problem's
/// reason and message; the last lag measurement and replica counts are kept.
pub fn refused_status(
    mirror: &KafkaMirror,
    previous: &KafkaMirrorStatus,
    problem: Problem,
    now: &Time,
) -> KafkaMirrorStatus {
    let observed = Observed {
        generation: mirror.metadata.generation,
        problem: Some(problem),
        paused: mirror.spec.paused,
        desired_replicas: mirror.spec.replicas,
        ready_replicas: previous.ready_replicas.unwrap_or(0),
        rollout_stalled: None,
        lag: Err("not measured".into()),
        target: Ok(()),
        truncated: Vec::new(),
        topic_count: 0,
        migration: None,
    };
    status::build(
        previous,
        &StatusInputs {
            observed: &observed,
            lag: None,
            deployment: None,
            selector: selector_string(&mirror.name_any()),
        },
        now,
    )
}

/// The recorded end offsets of a migration, if recorded. A damaged record is recorded anew.
async fn read_record(api: &Api<ConfigMap>, name: &str) -> Result<Option<EndOffsets>> {
    let config_map = api
        .get_opt(name)
        .await
        .map_err(Error::kube(format!("reading ConfigMap {name}")))?;
    Ok(config_map.and_then(|cm| match EndOffsets::from_config_map(&cm) {
        Ok(record) => Some(record),
        Err(why) => {
            tracing::warn!(%why, "migration record unreadable, recording the end offsets again");
            None
        }
    }))
}

/// The end offsets to keep (recorded now if missing and the source answered) and the progress towards them.
/// A migration the status already calls complete stays complete while the source cannot be asked.
fn migration(
    mirror: &KafkaMirror,
    recorded: Option<EndOffsets>,
    view: &KafkaView,
    previous: &KafkaMirrorStatus,
    now: &Time,
) -> (Option<EndOffsets>, Option<Progress>) {
    if mirror.spec.mode != Mode::Migrate {
        return (None, None);
    }
    let record = match (recorded, &view.positions) {
        (Some(record), _) => Some(record),
        (None, Ok(positions)) => Some(EndOffsets::record(positions, now.clone())),
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

/// Events for what changed: a new generation applied, a migration completed, the source or target lost.
async fn publish_transitions(
    mirror: &KafkaMirror,
    previous: &KafkaMirrorStatus,
    status: &KafkaMirrorStatus,
    observed: &Observed,
    ctx: &Context,
) {
    if previous.observed_generation != status.observed_generation {
        let note = format!(
            "generation {}: {} worker(s) of {}",
            status.observed_generation.unwrap_or_default(),
            observed.worker_replicas(),
            WorkerNames::new(&mirror.name_any()).workload
        );
        publish(
            mirror,
            ctx,
            EventType::Normal,
            Reason::Applied,
            "Apply",
            &note,
        )
        .await;
    }
    let completed = |s: &KafkaMirrorStatus| {
        s.migration
            .as_ref()
            .is_some_and(|m| m.completed_at.is_some())
    };
    if completed(status) && !completed(previous) {
        publish(mirror, ctx, EventType::Normal, Reason::MigrationCompleted, "ScaleDown",
            "every partition was copied up to its high watermark at the start; the workers are scaled to zero").await;
    }
    if let Err(why) = &observed.lag {
        publish(
            mirror,
            ctx,
            EventType::Warning,
            Reason::SourceUnreachable,
            "MeasureLag",
            why,
        )
        .await;
    }
    if let Err(why) = &observed.target {
        publish(
            mirror,
            ctx,
            EventType::Warning,
            Reason::TargetUnreachable,
            "ProbeTarget",
            why,
        )
        .await;
    }
    if let Some(why) = crate::conditions::truncation(observed) {
        publish(
            mirror,
            ctx,
            EventType::Warning,
            Reason::SourceTruncated,
            "MeasureLag",
            &why,
        )
        .await;
    }
}

/// Publishes an Event on the mirror. An Event that cannot be written is logged, never a failed reconcile.
async fn publish(
    mirror: &KafkaMirror,
    ctx: &Context,
    type_: EventType,
    reason: Reason,
    action: &str,
    note: &str,
) {
    let event = Event {
        type_,
        reason: reason.as_str().to_string(),
        // The Events API refuses notes over 1 kB.
        note: Some(truncate(note, 1000)),
        action: action.to_string(),
        secondary: None,
    };
    if let Err(e) = ctx.recorder.publish(&event, &mirror.object_ref(&())).await {
        tracing::warn!(error = %e, %reason, "cannot publish an Event");
    }
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

async fn patch_status(
    mirrors: &Api<KafkaMirror>,
    name: &str,
    status: &KafkaMirrorStatus,
) -> Result<()> {
    let patch = serde_json::json!({
        "apiVersion": KafkaMirror::api_version(&()),
        "kind": KafkaMirror::kind(&()),
        "status": status,
    });
    mirrors
        .patch_status(
            name,
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(&patch),
        )
        .await
        .map_err(Error::kube(format!(
            "writing the status of KafkaMirror {name}"
        )))?;
    Ok(())
}
