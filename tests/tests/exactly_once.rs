//! `delivery: exactlyOnce` on Apache Kafka: the worker writes the target in transactions that hold the source
//! positions too (the compacted `kafka-mirror.transactions.<groupId>` topic on the target), one transactional
//! producer per transaction group of source partitions. The judge is a `read_committed` consumer of the target: every source record
//! exactly once, per-key order kept, whatever the worker went through. A `read_uncommitted` consumer of the
//! same topic sees the copies of aborted transactions, so the test can tell exactly-once from luck: where the
//! faults left aborted copies behind, that reader counts them as duplicates.
//!
//! One source and one target cluster serve the file; each test has its own topic and mirror name (so its own
//! group, transactions topic and transactional ids).

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use kafka_mirror_crds::Delivery;
use kafka_mirror_samples::{self as samples, Isolation, ReadRecord, SampleRecord, Verification};
use kafka_mirror_tests::document::{Connection, MirrorDocument};
use kafka_mirror_tests::http::{assigned_partitions_at, http_get, metric};
use kafka_mirror_tests::kafka::KEEP_FOREVER;
use kafka_mirror_tests::kill_points::{SplitMix64, kill_seed};
use kafka_mirror_tests::positions::{Progress, Watermarks};
use kafka_mirror_tests::producer::{BackgroundProducer, Feed};
use kafka_mirror_tests::{ClusterOptions, KafkaCluster, Launch, Worker, client_config};

/// The source and target cluster the tests of this file share.
fn clusters() -> &'static (KafkaCluster, KafkaCluster) {
    static CLUSTERS: OnceLock<(KafkaCluster, KafkaCluster)> = OnceLock::new();
    CLUSTERS.get_or_init(|| {
        std::thread::scope(|s| {
            let source = s.spawn(|| {
                KafkaCluster::start_for_process("eos-source", &ClusterOptions::default())
            });
            let target = KafkaCluster::start_for_process("eos-target", &ClusterOptions::default());
            (source.join().expect("starting the source cluster"), target)
        })
    })
}

/// `topic` with `partitions` partitions on both clusters; their bootstrap addresses.
fn topic_on_both(topic: &str, partitions: i32) -> (&'static str, &'static str) {
    let (source, target) = clusters();
    source.create_topic(topic, partitions, 1, KEEP_FOREVER);
    target.create_topic(topic, partitions, 1, KEEP_FOREVER);
    (source.plaintext.as_str(), target.plaintext.as_str())
}

/// Short sessions, as in `faults.rs`: a killed or frozen member is noticed after 6 s (the broker's minimum)
/// instead of 45 s.
const SESSION: &[(&str, &str)] = &[
    ("session.timeout.ms", "6000"),
    ("heartbeat.interval.ms", "2000"),
];

/// The target read back by a `read_committed` consumer (the judge: every record once, in per-key order) and
/// by a `read_uncommitted` one (which also sees aborted transactions' records). Returns both verifications.
fn judge(
    what: &str,
    target: &str,
    topic: &str,
    seeded: &[SampleRecord],
) -> (Verification, Verification) {
    let config = client_config(target, &[]);
    let committed: Vec<ReadRecord> = samples::read_all_isolated(
        &config,
        topic,
        seeded.len(),
        Duration::from_secs(120),
        Isolation::ReadCommitted,
    )
    .unwrap();
    let exact =
        kafka_mirror_tests::verify_copy(&format!("{what}, read_committed"), seeded, &committed);
    assert_eq!(
        exact.duplicated, 0,
        "{what}: a read_committed consumer of the target saw duplicates: {exact}"
    );
    assert_eq!(exact.arrived, seeded.len(), "{what}: {exact}");
    let everything: Vec<ReadRecord> = samples::read_all_isolated(
        &config,
        topic,
        seeded.len(),
        Duration::from_secs(120),
        Isolation::ReadUncommitted,
    )
    .unwrap();
    let all = samples::verify(seeded, &everything);
    eprintln!("{what}, read_uncommitted (aborted transactions' copies included): {all}");
    assert_eq!(all.lost, 0, "{what}, read_uncommitted: {all}");
    (exact, all)
}

