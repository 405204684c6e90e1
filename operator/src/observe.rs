//! The pipeline's second step: everything the reconcile reads. The Secrets the spec names (through the API
//! server, so the operator reaches Kafka with the same client settings as the workers), the worker plan they
//! complete, the migration record, and the answers of both Kafka clusters (blocking, off the async runtime).
//! A missing Secret or key is the user's to fix: a [`Refusal`], not an error.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kafka_mirror_clients::MirrorPlan;
use kafka_mirror_clients::secrets::Secrets;
use kafka_mirror_crds::{FieldError, KafkaMirror, KafkaMirrorSpec, Mode};
use kube::{Api, Client};

use crate::kafka_view::{self, KafkaView};
use crate::migration::MigrationRecord;
use crate::observed::Problem;
use crate::reason::Reason;
use crate::secret_values;
use crate::validate::{Refusal, ValidatedMirror};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("reading Secret {name}")]
    ReadSecret { name: String, source: kube::Error },

    #[error("reading ConfigMap {name}")]
    ReadMigrationRecord { name: String, source: kube::Error },

    /// The blocking task that talks to Kafka panicked or was cancelled.
    #[error("measuring lag")]
    KafkaTask { source: tokio::task::JoinError },
}

/// What the reconcile read.
#[derive(Debug)]
pub struct Observation {
    pub kafka: KafkaView,
    /// `mode: migrate` only: the end offsets recorded at the start, if recorded and readable.
    pub migration_record: Option<MigrationRecord>,
}

pub async fn observe(
    client: &Client,
    mirror: &ValidatedMirror,
) -> Result<Result<Observation, Refusal>, Error> {
    let namespace = &mirror.identity.namespace;
    let secrets = read_secrets(&Api::namespaced(client.clone(), namespace), mirror.spec()).await?;
    let plan = match build_plan(&mirror.resource, secrets) {
        Ok(plan) => plan,
        Err(problem) => return Ok(Err(mirror.refuse(problem))),
    };
    let migration_record = if mirror.spec().mode == Mode::Migrate {
        read_migration_record(
            &Api::namespaced(client.clone(), namespace),
            &mirror.identity.names.migration_record,
        )
        .await?
    } else {
        None
    };
    let kafka = tokio::task::spawn_blocking(move || kafka_view::ask(&plan))
        .await
        .map_err(|source| Error::KafkaTask { source })?;
    Ok(Ok(Observation {
        kafka,
        migration_record,
    }))
}

/// The worker plan of a checked spec with the Secrets [`secret_values::resolve`] resolved (pure): a Secret or
/// key that is missing is `Reason::SecretMissing`.
pub fn build_plan(
    mirror: &KafkaMirror,
    secrets: Result<Secrets, Vec<FieldError>>,
) -> Result<MirrorPlan, Problem> {
    let secrets =
        secrets.map_err(|errors| Problem::from_field_errors(Reason::SecretMissing, &errors))?;
    // The plan's own refusal is a message for the status: its text is what the user reads.
    MirrorPlan::from_resource(mirror.clone(), &secrets).map_err(|e| Problem {
        reason: Reason::InvalidSpec,
        message: e.to_string(),
    })
}

/// `Ok(secrets)` when every reference resolves, `Err(field errors)` when some Secret or key is missing. Each
/// Secret is read once, however many references name it.
async fn read_secrets(
    api: &Api<Secret>,
    spec: &KafkaMirrorSpec,
) -> Result<Result<Secrets, Vec<FieldError>>, Error> {
    let mut found: BTreeMap<String, Option<Secret>> = BTreeMap::new();
    for (_, reference) in spec.secret_refs() {
        if !found.contains_key(&reference.name) {
            let secret =
                api.get_opt(&reference.name)
                    .await
                    .map_err(|source| Error::ReadSecret {
                        name: reference.name.clone(),
                        source,
                    })?;
            found.insert(reference.name.clone(), secret);
        }
    }
    Ok(secret_values::resolve(
        spec,
        api.namespace().unwrap_or_default(),
        &found,
    ))
}

/// The recorded end offsets of a migration, if recorded. A damaged record is recorded anew.
async fn read_migration_record(
    api: &Api<ConfigMap>,
    name: &str,
) -> Result<Option<MigrationRecord>, Error> {
    let config_map = api
        .get_opt(name)
        .await
        .map_err(|source| Error::ReadMigrationRecord {
            name: name.to_string(),
            source,
        })?;
    Ok(
        config_map.and_then(|cm| match crate::migration::from_config_map(&cm) {
            Ok(record) => Some(record),
            Err(why) => {
                tracing::warn!(%why, "migration record unreadable, recording the end offsets again");
                None
            }
        }),
    )
}
