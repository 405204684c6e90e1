//! The operator with 1, 10 and 100 mirrors (issue 17, item 2): the release operator binary on the test kit's
//! real control plane (kube-apiserver, etcd and kube-controller-manager from `tests/control-plane/up.sh`; no
//! scheduler and no kubelet, so the worker Deployments exist and their pods stay Pending), watching a namespace
//! of its own with the chart's lag interval, while KafkaMirrors of 100 partitions each are applied in steps. The
//! operator reconciles them and measures each one's lag from the benchmark's source cluster, as it would with
//! the workers running. For each step: its reconcile durations from its own histogram
//! (`kafka_mirror_operator_reconcile_duration_seconds`) over a window, the time until every mirror's status shows
//! its lag, its RSS and CPU from /proc.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kafka_mirror_tests::document::{Connection, MirrorDocument};
use kafka_mirror_tests::{ControlPlane, http_get};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

use crate::cluster::ClusterProcess;
use crate::measure;

/// Partitions of each mirror's topic.
pub const PARTITIONS: i32 = 100;
/// Records produced to each topic (10 per partition): every mirror's lag, since no worker commits.
const RECORDS_PER_TOPIC: i64 = 1000;
/// Topics at most: mirror `i` mirrors `scale-{i % TOPICS}`, so 100 mirrors share 10 topics (each its own group).
/// 100 topics of 100 partitions would be 10,000 partitions on one broker of a machine shared with other
/// clusters (its open-file limit is 20,000).
const TOPICS: usize = 10;
/// The chart's `lagIntervalSeconds`.
pub const LAG_INTERVAL_SECONDS: u64 = 30;
const NAMESPACE: &str = "operator-scale";
const HISTOGRAM: &str = "kafka_mirror_operator_reconcile_duration_seconds";

/// One step: the operator with `mirrors` mirrors.
pub struct Step {
    pub mirrors: usize,
    /// From applying the step's new mirrors until every mirror's status shows its lag.
    pub lag_shown: Duration,
    pub window: Duration,
    pub reconciles: u64,
    pub mean: f64,
    pub p50: f64,
    pub p99: f64,
    pub rss_kib: u64,
    pub peak_rss_kib: u64,
    pub cpu_per_minute: f64,
    /// Durations of the lag reads (metadata, committed offsets, watermarks) in the window, in ms, sorted.
    pub lag_reads: Vec<f64>,
}

/// Runs the operator at `operator` with `counts` mirrors in turn (ascending; each step adds mirrors), measuring
/// each for `window`, and returns the report's Markdown section.
pub fn measure(
    operator: &Path,
    source: &ClusterProcess,
    target: &ClusterProcess,
    counts: &[usize],
    window: Duration,
) -> String {
    eprintln!(
        "the operator with {counts:?} mirrors: starting the control plane (tests/control-plane/up.sh)"
    );
    let control_plane = kafka_mirror_tests::scene::control_plane();
    control_plane.create_namespace(NAMESPACE);
    let topics = counts.iter().copied().max().unwrap_or(0).min(TOPICS);
    for t in 0..topics {
        let topic = topic_name(t);
        source.fresh_topic(&topic, PARTITIONS);
        produce(source, &topic);
    }
    let log = crate::release_dir()
        .parent()
        .unwrap()
        .join("benchmark-operator-scale.log");
    eprintln!("  the operator's log: {}", log.display());
    let mut process = OperatorProcess::start(operator, control_plane, &log);
    let mut steps = Vec::new();
    let mut applied = 0;
    for &count in counts {
        eprintln!("  {count} mirrors");
        let documents: Vec<String> = (applied..count)
            .map(|i| mirror(i, source, target).to_yaml())
            .collect();
        let applying = Instant::now();
        if !documents.is_empty() {
            control_plane.run_kubectl_with(
                &["apply", "-n", NAMESPACE, "-f", "-"],
                &documents.join("---\n"),
            );
        }
        applied = applied.max(count);
        wait_for_lag(control_plane, &mut process, count);
        let lag_shown = applying.elapsed();
        eprintln!(
            "    every status shows its lag after {:.1} s; measuring for {} s",
            lag_shown.as_secs_f64(),
            window.as_secs()
        );
        steps.push(process.window(count, lag_shown, window));
    }
    process.stop();
    // The mirrors go with the namespace, and the control plane with this process (its watchdog).
    let _ = control_plane.try_kubectl(&["delete", "namespace", NAMESPACE, "--wait=false"]);
    for t in 0..topics {
        source.delete_topic(&topic_name(t));
    }
    markdown(&steps)
}

fn topic_name(t: usize) -> String {
    format!("scale-{t}")
}

fn mirror(i: usize, source: &ClusterProcess, target: &ClusterProcess) -> MirrorDocument {
    MirrorDocument::new(
        &format!("scale-{i}"),
        Connection::new(&source.bootstrap),
        Connection::new(&target.bootstrap),
    )
    .include(&topic_name(i % TOPICS))
}

