//! `KafkaMirror` documents as the tests and the benchmark hand them to the worker, built with typed setters
//! and written as YAML. Only what a test sets is written, so a document says what its test is about; the
//! cluster sections use the CRD's own types (`Tls`, `Authentication`, `HostAlias`, `Mode`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use kafka_mirror_crds::cluster::{Authentication, HostAlias, SaslMechanism, SecretKeyRef, Tls};
use kafka_mirror_crds::{Delivery, Mode, Partitioning};
use serde::Serialize;

/// A `KafkaMirror` named `name` (its consumer group is [`MirrorDocument::group_id`]).
#[derive(Serialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub struct MirrorDocument {
    api_version: &'static str,
    kind: &'static str,
    metadata: Metadata,
    spec: Spec,
}

#[derive(Serialize, Clone, Debug)]
struct Metadata {
    name: String,
}

#[derive(Serialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
struct Spec {
    source: Connection,
    target: Connection,
    topics: Topics,
    #[serde(skip_serializing_if = "Option::is_none")]
    mode: Option<Mode>,
    #[serde(skip_serializing_if = "Option::is_none")]
    delivery: Option<Delivery>,
    #[serde(skip_serializing_if = "Option::is_none")]
    num_streams: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    paused: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mark_origin: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    consumer_groups: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    partitioning: Option<Partitioning>,
    #[serde(skip_serializing_if = "Option::is_none")]
    replicas: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    template: Option<serde_json::Value>,
}

#[derive(Serialize, Clone, Debug, Default)]
#[serde(rename_all = "camelCase")]
struct Topics {
    include: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rename: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    create: Option<Create>,
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_interval_seconds: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sync: Option<serde_json::Value>,
}

#[derive(Serialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
struct Create {
    replication_factor: i32,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    config: BTreeMap<String, String>,
}

/// `spec.source` or `spec.target`: how the worker reaches one cluster.
#[derive(Serialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub struct Connection {
    bootstrap_servers: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    host_aliases: Vec<HostAlias>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tls: Option<Tls>,
    #[serde(skip_serializing_if = "Option::is_none")]
    authentication: Option<Authentication>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    config: BTreeMap<String, ConfigValue>,
}

/// A librdkafka property's value in `config`: the CRD takes integers and strings.
#[derive(Serialize, Clone, Debug, PartialEq)]
#[serde(untagged)]
pub enum ConfigValue {
    Int(i64),
    String(String),
}

impl From<i32> for ConfigValue {
    fn from(value: i32) -> ConfigValue {
        ConfigValue::Int(value.into())
    }
}

impl From<&str> for ConfigValue {
    fn from(value: &str) -> ConfigValue {
        ConfigValue::String(value.to_string())
    }
}

/// A key of a Secret, for the fields that name one.
pub fn secret(name: &str, key: &str) -> SecretKeyRef {
    SecretKeyRef {
        name: name.to_string(),
        key: key.to_string(),
    }
}

impl Connection {
    /// Brokers at `bootstrap` (`host:port,...`), plaintext, no further settings.
    pub fn new(bootstrap: &str) -> Connection {
        Connection {
            bootstrap_servers: bootstrap.to_string(),
            host_aliases: Vec::new(),
            tls: None,
            authentication: None,
            config: BTreeMap::new(),
        }
    }

    /// A `config` entry (a librdkafka property passed through).
    pub fn config(mut self, key: &str, value: impl Into<ConfigValue>) -> Connection {
        self.config.insert(key.to_string(), value.into());
        self
    }

    /// `config` entries whose values are strings.
    pub fn configs(self, entries: &[(&str, &str)]) -> Connection {
        entries.iter().fold(self, |connection, (key, value)| {
            connection.config(key, *value)
        })
    }

    /// `tls:` trusting the CA in `ca`; with a client certificate and key when `client` gives them.
    pub fn tls(
        mut self,
        ca: SecretKeyRef,
        client: Option<(SecretKeyRef, SecretKeyRef)>,
    ) -> Connection {
        let (client_certificate, client_key) = client.unzip();
        self.tls = Some(Tls {
            ca: Some(ca),
            client_certificate,
            client_key,
        });
        self
    }

    /// `authentication:` with `mechanism`, `username` and the password in `password`.
    pub fn authentication(
        mut self,
        mechanism: SaslMechanism,
        username: &str,
        password: SecretKeyRef,
    ) -> Connection {
        self.authentication = Some(Authentication {
            mechanism,
            username: username.to_string(),
            password,
        });
        self
    }

    /// A `hostAliases` entry: `hostnames` resolve to `ip`.
    pub fn host_alias(mut self, ip: &str, hostnames: &[&str]) -> Connection {
        self.host_aliases.push(HostAlias {
            ip: ip.to_string(),
            hostnames: hostnames.iter().map(|h| h.to_string()).collect(),
        });
        self
    }
}

