//! The throughput, memory and latency benchmark (issue 6). One run measures, for each record size:
//! the limits (the client library consuming the data alone and producing it alone, with the worker's
//! settings), the peer (Debian's kcat as a consume | produce pipeline) and mirror-worker doing the same copy,
//! then the worker's end-to-end latency at half its maximum rate; and the operator's idle memory.
//! Every broker is a separate process. Run it with `bash tests/benchmark.sh`; the results table is written
//! as Markdown for BENCHMARKS.md.

mod alone;
mod cluster;
mod copies;
mod latency;
mod load;
mod measure;
mod operator_idle;
mod report;

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::alone::Tuning;
use crate::cluster::ClusterProcess;
use crate::copies::WorkerProcess;
use crate::report::{LatencyPoint, Row, SizeResult};

// The limits and the brokers run on the worker's allocator, so the comparison is of the same build.
kafka_mirror_runtime::use_jemalloc!();

const TOPIC: &str = "bench";

#[derive(Parser, Debug)]
#[command(about = "kafka-mirror's throughput, memory and latency benchmark")]
struct Cli {
    #[command(subcommand)]
    role: Option<Role>,
    /// Value sizes in bytes, one benchmark each.
    #[arg(long, value_delimiter = ',', default_value = "100,1000")]
    value_sizes: Vec<usize>,
    /// Source (and target) partitions. librdkafka's mock cluster keeps at most 5 MiB per partition, so the
    /// data set of each size is sized to fill about 4 MB of each.
    #[arg(long, default_value_t = 64)]
    partitions: i32,
    #[command(flatten)]
    tuning: Tuning,
    /// Rounds of the four copies, interleaved; each row reports the round with the median records/s. One copy
    /// lasts seconds on this machine, and single runs varied by tens of percent.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Seconds of paced load for the latency measurement.
    #[arg(long, default_value_t = 10)]
    latency_seconds: u64,
    /// Records/s of the latency measurement, instead of half the worker's measured maximum.
    #[arg(long)]
    latency_rate: Option<u64>,
    /// Seconds the operator runs idle before its memory is read.
    #[arg(long, default_value_t = 20)]
    operator_seconds: u64,
    /// The operator binary (release build); by default next to this benchmark's target directory.
    #[arg(long)]
    operator: Option<PathBuf>,
    /// Also write the Markdown results here.
    #[arg(long)]
    out: Option<PathBuf>,
}

/// The roles this binary plays in its child processes.
#[derive(Subcommand, Debug)]
enum Role {
    #[command(hide = true)]
    HostCluster {
        #[arg(long)]
        topic: String,
        #[arg(long)]
        partitions: i32,
    },
    #[command(hide = true)]
    Consume {
        source: String,
        topic: String,
        /// A group of its own per round: the mock broker holds a re-formed group's assignment for the session
        /// timeout, which would add 45 s of waiting to every round after the first.
        group: String,
        records: u64,
        #[command(flatten)]
        tuning: Tuning,
    },
    #[command(hide = true)]
    Produce {
        target: String,
        topic: String,
        partitions: i32,
        records: u64,
        value_size: usize,
        #[command(flatten)]
        tuning: Tuning,
    },
}

fn main() {
    // `cargo bench` passes --bench to every bench target.
    let cli = Cli::parse_from(std::env::args().filter(|a| a != "--bench"));
    match cli.role {
        Some(Role::HostCluster { topic, partitions }) => cluster::host(&topic, partitions),
        Some(Role::Consume {
            source,
            topic,
            group,
            records,
            tuning,
        }) => alone::consume_role(&source, &topic, &group, records, &tuning),
        Some(Role::Produce {
            target,
            topic,
            partitions,
            records,
            value_size,
            tuning,
        }) => alone::produce_role(&target, &topic, partitions, records, value_size, &tuning),
        None => benchmark(&cli),
    }
}

/// Records of `value_size` that fill about 4 MB of each of `partitions` partitions.
fn records_for(value_size: usize, partitions: i32) -> u64 {
    // Key, headers and record framing add about 70 bytes to each value in the mock broker's log; a mirror's
    // target placement by key can make one partition 10% fuller than the average.
    let per_partition = 4_000_000 / (value_size as u64 + 70);
    per_partition * partitions as u64
}

