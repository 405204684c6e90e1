//! The copies being compared: Debian's kcat as a consume | produce pipeline, and the mirror-worker binary (the
//! MirrorMaker peers are in `peers`). All are timed the same way, from outside: the target's end offsets,
//! polled every 10 ms, from the first record on the target to the last.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::{Offset, TopicPartitionList};

use kafka_mirror_tests::document::MirrorDocument;
use kafka_mirror_tests::http::metric_at;
use kafka_mirror_tests::positions::{GroupOffsets, Watermarks};
use kafka_mirror_tests::records::client_config;
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

/// An exactly-once copy: when its records were written into transactions, and when the last was visible.
pub struct CommittedArrival {
    pub written: Arrival,
    /// First record on the target to the source group's commit of the last: when a `read_committed` reader
    /// could see every record.
    pub visible_seconds: f64,
}

/// Polls `target` until it holds `expected` records; `alive` is asked between polls so that a copy process that
/// died is reported instead of waited for. `copier`: the pid of a long-running copy process whose CPU time is
/// read when the first record arrives (its start-up, a JVM's included, is then left out of its figures).
pub fn wait_for_arrival(
    target: &Watermarks,
    expected: i64,
    copier: Option<u32>,
    alive: impl FnMut() -> Result<(), String>,
) -> Arrival {
    wait_until_done(target, || target.high_total(), expected, copier, alive)
}

/// [`wait_for_arrival`] with the copy's progress read by `done` (records copied so far) instead of the target's
/// end offsets; the first record is still seen on `target`.
fn wait_until_done<E: std::fmt::Display>(
    target: &Watermarks,
    mut done: impl FnMut() -> Result<i64, E>,
    expected: i64,
    copier: Option<u32>,
    mut alive: impl FnMut() -> Result<(), String>,
) -> Arrival {
    let started = Instant::now();
    let mut first = None;
    let mut cpu_at_first = Duration::ZERO;
    let mut arrived = 0;
    loop {
        // A topic created a moment ago may answer "not leader" for a while: asked again.
        let asked = if first.is_none() {
            target
                .high_total()
                .map(|on_target| {
                    if on_target > 0 {
                        first = Some(Instant::now());
                        if let Some(pid) = copier {
                            cpu_at_first = measure::so_far(pid).cpu;
                        }
                    }
                })
                .map_err(|e| e.to_string())
        } else {
            done().map(|n| arrived = n).map_err(|e| e.to_string())
        };
        if let Err(e) = asked {
            assert!(
                started.elapsed() < COPY_TIMEOUT,
                "asking how far the copy got: {e}"
            );
            std::thread::sleep(Duration::from_millis(50));
            continue;
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
            panic!("the copy stopped with {arrived} of {expected} records copied: {why}");
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
    /// Its consumer group on the source.
    group: String,
    /// Holds the `KafkaMirror` document for as long as the worker runs.
    _document: tempfile::TempDir,
}

impl WorkerProcess {
    /// Starts the worker on `document`, with `--commit-interval` `commit_interval` (seconds) if given, its log
    /// written to `log`.
    pub fn start(
        document: &MirrorDocument,
        commit_interval: Option<f64>,
        log: PathBuf,
    ) -> WorkerProcess {
        let dir = tempfile::tempdir().unwrap();
        let path = document.write_in(dir.path());
        let mut launch = Launch::worker_defaults(&path)
            .binary(env!("CARGO_BIN_EXE_mirror-worker"))
            .log_file(log);
        if let Some(seconds) = commit_interval {
            launch = launch.commit_interval(&seconds.to_string());
        }
        WorkerProcess {
            worker: launch.spawn(),
            group: document.group_id(),
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
            || still_running(worker),
        )
    }

    /// `delivery: exactlyOnce`: waits until the worker has written `expected` records of `topic` into its
    /// transactions (its `kafka_mirror_records_mirrored_total`, counted as the target acknowledges each record;
    /// the target's end offsets cannot say it, each transaction adds a marker to every partition it wrote),
    /// then until they are all visible: the source group is committed right after each transaction, to the
    /// position it committed, so its commits say what a `read_committed` reader of the target can see. The copy
    /// rate is timed to the first, as the at-least-once copy is timed to its last acknowledged record; the last
    /// commit comes up to one commit interval later, which on a backlog of a few seconds would weigh as much as
    /// the copy itself (the latency section measures that wait).
    pub fn copy_committed(
        &mut self,
        source: &ClusterProcess,
        target: &ClusterProcess,
        topic: &str,
        partitions: i32,
        expected: i64,
    ) -> CommittedArrival {
        let pid = self.worker.pid();
        let http = self.worker.http;
        let written_series = format!("kafka_mirror_records_mirrored_total{{topic=\"{topic}\"}}");
        let worker = &mut self.worker;
        let written = wait_until_done(
            &target.watcher(topic, partitions),
            || {
                metric_at(http, &written_series)
                    .map(|n| n as i64)
                    .ok_or("the worker's /metrics has no count of written records yet")
            },
            expected,
            Some(pid),
            || still_running(worker),
        );
        // The target holds records by now, so this times from its start to the commit of the last one.
        let group = GroupOffsets::new(
            &client_config(&source.bootstrap, &[]),
            &self.group,
            topic,
            partitions,
        );
        let committed = wait_until_done(
            &target.watcher(topic, partitions),
            || group.committed_total(),
            expected,
            None,
            || still_running(worker),
        );
        CommittedArrival {
            visible_seconds: written.seconds + committed.seconds,
            written,
        }
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

/// The records of `topic` on `target` a `read_committed` consumer reads, from the beginning to the end of every
/// partition: what an exactly-once copy made visible. Not timed.
pub fn count_committed(target: &ClusterProcess, topic: &str, partitions: i32) -> u64 {
    let consumer: BaseConsumer = client_config(&target.bootstrap, &[])
        .set("group.id", "kafka-mirror-bench.count")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .set("isolation.level", "read_committed")
        .create()
        .expect("creating the counting consumer");
    let mut assignment = TopicPartitionList::new();
    for p in 0..partitions {
        assignment
            .add_partition_offset(topic, p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&assignment).unwrap();
    let started = Instant::now();
    let mut at_end = vec![false; partitions as usize];
    let mut records = 0u64;
    while !at_end.iter().all(|e| *e) {
        assert!(
            started.elapsed() < COPY_TIMEOUT,
            "counting {topic} on the target took longer than {COPY_TIMEOUT:?}"
        );
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(_)) => records += 1,
            Some(Err(KafkaError::PartitionEOF(p))) => at_end[p as usize] = true,
            Some(Err(e)) => panic!("counting {topic} on the target: {e}"),
            None => {}
        }
    }
    records
}

/// `Err` with the worker's log once it exited: a copy waiting for it stops waiting.
fn still_running(worker: &mut Worker) -> Result<(), String> {
    match worker.exit_status() {
        Some(status) => Err(format!(
            "mirror-worker exited with {status}; its log:\n{}",
            worker.stderr()
        )),
        None => Ok(()),
    }
}
