//! The pipeline's first step, pure: the mirror's identity (name, namespace, uid, the names of its objects) is
//! derived here once, and the spec is checked before any Secret is read. A spec
//! [`kafka_mirror_crds::validate`] refuses is `Reason::InvalidSpec`, naming every field at fault.

use std::sync::Arc;

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kafka_mirror_crds::status::KafkaMirrorStatus;
use kafka_mirror_crds::{KafkaMirror, KafkaMirrorSpec};
use kube::Resource;

use crate::labels::{WorkerNames, object_labels, selector_string};
use crate::observed::Problem;
use crate::reason::Reason;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The object lacks what every stored object has: it was not read from the API server.
    #[error("KafkaMirror has no {0}: only objects read from the API server can be built")]
    MissingObjectKey(&'static str),
}

/// Who a mirror is, as every object derived from it names it.
#[derive(Debug, Clone, PartialEq)]
pub struct MirrorIdentity {
    pub name: String,
    pub namespace: String,
    pub uid: String,
    pub names: WorkerNames,
    owner_reference: OwnerReference,
}

impl MirrorIdentity {
    /// The identity of a stored mirror; one without name, namespace or uid was not read from the API server.
    pub fn of(mirror: &KafkaMirror) -> Result<Self, Error> {
        let key = |value: Option<&String>, key| value.cloned().ok_or(Error::MissingObjectKey(key));
        let name = key(mirror.metadata.name.as_ref(), "metadata.name")?;
        let namespace = key(mirror.metadata.namespace.as_ref(), "metadata.namespace")?;
        let uid = key(mirror.metadata.uid.as_ref(), "metadata.uid")?;
        let owner_reference = mirror
            .controller_owner_ref(&())
            .ok_or(Error::MissingObjectKey("metadata.uid"))?;
        Ok(Self {
            names: WorkerNames::new(&name),
            name,
            namespace,
            uid,
            owner_reference,
        })
    }

    /// Metadata of a derived object: name, namespace, labels, and the owner reference that makes Kubernetes
    /// delete it with the mirror.
    pub fn metadata(&self, name: &str) -> ObjectMeta {
        ObjectMeta {
            name: Some(name.to_string()),
            namespace: Some(self.namespace.clone()),
            labels: Some(object_labels(&self.name)),
            owner_references: Some(vec![self.owner_reference.clone()]),
            ..ObjectMeta::default()
        }
    }

    /// `app.kubernetes.io/...=...` selector of the worker pods, as the status shows it.
    pub fn selector(&self) -> String {
        selector_string(&self.name)
    }
}

/// A stored mirror with its identity whose spec passed the check: what the rest of the pipeline works on.
#[derive(Debug, Clone)]
pub struct ValidatedMirror {
    pub resource: Arc<KafkaMirror>,
    pub identity: MirrorIdentity,
}

impl ValidatedMirror {
    pub fn spec(&self) -> &KafkaMirrorSpec {
        &self.resource.spec
    }

    /// The status as the last reconcile wrote it.
    pub fn previous_status(&self) -> KafkaMirrorStatus {
        self.resource.status.clone().unwrap_or_default()
    }

    /// What Events are published on.
    pub fn object_ref(&self) -> ObjectReference {
        self.resource.object_ref(&())
    }

    /// Refuses the mirror for a problem found after the spec check (a missing Secret, a plan that cannot be
    /// made).
    pub fn refuse(&self, problem: Problem) -> Refusal {
        Refusal {
            resource: self.resource.clone(),
            identity: self.identity.clone(),
            problem,
        }
    }
}

/// A stored mirror whose spec cannot work, and why: nothing is applied until it is fixed.
#[derive(Debug, Clone)]
pub struct Refusal {
    pub resource: Arc<KafkaMirror>,
    pub identity: MirrorIdentity,
    pub problem: Problem,
}

/// The mirror with its identity, or its [`Refusal`] when its spec cannot work. `Err` of the outer result only
/// for an object that was not read from the API server.
pub fn validate(resource: Arc<KafkaMirror>) -> Result<Result<ValidatedMirror, Refusal>, Error> {
    let identity = MirrorIdentity::of(&resource)?;
    Ok(match check_spec(&resource.spec) {
        Ok(()) => Ok(ValidatedMirror { resource, identity }),
        Err(problem) => Err(Refusal {
            resource,
            identity,
            problem,
        }),
    })
}

/// The spec check alone: what the schema cannot say (regular expressions, names, combinations of fields).
pub fn check_spec(spec: &KafkaMirrorSpec) -> Result<(), Problem> {
    kafka_mirror_crds::validate(spec)
        .map(drop)
        .map_err(|errors| Problem::from_field_errors(Reason::InvalidSpec, &errors))
}
