//! How the worker's cost grows with partitions (issue 17, item 2): the same small data set spread over 10, 100,
//! 1,000 and 5,000 source partitions, laid out as one topic of N partitions and as N/10 topics of 10 partitions,
//! copied by the release `mirror-worker` with its defaults. A fixed number of records in all, so that what grows
//! from row to row is the per-partition (and per-topic) overhead, not the data. Per row: the worker's peak RSS
//! (VmHWM over its whole life), its RSS and CPU while idle after the copy, its start-up (start to first record
//! on the target) and the copy itself (first record to last) as in the size tables above.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use kafka_mirror_crds::Delivery;
use kafka_mirror_samples as samples;
use kafka_mirror_tests::Launch;
use kafka_mirror_tests::positions::{GroupOffsets, Watermarks};
use kafka_mirror_tests::records::client_config;
use rdkafka::producer::ThreadedProducer;

use crate::alone::{self, Tuning};
use crate::cluster::{BrokerFiles, ClusterProcess};
use crate::load::{self, Acks};
use crate::measure;

/// Records in every row's data set, in all partitions together.
pub const RECORDS: u64 = 200_000;
/// Their value size, in bytes.
pub const VALUE_SIZE: usize = 100;
/// Partitions of each topic of the many-topics layout.
pub const MANY_TOPICS_PARTITIONS: i32 = 10;
/// How long the worker runs idle after the copy before its idle RSS and CPU are read.
const IDLE: Duration = Duration::from_secs(10);
/// How long a row's copy may take.
const COPY_TIMEOUT: Duration = Duration::from_secs(300);
/// The peak RSS goal of issue 17 at 5,000 partitions.
const GOAL_MIB: f64 = 256.0;
const GOAL_PARTITIONS: usize = 5000;

/// The partition counts of `--growth-partitions`: by default 10, 100, 1,000 and 5,000 (10 and 100 for a quick
/// run); empty or `none` leaves the section out.
pub fn counts(given: &[String], quick: bool) -> Vec<usize> {
    if given.is_empty() {
        return if quick {
            vec![10, 100]
        } else {
            vec![10, 100, 1000, 5000]
        };
    }
    given
        .iter()
        .map(|v| v.trim())
        .filter(|v| !v.is_empty() && *v != "none")
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("--growth-partitions: {v} is not a number"))
        })
        .collect()
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Layout {
    /// One topic of N partitions.
    OneTopic,
    /// N/10 topics of 10 partitions.
    ManyTopics,
    /// One topic of N partitions mirrored with `delivery: exactlyOnce`: a transactional producer per transaction
    /// group (at most 16).
    OneTopicExactlyOnce,
    /// N/10 topics of 10 partitions with `delivery: exactlyOnce`: each group's producer writes to every topic
    /// (librdkafka keeps a state per partition of every topic a producer writes to).
    ManyTopicsExactlyOnce,
}

impl Layout {
    fn key(self) -> &'static str {
        match self {
            Layout::OneTopic => "one",
            Layout::ManyTopics => "many",
            Layout::OneTopicExactlyOnce => "one-eos",
            Layout::ManyTopicsExactlyOnce => "many-eos",
        }
    }

    fn exactly_once(self) -> bool {
        matches!(
            self,
            Layout::OneTopicExactlyOnce | Layout::ManyTopicsExactlyOnce
        )
    }

    /// (topics, partitions of each) for `n` partitions in all.
    fn shape(self, n: usize) -> (usize, i32) {
        match self {
            Layout::OneTopic | Layout::OneTopicExactlyOnce => (1, n as i32),
            Layout::ManyTopics | Layout::ManyTopicsExactlyOnce => (
                n.div_ceil(MANY_TOPICS_PARTITIONS as usize),
                MANY_TOPICS_PARTITIONS,
            ),
        }
    }
}

/// One row of the table.
struct Row {
    partitions: usize,
    topics: usize,
    per_topic: i32,
    bytes: u64,
    /// Worker start to every partition assigned (its metric), and to the first record on the target.
    assigned_s: Option<f64>,
    startup_s: f64,
    startup_cpu_s: f64,
    /// First record on the target to the last.
    copy_s: f64,
    copy_cpu_s: f64,
    /// The two brokers' CPU over the copy.
    broker_cpu_s: f64,
    peak_rss_mib: f64,
    idle_rss_mib: f64,
    /// CPU of the idle window over its length, in % of one core.
    idle_cpu_percent: f64,
    /// The source and the target broker's open files and memory maps at the end of the copy.
    brokers: [BrokerFiles; 2],
}

impl Row {
    fn records_per_s(&self) -> f64 {
        RECORDS as f64 / self.copy_s
    }
    fn cpu_s_per_gb(&self) -> f64 {
        self.copy_cpu_s / (self.bytes as f64 / 1e9)
    }
}

