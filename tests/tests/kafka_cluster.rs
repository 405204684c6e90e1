//! The Apache Kafka fixture itself (tests/kafka/cluster.sh under `KafkaCluster`): each listener admits the
//! clients it should and refuses the others, the admin operations the engine tests rely on do what they say,
//! a killed broker comes back with its data, and no broker outlives the process that started it.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use kafka_mirror_clients::broker_probe::BrokerProbe;
use kafka_mirror_samples as samples;
use kafka_mirror_tests::{ClusterOptions, KafkaCluster, SaslUser, Scram, client_config};
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};

/// One cluster for the listener tests, with a PLAIN and a SCRAM user.
fn secured() -> &'static KafkaCluster {
    static CLUSTER: std::sync::OnceLock<KafkaCluster> = std::sync::OnceLock::new();
    CLUSTER.get_or_init(|| {
        KafkaCluster::start(&ClusterOptions {
            users: vec![
                SaslUser::plain("pat", "pat-password"),
                SaslUser::scram("sam", "sam-password", Scram::Sha512),
            ],
            ..ClusterOptions::default()
        })
    })
}

/// Whether a client with `settings` can read the cluster's metadata through `bootstrap`.
fn reaches(bootstrap: &str, settings: &[(&str, &str)]) -> bool {
    let consumer: BaseConsumer = client_config(bootstrap, settings)
        .create()
        .expect("a metadata client");
    consumer
        .fetch_metadata(None, Duration::from_secs(4))
        .is_ok_and(|m| !m.brokers().is_empty())
}

fn pem(cluster: &KafkaCluster, file: &str) -> String {
    std::fs::read_to_string(cluster.pki.join(file)).unwrap()
}

#[test]
fn the_tls_listener_requires_a_client_certificate_from_the_cluster_ca() {
    let cluster = secured();
    let ca = pem(cluster, "ca.crt");
    let (cert, key) = (pem(cluster, "client.crt"), pem(cluster, "client.key"));
    let tls = [("security.protocol", "ssl"), ("ssl.ca.pem", ca.as_str())];
    assert!(
        !reaches(&cluster.ssl, &tls),
        "a client without a certificate is refused"
    );
    let with_certificate = [
        tls[0],
        tls[1],
        ("ssl.certificate.pem", cert.as_str()),
        ("ssl.key.pem", key.as_str()),
    ];
    assert!(
        reaches(&cluster.ssl, &with_certificate),
        "a client with the CA's client certificate is admitted"
    );
    assert!(
        !reaches(&cluster.ssl, &[]),
        "a plaintext client is refused on the TLS listener"
    );
}

