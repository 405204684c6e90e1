//! The producer's own size limit (`message.max.bytes` in `spec.target.config`), which librdkafka enforces
//! before a record leaves the worker, on librdkafka's mock clusters. The broker's refusal of a record larger
//! than the target topic's `max.message.bytes`, and every other fault, are proven on Apache Kafka in
//! `tests/tests/engine.rs` and `tests/tests/faults.rs`.

mod common;

use std::time::Duration;

use common::*;
use kafka_mirror_samples as samples;
use kafka_mirror_tests::positions::{GroupOffsets, Watermarks};
use kafka_mirror_tests::{Launch, client_config};

const TOPIC: &str = "orders";

#[test]
fn a_record_larger_than_the_target_accepts_stops_the_worker_with_everything_before_it_committed() {
    let (source, target) = (mock(1), mock(1));
    source.create_topic(TOPIC, 1, 1).unwrap();
    target.create_topic(TOPIC, 1, 1).unwrap();
    let (s, t) = (source.bootstrap_servers(), target.bootstrap_servers());
    let dir = tempfile::tempdir().unwrap();
    // The producer knows the target's limit through its own message.max.bytes, as it should match the
    // target topic's max.message.bytes; a broker refusing it (MESSAGE_TOO_LARGE) takes the same path.
    let document = document("oversized", &s, &t, TOPIC)
        .target_config("message.max.bytes", 20000)
        .write_in(dir.path());

    samples::produce(&s, TOPIC, 0, 500, 10, 100).unwrap();
    samples::produce(&s, TOPIC, 500, 501, 10, 50_000).unwrap();
    samples::produce(&s, TOPIC, 501, 1000, 10, 100).unwrap();

    // The worker's own defaults but for commits every 200 ms, as the engine suites commit.
    let run = Launch::worker_defaults(&document)
        .binary(env!("CARGO_BIN_EXE_mirror-worker"))
        .commit_interval("0.2")
        .spawn()
        .finish(Duration::from_secs(60));
    let (code, log) = (run.exit_code(), run.stderr);
    assert_eq!(code, Some(1), "{log}");
    assert!(
        log.contains("the target refused record orders[0]@500 for topic orders")
            && log.contains("larger than the target accepts"),
        "the exit message names the record and the limit to raise:\n{log}"
    );
    let committed = GroupOffsets::new(&client_config(&s, &[]), "kafka-mirror.oversized", TOPIC, 1)
        .committed_total()
        .unwrap();
    assert_eq!(
        committed, 500,
        "every record before it is committed, none after"
    );
    let on_target = Watermarks::new(&client_config(&t, &[]), TOPIC, 1)
        .high_total()
        .unwrap();
    assert_eq!(on_target, 500);
}
