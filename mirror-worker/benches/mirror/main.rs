//! The throughput, memory and latency benchmark (issues 6 and 17), on Apache Kafka. One run measures, for each
//! record size, on a source and a target Apache Kafka cluster (JVM processes of their own, from the test kit):
//! the limits (the client library consuming the data alone and producing it alone, with the worker's
//! settings), the peers (Debian's kcat as a consume | produce pipeline; MirrorMaker 1 exactly as the seed guide
//! runs it; MirrorMaker 2 in dedicated mode) and mirror-worker doing the same copy, in interleaved rounds; then
//! each mirror's end-to-end latency at a tenth, a quarter and half of its own maximum rate; and the operator's
//! idle memory. Run it with `bash tests/benchmark.sh`; the results are written as Markdown for BENCHMARKS.md.

mod alone;
mod cluster;
mod copies;
mod growth;
mod latency;
mod load;
mod measure;
mod operator_idle;
mod operator_scale;
mod peers;
mod report;

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};
use kafka_mirror_crds::Delivery;

use crate::alone::Tuning;
use crate::cluster::ClusterProcess;
use crate::copies::WorkerProcess;
use crate::peers::Peer;
use crate::report::{Kind, LatencyPoint, Row, SizeResult};

// The limits run on the worker's allocator, so the comparison is of the same build.
kafka_mirror_runtime::use_jemalloc!();

const TOPIC: &str = "bench";

