//! Deliveries that time out, on librdkafka's mock cluster, which can take a partition leader away for exactly
//! as long as the test needs: each failed record is re-read from the last acknowledged offset and nothing is
//! lost. Every other claim of the engine is proven on Apache Kafka (`tests/tests/engine.rs`, `faults.rs`,
//! `sigterm.rs`).

mod common;

use std::time::Duration;

use common::*;
use kafka_mirror_samples as samples;

const MINUTE: Duration = Duration::from_secs(60);

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
    let doc = document("rewind", &s, &t, "audit").target_config("message.timeout.ms", 1500);
    let running = start(&doc);
    wait_for("the partitions are assigned", MINUTE, || {
        running.assigned() == 3
    })
    .await;
    target.broker_down(1).unwrap();
    let seeded = blocking({
        let s = s.clone();
        move || samples::produce(&s, "audit", 0, 3000, 30, 32).unwrap()
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
