//! The ConfigMap holding the document the worker runs (`mirror-worker --config`): the mirror's own spec, so
//! the worker and `kubectl apply` read the same thing. Never a credential: Secrets are mounted separately.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kafka_mirror_crds::worker_pod::CONFIG_FILE;
use kafka_mirror_crds::{KafkaMirror, KafkaMirrorSpec};
use sha2::{Digest, Sha256};

use super::{Error, Result};
use crate::validate::MirrorIdentity;

pub(super) fn build(owner: &MirrorIdentity, spec: &KafkaMirrorSpec) -> Result<ConfigMap> {
    let yaml = worker_document(owner, &worker_spec(spec))?;
    Ok(ConfigMap {
        metadata: owner.metadata(&owner.names.config_map),
        data: Some(BTreeMap::from([(CONFIG_FILE.to_string(), yaml)])),
        ..ConfigMap::default()
    })
}

/// A hash of what the worker reads, put on the pod template so that a change rolls the workers. Fields only
/// the operator acts on (replicas, paused) are left out: scaling or pausing must not restart every pod.
pub(super) fn config_hash(owner: &MirrorIdentity, spec: &KafkaMirrorSpec) -> Result<String> {
    let mut spec = worker_spec(spec);
    spec.replicas = 1;
    spec.paused = false;
    let document = worker_document(owner, &spec)?;
    Ok(Sha256::digest(document.as_bytes())
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// The spec as the worker needs it: pod settings are realized in the pod itself.
fn worker_spec(spec: &KafkaMirrorSpec) -> KafkaMirrorSpec {
    KafkaMirrorSpec {
        template: None,
        ..spec.clone()
    }
}

/// Name and namespace only: the worker derives its default group id from them, as the operator does when it
/// measures lag.
fn worker_document(owner: &MirrorIdentity, spec: &KafkaMirrorSpec) -> Result<String> {
    let mut document = KafkaMirror::new(&owner.name, spec.clone());
    document.metadata = ObjectMeta {
        name: Some(owner.name.to_string()),
        namespace: Some(owner.namespace.to_string()),
        ..ObjectMeta::default()
    };
    yaml_serde::to_string(&document).map_err(|source| Error::Yaml {
        what: "the worker document",
        source,
    })
}