#[derive(Parser, Debug)]
#[command(about = "kafka-mirror's throughput, memory and latency benchmark")]
struct Cli {
    #[command(subcommand)]
    role: Option<Role>,
    /// Value sizes in bytes, one benchmark each; `none` leaves the size tables out (e.g. to run the growth
    /// section alone).
    #[arg(long, value_delimiter = ',', default_value = "100,1000", value_parser = value_size)]
    value_sizes: Vec<Option<usize>>,
    /// Source (and target) partitions.
    #[arg(long, default_value_t = 64)]
    partitions: i32,
    /// KB of records (key, value, headers and framing) per partition in each size's data set.
    #[arg(long, default_value_t = 4000)]
    partition_kb: u64,
    /// Source partition counts of the section on how the worker's cost grows with partitions (one topic of N
    /// partitions, and N/10 topics of 10); default 10,100,1000,5000 (10,100 with --quick); empty or `none`
    /// leaves it out.
    #[arg(long, value_delimiter = ',')]
    growth_partitions: Vec<String>,
    #[command(flatten)]
    tuning: Tuning,
    /// Rounds of the copies, interleaved; each row reports the round with the median records/s.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Seconds of paced load for each latency measurement; at least 2, since records sent in the first second
    /// are left out as warm-up.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(latency::SHORTEST_SECONDS..))]
    latency_seconds: u64,
    /// Records/s of the latency measurement (half; a quarter and a tenth are derived), instead of half of each
    /// copy's own measured maximum.
    #[arg(long)]
    latency_rate: Option<u64>,
    /// The exactly-once worker's latency is also measured with these `--commit-interval`s (seconds), at a
    /// quarter of its maximum rate; `none`: only with its default.
    #[arg(long, value_delimiter = ',', default_value = "0.1,0.5", value_parser = commit_interval)]
    eos_commit_intervals: Vec<Option<f64>>,
    /// Rows to leave out (consume, produce, kcat, mm1, mm2, worker, worker-eos), e.g. for a look at one peer.
    #[arg(long, value_delimiter = ',')]
    skip: Vec<String>,
    /// Seconds the operator runs idle before its memory is read.
    #[arg(long, default_value_t = 20)]
    operator_seconds: u64,
    /// The operator on the test kit's control plane with these many KafkaMirrors of 100 partitions each, in
    /// ascending steps (`--skip operator-scale` leaves the section out).
    #[arg(long, value_delimiter = ',', default_value = "1,10,100")]
    operator_mirrors: Vec<usize>,
    /// Seconds each step of `--operator-mirrors` is measured for.
    #[arg(long, default_value_t = 60)]
    operator_window: u64,
    /// A smoke run: 500 KB per partition, one round, 3 s of latency load, 5 s of idle operator.
    #[arg(long)]
    quick: bool,
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
    Consume {
        source: String,
        topic: String,
        /// A group of its own per round, so every round reads from the start.
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
    let mut cli = Cli::parse_from(std::env::args().filter(|a| a != "--bench"));
    match cli.role {
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
        None => {
            if cli.quick {
                cli.partition_kb = cli.partition_kb.min(500);
                cli.rounds = 1;
                cli.latency_seconds = cli.latency_seconds.min(3);
                cli.operator_seconds = cli.operator_seconds.min(5);
                cli.operator_mirrors.retain(|&n| n <= 10);
                cli.operator_window = cli.operator_window.min(30);
            }
            // The brokers run with Kafka's own server heap and JVM options (see `cluster`): the test kit's
            // cluster script reads these. Set before any thread starts.
            for (name, value) in [
                ("KMIRROR_KAFKA_HEAP", cluster::BROKER_HEAP),
                (
                    "KMIRROR_KAFKA_JVM_OPTS",
                    cluster::KAFKA_JVM_PERFORMANCE_OPTS,
                ),
            ] {
                if std::env::var_os(name).is_none() {
                    // SAFETY: single-threaded at this point; nothing reads the environment concurrently.
                    unsafe { std::env::set_var(name, value) };
                }
            }
            benchmark(&cli)
        }
    }
}

/// Records of `value_size` that fill about `partition_kb` KB of each of `partitions` partitions.
fn records_for(value_size: usize, partitions: i32, partition_kb: u64) -> u64 {
    // Key, headers and record framing add about 70 bytes to each value.
    let per_partition = partition_kb * 1000 / (value_size as u64 + 70);
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
    // Both peers installed before any cluster starts (a first install takes a minute of Maven).
    for peer in [Peer::Mm1, Peer::Mm2] {
        if !cli.skips(Kind::of_peer(peer)) {
            peer.libs();
        }
    }
    let source = ClusterProcess::start("source");
    let target = ClusterProcess::start("target");
    let mut sizes = Vec::new();
    for &value_size in cli.value_sizes.iter().flatten() {
        sizes.push(one_size(cli, &source, &target, value_size));
    }
    let growth = growth::measure(
        &growth::counts(&cli.growth_partitions, cli.quick),
        &source,
        &target,
        &cli.tuning,
    );
    let operator_scale = if cli.skip.iter().any(|s| s == "operator-scale") {
        String::new()
    } else {
        operator_scale::measure(
            &operator,
            &source,
            &target,
            &cli.operator_mirrors,
            Duration::from_secs(cli.operator_window),
        )
    };
    drop((source, target));
    eprintln!("measuring the operator idle for {} s", cli.operator_seconds);
    let operator = operator_idle::measure(&operator, Duration::from_secs(cli.operator_seconds));
    let mut markdown = report::markdown(&report::machine(), cli_line(cli), &sizes, &operator);
    if !operator_scale.is_empty() {
        markdown = format!("{}\n\n{operator_scale}", markdown.trim_end());
    }
    if !growth.is_empty() {
        markdown = format!("{}\n\n{growth}", markdown.trim_end());
    }
    println!("{markdown}");
    if let Some(out) = &cli.out {
        std::fs::write(out, &markdown).unwrap();
        eprintln!("results written to {}", out.display());
    }
}

impl Cli {
    fn skips(&self, kind: Kind) -> bool {
        self.skip.iter().any(|s| s == kind.key())
    }
}

/// The CPU the two brokers used over a span.
struct BrokerCpu<'a> {
    clusters: [&'a ClusterProcess; 2],
    before: Duration,
}

impl<'a> BrokerCpu<'a> {
    fn start(source: &'a ClusterProcess, target: &'a ClusterProcess) -> BrokerCpu<'a> {
        let clusters = [source, target];
        let before = clusters.iter().map(|c| c.cpu()).sum();
        BrokerCpu { clusters, before }
    }

