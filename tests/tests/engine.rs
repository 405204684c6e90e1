//! The engine's data-path claims on Apache Kafka: the `mirror-worker` binary between real KRaft clusters,
//! every record counted on both sides by key and sequence number (`kafka_mirror_samples::verify`), and the
//! counts printed. One single-broker source and one single-broker target serve every test that can share
//! them (distinct topics and mirror names per test); the broker-failover test starts its own 3-broker pair.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use kafka_mirror_samples::{self as samples, ReadRecord, SampleRecord};
use kafka_mirror_tests::document::{Connection, MirrorDocument};
use kafka_mirror_tests::kafka::{kafka_java, stdout_of};
use kafka_mirror_tests::positions::GroupOffsets;
use kafka_mirror_tests::producer::{BackgroundProducer, Feed};
use kafka_mirror_tests::{ClusterOptions, KafkaCluster, Worker, verify_copy};

const MINUTE: Duration = Duration::from_secs(60);

/// A source and a target cluster.
struct Clusters {
    source: KafkaCluster,
    target: KafkaCluster,
}

impl Clusters {
    /// Starts both side by side (each is a JVM start or three).
    fn start(name: &str, options: &ClusterOptions) -> Clusters {
        std::thread::scope(|scope| {
            let source =
                scope.spawn(|| KafkaCluster::start_for_process(&format!("{name}-source"), options));
            let target =
                scope.spawn(|| KafkaCluster::start_for_process(&format!("{name}-target"), options));
            Clusters {
                source: source.join().expect("starting the source cluster"),
                target: target.join().expect("starting the target cluster"),
            }
        })
    }
}

/// The single-broker pair shared by every test of this file but the failover one.
fn single_broker_pair() -> &'static Clusters {
    static PAIR: OnceLock<Clusters> = OnceLock::new();
    PAIR.get_or_init(|| {
        let started = Instant::now();
        let pair = Clusters::start("engine", &ClusterOptions::default());
        eprintln!(
            "the single-broker source and target started in {:.1} s (counted in the first tests' times)",
            started.elapsed().as_secs_f64()
        );
        pair
    })
}

/// A mirror named `name` from `source` to `target`, its topics still to be set. Group sessions expire after
/// 6 s (Kafka's minimum), so the group notices a member gone within seconds.
fn document(name: &str, source: &KafkaCluster, target: &KafkaCluster) -> MirrorDocument {
    MirrorDocument::new(
        name,
        Connection::new(&source.plaintext)
            .config("session.timeout.ms", 6000)
            .config("heartbeat.interval.ms", 500),
        Connection::new(&target.plaintext),
    )
}

/// A `KafkaMirror` document in a directory of its own (which also serves as the empty Secrets directory).
struct Mirror {
    dir: tempfile::TempDir,
    document: PathBuf,
    /// The mirror's consumer group on the source (the default for a mirror without a namespace).
    group: String,
}

impl Mirror {
    fn write(document: MirrorDocument) -> Mirror {
        let dir = tempfile::tempdir().expect("a directory for the document");
        Mirror {
            document: document.write_in(dir.path()),
            group: document.group_id(),
            dir,
        }
    }

    fn spawn(&self) -> Worker {
        Worker::spawn(&self.document, self.dir.path(), &[])
    }
}

/// The group's committed offsets on `source`, summed over `partitions` partitions of `topic` (0 where it never
/// committed, and 0 when the read fails).
fn committed(source: &KafkaCluster, group: &str, topic: &str, partitions: i32) -> i64 {
    GroupOffsets::new(&source.client(), group, topic, partitions)
        .committed_total()
        .unwrap_or(0)
}

/// Everything on `topic` of `cluster`, read from the beginning (at least `expected` records, unless it times
/// out).
fn read_back(cluster: &KafkaCluster, topic: &str, expected: usize) -> Vec<ReadRecord> {
    samples::read_all(&cluster.internal, topic, expected, Duration::from_secs(120))
        .expect("reading the target back")
}

