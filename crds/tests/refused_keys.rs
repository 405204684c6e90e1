//! Pass-through client config (`spec.source.config`, `spec.target.config`) cannot weaken security or the
//! mirror's guarantees: every librdkafka property (as librdkafka 2.12's CONFIGURATION.md and rdkafka_conf.c
//! name them) that sets TLS or SASL material, turns verification off, loads code, redirects the client or
//! undoes the at-least-once settings is refused — under its own name, under each alias librdkafka accepts,
//! and under the `topic.` prefix librdkafka strips for topic-level properties.

use kafka_mirror_crds::{parse_document, refused_config_key};

/// Keys that must never pass, with a word their refusal message must contain.
const REFUSED: &[(&str, &str)] = &[
    // Connection and identity owned by other fields (librdkafka alias pairs).
    ("bootstrap.servers", "bootstrapServers"),
    ("metadata.broker.list", "bootstrapServers"),
    ("group.id", "groupId"),
    ("security.protocol", "tls and authentication"),
    // TLS: material, stores, engines, providers, verification.
    ("ssl.ca.location", "tls"),
    ("ssl.ca.pem", "tls"),
    ("ssl.ca.certificate.stores", "tls"),
    ("ssl.crl.location", "tls"),
    ("ssl.certificate.location", "tls"),
    ("ssl.certificate.pem", "tls"),
    ("ssl.key.location", "tls"),
    ("ssl.key.password", "tls"),
    ("ssl.key.pem", "tls"),
    ("ssl_key", "tls"),
    ("ssl_ca", "tls"),
    ("ssl_certificate", "tls"),
    ("ssl.keystore.location", "tls"),
    ("ssl.keystore.password", "tls"),
    ("ssl.engine.location", "tls"),
    ("ssl.engine.id", "tls"),
    ("ssl_engine_callback_data", "tls"),
    ("ssl.providers", "tls"),
    ("ssl.cipher.suites", "tls"),
    ("ssl.curves.list", "tls"),
    ("ssl.sigalgs.list", "tls"),
    ("ssl.certificate.verify_cb", "tls"),
    ("enable.ssl.certificate.verification", "verification"),
    ("ssl.endpoint.identification.algorithm", "verification"),
    ("https.ca.location", "tls"),
    ("https.ca.pem", "tls"),
    // SASL: every mechanism's settings, including the ones that run commands or accept unsigned tokens.
    ("sasl.mechanism", "authentication"),
    ("sasl.mechanisms", "authentication"),
    ("sasl.username", "authentication"),
    ("sasl.password", "authentication"),
    ("sasl.kerberos.kinit.cmd", "authentication"),
    ("sasl.kerberos.keytab", "authentication"),
    ("sasl.oauthbearer.config", "authentication"),
    ("sasl.oauthbearer.method", "authentication"),
    ("sasl.oauthbearer.client.secret", "authentication"),
    (
        "sasl.oauthbearer.client.credentials.client.secret",
        "authentication",
    ),
    ("sasl.oauthbearer.token.endpoint.url", "authentication"),
    (
        "sasl.oauthbearer.assertion.private.key.pem",
        "authentication",
    ),
    ("enable.sasl.oauthbearer.unsecure.jwt", "authentication"),
    // Native code and test doubles.
    ("plugin.library.paths", "native code"),
    ("interceptors", "native code"),
    ("test.mock.num.brokers", "mock"),
    ("test.mock.broker.rtt", "mock"),
    // Producer guarantees (with aliases).
    ("enable.idempotence", "idempotent"),
    ("acks", "acks=all"),
    ("request.required.acks", "acks=all"),
    ("max.in.flight", "reordered"),
    ("max.in.flight.requests.per.connection", "reordered"),
    ("queuing.strategy", "reordered"),
    ("transactional.id", "spec.delivery"),
    ("partitioner", "spec.partitioning"),
    ("delivery.report.only.error", "acknowledged"),
    // Consumer guarantees (with the legacy topic-level alias).
    ("enable.auto.commit", "acknowledged"),
    ("auto.commit.enable", "acknowledged"),
    ("enable.auto.offset.store", "acknowledged"),
    ("auto.commit.interval.ms", "acknowledged"),
    ("offset.store.method", "committed offsets"),
    ("offset.store.path", "committed offsets"),
    ("offset.store.sync.interval.ms", "committed offsets"),
    ("isolation.level", "spec.delivery"),
    ("partition.assignment.strategy", "cooperative-sticky"),
    ("group.protocol", "cooperative-sticky"),
    ("topic.blacklist", "spec.topics.exclude"),
];

