//! TLS and SASL between the `mirror-worker` process and real broker processes (nisshi, an independent
//! Kafka-compatible broker): certificates and credentials come from Secrets (files laid out as the operator
//! mounts them, or `KMIRROR_SECRET_*` variables), records arrive when they are right, nothing is mirrored when
//! they are wrong and the worker gives up naming the cluster, and no credential ever shows in the worker's
//! output or `/metrics`.
//!
//! A CA and its certificates are made at test time (rcgen). SCRAM users need nisshi's SQLite storage (the
//! `libsql` feature tests/run-all.sh builds it with). nisshi cannot require client certificates (its listener
//! does not ask for one) and offers SCRAM but not PLAIN: what that leaves untested is said where it matters.

use std::path::{Path, PathBuf};
use std::time::Duration;

use kafka_mirror_tests::{
    Broker, BrokerOptions, Finished, Scram, ScramUser, Worker, client_config, create_topic,
    produce_samples, read_records,
};
use mirror_worker::testkit::{self, SampleRecord};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

const TOPIC: &str = "orders";
const MIRRORED: &str = "mirror.orders";
const RECORDS: u64 = 300;

/// A certificate authority made for one test.
struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// A certificate and its private key, both PEM.
struct Issued {
    cert: String,
    key: String,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        Ca { issuer }
    }

    fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A certificate for `names` (host names or IP addresses), for a server or a client.
    fn issue(&self, common_name: &str, names: &[&str], usage: ExtendedKeyUsagePurpose) -> Issued {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.extended_key_usages = vec![usage];
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Issued {
            cert: cert.pem(),
            key: key.serialize_pem(),
        }
    }

    /// A broker certificate for the loopback address the test brokers listen on.
    fn broker(&self) -> Issued {
        self.issue(
            "broker",
            &["localhost", "127.0.0.1"],
            ExtendedKeyUsagePurpose::ServerAuth,
        )
    }
}

/// Files of one test: the document, broker certificates, and Secrets laid out as the operator mounts them
/// (`<secrets>/<secret name>/<key>`).
struct Files {
    dir: tempfile::TempDir,
}

impl Files {
    fn new() -> Files {
        let files = Files {
            dir: tempfile::tempdir().unwrap(),
        };
        std::fs::create_dir_all(files.secrets()).unwrap();
        files
    }

    fn secrets(&self) -> PathBuf {
        self.dir.path().join("secrets")
    }

    /// A Secret key as a mounted file (with the trailing newline `kubectl create secret --from-file` keeps).
    fn secret(&self, name: &str, key: &str, value: &str) {
        let dir = self.secrets().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(key), format!("{value}\n")).unwrap();
    }

    /// A broker's TLS options: its certificate and key as files.
    fn broker_tls(&self, name: &str, issued: &Issued) -> Option<(PathBuf, PathBuf)> {
        let cert = self.dir.path().join(format!("{name}.crt"));
        let key = self.dir.path().join(format!("{name}.key"));
        std::fs::write(&cert, &issued.cert).unwrap();
        std::fs::write(&key, &issued.key).unwrap();
        Some((cert, key))
    }

    /// The `KafkaMirror` document: `source` and `target` are YAML flow mappings of the cluster sections.
    fn document(&self, source: &str, target: &str, mode: &str) -> PathBuf {
        let path = self.dir.path().join("mirror.yaml");
        std::fs::write(
            &path,
            format!(
                "apiVersion: kafkamirror.io/v1alpha1\nkind: KafkaMirror\nmetadata: {{name: secure}}\nspec:\n  \
                 source: {source}\n  target: {target}\n  topics:\n    include: [{TOPIC}]\n    rename: \
                 \"mirror.{{topic}}\"\n    create: {{replicationFactor: 1}}\n  mode: {mode}\n  numStreams: 1\n"
            ),
        )
        .unwrap();
        path
    }

    fn worker(&self, document: &Path, env: &[(&str, &str)]) -> Worker {
        Worker::spawn(document, &self.secrets(), env)
    }
}

/// Client settings of the test itself for a TLS listener signed by `ca`.
fn tls_client(ca: &Ca) -> Vec<(&'static str, String)> {
    vec![
        ("security.protocol", "ssl".into()),
        ("ssl.ca.pem", ca.pem()),
    ]
}