fn benchmark(cli: &Cli) {
    let operator = cli.operator.clone().unwrap_or_else(default_operator_path);
    assert!(
        operator.exists(),
        "no operator binary at {}: build it with `cargo build --release -p kafka-mirror-operator`, or run \
         `bash tests/benchmark.sh`, which does",
        operator.display()
    );
    let mut sizes = Vec::new();
    for &value_size in &cli.value_sizes {
        sizes.push(one_size(cli, value_size));
    }
    eprintln!("measuring the operator idle for {} s", cli.operator_seconds);
    let operator = operator_idle::measure(&operator, Duration::from_secs(cli.operator_seconds));
    let markdown = report::markdown(&report::machine(), cli_line(cli), &sizes, &operator);
    println!("{markdown}");
    if let Some(out) = &cli.out {
        std::fs::write(out, &markdown).unwrap();
        eprintln!("results written to {}", out.display());
    }
}

fn one_size(cli: &Cli, value_size: usize) -> SizeResult {
    let records = records_for(value_size, cli.partitions);
    let (bytes, bytes_without_headers) = alone::data_bytes(records, value_size);
    let partitions = cli.partitions.to_string();
    eprintln!(
        "{value_size}-byte values: {records} records, {bytes} bytes, {partitions} partitions"
    );
    let source = ClusterProcess::start(TOPIC, cli.partitions);
    let produce_args = |target: &str| -> Vec<String> {
        let mut args = vec![
            target.to_string(),
            TOPIC.into(),
            partitions.clone(),
            records.to_string(),
            value_size.to_string(),
        ];
        args.extend(cli.tuning.to_args());
        args
    };
    eprintln!("  loading the source");
    alone::run_role("produce", &produce_args(&source.bootstrap));
    // The first offsets the cluster still holds are above 0 when it trimmed records (the mock keeps 5 MiB per
    // partition), which would make every figure of the run wrong.
    let trimmed: i64 = source
        .watcher()
        .low()
        .expect("asking the source for its first offsets")
        .iter()
        .sum();
    assert_eq!(
        trimmed, 0,
        "the mock cluster trimmed {trimmed} records: use more partitions"
    );

    // Each round copies once of each kind, so a slow minute of the machine touches every kind alike.
    let mut rounds = Rounds::default();
    let mut last_target = None;
    for round in 1..=cli.rounds {
        eprintln!("  round {round} of {}", cli.rounds);
        rounds
            .consume
            .push(consume_alone(cli, &source, records, round));
        rounds
            .produce
            .push(produce_alone(cli.partitions, records, &produce_args));
        rounds.kcat.push(kcat_copy(
            cli.partitions,
            &source,
            records,
            bytes_without_headers,
        ));
        let (row, target) = mirror_copy(cli, &source, records, bytes, value_size, round);
        rounds.mirror.push(row);
        // The last round's target stays up for the latency measurement.
        if round == cli.rounds {
            last_target = Some(target);
        }
    }
    let target = last_target.expect("at least one round");
    let [consume, produce, kcat, mirror] = rounds.medians();

    // The latency has a worker of its own that mirrors only the fresh latency topic: the mock broker walks a
    // partition's log from its start on every fetch, and the preloaded partitions would slow every fetch.
    let worker = latency_worker(cli, &source, &target, value_size);

    // The lower rates first: should the half rate overrun the machine, the worker stops on records the
    // mock broker trimmed under it, and nothing could be measured after that.
    let half = cli
        .latency_rate
        .unwrap_or((mirror.records_per_s / 2.0) as u64);
    let mut latency = Vec::new();
    for (label, rate) in [
        ("a tenth of", half / 5),
        ("a quarter of", half / 2),
        ("half", half),
    ] {
        eprintln!(
            "  latency at {rate} records/s for {} s",
            cli.latency_seconds
        );
        let measured = latency::measure(
            &source,
            &target,
            rate,
            Duration::from_secs(cli.latency_seconds),
            value_size,
        );
        latency.push(LatencyPoint {
            label,
            rate,
            measured,
        });
    }
    worker.stop();
    SizeResult {
        value_size,
        records,
        bytes,
        consume,
        produce,
        kcat,
        mirror,
        latency,
    }
}

/// The rows of every round, per kind of copy.
#[derive(Default)]
struct Rounds {
    consume: Vec<Row>,
    produce: Vec<Row>,
    kcat: Vec<Row>,
    mirror: Vec<Row>,
}

impl Rounds {
    fn medians(self) -> [Row; 4] {
        [self.consume, self.produce, self.kcat, self.mirror].map(Row::median)
    }
}

