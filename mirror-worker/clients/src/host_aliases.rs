//! `spec.source.hostAliases` and `spec.target.hostAliases`: broker names no DNS server resolves (HDInsight's
//! worker-node FQDNs) mapped to IP addresses, honoured inside every Kafka client the project makes.
//!
//! Each client resolves through the aliases of its own cluster section and nothing else: [`HostAliases`] is
//! the table, its client's context answers librdkafka's resolve callback from it (the `ClientContext`
//! hook of the vendored rdkafka, `mirror-worker/vendor/rdkafka`), and a name the table does not hold goes to
//! the system resolver as before. Nothing process-wide changes: the operator measures many mirrors in one
//! process, and one mirror's aliases never change how another mirror's clients resolve names. Clients are
//! made through [`KafkaClientConfig`](crate::client_config::KafkaClientConfig), which refuses a context that
//! does not answer from its table. (In Kubernetes the operator also writes the aliases into the worker pods'
//! `/etc/hosts`, for the other tools in the pod.)
//!
//! Also: the brokers a cluster's metadata lists must have names a client can resolve. Bootstrapping by IP can
//! work while the names the brokers advertise resolve nowhere; partition leaders and the group coordinator
//! are reached by those names only, so the worker says so ([`check_advertised`]) instead of timing out later.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, ToSocketAddrs};
use std::sync::Arc;

use kafka_mirror_crds::FieldError;
use kafka_mirror_crds::cluster::ClusterConnection;
use rdkafka::client::ClientContext;
use rdkafka::consumer::ConsumerContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::metadata::Metadata;
use rdkafka::producer::{DeliveryResult, ProducerContext};

use crate::broker_probe::ProbeError;

/// One cluster section's `hostAliases`: host name (compared without regard to case, as `/etc/hosts` does) →
/// IP address. A name listed twice keeps its first address, as `/etc/hosts` does. Cheap to clone: the clients
/// of one cluster share one table.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HostAliases(Arc<BTreeMap<String, IpAddr>>);

impl HostAliases {
    /// The aliases of `connection`, the cluster section at document path `prefix` (`spec.source`). An entry
    /// whose `ip` is not an address (validation refuses it first) is an error naming the entry.
    pub fn from_connection(
        prefix: &str,
        connection: &ClusterConnection,
    ) -> Result<Self, FieldError> {
        let mut table = BTreeMap::new();
        for (i, alias) in connection.host_aliases.iter().enumerate() {
            let ip: IpAddr = alias.ip.trim().parse().map_err(|_| {
                FieldError::new(
                    format!("{prefix}.hostAliases[{i}].ip"),
                    format!("{:?} is not an IP address", alias.ip),
                )
            })?;
            for hostname in &alias.hostnames {
                table.entry(normalize(hostname)).or_insert(ip);
            }
        }
        Ok(Self(Arc::new(table)))
    }

    /// `(host name, IP address)` pairs, for tests and for a table built by hand.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, IpAddr)>) -> Self {
        let mut table = BTreeMap::new();
        for (hostname, ip) in pairs {
            table.entry(normalize(hostname)).or_insert(ip);
        }
        Self(Arc::new(table))
    }

    /// The address `host` is an alias of; `None` when it is none (the system resolver then decides).
    pub fn resolve(&self, host: &str) -> Option<IpAddr> {
        if self.0.is_empty() {
            return None;
        }
        self.0.get(&normalize(host)).copied()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Every `(host name, address)`, names in lower case.
    pub fn iter(&self) -> impl Iterator<Item = (&str, IpAddr)> {
        self.0.iter().map(|(name, ip)| (name.as_str(), *ip))
    }

    /// Whether `context` answers librdkafka's resolve callback with exactly these aliases: what
    /// [`KafkaClientConfig`](crate::client_config::KafkaClientConfig) checks before it makes a client.
    pub fn honoured_by<C: ClientContext>(&self, context: &C) -> bool {
        self.is_empty()
            || (C::ENABLE_RESOLVE_BROKER
                && self
                    .iter()
                    .all(|(name, ip)| context.resolve_broker(name) == Some(ip)))
    }
}

