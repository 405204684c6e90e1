//! End-to-end latency while the worker mirrors a steady load: records are produced to the source at a fixed
//! rate, each carrying its send time (µs) in a header that the mirror copies unchanged; a consumer at the end
//! of the target reads them back. Latency is receipt on the target minus the send time, so it is an upper bound
//! on source append to target append: it also holds the source produce round trip and the target fetch.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mirror_worker::testkit;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use crate::cluster::ClusterProcess;
use crate::load::{Acks, KEYS};

const SENT_HEADER: &str = "bench-sent-us";
/// Latencies of records sent in the first second are left out: the pipeline is still starting to flow.
const WARM_UP: Duration = Duration::from_secs(1);

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64
}

pub struct Latencies {
    pub rate: u64,
    pub records: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// Produces `rate` records/s of `value_size` bytes to the source for `duration` while the worker runs, and
/// measures each record's arrival on the target.
pub fn measure(
    source: &ClusterProcess,
    target: &ClusterProcess,
    rate: u64,
    duration: Duration,
    value_size: usize,
) -> Latencies {
    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let (bootstrap, topic, partitions) = (
            target.bootstrap.clone(),
            target.topic.clone(),
            target.partitions,
        );
        let done = done.clone();
        std::thread::spawn(move || read_latencies(&bootstrap, &topic, partitions, &done))
    };
    // Give the reader time to find the ends of the target's partitions before the first record is sent.
    std::thread::sleep(Duration::from_secs(2));
    let producer: ThreadedProducer<Acks> = ClientConfig::new()
        .set("bootstrap.servers", &source.bootstrap)
        // Send at once: time spent lingering in the load generator is not the mirror's.
        .set("linger.ms", "0")
        .create_with_context(Acks::default())
        .expect("creating the paced producer");
    let started = Instant::now();
    let counted_from = now_us() + WARM_UP.as_micros() as u64;
    let mut sent = 0u64;
    let mut n = 10_000_000_000u64;
    while started.elapsed() < duration {
        let due = (started.elapsed().as_secs_f64() * rate as f64) as u64;
        while sent < due {
            let record = testkit::sample(n, KEYS, value_size);
            let stamp = now_us().to_string();
            let mut headers = OwnedHeaders::new_with_capacity(3);
            for (k, v) in &record.headers {
                headers = headers.insert(Header {
                    key: k,
                    value: Some(v),
                });
            }
            headers = headers.insert(Header {
                key: SENT_HEADER,
                value: Some(&stamp),
            });
            let mut base = BaseRecord::to(&source.topic)
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
    // Let the last records cross, then stop the reader.
    std::thread::sleep(Duration::from_secs(2));
    done.store(true, Ordering::Release);
    let arrivals = reader.join().unwrap();
    assert_eq!(
        arrivals.len() as u64,
        sent,
        "not every paced record reached the target within 2 s of the last send"
    );
    let mut latencies: Vec<u64> = arrivals
        .iter()
        .filter(|(sent_us, _)| *sent_us >= counted_from)
        .map(|(_, latency)| *latency)
        .collect();
    latencies.sort_unstable();
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize] as f64 / 1000.0;
    Latencies {
        rate,
        records: latencies.len(),
        p50_ms: at(0.50),
        p99_ms: at(0.99),
        max_ms: at(1.0),
    }
}

/// Reads the target from its end and returns the send time and the latency (µs) of every paced record.
fn read_latencies(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    done: &AtomicBool,
) -> Vec<(u64, u64)> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "kafka-mirror-bench.latency")
        .set("enable.auto.commit", "false")
        // Answer as soon as anything arrived, and wait little when nothing did.
        .set("fetch.wait.max.ms", "5")
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
    while !done.load(Ordering::Acquire) {
        let Some(Ok(message)) = consumer.poll(Duration::from_millis(50)) else {
            continue;
        };
        let received = now_us();
        let Some(sent) = message.headers().and_then(|h| {
            h.iter()
                .find(|h| h.key == SENT_HEADER)
                .and_then(|h| std::str::from_utf8(h.value?).ok()?.parse::<u64>().ok())
        }) else {
            continue;
        };
        arrivals.push((sent, received.saturating_sub(sent)));
    }
    arrivals
}