/// Tuning that stays the user's: none of it touches security, ordering or commits.
const PASSED: &[&str] = &[
    "compression.type",
    "compression.codec",
    "compression.level",
    "linger.ms",
    "queue.buffering.max.ms",
    "batch.size",
    "batch.num.messages",
    "message.max.bytes",
    "fetch.max.bytes",
    "fetch.min.bytes",
    "max.partition.fetch.bytes",
    "fetch.wait.max.ms",
    "queued.max.messages.kbytes",
    "session.timeout.ms",
    "heartbeat.interval.ms",
    "max.poll.interval.ms",
    "auto.offset.reset",
    "client.id",
    "client.rack",
    "socket.keepalive.enable",
    "socket.timeout.ms",
    "connections.max.idle.ms",
    "reconnect.backoff.max.ms",
    "topic.metadata.refresh.interval.ms",
    "metadata.max.age.ms",
    "statistics.interval.ms",
    "request.timeout.ms",
    "message.timeout.ms",
    "delivery.timeout.ms",
    "retry.backoff.ms",
    "broker.address.family",
    "client.dns.lookup",
    "debug",
];

#[test]
fn security_and_guarantee_properties_are_refused_with_the_reason() {
    for (key, word) in REFUSED {
        let reason = refused_config_key(key).unwrap_or_else(|| panic!("{key} passes through"));
        assert!(
            reason.contains(word),
            "{key}: the reason {reason:?} should mention {word:?}"
        );
    }
}

#[test]
fn the_topic_prefix_librdkafka_strips_does_not_bypass_a_refusal() {
    // rd_kafka_conf_set: a name unknown globally is set on the default topic config after removing `topic.`,
    // so `topic.acks` is `acks` and `topic.enable.auto.commit` the topic-level auto commit.
    for (key, _) in REFUSED {
        let prefixed = format!("topic.{key}");
        assert_eq!(
            refused_config_key(&prefixed),
            refused_config_key(key),
            "{prefixed} must be refused like {key}"
        );
        assert!(
            refused_config_key(&format!("topic.topic.{key}")).is_some(),
            "topic.topic.{key}"
        );
    }
}

#[test]
fn tuning_properties_pass_through() {
    for key in PASSED {
        assert_eq!(refused_config_key(key), None, "{key} should pass through");
    }
}

#[test]
fn a_refused_key_in_a_document_names_the_field_and_the_reason() {
    let document = r#"
apiVersion: kafkamirror.io/v1alpha1
kind: KafkaMirror
metadata: {name: m}
spec:
  source:
    bootstrapServers: "a:9092"
    config: {plugin.library.paths: /tmp/evil.so, fetch.max.bytes: 52428800}
  target:
    bootstrapServers: "b:9092"
    config: {topic.request.required.acks: 0, compression.type: none}
  topics: {include: ["testtopic"]}
"#;
    let errors: Vec<String> = parse_document(document)
        .expect_err("refused keys make the document invalid")
        .field_errors()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        errors,
        [
            "spec.source.config.plugin.library.paths: refused: librdkafka plugins load native code into the worker",
            "spec.target.config.topic.request.required.acks: refused: the mirror keeps an idempotent producer with \
             acks=all so no record is lost or reordered",
        ],
    );
}