fn consume_alone(cli: &Cli, source: &ClusterProcess, records: u64, round: usize) -> Row {
    eprintln!("    consume alone");
    let before = source.cpu();
    let (consumed, usage) = alone::run_role(
        "consume",
        &[
            vec![
                source.bootstrap.clone(),
                TOPIC.into(),
                format!("kafka-mirror-bench.consume-alone-{round}"),
                records.to_string(),
            ],
            cli.tuning.to_args(),
        ]
        .concat(),
    );
    assert_eq!(consumed.records, records);
    Row::new(
        "consume alone (limit)",
        records,
        consumed.bytes,
        consumed.seconds,
        usage,
        source.cpu() - before,
    )
}

fn produce_alone(partitions: i32, records: u64, produce_args: &dyn Fn(&str) -> Vec<String>) -> Row {
    eprintln!("    produce alone");
    let target = ClusterProcess::start(TOPIC, partitions);
    let (produced, usage) = alone::run_role("produce", &produce_args(&target.bootstrap));
    Row::new(
        "produce alone (limit)",
        records,
        produced.bytes,
        produced.seconds,
        usage,
        target.cpu(),
    )
}

fn kcat_copy(partitions: i32, source: &ClusterProcess, records: u64, bytes: u64) -> Row {
    eprintln!("    kcat pipeline");
    let target = ClusterProcess::start(TOPIC, partitions);
    let before = source.cpu();
    let (arrival, usage) = copies::kcat_pipeline(source, &target, records as i64);
    Row::new(
        "kcat -C \\| kcat -P (peer; no headers)",
        records,
        bytes,
        arrival.seconds,
        usage,
        source.cpu() - before + target.cpu(),
    )
}

/// The worker copying the data set to a fresh target, in its own consumer group, then stopped; returns the
/// target with the copy.
fn mirror_copy(
    cli: &Cli,
    source: &ClusterProcess,
    records: u64,
    bytes: u64,
    value_size: usize,
    round: usize,
) -> (Row, ClusterProcess) {
    eprintln!("    mirror-worker");
    let target = ClusterProcess::start(TOPIC, cli.partitions);
    let before = source.cpu();
    let mut worker = start_worker(
        cli,
        &format!("bench-{round}"),
        TOPIC,
        source,
        &target,
        &format!("{value_size}-{round}"),
    );
    let arrival = worker.copy(&target, records as i64);
    let row = Row::new(
        "mirror-worker",
        records,
        bytes,
        arrival.seconds,
        worker.usage_so_far(),
        source.cpu() - before + target.cpu(),
    );
    worker.stop();
    (row, target)
}

/// A worker mirroring only the latency topic, with every partition assigned.
fn latency_worker(
    cli: &Cli,
    source: &ClusterProcess,
    target: &ClusterProcess,
    value_size: usize,
) -> WorkerProcess {
    let mut worker = start_worker(
        cli,
        "bench-latency",
        cluster::LATENCY_TOPIC,
        source,
        target,
        &format!("latency-{value_size}"),
    );
    worker.wait_assigned(cluster::LATENCY_PARTITIONS);
    worker
}

/// A worker mirroring `topic` as the `KafkaMirror` `name` (its consumer group), its log kept in
/// target/benchmark-worker-`log_name`.log for a look at what it did (rebalances, warnings) during the run.
fn start_worker(
    cli: &Cli,
    name: &str,
    topic: &str,
    source: &ClusterProcess,
    target: &ClusterProcess,
    log_name: &str,
) -> WorkerProcess {
    let document = alone::document(
        name,
        &source.bootstrap,
        &target.bootstrap,
        topic,
        &cli.tuning,
    );
    let log = release_dir()
        .parent()
        .unwrap()
        .join(format!("benchmark-worker-{log_name}.log"));
    eprintln!("    the worker's log: {}", log.display());
    WorkerProcess::start(&document, log)
}

/// target/release: this binary is target/release/deps/mirror-<hash>.
fn release_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent()
        .and_then(|deps| deps.parent())
        .unwrap()
        .to_path_buf()
}

fn default_operator_path() -> PathBuf {
    release_dir().join("kafka-mirror-operator")
}

fn cli_line(cli: &Cli) -> String {
    let sizes: Vec<String> = cli.value_sizes.iter().map(usize::to_string).collect();
    format!(
        "--value-sizes {} --partitions {} --rounds {} {} --latency-seconds {} --operator-seconds {}",
        sizes.join(","),
        cli.partitions,
        cli.rounds,
        cli.tuning.to_args().join(" "),
        cli.latency_seconds,
        cli.operator_seconds
    )
}
