//! The results as Markdown, for BENCHMARKS.md: the machine, the command, one table per record size, each
//! mirror's latency, the goals of issue 17 checked against this run's own figures, and the operator's idle
//! memory.

use std::fmt::Write;
use std::process::Command;
use std::time::Duration;

use crate::latency::Latencies;
use crate::measure::{self, Usage};
use crate::operator_idle::OperatorIdle;

/// The kinds of copy (and limit) a run measures, in the order of a round and of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Consume,
    Produce,
    Kcat,
    Mm1,
    Mm2,
    Worker,
    /// The worker with `delivery: exactlyOnce`, its default commit interval.
    WorkerExactlyOnce,
}

impl Kind {
    pub const ALL: [Kind; 7] = [
        Kind::Consume,
        Kind::Produce,
        Kind::Kcat,
        Kind::Mm1,
        Kind::Mm2,
        Kind::Worker,
        Kind::WorkerExactlyOnce,
    ];

    /// The name `--skip` takes.
    pub fn key(self) -> &'static str {
        match self {
            Kind::Consume => "consume",
            Kind::Produce => "produce",
            Kind::Kcat => "kcat",
            Kind::Mm1 => "mm1",
            Kind::Mm2 => "mm2",
            Kind::Worker => "worker",
            Kind::WorkerExactlyOnce => "worker-eos",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Kind::Consume => "consume alone (limit)",
            Kind::Produce => "produce alone (limit)",
            Kind::Kcat => "kcat -C \\| kcat -P (peer; no headers)",
            Kind::Mm1 => "MirrorMaker 1 (seed guide's command)",
            Kind::Mm2 => "MirrorMaker 2 (dedicated mode)",
            Kind::Worker => "mirror-worker (at-least-once)",
            Kind::WorkerExactlyOnce => "mirror-worker (exactly-once)",
        }
    }

    pub fn of_peer(peer: crate::peers::Peer) -> Kind {
        match peer {
            crate::peers::Peer::Mm1 => Kind::Mm1,
            crate::peers::Peer::Mm2 => Kind::Mm2,
        }
    }

    /// Copies whose end-to-end latency is measured: the ones that carry headers (the send time, which finds each
    /// record's append time on the source, travels in one).
    pub fn is_mirror(self) -> bool {
        matches!(
            self,
            Kind::Mm1 | Kind::Mm2 | Kind::Worker | Kind::WorkerExactlyOnce
        )
    }
}

/// One measured copy or limit.
pub struct Row {
    pub name: &'static str,
    pub records_per_s: f64,
    pub mb_per_s: f64,
    pub cpu_seconds: f64,
    pub cpu_s_per_gb: f64,
    pub mb_per_s_per_core: f64,
    pub peak_rss_mib: f64,
    /// CPU the broker processes used meanwhile: on a small machine they compete with the client for cores.
    pub broker_cpu_seconds: f64,
    /// Slowest and fastest records/s over the rounds this row summarises.
    pub records_per_s_range: (f64, f64),
    /// `delivery: exactlyOnce`: first record written to the last visible to a `read_committed` reader (its
    /// transaction committed), where the row's rate counts to the last written.
    pub visible_seconds: Option<f64>,
}

impl Row {
    pub fn new(
        name: &'static str,
        records: u64,
        bytes: u64,
        seconds: f64,
        usage: Usage,
        broker_cpu: Duration,
    ) -> Row {
        let mb = bytes as f64 / 1e6;
        let cpu = usage.cpu.as_secs_f64();
        Row {
            name,
            records_per_s: records as f64 / seconds,
            mb_per_s: mb / seconds,
            cpu_seconds: cpu,
            cpu_s_per_gb: cpu / (mb / 1000.0),
            mb_per_s_per_core: mb / cpu,
            peak_rss_mib: usage.peak_rss_kib as f64 / 1024.0,
            broker_cpu_seconds: broker_cpu.as_secs_f64(),
            records_per_s_range: (records as f64 / seconds, records as f64 / seconds),
            visible_seconds: None,
        }
    }

    /// The round with the median records/s (the slower middle one of an even count), carrying the range of all
    /// rounds and the highest peak RSS of any: the memory goal holds only if every round kept it.
    pub fn median(mut rounds: Vec<Row>) -> Row {
        assert!(!rounds.is_empty(), "no round to summarise");
        rounds.sort_by(|a, b| a.records_per_s.total_cmp(&b.records_per_s));
        let range = (
            rounds[0].records_per_s,
            rounds[rounds.len() - 1].records_per_s,
        );
        let peak_rss = rounds.iter().map(|r| r.peak_rss_mib).fold(0.0, f64::max);
        let mut median = rounds.swap_remove((rounds.len() - 1) / 2);
        median.records_per_s_range = range;
        median.peak_rss_mib = peak_rss;
        median
    }
}