    fn used(&self) -> Duration {
        self.clusters.iter().map(|c| c.cpu()).sum::<Duration>() - self.before
    }
}

fn one_size(
    cli: &Cli,
    source: &ClusterProcess,
    target: &ClusterProcess,
    value_size: usize,
) -> SizeResult {
    let records = records_for(value_size, cli.partitions, cli.partition_kb);
    let (bytes, bytes_without_headers) = alone::data_bytes(records, value_size);
    let topic = format!("{TOPIC}-{value_size}");
    eprintln!(
        "{value_size}-byte values: {records} records, {bytes} bytes, {} partitions",
        cli.partitions
    );
    let produce_args = |bootstrap: &str| -> Vec<String> {
        let mut args = vec![
            bootstrap.to_string(),
            topic.clone(),
            cli.partitions.to_string(),
            records.to_string(),
            value_size.to_string(),
        ];
        args.extend(cli.tuning.to_args());
        args
    };
    eprintln!("  loading the source");
    source.fresh_topic(&topic, cli.partitions);
    alone::run_role("produce", &produce_args(&source.bootstrap));
    // The same load once to the target, not measured: a broker JVM compiles its hot paths during its first
    // seconds of load, and without this the first copy of the first round would measure that.
    eprintln!("  warming the target up");
    target.fresh_topic(&topic, cli.partitions);
    alone::run_role("produce", &produce_args(&target.bootstrap));
    target.delete_topic(&topic);

    // Each round copies once of each kind, so a slow minute of the machine touches every kind alike.
    let mut rounds: Vec<(Kind, Vec<Row>)> = Kind::ALL
        .iter()
        .filter(|k| !cli.skips(**k))
        .map(|k| (*k, Vec::new()))
        .collect();
    let copy = DataSet {
        cli,
        source,
        target,
        topic: &topic,
        records,
        bytes,
        bytes_without_headers,
        value_size,
    };
    for round in 1..=cli.rounds {
        eprintln!("  round {round} of {}", cli.rounds);
        for (kind, rows) in rounds.iter_mut() {
            rows.push(copy.run(*kind, round, &produce_args));
        }
    }
    let rows: Vec<(Kind, Row)> = rounds
        .into_iter()
        .map(|(kind, rows)| (kind, Row::median(rows)))
        .collect();

    // Each mirror's latency on a fresh, empty topic of its own (the preloaded one would be copied first).
    let mut latency = Vec::new();
    let mut commit_intervals = Vec::new();
    for (kind, row) in &rows {
        if kind.is_mirror() {
            let run = WorkerRun::of(*kind);
            latency.push((
                *kind,
                copy.latency(*kind, run, row.records_per_s, &FRACTIONS),
            ));
        }
        if *kind == Kind::WorkerExactlyOnce {
            for &seconds in cli.eos_commit_intervals.iter().flatten() {
                let run = WorkerRun {
                    commit_interval: Some(seconds),
                    ..WorkerRun::of(*kind)
                };
                let mut points = copy.latency(*kind, run, row.records_per_s, &FRACTIONS[1..2]);
                commit_intervals.push((seconds, points.remove(0)));
            }
        }
    }
    SizeResult {
        value_size,
        records,
        bytes,
        rows,
        latency,
        commit_intervals,
    }
}

/// One size's data set on the source, and how to copy it.
struct DataSet<'a> {
    cli: &'a Cli,
    source: &'a ClusterProcess,
    target: &'a ClusterProcess,
    topic: &'a str,
    records: u64,
    bytes: u64,
    bytes_without_headers: u64,
    value_size: usize,
}