/// The positions the worker trusts: the latest committed record of each source partition of `topic` in the
/// target's `kafka-mirror.transactions.<group>` topic (every partition: one per transaction group), read
/// `read_committed` (`None` where there is none).
fn positions_on_target(
    target: &str,
    group: &str,
    topic: &str,
    partitions: i32,
) -> Vec<Option<i64>> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::message::Message;
    use rdkafka::{Offset, TopicPartitionList};
    let positions_topic = format!("kafka-mirror.transactions.{group}");
    let consumer: BaseConsumer = client_config(target, &[])
        .set("group.id", "kafka-mirror-testkit-positions")
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .create()
        .unwrap();
    let metadata = consumer
        .fetch_metadata(Some(&positions_topic), Duration::from_secs(10))
        .unwrap();
    let groups = metadata.topics()[0].partitions().len() as i32;
    assert!(groups > 0, "{positions_topic} has no partitions");
    let mut latest = vec![None; partitions as usize];
    for group in 0..groups {
        let (_, high) = consumer
            .fetch_watermarks(&positions_topic, group, Duration::from_secs(10))
            .unwrap();
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&positions_topic, group, Offset::Beginning)
            .unwrap();
        consumer.assign(&tpl).unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let at = consumer
                .position()
                .unwrap()
                .find_partition(&positions_topic, group)
                .map(|e| e.offset());
            if high == 0 || matches!(at, Some(Offset::Offset(o)) if o >= high) {
                break;
            }
            if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
                let key = String::from_utf8_lossy(m.key().unwrap_or_default()).into_owned();
                if let Some((t, p)) = key.rsplit_once(':')
                    && t == topic
                {
                    let offset = String::from_utf8_lossy(m.payload().unwrap_or_default())
                        .parse()
                        .unwrap();
                    latest[p.parse::<usize>().unwrap()] = Some(offset);
                }
            }
            assert!(
                Instant::now() < deadline,
                "reading {positions_topic}[{group}] up to {high}"
            );
        }
    }
    latest
}

/// The errors a worker counted of `kind` (`kafka_mirror_errors_total{kind=...}`), 0 when it counted none.
fn errors_of(http: std::net::SocketAddr, kind: &str) -> f64 {
    http_get(http, "/metrics")
        .ok()
        .and_then(|(_, body)| {
            metric(
                &body,
                &format!("kafka_mirror_errors_total{{kind=\"{kind}\"}}"),
            )
        })
        .unwrap_or(0.0)
}

