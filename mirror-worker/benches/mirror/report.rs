//! The results as Markdown, for BENCHMARKS.md: the machine, the command, one table per record size, the
//! goals of issue 6 checked against this run's own figures, and the operator's idle memory.

use std::fmt::Write;
use std::process::Command;
use std::time::Duration;

use crate::latency::Latencies;
use crate::measure::{self, Usage};
use crate::operator_idle::OperatorIdle;

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
    pub consume: Row,
    pub produce: Row,
    pub kcat: Row,
    pub mirror: Row,
    pub latency: Vec<LatencyPoint>,
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
            "At {} the worker's maximum rate ({} records/s)",
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
    format!(
        "- CPU: {model}, {cores} cores available to the run; memory {memory_gib:.1} GiB\n\
         - kernel: {}\n- date: {}\n- rustc: {}\n- librdkafka (worker, limits, brokers): {librdkafka}\n\
         - kcat (peer): {}",
        command_line("uname", &["-sr"]),
        command_line("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
        command_line("rustc", &["-V"]),
        command_line("kcat", &["-V"]),
    )
}

fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "**missed**" }
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
        for row in [&size.consume, &size.produce, &size.kcat, &size.mirror] {
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
        let limit = size.consume.records_per_s.min(size.produce.records_per_s);
        let of_limit = size.mirror.records_per_s / limit;
        let of_kcat = size.mirror.records_per_s / size.kcat.records_per_s;
        writeln!(
            out,
            "\nEnd-to-end latency (send to the source to receipt from the target):\n"
        )
        .unwrap();
        for point in &size.latency {
            writeln!(out, "- {}", point.line()).unwrap();
        }
        writeln!(out).unwrap();
        let half = size.latency.iter().find(|p| p.label == "half");
        let half_p99 = half
            .and_then(|p| p.measured.as_ref().ok())
            .map(|l| l.p99_ms);
        writeln!(out, "| goal | this run | |\n|---|---:|---|").unwrap();
        writeln!(
            out,
            "| mirror ≥ 90% of min(consume alone, produce alone) | {:.0}% | {} |",
            of_limit * 100.0,
            verdict(of_limit >= 0.9)
        )
        .unwrap();
        writeln!(
            out,
            "| mirror ≥ 2× the kcat pipeline (records/s) | {of_kcat:.2}× | {} |",
            verdict(of_kcat >= 2.0)
        )
        .unwrap();
        if size.value_size >= 1000 {
            writeln!(
                out,
                "| ≥ 100 MB/s per worker CPU core at 1 KB | {:.1} MB/s | {} |",
                size.mirror.mb_per_s_per_core,
                verdict(size.mirror.mb_per_s_per_core >= 100.0)
            )
            .unwrap();
        }
        writeln!(
            out,
            "| worker peak RSS < 64 MiB at full speed | {:.1} MiB | {} |",
            size.mirror.peak_rss_mib,
            verdict(size.mirror.peak_rss_mib < 64.0)
        )
        .unwrap();
        writeln!(
            out,
            "| p99 end-to-end latency < 50 ms at half the maximum rate | {} | {} |\n",
            half_p99.map_or("fell behind".to_string(), |p| format!("{p:.1} ms")),
            verdict(half_p99.is_some_and(|p| p < 50.0))
        )
        .unwrap();
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