pub struct SizeResult {
    pub value_size: usize,
    pub records: u64,
    pub bytes: u64,
    pub rows: Vec<(Kind, Row)>,
    pub latency: Vec<(Kind, Vec<LatencyPoint>)>,
    /// The exactly-once worker's latency at one rate with other `--commit-interval`s than its default: its
    /// transactions commit at that interval, and a `read_committed` reader sees a record only then.
    pub commit_intervals: Vec<(f64, LatencyPoint)>,
}

impl SizeResult {
    fn row(&self, kind: Kind) -> Option<&Row> {
        self.rows.iter().find(|(k, _)| *k == kind).map(|(_, r)| r)
    }
}

/// End-to-end latency at one rate: the percentiles, or why they could not be measured.
pub struct LatencyPoint {
    pub label: &'static str,
    pub rate: u64,
    pub measured: Result<Latencies, String>,
}

impl LatencyPoint {
    fn line(&self) -> String {
        let head = format!(
            "at {} its maximum rate ({} records/s)",
            self.label, self.rate
        );
        match &self.measured {
            Ok(l) => format!(
                "{head}, {} records: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms.",
                l.records, l.p50_ms, l.p99_ms, l.max_ms
            ),
            Err(why) => format!("{head}: not measured: {why}."),
        }
    }

    fn p99(&self) -> Option<f64> {
        self.measured.as_ref().ok().map(|l| l.p99_ms)
    }

    fn cell(&self) -> String {
        match &self.measured {
            Ok(l) => format!("{:.1} / {:.1}", l.p50_ms, l.p99_ms),
            Err(_) => "fell behind".into(),
        }
    }
}

fn command_line(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .ok()
        .and_then(|o| {
            let text = String::from_utf8_lossy(&o.stdout).to_string()
                + &String::from_utf8_lossy(&o.stderr);
            text.lines()
                .find(|l| !l.trim().is_empty())
                .map(|l| l.trim().to_string())
        })
        .unwrap_or_else(|| format!("{program}: not found"))
}

/// The first line `java -version` prints.
fn java_version() -> String {
    Command::new("java")
        .arg("-version")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stderr)
                .lines()
                .next()
                .map(str::to_string)
        })
        .unwrap_or_else(|| "java: not found".into())
}

/// What the run ran on.
pub fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|m| m.trim_start_matches([' ', '\t', ':']).to_string())
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let memory_gib =
        measure::kib_field(&meminfo, "MemTotal").map_or(0.0, |kib| kib as f64 / 1024.0 / 1024.0);
    let (_, librdkafka) = rdkafka::util::get_rdkafka_version();
    let kafka = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/kafka/pom.xml"),
    )
    .ok()
    .and_then(|pom| {
        Some(
            pom.split("<kafka.version>")
                .nth(1)?
                .split('<')
                .next()?
                .to_string(),
        )
    })
    .unwrap_or_else(|| "?".into());
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    format!(
        "- CPU: {model}, {cores} cores available to the run; memory {memory_gib:.1} GiB\n\
         - load average when the run ended (1, 5, 15 min): {}\n\
         - kernel: {}\n- date: {}\n- rustc: {}\n- librdkafka (worker, limits): {librdkafka}\n\
         - kcat (peer): {}\n- JVM: {}\n\
         - brokers: Apache Kafka {kafka} (Maven Central), one KRaft broker per cluster, `{}` `{}`\n\
         - MirrorMaker 1: Kafka {} (`kafka.tools.MirrorMaker`), `{}` (connect-mirror-maker.sh's; kafka-run-class.sh's default -Xmx256M ran out of heap)\n\
         - MirrorMaker 2: connect-mirror {}, `{}` (connect-mirror-maker.sh's)",
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
        command_line("uname", &["-sr"]),
        command_line("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
        command_line("rustc", &["-V"]),
        command_line("kcat", &["-V"]),
        java_version(),
        crate::cluster::BROKER_HEAP,
        crate::cluster::KAFKA_JVM_PERFORMANCE_OPTS,
        crate::peers::Peer::Mm1.version(),
        crate::peers::MM1_HEAP,
        crate::peers::Peer::Mm2.version(),
        crate::peers::MM2_HEAP,
    )
}

fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "**missed**" }
}