/// Times a test and prints its wall-clock time when it ends (passing or failing).
struct Timed(&'static str, Instant);

impl Timed {
    fn start(name: &'static str) -> Timed {
        Timed(name, Instant::now())
    }
}

impl Drop for Timed {
    fn drop(&mut self) {
        eprintln!(
            "{}: {:.1} s wall-clock",
            self.0,
            self.1.elapsed().as_secs_f64()
        );
    }
}

/// Where the Java producer puts each of `keys` among `partitions` partitions, computed by Kafka's own code:
/// `Utils.toPositive(Utils.murmur2(key)) % partitions` (what `BuiltInPartitioner.partitionForKey` does) from
/// the kafka-clients jar of the Kafka the tests run, in a one-file Java program.
fn java_placement(keys: &[String], partitions: i32) -> std::collections::HashMap<Vec<u8>, i32> {
    let dir = tempfile::tempdir().unwrap();
    let program = dir.path().join("Placement.java");
    std::fs::write(
        &program,
        "import org.apache.kafka.common.utils.Utils;\n\
         public class Placement {\n  public static void main(String[] args) {\n    \
         int partitions = Integer.parseInt(args[0]);\n    \
         for (int i = 1; i < args.length; i++) {\n      \
         byte[] key = args[i].getBytes(java.nio.charset.StandardCharsets.UTF_8);\n      \
         System.out.println(args[i] + \" \" + Utils.toPositive(Utils.murmur2(key)) % partitions);\n    }\n  }\n}\n",
    )
    .unwrap();
    stdout_of(
        kafka_java()
            .arg(&program)
            .arg(partitions.to_string())
            .args(keys),
        "the Java placement program",
    )
    .lines()
    .map(|line| {
        let (key, partition) = line.split_once(' ').expect("key and partition");
        (
            key.as_bytes().to_vec(),
            partition.parse().expect("a partition"),
        )
    })
    .collect()
}

#[test]
fn six_source_partitions_into_four_keep_every_record_intact_in_java_placement() {
    let _timed = Timed::start("6 → 4 partitions");
    let Clusters { source, target } = single_broker_pair();
    let (topic, copy_topic, keys) = ("engine.order", "mirror.engine.order", 37);
    source.create_topic(topic, 6, 1, &[]);
    target.create_topic(copy_topic, 4, 1, &[]);
    let seeded = samples::produce_with(&source.client(), topic, 0, 3000, keys, 64).unwrap();
    let mirror = Mirror::write(
        document("order", source, target)
            .include(topic)
            .rename("mirror.{topic}")
            .num_streams(2),
    );

    let mut worker = mirror.spawn();
    worker.wait_for("all 3000 records committed", MINUTE, || {
        committed(source, &mirror.group, topic, 6) == 3000
    });
    let run = worker.stop();
    assert_eq!(run.status.code(), Some(0), "{}", run.output());
    let row: Vec<&str> = run
        .stdout
        .lines()
        .find(|l| l.starts_with(topic))
        .unwrap_or_else(|| panic!("no summary row for {topic}:\n{}", run.output()))
        .split_whitespace()
        .collect();
    assert_eq!(row[..3], [topic, copy_topic, "3000"], "the summary row");

    let copy = read_back(target, copy_topic, 3000);
    let v = verify_copy("6 → 4 partitions", &seeded, &copy);
    assert_eq!(v.duplicated, 0, "a clean run writes each record once: {v}");
    let key_names: Vec<String> = (0..keys).map(|k| samples::sample(k, keys, 0).key).collect();
    let placement = java_placement(&key_names, 4);
    assert_eq!(placement.len(), keys as usize);
    let used: std::collections::BTreeSet<_> = placement.values().collect();
    assert_eq!(
        used.len(),
        4,
        "37 keys spread over all 4 partitions: {placement:?}"
    );
    let misplaced: Vec<_> = copy
        .iter()
        .filter(|r| placement.get(r.key.as_ref().unwrap()) != Some(&r.partition))
        .collect();
    // The engine's own murmur2 says the same (it is checked against Kafka's test vectors in unit tests).
    let by_engine = copy
        .iter()
        .filter(|r| {
            r.partition
                != mirror_worker::partitioner::target_partition(
                    kafka_mirror_crds::Partitioning::Key,
                    r.key.as_deref(),
                    -1,
                    4,
                )
        })
        .count();
    eprintln!(
        "6 → 4 partitions: {} of {} records outside the Java client's partition for their key ({by_engine} by \
         the engine's partitioner)",
        misplaced.len(),
        copy.len()
    );
    assert!(
        misplaced.is_empty(),
        "records outside the Java client's partition: {:?}",
        &misplaced[..misplaced.len().min(5)]
    );
    assert_eq!(by_engine, 0);
}

#[test]
fn source_and_target_partition_leaders_killed_and_restarted_mid_stream_lose_nothing() {
    let _timed = Timed::start("leader failover");
    let started = Instant::now();
    let clusters = Clusters::start(
        "engine-failover",
        &ClusterOptions {
            brokers: 3,
            ..ClusterOptions::default()
        },
    );
    eprintln!(
        "leader failover: two 3-broker clusters started in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let Clusters { source, target } = &clusters;
    let (topic, partitions) = ("engine.failover", 6);
    for cluster in [source, target] {
        cluster.create_topic(topic, partitions, 3, &[("min.insync.replicas", "2")]);
    }
    let mirror = Mirror::write(
        document("failover", source, target)
            .include(topic)
            .num_streams(2),
    );
    let mut worker = mirror.spawn();
    let mut producer = source.client();
    producer
        .set("acks", "all")
        .set("enable.idempotence", "true");
    let feed = BackgroundProducer::start(
        producer,
        topic,
        Feed::until_stopped(500, Duration::from_millis(100), 200, 64),
    );

    let on_target = |worker: &mut Worker, what: &str, more: i64| {
        let from = target.records(topic);
        worker.wait_for(what, Duration::from_secs(90), || {
            target.records(topic) >= from + more
        });
    };
    on_target(&mut worker, "mirroring under way", 2000);
    for (side, cluster) in [("source", source), ("target", target)] {
        let leader = cluster
            .leader(topic, 0)
            .unwrap_or_else(|| panic!("{side} partition 0 has a leader"));
        cluster.kill_broker(leader as u8);
        let killed = Instant::now();
        on_target(
            &mut worker,
            &format!("mirroring with {side} broker {leader} (leader of {topic}[0]) down"),
            2000,
        );
        eprintln!(
            "leader failover: {side} broker {leader} killed; 2000 more records mirrored {:.1} s later",
            killed.elapsed().as_secs_f64()
        );
        cluster.start_broker(leader as u8);
        on_target(
            &mut worker,
            &format!("mirroring after {side} broker {leader} restarted"),
            2000,
        );
    }
    let seeded = feed.stop();
    let total = seeded.len() as i64;
    worker.wait_for(
        "every produced record committed",
        Duration::from_secs(120),
        || committed(source, &mirror.group, topic, partitions) >= total,
    );
    let run = worker.stop();
    assert_eq!(run.status.code(), Some(0), "{}", run.output());

    let copy = read_back(target, topic, seeded.len());
    let v = verify_copy(
        "source and target leaders killed and restarted",
        &seeded,
        &copy,
    );
    assert_eq!(v.lost, 0);
}

#[test]
fn records_deleted_past_the_committed_position_stop_the_worker_at_the_gap() {
    let _timed = Timed::start("records deleted under the mirror");
    let Clusters { source, target } = single_broker_pair();
    let topic = "engine.truncated";
    source.create_topic(topic, 1, 1, &[]);
    target.create_topic(topic, 1, 1, &[]);
    let mirror = Mirror::write(document("truncated", source, target).include(topic));
    samples::produce_with(&source.client(), topic, 0, 2000, 100, 100).unwrap();
    let mut first = mirror.spawn();
    first.wait_for("the first 2000 records committed", MINUTE, || {
        committed(source, &mirror.group, topic, 1) == 2000
    });
    let run = first.stop();
    assert_eq!(run.status.code(), Some(0), "{}", run.output());

    // While the mirror is stopped, more records arrive and DeleteRecords removes everything below 3000, so
    // offsets 2000..2999 are gone before anyone copied them.
    samples::produce_with(&source.client(), topic, 2000, 4000, 100, 100).unwrap();
    source.delete_records(topic, 0, 3000);

    let run = mirror.spawn().finish(MINUTE);
    let output = run.output();
    assert_eq!(run.exit_code(), Some(1), "{output}");
    assert!(
        output.contains("source partition engine.truncated[0] no longer holds offset 2000"),
        "the exit message names the partition and the offset:\n{output}"
    );
    // librdkafka learns where the partition now starts only from a fetch, and this run's first fetch failed:
    // the message names the first missing offset, not the end of the gap (a worker running while retention
    // deletes records gets the whole range, "offsets A..B (N records)").
    assert!(
        output.contains("offset 2000 and possibly later ones were deleted"),
        "and what is gone:\n{output}"
    );
    assert!(
        output.contains("--reset-offsets"),
        "and says how to accept the loss:\n{output}"
    );
    let committed_after = committed(source, &mirror.group, topic, 1);
    let on_target = target.records(topic);
    eprintln!(
        "records deleted under the mirror: committed offset {committed_after}, {on_target} records on the target"
    );
    assert_eq!(
        committed_after, 2000,
        "the committed offset stays where the copy really ended"
    );
    assert_eq!(
        on_target, 2000,
        "nothing after the gap was written to the target"
    );
}

#[test]
fn a_record_larger_than_the_target_topic_accepts_stops_the_worker_with_everything_before_it_committed()
 {
    let _timed = Timed::start("oversized record");
    let Clusters { source, target } = single_broker_pair();
    let topic = "engine.oversized";
    source.create_topic(topic, 1, 1, &[]);
    // Only the target topic knows its limit; the worker's producer is not told (its message.max.bytes stays
    // at librdkafka's 1,000,000), so the broker is the one to refuse.
    target.create_topic(topic, 1, 1, &[("max.message.bytes", "20000")]);
    let client = source.client();
    let mut seeded = samples::produce_with(&client, topic, 0, 500, 10, 100).unwrap();
    seeded.extend(samples::produce_with(&client, topic, 500, 501, 10, 50_000).unwrap());
    seeded.extend(samples::produce_with(&client, topic, 501, 1000, 10, 100).unwrap());
    let mirror = Mirror::write(document("oversized", source, target).include(topic));

    let run = mirror.spawn().finish(MINUTE);
    let output = run.output();
    assert_eq!(run.exit_code(), Some(1), "{output}");
    assert!(
        output.contains("record engine.oversized[0]@500 is larger than the target accepts"),
        "the exit message names the record:\n{output}"
    );
    assert!(
        output.contains("the max.message.bytes of target topic engine.oversized is 20000")
            && output.contains("Raise max.message.bytes of the target topic"),
        "and the limit to raise:\n{output}"
    );
    let committed_after = committed(source, &mirror.group, topic, 1);
    let copy = read_back(target, topic, 500);
    eprintln!(
        "oversized record: committed offset {committed_after}, {} records on the target",
        copy.len()
    );
    assert_eq!(
        committed_after, 500,
        "every record before it is committed, none after"
    );
    let v = samples::verify(&seeded[..500], &copy);
    eprintln!("oversized record, the copy of records 0..500: {v}");
    assert!(
        v.is_intact() && v.duplicated == 0 && copy.len() == 500,
        "{v}"
    );
}

#[test]
fn a_matching_topic_created_while_the_mirror_runs_is_created_on_the_target_and_mirrored() {
    let _timed = Timed::start("new topic picked up");
    let Clusters { source, target } = single_broker_pair();
    let (first, late, unmatched) = ("engine.late.first", "engine.late.second", "engine.other");
    // Topics are read every REFRESH seconds; a rebalance of this one-process group takes a heartbeat
    // (0.5 s) plus a join and a sync round, bounded here by one session timeout (6 s): the time the group
    // coordinator gives a member to show up.
    const REFRESH: u32 = 2;
    let bound = Duration::from_secs(REFRESH as u64 + 6);
    source.create_topic(first, 1, 1, &[]);
    let mirror = Mirror::write(
        document("late", source, target)
            .include("engine\\.late\\..*")
            .refresh_interval_seconds(REFRESH as i32)
            .num_streams(2),
    );
    let first_records = samples::produce_with(&source.client(), first, 0, 200, 10, 32).unwrap();
    let mut worker = mirror.spawn();
    worker.wait_for("the first topic mirrored", MINUTE, || {
        target.records(first) >= 200
    });

    let created = Instant::now();
    let created_at = seconds_of_day(std::time::SystemTime::now());
    source.create_topic(late, 3, 1, &[]);
    source.create_topic(unmatched, 1, 1, &[]);
    let feed = BackgroundProducer::start(
        source.client(),
        late,
        Feed::until_stopped(50, Duration::from_millis(100), 10, 64),
    );
    worker.wait_for(
        "the first record of the new topic on the target",
        MINUTE,
        || target.records(late) > 0,
    );
    let pickup = created.elapsed();
    eprintln!(
        "new topic picked up: first record on the target {:.2} s after the topic was created (bound: \
         refreshIntervalSeconds {REFRESH} s + one rebalance, at most {} s)",
        pickup.as_secs_f64(),
        bound.as_secs()
    );
    worker.wait_for("500 records of the new topic produced", MINUTE, || {
        feed.produced() >= 500
    });
    let seeded = feed.stop();
    worker.wait_for("the new topic committed", MINUTE, || {
        committed(source, &mirror.group, late, 3) == seeded.len() as i64
    });
    let run = worker.stop();
    assert_eq!(run.status.code(), Some(0), "{}", run.output());
    // Where the time went, from the worker's log (seconds after the topic was created).
    let at = |what: &str| {
        logged_at(&run.stderr, what, late)
            .map_or("-".into(), |t| format!("{:.2} s", t - created_at))
    };
    eprintln!(
        "new topic picked up: target topic created {}, routes changed {}, its partitions assigned {}",
        at("created target topic"),
        at("topic routes changed"),
        at("partitions assigned"),
    );
    assert!(
        run.stdout.lines().any(|l| l.starts_with(late)),
        "the summary lists the new topic:\n{}",
        run.output()
    );

    assert_eq!(
        target.partitions(late),
        3,
        "created on the target with the source's partition count"
    );
    assert_eq!(
        target.partitions(unmatched),
        0,
        "{unmatched} does not match and is not created"
    );
    let v = verify_copy(
        "new topic picked up",
        &seeded,
        &read_back(target, late, seeded.len()),
    );
    assert_eq!(v.duplicated, 0, "{v}");
    verify_copy(
        "the first topic",
        &first_records,
        &read_back(target, first, 200),
    );
    assert!(
        pickup <= bound,
        "the first record arrived {pickup:?} after the topic was created, beyond {bound:?}"
    );
}

/// Produces one sample record as it is (its key, value, timestamp and headers) to `topic`.
fn produce_record(cluster: &KafkaCluster, topic: &str, record: &SampleRecord) {
    use rdkafka::message::{Header, OwnedHeaders};
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
    let producer: BaseProducer = cluster.client().create().expect("a producer");
    let headers = record
        .headers
        .iter()
        .fold(OwnedHeaders::new(), |h, (key, value)| {
            h.insert(Header {
                key,
                value: Some(value),
            })
        });
    producer
        .send(
            BaseRecord::to(topic)
                .key(&record.key)
                .payload(&record.value)
                .timestamp(record.timestamp)
                .headers(headers),
        )
        .map_err(|(e, _)| e)
        .expect("queueing the record");
    producer
        .flush(Duration::from_secs(30))
        .expect("producing the record");
}

/// `len` bytes that no codec shrinks (xorshift64): a record that stays too large after compression.
fn incompressible(len: usize) -> Vec<u8> {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

#[test]
fn with_compression_the_broker_judges_and_refuses_a_record_too_large_even_compressed_alone() {
    let _timed = Timed::start("oversized record, compressed");
    let Clusters { source, target } = single_broker_pair();
    let topic = "engine.refused";
    source.create_topic(topic, 1, 1, &[]);
    target.create_topic(topic, 1, 1, &[("max.message.bytes", "20000")]);
    let client = source.client();
    // 50 kB of x's compress to almost nothing: mirrored. 50 kB of noise do not: refused by the broker.
    let mut seeded = samples::produce_with(&client, topic, 0, 300, 10, 100).unwrap();
    seeded.extend(samples::produce_with(&client, topic, 300, 301, 10, 50_000).unwrap());
    seeded.extend(samples::produce_with(&client, topic, 301, 500, 10, 100).unwrap());
    let mut noise = samples::sample(500, 10, 0);
    noise.value = incompressible(50_000);
    produce_record(source, topic, &noise);
    seeded.push(noise);
    seeded.extend(samples::produce_with(&client, topic, 501, 1000, 10, 100).unwrap());
    let mirror = Mirror::write(
        document("refused", source, target)
            .include(topic)
            .target_config("compression.type", "lz4"),
    );

    let run = mirror.spawn().finish(MINUTE);
    let output = run.output();
    assert_eq!(run.exit_code(), Some(1), "{output}");
    assert!(
        output.contains("the target refused record engine.refused[0]@500 for topic engine.refused")
            && output.contains("larger than the target accepts"),
        "the exit message names the record the broker refused:\n{output}"
    );
    let committed_after = committed(source, &mirror.group, topic, 1);
    let copy = read_back(target, topic, 500);
    eprintln!(
        "oversized record, compressed: committed offset {committed_after}, {} records on the target",
        copy.len()
    );
    assert_eq!(
        committed_after, 500,
        "every record before it is committed (the compressible 50 kB one too), none after"
    );
    let v = samples::verify(&seeded[..500], &copy);
    eprintln!("oversized record, compressed, the copy of records 0..500: {v}");
    assert!(v.is_intact() && v.duplicated == 0, "{v}");
}

/// Seconds since midnight UTC of `time`, as the worker's log timestamps give them.
fn seconds_of_day(time: std::time::SystemTime) -> f64 {
    let since_epoch = time
        .duration_since(std::time::UNIX_EPOCH)
        .expect("a time after 1970")
        .as_secs_f64();
    since_epoch % 86_400.0
}

/// When the worker first logged a line with `what` and `topic` (seconds since midnight UTC): its log lines
/// start with an RFC 3339 UTC timestamp, possibly in terminal colours.
fn logged_at(log: &str, what: &str, topic: &str) -> Option<f64> {
    let line = log
        .lines()
        .find(|l| l.contains(what) && l.contains(topic))?;
    let stamp = line.split('T').nth(1)?.split('Z').next()?;
    let mut parts = stamp.split(':');
    let (h, m, s) = (parts.next()?, parts.next()?, parts.next()?);
    Some(h.parse::<f64>().ok()? * 3600.0 + m.parse::<f64>().ok()? * 60.0 + s.parse::<f64>().ok()?)
}

/// The cluster's id as Kafka reports it in metadata, read by a client of the test's own.
fn cluster_id(cluster: &KafkaCluster) -> String {
    use rdkafka::consumer::Consumer;
    let client: rdkafka::consumer::BaseConsumer = cluster.client().create().unwrap();
    client
        .fetch_metadata(None, Duration::from_secs(10))
        .expect("the cluster's metadata");
    client
        .client()
        .fetch_cluster_id(Duration::from_secs(10))
        .expect("a KRaft cluster has an id")
}

/// A record's header `name`, as text.
fn header<'r>(record: &'r ReadRecord, name: &str) -> Option<&'r str> {
    record
        .headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| std::str::from_utf8(v).expect("a text header"))
}