/// Measures every count of `counts` in both layouts on the benchmark's clusters, and returns the Markdown
/// section (empty when `counts` is).
pub fn measure(
    counts: &[usize],
    source: &ClusterProcess,
    target: &ClusterProcess,
    tuning: &Tuning,
) -> String {
    if counts.is_empty() {
        return String::new();
    }
    eprintln!(
        "how the worker's cost grows with partitions: {RECORDS} records of {VALUE_SIZE}-byte values over {counts:?} \
         partitions"
    );
    // A broker holds one file open per partition, and a deleted topic's until a while after the delete: the
    // rows before may still hold as many again.
    let most = counts.iter().max().copied().unwrap_or(0) as u64;
    for (name, cluster) in [("source", source), ("target", target)] {
        if let Some(limit) = cluster.open_files_limit()
            && limit < 2 * most + 1000
        {
            eprintln!(
                "  warning: the {name} broker may open {limit} files (ulimit -n), fewer than {} partitions may \
                 need: raise `ulimit -n` before running the benchmark",
                2 * most + 1000
            );
        }
    }
    let layouts = [
        Layout::OneTopic,
        Layout::ManyTopics,
        Layout::OneTopicExactlyOnce,
        Layout::ManyTopicsExactlyOnce,
    ];
    let mut rows = Vec::new();
    for layout in layouts {
        for &n in counts {
            // With 10 partitions a many-topics layout is one topic of 10: the one-topic row.
            if matches!(layout, Layout::ManyTopics | Layout::ManyTopicsExactlyOnce)
                && n <= MANY_TOPICS_PARTITIONS as usize
            {
                continue;
            }
            rows.push((layout, one_row(n, layout, source, target, tuning)));
        }
    }
    let limits = [source.open_files_limit(), target.open_files_limit()];
    // What a broker that did not cope would have logged.
    let troubles: Vec<String> = [("source", source), ("target", target)]
        .iter()
        .flat_map(|(name, cluster)| {
            cluster
                .log()
                .lines()
                .filter(|l| {
                    ["Too many open files", "OutOfMemoryError", "Map failed"]
                        .iter()
                        .any(|t| l.contains(t))
                })
                .take(3)
                .map(|l| format!("{name}: {l}"))
                .collect::<Vec<_>>()
        })
        .collect();
    markdown(&rows, limits, &troubles, counts)
}

