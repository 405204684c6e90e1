//! librdkafka client configurations built from a `KafkaMirror`'s cluster sections.
//!
//! Order matters: our defaults first, then the user's pass-through `config`, then the settings the mirror's
//! guarantees depend on (which validation already refuses in `config`).
//!
//! A configuration travels with its cluster section's `hostAliases` ([`KafkaClientConfig`]), and every client
//! made from it resolves the brokers' names through them.

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kafka_mirror_crds::cluster::ClusterConnection;
use rdkafka::ClientConfig;
use rdkafka::client::ClientContext;
use rdkafka::config::FromClientConfigAndContext;
use rdkafka::error::{KafkaError, KafkaResult};

use crate::host_aliases::{HostAliases, ResolvingContext};
use crate::secrets::Secrets;
use crate::{Error, Result};

/// librdkafka settings for the clients of one cluster, and the `hostAliases` they resolve broker names
/// through. Clients are made with [`create_with_context`](Self::create_with_context) or
/// [`create`](Self::create), never from the bare [`ClientConfig`], so none misses the aliases.
#[derive(Clone, Default)]
pub struct KafkaClientConfig {
    config: ClientConfig,
    host_aliases: HostAliases,
}

/// Settings without aliases (a cluster whose section has none, tests).
impl From<ClientConfig> for KafkaClientConfig {
    fn from(config: ClientConfig) -> Self {
        Self::new(config, HostAliases::default())
    }
}

impl KafkaClientConfig {
    pub fn new(config: ClientConfig, host_aliases: HostAliases) -> Self {
        Self {
            config,
            host_aliases,
        }
    }

    /// The value of librdkafka setting `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.config.get(key)
    }

    /// Sets librdkafka setting `key`.
    pub fn set(&mut self, key: impl Into<String>, value: impl Into<String>) -> &mut Self {
        self.config.set(key, value);
        self
    }

    /// The librdkafka settings, to read. A client made from them directly would not resolve the aliases.
    pub fn client_config(&self) -> &ClientConfig {
        &self.config
    }

    /// The aliases the clients resolve broker names through; what a client context answers librdkafka's
    /// resolve callback from (see [`crate::host_aliases`]).
    pub fn host_aliases(&self) -> &HostAliases {
        &self.host_aliases
    }

    /// A client with `context`, which must answer librdkafka's resolve callback from
    /// [`host_aliases`](Self::host_aliases) (`ENABLE_RESOLVE_BROKER`, `resolve_broker`); one that does not is
    /// refused, so a client cannot silently ignore the document's `hostAliases`.
    pub fn create_with_context<C, T>(&self, context: C) -> KafkaResult<T>
    where
        C: ClientContext,
        T: FromClientConfigAndContext<C>,
    {
        if !self.host_aliases.honoured_by(&context) {
            return Err(KafkaError::ClientCreation(format!(
                "the client context {} does not resolve broker names through this cluster's hostAliases",
                std::any::type_name::<C>()
            )));
        }
        self.config.create_with_context(context)
    }

    /// A client that needs no callbacks of its own ([`ResolvingContext`]: librdkafka's defaults, the aliases).
    pub fn create<T>(&self) -> KafkaResult<T>
    where
        T: FromClientConfigAndContext<ResolvingContext>,
    {
        self.create_with_context(ResolvingContext(self.host_aliases.clone()))
    }
}

/// Defaults for the source consumer, overridable through `spec.source.config`. The sizes keep a worker with
/// one stream under 64 MiB at full speed, for 100-byte records too (BENCHMARKS.md); the README's tuning guide
/// says when to change them.
const CONSUMER_DEFAULTS: &[(&str, &str)] = &[
    // A new mirror copies the topic from its beginning, as the guide's `--from-beginning` check expects.
    ("auto.offset.reset", "earliest"),
    // Bounds prefetched records per consumer: backpressure instead of an unbounded queue. It counts record
    // bytes only; librdkafka's own per-record overhead comes on top, which is what sets the worker's memory at
    // 100-byte records (8 MiB: 74 MiB RSS; 4 MiB: under 64; 1 KB records lose about 4% of throughput).
    ("queued.max.messages.kbytes", "4096"),
    // The same bound in records: librdkafka stops fetching while the stream's queue holds this many (both
    // bounds count the whole queue of the stream, which every partition's fetch queue forwards to). Its
    // default, 100,000, never binds before the 4 MiB above, which at 100-byte records is about 27,000 records
    // plus librdkafka's overhead for each; 20,000 gave a peak RSS of 69.8 / 69.4 MiB instead of 78.9 / 86.7 at
    // 64 partitions on Apache Kafka, at the same CPU per GB and no lower throughput (benchmark, 100-byte values,
    // back to back). At 1 KB records the byte bound is reached first (about 4,000 records), so nothing changes.
    ("queued.min.messages", "20000"),
    // Bounds one fetch response (librdkafka's default is 50 MB, more than the whole prefetch bound).
    ("fetch.max.bytes", "4194304"),
    // When the prefetch bound is reached, librdkafka waits this long before fetching the partition again. Its
    // default of 1 s stalled the mirror whenever the target was slower than the source: 32 MB/s instead of
    // 230 MB/s in the benchmark, and a second of latency.
    ("fetch.queue.backoff.ms", "10"),
    // Per-partition lag for /metrics comes from the consumer's statistics.
    ("statistics.interval.ms", "5000"),
];