/// What one cluster's copy of the active-active topic holds: its own records (no origin header; checked
/// against what was produced to it) and the other cluster's (origin header `other_id`; checked, without that
/// header, against what was produced there). Every record once, keys in order, nothing else.
fn check_active_active(
    what: &str,
    records: Vec<ReadRecord>,
    own: &[SampleRecord],
    other: &[SampleRecord],
    other_id: &str,
) {
    let own_seqs = own.first().unwrap().seq..=own.last().unwrap().seq;
    let (mine, copies): (Vec<ReadRecord>, Vec<ReadRecord>) = records
        .into_iter()
        .partition(|r| own_seqs.contains(&header(r, "seq").unwrap().parse::<u64>().unwrap()));
    assert!(
        mine.iter()
            .all(|r| header(r, kafka_mirror_crds::ORIGIN_HEADER).is_none()),
        "{what}: a record written to this cluster got an origin header (it was mirrored back)"
    );
    let wrong_origin: Vec<Option<&str>> = copies
        .iter()
        .map(|r| header(r, kafka_mirror_crds::ORIGIN_HEADER))
        .filter(|origin| *origin != Some(other_id))
        .collect();
    assert!(
        wrong_origin.is_empty(),
        "{what}: {} copies without the other cluster's id {other_id} as their origin, e.g. {:?}",
        wrong_origin.len(),
        &wrong_origin[..wrong_origin.len().min(3)]
    );
    let unmarked: Vec<ReadRecord> = copies
        .into_iter()
        .map(|mut r| {
            r.headers
                .retain(|(k, _)| k != kafka_mirror_crds::ORIGIN_HEADER);
            r
        })
        .collect();
    let own_v = verify_copy(&format!("{what}: its own records"), own, &mine);
    let copy_v = verify_copy(&format!("{what}: the other cluster's"), other, &unmarked);
    assert_eq!(
        (own_v.duplicated, copy_v.duplicated),
        (0, 0),
        "{what}: a record twice"
    );
}

