//! `mirror-worker demo`: the seed guide's setup on this machine. Two Kafka clusters (librdkafka's mock
//! cluster, in this process), a `testtopic` with 8 partitions, keyed records with headers, the real engine
//! mirroring them while more are written, live progress, and a record-by-record check of the copy.

use std::sync::Arc;
use std::time::{Duration, Instant};

use kafka_mirror_crds::KafkaMirror;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;
use tokio::task::JoinHandle;

use crate::observe::health::Health;
use crate::observe::metrics::{Metrics, TopicLabels};
use kafka_mirror_clients::MirrorPlan;
use kafka_mirror_clients::positions::GroupPositions;
use kafka_mirror_clients::secrets::Secrets;
use kafka_mirror_crds::worker_pod;
use kafka_mirror_samples::{self as samples, SampleRecord, Verification};

use crate::engine::Summary;
use crate::{Engine, EngineOptions, Error, Result};

/// What the demo does; the defaults follow the guide (`--partitions 8`, `--num.streams 4`).
#[derive(Debug, Clone)]
pub struct DemoOptions {
    pub records: u64,
    pub keys: u64,
    pub value_size: usize,
    pub partitions: i32,
    pub num_streams: i32,
    pub timeout: Duration,
}

impl Default for DemoOptions {
    fn default() -> Self {
        Self {
            records: 50_000,
            keys: 500,
            value_size: 100,
            partitions: 8,
            num_streams: 4,
            timeout: Duration::from_secs(120),
        }
    }
}

const TOPIC: &str = "testtopic";

/// One of the demo's two in-process clusters.
type DemoCluster = MockCluster<'static, DefaultProducerContext>;

/// The `KafkaMirror` the demo runs: what a user would write for the guide's MirrorMaker command.
fn demo_document(source: &str, target: &str, num_streams: i32) -> String {
    format!(
        r#"apiVersion: kafkamirror.io/v1alpha1
kind: KafkaMirror
metadata:
  name: demo
spec:
  source:
    bootstrapServers: "{source}"
    groupId: mirrorgroup
  target:
    bootstrapServers: "{target}"
    config:
      compression.type: none
  topics:
    include: ["{TOPIC}"]
    refreshIntervalSeconds: 5
    # librdkafka's in-process clusters do not answer DescribeConfigs, which copying topic configs reads.
    sync:
      configs: false
  numStreams: {num_streams}
"#
    )
}

/// Runs the demo, printing as it goes. Returns the verification of the copy.
pub async fn run(options: DemoOptions) -> Result<Verification> {
    let (source, target) = start_clusters(&options)?;
    let source_servers = source.bootstrap_servers();

    let first_batch = options.records * 2 / 3;
    let started = Instant::now();
    let seeded = samples::produce(
        &source_servers,
        TOPIC,
        0,
        first_batch,
        options.keys,
        options.value_size,
    )?;
    println!(
        "seeded {first_batch} keyed records with headers ({} keys, {} byte values) in {:.1}s",
        options.keys,
        options.value_size,
        started.elapsed().as_secs_f64()
    );

    let document = demo_document(
        &source_servers,
        &target.bootstrap_servers(),
        options.num_streams,
    );
    println!("\nmirror.yaml:\n{document}");
    let mirror: KafkaMirror = kafka_mirror_crds::parse_document(&document).map_err(|source| {
        kafka_mirror_clients::Error::Document {
            path: "<demo>".into(),
            source,
        }
    })?;
    let plan = MirrorPlan::from_resource(mirror, &Secrets::new(worker_pod::SECRETS_DIR))?;
    let positions = GroupPositions::new(&plan.source_admin, &plan.group_id)?;
    let metrics = Arc::new(Metrics::new());
    let health = Arc::new(Health::new(options.num_streams as usize));
    let engine = Engine::new(
        plan,
        EngineOptions {
            commit_interval: Duration::from_millis(500),
            ..Default::default()
        },
        metrics.clone(),
        health.clone(),
    );

    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let engine_task = tokio::spawn(engine.run(async move {
        let _ = stop_rx.await;
    }));

    // Write the rest while the mirror runs, as producers on the primary would.
    let (keys, value_size, total) = (options.keys, options.value_size, options.records);
    let second_batch = tokio::task::spawn_blocking(move || {
        std::thread::sleep(Duration::from_millis(500));
        samples::produce(&source_servers, TOPIC, first_batch, total, keys, value_size)
    });

    let progress = Progress {
        options: &options,
        positions: &positions,
        metrics: &metrics,
        health: &health,
    };
    let mirroring_started = Instant::now();
    let seeded = progress.until_caught_up(seeded, second_batch).await?;
    let seconds = mirroring_started.elapsed().as_secs_f64();
    let _ = stop_tx.send(());
    let summary = engine_task
        .await
        .map_err(|e| Error::Fatal(e.to_string()))??;

    let copy = tokio::task::block_in_place(|| {
        samples::read_all(
            &target.bootstrap_servers(),
            TOPIC,
            seeded.len(),
            Duration::from_secs(30),
        )
    })?;
    let verification = samples::verify(&seeded, &copy);
    println!();
    print!("{}", final_table(&summary, seconds, &verification));
    println!("verification: {verification}");
    Ok(verification)
}