/// A host name as `/etc/hosts` compares it: case-insensitive, a trailing dot (a fully qualified name) ignored.
fn normalize(host: &str) -> String {
    host.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// The client context of a client that needs no callbacks of its own (admin clients, plain metadata readers):
/// librdkafka's defaults, plus broker names resolved through `0`.
#[derive(Clone, Debug, Default)]
pub struct ResolvingContext(pub HostAliases);

impl ClientContext for ResolvingContext {
    const ENABLE_RESOLVE_BROKER: bool = true;

    fn resolve_broker(&self, host: &str) -> Option<IpAddr> {
        self.0.resolve(host)
    }
}

impl ConsumerContext for ResolvingContext {}

impl ProducerContext for ResolvingContext {
    type DeliveryOpaque = ();
    fn delivery(&self, _: &DeliveryResult<'_>, _: Self::DeliveryOpaque) {}
}

/// The addresses `host` resolves to through the system resolver (what librdkafka uses for a name that is no
/// alias); none when it does not.
fn resolve(host: &str) -> BTreeSet<IpAddr> {
    (host, 0)
        .to_socket_addrs()
        .map(|addrs| addrs.map(|a| a.ip()).collect())
        .unwrap_or_default()
}

/// Fails when a broker `metadata` lists advertises a host name that is neither in `aliases` (the section
/// `prefix`'s `hostAliases`) nor resolved by this machine, naming those brokers and `<prefix>.hostAliases`.
pub fn check_advertised(
    prefix: &str,
    metadata: &Metadata,
    aliases: &HostAliases,
) -> Result<(), ProbeError> {
    check_advertised_brokers(
        prefix,
        metadata.brokers().iter().map(|b| (b.host(), b.port())),
        aliases,
    )
}

/// [`check_advertised`] on the `(host, port)` of each broker.
pub fn check_advertised_brokers<'a>(
    prefix: &str,
    brokers: impl Iterator<Item = (&'a str, i32)>,
    aliases: &HostAliases,
) -> Result<(), ProbeError> {
    let unresolvable = unresolvable(brokers, aliases);
    if unresolvable.is_empty() {
        return Ok(());
    }
    Err(ProbeError {
        error: KafkaError::MetadataFetch(RDKafkaErrorCode::Resolve),
        explained: format!(
            "the brokers advertise host names that neither {prefix}.hostAliases nor this machine's resolver \
             resolve: {}; map each name to its broker's IP address in {prefix}.hostAliases, or have the \
             brokers advertise IP addresses",
            unresolvable.join(", ")
        ),
    })
}

/// The `host:port` of each broker whose host is a name (not an address) that is no alias and resolves to
/// nothing here.
fn unresolvable<'a>(
    brokers: impl Iterator<Item = (&'a str, i32)>,
    aliases: &HostAliases,
) -> Vec<String> {
    let distinct: BTreeSet<(&str, i32)> = brokers.collect();
    distinct
        .into_iter()
        .filter(|(host, _)| {
            host.parse::<IpAddr>().is_err()
                && aliases.resolve(host).is_none()
                && resolve(host).is_empty()
        })
        .map(|(host, port)| format!("{host}:{port}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_mirror_crds::cluster::HostAlias;
    use rdkafka::ClientConfig;
    use rdkafka::producer::Producer;
    use std::net::{Ipv4Addr, TcpListener};
    use std::time::{Duration, Instant};

    const FQDN: &str = "wn0-kafka.abc123.internal.cloudapp.net.invalid";

    fn connection(aliases: Vec<HostAlias>) -> ClusterConnection {
        ClusterConnection {
            bootstrap_servers: "10.23.0.11:9092".into(),
            host_aliases: aliases,
            tls: None,
            authentication: None,
            config: Default::default(),
        }
    }

    fn alias(ip: &str, hostnames: &[&str]) -> HostAlias {
        HostAlias {
            ip: ip.into(),
            hostnames: hostnames.iter().map(|h| h.to_string()).collect(),
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn an_alias_resolves_its_names_without_regard_to_case_and_the_first_entry_wins() {
        let aliases = HostAliases::from_connection(
            "spec.source",
            &connection(vec![
                alias("10.23.0.11", &[FQDN, "wn0-kafka"]),
                alias("10.23.0.12", &["WN1-Kafka.abc123.internal.cloudapp.net"]),
                alias("10.23.0.99", &["wn0-kafka"]),
            ]),
        )
        .unwrap();
        assert_eq!(aliases.resolve(FQDN), Some(ip("10.23.0.11")));
        assert_eq!(
            aliases.resolve(&FQDN.to_uppercase()),
            Some(ip("10.23.0.11"))
        );
        assert_eq!(aliases.resolve(&format!("{FQDN}.")), Some(ip("10.23.0.11")));
        assert_eq!(aliases.resolve("wn0-kafka"), Some(ip("10.23.0.11")));
        assert_eq!(
            aliases.resolve("wn1-kafka.abc123.internal.cloudapp.net"),
            Some(ip("10.23.0.12"))
        );
        assert_eq!(
            aliases.resolve("wn2-kafka.abc123.internal.cloudapp.net"),
            None
        );
        assert_eq!(aliases.resolve("localhost"), None);
    }

    #[test]
    fn an_entry_whose_ip_is_no_address_is_refused_naming_it() {
        let error = HostAliases::from_connection(
            "spec.target",
            &connection(vec![alias("10.23.0.11", &["a"]), alias("wn0", &["b"])]),
        )
        .unwrap_err();
        assert_eq!(error.field, "spec.target.hostAliases[1].ip");
    }

    #[test]
    fn a_context_honours_a_table_only_when_it_answers_from_it() {
        let ours = HostAliases::from_pairs([(FQDN, ip("127.0.0.1"))]);
        let theirs = HostAliases::from_pairs([(FQDN, ip("10.0.0.1"))]);
        assert!(ours.honoured_by(&ResolvingContext(ours.clone())));
        assert!(!ours.honoured_by(&ResolvingContext(theirs)));
        assert!(!ours.honoured_by(&ResolvingContext::default()));
        assert!(!ours.honoured_by(&rdkafka::client::DefaultClientContext));
        assert!(HostAliases::default().honoured_by(&rdkafka::client::DefaultClientContext));
    }

    #[test]
    fn only_advertised_names_that_no_alias_and_no_resolver_know_are_reported() {
        let brokers = [
            ("127.0.0.1", 9092),
            ("localhost", 9093),
            (FQDN, 9092),
            (FQDN, 9092),
            ("wn1-kafka.abc123.internal.cloudapp.net.invalid", 9092),
        ];
        assert_eq!(
            unresolvable(brokers.into_iter(), &HostAliases::default()),
            [
                format!("{FQDN}:9092"),
                "wn1-kafka.abc123.internal.cloudapp.net.invalid:9092".to_string()
            ]
        );
        let aliases = HostAliases::from_pairs([(FQDN, ip("10.23.0.11"))]);
        assert_eq!(
            unresolvable(brokers.into_iter(), &aliases),
            ["wn1-kafka.abc123.internal.cloudapp.net.invalid:9092"]
        );
    }

    /// Whether a client with `aliases` and bootstrap server `host:<listener's port>` reaches `listener` (on
    /// 127.0.0.1) within 1.5 s.
    fn connects(host: &str, listener: &TcpListener, aliases: &HostAliases) -> bool {
        let port = listener.local_addr().unwrap().port();
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", format!("{host}:{port}"))
            .set("socket.connection.setup.timeout.ms", "1000")
            .set("reconnect.backoff.ms", "50");
        let client: rdkafka::producer::BaseProducer<ResolvingContext> = config
            .create_with_context(ResolvingContext(aliases.clone()))
            .unwrap();
        // Any request makes librdkafka connect to the bootstrap server; nobody answers it.
        let asking = std::thread::spawn(move || {
            let _ = client
                .client()
                .fetch_metadata(None, Duration::from_millis(1500));
        });
        let deadline = Instant::now() + Duration::from_millis(1500);
        let mut reached = false;
        while Instant::now() < deadline {
            if listener.accept().is_ok() {
                reached = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        asking.join().unwrap();
        // The client is gone: what it connected meanwhile must not count for the next one.
        while listener.accept().is_ok() {}
        reached
    }

    #[test]
    fn each_client_resolves_through_its_own_aliases_and_misses_fall_through_to_the_system() {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        listener.set_nonblocking(true).unwrap();
        let ours = HostAliases::from_pairs([(FQDN, IpAddr::V4(Ipv4Addr::LOCALHOST))]);
        // An alias hit: a name no resolver knows reaches the listener.
        assert!(connects(FQDN, &listener, &ours), "the alias was not used");
        // A client in the same process without that alias (another mirror's) does not resolve the name.
        assert!(
            !connects(FQDN, &listener, &HostAliases::default()),
            "a client without the alias resolved it"
        );
        let other = HostAliases::from_pairs([(
            "wn1-kafka.abc123.internal.cloudapp.net.invalid",
            IpAddr::V4(Ipv4Addr::LOCALHOST),
        )]);
        assert!(
            !connects(FQDN, &listener, &other),
            "another table's alias was used"
        );
        // A miss falls through to the system resolver.
        assert!(
            connects("localhost", &listener, &ours),
            "localhost was not resolved"
        );
        assert!(
            connects("127.0.0.1", &listener, &ours),
            "an address was not used"
        );
    }
}