#[test]
fn two_mirrors_of_opposite_directions_with_mark_origin_copy_each_record_once_and_never_back() {
    let _timed = Timed::start("active-active");
    let Clusters {
        source: a,
        target: b,
    } = single_broker_pair();
    let topic = "engine.active-active";
    a.create_topic(topic, 3, 1, &[]);
    b.create_topic(topic, 3, 1, &[]);
    // Records 0..1000 on A and 1000..2000 on B (20 keys: per-key sequence numbers 0..49 on A, 50..99 on B), so
    // every record's `seq` header says which cluster it was written to.
    let on_a = samples::produce_with(&a.client(), topic, 0, 1000, 20, 64).unwrap();
    let on_b = samples::produce_with(&b.client(), topic, 1000, 2000, 20, 64).unwrap();
    // The same topic name both ways. A → B at least once, B → A exactly once: both ways of settling a record
    // that is not sent back (acknowledged at once; a position in the open transaction).
    let a_to_b = Mirror::write(document("aa-a-to-b", a, b).include(topic).mark_origin(true));
    let b_to_a = Mirror::write(
        document("aa-b-to-a", b, a)
            .include(topic)
            .mark_origin(true)
            .delivery(kafka_mirror_crds::Delivery::ExactlyOnce),
    );
    let mut forward = a_to_b.spawn();
    let mut back = b_to_a.spawn();
    // Each mirror reads 2,000 records in the end: its cluster's own 1,000 and the 1,000 the other mirror wrote.
    forward.wait_for(
        "A → B: all 2,000 records of A committed",
        2 * MINUTE,
        || committed(a, &a_to_b.group, topic, 3) == 2000,
    );
    back.wait_for(
        "B → A: all 2,000 records of B committed",
        2 * MINUTE,
        || committed(b, &b_to_a.group, topic, 3) == 2000,
    );
    // A loop would go on copying: give it a few commit intervals to show, then stop both.
    std::thread::sleep(Duration::from_secs(6));
    let not_sent_back = |worker: &Worker| {
        worker.metric(&format!(
            "kafka_mirror_records_from_target_total{{topic=\"{topic}\"}}"
        ))
    };
    let (forward_skipped, back_skipped) = (not_sent_back(&forward), not_sent_back(&back));
    for (what, worker) in [("A → B", forward), ("B → A", back)] {
        let run = worker.stop();
        assert_eq!(run.status.code(), Some(0), "{what}: {}", run.output());
    }
    assert_eq!(
        (
            committed(a, &a_to_b.group, topic, 3),
            committed(b, &b_to_a.group, topic, 3)
        ),
        (2000, 2000),
        "the mirrors read more than the 2,000 records of each side: a record went round"
    );
    assert_eq!(
        (forward_skipped, back_skipped),
        (Some(1000.0), Some(1000.0)),
        "each mirror read the other's 1,000 copies and sent none of them back"
    );
    let (id_a, id_b) = (cluster_id(a), cluster_id(b));
    assert_ne!(id_a, id_b);
    // read_committed, as consumers of an exactly-once target must read.
    let on_cluster_a = read_back(a, topic, 2000);
    let on_cluster_b = read_back(b, topic, 2000);
    eprintln!(
        "active-active: {} records on A, {} on B; 1,000 of each side's copies not mirrored back ({forward_skipped:?} \
         by A → B, {back_skipped:?} by B → A)",
        on_cluster_a.len(),
        on_cluster_b.len()
    );
    assert_eq!((on_cluster_a.len(), on_cluster_b.len()), (2000, 2000));
    check_active_active("cluster A", on_cluster_a, &on_a, &on_b, &id_b);
    check_active_active("cluster B", on_cluster_b, &on_b, &on_a, &id_a);
}

