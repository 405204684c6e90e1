//! TLS and SASL between the `mirror-worker` process and Apache Kafka brokers: certificates and credentials come
//! from Secrets (files laid out as the operator mounts them, or `KMIRROR_SECRET_*` variables), records arrive
//! when they are right, nothing is mirrored when they are wrong and the worker gives up by itself naming the
//! field to check, and no credential ever shows in the worker's output or `/metrics`.
//!
//! One cluster serves most tests (see [`secure`]): its SSL listener requires a client certificate
//! (`ssl.client.auth=required`), its SASL_SSL and SASL_PLAINTEXT listeners take PLAIN and SCRAM-SHA-256/512
//! users that Kafka's own tools created. A mirror's source and target are two listeners of that cluster: each
//! listener authenticates on its own, so the worker's source and target clients go through exactly what two
//! clusters would ask of them (`broker_processes.rs` runs two clusters). Only the wrong-host-name case starts a
//! cluster of its own, since the broker certificate itself must differ. The certificates a broker must refuse
//! are made at test time (rcgen).
//!
//! The tests of this binary run side by side, so each mirror has its own name (so its own consumer group) and
//! its own topics; cases of one test that mostly wait for the worker to give up run side by side too.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use kafka_mirror_crds::Mode;
use kafka_mirror_crds::cluster::SaslMechanism;
use kafka_mirror_samples::{self as samples, SampleRecord};
use kafka_mirror_tests::document::{Connection, MirrorDocument, secret};
use kafka_mirror_tests::{
    ClusterOptions, Finished, KafkaCluster, SaslUser, Scram, Worker, client_config, read_records,
};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rdkafka::consumer::{BaseConsumer, Consumer};

const RECORDS: u64 = 300;
const MIGRATION_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a worker that cannot read a cluster may take to give up (its metadata timeout is 15 s).
const GIVE_UP_TIMEOUT: Duration = Duration::from_secs(60);

/// Users of the shared cluster known from its start (stored at format time).
const PLAIN_USER: (&str, &str) = ("pat", "pat-plain-password");
const SCRAM_256_USER: (&str, &str) = ("alice", "alice-scram-256-password");
const SCRAM_512_USER: (&str, &str) = ("bob", "bob-scram-512-password");

/// The cluster most tests share: the script's test PKI (a CA, the broker certificate for 127.0.0.1, a client
/// certificate for mutual TLS in `client.crt`/`client.key`) and the users above.
fn secure() -> &'static KafkaCluster {
    static CLUSTER: OnceLock<KafkaCluster> = OnceLock::new();
    CLUSTER.get_or_init(|| {
        KafkaCluster::start(&ClusterOptions {
            users: vec![
                SaslUser::plain(PLAIN_USER.0, PLAIN_USER.1),
                SaslUser::scram(SCRAM_256_USER.0, SCRAM_256_USER.1, Scram::Sha256),
                SaslUser::scram(SCRAM_512_USER.0, SCRAM_512_USER.1, Scram::Sha512),
            ],
            ..ClusterOptions::default()
        })
    })
}