#[test]
fn sigkill_ten_times_during_200_000_records_and_a_read_committed_consumer_sees_each_record_once() {
    const TOPIC: &str = "eos-sigkill";
    const NAME: &str = "eos-sigkill";
    const PARTITIONS: i32 = 8;
    const KILLS: usize = 10;
    const RECORDS: u64 = 200_000;
    /// After a run owns every partition and the producer passed the run's kill position, the kill comes after a
    /// further random delay below this: from inside the first transaction to several commit intervals later.
    const KILL_DELAY_MS: u64 = 2500;
    let (s, t) = topic_on_both(TOPIC, PARTITIONS);
    let dir = tempfile::tempdir().unwrap();
    let mirror = MirrorDocument::new(
        NAME,
        Connection::new(s).configs(SESSION),
        Connection::new(t),
    )
    .include(TOPIC)
    .delivery(Delivery::ExactlyOnce)
    .num_streams(2);
    let document = mirror.write_in(dir.path());
    let progress = Progress::new(s, t, &mirror.group_id(), TOPIC, PARTITIONS);
    let seed = kill_seed();
    eprintln!("SIGKILL points from seed {seed} (KMIRROR_FAULTS_SEED={seed} repeats them)");
    let mut random = SplitMix64(seed);
    let mut positions: Vec<u64> = (0..KILLS).map(|_| random.below(RECORDS)).collect();
    positions.sort_unstable();
    let delays: Vec<u64> = (0..KILLS).map(|_| random.below(KILL_DELAY_MS)).collect();
    eprintln!("kill positions (records produced) {positions:?}, then delays (ms) {delays:?}");

    let producer = BackgroundProducer::start(
        client_config(s, &[]),
        TOPIC,
        Feed::batches(RECORDS / 1000, 1000, Duration::from_millis(200), 1000, 64),
    );
    let started = Instant::now();
    for round in 0..KILLS {
        let mut worker = Worker::spawn(&document, dir.path(), &[]);
        let http = worker.http;
        worker.wait_for(
            &format!("run {round} to own all {PARTITIONS} partitions"),
            Duration::from_secs(90),
            || assigned_partitions_at(http) == i64::from(PARTITIONS),
        );
        while producer.produced() < positions[round] && !producer.is_finished() {
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(delays[round]));
        let killed = worker.kill_hard();
        std::thread::sleep(Duration::from_millis(300));
        eprintln!(
            "kill {round} at {:.1} s: {} produced, {} on the target (committed transactions' records, aborted ones \
             and markers), {} committed on the source",
            started.elapsed().as_secs_f64(),
            producer.produced(),
            progress.on_target_total(),
            progress.committed_total(),
        );
        assert!(
            !killed.stderr.contains("stopped on a fatal error"),
            "run {round} stopped on its own:\n{}",
            killed.output()
        );
    }
    let seeded = producer.join();
    assert_eq!(seeded.len() as u64, RECORDS);

    let mut last = Worker::spawn(&document, dir.path(), &[]);
    let http = last.http;
    last.wait_for(
        "the last run to own every partition",
        Duration::from_secs(90),
        || assigned_partitions_at(http) == i64::from(PARTITIONS),
    );
    // The source group is committed after each transaction: its lag is the mirror's true lag.
    last.wait_for(
        "the last run to commit all 200,000 records on the source",
        Duration::from_secs(240),
        || progress.committed_total() >= RECORDS as i64,
    );
    let finished = last.stop();
    assert_eq!(finished.status.code(), Some(0), "{}", finished.output());

    // The positions on the target (what the worker trusts), the source group's commits (what the operator's lag
    // reads) and the source's end agree.
    let on_target = positions_on_target(t, &mirror.group_id(), TOPIC, PARTITIONS);
    let committed = progress.committed();
    let source_end = Watermarks::new(&client_config(s, &[]), TOPIC, PARTITIONS)
        .high()
        .unwrap();
    eprintln!(
        "positions on the target {on_target:?}, source group committed {committed:?}, source end {source_end:?}"
    );
    assert_eq!(
        on_target,
        source_end.iter().map(|&e| Some(e)).collect::<Vec<_>>(),
        "every partition's position on the target is the source's end"
    );
    assert_eq!(
        committed, source_end,
        "the source group is committed to the same positions"
    );
    let (exact, all) = judge("10 × SIGKILL during 200,000 records", t, TOPIC, &seeded);
    eprintln!(
        "10 × SIGKILL: read_committed saw {} records, {} duplicated; read_uncommitted saw {} records, {} of them \
         copies from aborted transactions; {} records on the target in all (with transaction markers)",
        exact.arrived,
        exact.duplicated,
        all.arrived,
        all.duplicated,
        progress.on_target_total()
    );
    assert!(
        all.duplicated > 0,
        "ten kills mid-stream left no aborted copy on the target: the read_uncommitted reader cannot tell the \
         transactions apart, so this run proves nothing ({all})"
    );
}

