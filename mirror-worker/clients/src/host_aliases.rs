//! `spec.source.hostAliases` and `spec.target.hostAliases` where the worker runs.
//!
//! In Kubernetes the operator writes them into the worker pods' `/etc/hosts`; librdkafka then resolves the
//! brokers' advertised names through the system resolver like any other name. The worker itself cannot
//! change how this machine resolves names, so under `mirror-worker --config` it checks that each alias already
//! holds here, and refuses the document when one does not: a field the worker cannot honour is refused, never
//! silently ignored.
//!
//! Also: the brokers a cluster's metadata lists must have names this machine resolves. Bootstrapping by IP can
//! work while the names the brokers advertise resolve nowhere here; partition leaders and the group coordinator
//! are reached by those names only, so the worker says so ([`check_advertised`]) instead of timing out later.

use std::collections::BTreeSet;
use std::net::{IpAddr, ToSocketAddrs};

use kafka_mirror_crds::cluster::ClusterConnection;
use kafka_mirror_crds::{FieldError, KafkaMirrorSpec};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::metadata::Metadata;

use crate::broker_probe::ProbeError;

use crate::{Error, Result};

/// Checks that every host name of every `hostAliases` entry of both clusters resolves on this machine to the
/// entry's IP address. The first that does not is a configuration error naming the entry.
pub fn check(spec: &KafkaMirrorSpec) -> Result<()> {
    let sides = [
        ("spec.source", &spec.source.connection),
        ("spec.target", &spec.target.connection),
    ];
    for (prefix, connection) in sides {
        check_connection(prefix, connection).map_err(Error::Field)?;
    }
    Ok(())
}

fn check_connection(prefix: &str, connection: &ClusterConnection) -> Result<(), FieldError> {
    for (i, alias) in connection.host_aliases.iter().enumerate() {
        let field = format!("{prefix}.hostAliases[{i}]");
        // Validation already refused an entry whose ip is not an address.
        let ip: IpAddr = alias
            .ip
            .parse()
            .map_err(|_| FieldError::new(&field, format!("{:?} is not an IP address", alias.ip)))?;
        for hostname in &alias.hostnames {
            let resolved = resolve(hostname);
            if !resolved.contains(&ip) {
                let found = if resolved.is_empty() {
                    "it resolves to nothing".to_string()
                } else {
                    let list: Vec<String> = resolved.iter().map(IpAddr::to_string).collect();
                    format!("it resolves to {}", list.join(", "))
                };
                return Err(FieldError::new(
                    field,
                    format!(
                        "{hostname} does not resolve to {ip} on this machine ({found}); in Kubernetes the operator \
                         adds it to the pod's /etc/hosts, elsewhere add \"{ip} {hostname}\" to /etc/hosts"
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// The addresses `host` resolves to through the system resolver (what librdkafka uses); none when it does not.
fn resolve(host: &str) -> BTreeSet<IpAddr> {
    (host, 0)
        .to_socket_addrs()
        .map(|addrs| addrs.map(|a| a.ip()).collect())
        .unwrap_or_default()
}

/// Fails when a broker `metadata` lists advertises a host name this machine does not resolve, naming those
/// brokers and `<prefix>.hostAliases`.
pub fn check_advertised(prefix: &str, metadata: &Metadata) -> Result<(), ProbeError> {
    check_advertised_brokers(
        prefix,
        metadata.brokers().iter().map(|b| (b.host(), b.port())),
    )
}

/// [`check_advertised`] on the `(host, port)` of each broker.
pub fn check_advertised_brokers<'a>(
    prefix: &str,
    brokers: impl Iterator<Item = (&'a str, i32)>,
) -> Result<(), ProbeError> {
    let unresolvable = unresolvable(brokers);
    if unresolvable.is_empty() {
        return Ok(());
    }
    Err(ProbeError {
        error: KafkaError::MetadataFetch(RDKafkaErrorCode::Resolve),
        explained: format!(
            "the brokers advertise host names this machine cannot resolve: {}; map each name to its broker's IP \
             address in {prefix}.hostAliases (in Kubernetes the operator adds them to the worker pods' /etc/hosts, \
             elsewhere add them to /etc/hosts), or have the brokers advertise IP addresses",
            unresolvable.join(", ")
        ),
    })
}

/// The `host:port` of each broker whose host is a name (not an address) that resolves to nothing here.
fn unresolvable<'a>(brokers: impl Iterator<Item = (&'a str, i32)>) -> Vec<String> {
    let distinct: BTreeSet<(&str, i32)> = brokers.collect();
    distinct
        .into_iter()
        .filter(|(host, _)| host.parse::<IpAddr>().is_err() && resolve(host).is_empty())
        .map(|(host, port)| format!("{host}:{port}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_mirror_crds::cluster::HostAlias;

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

    #[test]
    fn an_alias_this_machine_resolves_is_accepted() {
        let c = connection(vec![alias("127.0.0.1", &["localhost"])]);
        assert_eq!(check_connection("spec.source", &c), Ok(()));
    }

    #[test]
    fn an_alias_that_resolves_nowhere_is_refused_naming_the_entry() {
        let c = connection(vec![
            alias("127.0.0.1", &["localhost"]),
            alias(
                "10.23.0.11",
                &["wn0-kafka.abc123.internal.cloudapp.net.invalid"],
            ),
        ]);
        let error = check_connection("spec.target", &c).unwrap_err();
        assert_eq!(error.field, "spec.target.hostAliases[1]");
        assert!(
            error.message.contains(
                "wn0-kafka.abc123.internal.cloudapp.net.invalid does not resolve to 10.23.0.11 on this machine"
            ) && error.message.contains("/etc/hosts"),
            "{error}"
        );
    }

    #[test]
    fn only_advertised_names_that_resolve_nowhere_are_reported() {
        let brokers = [
            ("127.0.0.1", 9092),
            ("localhost", 9093),
            ("wn0-kafka.abc123.internal.cloudapp.net.invalid", 9092),
            ("wn0-kafka.abc123.internal.cloudapp.net.invalid", 9092),
        ];
        assert_eq!(
            unresolvable(brokers.into_iter()),
            ["wn0-kafka.abc123.internal.cloudapp.net.invalid:9092"]
        );
    }

    #[test]
    fn an_alias_that_resolves_elsewhere_is_refused_saying_where() {
        let c = connection(vec![alias("10.23.0.11", &["localhost"])]);
        let error = check_connection("spec.source", &c).unwrap_err();
        assert!(error.message.contains("it resolves to "), "{error}");
    }
}