/// Adds a SCRAM user with Kafka's `kafka-configs` and waits until the broker admits it: the tool returns once
/// the controller took the credential, which the broker applies a moment later.
fn add_scram_user(cluster: &KafkaCluster, user: &SaslUser) {
    cluster.add_scram_user(user);
    let settings = [
        ("security.protocol", "sasl_plaintext"),
        ("sasl.mechanism", user.mechanism_name()),
        ("sasl.username", user.name.as_str()),
        ("sasl.password", user.password.as_str()),
    ];
    let client: BaseConsumer = client_config(&cluster.sasl_plaintext, &settings)
        .create()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while client.fetch_metadata(None, Duration::from_secs(3)).is_err() {
        assert!(
            Instant::now() < deadline,
            "the SCRAM user {} added with kafka-configs is not admitted after 30 s",
            user.name
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A PEM file of a cluster's PKI.
fn pki_file(cluster: &KafkaCluster, file: &str) -> String {
    std::fs::read_to_string(cluster.pki.join(file))
        .unwrap_or_else(|e| panic!("{}/{file}: {e}", cluster.pki.display()))
}

/// A certificate authority made for one test.
struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// A certificate and its private key (PKCS#8), both PEM.
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

    fn client(&self, common_name: &str) -> Issued {
        self.issue(common_name, &[], ExtendedKeyUsagePurpose::ClientAuth)
    }

    /// A PKI directory for [`ClusterOptions::pki`]: this CA's `ca.crt`, and `broker.pem` (the broker's PKCS#8
    /// key followed by its certificate chain) with `broker` as the broker's certificate.
    fn write_pki(&self, dir: &Path, broker: &Issued) {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join("ca.crt"), self.pem()).unwrap();
        std::fs::write(
            dir.join("broker.pem"),
            format!("{}{}{}", broker.key, broker.cert, self.pem()),
        )
        .unwrap();
    }
}

/// One mirror of a test: its name (so its consumer group), the source topic it copies and where to.
struct Mirror {
    name: String,
    files: tempfile::TempDir,
}

impl Mirror {
    fn new(name: &str) -> Mirror {
        let mirror = Mirror {
            name: name.to_string(),
            files: tempfile::tempdir().unwrap(),
        };
        std::fs::create_dir_all(mirror.secrets()).unwrap();
        mirror
    }

    fn topic(&self) -> String {
        format!("{}-orders", self.name)
    }

    fn mirrored(&self) -> String {
        format!("mirror.{}", self.topic())
    }

    /// The Secrets directory, laid out as the operator mounts Secrets: `<secrets>/<secret name>/<key>`.
    fn secrets(&self) -> PathBuf {
        self.files.path().join("secrets")
    }

    /// A Secret key as a mounted file (with the trailing newline `kubectl create secret --from-file` keeps).
    fn secret(&self, name: &str, key: &str, value: &str) -> &Mirror {
        let dir = self.secrets().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(key), format!("{value}\n")).unwrap();
        self
    }

    /// `self.topic()` with 3 partitions and RECORDS sample records on `cluster`, through its internal listener.
    fn seed(&self, cluster: &KafkaCluster) -> Vec<SampleRecord> {
        cluster.create_topic(&self.topic(), 3, 1, &[]);
        samples::produce_with(&cluster.client(), &self.topic(), 0, RECORDS, 30, 64)
            .expect("seeding the topic")
    }

    /// The `KafkaMirror` document, copying [`Mirror::topic`] to [`Mirror::mirrored`] from `source` to
    /// `target`.
    fn document(&self, source: Connection, target: Connection, mode: Mode) -> PathBuf {
        MirrorDocument::new(&self.name, source, target)
            .include(&self.topic())
            .rename("mirror.{topic}")
            .create(1, &[])
            .mode(mode)
            .num_streams(1)
            .write_in(self.files.path())
    }

    fn worker(&self, document: &Path, env: &[(&str, &str)]) -> Worker {
        Worker::spawn(document, &self.secrets(), env)
    }

    /// Runs the worker on a `mode: migrate` document until it exits by itself (or `timeout`).
    fn migrate(
        &self,
        source: Connection,
        target: Connection,
        env: &[(&str, &str)],
        timeout: Duration,
    ) -> Finished {
        let document = self.document(source, target, Mode::Migrate);
        let started = Instant::now();
        let run = self.worker(&document, env).finish(timeout);
        eprintln!(
            "{}: the worker exited with {} after {:.1} s",
            self.name,
            run.status,
            started.elapsed().as_secs_f64()
        );
        run
    }

    /// Asserts the run was a complete migration and every seeded record is on `cluster`'s mirrored topic,
    /// intact (key, value, headers, timestamp, per-key order), none twice.
    fn assert_mirrored(&self, run: &Finished, cluster: &KafkaCluster, seeded: &[SampleRecord]) {
        run.assert_migration_complete(&self.name);
        let copy = read_records(
            &cluster.client(),
            &self.mirrored(),
            seeded.len(),
            Duration::from_secs(60),
        );
        let verification = samples::verify(seeded, &copy);
        eprintln!("{}: {verification}", self.name);
        assert!(verification.is_intact(), "{}: {verification}", self.name);
        assert_eq!(verification.duplicated, 0, "{}: {verification}", self.name);
    }

    /// Asserts nothing reached the target: its topic holds no record (it was not even created).
    fn assert_nothing_mirrored(&self, cluster: &KafkaCluster) {
        let records = cluster.records(&self.mirrored());
        eprintln!("{}: {records} records mirrored", self.name);
        assert_eq!(records, 0, "{}: nothing mirrored", self.name);
    }
}

