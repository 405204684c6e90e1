//! Harness for tests that need real, separate processes: an independent Kafka-compatible broker (`nisshi`,
//! installed by `tests/run-all.sh`) and the `mirror-worker` binary.

use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mirror_worker::testkit::{self, ReadRecord, SampleRecord};
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};

/// Where `tests/run-all.sh` installs the broker when `NISSHI_BIN` is not set.
pub const NISSHI_VERSION: &str = "0.8.1";

/// The broker binary: `NISSHI_BIN`, else the run-all.sh cache. Panics with the install command when missing,
/// so a missing broker fails the suite instead of skipping it.
pub fn nisshi_binary() -> PathBuf {
    let path = std::env::var_os("NISSHI_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let home = std::env::var_os("HOME")
                .map(PathBuf::from)
                .unwrap_or_default();
            home.join(format!(
                ".cache/kafka-mirror/nisshi-{NISSHI_VERSION}/bin/nisshi"
            ))
        });
    assert!(
        path.is_file(),
        "the nisshi broker is not installed at {}: run `bash tests/run-all.sh`, which installs it",
        path.display()
    );
    path
}

/// The `mirror-worker` binary of this build (next to the test executable's `deps/` folder).
pub fn worker_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let path = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target dir")
        .join("mirror-worker");
    assert!(
        path.is_file(),
        "{} is missing: run `cargo build -p mirror-worker` first (tests/run-all.sh does)",
        path.display()
    );
    path
}

/// A free port on the loopback interface.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// A SCRAM mechanism of `nisshi user create --mechanism`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scram {
    Sha256,
    Sha512,
}

impl Scram {
    /// The name `nisshi user create --mechanism` takes.
    pub fn nisshi_name(self) -> &'static str {
        match self {
            Scram::Sha256 => "scram256",
            Scram::Sha512 => "scram512",
        }
    }

    /// The name librdkafka's `sasl.mechanism` and a `KafkaMirror`'s `authentication.mechanism` take.
    pub fn mechanism(self) -> &'static str {
        match self {
            Scram::Sha256 => "SCRAM-SHA-256",
            Scram::Sha512 => "SCRAM-SHA-512",
        }
    }
}

/// A SCRAM user the broker knows.
#[derive(Debug, Clone)]
pub struct ScramUser {
    pub name: String,
    pub password: String,
    pub mechanism: Scram,
}

/// How a broker accepts clients. The default: plaintext, anyone, in-memory storage (what [`Broker::start`]
/// runs).
#[derive(Debug, Clone, Default)]
pub struct BrokerOptions {
    /// PEM certificate chain and private key files: the listener accepts TLS connections only.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// SCRAM users. When any is given, the broker requires SASL authentication (`--authentication`) and keeps
    /// its data in an SQLite file, the storage that can hold users.
    pub users: Vec<ScramUser>,
}

/// One nisshi broker process, killed on drop.
pub struct Broker {
    child: Child,
    pub bootstrap: String,
    /// The SQLite storage of a broker with users, removed on drop.
    _storage: Option<tempfile::TempDir>,
}

impl Broker {
    /// A plaintext broker without authentication, with in-memory storage.
    pub fn start(name: &str) -> Broker {
        Broker::start_with(name, &BrokerOptions::default())
    }

    /// A broker with TLS and/or SASL/SCRAM as `options` say. Users are created with `nisshi user create` on
    /// a first, open run of the broker over the same storage (a broker that requires authentication refuses
    /// an anonymous client, `nisshi user create` included), then the broker runs as asked.
    pub fn start_with(name: &str, options: &BrokerOptions) -> Broker {
        if options.users.is_empty() {
            let (child, bootstrap) =
                spawn_broker(name, &format!("memory://{name}/"), None, options, false);
            return Broker {
                child,
                bootstrap,
                _storage: None,
            };
        }
        let dir = tempfile::tempdir().expect("a directory for the broker's storage");
        // nisshi resolves an SQLite URL against its working directory.
        let storage = "sqlite://nisshi.db";
        let (mut open, open_bootstrap) = spawn_broker(
            name,
            storage,
            Some(dir.path()),
            &BrokerOptions::default(),
            false,
        );
        for user in &options.users {
            let output = Command::new(nisshi_binary())
                .args(["user", "create", "--broker"])
                .arg(format!("tcp://{open_bootstrap}"))
                .args(["--mechanism", user.mechanism.nisshi_name()])
                .args([&user.name, &user.password])
                .output()
                .expect("running nisshi user create");
            assert!(
                output.status.success(),
                "nisshi user create {} ({:?}) failed: {}",
                user.name,
                user.mechanism,
                String::from_utf8_lossy(&output.stderr)
            );
        }
        let _ = open.kill();
        let _ = open.wait();
        let (child, bootstrap) = spawn_broker(name, storage, Some(dir.path()), options, true);
        Broker {
            child,
            bootstrap,
            _storage: Some(dir),
        }
    }
}

