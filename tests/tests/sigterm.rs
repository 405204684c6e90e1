//! The worker as a process between two Apache Kafka clusters, stopped the way Kubernetes stops a pod: SIGTERM
//! mid-stream drains the records in flight, commits exactly what reached the target and exits 0; a restart
//! continues from there with nothing lost and nothing written twice. Also what a pod's probes and Prometheus
//! see on the HTTP endpoint while it runs.
//!
//! The group keeps librdkafka's default session settings (45 s session, 3 s heartbeats), what a production
//! mirror runs with: every member here leaves the group on purpose, so nothing waits for a session to expire.

use std::sync::OnceLock;
use std::time::Duration;

use kafka_mirror_crds::worker_pod;
use kafka_mirror_samples as samples;
use kafka_mirror_tests::document::{Connection, MirrorDocument};
use kafka_mirror_tests::http::assigned_partitions_at;
use kafka_mirror_tests::kafka::KEEP_FOREVER;
use kafka_mirror_tests::positions::Progress;
use kafka_mirror_tests::producer::{BackgroundProducer, Feed};
use kafka_mirror_tests::{ClusterOptions, KafkaCluster, Launch, Worker, client_config};

/// The source and the target cluster every test of this file shares (each test its own topic and mirror).
fn clusters() -> &'static (KafkaCluster, KafkaCluster) {
    static CLUSTERS: OnceLock<(KafkaCluster, KafkaCluster)> = OnceLock::new();
    CLUSTERS.get_or_init(|| {
        std::thread::scope(|s| {
            let source = s.spawn(|| KafkaCluster::start(&ClusterOptions::default()));
            let target = KafkaCluster::start(&ClusterOptions::default());
            (source.join().expect("starting the source cluster"), target)
        })
    })
}

