//! mirror-worker as a process between two Apache Kafka clusters, run from a document with `mode: migrate`:
//! the admin path (the missing target topic created with the source's partition count, the replication factor
//! and the topic configs the document asks for, read back with DescribeConfigs), a complete copy, and a
//! migration while producers keep writing to the source, which copies exactly the records below the high
//! watermarks seen at start. And a bad document, refused before any cluster is touched.
//!
//! The source is the test binary's shared single-broker cluster; the target has three brokers, so a
//! replication factor other than the default can be seen on the created topic.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use kafka_mirror_crds::Mode;
use kafka_mirror_samples::{self as samples, ReadRecord};
use kafka_mirror_tests::document::{Connection, MirrorDocument};
use kafka_mirror_tests::positions::{GroupOffsets, Watermarks};
use kafka_mirror_tests::producer::{BackgroundProducer, Feed};
use kafka_mirror_tests::{ClusterOptions, Finished, KafkaCluster, Launch, Worker};
use rdkafka::consumer::{BaseConsumer, Consumer};

const MIGRATION_TIMEOUT: Duration = Duration::from_secs(180);

fn source() -> &'static KafkaCluster {
    KafkaCluster::shared()
}

/// Three brokers: a created topic's replication factor can differ from the default of 1.
fn target() -> &'static KafkaCluster {
    static TARGET: OnceLock<KafkaCluster> = OnceLock::new();
    TARGET.get_or_init(|| {
        KafkaCluster::start(&ClusterOptions {
            brokers: 3,
            ..ClusterOptions::default()
        })
    })
}

/// A `mode: migrate` document of mirror `name` from `source` to `target`, copying `topic` to `mirror.<topic>`
/// and creating that with `replication_factor` and the topic configs `create_config`; written to `dir`.
fn migrate_document(
    dir: &Path,
    name: &str,
    topic: &str,
    replication_factor: i32,
    create_config: &[(&str, &str)],
) -> PathBuf {
    MirrorDocument::new(
        name,
        Connection::new(&source().plaintext),
        Connection::new(&target().plaintext),
    )
    .include(topic)
    .rename("mirror.{topic}")
    .create(replication_factor, create_config)
    .mode(Mode::Migrate)
    .num_streams(2)
    .write_in(dir)
}

/// Asserts the worker completed the migration by itself with exit 0, and returns its summary row for `topic`:
/// `(target topic, records)`.
fn assert_migrated(run: &Finished, topic: &str) -> (String, u64) {
    run.assert_migration_complete(topic);
    let row = run
        .stdout
        .lines()
        .find(|l| l.split_whitespace().next() == Some(topic))
        .unwrap_or_else(|| panic!("no summary row for {topic}:\n{}", run.stdout));
    let columns: Vec<&str> = row.split_whitespace().collect();
    (
        columns[1].to_string(),
        columns[2]
            .parse()
            .unwrap_or_else(|_| panic!("no record count in {row:?}")),
    )
}

/// Replicas of each partition of `topic` on `cluster`.
fn replicas(cluster: &KafkaCluster, topic: &str) -> Vec<usize> {
    let consumer: BaseConsumer = cluster.client().create().unwrap();
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .unwrap();
    metadata
        .topics()
        .iter()
        .filter(|t| t.name() == topic)
        .flat_map(|t| t.partitions().iter().map(|p| p.replicas().len()))
        .collect()
}

#[test]
fn migrate_creates_the_target_topic_as_the_document_says_and_copies_everything() {
    let (source, target) = (source(), target());
    source.create_topic("testtopic", 4, 1, &[]);
    let seeded = samples::produce_with(&source.client(), "testtopic", 0, 2000, 50, 200).unwrap();
    assert_eq!(
        target.partitions("mirror.testtopic"),
        0,
        "the target starts without the topic"
    );
    let dir = tempfile::tempdir().unwrap();
    let document = migrate_document(
        dir.path(),
        "migration",
        "testtopic",
        2,
        &[
            ("retention.ms", "86400000"),
            ("max.message.bytes", "2097152"),
            ("min.insync.replicas", "2"),
        ],
    );
    let started = Instant::now();
    let run = Worker::spawn(&document, dir.path(), &[]).finish(MIGRATION_TIMEOUT);
    eprintln!(
        "migration: exited with {} after {:.1} s",
        run.status,
        started.elapsed().as_secs_f64()
    );
    let (target_topic, records) = assert_migrated(&run, "testtopic");
    assert_eq!(
        (target_topic.as_str(), records),
        ("mirror.testtopic", 2000),
        "{}",
        run.stdout
    );

    assert_eq!(
        target.partitions("mirror.testtopic"),
        4,
        "created with the source's partition count"
    );
    assert_eq!(
        replicas(target, "mirror.testtopic"),
        [2, 2, 2, 2],
        "created with spec.topics.create.replicationFactor"
    );
    let config = target.topic_config("mirror.testtopic");
    for (key, value) in [
        ("retention.ms", "86400000"),
        ("max.message.bytes", "2097152"),
        ("min.insync.replicas", "2"),
    ] {
        assert_eq!(
            config.get(key).map(String::as_str),
            Some(value),
            "{key} from spec.topics.create.config, as DescribeConfigs reports it"
        );
    }
    let copy = samples::read_all(
        &target.internal,
        "mirror.testtopic",
        2000,
        Duration::from_secs(60),
    )
    .unwrap();
    let v = samples::verify(&seeded, &copy);
    eprintln!("migration: {v}");
    assert!(v.is_intact(), "{v}");
    assert_eq!(v.duplicated, 0, "{v}");
}

