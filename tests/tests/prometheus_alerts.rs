//! The chart's alerts in a real Prometheus (Debian's `prometheus` package, which tests/monitoring/run.sh
//! installs) scraping a real worker on Apache Kafka: the rules are the chart's PrometheusRule rendered with
//! Helm's engine (tests/monitoring/rules.sh), with durations of seconds instead of minutes; the scrape carries
//! the labels the chart's PodMonitor gives (job="kafka-mirror-worker", namespace, pod, mirror). The worker
//! copies while a producer writes; then the target's only broker dies, the worker falls behind, and the alerts
//! a person would be paged with fire; the broker comes back and they resolve.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kafka_mirror_tests::document::{Connection, MirrorDocument};
use kafka_mirror_tests::kafka::KEEP_FOREVER;
use kafka_mirror_tests::positions::Progress;
use kafka_mirror_tests::producer::{BackgroundProducer, Feed};
use kafka_mirror_tests::{
    ClusterOptions, KafkaCluster, Worker, client_config, free_address, http_get,
};

const NAME: &str = "alerting";
const TOPIC: &str = "alerting-orders";
const PARTITIONS: i32 = 4;
/// The chart's thresholds, scaled to a test: lag above LAG_RECORDS and higher than LAG_GROWING_FOR ago.
const LAG_RECORDS: u64 = 5000;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A Prometheus server on loopback, scraping `worker` every second and evaluating `rules` every second.
struct Prometheus {
    child: Child,
    http: SocketAddr,
    dir: tempfile::TempDir,
}

