//! `mode: migrate` with the end offsets recorded at the migration's start (what the operator writes into the
//! ConfigMap `<name>-migration` and mounts into the worker pods), given to the real `mirror-worker` binary with
//! `--migration-end`, between two Apache Kafka clusters: the worker copies exactly up to the recorded ends,
//! although the source holds more; once the group's commits reached them it stays up idle and ready, saying the
//! migration is complete; and a restart with the same record, after more records arrived, copies nothing more.
//! A record that cannot be used stops the worker before any connection, naming the file and the field.
//!
//! Without `--migration-end` the worker records its own end when it starts (`tests/broker_processes.rs`).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use kafka_mirror_crds::Mode;
use kafka_mirror_crds::worker_pod::MIGRATION_FILE;
use kafka_mirror_samples::{self as samples, ReadRecord};
use kafka_mirror_tests::document::{Connection, MirrorDocument};
use kafka_mirror_tests::http::{http_get, metric};
use kafka_mirror_tests::positions::{GroupOffsets, Watermarks};
use kafka_mirror_tests::{ClusterOptions, KafkaCluster, Launch, Worker};

const PARTITIONS: i32 = 3;
const COMPLETION_TIMEOUT: Duration = Duration::from_secs(120);

fn source() -> &'static KafkaCluster {
    KafkaCluster::shared()
}

fn target() -> &'static KafkaCluster {
    static TARGET: OnceLock<KafkaCluster> = OnceLock::new();
    TARGET.get_or_init(|| KafkaCluster::start(&ClusterOptions::default()))
}

/// The record as the operator writes it (`kafka_mirror_clients::migration::MigrationRecord`), spelled out: the
/// format is the contract between the two binaries.
fn write_record(dir: &Path, topic: &str, ends: &[i64]) -> PathBuf {
    let offsets: Vec<String> = ends.iter().map(i64::to_string).collect();
    let json = format!(
        r#"{{"startedAt": "2026-12-02T12:00:00Z", "topics": {{"{topic}": [{}]}}}}"#,
        offsets.join(", ")
    );
    let path = dir.join(MIGRATION_FILE);
    std::fs::write(&path, json).unwrap();
    path
}

fn migrate_document(dir: &Path, name: &str, topic: &str) -> PathBuf {
    MirrorDocument::new(
        name,
        Connection::new(&source().plaintext),
        Connection::new(&target().plaintext),
    )
    .include(topic)
    .rename("mirror.{topic}")
    .create(1, &[])
    .mode(Mode::Migrate)
    .num_streams(2)
    .write_in(dir)
}

fn metrics_of(worker: &Worker) -> String {
    http_get(worker.http, "/metrics")
        .map(|(_, body)| body)
        .unwrap_or_default()
}

/// Waits until the worker says, on `/metrics`, that the migration is complete; it must still run, and be ready.
fn wait_until_complete_and_idle(worker: &mut Worker, what: &str) {
    let http = worker.http;
    worker.wait_for(
        &format!("{what}: kafka_mirror_migration_complete 1"),
        COMPLETION_TIMEOUT,
        || {
            http_get(http, "/metrics")
                .ok()
                .and_then(|(_, body)| metric(&body, "kafka_mirror_migration_complete"))
                == Some(1.0)
        },
    );
    // Idle, not gone: a Deployment would restart an exited worker.
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        worker.is_running(),
        "{what}: the worker must stay up after the migration completed:\n{}",
        worker.stderr()
    );
    let (status, body) = http_get(worker.http, "/readyz").unwrap();
    assert_eq!(
        status, 200,
        "{what}: an idle, complete worker is ready: {body}"
    );
}

/// Records of `partition`, in offset order.
fn of_partition(records: &[ReadRecord], partition: i32) -> Vec<&ReadRecord> {
    let mut of: Vec<&ReadRecord> = records
        .iter()
        .filter(|r| r.partition == partition)
        .collect();
    of.sort_by_key(|r| r.offset);
    of
}

fn committed(group: &str, topic: &str) -> Vec<Option<i64>> {
    GroupOffsets::new(&source().client(), group, topic, PARTITIONS)
        .committed()
        .unwrap()
}

/// Everything on the target topic now (waits until the topic stops growing).
fn on_target(topic: &str) -> Vec<ReadRecord> {
    samples::read_all(
        &target().internal,
        topic,
        usize::MAX,
        Duration::from_secs(30),
    )
    .unwrap()
}

