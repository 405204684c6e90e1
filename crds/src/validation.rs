//! Checks a `KafkaMirrorSpec` for what the OpenAPI schema cannot express. Pure: the operator reports the
//! result as a `Ready=False` condition, the worker as its exit message.

use std::collections::BTreeSet;
use std::net::IpAddr;

use crate::cluster::{ClusterConnection, SecretKeyRef};
use crate::topics::{SYNCED_CONFIGS, TOPIC_PLACEHOLDER};
use crate::{Delivery, FieldError, KafkaMirrorSpec, Mode, Partitioning, TopicFilter};

/// Every problem of the spec, or the compiled topic filter when there is none.
pub fn validate(spec: &KafkaMirrorSpec) -> Result<TopicFilter, Vec<FieldError>> {
    let mut errors = Vec::new();
    let filter = TopicFilter::new(&spec.topics.include, &spec.topics.exclude);
    if spec.topics.include.is_empty() {
        errors.push(FieldError::new(
            "spec.topics.include",
            "must list at least one topic pattern",
        ));
    }
    check_rename(&spec.topics.rename, &mut errors);
    check_connection("spec.source", &spec.source.connection, &mut errors);
    check_connection("spec.target", &spec.target.connection, &mut errors);
    for (field, reference) in spec.secret_refs() {
        check_secret_ref(&field, reference, &mut errors);
    }
    if let Some(group) = &spec.source.group_id
        && !valid_kafka_name(group)
    {
        errors.push(FieldError::new(
                "spec.source.groupId",
                format!("{group:?} is not a valid group id: use 1 to 249 of the characters a-z A-Z 0-9 . _ -"),
            ));
    }
    if same_cluster(
        &spec.source.connection.bootstrap_servers,
        &spec.target.connection.bootstrap_servers,
    ) && spec.topics.rename == TOPIC_PLACEHOLDER
    {
        errors.push(FieldError::new(
            "spec.topics.rename",
            "source and target are the same cluster and rename is '{topic}': every topic would be mirrored onto \
             itself; set a prefix such as 'mirror.{topic}'",
        ));
    }
    if spec.delivery == Delivery::ExactlyOnce && spec.mode == Mode::Migrate {
        errors.push(FieldError::new(
            "spec.delivery",
            "exactlyOnce is not available with mode: migrate yet (a migration's completion is judged on the \
             source group's commits); use atLeastOnce for a migration",
        ));
    }
    if !(0..=1000).contains(&spec.replicas) {
        errors.push(FieldError::new(
            "spec.replicas",
            format!("{} is out of range 0..=1000", spec.replicas),
        ));
    }
    if !(1..=64).contains(&spec.num_streams) {
        errors.push(FieldError::new(
            "spec.numStreams",
            format!("{} is out of range 1..=64", spec.num_streams),
        ));
    }
    if !(1..=3600).contains(&spec.topics.refresh_interval_seconds) {
        errors.push(FieldError::new(
            "spec.topics.refreshIntervalSeconds",
            format!(
                "{} is out of range 1..=3600",
                spec.topics.refresh_interval_seconds
            ),
        ));
    }
    for (i, config) in spec.topics.sync.exclude_configs.iter().enumerate() {
        if !SYNCED_CONFIGS.contains(&config.as_str()) {
            errors.push(FieldError::new(
                format!("spec.topics.sync.excludeConfigs[{i}]"),
                format!(
                    "{config:?} is not a config the mirror copies; it copies {}",
                    SYNCED_CONFIGS.join(", ")
                ),
            ));
        }
    }
    if !(1..=86400).contains(&spec.topics.sync.interval_seconds) {
        errors.push(FieldError::new(
            "spec.topics.sync.intervalSeconds",
            format!(
                "{} is out of range 1..=86400",
                spec.topics.sync.interval_seconds
            ),
        ));
    }
    if let Some(groups) = &spec.consumer_groups {
        if let Err(regex_errors) =
            TopicFilter::of_field("spec.consumerGroups", &groups.include, &groups.exclude)
        {
            errors.extend(regex_errors);
        }
        if groups.include.is_empty() {
            errors.push(FieldError::new(
                "spec.consumerGroups.include",
                "must list at least one group pattern",
            ));
        }
        if spec.partitioning == Partitioning::Key && spec.delivery == Delivery::ExactlyOnce {
            errors.push(FieldError::new(
                "spec.consumerGroups",
                "with spec.partitioning: key needs spec.delivery: atLeastOnce. Key partitioning's offset maps \
                 bound where a source partition's copies lie by the order of one producer per worker, and \
                 exactlyOnce writes with one producer per transaction group (not translated yet); use \
                 partitioning: preserve for exactly-once consumer group failover",
            ));
        }
        if !(1..=3600).contains(&groups.interval_seconds) {
            errors.push(FieldError::new(
                "spec.consumerGroups.intervalSeconds",
                format!("{} is out of range 1..=3600", groups.interval_seconds),
            ));
        }
    }
    if let Some(rf) = spec.topics.create.replication_factor
        && !(1..=32).contains(&rf)
    {
        errors.push(FieldError::new(
            "spec.topics.create.replicationFactor",
            format!("{rf} is out of range 1..=32"),
        ));
    }
    match filter {
        Ok(filter) if errors.is_empty() => Ok(filter),
        Ok(_) => Err(errors),
        Err(regex_errors) => Err(regex_errors.into_iter().chain(errors).collect()),
    }
}