#[test]
fn sigterm_mid_stream_drains_commits_and_a_restart_continues_without_loss_or_duplicates() {
    const TOPIC: &str = "sigterm-orders";
    const PARTITIONS: i32 = 4;
    const NAME: &str = "sigterm";
    let started = std::time::Instant::now();
    let (source, target) = clusters();
    source.create_topic(TOPIC, PARTITIONS, 1, KEEP_FOREVER);
    target.create_topic(TOPIC, PARTITIONS, 1, KEEP_FOREVER);
    let (s, t) = (source.plaintext.as_str(), target.plaintext.as_str());
    let dir = tempfile::tempdir().unwrap();
    // Statistics every 500 ms, so the partition lag shows in /metrics within the test's wait (default 5 s).
    let mirror = MirrorDocument::new(
        NAME,
        Connection::new(s).config("statistics.interval.ms", "500"),
        Connection::new(t),
    )
    .include(TOPIC)
    .num_streams(2);
    let document = mirror.write_in(dir.path());
    let progress = Progress::new(s, t, &mirror.group_id(), TOPIC, PARTITIONS);

    // 20,000 records spread over about 7 s, so the signal lands while records still flow.
    let producer = BackgroundProducer::start(
        client_config(s, &[]),
        TOPIC,
        Feed::batches(20, 1000, Duration::from_millis(300), 300, 64),
    );
    let mut worker = Worker::spawn(&document, dir.path(), &[]);
    worker.wait_for(
        "3000 records on the target",
        Duration::from_secs(60),
        || progress.on_target_total() >= 3000,
    );

    // What the pod's probes and Prometheus see while it runs (lag comes from the consumer's statistics). The
    // second stream may join the group after the first started mirroring: wait for that rebalance to end.
    let http = worker.http;
    worker.wait_for(
        "all 4 partitions assigned in /metrics",
        Duration::from_secs(30),
        || assigned_partitions_at(http) == i64::from(PARTITIONS),
    );
    worker.wait_for(
        "the lag of partition 0 in /metrics",
        Duration::from_secs(10),
        || {
            kafka_mirror_tests::http_get(http, "/metrics").is_ok_and(|(_, m)| {
                m.contains(&format!(
                    "kafka_mirror_partition_lag{{topic=\"{TOPIC}\",partition=\"0\"}}"
                ))
            })
        },
    );
    assert_eq!(
        kafka_mirror_tests::http_get(http, "/healthz").unwrap().0,
        200
    );
    assert_eq!(
        kafka_mirror_tests::http_get(http, "/readyz").unwrap().0,
        200
    );
    let (status, metrics) = kafka_mirror_tests::http_get(http, "/metrics").unwrap();
    assert_eq!(status, 200);
    for series in [
        format!("kafka_mirror_records_mirrored_total{{topic=\"{TOPIC}\"}}"),
        "kafka_mirror_assigned_partitions 4".to_string(),
        "kafka_mirror_commit_latency_seconds_count".to_string(),
    ] {
        assert!(metrics.contains(&series), "{series} missing in:\n{metrics}");
    }
    assert!(
        !producer.is_finished(),
        "the signal must come mid-stream; production already ended"
    );

    let stopped = worker.stop();
    assert_eq!(
        stopped.status.code(),
        Some(0),
        "exit after SIGTERM:\n{}",
        stopped.output()
    );
    assert!(
        stopped.stderr.contains("SIGTERM received"),
        "{}",
        stopped.stderr
    );
    let on_target = progress.on_target();
    let committed = progress.committed();
    assert!(committed.iter().sum::<i64>() > 0, "{committed:?}");
    assert_eq!(
        committed, on_target,
        "after draining, the committed position of every partition covers exactly the records on the target"
    );

    let seeded = producer.join();
    let stopped_at: i64 = on_target.iter().sum();
    assert!(
        stopped_at < seeded.len() as i64,
        "the signal came mid-stream"
    );
    let mut restarted = Worker::spawn(&document, dir.path(), &[]);
    restarted.wait_for(
        "the restarted worker to commit every record",
        Duration::from_secs(90),
        || progress.committed_total() >= seeded.len() as i64,
    );
    let finished = restarted.stop();
    assert_eq!(finished.status.code(), Some(0), "{}", finished.output());

    let copy = samples::read_all(t, TOPIC, seeded.len(), Duration::from_secs(60)).unwrap();
    let v = samples::verify(&seeded, &copy);
    eprintln!(
        "SIGTERM mid-stream after {stopped_at} of {} records (committed per partition {committed:?}), then a \
         restart: {v}; {:.1} s",
        seeded.len(),
        started.elapsed().as_secs_f64()
    );
    // On a failure, what each run of the worker said about its partitions: where each started and stopped.
    let lifecycle = |run: &kafka_mirror_tests::Finished| {
        run.stderr
            .lines()
            .filter(|l| {
                ["WARN", "partitions ", "committed before leaving"]
                    .iter()
                    .any(|s| l.contains(s))
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert!(
        v.is_intact() && v.duplicated == 0,
        "a clean stop commits exactly what was written: {v}\n--- the stopped worker ---\n{}\n--- the restarted \
         worker ---\n{}",
        lifecycle(&stopped),
        lifecycle(&finished)
    );
}

/// A worker whose source and target went away still stops. After SIGTERM the drain times out, and closing the
/// consumers then waits for a group coordinator that never answers, which librdkafka retries without end (a
/// worker in this state once waited an hour): the worker exits by itself within its drain timeout and its stop
/// margin, with 1 and a line that says why, before a kubelet would have to kill it.
#[test]
fn sigterm_after_the_clusters_went_away_still_stops_within_the_drain_timeout_and_stop_margin() {
    let (source, target) = std::thread::scope(|s| {
        let source = s.spawn(|| KafkaCluster::start(&ClusterOptions::default()));
        let target = KafkaCluster::start(&ClusterOptions::default());
        (source.join().expect("starting the source cluster"), target)
    });
    source.create_topic("gone-orders", 4, 1, KEEP_FOREVER);
    let dir = tempfile::tempdir().unwrap();
    let document = MirrorDocument::new(
        "gone",
        Connection::new(&source.internal),
        Connection::new(&target.internal),
    )
    .include("gone-orders")
    .create(1, &[])
    .write_in(dir.path());
    let drain = Duration::from_secs(3);
    let mut worker = Launch::new(&document).drain_timeout(drain).spawn();
    let http = worker.http;
    worker.wait_for("every partition assigned", Duration::from_secs(60), || {
        assigned_partitions_at(http) == 4
    });
    // Records in flight when the target dies, then the source gone too: nothing can be delivered, committed
    // or closed cleanly any more.
    let producer = BackgroundProducer::start(
        source.client(),
        "gone-orders",
        Feed::until_stopped(200, Duration::from_millis(20), 50, 100),
    );
    std::thread::sleep(Duration::from_secs(2));
    target.kill_broker(1);
    std::thread::sleep(Duration::from_secs(1));
    producer.stop();
    source.kill_broker(1);
    std::thread::sleep(Duration::from_secs(1));

    let signalled = std::time::Instant::now();
    worker.signal("TERM");
    let limit = drain + Duration::from_secs(worker_pod::STOP_MARGIN_SECONDS);
    let status = loop {
        if let Some(status) = worker.exit_status() {
            break status;
        }
        assert!(
            signalled.elapsed() < limit + Duration::from_secs(5),
            "still running {:?} after SIGTERM:\n{}",
            signalled.elapsed(),
            worker.stderr()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let took = signalled.elapsed();
    let stderr = worker.stderr();
    let last = stderr
        .lines()
        .rfind(|l| !l.trim().is_empty())
        .unwrap_or_default();
    eprintln!("the worker exited with {status} {took:?} after SIGTERM: {last}");
    // Either closing finished by itself (0), or the stop deadline ended it (1, saying why); never a hang.
    match status.code() {
        Some(0) => {}
        Some(1) => assert!(
            last.starts_with("mirror-worker: error: the stop did not finish within"),
            "{stderr}"
        ),
        other => panic!("exit {other:?}, not 0 or 1:\n{stderr}"),
    }
    assert!(
        took <= limit + Duration::from_secs(2),
        "took {took:?}, more than the drain timeout and the stop margin ({limit:?})"
    );
}
