//! A metadata request that, when it fails, says why in librdkafka's words and names the field to check.
//!
//! A failed request alone only says `BrokerTransportFailure`: the reason (`SSL handshake failed: ...
//! certificate verify failed`, `SASL authentication error: ...`, `Connection refused`) travels as an error
//! event on the client's main queue, which admin clients and plain metadata lookups never serve.
//! `ReasonCollector` is the client context that keeps them; a client with it serves its queue after a failure
//! ([`BrokerProbe`] is a producer, whose `poll` does; `GroupPositions` a consumer) and `ProbeError::new`
//! explains the failure.

use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::ConsumerContext;
use rdkafka::error::KafkaError;
use rdkafka::metadata::Metadata;
use rdkafka::producer::{BaseProducer, DeliveryResult, Producer, ProducerContext};

use crate::client_config::KafkaClientConfig;
use crate::host_aliases::HostAliases;

/// At most this many distinct reasons are kept: a broker repeats the same failure on every retry.
const MAX_REASONS: usize = 4;

/// The client context of a probing client: remembers what librdkafka reported while a request was under way,
/// and resolves broker names through its cluster's `hostAliases`.
#[derive(Default)]
pub(crate) struct ReasonCollector {
    reasons: Mutex<Vec<String>>,
    host_aliases: HostAliases,
}

impl ReasonCollector {
    pub(crate) fn new(host_aliases: HostAliases) -> Self {
        Self {
            reasons: Mutex::default(),
            host_aliases,
        }
    }

    fn remember(&self, reason: &str) {
        let mut reasons = self.reasons.lock().unwrap_or_else(|p| p.into_inner());
        // librdkafka prefixes the broker and thread; the rest is what the user needs.
        let reason = reason.rsplit_once("]: ").map_or(reason, |(_, r)| r).trim();
        if !reason.is_empty() && reasons.len() < MAX_REASONS && !reasons.iter().any(|r| r == reason)
        {
            reasons.push(reason.to_string());
        }
    }

    /// The reasons remembered since the last call.
    pub(crate) fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.reasons.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

impl ClientContext for ReasonCollector {
    const ENABLE_RESOLVE_BROKER: bool = true;

    fn resolve_broker(&self, host: &str) -> Option<IpAddr> {
        self.host_aliases.resolve(host)
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.remember(reason);
        tracing::debug!(%error, reason, "librdkafka reported an error");
    }

    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        if matches!(
            level,
            RDKafkaLogLevel::Emerg
                | RDKafkaLogLevel::Alert
                | RDKafkaLogLevel::Critical
                | RDKafkaLogLevel::Error
                | RDKafkaLogLevel::Warning
        ) {
            self.remember(message);
        }
        tracing::debug!(target: "librdkafka", "librdkafka: {fac} {message}");
    }
}

impl ConsumerContext for ReasonCollector {}

impl ProducerContext for ReasonCollector {
    type DeliveryOpaque = ();
    fn delivery(&self, _: &DeliveryResult<'_>, _: Self::DeliveryOpaque) {}
}

/// A client for metadata requests to one cluster, `prefix` being the document path of its section
/// (`spec.source`), for the hint in its errors.
pub struct BrokerProbe {
    client: BaseProducer<ReasonCollector>,
    prefix: String,
}

impl BrokerProbe {
    pub fn new(config: &KafkaClientConfig, prefix: &str) -> Result<Self, KafkaError> {
        Ok(Self {
            client: config
                .create_with_context(ReasonCollector::new(config.host_aliases().clone()))?,
            prefix: prefix.to_string(),
        })
    }

    /// The `hostAliases` this probe resolves broker names through.
    pub fn host_aliases(&self) -> &HostAliases {
        &self.client.context().host_aliases
    }

    /// Metadata of every topic (`None`) or one, or what went wrong with librdkafka's reasons and a hint.
    pub fn metadata(&self, topic: Option<&str>, timeout: Duration) -> Result<Metadata, ProbeError> {
        self.client.context().take();
        match self.client.client().fetch_metadata(topic, timeout) {
            Ok(metadata) => Ok(metadata),
            Err(error) => {
                // Serve the events queued meanwhile: this is where the reasons arrive.
                self.client.poll(Duration::ZERO);
                Err(ProbeError::new(&self.prefix, error, self.client.context()))
            }
        }
    }

    /// The cluster's id, `None` when it reports none (brokers before Kafka 0.10.1), or why it could not be
    /// asked. The metadata request first, for its explained errors: librdkafka's own call says only "none"
    /// when the cluster does not answer.
    pub fn cluster_id(&self, timeout: Duration) -> Result<Option<String>, ProbeError> {
        self.metadata(None, timeout)?;
        Ok(self.client.client().fetch_cluster_id(timeout))
    }
}

/// A failed request: librdkafka's error, and the message that explains it.
#[derive(Debug)]
pub struct ProbeError {
    pub error: KafkaError,
    pub explained: String,
}

impl ProbeError {
    /// `error` explained with what `reasons` remembered (their client's queue served already) and the field
    /// of the cluster section `prefix` most likely at fault.
    pub(crate) fn new(prefix: &str, error: KafkaError, reasons: &ReasonCollector) -> Self {
        let explained = explain(prefix, &error, &reasons.take());
        Self { error, explained }
    }
}

impl std::fmt::Display for ProbeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.explained)
    }
}

impl std::error::Error for ProbeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

