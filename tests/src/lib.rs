//! Harness for tests that need real, separate processes: Apache Kafka clusters ([`kafka`], brokers as JVM
//! processes from `tests/kafka/`) and the `mirror-worker` binary ([`mirror`]: what the worker-process fault
//! tests share).

pub mod kafka;
pub mod mirror;

pub use kafka::{ClusterOptions, KafkaCluster, SaslUser, Scram};

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use kafka_mirror_samples::{self as samples, ReadRecord, SampleRecord};
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};

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

/// A running `mirror-worker --config`. Its stdout and stderr go to files, so a test can read what it said so
/// far (and show it when a wait times out) while it still runs.
pub struct Worker {
    child: Child,
    logs: tempfile::TempDir,
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

    /// Asserts that a `mode: migrate` run (`what`, for the message) ended by itself with exit 0 and said so.
    pub fn assert_migration_complete(&self, what: &str) {
        assert!(
            self.exited_by_itself && self.status.success(),
            "{what}: the migration should complete by itself with exit 0 ({}):\n{}",
            self.status,
            self.output()
        );
        assert!(
            self.stdout.contains("migration complete"),
            "{what}: no \"migration complete\" in its output:\n{}",
            self.output()
        );
    }
}

impl Worker {
    /// Starts the worker on `document`, Secrets as files under `secrets_dir`, with `env` added (`RUST_LOG` is
    /// `info` unless `env` sets it). Commits every half second; drains for at most 5 s on SIGTERM.
    pub fn spawn(document: &Path, secrets_dir: &Path, env: &[(&str, &str)]) -> Worker {
        Worker::spawn_through(&[], document, secrets_dir, env)
    }

    /// As [`Worker::spawn`], started through `wrapper` (a program and its arguments, given the worker's
    /// command line after them, e.g. `unshare --mount ...`). The wrapper must `exec` that command line, so that
    /// the process the harness waits for and signals is the worker itself.
    pub fn spawn_through(
        wrapper: &[&str],
        document: &Path,
        secrets_dir: &Path,
        env: &[(&str, &str)],
    ) -> Worker {
        let http: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let logs = tempfile::Builder::new()
            .prefix("mirror-worker-")
            .tempdir()
            .expect("a directory for the worker's output");
        let file = |name: &str| std::fs::File::create(logs.path().join(name)).unwrap();
        let mut command = match wrapper.split_first() {
            None => Command::new(worker_binary()),
            Some((program, wrapper_args)) => {
                let mut command = Command::new(program);
                command.args(wrapper_args).arg(worker_binary());
                command
            }
        };
        command
            .arg("--config")
            .arg(document)
            .arg("--secrets-dir")
            .arg(secrets_dir)
            .args(["--http-listen", &http.to_string()])
            .args(["--commit-interval", "0.5", "--drain-timeout", "5"])
            .env("RUST_LOG", "info")
            .env_remove(kafka_mirror_crds::worker_pod::ENV_SECRETS_DIR)
            .env_remove("KMIRROR_HTTP_LISTEN")
            .stdin(Stdio::null())
            .stdout(file("stdout"))
            .stderr(file("stderr"));
        for (key, value) in env {
            command.env(key, value);
        }
        let child = command.spawn().expect("starting mirror-worker");
        Worker { child, logs, http }
    }

    /// The process id (to signal it from elsewhere).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the worker wrote to stdout so far.
    pub fn stdout(&self) -> String {
        std::fs::read_to_string(self.logs.path().join("stdout")).unwrap_or_default()
    }

    /// What the worker wrote to stderr (its log) so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.logs.path().join("stderr")).unwrap_or_default()
    }

    /// Whether the process still runs.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Sends `signal` (`TERM`, `KILL`, `STOP`, `CONT`, ...) to the process.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .expect("running kill");
        assert!(
            status.success(),
            "kill -{signal} {} failed",
            self.child.id()
        );
    }

    /// SIGKILL, as the OOM killer or a node failure would: no drain, no commit, no goodbye.
    pub fn kill_hard(mut self) -> Finished {
        let _ = self.child.kill();
        self.finished(false)
    }

    /// Polls `condition` every 100 ms until it holds; after `timeout` fails the test with `what`, whether the
    /// worker still runs, and its log (a worker that fell behind and one that exited look alike from Kafka).
    pub fn wait_for(&mut self, what: &str, timeout: Duration, mut condition: impl FnMut() -> bool) {
        let deadline = Instant::now() + timeout;
        while !condition() {
            if Instant::now() >= deadline {
                let state = match self.child.try_wait() {
                    Ok(None) => "still running".to_string(),
                    Ok(Some(status)) => format!("exited with {status}"),
                    Err(e) => format!("in an unknown state ({e})"),
                };
                panic!(
                    "timed out after {timeout:?} waiting for {what}; the worker is {state}; its log:\n{}",
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
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
            self.signal("TERM");
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline && matches!(self.child.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = self.child.kill();
        }
        self.finished(exited_by_itself)
    }

    /// SIGTERM now (a graceful stop), then as [`Worker::finish`].
    pub fn stop(self) -> Finished {
        self.finish(Duration::ZERO)
    }

    fn finished(mut self, exited_by_itself: bool) -> Finished {
        let status = self.child.wait().expect("waiting for mirror-worker");
        Finished {
            status,
            exited_by_itself,
            stdout: self.stdout(),
            stderr: self.stderr(),
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        // A failed assertion must not leave a worker running against the next test's clusters.
        let _ = self.child.kill();
        let _ = self.child.wait();
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

/// Produces sample records `0..n` (see `kafka_mirror_samples::sample`) to `topic` through `config`.
pub fn produce_samples(
    config: &ClientConfig,
    topic: &str,
    n: u64,
    keys: u64,
    value_size: usize,
) -> Vec<SampleRecord> {
    samples::produce_with(config, topic, 0, n, keys, value_size).expect("seeding the topic")
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

/// Compares a copy with what was seeded and prints the counts (lost, duplicated, out of per-key order,
/// altered); fails the test on anything but duplicates.
pub fn verify_copy(
    what: &str,
    seeded: &[SampleRecord],
    copy: &[ReadRecord],
) -> samples::Verification {
    let v = samples::verify(seeded, copy);
    eprintln!("{what}: {v}");
    assert!(v.is_intact(), "{what}: {v}");
    v
}

/// `GET path` on a worker's (or any plain HTTP/1.0) endpoint at `addr`: the status code and the body. An error
/// while nothing listens there yet, or when the connection breaks; a server that stops answering is given up on
/// after 10 s. What the tests and the benchmark use to read `/metrics`, `/healthz` and `/readyz`.
pub fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let body = response.split_once("\r\n\r\n").map_or("", |(_, body)| body);
    Ok((status, body.to_string()))
}