impl DataSet<'_> {
    fn run(&self, kind: Kind, round: usize, produce_args: &dyn Fn(&str) -> Vec<String>) -> Row {
        eprintln!("    {}", kind.label());
        let (cli, source, target, topic) = (self.cli, self.source, self.target, self.topic);
        let partitions = cli.partitions;
        let tag = format!("{}-r{round}", self.value_size);
        let log = |what: &str| {
            let log = release_dir()
                .parent()
                .unwrap()
                .join(format!("benchmark-{what}-{tag}.log"));
            eprintln!("      its log: {}", log.display());
            log
        };
        // Every copy but MirrorMaker 2's writes to a fresh target topic of the source topic's name.
        let target_topic = match kind {
            Kind::Mm2 => peers::mm2_target_topic(&format!("src{}r{round}", self.value_size), topic),
            _ => topic.to_string(),
        };
        if kind != Kind::Consume {
            target.fresh_topic(&target_topic, partitions);
        }
        let brokers = BrokerCpu::start(source, target);
        let (bytes, seconds, usage, visible_seconds) = match kind {
            Kind::Consume => {
                let (consumed, usage) = alone::run_role(
                    "consume",
                    &[
                        vec![
                            source.bootstrap.clone(),
                            topic.to_string(),
                            format!("kafka-mirror-bench.consume-alone-{tag}"),
                            self.records.to_string(),
                        ],
                        cli.tuning.to_args(),
                    ]
                    .concat(),
                );
                assert_eq!(consumed.records, self.records);
                (consumed.bytes, consumed.seconds, usage, None)
            }
            Kind::Produce => {
                let (produced, usage) =
                    alone::run_role("produce", &produce_args(&target.bootstrap));
                (produced.bytes, produced.seconds, usage, None)
            }
            Kind::Kcat => {
                let (arrival, usage) =
                    copies::kcat_pipeline(source, target, topic, partitions, self.records as i64);
                (self.bytes_without_headers, arrival.seconds, usage, None)
            }
            Kind::Mm1 | Kind::Mm2 => {
                let (peer, setup) = if kind == Kind::Mm1 {
                    let group = format!("mirrorgroup-{tag}");
                    // The guide starts MirrorMaker before the data arrives; here the data is there first, so
                    // the group starts with the beginning committed (see `commit_beginning`).
                    source.commit_beginning(&group, topic, partitions);
                    let setup =
                        peers::mm1_setup(&source.bootstrap, &target.bootstrap, &group, topic);
                    (Peer::Mm1, setup)
                } else {
                    let alias = format!("src{}r{round}", self.value_size);
                    let setup =
                        peers::mm2_setup(&source.bootstrap, &target.bootstrap, &alias, topic);
                    (Peer::Mm2, setup)
                };
                let (arrival, mut usage) = peers::copy(
                    peer,
                    &setup,
                    log(kind.key()),
                    target,
                    &target_topic,
                    partitions,
                    self.records as i64,
                );
                usage.cpu = usage.cpu.saturating_sub(arrival.cpu_at_first);
                (self.bytes, arrival.seconds, usage, None)
            }
            Kind::Worker | Kind::WorkerExactlyOnce => {
                let name = format!("bench-{}-{tag}", kind.key());
                let mut worker = start_worker(
                    cli,
                    WorkerRun::of(kind),
                    &name,
                    topic,
                    source,
                    target,
                    &log(kind.key()),
                );
                let (arrival, visible_seconds) = if kind == Kind::Worker {
                    let arrival =
                        worker.copy(target, &target_topic, partitions, self.records as i64);
                    (arrival, None)
                } else {
                    let copied = worker.copy_committed(
                        source,
                        target,
                        topic,
                        partitions,
                        self.records as i64,
                    );
                    let committed = copies::count_committed(target, &target_topic, partitions);
                    assert_eq!(
                        committed, self.records,
                        "a read_committed reader of the exactly-once copy counted {committed} records of {}",
                        self.records
                    );
                    (copied.written, Some(copied.visible_seconds))
                };
                let mut usage = worker.usage_so_far();
                usage.cpu = usage.cpu.saturating_sub(arrival.cpu_at_first);
                worker.stop();
                (self.bytes, arrival.seconds, usage, visible_seconds)
            }
        };
        let broker_cpu = brokers.used();
        if kind != Kind::Consume {
            target.delete_topic(&target_topic);
        }
        let mut row = Row::new(
            kind.label(),
            self.records,
            bytes,
            seconds,
            usage,
            broker_cpu,
        );
        row.visible_seconds = visible_seconds;
        row
    }

    /// The mirror `kind` (a worker run as `run` says) on a fresh topic, at `fractions` of `max_rate`.
    fn latency(
        &self,
        kind: Kind,
        run: WorkerRun,
        max_rate: f64,
        fractions: &[(&'static str, f64)],
    ) -> Vec<LatencyPoint> {
        let (cli, source, target) = (self.cli, self.source, self.target);
        let partitions = cli.partitions;
        let source_topic = format!("latency-{}-{}", self.value_size, kind.key());
        let alias = format!("lat{}", self.value_size);
        let target_topic = match kind {
            Kind::Mm2 => peers::mm2_target_topic(&alias, &source_topic),
            _ => source_topic.clone(),
        };
        source.fresh_topic(&source_topic, partitions);
        target.fresh_topic(&target_topic, partitions);
        let interval = run
            .commit_interval
            .map_or(String::new(), |s| format!("-commit-{s}s"));
        let log = release_dir().parent().unwrap().join(format!(
            "benchmark-{}{interval}-latency-{}.log",
            kind.key(),
            self.value_size
        ));
        eprintln!("  latency of {} (its log: {})", kind.label(), log.display());
        enum Running {
            Worker(WorkerProcess),
            Peer(peers::PeerProcess),
        }
        let running = match kind {
            Kind::Worker | Kind::WorkerExactlyOnce => Running::Worker(start_worker(
                cli,
                run,
                &format!("bench-latency-{}-{}{interval}", kind.key(), self.value_size),
                &source_topic,
                source,
                target,
                &log,
            )),
            Kind::Mm1 => Running::Peer(peers::PeerProcess::start(
                Peer::Mm1,
                // A fresh group: MirrorMaker 1 starts at the end of the topic, as in the guide.
                &peers::mm1_setup(
                    &source.bootstrap,
                    &target.bootstrap,
                    &format!("mirrorgroup-latency-{}", self.value_size),
                    &source_topic,
                ),
                log,
            )),
            Kind::Mm2 => Running::Peer(peers::PeerProcess::start(
                Peer::Mm2,
                &peers::mm2_setup(&source.bootstrap, &target.bootstrap, &alias, &source_topic),
                log,
            )),
            _ => unreachable!("only mirrors have a latency"),
        };
        let pipeline = latency::Pipeline {
            source,
            source_topic: &source_topic,
            target,
            target_topic: &target_topic,
            partitions,
        };
        // `--latency-rate` stands for half the maximum.
        let max_rate = cli.latency_rate.map_or(max_rate, |half| half as f64 * 2.0);
        let mut points = Vec::new();
        for &(label, fraction) in fractions {
            let rate = (max_rate * fraction) as u64;
            eprintln!("    at {rate} records/s for {} s", cli.latency_seconds);
            let measured = latency::measure(
                &pipeline,
                rate,
                Duration::from_secs(cli.latency_seconds),
                self.value_size,
            );
            points.push(LatencyPoint {
                label,
                rate,
                measured,
            });
        }
        match running {
            Running::Worker(worker) => worker.stop(),
            Running::Peer(peer) => peer.stop(),
        }
        target.delete_topic(&target_topic);
        source.delete_topic(&source_topic);
        points
    }
}

/// A `--value-sizes` entry: bytes above 0, or `none`.
fn value_size(value: &str) -> Result<Option<usize>, String> {
    above_zero_or_none(value, "bytes")
}

/// An `--eos-commit-intervals` entry: seconds above 0, or `none`.
fn commit_interval(value: &str) -> Result<Option<f64>, String> {
    above_zero_or_none(value, "seconds")
}

/// A list entry that is a number of `unit` above 0, or `none` (or empty): what leaves the measurement out.
fn above_zero_or_none<T: std::str::FromStr + PartialOrd + Default>(
    value: &str,
    unit: &str,
) -> Result<Option<T>, String> {
    match value {
        "" | "none" => Ok(None),
        number => match number.parse::<T>() {
            Ok(n) if n > T::default() => Ok(Some(n)),
            _ => Err(format!(
                "{number:?} is not a number of {unit} above 0, nor `none`"
            )),
        },
    }
}

/// The fractions of a mirror's maximum rate its latency is measured at; the lower rates first: a copy that
/// cannot keep up with the half rate falls behind for good.
const FRACTIONS: [(&str, f64); 3] = [("a tenth of", 0.1), ("a quarter of", 0.25), ("half", 0.5)];

/// How a benchmark worker runs: its `delivery`, and `--commit-interval` when not the worker's default.
#[derive(Clone, Copy)]
struct WorkerRun {
    delivery: Delivery,
    commit_interval: Option<f64>,
}

impl WorkerRun {
    /// The worker row `kind` stands for, with the worker's defaults (at-least-once for the peers' rows, unused).
    fn of(kind: Kind) -> WorkerRun {
        let delivery = match kind {
            Kind::WorkerExactlyOnce => Delivery::ExactlyOnce,
            _ => Delivery::AtLeastOnce,
        };
        WorkerRun {
            delivery,
            commit_interval: None,
        }
    }
}

/// A worker mirroring `topic` as the `KafkaMirror` `name` (its consumer group), its log kept in `log` for a look
/// at what it did (rebalances, warnings) during the run.
fn start_worker(
    cli: &Cli,
    run: WorkerRun,
    name: &str,
    topic: &str,
    source: &ClusterProcess,
    target: &ClusterProcess,
    log: &std::path::Path,
) -> WorkerProcess {
    let document = alone::document(
        name,
        &source.bootstrap,
        &target.bootstrap,
        topic,
        &cli.tuning,
    )
    .delivery(run.delivery);
    WorkerProcess::start(&document, run.commit_interval, log.to_path_buf())
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
    let sizes: Vec<String> = cli
        .value_sizes
        .iter()
        .map(|s| s.map_or("none".into(), |s| s.to_string()))
        .collect();
    let intervals: Vec<String> = cli
        .eos_commit_intervals
        .iter()
        .map(|s| s.map_or("none".into(), |s| s.to_string()))
        .collect();
    let mut line = format!(
        "--value-sizes {} --partitions {} --partition-kb {} --rounds {} {} --latency-seconds {} \
         --eos-commit-intervals {} --operator-seconds {} --operator-mirrors {} --operator-window {}",
        sizes.join(","),
        cli.partitions,
        cli.partition_kb,
        cli.rounds,
        cli.tuning.to_args().join(" "),
        cli.latency_seconds,
        intervals.join(","),
        cli.operator_seconds,
        cli.operator_mirrors
            .iter()
            .map(usize::to_string)
            .collect::<Vec<_>>()
            .join(","),
        cli.operator_window
    );
    if let Some(rate) = cli.latency_rate {
        line.push_str(&format!(" --latency-rate {rate}"));
    }
    if !cli.skip.is_empty() {
        line.push_str(&format!(" --skip {}", cli.skip.join(",")));
    }
    line.push_str(&format!(
        " --growth-partitions {}",
        match growth::counts(&cli.growth_partitions, cli.quick) {
            counts if counts.is_empty() => "none".to_string(),
            counts => counts
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(","),
        }
    ));
    line
}
