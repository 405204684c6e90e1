//! The worker as a real process: SIGTERM mid-stream drains in-flight records, commits exactly what reached
//! the target and exits 0; a restart continues from there with nothing lost and nothing written twice.
//! Also checks what a pod's probes and Prometheus see on the HTTP endpoint.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use mirror_worker::positions::GroupPositions;
use mirror_worker::testkit;
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};

const TOPIC: &str = "orders";
const PARTITIONS: i32 = 4;

/// Starts the worker with its log in `log` (a file, not a pipe nobody reads while it runs).
fn spawn_worker(document: &std::path::Path, port: u16, log: &std::path::Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_mirror-worker"))
        .args([
            "--config",
            document.to_str().unwrap(),
            "--commit-interval",
            "0.2",
        ])
        .args(["--http-listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .expect("starting mirror-worker")
}

fn sigterm(child: &Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Waits for the process to exit within `timeout`; returns its exit code and log.
fn wait_exit(mut child: Child, timeout: Duration, log: &std::path::Path) -> (Option<i32>, String) {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return (status.code(), std::fs::read_to_string(log).unwrap());
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let log = std::fs::read_to_string(log).unwrap_or_default();
            panic!("mirror-worker did not exit within {timeout:?} after SIGTERM; its log:\n{log}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn http_get(port: u16, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(stream, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (
        status,
        response
            .split("\r\n\r\n")
            .nth(1)
            .unwrap_or_default()
            .to_string(),
    )
}

fn target_records(bootstrap: &str) -> i64 {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .unwrap();
    (0..PARTITIONS)
        .map(|p| {
            consumer
                .fetch_watermarks(TOPIC, p, Duration::from_secs(5))
                .unwrap()
                .1
        })
        .sum()
}

fn committed(source: &str) -> i64 {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", source);
    let partitions: Vec<_> = (0..PARTITIONS).map(|p| (TOPIC.to_string(), p)).collect();
    GroupPositions::new(&config, "kafka-mirror.sigterm")
        .unwrap()
        .committed(&partitions)
        .unwrap()
        .values()
        .map(|c| c.unwrap_or(0))
        .sum()
}

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
    let port = kafka_free_port();
    let (log1, log2) = (dir.path().join("first.log"), dir.path().join("second.log"));
    let worker = spawn_worker(&path, port, &log1);
    let deadline = Instant::now() + Duration::from_secs(60);
    while target_records(&t) < 3000 {
        assert!(
            Instant::now() < deadline,
            "the worker did not mirror 3000 records within 60 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    // What the pod's probes and Prometheus would see while it runs (lag comes from consumer statistics).
    std::thread::sleep(Duration::from_millis(1200));
    assert_eq!(http_get(port, "/healthz").0, 200);
    assert_eq!(http_get(port, "/readyz").0, 200);
    let (status, metrics) = http_get(port, "/metrics");
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

    sigterm(&worker);
    let (code, stderr) = wait_exit(worker, Duration::from_secs(30), &log1);
    assert_eq!(code, Some(0), "exit after SIGTERM:\n{stderr}");
    assert!(stderr.contains("SIGTERM received"), "{stderr}");
    let on_target = target_records(&t);
    let committed_after_stop = committed(&s);
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
    let restarted = spawn_worker(&path, kafka_free_port(), &log2);
    let deadline = Instant::now() + Duration::from_secs(90);
    while committed(&s) < seeded.len() as i64 {
        assert!(
            Instant::now() < deadline,
            "the restarted worker did not catch up within 90 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    sigterm(&restarted);
    let (code, stderr) = wait_exit(restarted, Duration::from_secs(30), &log2);
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

fn kafka_free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