/// Defaults for the target producer, overridable through `spec.target.config`.
const PRODUCER_DEFAULTS: &[(&str, &str)] = &[
    ("linger.ms", "5"),
    // Bounds records waiting for the target: a full queue stops the consumer (backpressure). 8 MiB, not 16:
    // with 1 KB records the queue is full whenever the target is the slower side, so this bound is most of the
    // worker's memory; 16 MiB gave a peak RSS of 73-74 MiB at 64 partitions on Apache Kafka, 8 MiB 60-62 MiB,
    // at the same CPU per GB (benchmark, 1000-byte values, 2 rounds each, back to back). 8 MiB still holds
    // about 50 ms of the produce-alone rate of 1 KB records, several round trips of librdkafka's 5 in-flight
    // produce requests (one partition each).
    ("queue.buffering.max.kbytes", "8192"),
    // The record count bound matters for small records, where librdkafka's per-record overhead outweighs
    // the bytes; 20,000 is about 40 ms at the 100-byte rate of the last benchmark run (509k records/s).
    ("queue.buffering.max.messages", "20000"),
];

/// The role a client plays, deciding its defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    SourceConsumer,
    TargetProducer,
    /// Metadata, watermarks and topic creation.
    Admin,
}

/// Connection settings (servers, TLS, SASL, `hostAliases`) plus defaults and pass-through config for `role`.
/// `prefix` is the document path of the cluster section, for error messages.
pub fn build(
    prefix: &str,
    connection: &ClusterConnection,
    role: Role,
    client_id: &str,
    secrets: &Secrets,
) -> Result<KafkaClientConfig> {
    let host_aliases = HostAliases::from_connection(prefix, connection).map_err(Error::Field)?;
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &connection.bootstrap_servers)
        .set("client.id", client_id);
    let defaults = match role {
        Role::SourceConsumer => CONSUMER_DEFAULTS,
        Role::TargetProducer => PRODUCER_DEFAULTS,
        Role::Admin => &[],
    };
    for (key, value) in defaults {
        config.set(*key, *value);
    }
    if role != Role::Admin {
        for (key, value) in &connection.config {
            let value = match value {
                IntOrString::Int(i) => i.to_string(),
                IntOrString::String(s) => s.clone(),
            };
            config.set(key, value);
        }
    }
    apply_security(prefix, connection, secrets, &mut config)?;
    Ok(KafkaClientConfig::new(config, host_aliases))
}

fn apply_security(
    prefix: &str,
    connection: &ClusterConnection,
    secrets: &Secrets,
    config: &mut ClientConfig,
) -> Result<()> {
    let protocol = match (&connection.tls, &connection.authentication) {
        (None, None) => "plaintext",
        (Some(_), None) => "ssl",
        (None, Some(_)) => "sasl_plaintext",
        (Some(_), Some(_)) => "sasl_ssl",
    };
    config.set("security.protocol", protocol);
    if let Some(tls) = &connection.tls {
        if let Some(ca) = &tls.ca {
            config.set(
                "ssl.ca.pem",
                secrets.resolve(&format!("{prefix}.tls.ca"), ca)?,
            );
        }
        if let Some(cert) = &tls.client_certificate {
            config.set(
                "ssl.certificate.pem",
                secrets.resolve(&format!("{prefix}.tls.clientCertificate"), cert)?,
            );
        }
        if let Some(key) = &tls.client_key {
            config.set(
                "ssl.key.pem",
                secrets.resolve(&format!("{prefix}.tls.clientKey"), key)?,
            );
        }
    }
    if let Some(auth) = &connection.authentication {
        config
            .set("sasl.mechanism", auth.mechanism.as_librdkafka())
            .set("sasl.username", &auth.username)
            .set(
                "sasl.password",
                secrets.resolve(&format!("{prefix}.authentication.password"), &auth.password)?,
            );
    }
    Ok(())
}