/// The worker gave up by itself with exit code 1, its last line an error naming what it could not do (`what`)
/// and the field to check (`field`). Returns that line.
fn assert_gave_up(run: &Finished, what: &str, field: &str) -> String {
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
        .unwrap_or_default()
        .to_string();
    assert!(
        last.starts_with("mirror-worker: error: ") && last.contains(what) && last.contains(field),
        "the last line should say what failed ({what:?}) and name {field:?}:\n{}",
        run.output()
    );
    last
}

/// A cluster section's TLS and SASL settings, from Secrets as a test lays them out.
trait FromSecrets {
    /// `tls:` with the CA from Secret `secret` key `ca.crt`, and the client certificate and key from keys
    /// `tls.crt` and `key` when `key` is given.
    fn tls_from(self, secret: &str, key: Option<&str>) -> Self;
    /// `authentication:` with `mechanism`, `username` and the password from Secret `secret` key `password`.
    fn authentication_from(self, mechanism: SaslMechanism, username: &str, secret: &str) -> Self;
}

impl FromSecrets for Connection {
    fn tls_from(self, name: &str, key: Option<&str>) -> Connection {
        let client = key.map(|key| (secret(name, "tls.crt"), secret(name, key)));
        self.tls(secret(name, "ca.crt"), client)
    }

    fn authentication_from(
        self,
        mechanism: SaslMechanism,
        username: &str,
        name: &str,
    ) -> Connection {
        self.authentication(mechanism, username, secret(name, "password"))
    }
}

/// The cluster's plaintext listener, for the side of a mirror a test does not secure.
fn plaintext(cluster: &KafkaCluster) -> Connection {
    Connection::new(&cluster.plaintext)
}

/// Runs `cases` side by side (each mostly waits for a worker), re-raising the first panic.
fn side_by_side<'a>(cases: Vec<Box<dyn FnOnce() + Send + 'a>>) {
    std::thread::scope(|scope| {
        let handles: Vec<_> = cases.into_iter().map(|case| scope.spawn(case)).collect();
        for handle in handles {
            if let Err(panic) = handle.join() {
                std::panic::resume_unwind(panic);
            }
        }
    });
}

/// TLS whose only client material is the CA from a mounted Secret file (the SASL_SSL listener asks for no
/// client certificate), with SASL/PLAIN on top; the target over SASL_PLAINTEXT with PLAIN, its password from a
/// `KMIRROR_SECRET_*` variable.
#[test]
fn tls_with_the_ca_from_a_secret_and_sasl_plain_mirror_every_record() {
    let cluster = secure();
    let mirror = Mirror::new("tls-plain");
    let seeded = mirror.seed(cluster);
    mirror
        .secret("source-tls", "ca.crt", &pki_file(cluster, "ca.crt"))
        .secret("source-creds", "password", PLAIN_USER.1);

    let source = Connection::new(&cluster.sasl_ssl)
        .tls_from("source-tls", None)
        .authentication_from(SaslMechanism::Plain, PLAIN_USER.0, "source-creds");
    let target = Connection::new(&cluster.sasl_plaintext).authentication_from(
        SaslMechanism::Plain,
        PLAIN_USER.0,
        "target-creds",
    );
    let run = mirror.migrate(
        source,
        target,
        &[("KMIRROR_SECRET_TARGET_CREDS_PASSWORD", PLAIN_USER.1)],
        MIGRATION_TIMEOUT,
    );
    mirror.assert_mirrored(&run, cluster, &seeded);
}