/// `RECORDS_PER_TOPIC` small records, spread over every partition.
fn produce(source: &ClusterProcess, topic: &str) {
    let producer: BaseProducer = source.client().create().unwrap();
    for i in 0..RECORDS_PER_TOPIC {
        let key = i.to_string();
        let mut record = BaseRecord::to(topic)
            .key(&key)
            .payload("x")
            .partition((i % PARTITIONS as i64) as i32);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((_, back)) => {
                    producer.poll(Duration::from_millis(10));
                    record = back;
                }
            }
        }
    }
    producer
        .flush(Duration::from_secs(30))
        .expect("producing the scale topics' records");
}

/// Until mirrors `scale-0..count` all show `status.lag.total` = `RECORDS_PER_TOPIC`.
fn wait_for_lag(control_plane: &ControlPlane, process: &mut OperatorProcess, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let list = control_plane.get_json(&["kmirror", "-n", NAMESPACE]);
        let shown = list["items"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter(|m| m["status"]["lag"]["total"] == RECORDS_PER_TOPIC)
                    .count()
            })
            .unwrap_or(0);
        if shown >= count {
            return;
        }
        process.check_alive();
        assert!(
            Instant::now() < deadline,
            "after 600 s only {shown} of {count} mirrors show lag {RECORDS_PER_TOPIC}; see {}",
            process.log
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

struct OperatorProcess {
    child: Child,
    http: SocketAddr,
    log: String,
}

impl OperatorProcess {
    /// As the test kit's `Operator` fixture starts it, with the chart's lag interval.
    fn start(operator: &Path, control_plane: &ControlPlane, log: &Path) -> OperatorProcess {
        let http = kafka_mirror_tests::free_address();
        let child = Command::new(operator)
            .args(["run", "--http-listen", &http.to_string()])
            .args(["--lag-interval", &LAG_INTERVAL_SECONDS.to_string()])
            .args(["--identity", "operator-scale", "--namespace", NAMESPACE])
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("KUBECONFIG", &control_plane.kubeconfig)
            // The lag module's debug line times each lag read (the Kafka part of a reconcile).
            .env(
                "RUST_LOG",
                "info,kube=warn,kafka_mirror_operator::lag=debug",
            )
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(log).unwrap())
            .stderr(std::fs::File::options().append(true).open(log).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", operator.display()));
        let mut process = OperatorProcess {
            child,
            http,
            log: log.display().to_string(),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !http_get(http, "/healthz").is_ok_and(|(status, _)| status == 200) {
            process.check_alive();
            assert!(Instant::now() < deadline, "no /healthz within 30 s");
            std::thread::sleep(Duration::from_millis(200));
        }
        process
    }

    fn check_alive(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("the operator exited with {status}; its log: {}", self.log);
        }
    }

    fn histogram(&self) -> Histogram {
        let (_, body) = http_get(self.http, "/metrics").expect("the operator's /metrics");
        Histogram::parse(&body)
    }

    /// The operator's figures over `window`, sampling its RSS every second.
    fn window(&mut self, mirrors: usize, lag_shown: Duration, window: Duration) -> Step {
        let pid = self.child.id();
        let before = self.histogram();
        let log_start = std::fs::metadata(&self.log).map_or(0, |m| m.len()) as usize;
        let cpu_before = measure::so_far(pid).cpu;
        let started = Instant::now();
        let mut rss_kib = 0;
        while started.elapsed() < window {
            std::thread::sleep(Duration::from_secs(1));
            self.check_alive();
            rss_kib = rss_kib.max(measure::rss_now(pid).unwrap_or(0));
        }
        let elapsed = started.elapsed();
        let usage = measure::so_far(pid);
        let delta = self.histogram().minus(&before);
        let log = std::fs::read(&self.log).unwrap_or_default();
        let mut lag_reads: Vec<f64> = String::from_utf8_lossy(&log[log_start.min(log.len())..])
            .lines()
            .filter(|l| l.contains("read the group's positions"))
            .filter_map(|l| {
                let value = l.split("elapsed_ms=").nth(1)?;
                value.split_whitespace().next()?.parse().ok()
            })
            .collect();
        lag_reads.sort_by(|a, b| a.partial_cmp(b).unwrap());
        Step {
            mirrors,
            lag_shown,
            window: elapsed,
            reconciles: delta.count,
            mean: if delta.count > 0 {
                delta.sum / delta.count as f64
            } else {
                0.0
            },
            p50: delta.quantile(0.5),
            p99: delta.quantile(0.99),
            rss_kib,
            // The kernel updates VmHWM lazily: a sampled VmRSS can be above it.
            peak_rss_kib: usage.peak_rss_kib.max(rss_kib),
            cpu_per_minute: (usage.cpu - cpu_before).as_secs_f64() * 60.0 / elapsed.as_secs_f64(),
            lag_reads,
        }
    }

    fn stop(mut self) {
        measure::signal(&self.child, libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.child.try_wait().ok().flatten().is_none() {
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for OperatorProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A Prometheus histogram as `/metrics` prints it: cumulative bucket counts by upper bound, sum and count.
#[derive(Debug, Default, Clone, PartialEq)]
struct Histogram {
    buckets: Vec<(f64, u64)>,
    sum: f64,
    count: u64,
}

impl Histogram {
    fn parse(metrics: &str) -> Histogram {
        let mut histogram = Histogram::default();
        for line in metrics.lines() {
            let Some((series, value)) = line.rsplit_once(' ') else {
                continue;
            };
            let Some(rest) = series.strip_prefix(HISTOGRAM) else {
                continue;
            };
            if let Some(le) = rest
                .strip_prefix("_bucket{le=\"")
                .and_then(|r| r.strip_suffix("\"}"))
            {
                let bound = if le == "+Inf" {
                    f64::INFINITY
                } else {
                    le.parse().unwrap()
                };
                histogram
                    .buckets
                    .push((bound, value.parse::<f64>().unwrap() as u64));
            } else if rest == "_sum" {
                histogram.sum = value.parse().unwrap();
            } else if rest == "_count" {
                histogram.count = value.parse::<f64>().unwrap() as u64;
            }
        }
        histogram
            .buckets
            .sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap());
        histogram
    }

    /// What was observed since `before`.
    fn minus(&self, before: &Histogram) -> Histogram {
        let earlier: BTreeMap<String, u64> = before
            .buckets
            .iter()
            .map(|(b, c)| (b.to_string(), *c))
            .collect();
        Histogram {
            buckets: self
                .buckets
                .iter()
                .map(|(b, c)| (*b, c - earlier.get(&b.to_string()).copied().unwrap_or(0)))
                .collect(),
            sum: self.sum - before.sum,
            count: self.count - before.count,
        }
    }

    /// The `q` quantile, interpolated linearly within its bucket as Prometheus' `histogram_quantile` does.
    fn quantile(&self, q: f64) -> f64 {
        if self.count == 0 {
            return 0.0;
        }
        let rank = q * self.count as f64;
        let mut lower = 0.0;
        let mut below = 0u64;
        for &(bound, cumulative) in &self.buckets {
            if cumulative as f64 >= rank {
                if bound.is_infinite() {
                    return lower;
                }
                let in_bucket = (cumulative - below) as f64;
                return lower + (bound - lower) * (rank - below as f64) / in_bucket.max(1.0);
            }
            lower = bound;
            below = cumulative;
        }
        lower
    }
}

fn markdown(steps: &[Step]) -> String {
    let mut out = format!(
        "### The operator with 1, 10 and 100 mirrors\n\n\
         The release operator on the test kit's control plane (kube-apiserver, etcd and kube-controller-manager \
         on loopback; no kubelet, so the worker pods stay Pending), `--namespace {NAMESPACE} --lag-interval \
         {LAG_INTERVAL_SECONDS}` (the chart's interval), each mirror of a topic of {PARTITIONS} partitions on the \
         source cluster ({RECORDS_PER_TOPIC} records each, its lag, since no worker commits; at most {TOPICS} \
         topics, shared by the mirrors beyond, each with its own group). The mirrors are applied in steps; each \
         step is measured once every status shows its lag. Reconcile time from the operator's \
         `{HISTOGRAM}` over the window (p50 and p99 interpolated within its buckets); RSS the highest VmRSS \
         sampled each second of the window, peak the VmHWM since the start. *Lag reads* are the Kafka part of \
         those reconciles, timed by the operator (its `kafka_mirror_operator::lag` debug line): the source's \
         metadata, the group's committed offsets and the watermarks of the mirror's 100 partitions.\n\n\
         | mirrors | every lag shown after s | window s | reconciles | reconcile mean ms | p50 ms | p99 ms | lag reads | lag read mean ms | p50 ms | p99 ms | RSS MiB | peak RSS MiB | CPU s per minute |\n\
         |---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
    );
    for s in steps {
        out.push_str(&format!(
            "| {} | {:.1} | {:.0} | {} | {:.1} | {:.1} | {:.1} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.2} |\n",
            s.mirrors,
            s.lag_shown.as_secs_f64(),
            s.window.as_secs_f64(),
            s.reconciles,
            s.mean * 1000.0,
            s.p50 * 1000.0,
            s.p99 * 1000.0,
            s.lag_reads.len(),
            s.lag_reads.iter().sum::<f64>() / s.lag_reads.len().max(1) as f64,
            nearest_rank(&s.lag_reads, 0.5),
            nearest_rank(&s.lag_reads, 0.99),
            s.rss_kib as f64 / 1024.0,
            s.peak_rss_kib as f64 / 1024.0,
            s.cpu_per_minute,
        ));
    }
    out
}

/// The `q` quantile of sorted `values` by nearest rank; 0 when there are none.
fn nearest_rank(values: &[f64], q: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let rank = ((q * values.len() as f64).ceil() as usize).clamp(1, values.len());
    values[rank - 1]
}
