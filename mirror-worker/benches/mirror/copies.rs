//! The copies being compared: Debian's kcat as a consume | produce pipeline, and the mirror-worker binary (the
//! MirrorMaker peers are in `peers`). All are timed the same way, from outside: the target's end offsets,
//! polled every 10 ms, from the first record on the target to the last.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use kafka_mirror_tests::document::MirrorDocument;
use kafka_mirror_tests::positions::Watermarks;
use kafka_mirror_tests::{Launch, Worker};

use crate::cluster::ClusterProcess;
use crate::measure::{self, Usage};

/// How long a copy may take before the benchmark gives up on it.
const COPY_TIMEOUT: Duration = Duration::from_secs(600);

/// When the first and the last of `expected` records reached the target.
pub struct Arrival {
    /// First record on the target to the last.
    pub seconds: f64,
    /// The CPU time the copying process (`copier`) had used when the first record was seen on the target.
    pub cpu_at_first: Duration,
}

/// Polls `target` until it holds `expected` records; `alive` is asked between polls so that a copy process that
/// died is reported instead of waited for. `copier`: the pid of a long-running copy process whose CPU time is
/// read when the first record arrives (its start-up, a JVM's included, is then left out of its figures).
pub fn wait_for_arrival(
    target: &Watermarks,
    expected: i64,
    copier: Option<u32>,
    mut alive: impl FnMut() -> Result<(), String>,
) -> Arrival {
    let started = Instant::now();
    let mut first = None;
    let mut cpu_at_first = Duration::ZERO;
    loop {
        // A topic created a moment ago may answer "not leader" for a while: asked again.
        let arrived = match target.high_total() {
            Ok(arrived) => arrived,
            Err(e) => {
                assert!(
                    started.elapsed() < COPY_TIMEOUT,
                    "asking the target for its end offsets: {e}"
                );
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        if arrived > 0 && first.is_none() {
            first = Some(Instant::now());
            if let Some(pid) = copier {
                cpu_at_first = measure::so_far(pid).cpu;
            }
        }
        if arrived >= expected {
            assert_eq!(
                arrived, expected,
                "the copy wrote more records than the source holds"
            );
            return Arrival {
                seconds: first.unwrap().elapsed().as_secs_f64(),
                cpu_at_first,
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
    topic: &str,
    partitions: i32,
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
            topic,
        ])
        .args(["-f", "%k\t%s\n"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("starting kcat -C (is Debian's kcat installed? tests/benchmark.sh installs it)");
    let mut produce = Command::new("kcat")
        .args(["-P", "-q", "-b", &target.bootstrap, "-t", topic, "-K", "\t"])
        // The same delivery guarantee as the worker's producer.
        .args(["-X", "enable.idempotence=true"])
        .stdin(Stdio::from(consume.stdout.take().unwrap()))
        .spawn()
        .expect("starting kcat -P");
    let arrival =
        wait_for_arrival(
            &target.watcher(topic, partitions),
            expected,
            None,
            || match produce.try_wait().unwrap() {
                Some(status) if !status.success() => Err(format!("kcat -P exited with {status}")),
                _ => Ok(()),
            },
        );
    let usage = measure::reap(consume, "kcat -C").plus(measure::reap(produce, "kcat -P"));
    (arrival, usage)
}

/// A `mirror-worker` process with the worker's own defaults (what a pod runs), on a document of its own.
pub struct WorkerProcess {
    worker: Worker,
    /// Holds the `KafkaMirror` document for as long as the worker runs.
    _document: tempfile::TempDir,
}

impl WorkerProcess {
    /// Starts the worker on `document`, its log written to `log`.
    pub fn start(document: &MirrorDocument, log: PathBuf) -> WorkerProcess {
        let dir = tempfile::tempdir().unwrap();
        let path = document.write_in(dir.path());
        let worker = Launch::worker_defaults(&path)
            .binary(env!("CARGO_BIN_EXE_mirror-worker"))
            .log_file(log)
            .spawn();
        WorkerProcess {
            worker,
            _document: dir,
        }
    }

    /// Waits until the target holds `expected` records of `topic`.
    pub fn copy(
        &mut self,
        target: &ClusterProcess,
        topic: &str,
        partitions: i32,
        expected: i64,
    ) -> Arrival {
        let pid = self.worker.pid();
        let worker = &mut self.worker;
        wait_for_arrival(
            &target.watcher(topic, partitions),
            expected,
            Some(pid),
            || match worker.exit_status() {
                Some(status) => Err(format!(
                    "mirror-worker exited with {status}; its log:\n{}",
                    worker.stderr()
                )),
                None => Ok(()),
            },
        )
    }

    /// CPU and peak memory so far.
    pub fn usage_so_far(&self) -> Usage {
        measure::so_far(self.worker.pid())
    }

    /// SIGTERM, as Kubernetes stops a pod; the worker drains, commits and exits (1 if it had stopped on an
    /// error already, which its log says).
    pub fn stop(self) {
        self.worker.stop();
    }
}