/// The SSL listener requires a client certificate signed by the cluster's CA. Without one, and with one from
/// another CA, the broker refuses the connection: nothing is mirrored, and the worker gives up by itself naming
/// the client certificate fields. A key that does not belong to the certificate is refused before any
/// connection. The right certificate and key from Secrets (the key from a `KMIRROR_SECRET_*` variable) mirror
/// every record.
#[test]
fn mutual_tls_is_enforced_by_the_broker_and_the_certificate_from_secrets_is_admitted() {
    let cluster = secure();
    let ca = pki_file(cluster, "ca.crt");
    let (cert, key) = (
        pki_file(cluster, "client.crt"),
        pki_file(cluster, "client.key"),
    );
    let foreign = Ca::new("someone else's CA").client("kafka-mirror");
    let other = Ca::new("a third CA").client("someone-else");

    let refused = |name: &'static str,
                   client_key: Option<&'static str>,
                   certificate: Option<(String, String)>| {
        let ca = ca.clone();
        Box::new(move || {
            let mirror = Mirror::new(name);
            mirror.seed(cluster);
            mirror.secret("source-tls", "ca.crt", &ca);
            if let Some((cert, key)) = &certificate {
                mirror
                    .secret("source-tls", "tls.crt", cert)
                    .secret("source-tls", "tls.key", key);
            }
            let source = Connection::new(&cluster.ssl).tls_from("source-tls", client_key);
            let run = mirror.migrate(source, plaintext(cluster), &[], GIVE_UP_TIMEOUT);
            let last = assert_gave_up(
                &run,
                "reading the source cluster's topic list",
                "check spec.source.tls.clientCertificate",
            );
            eprintln!("{name}: {last}");
            mirror.assert_nothing_mirrored(cluster);
            if let Some((_, key)) = &certificate {
                assert_no_key_material(&run.output(), key);
            }
        }) as Box<dyn FnOnce() + Send>
    };
    let mismatched = {
        let (ca, cert, other_key) = (ca.clone(), cert.clone(), other.key.clone());
        Box::new(move || {
            let mirror = Mirror::new("mtls-mismatched-key");
            mirror.seed(cluster);
            mirror
                .secret("source-tls", "ca.crt", &ca)
                .secret("source-tls", "tls.crt", &cert)
                .secret("source-tls", "other.key", &other_key);
            let source = Connection::new(&cluster.ssl).tls_from("source-tls", Some("other.key"));
            let run = mirror.migrate(source, plaintext(cluster), &[], GIVE_UP_TIMEOUT);
            // Refused at once, naming librdkafka's setting and why, before any connection.
            assert_gave_up(
                &run,
                "creating the source admin client",
                "ssl.key.pem failed",
            );
            assert!(
                run.stderr.contains("key values mismatch"),
                "{}",
                run.output()
            );
            mirror.assert_nothing_mirrored(cluster);
            assert_no_key_material(&run.output(), &other_key);
        }) as Box<dyn FnOnce() + Send>
    };
    let admitted = {
        let (ca, cert, key) = (ca.clone(), cert.clone(), key.clone());
        Box::new(move || {
            let mirror = Mirror::new("mtls-admitted");
            let seeded = mirror.seed(cluster);
            mirror
                .secret("source-tls", "ca.crt", &ca)
                .secret("source-tls", "tls.crt", &cert);
            let source = Connection::new(&cluster.ssl).tls_from("source-tls", Some("tls.key"));
            // The key from an environment variable (what `mirror-worker --config` users may prefer to a file).
            let env = [("KMIRROR_SECRET_SOURCE_TLS_TLS_KEY", key.as_str())];
            let run = mirror.migrate(source, plaintext(cluster), &env, MIGRATION_TIMEOUT);
            mirror.assert_mirrored(&run, cluster, &seeded);
            assert_no_key_material(&run.output(), &key);
        }) as Box<dyn FnOnce() + Send>
    };
    side_by_side(vec![
        refused("mtls-no-certificate", None, None),
        refused(
            "mtls-foreign-certificate",
            Some("tls.key"),
            Some((foreign.cert.clone(), foreign.key.clone())),
        ),
        mismatched,
        admitted,
    ]);
}

