//! Faults a production mirror meets, each run against real Kafka-protocol clusters (librdkafka's mock
//! cluster) with every record counted on both sides by key and sequence number. Every test prints what
//! arrived, what was lost and what was duplicated; a lost, altered or reordered record fails it.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::process::{Worker, committed, target_records, wait_until};
use common::*;
use mirror_worker::testkit::{self, SampleRecord};

const TOPIC: &str = "orders";
const PARTITIONS: i32 = 4;
/// The mock cluster keeps at most 5 MiB per partition and trims older records beyond that, as retention
/// would; 200,000 records (and their duplicates on the target) need 16 partitions to stay below it.
const SIGKILL_PARTITIONS: i32 = 16;

/// Writes [`document`] (short group sessions, so kills are noticed within seconds) to `dir/<name>.yaml`.
fn write_document(dir: &Path, name: &str, source: &str, target: &str, extra: &str) -> String {
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(&path, document(name, source, target, TOPIC, extra)).unwrap();
    path.to_str().unwrap().to_string()
}

/// Produces `batches` × 1000 keyed records to the source, one batch every `pause`, on a background thread.
fn produce_slowly(
    source: &str,
    batches: u64,
    pause: Duration,
) -> std::thread::JoinHandle<Vec<SampleRecord>> {
    let source = source.to_string();
    std::thread::spawn(move || {
        (0..batches)
            .flat_map(|i| {
                std::thread::sleep(pause);
                testkit::produce(&source, TOPIC, i * 1000, (i + 1) * 1000, 1000, 64).unwrap()
            })
            .collect()
    })
}

/// Reads the target back and compares it with what was seeded; fails on anything lost, altered or out of
/// order, and prints the counts either way.
fn verify_copy(what: &str, target: &str, seeded: &[SampleRecord]) -> testkit::Verification {
    let copy = testkit::read_all(target, TOPIC, seeded.len(), Duration::from_secs(120)).unwrap();
    let v = testkit::verify(seeded, &copy);
    eprintln!("{what}: {v}");
    assert!(v.is_intact(), "{what}: {v}");
    v
}

#[test]
fn sigkill_ten_times_while_200_000_records_flow_loses_nothing_and_keeps_per_key_order() {
    let (source, target) = (mock(1), mock(1));
    source.create_topic(TOPIC, SIGKILL_PARTITIONS, 1).unwrap();
    target.create_topic(TOPIC, SIGKILL_PARTITIONS, 1).unwrap();
    let (s, t) = (source.bootstrap_servers(), target.bootstrap_servers());
    let dir = tempfile::tempdir().unwrap();
    let document = write_document(dir.path(), "sigkill", &s, &t, "  numStreams: 2\n");

    // About 90 s of production, so every one of the ten runs (each first waits ~6 s for the group to drop the
    // killed member) starts while records still arrive.
    let producer = produce_slowly(&s, 200, Duration::from_millis(450));
    let mut kills = Vec::new();
    for round in 0..10u64 {
        let worker = Worker::spawn(
            Path::new(&document),
            dir.path().join(format!("run-{round}.log")),
            &[],
        );
        let before = target_records(&t, TOPIC, SIGKILL_PARTITIONS);
        // Kill at a different point of each run: after it mirrored a few thousand records, mid-flight.
        let progress = 1000 + 700 * (round % 4) as i64;
        wait_until(
            &format!("run {round} to mirror {progress} records"),
            Duration::from_secs(90),
            || target_records(&t, TOPIC, SIGKILL_PARTITIONS) >= before + progress,
        );
        std::thread::sleep(Duration::from_millis(250 * (round % 4)));
        worker.kill_hard();
        kills.push(target_records(&t, TOPIC, SIGKILL_PARTITIONS));
    }
    let seeded = producer.join().unwrap();
    assert_eq!(seeded.len(), 200_000);

    let last = Worker::spawn(Path::new(&document), dir.path().join("last.log"), &[]);
    wait_until(
        "the last worker to commit all 200,000 records",
        Duration::from_secs(180),
        || committed(&s, "kafka-mirror.sigkill", TOPIC, SIGKILL_PARTITIONS) >= 200_000,
    );
    last.signal("TERM");
    let (code, log) = last.wait_exit(Duration::from_secs(30));
    assert_eq!(code, Some(0), "{log}");

    eprintln!("records on the target at each SIGKILL: {kills:?}");
    let v = verify_copy("10 × SIGKILL during 200,000 records", &t, &seeded);
    assert_eq!(v.lost, 0);
}