/// The demo's result, one row per mirrored topic: what the engine copied, how fast, and what the
/// record-by-record check found on the target (the demo mirrors one topic, so the check is that topic's).
fn final_table(summary: &Summary, seconds: f64, v: &Verification) -> String {
    let header = [
        "TOPIC",
        "TARGET",
        "RECORDS",
        "MB",
        "SECONDS",
        "RECORDS/S",
        "ARRIVED",
        "LOST",
        "DUPLICATED",
        "OUT-OF-ORDER",
        "ALTERED",
    ];
    let mut rows = vec![header.map(String::from).to_vec()];
    for (topic, s) in &summary.topics {
        rows.push(vec![
            topic.clone(),
            s.target_topic.clone(),
            s.records.to_string(),
            format!("{:.1}", s.bytes as f64 / 1e6),
            format!("{seconds:.1}"),
            format!("{:.0}", s.records as f64 / seconds.max(f64::EPSILON)),
            format!("{}/{}", v.arrived, v.expected),
            v.lost.to_string(),
            v.duplicated.to_string(),
            v.keys_out_of_order.to_string(),
            v.altered.to_string(),
        ]);
    }
    let widths: Vec<usize> = (0..header.len())
        .map(|c| rows.iter().map(|r| r[c].len()).max().unwrap_or(0))
        .collect();
    let mut table = String::new();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        table.push_str(cells.join("  ").trim_end());
        table.push('\n');
    }
    table
}

/// The source and target clusters, three brokers each, with [`TOPIC`] on both.
fn start_clusters(options: &DemoOptions) -> Result<(DemoCluster, DemoCluster)> {
    let mock = |what: &str| {
        MockCluster::new(3).map_err(|source| Error::Kafka {
            what: format!("starting the {what} mock cluster"),
            source,
        })
    };
    let source = mock("source")?;
    let target = mock("target")?;
    let create = |cluster: &DemoCluster, which: &str| {
        cluster
            .create_topic(TOPIC, options.partitions, 3)
            .map_err(|source| Error::Kafka {
                what: format!("creating {TOPIC} on the {which} cluster"),
                source,
            })
    };
    create(&source, "source")?;
    // The guide's first option: pre-create the topic on the secondary cluster. (librdkafka's mock cluster has
    // no CreateTopics API; against a real cluster the mirror creates missing topics itself.)
    create(&target, "target")?;
    println!("source cluster (3 brokers): {}", source.bootstrap_servers());
    println!("target cluster (3 brokers): {}", target.bootstrap_servers());
    println!(
        "topic {TOPIC}: {} partitions on both clusters",
        options.partitions
    );
    Ok((source, target))
}

/// What the demo watches while the mirror runs.
struct Progress<'a> {
    options: &'a DemoOptions,
    positions: &'a GroupPositions,
    metrics: &'a Metrics,
    health: &'a Health,
}

