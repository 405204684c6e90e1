//! Writes the desired objects with server-side apply under one field manager, then deletes what this mirror
//! owns but no longer wants. Forced apply: the operator is the only writer of these fields, and a conflict
//! with a hand edit should end in the declared state, not in a reconcile that fails forever.

use std::fmt::Debug;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use kube::{Api, Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::desired::DesiredObjects;
use crate::labels::{INSTANCE_LABEL, MANAGED_BY_LABEL, MANAGER};
use crate::{Error, Result};

/// Applies every desired object in dependency order (identity and config before the pods that use them) and
/// returns the Deployment as the API server stored it, status included.
pub async fn apply(
    client: &Client,
    namespace: &str,
    objects: &DesiredObjects,
) -> Result<Deployment> {
    apply_one(client, namespace, &objects.service_account).await?;
    apply_one(client, namespace, &objects.config_map).await?;
    if let Some(record) = &objects.migration_record {
        apply_one(client, namespace, record).await?;
    }
    let deployment = apply_one(client, namespace, &objects.deployment).await?;
    if let Some(budget) = &objects.disruption_budget {
        apply_one(client, namespace, budget).await?;
    }
    apply_one(client, namespace, &objects.metrics_service).await?;
    Ok(deployment)
}

async fn apply_one<K>(client: &Client, namespace: &str, object: &K) -> Result<K>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Serialize
        + DeserializeOwned
        + Clone
        + Debug,
{
    let name = object
        .meta()
        .name
        .as_deref()
        .ok_or(Error::MissingObjectKey("metadata.name"))?;
    Api::<K>::namespaced(client.clone(), namespace)
        .patch(
            name,
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(object),
        )
        .await
        .map_err(Error::kube(format!("applying {} {name}", K::kind(&()))))
}

/// Deletes the PodDisruptionBudget and migration record of `mirror` (uid `owner_uid`) that `objects` no
/// longer contains. Only objects carrying this mirror's labels and owner reference are candidates: an object
/// someone else created under the same name is never touched.
pub async fn delete_orphans(
    client: &Client,
    namespace: &str,
    mirror: &str,
    owner_uid: &str,
    objects: &DesiredObjects,
) -> Result<()> {
    let wanted_budget = objects.disruption_budget.as_ref().map(|o| o.name_any());
    delete_unwanted::<PodDisruptionBudget>(client, namespace, mirror, owner_uid, &[wanted_budget])
        .await?;
    let wanted_config_maps = [
        Some(objects.config_map.name_any()),
        objects.migration_record.as_ref().map(|o| o.name_any()),
    ];
    delete_unwanted::<ConfigMap>(client, namespace, mirror, owner_uid, &wanted_config_maps).await?;
    Ok(())
}

async fn delete_unwanted<K>(
    client: &Client,
    namespace: &str,
    mirror: &str,
    owner_uid: &str,
    wanted: &[Option<String>],
) -> Result<()>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + DeserializeOwned
        + Clone
        + Debug,
{
    let api = Api::<K>::namespaced(client.clone(), namespace);
    let selector = format!("{INSTANCE_LABEL}={mirror},{MANAGED_BY_LABEL}={MANAGER}");
    let existing = api
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(Error::kube(format!(
            "listing {}s of {mirror}",
            K::kind(&())
        )))?;
    for object in existing {
        let name = object.name_any();
        let owned = object.owner_references().iter().any(|o| o.uid == owner_uid);
        if !owned || wanted.iter().flatten().any(|w| *w == name) {
            continue;
        }
        match api.delete(&name, &DeleteParams::background()).await {
            Ok(_) => {
                tracing::info!(kind = %K::kind(&()), %name, "deleted what the mirror no longer wants")
            }
            // Gone already: what we wanted.
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            Err(e) => return Err(Error::kube(format!("deleting {} {name}", K::kind(&())))(e)),
        }
    }
    Ok(())
}