#[test]
fn target_unreachable_for_30_seconds_is_reported_and_the_worker_resumes_on_its_own() {
    let (source, target) = (mock(1), mock(1));
    source.create_topic(TOPIC, PARTITIONS, 1).unwrap();
    target.create_topic(TOPIC, PARTITIONS, 1).unwrap();
    let (s, t) = (source.bootstrap_servers(), target.bootstrap_servers());
    let dir = tempfile::tempdir().unwrap();
    let document = write_document(dir.path(), "outage", &s, &t, "");

    let producer = produce_slowly(&s, 50, Duration::from_millis(200));
    let mut worker = Worker::spawn(Path::new(&document), dir.path().join("worker.log"), &[]);
    wait_until("records to flow", Duration::from_secs(60), || {
        target_records(&t, TOPIC, PARTITIONS) >= 3000
    });
    assert_eq!(worker.http_get("/readyz").0, 200);

    target.broker_down(1).unwrap();
    let down_at = Instant::now();
    wait_until(
        "/readyz to report the target unreachable",
        Duration::from_secs(25),
        || {
            let (status, body) = worker.http_get("/readyz");
            status == 503 && body.contains("target")
        },
    );
    let (_, metrics) = worker.http_get("/metrics");
    assert!(
        metrics.contains("kafka_mirror_errors_total{kind=\"target_unreachable\"}"),
        "{metrics}"
    );
    // Offsets stored before the outage may still be committed in its first moments; after that, nothing.
    std::thread::sleep(Duration::from_secs(5).saturating_sub(down_at.elapsed()));
    let committed_while_down = committed(&s, "kafka-mirror.outage", TOPIC, PARTITIONS);
    while down_at.elapsed() < Duration::from_secs(30) {
        assert!(
            worker.running(),
            "the worker stays alive while the target is down"
        );
        assert_eq!(
            worker.http_get("/healthz").0,
            200,
            "alive, so the pod is not restarted"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    // Nothing was acknowledged, so nothing more may be committed on the source.
    assert_eq!(
        committed(&s, "kafka-mirror.outage", TOPIC, PARTITIONS),
        committed_while_down,
        "no source offset moves while the target cannot acknowledge"
    );
    target.broker_up(1).unwrap();

    let seeded = producer.join().unwrap();
    wait_until(
        "the worker to catch up after the outage",
        Duration::from_secs(120),
        || committed(&s, "kafka-mirror.outage", TOPIC, PARTITIONS) >= seeded.len() as i64,
    );
    assert_eq!(worker.http_get("/readyz").0, 200, "ready again");
    worker.signal("TERM");
    let (code, log) = worker.wait_exit(Duration::from_secs(30));
    assert_eq!(code, Some(0), "{log}");
    verify_copy("target down for 30 s", &t, &seeded);
}

#[test]
fn scaling_from_one_worker_to_four_and_back_to_one_mid_stream_loses_nothing() {
    let (source, target) = (mock(1), mock(1));
    source.create_topic(TOPIC, 8, 1).unwrap();
    target.create_topic(TOPIC, 8, 1).unwrap();
    let (s, t) = (source.bootstrap_servers(), target.bootstrap_servers());
    let dir = tempfile::tempdir().unwrap();
    let document = write_document(dir.path(), "scale", &s, &t, "");
    let document = Path::new(&document);
    let assigned = |worker: &Worker| {
        let (_, metrics) = worker.http_get("/metrics");
        metrics
            .lines()
            .find_map(|l| l.strip_prefix("kafka_mirror_assigned_partitions "))
            .and_then(|v| v.trim().parse::<i64>().ok())
            .unwrap_or(-1)
    };

    let producer = produce_slowly(&s, 60, Duration::from_millis(400));
    let first = Worker::spawn(document, dir.path().join("first.log"), &[]);
    wait_until(
        "one worker to own all 8 partitions",
        Duration::from_secs(60),
        || assigned(&first) == 8,
    );
    let more: Vec<Worker> = (1..4)
        .map(|i| Worker::spawn(document, dir.path().join(format!("more-{i}.log")), &[]))
        .collect();
    wait_until(
        "four workers to share the 8 partitions",
        Duration::from_secs(60),
        || assigned(&first) < 8 && more.iter().all(|w| assigned(w) > 0),
    );
    let shares: Vec<i64> = std::iter::once(&first).chain(&more).map(assigned).collect();
    assert_eq!(
        shares.iter().sum::<i64>(),
        8,
        "every partition has one owner: {shares:?}"
    );
    // Back to one: the three leave as a scale-down would stop their pods.
    for worker in more {
        worker.signal("TERM");
        let (code, log) = worker.wait_exit(Duration::from_secs(60));
        assert_eq!(code, Some(0), "{log}");
    }
    wait_until(
        "the first worker to own all 8 again",
        Duration::from_secs(60),
        || assigned(&first) == 8,
    );
    let seeded = producer.join().unwrap();
    wait_until("the mirror to catch up", Duration::from_secs(120), || {
        committed(&s, "kafka-mirror.scale", TOPIC, 8) >= seeded.len() as i64
    });
    first.signal("TERM");
    let (code, log) = first.wait_exit(Duration::from_secs(30));
    assert_eq!(code, Some(0), "{log}");
    eprintln!("partition shares with four workers: {shares:?}");
    verify_copy("scaled 1 → 4 → 1 mid-stream", &t, &seeded);
}

#[test]
fn records_deleted_from_the_source_before_they_were_mirrored_stop_the_worker_instead_of_being_skipped()
 {
    let (source, target) = (mock(1), mock(1));
    source.create_topic(TOPIC, 1, 1).unwrap();
    target.create_topic(TOPIC, 1, 1).unwrap();
    let (s, t) = (source.bootstrap_servers(), target.bootstrap_servers());
    let dir = tempfile::tempdir().unwrap();
    let document = write_document(dir.path(), "truncated", &s, &t, "");
    let document = Path::new(&document);

    testkit::produce(&s, TOPIC, 0, 2000, 100, 100).unwrap();
    let first = Worker::spawn(document, dir.path().join("first.log"), &[]);
    wait_until(
        "the first 2000 records to be committed",
        Duration::from_secs(60),
        || committed(&s, "kafka-mirror.truncated", TOPIC, 1) == 2000,
    );
    first.signal("TERM");
    assert_eq!(first.wait_exit(Duration::from_secs(30)).0, Some(0));

    // While the mirror is stopped, the source keeps only its newest 5 MiB per partition (the mock cluster's
    // retention): offsets 2000 and a stretch after it are deleted before anyone copied them.
    testkit::produce(&s, TOPIC, 2000, 62_000, 100, 100).unwrap();
    let consumer: rdkafka::consumer::BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &s)
        .create()
        .unwrap();
    let (low, _) =
        rdkafka::consumer::Consumer::fetch_watermarks(&consumer, TOPIC, 0, Duration::from_secs(5))
            .unwrap();
    assert!(
        low > 2000,
        "the source deleted the records after offset 2000 (log start {low})"
    );

    let second = Worker::spawn(document, dir.path().join("second.log"), &[]);
    let (code, log) = second.wait_exit(Duration::from_secs(60));
    assert_eq!(code, Some(1), "{log}");
    assert!(
        log.contains("source partition orders[0] no longer holds offset 2000"),
        "the exit message names the partition and the offset:\n{log}"
    );
    assert!(
        log.contains("--reset-offsets"),
        "and says how to accept the loss:\n{log}"
    );
    assert_eq!(
        committed(&s, "kafka-mirror.truncated", TOPIC, 1),
        2000,
        "the committed offset stays where the copy really ended"
    );
    assert_eq!(
        target_records(&t, TOPIC, 1),
        2000,
        "nothing after the gap was written to the target"
    );
}

#[test]
fn a_record_larger_than_the_target_accepts_stops_the_worker_with_everything_before_it_committed() {
    let (source, target) = (mock(1), mock(1));
    source.create_topic(TOPIC, 1, 1).unwrap();
    target.create_topic(TOPIC, 1, 1).unwrap();
    let (s, t) = (source.bootstrap_servers(), target.bootstrap_servers());
    let dir = tempfile::tempdir().unwrap();
    // The producer knows the target's limit through its own message.max.bytes, as it should match the
    // target topic's max.message.bytes; a broker refusing it (MESSAGE_TOO_LARGE) takes the same path.
    let document = write_document(
        dir.path(),
        "oversized",
        &s,
        &t,
        "    config: {message.max.bytes: 20000}\n",
    );
    // `extra` lands under spec:, so move the target config under target: by rewriting the document.
    let text = std::fs::read_to_string(&document)
        .unwrap()
        .replace("    config: {message.max.bytes: 20000}\n", "")
        .replace(
            &format!("bootstrapServers: \"{t}\"\n"),
            &format!("bootstrapServers: \"{t}\"\n    config: {{message.max.bytes: 20000}}\n"),
        );
    std::fs::write(&document, text).unwrap();

    testkit::produce(&s, TOPIC, 0, 500, 10, 100).unwrap();
    testkit::produce(&s, TOPIC, 500, 501, 10, 50_000).unwrap();
    testkit::produce(&s, TOPIC, 501, 1000, 10, 100).unwrap();

    let worker = Worker::spawn(Path::new(&document), dir.path().join("worker.log"), &[]);
    let (code, log) = worker.wait_exit(Duration::from_secs(60));
    assert_eq!(code, Some(1), "{log}");
    assert!(
        log.contains("the target refused record orders[0]@500 for topic orders")
            && log.contains("larger than the target accepts"),
        "the exit message names the record and the limit to raise:\n{log}"
    );
    assert_eq!(
        committed(&s, "kafka-mirror.oversized", TOPIC, 1),
        500,
        "every record before it is committed, none after"
    );
    assert_eq!(target_records(&t, TOPIC, 1), 500);
}