fn goal_line(out: &mut String, goal: &str, value: Option<String>, ok: Option<bool>) {
    match (value, ok) {
        (Some(value), Some(ok)) => writeln!(out, "| {goal} | {value} | {} |", verdict(ok)).unwrap(),
        (Some(value), None) => writeln!(out, "| {goal} | {value} | not measured |").unwrap(),
        _ => writeln!(out, "| {goal} | | not measured in this run |").unwrap(),
    }
}

pub fn markdown(
    machine: &str,
    args: String,
    sizes: &[SizeResult],
    operator: &OperatorIdle,
) -> String {
    let mut out = String::new();
    writeln!(out, "### Machine\n\n{machine}\n").unwrap();
    writeln!(
        out,
        "### Command\n\n`bash tests/benchmark.sh` (benchmark arguments: `{args}`)\n"
    )
    .unwrap();
    for size in sizes {
        writeln!(
            out,
            "### {}-byte values: {} keyed records with 2 headers, {:.1} MB\n",
            size.value_size,
            size.records,
            size.bytes as f64 / 1e6
        )
        .unwrap();
        writeln!(
            out,
            "| run | records/s (median) | all rounds | MB/s | CPU s | CPU s/GB | MB/s per core | peak RSS MiB (highest) | brokers' CPU s |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|"
        )
        .unwrap();
        for (_, row) in &size.rows {
            writeln!(
                out,
                "| {} | {:.0} | {:.0}–{:.0} | {:.1} | {:.2} | {:.2} | {:.1} | {:.1} | {:.2} |",
                row.name,
                row.records_per_s,
                row.records_per_s_range.0,
                row.records_per_s_range.1,
                row.mb_per_s,
                row.cpu_seconds,
                row.cpu_s_per_gb,
                row.mb_per_s_per_core,
                row.peak_rss_mib,
                row.broker_cpu_seconds
            )
            .unwrap();
        }
        for (_, row) in &size.rows {
            if let Some(visible) = row.visible_seconds {
                writeln!(
                    out,
                    "\n{}: its rate counts to the last record written into a transaction ({:.2} s after the \
                     first in the median round); the last was visible to a `read_committed` reader {visible:.2} s \
                     after the first, once its transaction committed ({:.0} records/s counted to that).",
                    row.name,
                    size.records as f64 / row.records_per_s,
                    size.records as f64 / visible
                )
                .unwrap();
            }
        }
        if !size.latency.is_empty() {
            writeln!(
                out,
                "\nEnd-to-end latency, p50 / p99 in ms (append on the source to receipt from the target), at \
                 fractions of each mirror's own maximum (its median records/s above):\n"
            )
            .unwrap();
            writeln!(
                out,
                "| mirror | a tenth | a quarter | half |\n|---|---:|---:|---:|"
            )
            .unwrap();
            for (kind, points) in &size.latency {
                let cells: Vec<String> = points
                    .iter()
                    .map(|p| format!("{} ({} rec/s)", p.cell(), p.rate))
                    .collect();
                writeln!(out, "| {} | {} |", kind.label(), cells.join(" | ")).unwrap();
            }
            writeln!(out).unwrap();
            for (kind, points) in &size.latency {
                for point in points {
                    writeln!(out, "- {}, {}", kind.label(), point.line()).unwrap();
                }
            }
        }
        if !size.commit_intervals.is_empty() {
            writeln!(
                out,
                "\nThe commit interval's effect on the exactly-once worker's latency (`--commit-interval`; a \
                 `read_committed` reader sees a record once its transaction commits), p50 / p99 in ms:\n\n\
                 | commit interval | rate | p50 / p99 | max |\n|---:|---:|---:|---:|"
            )
            .unwrap();
            // The default interval's point at the same rate, from the latency table above.
            let default = size
                .latency
                .iter()
                .find(|(k, _)| *k == Kind::WorkerExactlyOnce)
                .and_then(|(_, points)| {
                    let label = size.commit_intervals.first()?.1.label;
                    points.iter().find(|p| p.label == label)
                })
                .map(|p| (kafka_mirror_crds::worker_pod::COMMIT_INTERVAL_SECONDS, p));
            let measured = size.commit_intervals.iter().map(|(s, p)| (*s, p));
            for (seconds, point) in default.into_iter().chain(measured) {
                let max = point
                    .measured
                    .as_ref()
                    .map_or("".into(), |l| format!("{:.1}", l.max_ms));
                writeln!(
                    out,
                    "| {seconds} s | {} rec/s ({} its maximum) | {} | {max} |",
                    point.rate,
                    point.label,
                    point.cell()
                )
                .unwrap();
            }
        }
        writeln!(out).unwrap();
        goals(&mut out, size);
    }
    let rss = operator.rss_kib as f64 / 1024.0;
    let peak = operator.peak_rss_kib as f64 / 1024.0;
    writeln!(
        out,
        "### Operator, idle\n\nLeader Lease held, KafkaMirrors and Deployments watched, {} API requests served by the \
         stand-in API server; {:.2} CPU s in all.\n\n| goal | this run | |\n|---|---:|---|\n\
         | operator idle RSS < 32 MiB | {rss:.1} MiB (peak while starting: {peak:.1} MiB) | {} |",
        operator.requests,
        operator.cpu.as_secs_f64(),
        verdict(rss < 32.0)
    )
    .unwrap();
    out
}

