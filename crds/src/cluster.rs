//! How to reach a Kafka cluster: bootstrap servers, name resolution, TLS, SASL, client pass-through config.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::KubeSchema;
use serde::{Deserialize, Serialize};

/// The cluster records are read from.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SourceCluster {
    /// Consumer group the workers join on the source (MirrorMaker's `group.id`). Its committed offsets are the
    /// mirror's position. Defaults to `kafka-mirror.<namespace>.<name>` for a resource, or
    /// `kafka-mirror.<name>` for a document run with `mirror-worker --config`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 249), regex(pattern = r"^[a-zA-Z0-9._-]+$"))]
    pub group_id: Option<String>,

    #[serde(flatten)]
    pub connection: ClusterConnection,
}

/// The cluster records are written to.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TargetCluster {
    #[serde(flatten)]
    pub connection: ClusterConnection,
}

/// Connection settings shared by source and target.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ClusterConnection {
    /// Comma-separated `host:port` list of brokers to bootstrap from, e.g. `10.23.0.11:9092,10.23.0.7:9092`
    /// (MirrorMaker's `bootstrap.servers`).
    // One anchored expression over the whole string: the API server estimates a CEL rule's cost before it
    // accepts a CRD, and `split(...).all(s, s.trim().matches(...))` on a 4096-character string was estimated
    // 18.8 times over the budget (the CRD was refused at install). The same list, read as one regex, is linear.
    #[x_kube(validation = Rule::new("self.matches('^\\\\s*[^:,\\\\s]+:[0-9]{1,5}\\\\s*(,\\\\s*[^:,\\\\s]+:[0-9]{1,5}\\\\s*)*$')").message("bootstrapServers must be a comma-separated list of host:port"))]
    #[schemars(length(min = 1, max = 4096))]
    pub bootstrap_servers: String,

    /// Broker host names mapped to IP addresses, for brokers that advertise names no DNS server resolves
    /// (HDInsight in a peered VNet without a custom DNS server). Every Kafka client of the mirror, the workers'
    /// and the operator's, resolves these names through them; the worker pods' `/etc/hosts` gets them too.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub host_aliases: Vec<HostAlias>,

    /// TLS to the brokers. Absent: plaintext.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<Tls>,

    /// SASL authentication. Absent: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authentication: Option<Authentication>,

    /// librdkafka client properties passed through as they are (`compression.type: none`,
    /// `fetch.max.bytes: 52428800`, ...). Values are strings or integers. Keys that other fields own or that
    /// would weaken security (`bootstrap.servers`, `group.id`, `security.protocol`, `ssl.*`, `sasl.*`,
    /// `enable.idempotence`, `acks`, `enable.auto.commit`, ...) are refused with a message naming the field
    /// to use instead.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub config: BTreeMap<String, IntOrString>,
}

impl ClusterConnection {
    /// Every Secret key this connection reads, with the document path of the field that names it.
    pub fn secret_refs<'a>(&'a self, prefix: &str) -> Vec<(String, &'a SecretKeyRef)> {
        let mut refs = Vec::new();
        if let Some(tls) = &self.tls {
            let fields = [
                ("ca", &tls.ca),
                ("clientCertificate", &tls.client_certificate),
                ("clientKey", &tls.client_key),
            ];
            for (field, reference) in fields {
                if let Some(reference) = reference {
                    refs.push((format!("{prefix}.tls.{field}"), reference));
                }
            }
        }
        if let Some(auth) = &self.authentication {
            refs.push((format!("{prefix}.authentication.password"), &auth.password));
        }
        refs
    }
}

/// One `/etc/hosts` entry.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct HostAlias {
    /// IP address the host names resolve to.
    #[schemars(length(min = 1))]
    pub ip: String,
    /// Host names, e.g. `wn0-kafka.abc.internal.cloudapp.net`.
    #[schemars(length(min = 1))]
    pub hostnames: Vec<String>,
}

/// TLS settings. Certificates and keys come only from Secrets.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Tls {
    /// CA certificate(s) in PEM that sign the brokers' certificates. Absent: the system trust store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<SecretKeyRef>,
    /// Client certificate in PEM, for brokers that require mutual TLS. Needs `clientKey`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_certificate: Option<SecretKeyRef>,
    /// Private key in PEM of the client certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_key: Option<SecretKeyRef>,
}

/// SASL authentication. The password comes only from a Secret.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Authentication {
    /// SASL mechanism.
    pub mechanism: SaslMechanism,
    /// User name (for Azure Event Hubs: `$ConnectionString`).
    #[schemars(length(min = 1))]
    pub username: String,
    /// The password (for Azure Event Hubs: the connection string).
    pub password: SecretKeyRef,
}

/// Supported SASL mechanisms.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
pub enum SaslMechanism {
    /// SASL/PLAIN; use it over TLS only.
    #[serde(rename = "PLAIN")]
    Plain,
    /// SASL/SCRAM with SHA-256.
    #[serde(rename = "SCRAM-SHA-256")]
    ScramSha256,
    /// SASL/SCRAM with SHA-512.
    #[serde(rename = "SCRAM-SHA-512")]
    ScramSha512,
}

impl SaslMechanism {
    /// The name librdkafka's `sasl.mechanism` expects.
    pub fn as_librdkafka(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
            SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
        }
    }
}

/// A key of a Secret in the mirror's namespace. Outside Kubernetes, `mirror-worker` reads it from the
/// environment variable `KMIRROR_SECRET_<NAME>_<KEY>` (upper case, other characters as `_`) or from the file
/// `<secrets dir>/<name>/<key>`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    /// Name of the Secret.
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
    )]
    pub name: String,
    /// Key within the Secret.
    #[schemars(length(min = 1, max = 253), regex(pattern = r"^[-._a-zA-Z0-9]+$"))]
    pub key: String,
}