/// `error`, then librdkafka's reasons, then the field most likely at fault.
pub fn explain(prefix: &str, error: &KafkaError, reasons: &[String]) -> String {
    if reasons.is_empty() {
        return error.to_string();
    }
    // Judged on what happened, not on the broker's name: `sasl_ssl://...` says nothing about TLS failing.
    let all = reasons
        .iter()
        .map(|r| cause(r))
        .collect::<Vec<_>>()
        .join("; ")
        .to_ascii_lowercase();
    let hint = if all.contains("failed to resolve") {
        // A bootstrap server with a typo, or (once bootstrapping by IP worked) a name the brokers advertise that
        // no DNS server here knows: HDInsight's worker-node FQDNs.
        format!(
            "; a broker host name does not resolve on this machine: check {prefix}.bootstrapServers, and for names \
             the brokers advertise that no DNS server here knows, map each to its broker's IP address in \
             {prefix}.hostAliases (or have the brokers advertise IP addresses)"
        )
    } else if CLIENT_CERTIFICATE_REFUSED.iter().any(|r| all.contains(r)) {
        format!(
            "; the brokers require a client certificate they trust (ssl.client.auth=required): check \
             {prefix}.tls.clientCertificate and {prefix}.tls.clientKey (a certificate signed by a CA the brokers \
             trust, and its key)"
        )
    } else if all.contains("certificate") || all.contains("ssl") || all.contains("tls") {
        format!(
            "; check {prefix}.tls.ca (the CA that signed the brokers' certificates) and that the certificates \
             name the hosts in {prefix}.bootstrapServers"
        )
    } else if all.contains("sasl") || all.contains("authentication") {
        format!("; check {prefix}.authentication (mechanism, username and the password Secret)")
    } else if all.contains("connection refused")
        || all.contains("resolve")
        || all.contains("timed out")
    {
        format!(
            "; check {prefix}.bootstrapServers and the network path to it (VNet peering, firewall, hostAliases)"
        )
    } else {
        String::new()
    };
    format!("{error} (librdkafka: {}){hint}", reasons.join("; "))
}

/// What OpenSSL and librdkafka say when the broker refused the client's certificate, or its absence: an alert
/// the broker sent (Kafka's `bad_certificate` for a missing or untrusted one), or librdkafka declining to send a
/// certificate the broker's CAs did not sign.
const CLIENT_CERTIFICATE_REFUSED: &[&str] = &[
    "alert bad certificate",
    "alert certificate required",
    "alert unknown ca",
    "alert certificate unknown",
    "not sending any client certificates",
];

/// A reason without the broker name librdkafka starts it with (`sasl_ssl://10.0.0.1:9093/1: ...`).
fn cause(reason: &str) -> &str {
    match reason.split_once(": ") {
        Some((broker, rest)) if !broker.contains(' ') && broker.contains('/') => rest,
        _ => reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::error::RDKafkaErrorCode;

    fn failure() -> KafkaError {
        KafkaError::MetadataFetch(RDKafkaErrorCode::BrokerTransportFailure)
    }

    #[test]
    fn a_certificate_failure_points_at_the_tls_fields() {
        let reasons = [
            "ssl://127.0.0.1:9093/bootstrap: SSL handshake failed: certificate verify failed"
                .into(),
        ];
        let message = explain("spec.source", &failure(), &reasons);
        assert!(message.contains("certificate verify failed"), "{message}");
        assert!(message.contains("check spec.source.tls.ca"), "{message}");
    }

    #[test]
    fn an_authentication_failure_points_at_the_authentication_fields() {
        let reasons =
            ["SASL authentication error: Authentication failed during authentication".into()];
        let message = explain("spec.target", &failure(), &reasons);
        assert!(
            message.contains("check spec.target.authentication"),
            "{message}"
        );
    }

    #[test]
    fn a_wrong_password_over_tls_points_at_the_authentication_fields() {
        let reasons = ["sasl_ssl://127.0.0.1:9094/bootstrap: SASL authentication error: Authentication failed: \
                        Invalid username or password (after 312ms in state AUTH_REQ)"
            .into()];
        let message = explain("spec.source", &failure(), &reasons);
        assert!(
            message.contains("check spec.source.authentication") && !message.contains(".tls."),
            "{message}"
        );
    }

    #[test]
    fn a_refused_client_certificate_points_at_the_client_certificate_fields() {
        for reason in [
            "ssl://127.0.0.1:9093/bootstrap: Receive failed: error:0A000412:SSL routines::sslv3 alert bad \
             certificate: SSL alert number 42 (after 0ms in state APIVERSION_QUERY)",
            "No matching issuer found in server trusted certificate authorities, not sending any client \
             certificates",
        ] {
            let message = explain("spec.target", &failure(), &[reason.into()]);
            assert!(
                message.contains(
                    "check spec.target.tls.clientCertificate and spec.target.tls.clientKey"
                ),
                "{message}"
            );
        }
    }

    #[test]
    fn an_unresolvable_advertised_name_points_at_host_aliases() {
        let reasons = [
            "wn0-kafka.abc.internal.cloudapp.net:9092/1: Failed to resolve \
                        'wn0-kafka.abc.internal.cloudapp.net:9092': Name or service not known"
                .into(),
        ];
        let message = explain("spec.source", &failure(), &reasons);
        assert!(
            message.contains("Failed to resolve 'wn0-kafka.abc.internal.cloudapp.net:9092'")
                && message.contains("in spec.source.hostAliases"),
            "{message}"
        );
    }

    #[test]
    fn without_reasons_the_error_stands_alone() {
        assert_eq!(
            explain("spec.source", &failure(), &[]),
            failure().to_string()
        );
    }

    #[test]
    fn reasons_are_kept_once_without_librdkafkas_prefix() {
        let reasons = ReasonCollector::default();
        reasons.remember("[thrd:ssl://a:1/bootstrap]: ssl://a:1/bootstrap: Connection refused");
        reasons.remember("Connection refused");
        assert_eq!(
            reasons.take(),
            [
                "ssl://a:1/bootstrap: Connection refused",
                "Connection refused"
            ]
        );
    }
}