#[test]
fn the_sasl_listeners_admit_plain_and_scram_users_with_their_passwords_only() {
    let cluster = secured();
    let ca = pem(cluster, "ca.crt");
    let sasl = |protocol: &'static str, mechanism: &'static str, user: &'static str, password| {
        let mut settings = vec![
            ("security.protocol", protocol),
            ("sasl.mechanism", mechanism),
            ("sasl.username", user),
            ("sasl.password", password),
        ];
        if protocol == "sasl_ssl" {
            settings.push(("ssl.ca.pem", ca.as_str()));
        }
        settings
    };
    for (protocol, bootstrap) in [
        ("sasl_plaintext", &cluster.sasl_plaintext),
        ("sasl_ssl", &cluster.sasl_ssl),
    ] {
        assert!(
            reaches(bootstrap, &sasl(protocol, "PLAIN", "pat", "pat-password")),
            "{protocol} PLAIN"
        );
        assert!(
            reaches(
                bootstrap,
                &sasl(protocol, "SCRAM-SHA-512", "sam", "sam-password")
            ),
            "{protocol} SCRAM-SHA-512"
        );
        assert!(
            !reaches(bootstrap, &sasl(protocol, "PLAIN", "pat", "wrong")),
            "{protocol}: a wrong PLAIN password is refused"
        );
        assert!(
            !reaches(bootstrap, &sasl(protocol, "SCRAM-SHA-512", "sam", "wrong")),
            "{protocol}: a wrong SCRAM password is refused"
        );
    }
    // A SCRAM user added while the cluster runs, with Kafka's own kafka-configs tool.
    cluster.add_scram_user(&SaslUser::scram("later", "later-password", Scram::Sha256));
    let deadline = Instant::now() + Duration::from_secs(20);
    while !reaches(
        &cluster.sasl_plaintext,
        &sasl("sasl_plaintext", "SCRAM-SHA-256", "later", "later-password"),
    ) {
        assert!(
            Instant::now() < deadline,
            "the user added with kafka-configs was never admitted"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn topic_configs_are_read_back_altered_and_records_deleted_as_asked() {
    let cluster = KafkaCluster::shared();
    cluster.create_topic("fixture-admin", 2, 1, &[("retention.ms", "3600000")]);
    assert_eq!(cluster.partitions("fixture-admin"), 2);
    assert_eq!(
        cluster.topic_config("fixture-admin")["retention.ms"],
        "3600000"
    );

    cluster.alter_topic_config("fixture-admin", &[("max.message.bytes", "20000")]);
    let config = cluster.topic_config("fixture-admin");
    assert_eq!(config["max.message.bytes"], "20000");
    assert_ne!(
        config["retention.ms"], "3600000",
        "AlterConfigs replaces the whole set: what is not named returns to its default"
    );

    samples::produce_with(&cluster.client(), "fixture-admin", 0, 100, 10, 16).unwrap();
    assert_eq!(cluster.records("fixture-admin"), 100);
    let consumer: BaseConsumer = cluster.client().create().unwrap();
    let (_, high) = consumer
        .fetch_watermarks("fixture-admin", 0, Duration::from_secs(5))
        .unwrap();
    cluster.delete_records("fixture-admin", 0, high / 2);
    let (low, _) = consumer
        .fetch_watermarks("fixture-admin", 0, Duration::from_secs(5))
        .unwrap();
    assert_eq!(low, high / 2, "the log now starts where DeleteRecords said");
}

#[test]
fn a_killed_broker_of_three_comes_back_with_its_data_and_the_cluster_serves_meanwhile() {
    let cluster = KafkaCluster::start(&ClusterOptions {
        brokers: 3,
        ..ClusterOptions::default()
    });
    cluster.create_topic("fixture-replicated", 1, 3, &[("min.insync.replicas", "2")]);
    samples::produce_with(&cluster.client(), "fixture-replicated", 0, 200, 10, 16).unwrap();
    let leader = cluster.leader("fixture-replicated", 0).expect("a leader") as u8;

    cluster.kill_broker(leader);
    let deadline = Instant::now() + Duration::from_secs(30);
    let new_leader = loop {
        match cluster.leader("fixture-replicated", 0) {
            Some(l) if l as u8 != leader => break l as u8,
            _ => assert!(
                Instant::now() < deadline,
                "no new leader after broker {leader} died"
            ),
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    // Two of three replicas meet min.insync.replicas = 2: writes go on while the broker is down.
    samples::produce_with(&cluster.client(), "fixture-replicated", 200, 300, 10, 16).unwrap();

    cluster.start_broker(leader);
    assert_eq!(cluster.records("fixture-replicated"), 300);
    let copy = samples::read_all(
        &cluster.internal,
        "fixture-replicated",
        300,
        Duration::from_secs(30),
    )
    .unwrap();
    assert_eq!(
        copy.len(),
        300,
        "every record survived the kill (new leader {new_leader})"
    );
}

#[test]
fn the_watchdog_stops_a_cluster_once_the_process_that_started_it_is_gone() {
    let mut owner = Command::new("sleep").arg("3").spawn().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cluster_dir = dir.path().join("orphan");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("kafka/cluster.sh");
    let started = Command::new("bash")
        .arg(&script)
        .args(["start", "--dir", cluster_dir.to_str().unwrap()])
        .args(["--owner-pid", &owner.id().to_string()])
        .output()
        .unwrap();
    assert!(
        started.status.success(),
        "{}",
        String::from_utf8_lossy(&started.stderr)
    );
    let pid = std::fs::read_to_string(cluster_dir.join("pid-1")).unwrap();
    let _ = owner.wait();

    let deadline = Instant::now() + Duration::from_secs(30);
    while Path::new(&format!("/proc/{}", pid.trim())).exists() || cluster_dir.exists() {
        assert!(
            Instant::now() < deadline,
            "the broker (pid {}) outlived its owner by 30 s",
            pid.trim()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The plaintext listener advertises the name it is told to, even one no resolver knows (HDInsight's
/// worker-node FQDNs): a client bootstrapped by IP learns that name and cannot resolve it, while the internal
/// listener keeps serving the test's own clients.
#[test]
fn the_plaintext_listener_advertises_the_host_name_it_is_given() {
    const NAME: &str = "wn0-kafka.unresolvable.internal.cloudapp.net";
    let cluster = KafkaCluster::start(&ClusterOptions {
        advertised_host: Some(NAME.into()),
        ..ClusterOptions::default()
    });
    assert!(cluster.plaintext.starts_with(&format!("{NAME}:")));
    let by_ip = cluster.plaintext.replace(NAME, "127.0.0.1");
    // The worker's own probe, which explains a failure in librdkafka's words.
    let probe = BrokerProbe::new(
        &ClientConfig::new()
            .set("bootstrap.servers", &by_ip)
            .clone()
            .into(),
        "spec.source",
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let outcome = probe.metadata(None, Duration::from_secs(3));
        if let Ok(metadata) = &outcome {
            assert!(
                metadata.brokers().iter().all(|b| b.host() == NAME),
                "metadata names the broker by its advertised name"
            );
        }
        match outcome {
            Err(e) if e.explained.contains(NAME) => break,
            outcome => assert!(
                Instant::now() < deadline,
                "no error named the advertised host {NAME} within 30 s: {:?}",
                outcome.err().map(|e| e.explained)
            ),
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(reaches(&cluster.internal, &[]));
}
