//! The copies being compared: Debian's kcat as a consume | produce pipeline, and the mirror-worker binary.
//! Both are timed the same way, from outside: the target's end offsets, polled every 10 ms, from the first
//! record on the target to the last.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::cluster::{ClusterProcess, EndOffsets};
use crate::measure::{self, Usage};

/// How long a copy may take before the benchmark gives up on it.
const COPY_TIMEOUT: Duration = Duration::from_secs(600);

/// When the first and the last of `expected` records reached the target.
pub struct Arrival {
    /// First record on the target to the last.
    pub seconds: f64,
}

/// Polls `target` until it holds `expected` records; `alive` is asked between polls so that a copy process that
/// died is reported instead of waited for.
pub fn wait_for_arrival(
    target: &EndOffsets,
    expected: i64,
    mut alive: impl FnMut() -> Result<(), String>,
) -> Arrival {
    let started = Instant::now();
    let mut first = None;
    loop {
        let arrived = target.records();
        if arrived > 0 && first.is_none() {
            first = Some(Instant::now());
        }
        if arrived >= expected {
            assert_eq!(
                arrived, expected,
                "the copy wrote more records than the source holds"
            );
            return Arrival {
                seconds: first.unwrap().elapsed().as_secs_f64(),
            };
        }
        if let Err(why) = alive() {
            panic!("the copy stopped with {arrived} of {expected} records on the target: {why}");
        }
        assert!(
            started.elapsed() < COPY_TIMEOUT,
            "the copy did not finish within {COPY_TIMEOUT:?} ({arrived} of {expected} records)"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// `kcat -C … | kcat -P …`: the consumer prints key TAB value per line, the producer reads them back. kcat cannot
/// give each produced line its own headers, so the pipeline drops them: it copies less than the worker does.
pub fn kcat_pipeline(
    source: &ClusterProcess,
    target: &ClusterProcess,
    expected: i64,
) -> (Arrival, Usage) {
    let mut consume = Command::new("kcat")
        .args([
            "-C",
            "-q",
            "-e",
            "-o",
            "beginning",
            "-b",
            &source.bootstrap,
            "-t",
            &source.topic,
        ])
        .args(["-f", "%k\t%s\n"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("starting kcat -C (is Debian's kcat installed? tests/benchmark.sh installs it)");
    let mut produce = Command::new("kcat")
        .args([
            "-P",
            "-q",
            "-b",
            &target.bootstrap,
            "-t",
            &target.topic,
            "-K",
            "\t",
        ])
        // The same delivery guarantee as the worker's producer.
        .args(["-X", "enable.idempotence=true"])
        .stdin(Stdio::from(consume.stdout.take().unwrap()))
        .spawn()
        .expect("starting kcat -P");
    let arrival = wait_for_arrival(&target.watcher(), expected, || {
        match produce.try_wait().unwrap() {
            Some(status) if !status.success() => Err(format!("kcat -P exited with {status}")),
            _ => Ok(()),
        }
    });
    let usage = measure::reap(consume, "kcat -C").plus(measure::reap(produce, "kcat -P"));
    (arrival, usage)
}

/// A running `mirror-worker` process.
pub struct WorkerProcess {
    child: Child,
    pub log: PathBuf,
    http: SocketAddr,
    /// Holds the `KafkaMirror` document for as long as the worker runs.
    _document: tempfile::TempDir,
}

impl WorkerProcess {
    /// Starts the worker on `document`, a `KafkaMirror` in YAML.
    pub fn start(document: &str, log: PathBuf) -> WorkerProcess {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mirror.yaml");
        std::fs::write(&path, document).unwrap();
        let http = measure::free_address();
        let child = Command::new(env!("CARGO_BIN_EXE_mirror-worker"))
            .args(["--config", path.to_str().unwrap()])
            .args(["--http-listen", &http.to_string()])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("starting mirror-worker");
        WorkerProcess {
            child,
            log,
            http,
            _document: dir,
        }
    }

    /// Waits until the worker's streams hold `partitions` partitions (its `/metrics` say so), so that a
    /// measurement does not include the consumer group forming.
    pub fn wait_assigned(&mut self, partitions: i32) {
        let wanted = format!("kafka_mirror_assigned_partitions {partitions}");
        let deadline = Instant::now() + COPY_TIMEOUT;
        while !self.metrics().lines().any(|line| line == wanted) {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!(
                    "mirror-worker exited with {status} before it was assigned; see {}",
                    self.log.display()
                );
            }
            assert!(
                Instant::now() < deadline,
                "mirror-worker was not assigned {partitions} partitions"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The worker's `/metrics` text, empty while it does not answer yet.
    fn metrics(&self) -> String {
        kafka_mirror_tests::http_get(self.http, "/metrics")
            .map(|(_, body)| body)
            .unwrap_or_default()
    }

    /// Waits until the target holds `expected` records.
    pub fn copy(&mut self, target: &ClusterProcess, expected: i64) -> Arrival {
        let log = self.log.clone();
        let child = &mut self.child;
        wait_for_arrival(&target.watcher(), expected, || {
            match child.try_wait().unwrap() {
                Some(status) => Err(format!(
                    "mirror-worker exited with {status}; its log:\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                )),
                None => Ok(()),
            }
        })
    }

    /// CPU and peak memory so far.
    pub fn usage_so_far(&self) -> Usage {
        measure::so_far(self.child.id())
    }

    /// SIGTERM, as Kubernetes stops a pod; the worker drains, commits and exits (1 if it had stopped on an
    /// error already, which its log says).
    pub fn stop(mut self) {
        measure::signal(&self.child, libc::SIGTERM);
        let _ = self.child.wait();
    }
}