/// Starts `nisshi broker` on a free loopback port and waits until it listens (or exits: its error is shown).
fn spawn_broker(
    name: &str,
    storage: &str,
    working_dir: Option<&Path>,
    options: &BrokerOptions,
    authentication: bool,
) -> (Child, String) {
    let port = free_port();
    let url = format!("tcp://127.0.0.1:{port}");
    let mut command = Command::new(nisshi_binary());
    command
        .args([
            "broker",
            "--listener-url",
            &url,
            "--advertised-listener-url",
            &url,
        ])
        .args(["--storage-engine", storage, "--cluster-id", name])
        .args(["--group-initial-rebalance-delay", "0s"]);
    if let Some((cert, key)) = &options.tls {
        command.arg("--cert").arg(cert).arg("--key").arg(key);
    }
    if authentication {
        command.arg("--authentication");
    }
    if let Some(dir) = working_dir {
        command.current_dir(dir);
    }
    let mut child = command
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting nisshi");
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            let mut stderr = String::new();
            if let Some(mut pipe) = child.stderr.take() {
                let _ = pipe.read_to_string(&mut stderr);
            }
            panic!(
                "nisshi {name} exited ({status}) instead of listening on {addr}: {stderr}\n\
                 (users need a nisshi built with the libsql feature: tests/run-all.sh installs it)"
            );
        }
        assert!(
            Instant::now() < deadline,
            "nisshi {name} did not listen on {addr} within 30 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Nothing reads the broker's log from here on: drain it so the broker never blocks on a full pipe.
    if let Some(mut pipe) = child.stderr.take() {
        std::thread::spawn(move || std::io::copy(&mut pipe, &mut std::io::sink()));
    }
    (child, format!("127.0.0.1:{port}"))
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A running `mirror-worker --config` whose stdout and stderr are collected.
pub struct Worker {
    child: Child,
    stdout: JoinHandle<String>,
    stderr: JoinHandle<String>,
    /// Where it serves /metrics, /healthz and /readyz.
    pub http: SocketAddr,
}

/// How a worker run ended.
#[derive(Debug)]
pub struct Finished {
    pub status: ExitStatus,
    /// It exited before it was asked to stop.
    pub exited_by_itself: bool,
    pub stdout: String,
    pub stderr: String,
}

impl Finished {
    /// Both outputs, for searching and for failure messages.
    pub fn output(&self) -> String {
        format!(
            "--- stdout ---\n{}\n--- stderr ---\n{}",
            self.stdout, self.stderr
        )
    }
}

impl Worker {
    /// Starts the worker on `document`, Secrets as files under `secrets_dir`, with `env` added (`RUST_LOG` is
    /// `info` unless `env` sets it). Commits every half second; drains for at most 5 s on SIGTERM.
    pub fn spawn(document: &Path, secrets_dir: &Path, env: &[(&str, &str)]) -> Worker {
        let http: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let mut command = Command::new(worker_binary());
        command
            .arg("--config")
            .arg(document)
            .arg("--secrets-dir")
            .arg(secrets_dir)
            .args(["--http-listen", &http.to_string()])
            .args(["--commit-interval", "0.5", "--drain-timeout", "5"])
            .env("RUST_LOG", "info")
            .env_remove("KMIRROR_SECRETS_DIR")
            .env_remove("KMIRROR_HTTP_LISTEN")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command.spawn().expect("starting mirror-worker");
        let collect = |mut pipe: Box<dyn Read + Send>| {
            std::thread::spawn(move || {
                let mut bytes = Vec::new();
                let _ = pipe.read_to_end(&mut bytes);
                String::from_utf8_lossy(&bytes).into_owned()
            })
        };
        let stdout = collect(Box::new(child.stdout.take().unwrap()));
        let stderr = collect(Box::new(child.stderr.take().unwrap()));
        Worker {
            child,
            stdout,
            stderr,
            http,
        }
    }

    /// Whether the process still runs.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits up to `timeout` for the worker to exit by itself, then sends SIGTERM (and SIGKILL if it is still
    /// there 20 s later).
    pub fn finish(mut self, timeout: Duration) -> Finished {
        let deadline = Instant::now() + timeout;
        let mut exited_by_itself = false;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                exited_by_itself = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        if !exited_by_itself {
            let _ = Command::new("kill")
                .args(["-TERM", &self.child.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline && matches!(self.child.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = self.child.kill();
        }
        let status = self.child.wait().expect("waiting for mirror-worker");
        Finished {
            status,
            exited_by_itself,
            stdout: self.stdout.join().unwrap_or_default(),
            stderr: self.stderr.join().unwrap_or_default(),
        }
    }

    /// SIGTERM now (a graceful stop), then as [`Worker::finish`].
    pub fn stop(self) -> Finished {
        self.finish(Duration::ZERO)
    }
}

/// A librdkafka client configuration for `bootstrap` with `security` added (e.g. `security.protocol`,
/// `ssl.ca.pem`, `sasl.*`): what the test itself uses to seed and read a broker that needs TLS or SASL.
pub fn client_config(bootstrap: &str, security: &[(&str, &str)]) -> ClientConfig {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", bootstrap);
    for (key, value) in security {
        config.set(*key, *value);
    }
    config
}

/// Creates `topic` with `partitions` partitions.
pub fn create_topic(config: &ClientConfig, topic: &str, partitions: i32) {
    let admin: AdminClient<DefaultClientContext> = config.create().expect("an admin client");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let new_topic = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let results = runtime
        .block_on(admin.create_topics(&[new_topic], &options))
        .expect("creating the topic");
    assert!(results.iter().all(Result::is_ok), "{results:?}");
}

/// Produces sample records `0..n` (see `mirror_worker::testkit::sample`) to `topic` through `config`.
pub fn produce_samples(
    config: &ClientConfig,
    topic: &str,
    n: u64,
    keys: u64,
    value_size: usize,
) -> Vec<SampleRecord> {
    testkit::produce_with(config, topic, 0, n, keys, value_size).expect("seeding the topic")
}

/// Reads `topic` from the beginning through `config` until `expected` records arrived or `timeout`.
pub fn read_records(
    config: &ClientConfig,
    topic: &str,
    expected: usize,
    timeout: Duration,
) -> Vec<ReadRecord> {
    let consumer: BaseConsumer = config
        .clone()
        .set("group.id", "kafka-mirror-tests-reader")
        .set("enable.auto.commit", "false")
        .create()
        .expect("a consumer");
    let deadline = Instant::now() + timeout;
    // The topic may not exist yet: the mirror creates it.
    let partitions: Vec<i32> = loop {
        let found: Vec<i32> = consumer
            .fetch_metadata(Some(topic), Duration::from_secs(10))
            .map(|m| {
                m.topics()
                    .iter()
                    .filter(|t| t.error().is_none())
                    .flat_map(|t| t.partitions().iter().map(|p| p.id()))
                    .collect()
            })
            .unwrap_or_default();
        if !found.is_empty() || Instant::now() >= deadline {
            break found;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let mut tpl = TopicPartitionList::new();
    for p in &partitions {
        tpl.add_partition_offset(topic, *p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&tpl).expect("assigning the topic");
    let mut records = Vec::new();
    while records.len() < expected && Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            records.push(ReadRecord::from_message(&m));
        }
    }
    records
}