impl Prometheus {
    fn start(worker: SocketAddr) -> Prometheus {
        let dir = tempfile::tempdir().unwrap();
        let rules = dir.path().join("rules.yaml");
        let overrides = format!(
            r#"{{"notReadyFor": "10s", "lagRecords": {LAG_RECORDS}, "lagGrowingFor": "20s", "targetUnreachableFor": "5s"}}"#
        );
        let rendered = Command::new("bash")
            .arg("tests/monitoring/rules.sh")
            .arg(&rules)
            .arg(&overrides)
            .current_dir(workspace())
            .output()
            .expect("running tests/monitoring/rules.sh");
        assert!(
            rendered.status.success(),
            "tests/monitoring/rules.sh: {}",
            String::from_utf8_lossy(&rendered.stderr)
        );
        let config = format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
             rule_files: [{rules}]\n\
             scrape_configs:\n  - job_name: kafka-mirror-worker\n    static_configs:\n      - targets: ['{worker}']\n        \
             labels: {{namespace: monitoring-test, mirror: {NAME}, pod: {NAME}-worker-5c9d7b8f6d-aaaaa}}\n",
            rules = rules.display()
        );
        std::fs::write(dir.path().join("prometheus.yml"), config).unwrap();
        let http = free_address();
        let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
        let child = Command::new("prometheus")
            .arg(format!(
                "--config.file={}",
                dir.path().join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={http}"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("the prometheus server: tests/monitoring/run.sh installs Debian's prometheus package");
        let prometheus = Prometheus { child, http, dir };
        prometheus.wait_for("Prometheus to answer", Duration::from_secs(60), || {
            http_get(prometheus.http, "/-/ready").is_ok_and(|(status, _)| status == 200)
        });
        prometheus
    }

    fn get(&self, path: &str) -> serde_json::Value {
        let (status, body) = http_get(self.http, path).expect("Prometheus' API");
        assert_eq!(status, 200, "{path}: {body}");
        serde_json::from_str(&body).expect("JSON from Prometheus' API")
    }

    /// The names of the alerts firing now.
    fn firing(&self) -> BTreeSet<String> {
        self.get("/api/v1/alerts")["data"]["alerts"]
            .as_array()
            .expect("data.alerts")
            .iter()
            .filter(|a| a["state"] == "firing")
            .map(|a| a["labels"]["alertname"].as_str().unwrap().to_string())
            .collect()
    }

    /// The value of an instant `query` returning one sample, if it returns one.
    fn value(&self, query: &str) -> Option<f64> {
        let path = format!("/api/v1/query?query={}", encode(query));
        let result = self.get(&path)["data"]["result"].clone();
        result.as_array()?.first()?["value"][1]
            .as_str()?
            .parse()
            .ok()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }

    fn wait_for(&self, what: &str, timeout: Duration, mut condition: impl FnMut() -> bool) {
        let deadline = Instant::now() + timeout;
        while !condition() {
            assert!(
                Instant::now() < deadline,
                "timed out after {timeout:?} waiting for {what}; Prometheus' log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Percent-encodes a query for a URL.
fn encode(query: &str) -> String {
    query
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[test]
fn a_worker_falling_behind_an_unreachable_target_fires_the_charts_alerts_in_a_real_prometheus() {
    let started = Instant::now();
    let (source, target) = std::thread::scope(|s| {
        let source = s.spawn(|| KafkaCluster::start(&ClusterOptions::default()));
        let target = KafkaCluster::start(&ClusterOptions::default());
        (source.join().unwrap(), target)
    });
    source.create_topic(TOPIC, PARTITIONS, 1, KEEP_FOREVER);
    target.create_topic(TOPIC, PARTITIONS, 1, KEEP_FOREVER);
    let (s, t) = (source.plaintext.as_str(), target.plaintext.as_str());
    let dir = tempfile::tempdir().unwrap();
    let mirror = MirrorDocument::new(NAME, Connection::new(s), Connection::new(t))
        .include(TOPIC)
        .num_streams(1);
    let document = mirror.write_in(dir.path());
    let progress = Progress::new(s, t, &mirror.group_id(), TOPIC, PARTITIONS);

    // About 2000 records a second, for as long as the test runs.
    let producer = BackgroundProducer::start(
        client_config(s, &[]),
        TOPIC,
        Feed::until_stopped(200, Duration::from_millis(100), 1000, 64),
    );
    let mut worker = Worker::spawn(&document, dir.path(), &[]);
    worker.wait_for("records to flow", Duration::from_secs(60), || {
        progress.on_target_total() >= 2000
    });
    let prometheus = Prometheus::start(worker.http);
    prometheus.wait_for(
        "a scrape of the worker, ready",
        Duration::from_secs(30),
        || prometheus.value(r#"kafka_mirror_ready{job="kafka-mirror-worker"}"#) == Some(1.0),
    );

    // Keeping up: longer than every alert's `for`, and nothing fires.
    let healthy_until = Instant::now() + Duration::from_secs(30);
    while Instant::now() < healthy_until {
        let firing = prometheus.firing();
        assert!(
            firing.is_empty(),
            "alerts fire while the worker keeps up: {firing:?}"
        );
        std::thread::sleep(Duration::from_secs(1));
    }
    let healthy_lag =
        prometheus.value(r#"sum(kafka_mirror_partition_lag{job="kafka-mirror-worker"})"#);

    // The target's only broker dies: nothing is acknowledged, the source keeps growing.
    target.kill_broker(1);
    let down_at = Instant::now();
    let expected: BTreeSet<String> = [
        "KafkaMirrorTargetUnreachable",
        "KafkaMirrorWorkerNotReady",
        "KafkaMirrorLagGrowing",
    ]
    .map(String::from)
    .into();
    let mut fired_after = Vec::new();
    prometheus.wait_for(
        "the target unreachable, worker not ready and lag growing alerts to fire",
        Duration::from_secs(150),
        || {
            let firing = prometheus.firing();
            for name in &firing {
                if !fired_after.iter().any(|(n, _)| n == name) {
                    fired_after.push((name.clone(), down_at.elapsed()));
                }
            }
            expected.is_subset(&firing)
        },
    );
    let behind = prometheus.value(r#"sum(kafka_mirror_partition_lag{job="kafka-mirror-worker"})"#);
    assert!(
        behind.is_some_and(|lag| lag > LAG_RECORDS as f64),
        "lag {behind:?}"
    );
    let unexpected: Vec<_> = fired_after
        .iter()
        .filter(|(name, _)| !expected.contains(name))
        .collect();
    assert!(unexpected.is_empty(), "{unexpected:?}");

    // The broker is back: the worker catches up and every alert resolves.
    target.start_broker(1);
    let up_at = Instant::now();
    prometheus.wait_for("every alert to resolve", Duration::from_secs(180), || {
        prometheus.firing().is_empty()
    });
    let resolved_after = up_at.elapsed();
    drop(producer.stop());
    let finished = worker.stop();
    assert_eq!(finished.status.code(), Some(0), "{}", finished.output());
    eprintln!(
        "prometheus: lag {healthy_lag:?} while keeping up, {behind:?} when every alert fired; fired after the \
         target died: {fired_after:?}; all resolved {:.1} s after it came back; {:.1} s",
        resolved_after.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
}
