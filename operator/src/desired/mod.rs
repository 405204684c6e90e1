//! Every object a `KafkaMirror` wants, as pure functions of the validated resource: no I/O, so each one is
//! tested from example documents to exact golden YAML.

mod config_map;
mod deployment;
mod disruption_budget;
mod metrics_service;
mod migration_record;
mod secrets;
mod service_account;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Service, ServiceAccount};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kafka_mirror_crds::{KafkaMirror, KafkaMirrorSpec};
use kube::Resource;
use serde::Serialize;

use crate::labels::{WorkerNames, object_labels};
use crate::migration::EndOffsets;
use crate::{Error, Result};

/// What the operator was installed with, that the resource does not say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildSettings {
    /// Worker image when `spec.template.image` is absent.
    pub worker_image: String,
}

/// What the operator decided beyond the resource itself: how many workers run, and the end offsets of a
/// migration.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerState {
    /// `spec.replicas`, or 0 while paused or after a completed migration.
    pub replicas: i32,
    /// `mode: migrate`, once recorded.
    pub end_offsets: Option<EndOffsets>,
}

impl WorkerState {
    /// What the spec alone says (no migration recorded): `kafka-mirror-operator render` and the golden files.
    pub fn from_spec(spec: &KafkaMirrorSpec) -> Self {
        Self {
            replicas: if spec.paused { 0 } else { spec.replicas },
            end_offsets: None,
        }
    }
}

/// Everything one mirror wants in its namespace.
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredObjects {
    pub config_map: ConfigMap,
    pub service_account: ServiceAccount,
    pub deployment: Deployment,
    /// Only with more than one replica: a budget for one pod would block node drains.
    pub disruption_budget: Option<PodDisruptionBudget>,
    pub metrics_service: Service,
    /// Only with `mode: migrate`, once the end offsets are recorded.
    pub migration_record: Option<ConfigMap>,
}

/// The identity of the mirror every object is derived from.
pub(crate) struct Owner<'a> {
    pub name: &'a str,
    pub namespace: &'a str,
    pub names: WorkerNames,
    owner_reference: OwnerReference,
}

impl Owner<'_> {
    /// Metadata of a derived object: name, namespace, labels, and the owner reference that makes Kubernetes
    /// delete it with the mirror.
    pub fn metadata(&self, name: &str) -> ObjectMeta {
        ObjectMeta {
            name: Some(name.to_string()),
            namespace: Some(self.namespace.to_string()),
            labels: Some(object_labels(self.name)),
            owner_references: Some(vec![self.owner_reference.clone()]),
            ..ObjectMeta::default()
        }
    }
}

/// Builds every desired object of a validated mirror.
pub fn desired_objects(
    mirror: &KafkaMirror,
    settings: &BuildSettings,
    state: &WorkerState,
) -> Result<DesiredObjects> {
    let name = mirror
        .metadata
        .name
        .as_deref()
        .ok_or(Error::MissingObjectKey("metadata.name"))?;
    let namespace = mirror
        .metadata
        .namespace
        .as_deref()
        .ok_or(Error::MissingObjectKey("metadata.namespace"))?;
    let owner_reference = mirror
        .controller_owner_ref(&())
        .ok_or(Error::MissingObjectKey("metadata.uid"))?;
    let owner = Owner {
        name,
        namespace,
        names: WorkerNames::new(name),
        owner_reference,
    };
    let config_map = config_map::build(&owner, mirror)?;
    let config_hash = config_map::config_hash(&owner, mirror)?;
    Ok(DesiredObjects {
        deployment: deployment::build(&owner, &mirror.spec, settings, &config_hash, state.replicas),
        service_account: service_account::build(&owner),
        disruption_budget: disruption_budget::build(&owner, state.replicas),
        metrics_service: metrics_service::build(&owner),
        migration_record: state
            .end_offsets
            .as_ref()
            .map(|offsets| migration_record::build(&owner, offsets)),
        config_map,
    })
}

impl DesiredObjects {
    /// The objects as one multi-document YAML stream, in apply order (what `kafka-mirror-operator render`
    /// prints and the golden files hold).
    pub fn to_yaml(&self) -> Result<String> {
        let mut out = String::new();
        push_yaml(&mut out, &self.service_account, "ServiceAccount")?;
        push_yaml(&mut out, &self.config_map, "ConfigMap")?;
        push_yaml(&mut out, &self.deployment, "Deployment")?;
        if let Some(pdb) = &self.disruption_budget {
            push_yaml(&mut out, pdb, "PodDisruptionBudget")?;
        }
        push_yaml(&mut out, &self.metrics_service, "Service")?;
        if let Some(record) = &self.migration_record {
            push_yaml(&mut out, record, "ConfigMap")?;
        }
        Ok(out)
    }
}

fn push_yaml<K: Resource<DynamicType = ()> + Serialize>(
    out: &mut String,
    object: &K,
    what: &'static str,
) -> Result<()> {
    // k8s-openapi types omit apiVersion and kind unless serialized through their own wrapper: add them.
    let mut value = serde_json::to_value(object).map_err(|e| Error::Serialize {
        what,
        message: e.to_string(),
    })?;
    if let Some(map) = value.as_object_mut() {
        map.insert("apiVersion".into(), K::api_version(&()).into());
        map.insert("kind".into(), K::kind(&()).into());
    }
    let yaml = yaml_serde::to_string(&value).map_err(|e| Error::Serialize {
        what,
        message: e.to_string(),
    })?;
    out.push_str("---\n");
    out.push_str(&yaml);
    Ok(())
}
