//! The worker as a real process: SIGTERM mid-stream drains in-flight records, commits exactly what reached
//! the target and exits 0; a restart continues from there with nothing lost and nothing written twice.
//! Also checks what a pod's probes and Prometheus see on the HTTP endpoint.

mod common;

use std::time::Duration;

use common::process::{Worker, committed, http_get, target_records};
use common::*;
use mirror_worker::testkit;

const TOPIC: &str = "orders";
const PARTITIONS: i32 = 4;
const GROUP: &str = "kafka-mirror.sigterm";

#[test]
fn sigterm_mid_stream_drains_commits_and_a_restart_continues_without_loss_or_duplicates() {
    let (source, target) = (mock(1), mock(1));
    source.create_topic(TOPIC, PARTITIONS, 1).unwrap();
    target.create_topic(TOPIC, PARTITIONS, 1).unwrap();
    let (s, t) = (source.bootstrap_servers(), target.bootstrap_servers());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mirror.yaml");
    std::fs::write(
        &path,
        document("sigterm", &s, &t, TOPIC, "  numStreams: 2\n"),
    )
    .unwrap();

    let producer = {
        let s = s.clone();
        std::thread::spawn(move || {
            // Spread over about 6 s, so the signal lands while records still flow.
            (0..20)
                .flat_map(|i| {
                    std::thread::sleep(Duration::from_millis(300));
                    testkit::produce(&s, TOPIC, i * 1000, (i + 1) * 1000, 300, 64).unwrap()
                })
                .collect::<Vec<_>>()
        })
    };
    let (log1, log2) = (dir.path().join("first.log"), dir.path().join("second.log"));
    let mut worker = Worker::spawn(&path, log1, &[]);
    worker.wait_for(
        "3000 records on the target",
        Duration::from_secs(60),
        || target_records(&t, TOPIC, PARTITIONS) >= 3000,
    );

    // What the pod's probes and Prometheus would see while it runs (lag comes from consumer statistics). The
    // second stream may join the group after the first has started mirroring; wait for the rebalance to end.
    let port = worker.port;
    worker.wait_for(
        "all 4 partitions assigned in /metrics",
        Duration::from_secs(30),
        || {
            http_get(port, "/metrics")
                .1
                .contains("kafka_mirror_assigned_partitions 4")
        },
    );
    std::thread::sleep(Duration::from_millis(1200));
    assert_eq!(worker.http_get("/healthz").0, 200);
    assert_eq!(worker.http_get("/readyz").0, 200);
    let (status, metrics) = worker.http_get("/metrics");
    assert_eq!(status, 200);
    assert!(
        metrics.contains("kafka_mirror_records_mirrored_total{topic=\"orders\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("kafka_mirror_assigned_partitions 4"),
        "{metrics}"
    );
    assert!(
        metrics.contains("kafka_mirror_partition_lag{topic=\"orders\",partition=\"0\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("kafka_mirror_commit_latency_seconds_count"),
        "{metrics}"
    );

    worker.signal("TERM");
    let (code, stderr) = worker.wait_exit(Duration::from_secs(30));
    assert_eq!(code, Some(0), "exit after SIGTERM:\n{stderr}");
    assert!(stderr.contains("SIGTERM received"), "{stderr}");
    let on_target = target_records(&t, TOPIC, PARTITIONS);
    let committed_after_stop = committed(&s, GROUP, TOPIC, PARTITIONS);
    assert!(committed_after_stop > 0);
    assert_eq!(
        committed_after_stop, on_target,
        "after draining, the committed positions cover exactly the records on the target"
    );

    let seeded = producer.join().unwrap();
    assert!(
        on_target < seeded.len() as i64,
        "the signal came mid-stream"
    );
    let mut restarted = Worker::spawn(&path, log2, &[]);
    restarted.wait_for(
        "the restarted worker to catch up",
        Duration::from_secs(90),
        || committed(&s, GROUP, TOPIC, PARTITIONS) >= seeded.len() as i64,
    );
    restarted.signal("TERM");
    let (code, stderr) = restarted.wait_exit(Duration::from_secs(30));
    assert_eq!(code, Some(0), "{stderr}");

    let copy = testkit::read_all(&t, TOPIC, seeded.len(), Duration::from_secs(60)).unwrap();
    let v = testkit::verify(&seeded, &copy);
    assert!(v.is_intact(), "{v}");
    assert_eq!(
        v.duplicated, 0,
        "a clean stop commits exactly what was written: {v}"
    );
    eprintln!("SIGTERM mid-stream after {on_target} records, then restart: {v}");
}