#[test]
fn a_frozen_worker_taken_over_is_fenced_when_it_resumes_and_the_target_still_holds_each_record_once()
 {
    const TOPIC: &str = "eos-sigstop";
    const NAME: &str = "eos-sigstop";
    const PARTITIONS: i32 = 8;
    let (s, t) = topic_on_both(TOPIC, PARTITIONS);
    let dir = tempfile::tempdir().unwrap();
    let mirror = MirrorDocument::new(
        NAME,
        Connection::new(s).configs(SESSION),
        Connection::new(t),
    )
    .include(TOPIC)
    .delivery(Delivery::ExactlyOnce);
    let document = mirror.write_in(dir.path());
    let progress = Progress::new(s, t, &mirror.group_id(), TOPIC, PARTITIONS);
    // Records flow without pauses until the end, so the frozen worker has an open transaction with records in
    // it when it is stopped.
    let producer = BackgroundProducer::start(
        client_config(s, &[]),
        TOPIC,
        Feed::until_stopped(500, Duration::from_millis(50), 1000, 64),
    );
    // The frozen worker commits its transactions every 30 s, not every 0.5 s: a SIGSTOP that lands while a
    // commit is on its way lets that commit finish, and a worker resumed with empty transactions tries
    // nothing that could be fenced (which happened on a loaded machine, where commits take longer). Its
    // first commit comes well after the freeze, so it is frozen with records in every open transaction.
    let mut frozen = Launch::new(&document)
        .secrets_dir(dir.path())
        .commit_interval("30")
        .spawn();
    let frozen_http = frozen.http;
    frozen.wait_for(
        "the first worker to own every partition",
        Duration::from_secs(90),
        || assigned_partitions_at(frozen_http) == i64::from(PARTITIONS),
    );
    let mut other = Worker::spawn(&document, dir.path(), &[]);
    let other_http = other.http;
    other.wait_for(
        "the two workers to share the partitions",
        Duration::from_secs(90),
        || {
            let (a, b) = (
                assigned_partitions_at(frozen_http),
                assigned_partitions_at(other_http),
            );
            a > 0 && b > 0 && a + b == i64::from(PARTITIONS)
        },
    );
    std::thread::sleep(Duration::from_millis(1200));
    frozen.signal("STOP");
    let stopped_at = Instant::now();
    other.wait_for(
        "the other worker to take every partition over from the frozen one",
        Duration::from_secs(60),
        || assigned_partitions_at(other_http) == i64::from(PARTITIONS),
    );
    eprintln!(
        "the other worker owned every partition {:.1} s after the SIGSTOP",
        stopped_at.elapsed().as_secs_f64()
    );
    std::thread::sleep(Duration::from_secs(2));
    frozen.signal("CONT");
    // The resumed worker learns it lost its partitions; whatever it still tries to commit is fenced.
    frozen.wait_for(
        "the resumed worker to be fenced",
        Duration::from_secs(60),
        || errors_of(frozen_http, "producer_fenced") > 0.0,
    );
    std::thread::sleep(Duration::from_secs(3));
    let seeded = producer.stop();
    other.wait_for(
        "the workers to commit every record on the source",
        Duration::from_secs(180),
        || progress.committed_total() >= seeded.len() as i64,
    );
    let fenced = errors_of(frozen_http, "producer_fenced");
    let resumed = frozen.stop();
    assert_eq!(resumed.status.code(), Some(0), "{}", resumed.output());
    let finished = other.stop();
    assert_eq!(finished.status.code(), Some(0), "{}", finished.output());
    assert!(
        resumed
            .stderr
            .contains("fenced: another worker took this transaction group over"),
        "{}",
        resumed.output()
    );
    let (exact, all) = judge("SIGSTOP, takeover, SIGCONT", t, TOPIC, &seeded);
    eprintln!(
        "SIGSTOP/SIGCONT: {} records; read_committed {} duplicated; read_uncommitted {} copies from aborted \
         transactions; the resumed worker's producers were fenced {fenced} times",
        seeded.len(),
        exact.duplicated,
        all.duplicated
    );
    assert!(
        all.duplicated > 0,
        "the frozen worker's open transaction left no aborted copy: the read_uncommitted reader cannot tell \
         this run from luck ({all})"
    );
}

