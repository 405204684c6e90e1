//! Apache Kafka clusters for the tests: a fixture over `tests/kafka/cluster.sh` (the same script a person
//! uses), which starts KRaft brokers as JVM processes on free loopback ports from the Kafka that
//! `tests/kafka/install.sh` fetched from Maven Central. A cluster stops on drop; the script's watchdog stops it
//! too when the test process dies without dropping it (a panic that aborts, SIGKILL), so no broker outlives
//! the test that started it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::admin::{
    AdminClient, AdminOptions, AlterConfig, NewPartitions, NewTopic, ResourceSpecifier,
    TopicReplication,
};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};

use crate::positions::Watermarks;

/// Topic configs for topics the tests mirror: no time-based retention. The sample records carry
/// timestamps from 2019 (`samples::BASE_TIMESTAMP_MS`, so a copy that re-stamps records is caught), and with
/// the default `retention.ms` of 7 days the broker's first retention check, 30 s after it starts, deletes every
/// segment of them, the active one included: the source would lose records under the mirror (which then stops
/// with "no longer holds offset") and the target would lose the copy. `tests/kafka/cluster.sh` now turns
/// time retention off broker-wide too; the topics say it themselves so these tests do not rest on that.
pub const KEEP_FOREVER: &[(&str, &str)] = &[("retention.ms", "-1")];

/// A SASL/SCRAM mechanism Kafka offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scram {
    Sha256,
    Sha512,
}

impl Scram {
    /// The name Kafka's tools, librdkafka's `sasl.mechanism` and a `KafkaMirror`'s
    /// `authentication.mechanism` take.
    pub fn mechanism(self) -> &'static str {
        match self {
            Scram::Sha256 => "SCRAM-SHA-256",
            Scram::Sha512 => "SCRAM-SHA-512",
        }
    }
}

/// A SASL user: SCRAM with `mechanism`, or PLAIN when `mechanism` is `None`.
#[derive(Debug, Clone)]
pub struct SaslUser {
    pub name: String,
    pub password: String,
    pub mechanism: Option<Scram>,
}

impl SaslUser {
    pub fn scram(name: &str, password: &str, mechanism: Scram) -> SaslUser {
        SaslUser {
            name: name.into(),
            password: password.into(),
            mechanism: Some(mechanism),
        }
    }

    pub fn plain(name: &str, password: &str) -> SaslUser {
        SaslUser {
            name: name.into(),
            password: password.into(),
            mechanism: None,
        }
    }

    /// The `sasl.mechanism` of this user.
    pub fn mechanism_name(&self) -> &'static str {
        self.mechanism.map_or("PLAIN", Scram::mechanism)
    }
}

/// What a cluster is started with. Every broker serves every listener (see [`KafkaCluster`]).
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// 1 or 3 brokers.
    pub brokers: u8,
    /// A directory with `ca.crt` (clients' certificates must chain to it) and `broker.pem` (the broker's PKCS#8
    /// key and certificate chain); `None`: the script makes a test PKI (see [`KafkaCluster::pki`]).
    pub pki: Option<PathBuf>,
    /// SASL users, PLAIN and SCRAM: known to the SASL_SSL and SASL_PLAINTEXT listeners from the start.
    pub users: Vec<SaslUser>,
    /// The host name the PLAINTEXT listener advertises (one that resolves nowhere: the HDInsight case).
    pub advertised_host: Option<String>,
    /// Further broker properties.
    pub config: Vec<(String, String)>,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        ClusterOptions {
            brokers: 1,
            pki: None,
            users: Vec::new(),
            advertised_host: None,
            config: Vec::new(),
        }
    }
}

/// A running Apache Kafka cluster. Each field is a bootstrap list of one listener, every broker listed.
pub struct KafkaCluster {
    dir: PathBuf,
    /// Kept to remove the directory on drop (`None` for the shared cluster, whose watchdog removes it).
    _temp: Option<tempfile::TempDir>,
    /// No authentication; advertised as [`ClusterOptions::advertised_host`] when one was given.
    pub plaintext: String,
    /// Plaintext, always advertised as 127.0.0.1: the brokers' own listener, and the test's.
    pub internal: String,
    /// Mutual TLS: a client certificate signed by the cluster's CA is required.
    pub ssl: String,
    /// SASL (PLAIN, SCRAM-SHA-256/512) over TLS.
    pub sasl_ssl: String,
    /// SASL (PLAIN, SCRAM-SHA-256/512) without TLS.
    pub sasl_plaintext: String,
    /// The PKI the brokers use: `ca.crt`, `broker.pem`, and for the script's own PKI also `client.crt`,
    /// `client.key` (a client certificate for mutual TLS), `ca.key`.
    pub pki: PathBuf,
    brokers: u8,
}