#[test]
fn target_topics_follow_their_source_topics_partitions_and_configs_and_keep_their_records_when_it_is_deleted()
 {
    let _timed = Timed::start("topics follow");
    let Clusters { source, target } = single_broker_pair();
    let (topic, other) = ("engine.follow", "engine.follow-other");
    // Retention of ten years, then twenty: the sample records carry timestamps of 2019, which a shorter
    // retention would delete on both clusters while the test runs.
    source.create_topic(
        topic,
        2,
        1,
        &[
            ("retention.ms", "315360000000"),
            ("max.message.bytes", "500000"),
        ],
    );
    source.create_topic(other, 1, 1, &[]);
    let first = samples::produce_with(&source.client(), topic, 0, 200, 10, 64).unwrap();
    let mirror = Mirror::write(
        document("follow", source, target)
            .include("engine\\.follow.*")
            .partitioning(kafka_mirror_crds::Partitioning::Preserve)
            .refresh_interval_seconds(4)
            .topics_sync(serde_json::json!({"intervalSeconds": 1}))
            // The consumer mostly sees new source partitions (its metadata every 200 ms, then a rebalance)
            // before the worker's next refresh adds them to the target: their records then wait for the target
            // partitions, and must be neither lost nor misplaced either way.
            .source_config("topic.metadata.refresh.interval.ms", 200),
    );
    let mut worker = mirror.spawn();
    worker.wait_for("the first 200 records committed", MINUTE, || {
        committed(source, &mirror.group, topic, 2) == 200
    });
    // Created with the source's partition count, and its configs copied.
    let follows = |key: &str| {
        let (s, t) = (source.topic_config(topic), target.topic_config(topic));
        (s.get(key).cloned(), t.get(key).cloned())
    };
    worker.wait_for(
        "the target topic's retention.ms and max.message.bytes copied",
        MINUTE,
        || {
            follows("retention.ms") == (Some("315360000000".into()), Some("315360000000".into()))
                && follows("max.message.bytes") == (Some("500000".into()), Some("500000".into()))
        },
    );

    // A config changed, and one no longer set on the source: the target takes the change and keeps the other
    // as it has it (it may have been set there on purpose).
    let changed = Instant::now();
    source.alter_topic_config(topic, &[("retention.ms", "630720000000")]);
    worker.wait_for(
        "the target topic's retention.ms following the change",
        MINUTE,
        || {
            target
                .topic_config(topic)
                .get("retention.ms")
                .map(String::as_str)
                == Some("630720000000")
        },
    );
    assert_ne!(
        source
            .topic_config(topic)
            .get("max.message.bytes")
            .map(String::as_str),
        Some("500000")
    );
    assert_eq!(
        target
            .topic_config(topic)
            .get("max.message.bytes")
            .map(String::as_str),
        Some("500000"),
        "a config the source topic no longer sets is left on the target"
    );
    eprintln!(
        "topics follow: a config change on the source reached the target in {:.1} s (intervalSeconds 1)",
        changed.elapsed().as_secs_f64()
    );

    // Two partitions added on the source: added on the target, and their records mirrored into the partitions
    // of the same number (`preserve`).
    let grown = Instant::now();
    source.add_partitions(topic, 4);
    let second = samples::produce_with(&source.client(), topic, 200, 600, 10, 64).unwrap();
    worker.wait_for("the target topic grown to 4 partitions", MINUTE, || {
        target.partitions(topic) == 4
    });
    worker.wait_for("all 600 records committed", MINUTE, || {
        committed(source, &mirror.group, topic, 4) == 600
    });
    eprintln!(
        "topics follow: 2 partitions added on the source were on the target and their records mirrored {:.1} s \
         later",
        grown.elapsed().as_secs_f64()
    );
    let highs = |cluster: &KafkaCluster| {
        kafka_mirror_tests::positions::Watermarks::new(&cluster.client(), topic, 4)
            .high()
            .unwrap()
    };
    let (source_highs, target_highs) = (highs(source), highs(target));
    assert!(
        source_highs[2] > 0 && source_highs[3] > 0,
        "the new partitions got records: {source_highs:?}"
    );
    assert_eq!(target_highs, source_highs, "partition by partition");
    let seeded: Vec<SampleRecord> = first.into_iter().chain(second).collect();
    let copy = read_back(target, topic, 600);
    let v = verify_copy("topics follow", &seeded, &copy);
    assert_eq!(v.duplicated, 0, "a clean run writes each record once: {v}");

    // The source topic deleted: the target keeps its copy (a replica outlives its primary's mistakes), and the
    // mirror goes on with its other topics.
    source.delete_topic(topic);
    let others = samples::produce_with(&source.client(), other, 0, 100, 10, 64).unwrap();
    worker.wait_for(
        "the other topic's 100 records committed after the delete",
        MINUTE,
        || committed(source, &mirror.group, other, 1) == 100,
    );
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        worker.is_running(),
        "the worker runs on after a source topic was deleted"
    );
    assert_eq!(target.partitions(topic), 4, "the target topic is kept");
    assert_eq!(target.records(topic), 600, "with every record");
    verify_copy("the other topic", &others, &read_back(target, other, 100));

    // Recreated under the same name: Kafka dropped the group's offsets of the deleted topic, so the new topic
    // is mirrored from its start into the kept target topic, after the old records. Recreated once the worker
    // dropped the deleted topic (its next refresh), as a person purging a topic would.
    let http = worker.http;
    worker.wait_for("the worker to drop the deleted topic", MINUTE, || {
        kafka_mirror_tests::http::metric_at(http, "kafka_mirror_mirrored_topics") == Some(1.0)
    });
    source.create_topic(topic, 4, 1, &[]);
    let recreated = samples::produce_with(&source.client(), topic, 600, 640, 10, 64).unwrap();
    worker.wait_for(
        "the recreated topic's 40 records on the target",
        MINUTE,
        || target.records(topic) == 640,
    );
    let copy = read_back(target, topic, 640);
    // Sequence numbers count per key (record n of 10 keys has seq n / 10): the new records start at 60.
    let first_new = recreated[0].seq;
    let (old, new): (Vec<ReadRecord>, Vec<ReadRecord>) = copy
        .into_iter()
        .partition(|r| header(r, "seq").unwrap().parse::<u64>().unwrap() < first_new);
    let seqs = |records: &[ReadRecord]| -> Vec<(i32, i64, String)> {
        records
            .iter()
            .map(|r| {
                (
                    r.partition,
                    r.offset,
                    header(r, "seq").unwrap_or("-").to_string(),
                )
            })
            .take(12)
            .collect()
    };
    assert_eq!(
        old.len(),
        600,
        "the old copy is kept whole; new: {} records, e.g. {:?}",
        new.len(),
        seqs(&new)
    );
    verify_copy("the recreated topic", &recreated, &new);
    let run = worker.stop();
    assert_eq!(run.status.code(), Some(0), "{}", run.output());
    eprintln!(
        "topics follow: source partitions paused until their target partition existed: {}",
        run.output()
            .matches("the target topic has no partition of this number yet")
            .count()
    );
}