/// Certificate verification is on: a worker that trusts another CA than the one that signed the broker's
/// certificate, or a broker certificate signed by the right CA for another host name, is refused; nothing is
/// mirrored; the worker exits 1 by itself after its metadata timeout, with librdkafka's reason and the fields
/// to check. In both cases the worker presents a valid client certificate, so the broker's certificate is the
/// only thing wrong.
#[test]
fn a_broker_certificate_from_another_ca_or_for_another_host_is_refused() {
    let cluster = secure();
    let foreign_ca = Box::new(|| {
        let mirror = Mirror::new("foreign-ca");
        mirror.seed(cluster);
        mirror
            .secret("source-tls", "ca.crt", &Ca::new("someone else's CA").pem())
            .secret("source-tls", "tls.crt", &pki_file(cluster, "client.crt"))
            .secret("source-tls", "tls.key", &pki_file(cluster, "client.key"));
        let source = Connection::new(&cluster.ssl).tls_from("source-tls", Some("tls.key"));
        let run = mirror.migrate(source, plaintext(cluster), &[], GIVE_UP_TIMEOUT);
        assert_refused_certificate(&mirror, &run);
        mirror.assert_nothing_mirrored(cluster);
    }) as Box<dyn FnOnce() + Send>;
    let wrong_host = Box::new(|| {
        // A broker whose certificate, signed by the CA the worker trusts, names another host.
        let ca = Ca::new("wrong-host CA");
        let pki = tempfile::tempdir().unwrap();
        ca.write_pki(
            pki.path(),
            &ca.issue(
                "broker",
                &["kafka.example"],
                ExtendedKeyUsagePurpose::ServerAuth,
            ),
        );
        let started = Instant::now();
        let wrong_host = KafkaCluster::start(&ClusterOptions {
            pki: Some(pki.path().to_path_buf()),
            ..ClusterOptions::default()
        });
        eprintln!(
            "wrong-host: its cluster started in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        let client = ca.client("kafka-mirror");
        let mirror = Mirror::new("wrong-host");
        mirror.seed(&wrong_host);
        mirror
            .secret("source-tls", "ca.crt", &ca.pem())
            .secret("source-tls", "tls.crt", &client.cert)
            .secret("source-tls", "tls.key", &client.key);
        // Control: the same CA and client certificate without host name verification are admitted, so the
        // name is the only thing the worker's client can refuse.
        let ca_pem = ca.pem();
        let unverified_name = [
            ("security.protocol", "ssl"),
            ("ssl.ca.pem", ca_pem.as_str()),
            ("ssl.certificate.pem", client.cert.as_str()),
            ("ssl.key.pem", client.key.as_str()),
            ("ssl.endpoint.identification.algorithm", "none"),
        ];
        let control: BaseConsumer = client_config(&wrong_host.ssl, &unverified_name)
            .create()
            .unwrap();
        assert!(
            control
                .fetch_metadata(None, Duration::from_secs(10))
                .is_ok(),
            "wrong-host: the certificate chain is valid apart from the host name"
        );
        let source = Connection::new(&wrong_host.ssl).tls_from("source-tls", Some("tls.key"));
        let run = mirror.migrate(source, plaintext(&wrong_host), &[], GIVE_UP_TIMEOUT);
        assert_refused_certificate(&mirror, &run);
        mirror.assert_nothing_mirrored(&wrong_host);
    }) as Box<dyn FnOnce() + Send>;
    side_by_side(vec![foreign_ca, wrong_host]);
}

/// The run gave up on the broker's certificate: librdkafka's reason and the TLS fields to check.
fn assert_refused_certificate(mirror: &Mirror, run: &Finished) {
    let last = assert_gave_up(
        run,
        "reading the source cluster's topic list",
        "check spec.source.tls.ca",
    );
    eprintln!("{}: {last}", mirror.name);
    assert!(
        last.contains("SSL handshake failed") && last.contains("certificate verify failed"),
        "{}: the exit message says why:\n{last}",
        mirror.name
    );
}

/// SCRAM-SHA-256 on the source over SASL_PLAINTEXT (a user stored at format time), SCRAM-SHA-512 on the target
/// over SASL_SSL (a user added with `kafka-configs` while the cluster runs); the source password from a mounted
/// Secret file, the target's from `KMIRROR_SECRET_*`.
#[test]
fn scram_sha_256_and_sha_512_from_secrets_mirror_every_record() {
    let cluster = secure();
    let carol = SaslUser::scram("carol", "carol-scram-512-password", Scram::Sha512);
    add_scram_user(cluster, &carol);
    let mirror = Mirror::new("scram");
    let seeded = mirror.seed(cluster);
    mirror
        .secret("source-creds", "password", SCRAM_256_USER.1)
        .secret("target-tls", "ca.crt", &pki_file(cluster, "ca.crt"));

    let source = Connection::new(&cluster.sasl_plaintext).authentication_from(
        SaslMechanism::ScramSha256,
        SCRAM_256_USER.0,
        "source-creds",
    );
    let target = Connection::new(&cluster.sasl_ssl)
        .tls_from("target-tls", None)
        .authentication_from(SaslMechanism::ScramSha512, &carol.name, "target-creds");
    let env = [(
        "KMIRROR_SECRET_TARGET_CREDS_PASSWORD",
        carol.password.as_str(),
    )];
    let run = mirror.migrate(source, target, &env, MIGRATION_TIMEOUT);
    mirror.assert_mirrored(&run, cluster, &seeded);
}

/// A wrong password on either side, for each mechanism: nothing is mirrored and the worker exits 1 by itself
/// after its metadata timeout, naming the cluster it could not read, librdkafka's reason (the failed SASL
/// authentication) and `spec.<side>.authentication`. The wrong password is not in the output, with the
/// worker's debug logs and librdkafka's `debug: all` on.
#[test]
fn a_wrong_password_mirrors_nothing_and_the_worker_gives_up_naming_the_field() {
    let cluster = secure();
    let ca = pki_file(cluster, "ca.crt");
    // (case, side with the wrong password, mechanism, user, listener, TLS)
    let cases = [
        (
            "wrong-scram-256-source",
            "source",
            SaslMechanism::ScramSha256,
            SCRAM_256_USER.0,
            &cluster.sasl_plaintext,
            false,
        ),
        (
            "wrong-scram-512-target",
            "target",
            SaslMechanism::ScramSha512,
            SCRAM_512_USER.0,
            &cluster.sasl_ssl,
            true,
        ),
        (
            "wrong-plain-source",
            "source",
            SaslMechanism::Plain,
            PLAIN_USER.0,
            &cluster.sasl_ssl,
            true,
        ),
    ];
    let runs = cases
        .into_iter()
        .map(|(name, side, mechanism, user, bootstrap, with_tls)| {
            let ca = ca.clone();
            Box::new(move || {
                let mirror = Mirror::new(name);
                mirror.seed(cluster);
                let wrong = marker("wrong-password");
                mirror
                    .secret("wrong", "password", &wrong)
                    .secret("tls", "ca.crt", &ca);
                let mut secured = Connection::new(bootstrap)
                    .authentication_from(mechanism, user, "wrong")
                    .config("debug", "all");
                if with_tls {
                    secured = secured.tls_from("tls", None);
                }
                let open = plaintext(cluster);
                let (source, target) = match side {
                    "source" => (secured, open),
                    _ => (open, secured),
                };
                let run = mirror.migrate(source, target, &[("RUST_LOG", "debug")], GIVE_UP_TIMEOUT);
                let last = assert_gave_up(
                    &run,
                    &format!("reading the {side} cluster's topic list"),
                    &format!("check spec.{side}.authentication"),
                );
                eprintln!("{name}: {last}");
                assert!(
                    last.contains("SASL authentication error"),
                    "{name}: the exit message says why:\n{last}"
                );
                assert!(
                    !run.output().contains(&wrong),
                    "{name}: the wrong password is in the output:\n{}",
                    run.output()
                );
                mirror.assert_nothing_mirrored(cluster);
            }) as Box<dyn FnOnce() + Send>
        })
        .collect();
    side_by_side(runs);
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

/// Secrets never reach the worker's output or its `/metrics`, even with every log switched on: the worker's
/// at debug level and librdkafka's `debug: all` (passed through `config`). Every password is a unique marker
/// (SCRAM users added for this test with `kafka-configs`); the client key is looked for line by line.
#[test]
fn credentials_never_appear_in_the_output_or_metrics_even_at_debug_level() {
    let cluster = secure();
    let source_user = SaslUser::scram("leak-source", &marker("source-password"), Scram::Sha256);
    let target_user = SaslUser::scram("leak-target", &marker("target-password"), Scram::Sha512);
    add_scram_user(cluster, &source_user);
    add_scram_user(cluster, &target_user);
    let (cert, key) = (
        pki_file(cluster, "client.crt"),
        pki_file(cluster, "client.key"),
    );
    let mirror = Mirror::new("leak");
    let seeded = mirror.seed(cluster);
    mirror
        .secret("source-tls", "ca.crt", &pki_file(cluster, "ca.crt"))
        .secret("source-tls", "tls.crt", &cert)
        .secret("source-tls", "tls.key", &key)
        .secret("source-creds", "password", &source_user.password)
        .secret("target-creds", "password", &target_user.password);

    let source = Connection::new(&cluster.sasl_ssl)
        .tls_from("source-tls", Some("tls.key"))
        .authentication_from(
            SaslMechanism::ScramSha256,
            &source_user.name,
            "source-creds",
        )
        .config("debug", "all");
    let target = Connection::new(&cluster.sasl_plaintext)
        .authentication_from(
            SaslMechanism::ScramSha512,
            &target_user.name,
            "target-creds",
        )
        .config("debug", "all");
    let document = mirror.document(source, target, Mode::Continuous);
    let mut worker = mirror.worker(&document, &[("RUST_LOG", "debug")]);
    let copy = read_records(
        &cluster.client(),
        &mirror.mirrored(),
        seeded.len(),
        MIGRATION_TIMEOUT,
    );
    let (_, metrics) = kafka_mirror_tests::http_get(worker.http, "/metrics").unwrap_or_default();
    assert!(worker.is_running(), "the worker still runs");
    let run = worker.stop();
    let verification = samples::verify(&seeded, &copy);
    eprintln!("leak: {verification}");
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
    eprintln!(
        "leak: searched {} bytes of output and metrics",
        everything.len()
    );
    for secret in [&source_user.password, &target_user.password] {
        assert!(
            !everything.contains(secret.as_str()),
            "a password leaked ({secret})"
        );
    }
    assert_no_key_material(&everything, &key);
}
