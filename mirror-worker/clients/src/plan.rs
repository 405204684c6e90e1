//! A `KafkaMirror` document turned into what the engine runs: validated, defaults filled in, Secrets
//! resolved, client configurations built.

use std::path::Path;

use kafka_mirror_crds::{KafkaMirror, KafkaMirrorSpec, TopicFilter};

use crate::client_config::{self, KafkaClientConfig, Role};
use crate::secrets::Secrets;
use crate::{Error, Result};

pub struct MirrorPlan {
    /// `metadata.name` of the document.
    pub name: String,
    pub spec: KafkaMirrorSpec,
    pub filter: TopicFilter,
    pub group_id: String,
    /// Each carries its cluster section's `hostAliases`, which every client made from it resolves through.
    pub source_consumer: KafkaClientConfig,
    pub source_admin: KafkaClientConfig,
    pub target_producer: KafkaClientConfig,
    pub target_admin: KafkaClientConfig,
}

impl MirrorPlan {
    /// Reads and checks the document at `path`. Every error names the field at fault.
    pub fn load(path: &Path, secrets: &Secrets) -> Result<Self> {
        let yaml = std::fs::read_to_string(path).map_err(|source| Error::ReadDocument {
            path: path.to_path_buf(),
            source,
        })?;
        let mirror =
            kafka_mirror_crds::parse_document(&yaml).map_err(|source| Error::Document {
                path: path.to_path_buf(),
                source,
            })?;
        Self::from_resource(mirror, secrets)
    }

    pub fn from_resource(mirror: KafkaMirror, secrets: &Secrets) -> Result<Self> {
        let filter =
            kafka_mirror_crds::validate(&mirror.spec).map_err(|errors| Error::Document {
                path: "<resource>".into(),
                source: kafka_mirror_crds::DocumentError::Invalid(errors),
            })?;
        let name = mirror
            .metadata
            .name
            .clone()
            .unwrap_or_else(|| "unnamed".to_string());
        let namespace = mirror.metadata.namespace.clone();
        let spec = mirror.spec;
        let group_id = spec
            .source
            .group_id
            .clone()
            .unwrap_or_else(|| default_group_id(namespace.as_deref(), &name));
        let client_id = format!("kafka-mirror-{name}");
        let source = &spec.source.connection;
        let target = &spec.target.connection;
        Ok(Self {
            source_consumer: client_config::build(
                "spec.source",
                source,
                Role::SourceConsumer,
                &client_id,
                secrets,
            )?,
            source_admin: client_config::build(
                "spec.source",
                source,
                Role::Admin,
                &client_id,
                secrets,
            )?,
            target_producer: client_config::build(
                "spec.target",
                target,
                Role::TargetProducer,
                &client_id,
                secrets,
            )?,
            target_admin: client_config::build(
                "spec.target",
                target,
                Role::Admin,
                &client_id,
                secrets,
            )?,
            name,
            filter,
            group_id,
            spec,
        })
    }
}

/// The consumer group a mirror uses unless `spec.source.groupId` says otherwise.
pub fn default_group_id(namespace: Option<&str>, name: &str) -> String {
    match namespace {
        Some(ns) => format!("kafka-mirror.{ns}.{name}"),
        None => format!("kafka-mirror.{name}"),
    }
}