/// Why a pass-through client property is refused, or `None` when it may be passed through.
///
/// Refused are keys another field owns (so there is one place to look) and keys that could weaken the
/// mirror's guarantees or its security without anyone noticing. Names are librdkafka's (matched exactly, as
/// librdkafka does): its aliases (`metadata.broker.list`, `max.in.flight`, `sasl.mechanisms`, ...) are refused
/// with the property they stand for, and so is the `topic.` prefix librdkafka strips for topic-level
/// properties (`topic.acks` is `acks`).
pub fn refused_config_key(key: &str) -> Option<&'static str> {
    // librdkafka sets a name it does not know globally on the default topic configuration, without `topic.`.
    if let Some(topic_key) = key.strip_prefix("topic.")
        && let Some(reason) = refused_config_key(topic_key)
    {
        return Some(reason);
    }
    let reason = match key {
        "bootstrap.servers" | "metadata.broker.list" => "set it in bootstrapServers",
        "group.id" => "set it in spec.source.groupId",
        "security.protocol" => "it follows from the tls and authentication fields",
        "enable.idempotence"
        | "acks"
        | "request.required.acks"
        | "max.in.flight.requests.per.connection"
        | "max.in.flight"
        | "queuing.strategy" => {
            "the mirror keeps an idempotent producer with acks=all so no record is lost or reordered"
        }
        "enable.auto.commit"
        | "auto.commit.enable"
        | "enable.auto.offset.store"
        | "auto.commit.interval.ms"
        | "delivery.report.only.error" => {
            "the mirror commits a source offset only after the target acknowledged the record"
        }
        "offset.store.method" | "offset.store.path" | "offset.store.sync.interval.ms" => {
            "the mirror's position is its consumer group's committed offsets on the source"
        }
        "partition.assignment.strategy" | "group.protocol" => {
            "the mirror uses the cooperative-sticky assignor so a rebalance does not stop every partition"
        }
        "transactional.id" | "isolation.level" => "set spec.delivery instead",
        "enable.ssl.certificate.verification" | "ssl.endpoint.identification.algorithm" => {
            "certificate verification cannot be turned off"
        }
        "partitioner" => "set spec.partitioning instead",
        "topic.blacklist" => "set spec.topics.exclude instead",
        "plugin.library.paths" | "interceptors" => {
            "librdkafka plugins load native code into the worker"
        }
        _ if key.starts_with("test.") => {
            "librdkafka test settings replace the cluster with an in-process mock"
        }
        _ if key.starts_with("ssl.") || key.starts_with("ssl_") || key.starts_with("https.") => {
            "set TLS material through the tls field from a Secret"
        }
        _ if key.starts_with("sasl.") || key.starts_with("enable.sasl.") => {
            "set credentials through the authentication field from a Secret"
        }
        _ => return None,
    };
    Some(reason)
}

