//! End-to-end latency while a mirror (the worker, MirrorMaker 1 or 2) copies a steady load: records are produced
//! to the source at a fixed rate, each carrying its send time (µs) in a header that the mirror copies unchanged;
//! a consumer at the end of the target reads them back. Latency is receipt on the target minus the record's
//! append time on the source (the source topic is `LogAppendTime`; the load producer's delivery report gives
//! each record's append time, matched by its send time), so it measures the mirror (source append to target
//! receipt: the mirror's fetch, copy and produce, and the target fetch), not the load generator.
//!
//! Measuring from the send time instead measured the load generator: librdkafka sends one produce request per
//! partition, so at a few hundred records/s per partition a 5 ms linger made nearly one request per record
//! over 64 partitions, more than the source broker could answer on a shared 2-core machine. Records waited
//! seconds in the load producer before the source appended them (at 8,000 records/s: p50 8.6 s from send to
//! append, out of 8.6 s end to end), the lower rates worst, and every mirror showed the same backlog. The
//! send-to-append delay is still printed on standard error, beside the figures.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use kafka_mirror_samples as samples;
use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use crate::cluster::ClusterProcess;
use crate::load::{KEYS, headers_of};

const SENT_HEADER: &str = "bench-sent-us";
/// The source partition of a probe record.
const PROBE_HEADER: &str = "bench-probe-partition";
/// How long the reader waits for the last paced records after the last was sent.
const LAST_RECORD_WAIT: Duration = Duration::from_secs(30);
/// Latencies of records sent in the first second are left out: the pipeline is still starting to flow.
pub const WARM_UP: Duration = Duration::from_secs(1);
/// The shortest paced load that leaves a second to measure after the warm-up (`--latency-seconds`).
pub const SHORTEST_SECONDS: u64 = WARM_UP.as_secs() + 1;

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64
}

pub struct Latencies {
    pub records: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// The source's acknowledgements of the paced records: (send time, acknowledgement − send time, append time on
/// the source), all µs.
#[derive(Default)]
struct SourceAcks {
    acks: std::sync::Mutex<Vec<(u64, u64, i64)>>,
}

impl ClientContext for SourceAcks {}

impl ProducerContext for SourceAcks {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        let acked = now_us();
        let Ok(message) = result else { return };
        let Some(sent) = sent_stamp(message) else {
            return;
        };
        let timestamp = message.timestamp().to_millis().unwrap_or(0) * 1000;
        self.acks
            .lock()
            .unwrap()
            .push((sent, acked.saturating_sub(sent), timestamp));
    }
}

fn sent_stamp(message: &impl Message) -> Option<u64> {
    message.headers().and_then(|h| {
        h.iter()
            .find(|h| h.key == SENT_HEADER)
            .and_then(|h| std::str::from_utf8(h.value?).ok()?.parse::<u64>().ok())
    })
}

/// The p50 (ms) of each second's values, by the second of sending.
fn p50_by_second(first_sent: u64, values: impl Iterator<Item = (u64, u64)>) -> String {
    let mut by_second: Vec<Vec<u64>> = Vec::new();
    for (sent_us, value) in values {
        let second = (sent_us.saturating_sub(first_sent) / 1_000_000) as usize;
        if by_second.len() <= second {
            by_second.resize(second + 1, Vec::new());
        }
        by_second[second].push(value);
    }
    let medians: Vec<String> = by_second
        .iter_mut()
        .map(|l| {
            l.sort_unstable();
            l.get(l.len() / 2)
                .map_or("-".into(), |v| format!("{:.0}", *v as f64 / 1000.0))
        })
        .collect();
    medians.join(" ")
}

/// Makes the source topic stamp records with their append time, which the delivery reports then carry.
fn log_append_time(bootstrap: &str, topic: &str) -> Result<(), String> {
    use rdkafka::admin::{AdminClient, AdminOptions, AlterConfig, ResourceSpecifier};
    let admin: AdminClient<rdkafka::client::DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .map_err(|e| e.to_string())?;
    let alter = AlterConfig::new(ResourceSpecifier::Topic(topic))
        .set("message.timestamp.type", "LogAppendTime");
    let results = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(admin.alter_configs(&[alter], &AdminOptions::new()))
        .map_err(|e| format!("setting LogAppendTime on {topic}: {e}"))?;
    for result in results {
        result.map_err(|(_, code)| format!("setting LogAppendTime on {topic}: {code}"))?;
    }
    Ok(())
}

/// A copy (the worker, MirrorMaker 1 or 2) mirroring `source_topic` of the source to `target_topic` of the
/// target, running meanwhile.
pub struct Pipeline<'a> {
    pub source: &'a ClusterProcess,
    pub source_topic: &'a str,
    pub target: &'a ClusterProcess,
    pub target_topic: &'a str,
    pub partitions: i32,
}