fn one_row(
    n: usize,
    layout: Layout,
    source: &ClusterProcess,
    target: &ClusterProcess,
    tuning: &Tuning,
) -> Row {
    let (topic_count, per_topic) = layout.shape(n);
    let prefix = format!("growth-{n}-{}", layout.key());
    let (topics, pattern): (Vec<String>, String) = if topic_count == 1 {
        (vec![prefix.clone()], prefix.clone())
    } else {
        (
            (0..topic_count).map(|t| format!("{prefix}-{t}")).collect(),
            format!("{prefix}-[0-9]+"),
        )
    };
    let exactly_once = layout.exactly_once();
    eprintln!("  {n} partitions, {topic_count} topic(s) of {per_topic}");
    let started = Instant::now();
    source.fresh_topics(&topics, per_topic);
    target.fresh_topics(&topics, per_topic);
    eprintln!(
        "    topics created on both clusters in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let bytes = produce_spread(source, &topics, per_topic);

    // The worker as the size rows run it (`start_worker`), on a document of its own including every topic.
    let document = alone::document(
        &format!("bench-{prefix}"),
        &source.bootstrap,
        &target.bootstrap,
        &pattern,
        tuning,
    )
    .delivery(if exactly_once {
        Delivery::ExactlyOnce
    } else {
        Delivery::AtLeastOnce
    });
    // Exactly once: the target's offsets count transaction markers too; the copy is done when the source
    // group's commits (made right after each transaction's) reach the end, as in the size rows.
    let commits = exactly_once.then(|| {
        GroupOffsets::for_topics(
            &client_config(&source.bootstrap, &[]),
            &document.group_id(),
            &topics,
            per_topic,
        )
    });
    let dir = tempfile::tempdir().unwrap();
    let path = document.write_in(dir.path());
    let log = crate::release_dir()
        .parent()
        .unwrap()
        .join(format!("benchmark-worker-{prefix}.log"));
    eprintln!("    the worker (its log: {})", log.display());
    let watcher = Watermarks::for_topics(&target.client(), &topics, per_topic);
    let start = Instant::now();
    let mut worker = Launch::worker_defaults(&path)
        .binary(env!("CARGO_BIN_EXE_mirror-worker"))
        .log_file(log.clone())
        .spawn();
    let pid = worker.pid();
    let mut assigned_s = None;
    let brokers_cpu = || source.cpu() + target.cpu();
    let mut first: Option<(Instant, Duration, Duration)> = None;
    let mut untimed = false;
    let (last, cpu_at_last, brokers_cpu_at_last, brokers) = loop {
        if assigned_s.is_none() && worker.assigned_partitions() >= n as i64 {
            assigned_s = Some(start.elapsed().as_secs_f64());
        }
        let on_target = watcher.high_total().unwrap_or(0);
        if on_target > 0 && first.is_none() {
            first = Some((Instant::now(), measure::so_far(pid).cpu, brokers_cpu()));
            // The watcher's first answer came after the copy (a new topic may answer "not leader" for a while):
            // its window is unknown, and the row says NaN rather than a rate of a few microseconds.
            untimed = on_target >= RECORDS as i64;
        }
        let arrived = match &commits {
            Some(group) => group.committed_total().unwrap_or(0),
            None => on_target,
        };
        if arrived >= RECORDS as i64 {
            assert_eq!(
                arrived, RECORDS as i64,
                "the worker wrote more records than the source holds"
            );
            let cpu = measure::so_far(pid).cpu;
            let last = Instant::now();
            break (
                last,
                cpu,
                brokers_cpu(),
                [source.files_and_maps(), target.files_and_maps()],
            );
        }
        if let Some(status) = worker.exit_status() {
            panic!(
                "mirror-worker exited with {status} with {arrived} of {RECORDS} records on the target; its log: {}",
                log.display()
            );
        }
        assert!(
            start.elapsed() < COPY_TIMEOUT,
            "the worker did not copy {RECORDS} records over {n} partitions within {COPY_TIMEOUT:?} ({arrived} \
             arrived); its log: {}",
            log.display()
        );
        // One ListOffsets for every partition: every 20 ms is cheap for 10 partitions, not for 5,000.
        std::thread::sleep(Duration::from_millis(if n >= 1000 { 50 } else { 20 }));
    };
    let (first_at, cpu_at_first, brokers_cpu_at_first) = first.unwrap();
    std::thread::sleep(IDLE);
    let after_idle = measure::so_far(pid);
    let idle_rss_kib = measure::rss_now(pid).unwrap_or(0);
    let idle_cpu = after_idle.cpu.saturating_sub(cpu_at_last);
    let _ = worker.stop();
    target.delete_topics(&topics);
    source.delete_topics(&topics);
    let row = Row {
        partitions: topic_count * per_topic as usize,
        topics: topic_count,
        per_topic,
        bytes,
        assigned_s,
        startup_s: (first_at - start).as_secs_f64(),
        startup_cpu_s: cpu_at_first.as_secs_f64(),
        copy_s: if untimed {
            f64::NAN
        } else {
            (last - first_at).as_secs_f64()
        },
        copy_cpu_s: cpu_at_last.saturating_sub(cpu_at_first).as_secs_f64(),
        broker_cpu_s: brokers_cpu_at_last
            .saturating_sub(brokers_cpu_at_first)
            .as_secs_f64(),
        peak_rss_mib: after_idle.peak_rss_kib as f64 / 1024.0,
        idle_rss_mib: idle_rss_kib as f64 / 1024.0,
        idle_cpu_percent: idle_cpu.as_secs_f64() / IDLE.as_secs_f64() * 100.0,
        brokers,
    };
    eprintln!(
        "    {:.0} records/s, copy CPU {:.2} s, peak RSS {:.1} MiB, idle RSS {:.1} MiB, idle CPU {:.1} %",
        row.records_per_s(),
        row.copy_cpu_s,
        row.peak_rss_mib,
        row.idle_rss_mib,
        row.idle_cpu_percent
    );
    row
}

/// Produces the data set (`RECORDS` keyed records of `VALUE_SIZE`-byte values with two headers) to `topics`,
/// record n to partition n mod the partitions in all, so every partition holds the same share (placing by key,
/// as the size rows do, would leave partitions empty: 10,000 keys over 5,000 partitions). Returns the bytes.
fn produce_spread(source: &ClusterProcess, topics: &[String], per_topic: i32) -> u64 {
    let started = Instant::now();
    let producer: ThreadedProducer<Acks> = source
        .client()
        .set("linger.ms", "20")
        .set("enable.idempotence", "true")
        .create_with_context(Acks::default())
        .expect("creating the producer");
    let places = topics.len() as u64 * per_topic as u64;
    let mut bytes = 0;
    for n in 0..RECORDS {
        let record = samples::sample(n, load::KEYS, VALUE_SIZE);
        bytes += load::record_bytes(&record);
        let place = n % places;
        let topic = &topics[(place / per_topic as u64) as usize];
        load::send(&producer, topic, (place % per_topic as u64) as i32, &record);
    }
    load::flush_all(&producer, RECORDS);
    eprintln!(
        "    {RECORDS} records produced to the source in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    bytes
}

fn files(f: BrokerFiles) -> String {
    format!("{} ({}) / {}", f.open, f.deleted, f.maps)
}

fn markdown(
    rows: &[(Layout, Row)],
    limits: [Option<u64>; 2],
    troubles: &[String],
    counts: &[usize],
) -> String {
    let mut out = String::new();
    let bytes = rows.first().map_or(0, |(_, r)| r.bytes);
    writeln!(
        out,
        "### How the worker's cost grows with partitions\n\n\
         {RECORDS} keyed records of {VALUE_SIZE}-byte values with 2 headers ({:.1} MB) in all, spread evenly over \
         every partition, copied by mirror-worker (at-least-once, its defaults) into fresh target topics of the \
         same layout: one topic of N partitions, and N/{MANY_TOPICS_PARTITIONS} topics of \
         {MANY_TOPICS_PARTITIONS} partitions; then both layouts again with `delivery: exactlyOnce` (a \
         transactional producer per transaction group, at most 16; its copy done when the source group's \
         commits reach the end). *Start-up*: worker start to the first record on the target (in \
         brackets, to every partition assigned); *copy*: first record to last, as in the tables above (the brokers' CPU over the same window beside it); *peak RSS*: \
         VmHWM over the worker's life; *idle*: its RSS and CPU (% of one core) in the {} s after the copy.\n",
        bytes as f64 / 1e6,
        IDLE.as_secs()
    )
    .unwrap();
    writeln!(
        out,
        "| layout | partitions | start-up s (assigned) | start-up CPU s | records/s | copy CPU s | CPU s/GB | brokers' CPU s | peak RSS MiB | idle RSS MiB | idle CPU % | brokers' open files (of deleted topics) / maps: source; target |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
    )
    .unwrap();
    for (layout, row) in rows {
        let shape = match layout {
            Layout::OneTopic => format!("1 topic × {}", row.per_topic),
            Layout::ManyTopics => format!("{} topics × {}", row.topics, row.per_topic),
            Layout::OneTopicExactlyOnce => format!("1 topic × {}, exactly-once", row.per_topic),
            Layout::ManyTopicsExactlyOnce => {
                format!("{} topics × {}, exactly-once", row.topics, row.per_topic)
            }
        };
        let assigned = row
            .assigned_s
            .map_or("–".to_string(), |s| format!("{s:.1}"));
        writeln!(
            out,
            "| {shape} | {} | {:.1} ({assigned}) | {:.2} | {:.0} | {:.2} | {:.1} | {:.2} | {:.1} | {:.1} | {:.1} | {}; {} |",
            row.partitions,
            row.startup_s,
            row.startup_cpu_s,
            row.records_per_s(),
            row.copy_cpu_s,
            row.cpu_s_per_gb(),
            row.broker_cpu_s,
            row.peak_rss_mib,
            row.idle_rss_mib,
            row.idle_cpu_percent,
            files(row.brokers[0]),
            files(row.brokers[1]),
        )
        .unwrap();
    }
    let limit = |l: Option<u64>| l.map_or("?".to_string(), |l| l.to_string());
    writeln!(
        out,
        "\nThe brokers' limit on open files: {} (source), {} (target); their logs: {}.\n",
        limit(limits[0]),
        limit(limits[1]),
        if troubles.is_empty() {
            "no \"Too many open files\", \"Map failed\" or OutOfMemoryError".to_string()
        } else {
            troubles.join("; ")
        }
    )
    .unwrap();
    // The higher peak of the two layouts, at least once and exactly once apart.
    let peak_of = |exactly_once: bool| {
        rows.iter()
            .filter(|(layout, r)| {
                layout.exactly_once() == exactly_once && r.partitions == GOAL_PARTITIONS
            })
            .map(|(_, r)| r.peak_rss_mib)
            .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))))
    };
    let verdict = |peak: f64| {
        if peak <= GOAL_MIB {
            "met"
        } else {
            "**missed**"
        }
    };
    match peak_of(false) {
        Some(peak) => writeln!(
            out,
            "Goal (issue 17): peak RSS ≤ {GOAL_MIB:.0} MiB at {GOAL_PARTITIONS} partitions: {peak:.1} MiB (the \
             higher of the two layouts), {}{}.",
            verdict(peak),
            peak_of(true).map_or(String::new(), |eos| format!(
                "; exactly once {eos:.1} MiB, {}",
                verdict(eos)
            ))
        ),
        None => writeln!(
            out,
            "Goal (issue 17): peak RSS ≤ {GOAL_MIB:.0} MiB at {GOAL_PARTITIONS} partitions: not measured in this run \
             (`--growth-partitions {}`).",
            counts
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(",")
        ),
    }
    .unwrap();
    out
}