#[test]
fn scaling_one_worker_to_four_and_back_to_one_mid_stream_keeps_each_record_once() {
    const TOPIC: &str = "eos-scale";
    const NAME: &str = "eos-scale";
    const PARTITIONS: i32 = 8;
    let (s, t) = topic_on_both(TOPIC, PARTITIONS);
    let dir = tempfile::tempdir().unwrap();
    // Sessions at librdkafka's defaults: workers leave the group on purpose here.
    let mirror = MirrorDocument::new(NAME, Connection::new(s), Connection::new(t))
        .include(TOPIC)
        .delivery(Delivery::ExactlyOnce);
    let document = mirror.write_in(dir.path());
    let progress = Progress::new(s, t, &mirror.group_id(), TOPIC, PARTITIONS);
    let producer = BackgroundProducer::start(
        client_config(s, &[]),
        TOPIC,
        Feed::batches(80, 1000, Duration::from_millis(400), 1000, 64),
    );
    let mut first = Worker::spawn(&document, dir.path(), &[]);
    let http = first.http;
    first.wait_for(
        "one worker to own all 8 partitions",
        Duration::from_secs(90),
        || assigned_partitions_at(http) == i64::from(PARTITIONS),
    );
    let more: Vec<Worker> = (0..3)
        .map(|_| Worker::spawn(&document, dir.path(), &[]))
        .collect();
    let shares = |first: &Worker, more: &[Worker]| -> Vec<i64> {
        std::iter::once(first)
            .chain(more)
            .map(Worker::assigned_partitions)
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut four = shares(&first, &more);
    while !(four.iter().sum::<i64>() == i64::from(PARTITIONS) && four.iter().all(|&n| n > 0)) {
        assert!(
            Instant::now() < deadline,
            "the four workers never shared the partitions: {four:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
        four = shares(&first, &more);
    }
    eprintln!("assigned per worker with four: {four:?}");
    for worker in &more {
        worker.signal("TERM");
    }
    for worker in more {
        let stopped = worker.finish(Duration::from_secs(60));
        assert!(
            stopped.exited_by_itself && stopped.status.code() == Some(0),
            "{}",
            stopped.output()
        );
    }
    first.wait_for(
        "the first worker to own all 8 again",
        Duration::from_secs(90),
        || assigned_partitions_at(http) == i64::from(PARTITIONS),
    );
    let seeded = producer.join();
    first.wait_for(
        "the mirror to commit every record",
        Duration::from_secs(180),
        || progress.committed_total() >= seeded.len() as i64,
    );
    let stopped = first.stop();
    assert_eq!(stopped.status.code(), Some(0), "{}", stopped.output());
    let (exact, all) = judge("scaled 1 → 4 → 1 mid-stream", t, TOPIC, &seeded);
    eprintln!(
        "1 → 4 → 1: {} records; read_committed {} duplicated; read_uncommitted {} copies from aborted transactions",
        seeded.len(),
        exact.duplicated,
        all.duplicated
    );
}

#[test]
fn the_target_unreachable_for_30_seconds_keeps_each_record_once() {
    target_outage("eos-outage", &[], Duration::from_secs(30));
}

/// With `message.timeout.ms` 5 s the records in flight when the target goes away fail to deliver: each
/// partition's open transaction aborts and the partition is read again from its last committed position.
#[test]
fn deliveries_that_fail_mid_transaction_abort_it_and_the_target_still_holds_each_record_once() {
    target_outage(
        "eos-failed-delivery",
        &[("message.timeout.ms", "5000")],
        Duration::from_secs(15),
    );
}

/// The target's only broker killed for `outage` while records flow to an exactly-once mirror with
/// `target_config` in `spec.target.config`; then every record once, read `read_committed`.
fn target_outage(name: &str, target_config: &[(&str, &str)], outage: Duration) {
    const PARTITIONS: i32 = 4;
    let topic = name;
    let (source, _) = clusters();
    // Its own target: this test kills the target's only broker.
    let target = KafkaCluster::start(&ClusterOptions::default());
    source.create_topic(topic, PARTITIONS, 1, KEEP_FOREVER);
    target.create_topic(topic, PARTITIONS, 1, KEEP_FOREVER);
    let (s, t) = (source.plaintext.as_str(), target.plaintext.as_str());
    let dir = tempfile::tempdir().unwrap();
    let mirror = MirrorDocument::new(
        name,
        Connection::new(s),
        Connection::new(t).configs(target_config),
    )
    .include(topic)
    .delivery(Delivery::ExactlyOnce);
    let document = mirror.write_in(dir.path());
    let progress = Progress::new(s, t, &mirror.group_id(), topic, PARTITIONS);
    let producer = BackgroundProducer::start(
        client_config(s, &[]),
        topic,
        Feed::batches(60, 1000, Duration::from_millis(600), 1000, 64),
    );
    let mut worker = Worker::spawn(&document, dir.path(), &[]);
    worker.wait_for("records to flow", Duration::from_secs(60), || {
        progress.on_target_total() >= 3000
    });
    target.kill_broker(1);
    let down_at = Instant::now();
    std::thread::sleep(Duration::from_secs(5));
    let committed_while_down = progress.committed();
    while down_at.elapsed() < outage {
        assert!(
            worker.is_running(),
            "the worker stays alive while the target is down"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(
        progress.committed(),
        committed_while_down,
        "no source offset moves while no transaction can commit"
    );
    target.start_broker(1);
    let seeded = producer.join();
    worker.wait_for(
        "the worker to commit every record after the outage",
        Duration::from_secs(180),
        || progress.committed_total() >= seeded.len() as i64,
    );
    let finished = worker.stop();
    assert_eq!(finished.status.code(), Some(0), "{}", finished.output());
    let (exact, all) = judge(
        &format!("target down for {outage:?}, {target_config:?}"),
        t,
        topic,
        &seeded,
    );
    eprintln!(
        "{name}: {} records; read_committed {} duplicated; read_uncommitted {} copies from aborted transactions",
        seeded.len(),
        exact.duplicated,
        all.duplicated
    );
    if !target_config.is_empty() {
        assert!(
            finished
                .output()
                .contains("transaction aborted; re-reading the partition"),
            "{name}: failed deliveries abort their transactions, and the worker says so:\n{}",
            finished.output()
        );
    }
}

/// A mirror switched from `atLeastOnce` to `exactlyOnce` under the same name (so the same group): the
/// exactly-once worker waits while the at-least-once one is a member of the source group (it would write the
/// same partitions), then starts where that one's last commit left each partition. The target ends with every
/// record once: the at-least-once worker's copies, then the exactly-once worker's.
#[test]
fn switching_from_at_least_once_waits_for_the_old_worker_then_continues_from_its_commits() {
    const TOPIC: &str = "eos-switch";
    const NAME: &str = "eos-switch";
    const PARTITIONS: i32 = 4;
    let (s, t) = topic_on_both(TOPIC, PARTITIONS);
    let (old_dir, new_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let at_least_once = MirrorDocument::new(NAME, Connection::new(s), Connection::new(t))
        .include(TOPIC)
        .delivery(Delivery::AtLeastOnce);
    let exactly_once = at_least_once.clone().delivery(Delivery::ExactlyOnce);
    let progress = Progress::new(s, t, &at_least_once.group_id(), TOPIC, PARTITIONS);
    let mut seeded = samples::produce(s, TOPIC, 0, 2000, 100, 64).unwrap();
    let mut old = Worker::spawn(&at_least_once.write_in(old_dir.path()), old_dir.path(), &[]);
    let mut new = Worker::spawn(&exactly_once.write_in(new_dir.path()), new_dir.path(), &[]);
    let new_http = new.http;
    old.wait_for(
        "the exactly-once worker to say it waits for the old one",
        Duration::from_secs(60),
        || {
            new.stderr()
                .contains("waits until the source group has no members")
        },
    );
    seeded.extend(samples::produce(s, TOPIC, 2000, 4000, 100, 64).unwrap());
    old.wait_for(
        "the at-least-once worker to commit the first 4,000 records",
        Duration::from_secs(90),
        || progress.committed_total() >= 4000,
    );
    assert_eq!(
        assigned_partitions_at(new_http),
        0,
        "the exactly-once worker took partitions while the at-least-once worker was a member"
    );
    let stopped = old.stop();
    assert_eq!(stopped.status.code(), Some(0), "{}", stopped.output());
    new.wait_for(
        "the exactly-once worker to own every partition once the old one left",
        Duration::from_secs(60),
        || assigned_partitions_at(new_http) == i64::from(PARTITIONS),
    );
    seeded.extend(samples::produce(s, TOPIC, 4000, 6000, 100, 64).unwrap());
    new.wait_for(
        "the exactly-once worker to commit every record",
        Duration::from_secs(90),
        || progress.committed_total() >= 6000,
    );
    let finished = new.stop();
    assert_eq!(finished.status.code(), Some(0), "{}", finished.output());
    let (exact, _) = judge("switched from atLeastOnce", t, TOPIC, &seeded);
    eprintln!("switch: {} records, read_committed {exact}", seeded.len());
}

/// An exactly-once mirror of an earlier version (a transactional producer per source partition, positions in
/// `kafka-mirror.offsets.<group>`): the new worker starts each partition from that position, and fences the old
/// per-partition producers first, so one of them still running (here with an open transaction holding a
/// duplicate copy and a later position) can commit nothing more and its copy never becomes visible.
#[test]
fn an_earlier_versions_positions_are_continued_and_its_producers_fenced() {
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
    const TOPIC: &str = "eos-legacy";
    const NAME: &str = "eos-legacy";
    const PARTITIONS: i32 = 4;
    let (s, t) = topic_on_both(TOPIC, PARTITIONS);
    let dir = tempfile::tempdir().unwrap();
    let mirror = MirrorDocument::new(NAME, Connection::new(s), Connection::new(t))
        .include(TOPIC)
        .delivery(Delivery::ExactlyOnce);
    let group = mirror.group_id();
    // What the earlier version copied: the first 2,000 records, on the target as on the source (same keys, so
    // the same partitions), and its positions after them.
    let mut seeded = samples::produce(s, TOPIC, 0, 2000, 100, 64).unwrap();
    samples::produce(t, TOPIC, 0, 2000, 100, 64).unwrap();
    let ends = Watermarks::new(&client_config(s, &[]), TOPIC, PARTITIONS);
    let legacy_topic = format!("kafka-mirror.offsets.{group}");
    clusters().1.create_topic(&legacy_topic, 1, 1, KEEP_FOREVER);
    let legacy_producer = |partition: i32| -> BaseProducer {
        let producer: BaseProducer = client_config(t, &[])
            .set(
                "transactional.id",
                format!("kafka-mirror:{group}:{TOPIC}:{partition}"),
            )
            .create()
            .unwrap();
        producer.init_transactions(Duration::from_secs(30)).unwrap();
        producer.begin_transaction().unwrap();
        producer
    };
    let highs = ends.high().unwrap();
    for partition in 0..PARTITIONS {
        let producer = legacy_producer(partition);
        let key = format!("{TOPIC}:{partition}");
        let value = highs[partition as usize].to_string();
        producer
            .send(
                BaseRecord::<str, str>::to(&legacy_topic)
                    .partition(0)
                    .key(&key)
                    .payload(&value),
            )
            .unwrap();
        producer
            .commit_transaction(Duration::from_secs(30))
            .unwrap();
    }
    // A producer of the earlier version still running: an open transaction with a record of its own in the
    // target topic and a position past what it copied.
    let zombie = legacy_producer(0);
    zombie
        .send(
            BaseRecord::<str, str>::to(TOPIC)
                .partition(0)
                .key("zombie")
                .payload("never seeded"),
        )
        .unwrap();
    let key = format!("{TOPIC}:0");
    let ahead = (highs[0] + 100).to_string();
    zombie
        .send(
            BaseRecord::<str, str>::to(&legacy_topic)
                .partition(0)
                .key(&key)
                .payload(&ahead),
        )
        .unwrap();
    zombie.flush(Duration::from_secs(10)).unwrap();
    seeded.extend(samples::produce(s, TOPIC, 2000, 4000, 100, 64).unwrap());
    let progress = Progress::new(s, t, &group, TOPIC, PARTITIONS);
    let mut worker = Worker::spawn(&mirror.write_in(dir.path()), dir.path(), &[]);
    worker.wait_for(
        "the worker to commit every record",
        Duration::from_secs(120),
        || progress.committed_total() >= 4000,
    );
    assert!(
        zombie.commit_transaction(Duration::from_secs(30)).is_err(),
        "the earlier version's producer committed after the new worker started: it was not fenced"
    );
    let finished = worker.stop();
    assert_eq!(finished.status.code(), Some(0), "{}", finished.output());
    assert!(
        finished
            .stderr
            .contains("fenced the per-partition producers of an earlier version"),
        "{}",
        finished.output()
    );
    // read_committed: every record once, and not the zombie's (`judge` asserts nothing unknown arrived).
    let (exact, all) = judge("continued from an earlier version", t, TOPIC, &seeded);
    assert_eq!(
        all.unknown, 1,
        "the read_uncommitted reader should see the fenced producer's aborted record: {all}"
    );
    eprintln!(
        "earlier version: {} records, read_committed {exact}",
        seeded.len()
    );
}