#[test]
fn a_worker_given_the_recorded_end_copies_exactly_up_to_it_and_a_restart_copies_nothing_more() {
    let source = source();
    source.create_topic("ledger", PARTITIONS, 1, &[]);
    samples::produce_with(&source.client(), "ledger", 0, 900, 30, 64).unwrap();
    let highs = Watermarks::new(&source.client(), "ledger", PARTITIONS)
        .high()
        .unwrap();
    // The migration started earlier: its recorded ends are below the source's high watermarks now.
    let ends: Vec<i64> = highs.iter().map(|h| h * 2 / 3).collect();
    assert!(
        ends.iter().zip(&highs).all(|(e, h)| 0 < *e && e < h),
        "{ends:?} below {highs:?}"
    );
    let total: i64 = ends.iter().sum();
    let dir = tempfile::tempdir().unwrap();
    let record = write_record(dir.path(), "ledger", &ends);
    let document = migrate_document(dir.path(), "ledger-migration", "ledger");
    let group = kafka_mirror_clients::plan::default_group_id(None, "ledger-migration");

    let mut worker = Launch::new(&document)
        .secrets_dir(dir.path())
        .migration_end(&record)
        .spawn();
    wait_until_complete_and_idle(&mut worker, "first run");
    let log = worker.stderr();
    assert!(
        log.contains("migration: copying up to the end offsets recorded at the migration's start"),
        "{log}"
    );
    assert_eq!(
        committed(&group, "ledger"),
        ends.iter().copied().map(Some).collect::<Vec<_>>(),
        "the group committed exactly the recorded ends"
    );
    let copy = on_target("mirror.ledger");
    let original = samples::read_all(
        &source.internal,
        "ledger",
        highs.iter().sum::<i64>() as usize,
        Duration::from_secs(30),
    )
    .unwrap();
    eprintln!(
        "ledger: high watermarks {highs:?}, recorded ends {ends:?}: {} records copied of {} on the source",
        copy.len(),
        original.len()
    );
    assert_eq!(
        copy.len() as i64,
        total,
        "exactly the records below the recorded ends"
    );
    for p in 0..PARTITIONS {
        let (copied, source_records) = (of_partition(&copy, p), of_partition(&original, p));
        assert_eq!(
            copied.len() as i64,
            ends[p as usize],
            "partition {p}: the records below its end, none after"
        );
        for (n, (c, s)) in copied.iter().zip(&source_records).enumerate() {
            assert!(
                c.key == s.key
                    && c.value == s.value
                    && c.headers == s.headers
                    && c.timestamp == s.timestamp,
                "partition {p}: copied record {n} is source record {n}:\n{c:?}\n{s:?}"
            );
        }
    }
    let first = worker.stop();
    assert!(
        first.status.success(),
        "SIGTERM ends the idle worker with 0:\n{}",
        first.output()
    );
    assert!(
        first.stdout.contains("migration complete"),
        "{}",
        first.output()
    );

    // A restart (what a Deployment does to a pod) with the same record, after more records arrived.
    samples::produce_with(&source.client(), "ledger", 900, 1200, 30, 64).unwrap();
    let mut again = Launch::new(&document)
        .secrets_dir(dir.path())
        .migration_end(&record)
        .spawn();
    wait_until_complete_and_idle(&mut again, "restart");
    assert!(
        again.stderr().contains(
            "migration complete: the group's commits already reached every recorded end offset; copying nothing"
        ),
        "{}",
        again.stderr()
    );
    assert_eq!(
        metric(&metrics_of(&again), "kafka_mirror_assigned_partitions"),
        Some(0.0),
        "the restarted worker never joined the group"
    );
    let after_restart = on_target("mirror.ledger");
    assert_eq!(
        after_restart.len() as i64,
        total,
        "nothing more arrived after the restart"
    );
    assert_eq!(
        committed(&group, "ledger"),
        ends.iter().copied().map(Some).collect::<Vec<_>>(),
        "the commits did not move"
    );
    let second = again.stop();
    assert!(second.status.success(), "{}", second.output());
    assert!(
        second.stdout.contains("migration complete"),
        "{}",
        second.output()
    );
}

/// What the worker says about a record it cannot use, before it connects anywhere.
fn refused(document: &Path, record: &Path) -> String {
    let run = Launch::new(document)
        .migration_end(record)
        .spawn()
        .finish(Duration::from_secs(30));
    assert_eq!(run.exit_code(), Some(2), "{}", run.output());
    run.stderr
}

#[test]
fn a_record_that_cannot_be_used_stops_the_worker_naming_the_file_and_the_field() {
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens there: the worker must refuse before it connects.
    let (nowhere, nowhere_else) = (
        Connection::new("127.0.0.1:1"),
        Connection::new("127.0.0.1:2"),
    );
    let migrate = MirrorDocument::new("bad-record", nowhere.clone(), nowhere_else.clone())
        .include("ledger")
        .mode(Mode::Migrate)
        .write_in(dir.path());

    let record = dir.path().join(MIGRATION_FILE);
    std::fs::write(
        &record,
        r#"{"startedAt": "2026-12-02T12:00:00Z", "topics": {"ledger": [10, "x"]}}"#,
    )
    .unwrap();
    let stderr = refused(&migrate, &record);
    let expected = format!(
        "--migration-end: invalid migration end offsets {}: topics.ledger[1]: invalid type: string \"x\", expected i64",
        record.display()
    );
    assert!(stderr.contains(&expected), "{expected}\n{stderr}");

    std::fs::write(&record, r#"{"topics": {"ledger": [10]}}"#).unwrap();
    let stderr = refused(&migrate, &record);
    assert!(stderr.contains("missing field `startedAt`"), "{stderr}");

    let missing = dir.path().join("absent.json");
    let stderr = refused(&migrate, &missing);
    assert!(
        stderr.contains(&format!(
            "--migration-end: cannot read the migration's end offsets {}",
            missing.display()
        )),
        "{stderr}"
    );

    let continuous_dir = tempfile::tempdir().unwrap();
    let continuous = MirrorDocument::new("not-a-migration", nowhere, nowhere_else)
        .include("ledger")
        .write_in(continuous_dir.path());
    std::fs::write(
        &record,
        r#"{"startedAt": "2026-12-02T12:00:00Z", "topics": {"ledger": [10]}}"#,
    )
    .unwrap();
    let stderr = refused(&continuous, &record);
    assert!(
        stderr.contains("end offsets are for spec.mode: migrate"),
        "{stderr}"
    );
}
