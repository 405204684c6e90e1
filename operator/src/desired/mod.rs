//! The pipeline's desired objects: every object a `KafkaMirror` wants, as pure functions of its identity, its
//! spec and what the reconcile decided. No I/O, so each one is tested from example documents to exact golden
//! YAML. One file per kind.

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
use kafka_mirror_crds::KafkaMirrorSpec;
use kube::Resource;
use serde::Serialize;

use crate::decide;
use crate::migration::MigrationRecord;
use crate::validate::MirrorIdentity;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("serializing {what}")]
    Json {
        what: &'static str,
        source: serde_json::Error,
    },

    #[error("serializing {what} as YAML")]
    Yaml {
        what: &'static str,
        source: yaml_serde::Error,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

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
    /// `decide::worker_replicas`.
    pub replicas: i32,
    /// `mode: migrate`, once recorded.
    pub migration_record: Option<MigrationRecord>,
}

impl WorkerState {
    /// What the spec alone says (no migration recorded): `kafka-mirror-operator render` and the golden files.
    pub fn from_spec(spec: &KafkaMirrorSpec) -> Self {
        Self {
            replicas: decide::worker_replicas(spec.replicas, spec.paused, None),
            migration_record: None,
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

/// Builds every desired object of the mirror `owner` with `spec`.
pub fn desired_objects(
    owner: &MirrorIdentity,
    spec: &KafkaMirrorSpec,
    settings: &BuildSettings,
    state: &WorkerState,
) -> Result<DesiredObjects> {
    let config_map = config_map::build(owner, spec)?;
    let config_hash = config_map::config_hash(owner, spec)?;
    Ok(DesiredObjects {
        deployment: deployment::build(owner, spec, settings, &config_hash, state.replicas),
        service_account: service_account::build(owner),
        disruption_budget: disruption_budget::build(owner, state.replicas),
        metrics_service: metrics_service::build(owner),
        migration_record: state
            .migration_record
            .as_ref()
            .map(|record| migration_record::build(owner, record)),
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
    let mut value = serde_json::to_value(object).map_err(|source| Error::Json { what, source })?;
    if let Some(map) = value.as_object_mut() {
        map.insert("apiVersion".into(), K::api_version(&()).into());
        map.insert("kind".into(), K::kind(&()).into());
    }
    let yaml = yaml_serde::to_string(&value).map_err(|source| Error::Yaml { what, source })?;
    out.push_str("---\n");
    out.push_str(&yaml);
    Ok(())
}