fn check_connection(prefix: &str, connection: &ClusterConnection, errors: &mut Vec<FieldError>) {
    if let Err(message) = parse_bootstrap_servers(&connection.bootstrap_servers) {
        errors.push(FieldError::new(
            format!("{prefix}.bootstrapServers"),
            message,
        ));
    }
    for key in connection.config.keys() {
        if let Some(reason) = refused_config_key(key) {
            errors.push(FieldError::new(
                format!("{prefix}.config.{key}"),
                format!("refused: {reason}"),
            ));
        }
    }
    for (i, alias) in connection.host_aliases.iter().enumerate() {
        if alias.ip.parse::<IpAddr>().is_err() {
            errors.push(FieldError::new(
                format!("{prefix}.hostAliases[{i}].ip"),
                format!("{:?} is not an IP address", alias.ip),
            ));
        }
        if alias.hostnames.is_empty() {
            errors.push(FieldError::new(
                format!("{prefix}.hostAliases[{i}].hostnames"),
                "must list a host name",
            ));
        }
    }
    if let Some(tls) = &connection.tls {
        match (&tls.client_certificate, &tls.client_key) {
            (Some(_), None) => errors.push(FieldError::new(
                format!("{prefix}.tls.clientKey"),
                "required when clientCertificate is set",
            )),
            (None, Some(_)) => errors.push(FieldError::new(
                format!("{prefix}.tls.clientCertificate"),
                "required when clientKey is set",
            )),
            _ => {}
        }
    }
}

/// `host:port` entries of a bootstrap list, or what is wrong with it.
pub(crate) fn parse_bootstrap_servers(list: &str) -> Result<Vec<(String, u16)>, String> {
    let mut servers = Vec::new();
    for entry in list.split(',').map(str::trim) {
        let Some((host, port)) = entry.rsplit_once(':') else {
            return Err(format!("{entry:?} is not host:port"));
        };
        let port =
            port.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(|| {
                format!("{entry:?} has no valid port: use a number from 1 to 65535")
            })?;
        if host.is_empty() || host.contains(char::is_whitespace) {
            return Err(format!("{entry:?} has no valid host"));
        }
        servers.push((host.to_ascii_lowercase(), port));
    }
    Ok(servers)
}

/// Two bootstrap lists name the same cluster when they share a broker address.
fn same_cluster(a: &str, b: &str) -> bool {
    let (Ok(a), Ok(b)) = (parse_bootstrap_servers(a), parse_bootstrap_servers(b)) else {
        return false;
    };
    let a: BTreeSet<_> = a.into_iter().collect();
    b.iter().any(|server| a.contains(server))
}

fn check_rename(rename: &str, errors: &mut Vec<FieldError>) {
    if !rename.contains(TOPIC_PLACEHOLDER) {
        errors.push(FieldError::new(
            "spec.topics.rename",
            format!("{rename:?} must contain {TOPIC_PLACEHOLDER}, or every source topic would be written into one target topic"),
        ));
        return;
    }
    let fixed = rename.replace(TOPIC_PLACEHOLDER, "");
    if let Some(bad) = fixed
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        errors.push(FieldError::new(
            "spec.topics.rename",
            format!("{rename:?} contains {bad:?}; topic names allow only a-z A-Z 0-9 . _ -"),
        ));
    }
}

/// A Secret reference the API server would accept: its name a DNS subdomain (a Secret name), its key a Secret
/// key. The worker reads `<secrets dir>/<name>/<key>`, so this also keeps a reference inside that directory.
fn check_secret_ref(field: &str, reference: &SecretKeyRef, errors: &mut Vec<FieldError>) {
    let name = &reference.name;
    let name_ok = !name.is_empty()
        && name.len() <= 253
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '.'))
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    if !name_ok {
        errors.push(FieldError::new(
            format!("{field}.name"),
            format!(
                "{name:?} is not a Secret name: use 1 to 253 of a-z 0-9 - ., starting and ending with a letter or digit"
            ),
        ));
    }
    let key = &reference.key;
    let key_ok = !key.is_empty()
        && key.len() <= 253
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
        && key != "."
        && !key.starts_with("..");
    if !key_ok {
        errors.push(FieldError::new(
            format!("{field}.key"),
            format!(
                "{key:?} is not a Secret key: use 1 to 253 of a-z A-Z 0-9 - . _, not starting with '..'"
            ),
        ));
    }
}

/// Kafka's rule for topic names and group ids that must be usable as both.
fn valid_kafka_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 249
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}