/// The goals of issue 17, each a ratio of this run's own figures.
fn goals(out: &mut String, size: &SizeResult) {
    let worker = size.row(Kind::Worker);
    let limit = match (size.row(Kind::Consume), size.row(Kind::Produce)) {
        (Some(c), Some(p)) => Some(c.records_per_s.min(p.records_per_s)),
        _ => None,
    };
    writeln!(out, "| goal (issue 17) | this run | |\n|---|---:|---|").unwrap();
    let of_limit = worker.zip(limit).map(|(w, l)| w.records_per_s / l);
    goal_line(
        out,
        "worker ≥ 90% of min(consume alone, produce alone), records/s",
        of_limit.map(|r| format!("{:.0}%", r * 100.0)),
        of_limit.map(|r| r >= 0.9),
    );
    for peer in [Kind::Mm2, Kind::Mm1] {
        let pair = worker.zip(size.row(peer));
        let per_core = pair.map(|(w, p)| w.mb_per_s_per_core / p.mb_per_s_per_core);
        goal_line(
            out,
            &format!("worker ≥ 3× {} in MB/s per core", peer_name(peer)),
            per_core.map(|r| format!("{r:.2}×")),
            per_core.map(|r| r >= 3.0),
        );
        let throughput = pair.map(|(w, p)| w.mb_per_s / p.mb_per_s);
        goal_line(
            out,
            &format!("worker ≥ {} in MB/s", peer_name(peer)),
            throughput.map(|r| format!("{r:.2}×")),
            throughput.map(|r| r >= 1.0),
        );
    }
    let rss = worker
        .zip(size.row(Kind::Mm2))
        .map(|(w, m)| (w.peak_rss_mib, m.peak_rss_mib));
    goal_line(
        out,
        "worker peak RSS ≤ 1/8 of MirrorMaker 2's",
        rss.map(|(w, m)| format!("{w:.1} of {m:.1} MiB (1/{:.1})", m / w)),
        rss.map(|(w, m)| w * 8.0 <= m),
    );
    goal_line(
        out,
        "worker peak RSS ≤ 64 MiB at 64 partitions",
        worker.map(|w| format!("{:.1} MiB", w.peak_rss_mib)),
        worker.map(|w| w.peak_rss_mib <= 64.0),
    );
    let half = size
        .latency
        .iter()
        .find(|(k, _)| *k == Kind::Worker)
        .and_then(|(_, points)| points.iter().find(|p| p.label == "half"));
    goal_line(
        out,
        "worker p99 ≤ 50 ms at half its maximum rate",
        half.map(|p| {
            p.p99()
                .map_or("fell behind".into(), |v| format!("{v:.1} ms"))
        }),
        half.map(|p| p.p99().is_some_and(|v| v <= 50.0)),
    );
    let of_kcat = worker
        .zip(size.row(Kind::Kcat))
        .map(|(w, k)| w.records_per_s / k.records_per_s);
    goal_line(
        out,
        "worker ≥ 2× the kcat pipeline, records/s (issue 6)",
        of_kcat.map(|r| format!("{r:.2}×")),
        of_kcat.map(|r| r >= 2.0),
    );
    let exactly_once = size
        .row(Kind::WorkerExactlyOnce)
        .zip(worker)
        .map(|(e, w)| e.records_per_s / w.records_per_s);
    goal_line(
        out,
        "exactly-once ≥ 70% of at-least-once throughput, records/s",
        exactly_once.map(|r| format!("{:.0}%", r * 100.0)),
        exactly_once.map(|r| r >= 0.7),
    );
    writeln!(out).unwrap();
}

fn peer_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Mm1 => "MirrorMaker 1",
        _ => "MirrorMaker 2",
    }
}