#[test]
fn with_key_partitioning_a_target_topic_that_had_the_source_count_grows_with_it_and_one_made_smaller_keeps_its_count()
 {
    let _timed = Timed::start("key partitioning follows growth");
    let Clusters { source, target } = single_broker_pair();
    let (follows, smaller) = ("engine.grow-key", "engine.grow-key-smaller");
    source.create_topic(follows, 2, 1, &[]);
    source.create_topic(smaller, 2, 1, &[]);
    // Made smaller on purpose, before the mirror starts: it keeps its one partition.
    target.create_topic(smaller, 1, 1, &[]);
    let mirror = Mirror::write(
        document("grow-key", source, target)
            .include("engine\\.grow-key.*")
            .refresh_interval_seconds(1),
    );
    let mut worker = mirror.spawn();
    let mut seeded: Vec<Vec<SampleRecord>> = [follows, smaller]
        .iter()
        .map(|t| samples::produce_with(&source.client(), t, 0, 100, 10, 64).unwrap())
        .collect();
    worker.wait_for(
        "the first 100 records of each topic committed",
        MINUTE,
        || {
            committed(source, &mirror.group, follows, 2) == 100
                && committed(source, &mirror.group, smaller, 2) == 100
        },
    );
    assert_eq!(
        target.partitions(follows),
        2,
        "created with the source's count"
    );

    source.add_partitions(follows, 3);
    source.add_partitions(smaller, 3);
    worker.wait_for(
        "the following target topic grown to 3 partitions",
        MINUTE,
        || target.partitions(follows) == 3,
    );
    // The worker routes by the new count from the end of the refresh that grew the topic: records it copies
    // before that go by the old count (as they would during any refresh interval). Written after it here.
    std::thread::sleep(Duration::from_secs(3));
    for (topic, records) in [follows, smaller].iter().zip(seeded.iter_mut()) {
        records.extend(samples::produce_with(&source.client(), topic, 100, 300, 10, 64).unwrap());
    }
    worker.wait_for("all 300 records of each topic committed", MINUTE, || {
        committed(source, &mirror.group, follows, 3) == 300
            && committed(source, &mirror.group, smaller, 3) == 300
    });
    let run = worker.stop();
    assert_eq!(run.status.code(), Some(0), "{}", run.output());
    assert_eq!(
        target.partitions(smaller),
        1,
        "made smaller on purpose: kept"
    );

    // The records written after the growth sit where the Java producer puts their key among 3 partitions.
    let after: Vec<ReadRecord> = read_back(target, follows, 300)
        .into_iter()
        .filter(|r| header(r, "seq").unwrap().parse::<u64>().unwrap() >= 10)
        .collect();
    let placement = java_placement(
        &(0..10)
            .map(|k| samples::sample(k, 10, 0).key)
            .collect::<Vec<_>>(),
        3,
    );
    let misplaced = after
        .iter()
        .filter(|r| placement.get(r.key.as_ref().unwrap()) != Some(&r.partition))
        .count();
    eprintln!(
        "key partitioning follows growth: {} records written after the growth, {misplaced} outside the Java \
         client's partition among 3",
        after.len()
    );
    assert_eq!(after.len(), 200);
    assert_eq!(misplaced, 0);
    assert!(
        after.iter().any(|r| r.partition == 2),
        "the new partition is used"
    );
    // A key's records before the growth and after it sit in two partitions (on the source too), so its order
    // holds within each phase, which is what a reader of the target can rely on: checked phase by phase.
    for (topic, records) in [follows, smaller].iter().zip(&seeded) {
        let copy = read_back(target, topic, 300);
        let (before, after): (Vec<ReadRecord>, Vec<ReadRecord>) = copy
            .into_iter()
            .partition(|r| header(r, "seq").unwrap().parse::<u64>().unwrap() < 10);
        for (phase, expected, arrived) in [
            ("before the growth", &records[..100], before),
            ("after it", &records[100..], after),
        ] {
            let v = verify_copy(&format!("{topic}, {phase}"), expected, &arrived);
            assert_eq!(
                v.duplicated, 0,
                "{topic}: a clean run writes each record once: {v}"
            );
        }
    }
}