/// High watermark of each partition of `topic`.
fn high_watermarks(cluster: &KafkaCluster, topic: &str, partitions: i32) -> Vec<i64> {
    Watermarks::new(&cluster.client(), topic, partitions)
        .high()
        .unwrap()
}

/// The offsets group `group` committed on `topic`'s partitions; fails the test where it committed nothing.
fn committed(cluster: &KafkaCluster, group: &str, topic: &str, partitions: i32) -> Vec<i64> {
    let committed = GroupOffsets::new(&cluster.client(), group, topic, partitions)
        .committed()
        .unwrap();
    (0..partitions)
        .zip(committed)
        .map(|(p, offset)| {
            offset.unwrap_or_else(|| panic!("{group} committed nothing on {topic}[{p}]"))
        })
        .collect()
}

/// The `records=N` the worker logs when it fixes the high watermarks a migration copies up to.
fn logged_migration_records(log: &str) -> Option<i64> {
    let line = log
        .lines()
        .find(|l| l.contains("migration: copying up to the high watermarks seen now"))?;
    line.split_whitespace()
        .find_map(|word| word.strip_prefix("records="))
        .and_then(|n| n.parse().ok())
}

/// Records of `partition`, in offset order.
fn partition_records(records: &[ReadRecord], partition: i32) -> Vec<&ReadRecord> {
    let mut of_partition: Vec<&ReadRecord> = records
        .iter()
        .filter(|r| r.partition == partition)
        .collect();
    of_partition.sort_by_key(|r| r.offset);
    of_partition
}

/// Whether `copy` keeps what a copy must keep of `original`: key, value, timestamp, headers (not where it was).
fn same_content(copy: &ReadRecord, original: &ReadRecord) -> bool {
    copy.key == original.key
        && copy.value == original.value
        && copy.timestamp == original.timestamp
        && copy.headers == original.headers
}