/// Client settings of the test itself for SASL/SCRAM, over TLS when `tls` is given.
fn sasl_client(user: &ScramUser, tls: Option<&Ca>) -> Vec<(&'static str, String)> {
    let mut settings = vec![
        (
            "security.protocol",
            if tls.is_some() {
                "sasl_ssl"
            } else {
                "sasl_plaintext"
            }
            .into(),
        ),
        ("sasl.mechanism", user.mechanism.mechanism().into()),
        ("sasl.username", user.name.clone()),
        ("sasl.password", user.password.clone()),
    ];
    if let Some(ca) = tls {
        settings.push(("ssl.ca.pem", ca.pem()));
    }
    settings
}

fn config(broker: &Broker, settings: &[(&'static str, String)]) -> rdkafka::ClientConfig {
    let settings: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
    client_config(&broker.bootstrap, &settings)
}

/// `orders` with 3 partitions and RECORDS sample records on `broker`.
fn seed(broker: &Broker, settings: &[(&'static str, String)]) -> Vec<SampleRecord> {
    let config = config(broker, settings);
    create_topic(&config, TOPIC, 3);
    produce_samples(&config, TOPIC, RECORDS, 30, 64)
}

/// Asserts the run was a complete migration and every seeded record is on the target, intact.
fn assert_mirrored(
    run: &Finished,
    target: &Broker,
    settings: &[(&'static str, String)],
    seeded: &[SampleRecord],
) {
    assert!(
        run.exited_by_itself && run.status.success(),
        "the migration should complete ({}):\n{}",
        run.status,
        run.output()
    );
    assert!(
        run.stdout.contains("migration complete"),
        "{}",
        run.output()
    );
    let copy = read_records(
        &config(target, settings),
        MIRRORED,
        seeded.len(),
        Duration::from_secs(60),
    );
    let verification = testkit::verify(seeded, &copy);
    assert!(verification.is_intact(), "{verification}");
}

/// Records of `mirror.orders` on `target` within a few seconds: none when nothing was mirrored.
fn mirrored_count(target: &Broker, settings: &[(&'static str, String)]) -> usize {
    read_records(
        &config(target, settings),
        MIRRORED,
        1,
        Duration::from_secs(3),
    )
    .len()
}

const MIGRATION_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a worker that cannot reach a cluster may take to give up (librdkafka's metadata timeout is 10 s).
const GIVE_UP_TIMEOUT: Duration = Duration::from_secs(60);

/// A source section with TLS whose CA is the Secret `source-tls` key `ca.crt`.
fn tls_source(source: &Broker, extra: &str) -> String {
    format!(
        "{{bootstrapServers: \"{}\", tls: {{ca: {{name: source-tls, key: ca.crt}}{extra}}}}}",
        source.bootstrap
    )
}

fn plain(broker: &Broker) -> String {
    format!("{{bootstrapServers: \"{}\"}}", broker.bootstrap)
}

/// The worker gave up by itself with exit code 1 and an error naming what it could not do.
fn assert_gave_up(run: &Finished, names: &str) {
    assert!(
        run.exited_by_itself,
        "the worker should give up by itself, not wait forever:\n{}",
        run.output()
    );
    assert_eq!(run.status.code(), Some(1), "{}", run.output());
    let last = run
        .stderr
        .lines()
        .rfind(|l| !l.trim().is_empty())
        .unwrap_or_default();
    assert!(
        last.starts_with("mirror-worker: error: ") && last.contains(names),
        "the last line should say what failed ({names:?}):\n{}",
        run.output()
    );
}

#[test]
fn tls_with_the_ca_from_a_secret_mirrors_every_record() {
    let files = Files::new();
    let ca = Ca::new("source CA");
    let source = Broker::start_with(
        "tls-source",
        &BrokerOptions {
            tls: files.broker_tls("source", &ca.broker()),
            ..BrokerOptions::default()
        },
    );
    let target = Broker::start("plain-target");
    let seeded = seed(&source, &tls_client(&ca));
    files.secret("source-tls", "ca.crt", &ca.pem());

    let document = files.document(&tls_source(&source, ""), &plain(&target), "migrate");
    let run = files.worker(&document, &[]).finish(MIGRATION_TIMEOUT);
    assert_mirrored(&run, &target, &[], &seeded);
}

/// nisshi's TLS listener never asks for a client certificate, so a broker that refuses a client without one
/// (or with one from another CA) cannot be run here: that half of mutual TLS is left to the kind suite or a
/// real cluster. What is tested: the certificate and key from Secrets are loaded into the client's TLS context
/// (a key that does not belong to the certificate is refused before any connection), and a connection with them
/// works.
#[test]
fn a_client_certificate_and_key_from_secrets_are_loaded_into_the_tls_connection() {
    let files = Files::new();
    let ca = Ca::new("source CA");
    let client = ca.issue("kafka-mirror", &[], ExtendedKeyUsagePurpose::ClientAuth);
    let other = ca.issue("someone-else", &[], ExtendedKeyUsagePurpose::ClientAuth);
    let source = Broker::start_with(
        "mtls-source",
        &BrokerOptions {
            tls: files.broker_tls("source", &ca.broker()),
            ..BrokerOptions::default()
        },
    );
    let target = Broker::start("plain-target");
    let seeded = seed(&source, &tls_client(&ca));
    files.secret("source-tls", "ca.crt", &ca.pem());
    files.secret("source-tls", "tls.crt", &client.cert);
    files.secret("source-tls", "other.key", &other.key);
    // The key from an environment variable (what `mirror-worker --config` users may prefer to a file).
    let key_env = ("KMIRROR_SECRET_SOURCE_TLS_TLS_KEY", client.key.as_str());

    // The key of another certificate: refused at once, naming the setting, before any connection.
    let mismatched = files.document(
        &tls_source(
            &source,
            ", clientCertificate: {name: source-tls, key: tls.crt}, clientKey: {name: source-tls, key: other.key}",
        ),
        &plain(&target),
        "migrate",
    );
    let run = files.worker(&mismatched, &[]).finish(GIVE_UP_TIMEOUT);
    assert_gave_up(&run, "creating the source admin client");
    assert!(
        run.stderr.contains("ssl.key.pem failed") && run.stderr.contains("key values mismatch"),
        "{}",
        run.output()
    );
    assert_no_key_material(&run.output(), &other.key);

    // The matching pair: the migration runs over TLS with the client certificate presented.
    let document = files.document(
        &tls_source(
            &source,
            ", clientCertificate: {name: source-tls, key: tls.crt}, clientKey: {name: source-tls, key: tls.key}",
        ),
        &plain(&target),
        "migrate",
    );
    let run = files
        .worker(&document, &[key_env])
        .finish(MIGRATION_TIMEOUT);
    assert_mirrored(&run, &target, &[], &seeded);
    assert_no_key_material(&run.output(), &client.key);
}

/// Certificate verification is on: a broker certificate signed by another CA, or signed by the right CA for
/// another host name, is refused; nothing is mirrored; the worker exits 1 by itself after librdkafka's
/// metadata timeout, with librdkafka's reason and the fields to check.
#[test]
fn a_broker_certificate_from_another_ca_or_for_another_host_is_refused() {
    let files = Files::new();
    let ca = Ca::new("source CA");
    let foreign = Ca::new("someone else's CA");
    let target = Broker::start("plain-target");
    files.secret("source-tls", "ca.crt", &ca.pem());

    let cases = [
        ("foreign-ca", foreign.broker()),
        (
            "wrong-host",
            ca.issue(
                "broker",
                &["kafka.example"],
                ExtendedKeyUsagePurpose::ServerAuth,
            ),
        ),
    ];
    for (name, certificate) in cases {
        let source = Broker::start_with(
            name,
            &BrokerOptions {
                tls: files.broker_tls(name, &certificate),
                ..BrokerOptions::default()
            },
        );
        let document = files.document(&tls_source(&source, ""), &plain(&target), "migrate");
        let run = files.worker(&document, &[]).finish(GIVE_UP_TIMEOUT);
        assert_gave_up(&run, "reading the source cluster's topic list");
        let last = run
            .stderr
            .lines()
            .rfind(|l| !l.trim().is_empty())
            .unwrap_or_default();
        assert!(
            last.contains("SSL handshake failed") && last.contains("check spec.source.tls.ca"),
            "{name}: the exit message says why and which field to check:\n{last}"
        );
        assert_eq!(mirrored_count(&target, &[]), 0, "{name}: nothing mirrored");
    }
}

/// Neither the PEM key nor any line of its body appears in `text`.
fn assert_no_key_material(text: &str, key_pem: &str) {
    for line in key_pem.lines().filter(|l| !l.starts_with("-----")) {
        assert!(
            line.len() < 16 || !text.contains(line),
            "private key material in the output: {line}"
        );
    }
}

/// A marker no log line would contain by chance, for credentials whose leaks the test looks for.
fn marker(what: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("leak-{what}-{nanos:08x}-{}", std::process::id())
}

fn user(name: &str, password: &str, mechanism: Scram) -> ScramUser {
    ScramUser {
        name: name.into(),
        password: password.into(),
        mechanism,
    }
}

/// SCRAM-SHA-256 on the source over plaintext, SCRAM-SHA-512 on the target over TLS (`sasl_ssl`); the source
/// password from a mounted Secret file, the target's from `KMIRROR_SECRET_*`. nisshi offers no SASL/PLAIN, so
/// PLAIN is not tested against a broker here (its client settings are the same three `sasl.*` properties).
#[test]
fn scram_sha_256_and_sha_512_from_secrets_mirror_every_record() {
    let files = Files::new();
    let ca = Ca::new("target CA");
    let alice = user("alice", "alice-source-password", Scram::Sha256);
    let bob = user("bob", "bob-target-password", Scram::Sha512);
    let source = Broker::start_with(
        "scram-source",
        &BrokerOptions {
            users: vec![alice.clone()],
            ..BrokerOptions::default()
        },
    );
    let target = Broker::start_with(
        "scram-tls-target",
        &BrokerOptions {
            tls: files.broker_tls("target", &ca.broker()),
            users: vec![bob.clone()],
        },
    );
    let seeded = seed(&source, &sasl_client(&alice, None));
    files.secret("source-creds", "password", &alice.password);
    files.secret("target-tls", "ca.crt", &ca.pem());

    let document = files.document(
        &format!(
            "{{bootstrapServers: \"{}\", authentication: {{mechanism: SCRAM-SHA-256, username: alice, password: \
             {{name: source-creds, key: password}}}}}}",
            source.bootstrap
        ),
        &format!(
            "{{bootstrapServers: \"{}\", tls: {{ca: {{name: target-tls, key: ca.crt}}}}, authentication: \
             {{mechanism: SCRAM-SHA-512, username: bob, password: {{name: target-creds, key: password}}}}}}",
            target.bootstrap
        ),
        "migrate",
    );
    let run = files
        .worker(
            &document,
            &[("KMIRROR_SECRET_TARGET_CREDS_PASSWORD", &bob.password)],
        )
        .finish(MIGRATION_TIMEOUT);
    assert_mirrored(&run, &target, &sasl_client(&bob, Some(&ca)), &seeded);
}

/// A wrong password on either side: nothing is mirrored and the worker exits 1 by itself after librdkafka's
/// metadata timeout, naming the cluster it could not read, librdkafka's reason (the failed SASL
/// authentication) and `spec.<side>.authentication`. The wrong password is not in the output, with the
/// worker's debug logs and librdkafka's `debug: all` on.
#[test]
fn a_wrong_password_mirrors_nothing_and_the_worker_gives_up() {
    let files = Files::new();
    let alice = user("alice", "alice-source-password", Scram::Sha256);
    let bob = user("bob", "bob-target-password", Scram::Sha512);
    let source = Broker::start_with(
        "scram-source",
        &BrokerOptions {
            users: vec![alice.clone()],
            ..BrokerOptions::default()
        },
    );
    let target = Broker::start_with(
        "scram-target",
        &BrokerOptions {
            users: vec![bob.clone()],
            ..BrokerOptions::default()
        },
    );
    seed(&source, &sasl_client(&alice, None));
    let wrong = marker("wrong-password");
    files.secret("right", "password", &alice.password);
    files.secret("bob-right", "password", &bob.password);
    files.secret("wrong", "password", &wrong);
    let section = |broker: &Broker, mechanism: Scram, name: &str, secret: &str| {
        format!(
            "{{bootstrapServers: \"{}\", authentication: {{mechanism: {}, username: {name}, password: \
             {{name: {secret}, key: password}}}}, config: {{debug: all}}}}",
            broker.bootstrap,
            mechanism.mechanism()
        )
    };
    let cases = [
        (
            "source",
            section(&source, Scram::Sha256, "alice", "wrong"),
            section(&target, Scram::Sha512, "bob", "bob-right"),
        ),
        (
            "target",
            section(&source, Scram::Sha256, "alice", "right"),
            section(&target, Scram::Sha512, "bob", "wrong"),
        ),
    ];
    for (side, source_section, target_section) in cases {
        let document = files.document(&source_section, &target_section, "migrate");
        let run = files
            .worker(&document, &[("RUST_LOG", "debug")])
            .finish(GIVE_UP_TIMEOUT);
        assert_gave_up(&run, &format!("the {side} cluster"));
        let last = run
            .stderr
            .lines()
            .rfind(|l| !l.trim().is_empty())
            .unwrap_or_default();
        assert!(
            last.contains(&format!("check spec.{side}.authentication")),
            "{side}: the exit message names the field to check:\n{last}"
        );
        assert!(
            !run.output().contains(&wrong),
            "the wrong password is in the output:\n{}",
            run.output()
        );
        assert_eq!(
            mirrored_count(&target, &sasl_client(&bob, None)),
            0,
            "{side}: nothing mirrored"
        );
    }
}

/// Secrets never reach the worker's output or its `/metrics`, even with every log switched on: the worker's
/// at debug level and librdkafka's `debug: all` (passed through `config`). Every credential carries a unique
/// marker; the client key is looked for line by line.
#[test]
fn credentials_never_appear_in_the_output_or_metrics_even_at_debug_level() {
    let files = Files::new();
    let ca = Ca::new("leak CA");
    let client = ca.issue("kafka-mirror", &[], ExtendedKeyUsagePurpose::ClientAuth);
    let alice = user("alice", &marker("source-password"), Scram::Sha256);
    let bob = user("bob", &marker("target-password"), Scram::Sha512);
    let source = Broker::start_with(
        "leak-source",
        &BrokerOptions {
            tls: files.broker_tls("source", &ca.broker()),
            users: vec![alice.clone()],
        },
    );
    let target = Broker::start_with(
        "leak-target",
        &BrokerOptions {
            users: vec![bob.clone()],
            ..BrokerOptions::default()
        },
    );
    let seeded = seed(&source, &sasl_client(&alice, Some(&ca)));
    files.secret("source-tls", "ca.crt", &ca.pem());
    files.secret("source-tls", "tls.crt", &client.cert);
    files.secret("source-tls", "tls.key", &client.key);
    files.secret("source-creds", "password", &alice.password);
    files.secret("target-creds", "password", &bob.password);

    let document = files.document(
        &format!(
            "{{bootstrapServers: \"{}\", tls: {{ca: {{name: source-tls, key: ca.crt}}, clientCertificate: \
             {{name: source-tls, key: tls.crt}}, clientKey: {{name: source-tls, key: tls.key}}}}, authentication: \
             {{mechanism: SCRAM-SHA-256, username: alice, password: {{name: source-creds, key: password}}}}, \
             config: {{debug: all}}}}",
            source.bootstrap
        ),
        &format!(
            "{{bootstrapServers: \"{}\", authentication: {{mechanism: SCRAM-SHA-512, username: bob, password: \
             {{name: target-creds, key: password}}}}, config: {{debug: all}}}}",
            target.bootstrap
        ),
        "continuous",
    );
    let mut worker = files.worker(&document, &[("RUST_LOG", "debug")]);
    let copy = read_records(
        &config(&target, &sasl_client(&bob, None)),
        MIRRORED,
        seeded.len(),
        MIGRATION_TIMEOUT,
    );
    let (_, metrics) = testkit::http_get(worker.http, "/metrics").unwrap_or_default();
    assert!(worker.is_running(), "the worker still runs");
    let run = worker.stop();
    let verification = testkit::verify(&seeded, &copy);
    assert!(verification.is_intact(), "{verification}\n{}", run.output());

    // The logs really were on, down to librdkafka's SASL and TLS debugging, and /metrics answered.
    assert!(
        run.stderr.contains("DEBUG") && run.stderr.contains("SASL") && run.stderr.contains("SSL"),
        "debug logging was not on:\n{}",
        run.output()
    );
    assert!(
        metrics.contains("kafka_mirror_"),
        "/metrics answered: {metrics}"
    );
    // librdkafka dumps its configuration at `debug: all`: what keeps the credentials out is its redaction.
    for redacted in ["sasl.password = [redacted]", "ssl.key.pem = [redacted]"] {
        assert!(
            run.stderr.contains(redacted),
            "no {redacted:?} in the output"
        );
    }

    let everything = format!("{}\n{metrics}", run.output());
    for secret in [&alice.password, &bob.password] {
        assert!(
            !everything.contains(secret.as_str()),
            "a password leaked ({secret})"
        );
    }
    assert_no_key_material(&everything, &client.key);
}
