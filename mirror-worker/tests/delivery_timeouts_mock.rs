//! The engine against librdkafka's mock cluster: every record arrives with key, value, headers and
//! timestamp, per-key order holds, and rebalances, broker outages and shutdowns lose nothing.

mod common;

use std::time::Duration;

use common::*;
use kafka_mirror_crds::Partitioning;
use mirror_worker::partitioner;
use mirror_worker::testkit::{self, verify};

const MINUTE: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_keep_key_headers_timestamp_and_per_key_order_across_partition_counts() {
    let (source, target) = (mock(1), mock(1));
    source.create_topic("events", 6, 1).unwrap();
    target.create_topic("mirror.events", 4, 1).unwrap();
    let (s, t) = (source.bootstrap_servers(), target.bootstrap_servers());
    let seeded = blocking({
        let s = s.clone();
        move || testkit::produce(&s, "events", 0, 3000, 37, 64).unwrap()
    })
    .await;
    let doc = document(
        "order",
        &s,
        &t,
        "events",
        "    rename: \"mirror.{topic}\"\n  numStreams: 2\n",
    );
    let running = start(&doc);
    wait_for("3000 records mirrored", MINUTE, || {
        running.mirrored("events") >= 3000
    })
    .await;
    let summary = running.stop().await;
    assert_eq!(summary.topics["events"].records, 3000);
    assert_eq!(summary.topics["events"].target_topic, "mirror.events");

    let copy =
        blocking(move || testkit::read_all(&t, "mirror.events", 3000, MINUTE).unwrap()).await;
    let v = verify(&seeded, &copy);
    assert!(v.is_intact(), "{v}");
    assert_eq!(v.duplicated, 0, "a clean run writes each record once: {v}");
    // Every keyed record sits where the Java producer's partitioner would have put it among 4 partitions.
    for record in &copy {
        let expected =
            partitioner::target_partition(Partitioning::Key, record.key.as_deref(), -1, 4);
        assert_eq!(
            record.partition,
            expected,
            "key {:?}",
            record.key.as_ref().map(|k| String::from_utf8_lossy(k))
        );
    }
    // And the whole group position is committed: nothing left to mirror.
    assert_eq!(lag(&s, "kafka-mirror.order", "events", 6), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_split_the_partitions_and_one_leaving_mid_stream_loses_nothing() {
    let (source, target) = (mock(3), mock(3));
    source.create_topic("orders", 8, 3).unwrap();
    target.create_topic("orders", 8, 3).unwrap();
    let (s, t) = (source.bootstrap_servers(), target.bootstrap_servers());
    let doc = document("split", &s, &t, "orders", "");
    let first = start(&doc);
    let second = start(&doc);
    wait_for("both workers own partitions", MINUTE, || {
        first.assigned() > 0 && second.assigned() > 0
    })
    .await;
    assert_eq!(
        first.assigned() + second.assigned(),
        8,
        "the group splits the 8 partitions"
    );

    let producer = produce_in_background(&s, "orders", 10, 200);
    wait_for("the first worker mirrored something", MINUTE, || {
        first.mirrored("orders") > 500
    })
    .await;
    let left = first.stop().await;
    assert!(left.topics["orders"].records > 0);
    wait_for(
        "the second worker took over every partition",
        MINUTE,
        || second.assigned() == 8,
    )
    .await;
    let seeded = producer.await.unwrap();
    wait_for("the group caught up", MINUTE, || {
        lag(&s, "kafka-mirror.split", "orders", 8) == 0
    })
    .await;
    second.stop().await;

    let v = assert_intact_copy(&t, "orders", &seeded).await;
    eprintln!("hand-over mid-stream: {v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_and_a_target_broker_down_and_back_mid_stream_lose_nothing() {
    let (source, target) = (mock(3), mock(3));
    source.create_topic("payments", 6, 3).unwrap();
    target.create_topic("payments", 6, 3).unwrap();
    let (s, t) = (source.bootstrap_servers(), target.bootstrap_servers());
    let running = start(&document("outage", &s, &t, "payments", "  numStreams: 2\n"));
    let producer = produce_in_background(&s, "payments", 8, 100);
    wait_for("mirroring under way", MINUTE, || {
        running.mirrored("payments") > 300
    })
    .await;
    source.broker_down(2).unwrap();
    target.broker_down(3).unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    source.broker_up(2).unwrap();
    target.broker_up(3).unwrap();
    let seeded = producer.await.unwrap();
    wait_for("the group caught up after the outage", MINUTE * 2, || {
        lag(&s, "kafka-mirror.outage", "payments", 6) == 0
    })
    .await;
    running.stop().await;

    let v = assert_intact_copy(&t, "payments", &seeded).await;
    eprintln!("broker outage mid-stream: {v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topic_created_later_that_matches_is_picked_up_without_a_restart() {
    let (source, target) = (mock(1), mock(1));
    source.create_topic("orders.eu", 2, 1).unwrap();
    target.create_topic("orders.eu", 2, 1).unwrap();
    let (s, t) = (source.bootstrap_servers(), target.bootstrap_servers());
    let running = start(&document("late", &s, &t, "orders\\\\..*", ""));
    wait_for("the first topic is assigned", MINUTE, || {
        running.assigned() == 2
    })
    .await;

    // The mock cluster has no CreateTopics API, so the target topic is made here, as an admin would.
    target.create_topic("orders.us", 3, 1).unwrap();
    source.create_topic("orders.us", 3, 1).unwrap();
    source.create_topic("payments", 1, 1).unwrap(); // does not match: never mirrored
    let seeded = blocking({
        let s = s.clone();
        move || {
            testkit::produce(&s, "payments", 0, 10, 1, 8).unwrap();
            testkit::produce(&s, "orders.us", 0, 500, 10, 32).unwrap()
        }
    })
    .await;
    wait_for("the new topic's records mirrored", MINUTE, || {
        running.mirrored("orders.us") >= 500
    })
    .await;
    let summary = running.stop().await;
    assert!(summary.topics.contains_key("orders.us"));
    assert!(
        !summary.topics.contains_key("payments"),
        "payments does not match orders\\..*"
    );
    let v = assert_intact_copy(&t, "orders.us", &seeded).await;
    assert_eq!(v.duplicated, 0, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_that_time_out_are_re_read_from_the_last_acknowledged_offset() {
    let (source, target) = (mock(1), mock(3));
    source.create_topic("audit", 3, 1).unwrap();
    target.create_topic("audit", 3, 3).unwrap();
    for partition in 0..3 {
        target
            .partition_leader("audit", partition, Some(1))
            .unwrap();
    }
    let (s, t) = (source.bootstrap_servers(), target.bootstrap_servers());
    // Deliveries give up after 1.5 s, so an outage of the leader longer than that makes them fail for good.
    let doc = document("rewind", &s, &t, "audit", "").replace(
        &format!("bootstrapServers: \"{t}\""),
        &format!("bootstrapServers: \"{t}\"\n    config: {{message.timeout.ms: 1500}}"),
    );
    let running = start(&doc);
    wait_for("the partitions are assigned", MINUTE, || {
        running.assigned() == 3
    })
    .await;
    target.broker_down(1).unwrap();
    let seeded = blocking({
        let s = s.clone();
        move || testkit::produce(&s, "audit", 0, 3000, 30, 32).unwrap()
    })
    .await;
    wait_for(
        "deliveries failed and partitions were rewound",
        MINUTE,
        || running.metrics.rewinds.get() > 0,
    )
    .await;
    target.broker_up(1).unwrap();
    wait_for("the group caught up after the rewinds", MINUTE * 2, || {
        lag(&s, "kafka-mirror.rewind", "audit", 3) == 0
    })
    .await;
    running.stop().await;

    let v = assert_intact_copy(&t, "audit", &seeded).await;
    eprintln!("deliveries timed out during a 1.5 s+ target outage: {v}");
}
