//! Lag in the status equals high watermark minus committed offset, per topic, measured against librdkafka's
//! mock cluster with a consumer group that really committed.

use std::time::Duration;

use kafka_mirror_crds::TopicFilter;
use kafka_mirror_crds::topics::TopicSelection;
use kafka_mirror_operator::lag::measure;
use kafka_mirror_samples as samples;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::mocking::MockCluster;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

const GROUP: &str = "kafka-mirror.kafka-mirror.orders";

/// The `topics` section of a minimal mirror, validated: its selection and the filter validation compiled.
fn selection(include: &[&str], rename: &str) -> (TopicFilter, TopicSelection) {
    let yaml = format!(
        "apiVersion: kafkamirror.io/v1alpha1\nkind: KafkaMirror\nmetadata: {{name: m}}\nspec:\n  source: {{bootstrapServers: \"a:1\"}}\n  \
         target: {{bootstrapServers: \"b:1\"}}\n  topics: {{include: {include:?}, rename: \"{rename}\"}}\n"
    );
    let spec = kafka_mirror_crds::parse_document(&yaml).unwrap().spec;
    (kafka_mirror_crds::validate(&spec).unwrap(), spec.topics)
}

/// Commits `offsets` for GROUP without joining it, as a mirror's workers leave it behind.
fn commit(bootstrap: &str, offsets: &[(&str, i32, i64)]) {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", GROUP)
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for (topic, partition, offset) in offsets {
        tpl.add_partition_offset(topic, *partition, Offset::Offset(*offset))
            .unwrap();
    }
    consumer.commit(&tpl, CommitMode::Sync).unwrap();
}

fn high(bootstrap: &str, topic: &str, partition: i32) -> i64 {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .unwrap();
    consumer
        .fetch_watermarks(topic, partition, Duration::from_secs(5))
        .unwrap()
        .1
}

#[test]
fn status_lag_is_high_watermark_minus_committed_offset_per_topic() {
    let cluster = MockCluster::new(1).unwrap();
    let bootstrap = cluster.bootstrap_servers();
    cluster.create_topic("orders.eu", 3, 1).unwrap();
    cluster.create_topic("orders.us", 2, 1).unwrap();
    cluster.create_topic("payments", 1, 1).unwrap();
    samples::produce(&bootstrap, "orders.eu", 0, 900, 50, 16).unwrap();
    samples::produce(&bootstrap, "orders.us", 0, 400, 20, 16).unwrap();
    samples::produce(&bootstrap, "payments", 0, 100, 5, 16).unwrap();

    // orders.eu partition 2 and orders.us partition 1 were never committed: they count from offset 0.
    commit(
        &bootstrap,
        &[
            ("orders.eu", 0, 100),
            ("orders.eu", 1, 5),
            ("orders.us", 0, 7),
        ],
    );
    let committed = |topic: &str, partition: i32| match (topic, partition) {
        ("orders.eu", 0) => 100,
        ("orders.eu", 1) => 5,
        ("orders.us", 0) => 7,
        _ => 0,
    };
    let lag_of = |topic: &str, partitions: i32| -> Vec<i64> {
        (0..partitions)
            .map(|p| high(&bootstrap, topic, p) - committed(topic, p))
            .collect()
    };
    let (eu, us) = (lag_of("orders.eu", 3), lag_of("orders.us", 2));
    assert_eq!(
        eu.iter().sum::<i64>() + committed("orders.eu", 0) + committed("orders.eu", 1),
        900,
        "the seeding worked"
    );

    let mut source = ClientConfig::new();
    source.set("bootstrap.servers", &bootstrap);
    let (filter, topics) = selection(&["orders\\..*"], "dr.{topic}");
    let report = measure(&source.into(), GROUP, &filter, &topics).unwrap();

    let names: Vec<&str> = report.topics.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["orders.eu", "orders.us"], "payments does not match");
    assert_eq!(report.topics[0].target_name, "dr.orders.eu");
    assert_eq!(report.topics[0].partitions, 3);
    assert_eq!(report.topics[0].lag, eu.iter().sum::<i64>());
    assert_eq!(report.topics[1].partitions, 2);
    assert_eq!(report.topics[1].lag, us.iter().sum::<i64>());
    assert_eq!(report.total, eu.iter().chain(&us).sum::<i64>());
    assert_eq!(report.max_partition, *eu.iter().chain(&us).max().unwrap());
}

#[test]
fn a_committed_offset_below_the_first_offset_the_source_holds_is_reported_as_truncated() {
    let cluster = MockCluster::new(1).unwrap();
    let bootstrap = cluster.bootstrap_servers();
    cluster.create_topic("orders", 1, 1).unwrap();
    cluster.create_topic("orders.kept", 1, 1).unwrap();
    // `orders` gets far more than the mock cluster's 5 MiB per partition, so it deletes the oldest records as
    // retention would; `orders.kept` keeps all of its few.
    samples::produce(&bootstrap, "orders", 0, 60_000, 10, 100).unwrap();
    samples::produce(&bootstrap, "orders.kept", 0, 10, 2, 100).unwrap();
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .create()
        .unwrap();
    let (low, _) = consumer
        .fetch_watermarks("orders", 0, Duration::from_secs(5))
        .unwrap();
    assert!(
        low > 1000,
        "the mock deleted the oldest records (log start {low})"
    );
    commit(&bootstrap, &[("orders", 0, 1000), ("orders.kept", 0, 0)]);

    let mut source = ClientConfig::new();
    source.set("bootstrap.servers", &bootstrap);
    let (filter, topics) = selection(&["orders.*"], "{topic}");
    let report = measure(&source.into(), GROUP, &filter, &topics).unwrap();
    assert_eq!(
        report.truncated,
        [format!(
            "orders[0] committed 1000, first offset on the source {low} ({} records deleted before they were mirrored)",
            low - 1000
        )],
        "only orders lost records"
    );
}