impl MirrorDocument {
    /// A mirror named `name` from `source` to `target`, of no topic yet (see [`MirrorDocument::include`]).
    pub fn new(name: &str, source: Connection, target: Connection) -> MirrorDocument {
        MirrorDocument {
            api_version: "kafkamirror.io/v1alpha1",
            kind: "KafkaMirror",
            metadata: Metadata {
                name: name.to_string(),
            },
            spec: Spec {
                source,
                target,
                topics: Topics::default(),
                mode: None,
                delivery: None,
                num_streams: None,
                paused: None,
                mark_origin: None,
                consumer_groups: None,
                partitioning: None,
                replicas: None,
                template: None,
            },
        }
    }

    /// The mirror's name.
    pub fn name(&self) -> &str {
        &self.metadata.name
    }

    /// The mirror's consumer group on the source (the default: no `groupId` in the document, no namespace).
    pub fn group_id(&self) -> String {
        kafka_mirror_clients::plan::default_group_id(None, self.name())
    }

    /// The mirror's consumer group when the operator runs it in `namespace` (no `groupId` in the document).
    pub fn group_id_in(&self, namespace: &str) -> String {
        kafka_mirror_clients::plan::default_group_id(Some(namespace), self.name())
    }

    /// A `spec.source.config` entry.
    pub fn source_config(mut self, key: &str, value: impl Into<ConfigValue>) -> MirrorDocument {
        self.spec.source = self.spec.source.config(key, value);
        self
    }

    /// A `spec.target.config` entry.
    pub fn target_config(mut self, key: &str, value: impl Into<ConfigValue>) -> MirrorDocument {
        self.spec.target = self.spec.target.config(key, value);
        self
    }

    /// A `spec.topics.include` pattern (a regular expression matched against the whole topic name).
    pub fn include(mut self, pattern: &str) -> MirrorDocument {
        self.spec.topics.include.push(pattern.to_string());
        self
    }

    /// `spec.topics.rename`, e.g. `mirror.{topic}`.
    pub fn rename(mut self, rename: &str) -> MirrorDocument {
        self.spec.topics.rename = Some(rename.to_string());
        self
    }

    /// `spec.topics.create` with `replicationFactor` and topic `config` for created target topics.
    pub fn create(mut self, replication_factor: i32, config: &[(&str, &str)]) -> MirrorDocument {
        self.spec.topics.create = Some(Create {
            replication_factor,
            config: config
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        });
        self
    }

    /// `spec.topics.refreshIntervalSeconds`.
    pub fn refresh_interval_seconds(mut self, seconds: i32) -> MirrorDocument {
        self.spec.topics.refresh_interval_seconds = Some(seconds);
        self
    }

    /// `spec.topics.sync`, as JSON.
    pub fn topics_sync(mut self, sync: serde_json::Value) -> MirrorDocument {
        self.spec.topics.sync = Some(sync);
        self
    }

    /// `spec.partitioning`.
    pub fn partitioning(mut self, partitioning: Partitioning) -> MirrorDocument {
        self.spec.partitioning = Some(partitioning);
        self
    }

    /// `spec.mode`.
    pub fn mode(mut self, mode: Mode) -> MirrorDocument {
        self.spec.mode = Some(mode);
        self
    }

    /// `spec.delivery`.
    pub fn delivery(mut self, delivery: Delivery) -> MirrorDocument {
        self.spec.delivery = Some(delivery);
        self
    }

    /// `spec.numStreams`.
    pub fn num_streams(mut self, streams: i32) -> MirrorDocument {
        self.spec.num_streams = Some(streams);
        self
    }

    /// `spec.replicas`: how many worker pods the operator runs.
    pub fn replicas(mut self, replicas: i32) -> MirrorDocument {
        self.spec.replicas = Some(replicas);
        self
    }

    /// `spec.template`: the worker pods' settings (image, resources, scheduling), as JSON.
    pub fn template(mut self, template: serde_json::Value) -> MirrorDocument {
        self.spec.template = Some(template);
        self
    }

    /// `spec.paused`.
    pub fn paused(mut self, paused: bool) -> MirrorDocument {
        self.spec.paused = Some(paused);
        self
    }

    /// `spec.markOrigin`.
    pub fn mark_origin(mut self, mark: bool) -> MirrorDocument {
        self.spec.mark_origin = Some(mark);
        self
    }

    /// `spec.consumerGroups`: the groups `include` matches follow, synced every `interval_seconds`.
    pub fn consumer_groups(mut self, include: &[&str], interval_seconds: i32) -> MirrorDocument {
        self.spec.consumer_groups = Some(serde_json::json!({
            "include": include,
            "intervalSeconds": interval_seconds,
        }));
        self
    }

    /// The document as YAML.
    pub fn to_yaml(&self) -> String {
        yaml_serde::to_string(self).expect("a KafkaMirror document serializes")
    }

    /// Writes the document to `dir/<name>.yaml` and returns that path.
    pub fn write_in(&self, dir: &Path) -> PathBuf {
        let path = dir.join(format!("{}.yaml", self.name()));
        std::fs::write(&path, self.to_yaml())
            .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        path
    }
}
