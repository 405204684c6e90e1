//! The pipeline's apply step: writes the desired objects with server-side apply under one field manager, then
//! deletes what this mirror owns but no longer wants. Forced apply: the operator is the only writer of these fields, and a conflict
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
use crate::validate::MirrorIdentity;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("applying {kind} {name}")]
    Apply {
        kind: &'static str,
        name: String,
        source: kube::Error,
    },

    #[error("listing {kind}s of {mirror}")]
    ListOwned {
        kind: &'static str,
        mirror: String,
        source: kube::Error,
    },

    #[error("deleting {kind} {name}")]
    DeleteOrphan {
        kind: &'static str,
        name: String,
        source: kube::Error,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Applies every desired object of `mirror`, deletes the ones it no longer wants, and returns the worker
/// Deployment as the API server stored it, status included.
pub async fn apply(
    client: &Client,
    mirror: &MirrorIdentity,
    objects: &DesiredObjects,
) -> Result<Deployment> {
    let deployment = apply_all(client, &mirror.namespace, objects).await?;
    delete_orphans(client, mirror, objects).await?;
    Ok(deployment)
}

/// Applies every desired object in dependency order (identity and config before the pods that use them).
async fn apply_all(
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
        + k8s_openapi::Resource
        + Serialize
        + DeserializeOwned
        + Clone
        + Debug,
{
    // Every desired object is built with its name.
    let name = object.name_any();
    Api::<K>::namespaced(client.clone(), namespace)
        .patch(
            &name,
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(object),
        )
        .await
        .map_err(|source| Error::Apply {
            kind: K::KIND,
            name,
            source,
        })
}

/// Deletes the PodDisruptionBudget and migration record of `mirror` that `objects` no longer contains. Only
/// objects carrying this mirror's labels and owner reference are candidates: an object someone else created
/// under the same name is never touched.
async fn delete_orphans(
    client: &Client,
    mirror: &MirrorIdentity,
    objects: &DesiredObjects,
) -> Result<()> {
    let wanted_budget = objects.disruption_budget.as_ref().map(|o| o.name_any());
    delete_unwanted::<PodDisruptionBudget>(client, mirror, &[wanted_budget]).await?;
    let wanted_config_maps = [
        Some(objects.config_map.name_any()),
        objects.migration_record.as_ref().map(|o| o.name_any()),
    ];
    delete_unwanted::<ConfigMap>(client, mirror, &wanted_config_maps).await?;
    Ok(())
}

async fn delete_unwanted<K>(
    client: &Client,
    mirror: &MirrorIdentity,
    wanted: &[Option<String>],
) -> Result<()>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + k8s_openapi::Resource
        + DeserializeOwned
        + Clone
        + Debug,
{
    let api = Api::<K>::namespaced(client.clone(), &mirror.namespace);
    let selector = format!(
        "{INSTANCE_LABEL}={},{MANAGED_BY_LABEL}={MANAGER}",
        mirror.name
    );
    let existing = api
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(|source| Error::ListOwned {
            kind: K::KIND,
            mirror: mirror.name.clone(),
            source,
        })?;
    for object in existing {
        let name = object.name_any();
        let owned = object
            .owner_references()
            .iter()
            .any(|o| o.uid == mirror.uid);
        if !owned || wanted.iter().flatten().any(|w| *w == name) {
            continue;
        }
        match api.delete(&name, &DeleteParams::background()).await {
            Ok(_) => {
                tracing::info!(kind = %K::kind(&()), %name, "deleted what the mirror no longer wants")
            }
            // Gone already: what we wanted.
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            Err(source) => {
                return Err(Error::DeleteOrphan {
                    kind: K::KIND,
                    name,
                    source,
                });
            }
        }
    }
    Ok(())
}