/// The cluster script, next to this crate.
fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("kafka/cluster.sh")
}

/// The directory of the Kafka jars `tests/kafka/install.sh` fetched (installing them on first use), for the
/// tests that run Kafka's own tools and classes with `java -cp <dir>/*`.
pub fn kafka_libs() -> String {
    let install = Path::new(env!("CARGO_MANIFEST_DIR")).join("kafka/install.sh");
    stdout_of(Command::new("bash").arg(&install), "tests/kafka/install.sh")
        .lines()
        .last()
        .expect("install.sh prints the jar directory")
        .to_string()
}

/// `java` with the jars of the Kafka the tests run on its class path: Kafka's own tools and classes, run as
/// a person would run them. Add JVM options, then the main class or a one-file program, then its arguments.
pub fn kafka_java() -> Command {
    let mut java = Command::new("java");
    java.arg("-cp").arg(format!("{}/*", kafka_libs()));
    java
}

/// Runs `command` to its end and returns its standard output; fails the test with its standard error when it
/// did not succeed. `what` names the command in the failure.
pub fn stdout_of(command: &mut Command, what: &str) -> String {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("running {what}: {e}"));
    assert!(
        output.status.success(),
        "{what} failed ({}):\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Runs `cluster.sh start` with `args` in `dir`. A port the script found free can be taken before its broker
/// binds it (by an outgoing connection's ephemeral port, or a cluster starting beside it); then what started
/// is stopped and the start tried again, with ports chosen anew, up to three times.
fn start_script(args: &[&str], dir: &Path) -> String {
    for attempt in 1.. {
        match try_script(args) {
            Ok(stdout) => return stdout,
            Err(failure) if attempt < 3 && failure.contains("Address already in use") => {
                eprintln!(
                    "a port of the cluster in {} was taken meanwhile; starting it again",
                    dir.display()
                );
                let _ = Command::new("bash")
                    .arg(script())
                    .args(["stop", "--kill", "--dir"])
                    .arg(dir)
                    .output();
                let _ = std::fs::remove_dir_all(dir);
            }
            Err(failure) => panic!("{failure}"),
        }
    }
    unreachable!("the loop returns or panics")
}

/// Runs `cluster.sh` with `args`; panics with its output when it fails.
fn run_script(args: &[&str]) -> String {
    try_script(args).unwrap_or_else(|failure| panic!("{failure}"))
}

/// Runs `cluster.sh` with `args`: its stdout, or what failed with its output.
fn try_script(args: &[&str]) -> Result<String, String> {
    let output = Command::new("bash")
        .arg(script())
        .args(args)
        .output()
        .expect("running tests/kafka/cluster.sh");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    if !output.status.success() {
        return Err(format!(
            "tests/kafka/cluster.sh {} failed ({}):\n{stdout}\n{}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(stdout)
}

impl KafkaCluster {
    /// Starts a cluster as `options` say and waits until every broker serves metadata.
    pub fn start(options: &ClusterOptions) -> KafkaCluster {
        let temp = tempfile::Builder::new()
            .prefix("kafka-cluster-")
            .tempdir()
            .expect("a directory for the cluster");
        // The cluster lives in the temporary directory itself: a cluster kept in a `static` is never dropped,
        // and the script's watchdog, which removes the cluster's directory, then leaves nothing behind.
        let mut cluster = KafkaCluster::start_in(temp.path().to_path_buf(), options);
        cluster._temp = Some(temp);
        cluster
    }

    /// One single-broker cluster for every test of this test binary that can share one: started on first
    /// use, stopped by the script's watchdog when the test process exits (statics are never dropped).
    pub fn shared() -> &'static KafkaCluster {
        static SHARED: OnceLock<KafkaCluster> = OnceLock::new();
        SHARED.get_or_init(|| {
            let dir = std::env::temp_dir().join(format!("kafka-shared-{}", std::process::id()));
            KafkaCluster::start_in(dir, &ClusterOptions::default())
        })
    }

    /// The single-broker source and target clusters of a test binary that mirrors between two: started on
    /// first use (named `source` and `target`), for the process's lifetime as [`KafkaCluster::start_for_process`].
    pub fn source_and_target() -> (&'static KafkaCluster, &'static KafkaCluster) {
        static SOURCE: OnceLock<KafkaCluster> = OnceLock::new();
        static TARGET: OnceLock<KafkaCluster> = OnceLock::new();
        (
            SOURCE.get_or_init(|| {
                KafkaCluster::start_for_process("source", &ClusterOptions::default())
            }),
            TARGET.get_or_init(|| {
                KafkaCluster::start_for_process("target", &ClusterOptions::default())
            }),
        )
    }

    /// A cluster that lives as long as the test process, for a test binary that shares more than the one
    /// [`KafkaCluster::shared`] cluster (e.g. a source and a target): the caller keeps it in a static, and the
    /// script's watchdog stops it and removes its directory when the process exits. `name` must be unique in
    /// the binary.
    pub fn start_for_process(name: &str, options: &ClusterOptions) -> KafkaCluster {
        let dir = std::env::temp_dir().join(format!("kafka-{name}-{}", std::process::id()));
        KafkaCluster::start_in(dir, options)
    }

    fn start_in(dir: PathBuf, options: &ClusterOptions) -> KafkaCluster {
        let dir_arg = dir.to_str().expect("a UTF-8 path").to_string();
        let owner = std::process::id().to_string();
        let brokers = options.brokers.to_string();
        let mut args: Vec<String> = [
            "start",
            "--dir",
            &dir_arg,
            "--brokers",
            &brokers,
            "--owner-pid",
            &owner,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        if let Some(pki) = &options.pki {
            args.extend(["--pki".into(), pki.to_str().unwrap().into()]);
        }
        for user in &options.users {
            match user.mechanism {
                None => args.extend([
                    "--plain-user".into(),
                    format!("{}:{}", user.name, user.password),
                ]),
                Some(m) => args.extend([
                    "--scram-user".into(),
                    format!("{}:{}:{}", m.mechanism(), user.name, user.password),
                ]),
            }
        }
        if let Some(host) = &options.advertised_host {
            args.extend(["--advertised-host".into(), host.clone()]);
        }
        for (key, value) in &options.config {
            args.extend(["--config".into(), format!("{key}={value}")]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let env: HashMap<String, String> = start_script(&args, &dir)
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let listener = |name: &str| {
            env.get(name)
                .unwrap_or_else(|| panic!("cluster.sh printed no {name}= line: {env:?}"))
                .clone()
        };
        let cluster = KafkaCluster {
            dir,
            _temp: None,
            plaintext: listener("PLAINTEXT"),
            internal: listener("INTERNAL"),
            ssl: listener("SSL"),
            sasl_ssl: listener("SASL_SSL"),
            sasl_plaintext: listener("SASL_PLAINTEXT"),
            pki: PathBuf::from(listener("PKI")),
            brokers: options.brokers,
        };
        cluster.wait_for_brokers(options.brokers as usize, Duration::from_secs(60));
        cluster
    }

    /// The cluster's directory: `broker-N.log`, `server-N.properties`.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A client configuration for the [`KafkaCluster::internal`] listener.
    pub fn client(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.internal);
        config
    }

    /// Waits until metadata lists `count` brokers (all of them after a start or a restart).
    pub fn wait_for_brokers(&self, count: usize, timeout: Duration) {
        let consumer: BaseConsumer = self.client().create().expect("a metadata client");
        let deadline = Instant::now() + timeout;
        loop {
            let seen = consumer
                .fetch_metadata(None, Duration::from_secs(5))
                .map(|m| m.brokers().len())
                .unwrap_or(0);
            if seen >= count {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the cluster in {} lists {seen} of {count} brokers after {timeout:?}",
                self.dir.display()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// SIGKILL broker `node` (1-based), as a crashed machine would go.
    pub fn kill_broker(&self, node: u8) {
        run_script(&[
            "kill-broker",
            "--dir",
            self.dir.to_str().unwrap(),
            "--broker",
            &node.to_string(),
        ]);
    }

    /// Starts broker `node` again on its ports and data, and waits until it serves.
    pub fn start_broker(&self, node: u8) {
        run_script(&[
            "start-broker",
            "--dir",
            self.dir.to_str().unwrap(),
            "--broker",
            &node.to_string(),
        ]);
        self.wait_for_brokers(self.brokers as usize, Duration::from_secs(60));
    }

    /// Adds a SCRAM user with Kafka's own `kafka-configs` tool.
    pub fn add_scram_user(&self, user: &SaslUser) {
        let mechanism = user
            .mechanism
            .expect("a SCRAM user (PLAIN users are given at start)");
        run_script(&[
            "add-scram-user",
            "--dir",
            self.dir.to_str().unwrap(),
            "--mechanism",
            mechanism.mechanism(),
            "--user",
            &user.name,
            "--password",
            &user.password,
        ]);
    }

    fn admin(&self) -> AdminClient<DefaultClientContext> {
        self.client().create().expect("an admin client")
    }

    /// Creates `topic` with `partitions` partitions, `replicas` replicas and the topic configs `config`.
    pub fn create_topic(
        &self,
        topic: &str,
        partitions: i32,
        replicas: i32,
        config: &[(&str, &str)],
    ) {
        let mut new_topic = NewTopic::new(topic, partitions, TopicReplication::Fixed(replicas));
        for (key, value) in config {
            new_topic = new_topic.set(key, value);
        }
        let results = block_on(self.admin().create_topics(&[new_topic], &admin_options()))
            .expect("creating a topic");
        assert!(
            results.iter().all(Result::is_ok),
            "creating {topic}: {results:?}"
        );
    }

    /// The topic's configuration as the brokers report it (DescribeConfigs), defaults included.
    pub fn topic_config(&self, topic: &str) -> HashMap<String, String> {
        let results = block_on(
            self.admin()
                .describe_configs(&[ResourceSpecifier::Topic(topic)], &admin_options()),
        )
        .expect("describing a topic's configuration");
        let resource = results
            .into_iter()
            .next()
            .expect("one result")
            .unwrap_or_else(|e| panic!("describing {topic}: {e}"));
        resource
            .entries
            .into_iter()
            .filter_map(|e| e.value.map(|v| (e.name, v)))
            .collect()
    }

    /// Sets the topic configs `config` (AlterConfigs: every topic config not named returns to its default).
    pub fn alter_topic_config(&self, topic: &str, config: &[(&str, &str)]) {
        let mut alter = AlterConfig::new(ResourceSpecifier::Topic(topic));
        for (key, value) in config {
            alter = alter.set(key, value);
        }
        let results = block_on(self.admin().alter_configs(&[alter], &admin_options()))
            .expect("altering a topic's configuration");
        assert!(
            results.iter().all(Result::is_ok),
            "altering {topic}: {results:?}"
        );
    }

    /// Grows `topic` to `partitions` partitions (CreatePartitions).
    pub fn add_partitions(&self, topic: &str, partitions: usize) {
        let results = block_on(
            self.admin()
                .create_partitions(&[NewPartitions::new(topic, partitions)], &admin_options()),
        )
        .expect("adding partitions");
        assert!(
            results.iter().all(Result::is_ok),
            "adding partitions to {topic}: {results:?}"
        );
    }

    /// Deletes `topic` (DeleteTopics).
    pub fn delete_topic(&self, topic: &str) {
        let results = block_on(self.admin().delete_topics(&[topic], &admin_options()))
            .expect("deleting a topic");
        assert!(
            results.iter().all(Result::is_ok),
            "deleting {topic}: {results:?}"
        );
    }

    /// Deletes every record of `topic[partition]` below `offset` (DeleteRecords), as retention would.
    pub fn delete_records(&self, topic: &str, partition: i32, offset: i64) {
        let mut offsets = TopicPartitionList::new();
        offsets
            .add_partition_offset(topic, partition, Offset::Offset(offset))
            .unwrap();
        let result = block_on(self.admin().delete_records(&offsets, &admin_options()))
            .expect("deleting records");
        for element in result.elements() {
            assert!(
                element.error().is_ok(),
                "deleting records of {topic}[{partition}]: {:?}",
                element.error()
            );
        }
    }

    /// The partitions of `topic` (0 while it does not exist).
    pub fn partitions(&self, topic: &str) -> usize {
        let consumer: BaseConsumer = self.client().create().unwrap();
        consumer
            .fetch_metadata(Some(topic), Duration::from_secs(10))
            .ok()
            .and_then(|m| {
                m.topics()
                    .iter()
                    .find(|t| t.name() == topic && t.error().is_none())
                    .map(|t| t.partitions().len())
            })
            .unwrap_or(0)
    }

    /// The broker (node id) leading `topic[partition]`, once one does.
    pub fn leader(&self, topic: &str, partition: i32) -> Option<i32> {
        let consumer: BaseConsumer = self.client().create().unwrap();
        let metadata = consumer
            .fetch_metadata(Some(topic), Duration::from_secs(10))
            .ok()?;
        let topic = metadata.topics().iter().find(|t| t.name() == topic)?;
        let partition = topic.partitions().iter().find(|p| p.id() == partition)?;
        (partition.leader() >= 0).then_some(partition.leader())
    }

    /// Records on `topic`: the sum of its partitions' high watermarks, a partition that does not answer
    /// counting 0 (0 while the topic does not exist).
    pub fn records(&self, topic: &str) -> i64 {
        let partitions = self.partitions(topic) as i32;
        if partitions == 0 {
            return 0;
        }
        Watermarks::new(&self.client(), topic, partitions)
            .high_of_each()
            .map_or(0, |each| {
                each.into_iter().map(|high| high.unwrap_or(0)).sum()
            })
    }
}

impl Drop for KafkaCluster {
    fn drop(&mut self) {
        // SIGKILL: nothing of a test cluster needs a controlled shutdown, and it frees the cores at once.
        let _ = Command::new("bash")
            .arg(script())
            .args(["stop", "--kill", "--dir"])
            .arg(&self.dir)
            .output();
    }
}

fn admin_options() -> AdminOptions {
    AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)))
}

/// Runs one admin future to completion on a runtime of its own (the fixture is used from plain `#[test]`s).
fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(future)
}
