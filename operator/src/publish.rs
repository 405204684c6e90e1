//! The pipeline's last step: what the reconcile found becomes the mirror's status and Events. After an apply,
//! the status says how far behind the workers are; for a refused spec, it says what is wrong while keeping the
//! last lag measurement and replica counts.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kafka_mirror_crds::KafkaMirror;
use kafka_mirror_crds::status::KafkaMirrorStatus;
use kube::api::{Patch, PatchParams};
use kube::runtime::events::EventType;
use kube::{Api, Client, Resource, ResourceExt};

use crate::decide::Decision;
use crate::events::{EventAction, EventSink};
use crate::labels::{MANAGER, selector_string};
use crate::observed::{Observed, Problem};
use crate::reconcile::Context;
use crate::status::{self, StatusInputs};
use crate::validate::{MirrorIdentity, Refusal, ValidatedMirror};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("writing the status of KafkaMirror {name}")]
    PatchStatus { name: String, source: kube::Error },
}

/// The status after the desired objects were applied, and Events for what changed since the last one.
pub(crate) async fn applied(
    ctx: &Context,
    mirror: &ValidatedMirror,
    decision: &Decision,
    deployment: &Deployment,
    now: &Time,
) -> Result<(), Error> {
    let previous = mirror.previous_status();
    let observed = Observed::applied(&mirror.resource, decision, deployment);
    let mut status = status::build(
        &previous,
        &StatusInputs {
            observed: &observed,
            lag: decision.lag.as_ref().ok(),
            deployment: deployment.status.as_ref(),
            selector: mirror.identity.selector(),
        },
        now,
    );
    match &decision.failover {
        Some(Ok(failover)) => ctx.metrics.groups_synced(
            &mirror.identity.namespace,
            &mirror.identity.name,
            &failover.groups,
        ),
        // Unreachable source: the last sync's numbers stay, as in the status.
        Some(Err(_)) => {}
        None => ctx
            .metrics
            .mirror_forgotten(&mirror.identity.namespace, &mirror.identity.name),
    }
    // What the workers now run; a refused spec keeps the last applied one's.
    status.delivery = Some(mirror.resource.spec.delivery);
    let events = EventSink {
        recorder: &ctx.recorder,
        mirror: mirror.object_ref(),
    };
    events
        .publish_transitions(
            &previous,
            &status,
            &observed,
            &mirror.identity.names.workload,
        )
        .await;
    patch_status(&ctx.client, &mirror.identity, &status).await
}

/// A spec that cannot work: nothing was applied (the workers keep running what they ran), the status and a
/// Warning Event say what is wrong.
pub(crate) async fn refused(ctx: &Context, refusal: &Refusal) -> Result<(), Error> {
    let Refusal {
        resource,
        identity,
        problem,
    } = refusal;
    tracing::warn!(mirror = %identity.name, namespace = %identity.namespace, reason = %problem.reason, message = %problem.message, "spec cannot work");
    let events = EventSink {
        recorder: &ctx.recorder,
        mirror: resource.object_ref(&()),
    };
    events
        .publish(
            EventType::Warning,
            problem.reason,
            EventAction::Validate,
            &problem.message,
        )
        .await;
    let previous = resource.status.clone().unwrap_or_default();
    let status = refused_status(
        resource,
        &previous,
        problem.clone(),
        &Time(k8s_openapi::jiff::Timestamp::now()),
    );
    patch_status(&ctx.client, identity, &status).await
}

/// The status of a mirror whose spec cannot work (pure): `Ready=False` and `Degraded=True` with the problem's
/// reason and message; the last lag measurement and replica counts are kept.
pub fn refused_status(
    mirror: &KafkaMirror,
    previous: &KafkaMirrorStatus,
    problem: Problem,
    now: &Time,
) -> KafkaMirrorStatus {
    status::build(
        previous,
        &StatusInputs {
            observed: &Observed::refused(mirror, previous, problem),
            lag: None,
            deployment: None,
            selector: selector_string(&mirror.name_any()),
        },
        now,
    )
}

async fn patch_status(
    client: &Client,
    mirror: &MirrorIdentity,
    status: &KafkaMirrorStatus,
) -> Result<(), Error> {
    let patch = serde_json::json!({
        "apiVersion": KafkaMirror::api_version(&()),
        "kind": KafkaMirror::kind(&()),
        "status": status,
    });
    Api::<KafkaMirror>::namespaced(client.clone(), &mirror.namespace)
        .patch_status(
            &mirror.name,
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(&patch),
        )
        .await
        .map_err(|source| Error::PatchStatus {
            name: mirror.name.clone(),
            source,
        })?;
    Ok(())
}
