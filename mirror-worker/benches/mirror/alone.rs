//! The limits: the client library consuming the source data alone and producing it to the target alone, each
//! with the settings the worker itself uses (its defaults, then the guarantees it forces), in a process of its
//! own so its CPU and memory are measured like the worker's.

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use kafka_mirror_clients::MirrorPlan;
use kafka_mirror_clients::host_aliases::ResolvingContext;
use kafka_mirror_clients::secrets::Secrets;
use kafka_mirror_samples as samples;
use kafka_mirror_tests::document::{Connection, MirrorDocument};
use mirror_worker::{consumer_config, producer_config};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};

use crate::load::{self, record_bytes};
use crate::measure::{self, RoleReport, Usage};

/// What the benchmark may vary in the `KafkaMirror`: the number of streams and pass-through client settings.
#[derive(clap::Args, Debug, Clone)]
pub struct Tuning {
    /// The worker's spec.numStreams (and the consume-alone consumers).
    #[arg(long, default_value_t = 1)]
    pub num_streams: u32,
    /// A spec.source.config entry, KEY=VALUE (repeatable); the consume-alone limit uses it too.
    #[arg(long, value_name = "KEY=VALUE")]
    pub source_config: Vec<String>,
    /// A spec.target.config entry, KEY=VALUE (repeatable); the produce-alone limit uses it too.
    #[arg(long, value_name = "KEY=VALUE")]
    pub target_config: Vec<String>,
}

impl Tuning {
    /// The same tuning as arguments, for a role process.
    pub fn to_args(&self) -> Vec<String> {
        let mut args = vec!["--num-streams".to_string(), self.num_streams.to_string()];
        for (flag, entries) in [
            ("--source-config", &self.source_config),
            ("--target-config", &self.target_config),
        ] {
            for entry in entries {
                args.extend([flag.to_string(), entry.clone()]);
            }
        }
        args
    }
}

/// `KEY=VALUE` entries of the command line as a cluster section's `config`.
fn with_config(connection: Connection, entries: &[String]) -> Connection {
    entries.iter().fold(connection, |connection, entry| {
        let (key, value) = entry
            .split_once('=')
            .unwrap_or_else(|| panic!("{entry}: expected KEY=VALUE"));
        connection.config(key, value)
    })
}

/// The `KafkaMirror` the benchmark mirrors `topic` with; the limits take their client settings from the same
/// plan. `name` decides its consumer group, so every round mirrors from the start.
pub fn document(
    name: &str,
    source: &str,
    target: &str,
    topic: &str,
    tuning: &Tuning,
) -> MirrorDocument {
    MirrorDocument::new(
        name,
        with_config(Connection::new(source), &tuning.source_config),
        with_config(Connection::new(target), &tuning.target_config),
    )
    .include(topic)
    .num_streams(tuning.num_streams as i32)
}

/// Where a limit's plan points the side it does not use (a mirror onto its own cluster is refused).
const UNUSED_SIDE: &str = "127.0.0.1:1";

pub fn plan(source: &str, target: &str, topic: &str, tuning: &Tuning) -> MirrorPlan {
    let mirror = kafka_mirror_crds::parse_document(
        &document("bench", source, target, topic, tuning).to_yaml(),
    )
    .expect("the benchmark document is valid");
    MirrorPlan::from_resource(mirror, &Secrets::new("/nonexistent")).expect("the benchmark plan")
}

/// Role: consume `records` records of `topic` with `num_streams` consumers in one group, as the worker's
/// streams do, touching key, value and headers of each; reports from the first record to the last.
pub fn consume_role(source: &str, topic: &str, group: &str, records: u64, tuning: &Tuning) {
    let plan = plan(source, UNUSED_SIDE, topic, tuning);
    let seen = Arc::new(AtomicU64::new(0));
    let bytes = Arc::new(AtomicU64::new(0));
    let first = Arc::new(std::sync::OnceLock::<Instant>::new());
    let threads: Vec<_> = (0..tuning.num_streams as usize)
        .map(|stream| {
            let config = consumer_config(
                plan.source_consumer.clone(),
                stream,
                group,
                Duration::from_secs(5),
            );
            let (seen, bytes, first) = (seen.clone(), bytes.clone(), first.clone());
            let topic = topic.to_string();
            std::thread::spawn(move || {
                let consumer: BaseConsumer<ResolvingContext> =
                    config.create().expect("creating the consumer");
                consumer.subscribe(&[&topic]).unwrap();
                let deadline = Instant::now() + Duration::from_secs(300);
                while seen.load(Ordering::Relaxed) < records {
                    assert!(
                        Instant::now() < deadline,
                        "consume alone read {} of {records} records in 300 s",
                        seen.load(Ordering::Relaxed)
                    );
                    let Some(Ok(message)) = consumer.poll(Duration::from_millis(100)) else {
                        continue;
                    };
                    first.get_or_init(Instant::now);
                    let headers = message.headers().map_or(0, |h| {
                        h.iter()
                            .map(|h| h.key.len() + h.value.map_or(0, <[u8]>::len))
                            .sum()
                    });
                    let size = message.key().map_or(0, <[u8]>::len)
                        + message.payload().map_or(0, <[u8]>::len)
                        + headers;
                    bytes.fetch_add(size as u64, Ordering::Relaxed);
                    seen.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    let last = Instant::now();
    RoleReport {
        records: seen.load(Ordering::Relaxed),
        bytes: bytes.load(Ordering::Relaxed),
        seconds: (last - *first.get().unwrap()).as_secs_f64(),
    }
    .print();
}

/// Role: produce the data set to `topic` with the worker's producer settings.
pub fn produce_role(
    target: &str,
    topic: &str,
    partitions: i32,
    records: u64,
    value_size: usize,
    tuning: &Tuning,
) {
    let plan = plan(UNUSED_SIDE, target, topic, tuning);
    let data = load::generate(records, value_size);
    load::produce_all(
        // The benchmark's clusters advertise loopback addresses: no hostAliases to resolve through.
        producer_config(plan.target_producer).client_config(),
        topic,
        partitions,
        &data,
    )
    .print();
}

/// Runs this binary in `role` with `args` and returns its report and what it cost.
pub fn run_role(role: &str, args: &[String]) -> (RoleReport, Usage) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .arg(role)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("starting a role process");
    let mut stdout = String::new();
    std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut stdout).unwrap();
    let usage = measure::reap(child, role);
    (RoleReport::parse(&stdout), usage)
}

/// Bytes of the data set as the figures count them: with headers, and without (what kcat carries).
pub fn data_bytes(records: u64, value_size: usize) -> (u64, u64) {
    (0..records)
        .map(|n| samples::sample(n, load::KEYS, value_size))
        .fold((0, 0), |(all, bare), r| {
            (
                all + record_bytes(&r),
                bare + (r.key.len() + r.value.len()) as u64,
            )
        })
}