impl Progress<'_> {
    /// Prints the mirror's progress every half second until the second batch is written and the mirror caught
    /// up with every record seeded. Returns every record seeded; fails on the mirror's fatal error or at the
    /// demo's timeout.
    async fn until_caught_up(
        &self,
        mut seeded: Vec<SampleRecord>,
        second_batch: JoinHandle<kafka_mirror_samples::Result<Vec<SampleRecord>>>,
    ) -> Result<Vec<SampleRecord>> {
        let options = self.options;
        let partitions: Vec<_> = (0..options.partitions)
            .map(|p| (TOPIC.to_string(), p))
            .collect();
        let deadline = Instant::now() + options.timeout;
        let mut last = (Instant::now(), 0u64);
        let mut second_batch = Some(second_batch);
        let mut line = ProgressLine::new();
        loop {
            tokio::time::sleep(Duration::from_millis(500)).await;
            if second_batch.as_ref().is_some_and(|t| t.is_finished()) {
                let more = second_batch
                    .take()
                    .expect("checked")
                    .await
                    .map_err(|e| Error::Fatal(e.to_string()))??;
                seeded.extend(more);
            }
            let mirrored = self
                .metrics
                .records_mirrored
                .get_or_create(&TopicLabels {
                    topic: TOPIC.into(),
                })
                .get();
            let lag: i64 = tokio::task::block_in_place(|| self.positions.positions(&partitions))?
                .values()
                .map(|p| p.lag())
                .sum();
            let now = Instant::now();
            let rate = (mirrored - last.1) as f64 / now.duration_since(last.0).as_secs_f64();
            last = (now, mirrored);
            let assigned = self.metrics.assigned_partitions.get();
            // Ready only once the group gave out the partitions: before that nothing is being copied.
            let state = match self.health.ready() {
                Err(why) => format!("not ready: {why}"),
                Ok(()) if assigned == 0 => "joining the consumer group".to_string(),
                Ok(()) => "mirroring".to_string(),
            };
            line.show(&format!(
                "mirrored {mirrored:>7} of {:>7} records  {rate:>9.0} records/s  lag {lag:>6}  partitions {assigned}/{}  {state}",
                seeded.len().max(options.records as usize),
                options.partitions,
            ));
            if second_batch.is_none() && lag == 0 && mirrored >= seeded.len() as u64 {
                line.finish();
                return Ok(seeded);
            }
            if let Some(reason) = self.health.fatal() {
                line.finish();
                return Err(Error::Fatal(reason));
            }
            if now > deadline {
                line.finish();
                return Err(Error::Fatal(format!(
                    "the demo did not catch up within {:?} (lag {lag})",
                    options.timeout
                )));
            }
        }
    }
}

/// The demo's progress: on a terminal one line rewritten in place; elsewhere (a pipe, a CI log) a line every
/// few seconds, so a log file does not fill with twice a second's updates.
struct ProgressLine {
    terminal: bool,
    last_printed: Option<Instant>,
    pending: Option<String>,
}

impl ProgressLine {
    /// How often a line is printed when stdout is not a terminal.
    const PLAIN_EVERY: Duration = Duration::from_secs(2);

    fn new() -> Self {
        use std::io::IsTerminal;
        Self {
            terminal: std::io::stdout().is_terminal(),
            last_printed: None,
            pending: None,
        }
    }

    fn show(&mut self, text: &str) {
        use std::io::Write;
        if self.terminal {
            // Carriage return and erase-line: the same line, rewritten.
            print!("\r\x1b[2K{text}");
            let _ = std::io::stdout().flush();
        } else if self
            .last_printed
            .is_none_or(|at| at.elapsed() >= Self::PLAIN_EVERY)
        {
            println!("{text}");
            self.last_printed = Some(Instant::now());
            self.pending = None;
        } else {
            self.pending = Some(text.to_string());
        }
    }

    /// Ends the progress: the terminal's line stays, a plain log gets the last state it had not printed.
    fn finish(&mut self) {
        if self.terminal {
            println!();
        } else if let Some(text) = self.pending.take() {
            println!("{text}");
        }
    }
}