/// `mode: migrate` while a producer keeps writing to the source: the worker fixes the high watermarks when it
/// starts, copies exactly the records below them (per partition: the source's first records, in order,
/// intact, none after), and exits 0 by itself although the source keeps growing.
#[test]
fn migrate_while_a_producer_keeps_writing_copies_exactly_the_records_below_the_start_watermarks() {
    const PARTITIONS: i32 = 3;
    let (source, target) = (source(), target());
    source.create_topic("busy", PARTITIONS, 1, &[]);
    samples::produce_with(&source.client(), "busy", 0, 3000, 30, 100).unwrap();

    let group = kafka_mirror_clients::plan::default_group_id(None, "busy-migration");
    let dir = tempfile::tempdir().unwrap();
    let document = migrate_document(dir.path(), "busy-migration", "busy", 1, &[]);
    // The producer runs before the worker starts, and keeps running until after the worker exited; dropped by
    // a failed assertion, it stops too.
    let producer = BackgroundProducer::start(
        source.client(),
        "busy",
        Feed {
            from: 3000,
            ..Feed::until_stopped(200, Duration::ZERO, 30, 100)
        },
    );
    while source.records("busy") < 3400 {
        std::thread::sleep(Duration::from_millis(50));
    }
    let before = high_watermarks(source, "busy", PARTITIONS);
    let started = Instant::now();
    let mut worker = Worker::spawn(&document, dir.path(), &[]);
    let deadline = Instant::now() + Duration::from_secs(60);
    while logged_migration_records(&worker.stderr()).is_none() {
        assert!(
            worker.is_running() && Instant::now() < deadline,
            "the worker did not log its migration's end offsets within 60 s (or exited):\n{}",
            worker.stderr()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let after = high_watermarks(source, "busy", PARTITIONS);
    let run = worker.finish(MIGRATION_TIMEOUT);
    let elapsed = started.elapsed();
    let grown = source.records("busy");
    while source.records("busy") < grown + 200 {
        std::thread::sleep(Duration::from_millis(50));
    }
    producer.stop();
    eprintln!(
        "busy: exited with {} after {:.1} s",
        run.status,
        elapsed.as_secs_f64()
    );
    let (_, summary_records) = assert_migrated(&run, "busy");
    let logged = logged_migration_records(&run.stderr).expect("the logged end offsets");

    let ends = committed(source, &group, "busy", PARTITIONS);
    let total_at_end = source.records("busy");
    let copy = samples::read_all(
        &target.internal,
        "mirror.busy",
        logged as usize,
        Duration::from_secs(60),
    )
    .unwrap();
    let original = samples::read_all(
        &source.internal,
        "busy",
        total_at_end as usize,
        Duration::from_secs(60),
    )
    .unwrap();
    eprintln!(
        "busy: high watermarks {before:?} before the worker started, {after:?} once it fixed its end offsets \
         ({logged} records), committed {ends:?}; {} records copied, {} on the source at the end ({} written \
         after the end offsets)",
        copy.len(),
        total_at_end,
        total_at_end - logged
    );
    assert_eq!(
        ends.iter().sum::<i64>(),
        logged,
        "the group committed exactly up to the end offsets"
    );
    assert_eq!(summary_records, logged as u64, "{}", run.stdout);
    assert!(
        total_at_end > after.iter().sum::<i64>(),
        "the producer kept writing while the worker ran"
    );
    for p in 0..PARTITIONS {
        let i = p as usize;
        assert!(
            before[i] <= ends[i] && ends[i] <= after[i],
            "partition {p}: the end offset {} is the high watermark at start, between {} and {}",
            ends[i],
            before[i],
            after[i]
        );
        let copied = partition_records(&copy, p);
        let source_records = partition_records(&original, p);
        assert_eq!(
            copied.len() as i64,
            ends[i],
            "partition {p}: exactly the records below the end offset arrived, none after"
        );
        for (n, (c, s)) in copied.iter().zip(&source_records).enumerate() {
            assert!(
                same_content(c, s),
                "partition {p}: copied record {n} is source record {n} (key, value, timestamp, headers):\n{c:?}\n{s:?}"
            );
        }
    }
}

#[test]
fn a_paused_document_is_refused_naming_spec_paused_and_copies_nothing() {
    let (source, target) = (source(), target());
    source.create_topic("paused-orders", 2, 1, &[]);
    samples::produce_with(&source.client(), "paused-orders", 0, 100, 10, 32).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let document = MirrorDocument::new(
        "paused",
        Connection::new(&source.plaintext),
        Connection::new(&target.plaintext),
    )
    .include("paused-orders")
    .paused(true)
    .write_in(dir.path());
    let run = Launch::worker_defaults(&document)
        .spawn()
        .finish(Duration::from_secs(60));
    assert_eq!(run.exit_code(), Some(2), "{}", run.stderr);
    let last = run.last_line();
    assert!(
        last.contains("spec.paused: true: a paused mirror copies nothing"),
        "{}",
        run.stderr
    );
    assert_eq!(
        target.partitions("paused-orders"),
        0,
        "the paused mirror created the target topic"
    );
}

/// `spec.template` holds pod settings, which a process started by hand cannot apply: refused naming the field,
/// before any connection (the clusters here are closed ports).
#[test]
fn a_document_with_pod_settings_is_refused_naming_spec_template() {
    let dir = tempfile::tempdir().unwrap();
    let document = MirrorDocument::new(
        "templated",
        Connection::new("127.0.0.1:1"),
        Connection::new("127.0.0.1:2"),
    )
    .include("orders")
    .template(serde_json::json!({"image": "registry.example/mirror-worker:dev"}))
    .write_in(dir.path());
    let run = Launch::worker_defaults(&document)
        .spawn()
        .finish(Duration::from_secs(60));
    assert_eq!(run.exit_code(), Some(2), "{}", run.stderr);
    let last = run.last_line();
    assert!(
        last.starts_with(
            "mirror-worker: error: spec.template: pod settings (image, resources, scheduling)"
        ),
        "{}",
        run.stderr
    );
}

#[test]
fn a_bad_document_exits_2_naming_the_field_before_touching_any_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let document = MirrorDocument::new(
        "bad",
        Connection::new("127.0.0.1:1"),
        Connection::new("127.0.0.1:2"),
    )
    .include("orders[")
    .write_in(dir.path());
    let run = Launch::worker_defaults(&document)
        .spawn()
        .finish(Duration::from_secs(60));
    assert_eq!(run.exit_code(), Some(2));
    let stderr = run.stderr;
    let last = stderr
        .lines()
        .rfind(|l| !l.trim().is_empty())
        .unwrap_or_default();
    assert!(
        last.contains("spec.topics.include[0]: invalid regular expression \"orders[\""),
        "{stderr}"
    );
}