/// How long the copy may take to carry a probe record of every partition.
const FLOWING_TIMEOUT: Duration = Duration::from_secs(120);
/// Probes go on this long after that, before the measured load starts.
const SETTLE: Duration = Duration::from_secs(5);

/// Produces `rate` records/s of `value_size` bytes to the source for `duration` while the copy runs, and
/// measures each record's arrival on the target. First sends probe records (without the send-time header)
/// until one reaches the target, so that the copy's start (a consumer group forming, MirrorMaker 2's
/// connectors starting) is not measured.
pub fn measure(
    pipeline: &Pipeline<'_>,
    rate: u64,
    duration: Duration,
    value_size: usize,
) -> Result<Latencies, String> {
    // How many paced records were sent, once all were; the reader stops when it has read that many.
    let done = Arc::new(AtomicU64::new(u64::MAX));
    let flowing = Arc::new(AtomicBool::new(false));
    let reader = {
        let bootstrap = pipeline.target.bootstrap.clone();
        let (topic, partitions) = (pipeline.target_topic.to_string(), pipeline.partitions);
        let (done, flowing) = (done.clone(), flowing.clone());
        std::thread::spawn(move || read_latencies(&bootstrap, &topic, partitions, &done, &flowing))
    };
    log_append_time(&pipeline.source.bootstrap, pipeline.source_topic)?;
    // Give the reader time to find the ends of the target's partitions before the first record is sent.
    std::thread::sleep(Duration::from_secs(2));
    let producer: ThreadedProducer<SourceAcks> = ClientConfig::new()
        .set("bootstrap.servers", &pipeline.source.bootstrap)
        // librdkafka sends one produce request per partition: with its default linger of 5 ms, 64 partitions
        // at a few hundred records/s each made nearly a request per record, which the source broker could not
        // answer on a shared 2-core machine (seconds of backlog in this producer, and CPU taken from the
        // copy). 50 ms bounds it at 1,280 requests/s; the linger is outside the latency measured (from the
        // source's append time).
        .set("linger.ms", "50")
        .create_with_context(SourceAcks::default())
        .expect("creating the paced producer");
    // Probe records, one to each partition every 500 ms, until a probe of every partition reached the
    // target: the copy's consumer group holds every partition (MirrorMaker 1 starts a partition it has no
    // offset for at its end, so probes sent before its group formed are skipped, and sent again).
    let probing = Instant::now();
    let mut probe = 20_000_000_000u64;
    while !flowing.load(Ordering::Acquire) {
        if probing.elapsed() > FLOWING_TIMEOUT {
            done.store(0, Ordering::Release);
            let _ = reader.join();
            return Err(format!(
                "probe records did not reach every partition of the target within {FLOWING_TIMEOUT:?}"
            ));
        }
        for partition in 0..pipeline.partitions {
            let record = samples::sample(probe, KEYS, value_size);
            let source_partition = partition.to_string();
            let _ = producer.send(
                BaseRecord::to(pipeline.source_topic)
                    .partition(partition)
                    .key(record.key.as_bytes())
                    .payload(&record.value)
                    .headers(OwnedHeaders::new().insert(Header {
                        key: PROBE_HEADER,
                        value: Some(&source_partition),
                    })),
            );
            probe += 1;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    // A group that has just formed may still rebalance (MirrorMaker 1's four consumers join one by one); a
    // few more seconds of probes before the measured load.
    let settling = Instant::now();
    while settling.elapsed() < SETTLE {
        for partition in 0..pipeline.partitions {
            let record = samples::sample(probe, KEYS, value_size);
            let source_partition = partition.to_string();
            let _ = producer.send(
                BaseRecord::to(pipeline.source_topic)
                    .partition(partition)
                    .key(record.key.as_bytes())
                    .payload(&record.value)
                    .headers(OwnedHeaders::new().insert(Header {
                        key: PROBE_HEADER,
                        value: Some(&source_partition),
                    })),
            );
            probe += 1;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let started = Instant::now();
    let counted_from = now_us() + WARM_UP.as_micros() as u64;
    let mut sent = 0u64;
    let mut n = 10_000_000_000u64;
    while started.elapsed() < duration {
        let due = (started.elapsed().as_secs_f64() * rate as f64) as u64;
        while sent < due {
            let record = samples::sample(n, KEYS, value_size);
            let stamp = now_us().to_string();
            let headers = headers_of(&record).insert(Header {
                key: SENT_HEADER,
                value: Some(&stamp),
            });
            let mut base = BaseRecord::to(pipeline.source_topic)
                .key(record.key.as_bytes())
                .payload(&record.value)
                .headers(headers);
            while let Err((_, back)) = producer.send(base) {
                base = back;
                std::thread::sleep(Duration::from_micros(200));
            }
            sent += 1;
            n += 1;
        }
        std::thread::sleep(Duration::from_micros(500));
    }
    producer.flush(Duration::from_secs(30)).unwrap();
    done.store(sent, Ordering::Release);
    let arrivals = reader.join().unwrap();
    if (arrivals.len() as u64) < sent {
        return Err(format!(
            "only {} of {sent} paced records reached the target within {LAST_RECORD_WAIT:?} of the last send: \
             the copy fell behind the load (see its log)",
            arrivals.len()
        ));
    }
    // Each paced record's append time on the source, from the delivery reports, by its send time.
    let acks = std::mem::take(&mut *producer.context().acks.lock().unwrap());
    let appended: std::collections::HashMap<u64, u64> = acks
        .iter()
        .map(|(sent, _, timestamp)| (*sent, (*timestamp).max(0) as u64))
        .collect();
    // (send time, receipt on the target − append time on the source), µs.
    let mirrored: Vec<(u64, u64)> = arrivals
        .iter()
        .filter_map(|(sent, received)| Some((*sent, received.saturating_sub(*appended.get(sent)?))))
        .collect();
    if mirrored.len() < arrivals.len() {
        return Err(format!(
            "{} of {} paced records had no append time from the source",
            arrivals.len() - mirrored.len(),
            arrivals.len()
        ));
    }
    // On standard error, for a look at how latency moved during the load: the p50 of each second's sends.
    let first_sent = counted_from - WARM_UP.as_micros() as u64;
    eprintln!(
        "      p50 ms by second of sending, source append to target receipt: {}",
        p50_by_second(first_sent, mirrored.iter().copied())
    );
    eprintln!(
        "      (not measured) send to source append: {}; send to target receipt: {}",
        p50_by_second(
            first_sent,
            acks.iter()
                .map(|(s, _, t)| (*s, ((*t).max(0) as u64).saturating_sub(*s)))
        ),
        p50_by_second(
            first_sent,
            arrivals.iter().map(|(s, r)| (*s, r.saturating_sub(*s)))
        )
    );
    let mut latencies: Vec<u64> = mirrored
        .iter()
        .filter(|(sent_us, _)| *sent_us >= counted_from)
        .map(|(_, latency)| *latency)
        .collect();
    if latencies.is_empty() {
        return Err(format!(
            "no paced record was sent after the {} s warm-up: measure for longer",
            WARM_UP.as_secs()
        ));
    }
    latencies.sort_unstable();
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize] as f64 / 1000.0;
    Ok(Latencies {
        records: latencies.len(),
        p50_ms: at(0.50),
        p99_ms: at(0.99),
        max_ms: at(1.0),
    })
}

/// Reads the target from its end and returns the send time and the receipt time (µs) of every paced record.
fn read_latencies(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    done: &AtomicU64,
    flowing: &AtomicBool,
) -> Vec<(u64, u64)> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "kafka-mirror-bench.latency")
        .set("enable.auto.commit", "false")
        // Answer as soon as anything arrived, and wait little when nothing did.
        .set("fetch.wait.max.ms", "5")
        // Only what was committed: MirrorMaker 2 and an exactly-once worker write in transactions.
        .set("isolation.level", "read_committed")
        .create()
        .expect("creating the latency reader");
    let mut assignment = TopicPartitionList::new();
    for p in 0..partitions {
        assignment
            .add_partition_offset(topic, p, Offset::End)
            .unwrap();
    }
    consumer.assign(&assignment).unwrap();
    let mut arrivals = Vec::new();
    let mut probed = vec![false; partitions as usize];
    let mut deadline = None;
    while (arrivals.len() as u64) < done.load(Ordering::Acquire) {
        if done.load(Ordering::Acquire) != u64::MAX
            && *deadline.get_or_insert_with(|| Instant::now() + LAST_RECORD_WAIT) < Instant::now()
        {
            break;
        }
        let Some(Ok(message)) = consumer.poll(Duration::from_millis(50)) else {
            continue;
        };
        let received = now_us();
        if !flowing.load(Ordering::Relaxed) {
            // The source partition a probe came from (MirrorMaker 1 and the worker place records on the
            // target by key, so the target partition does not say which source partition is being read).
            let probed_partition = message.headers().and_then(|h| {
                h.iter()
                    .find(|h| h.key == PROBE_HEADER)
                    .and_then(|h| std::str::from_utf8(h.value?).ok()?.parse::<usize>().ok())
            });
            if let Some(p) = probed_partition.filter(|p| *p < probed.len()) {
                probed[p] = true;
            }
            if probed.iter().all(|p| *p) {
                flowing.store(true, Ordering::Release);
            }
        }
        let Some(sent) = sent_stamp(&message) else {
            continue;
        };
        arrivals.push((sent, received));
    }
    arrivals
}
