//! Shared set-up for the engine suites: two librdkafka mock clusters in this process, documents pointing at
//! them, an engine running until told to stop, and waiting with a deadline.
#![allow(dead_code)] // each suite uses a different part

use std::sync::Arc;
use std::time::{Duration, Instant};

use kafka_mirror_clients::MirrorPlan;
use kafka_mirror_clients::secrets::Secrets;
use kafka_mirror_samples::{self as samples, SampleRecord, Verification};
use kafka_mirror_tests::document::{Connection, MirrorDocument};
use kafka_mirror_tests::positions::GroupOffsets;
use kafka_mirror_tests::{client_config, verify_copy};
use mirror_worker::health::Health;
use mirror_worker::metrics::Metrics;
use mirror_worker::{Engine, EngineOptions, Result, Summary};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub type Mock = MockCluster<'static, DefaultProducerContext>;

pub fn mock(brokers: i32) -> Mock {
    MockCluster::new(brokers).expect("starting a mock cluster")
}

/// A `KafkaMirror` between two clusters of the topics `include` matches, read again every second.
/// The source consumer reports statistics (and so per-partition lag) every 500 ms. Its group sessions expire
/// after 6 s instead of Kafka's 45 s: the group notices a killed worker sooner, and the mock cluster, once the
/// last member has left a group, holds the next members' assignment for the session timeout less one second
/// (Apache Kafka would empty the group and assign after `group.initial.rebalance.delay.ms`).
pub fn document(name: &str, source: &str, target: &str, include: &str) -> MirrorDocument {
    MirrorDocument::new(
        name,
        Connection::new(source)
            .config("session.timeout.ms", 6000)
            .config("heartbeat.interval.ms", 500)
            .config("statistics.interval.ms", 500),
        Connection::new(target),
    )
    .include(include)
    .refresh_interval_seconds(1)
}

pub fn plan(document: &MirrorDocument) -> MirrorPlan {
    let mirror =
        kafka_mirror_crds::parse_document(&document.to_yaml()).expect("test document is valid");
    MirrorPlan::from_resource(mirror, &Secrets::new("/nonexistent")).expect("plan")
}

/// An engine running in the background until `stop` is called.
pub struct Running {
    pub metrics: Arc<Metrics>,
    pub health: Arc<Health>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<Summary>>,
}

pub fn start(document: &MirrorDocument) -> Running {
    // Engine logs go to the test's captured output, shown when a test fails.
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter(std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()))
        .try_init();
    let plan = plan(document);
    let metrics = Arc::new(Metrics::new());
    let health = Arc::new(Health::new(plan.spec.num_streams as usize));
    let options = EngineOptions {
        commit_interval: Duration::from_millis(200),
        drain_timeout: Duration::from_secs(20),
    };
    let engine = Engine::new(plan, options, metrics.clone(), health.clone());
    let (tx, rx) = oneshot::channel();
    let task = tokio::spawn(engine.run(async move {
        let _ = rx.await;
    }));
    Running {
        metrics,
        health,
        stop: Some(tx),
        task,
    }
}

impl Running {
    pub fn assigned(&self) -> i64 {
        self.metrics.assigned_partitions.get()
    }

    pub async fn stop(mut self) -> Summary {
        let _ = self.stop.take().expect("stopped once").send(());
        tokio::time::timeout(Duration::from_secs(60), self.task)
            .await
            .expect("the engine stops within 60 s")
            .expect("the engine task does not panic")
            .expect("the engine stops without error")
    }
}

/// Waits until `condition` holds, failing the test with `what` after `timeout`.
pub async fn wait_for(what: &str, timeout: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !condition() {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Sum of the group's lag over `partitions` partitions of `topic`.
pub fn lag(source: &str, group: &str, topic: &str, partitions: i32) -> i64 {
    GroupOffsets::new(&client_config(source, &[]), group, topic, partitions)
        .lag()
        .unwrap()
}

/// Runs blocking client code (producing, reading back) off the async worker threads.
pub async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.expect("blocking task")
}

/// Reads `topic` back from the `target` cluster and asserts that every seeded record arrived intact (with key,
/// value, headers, timestamp, per-key order). Returns the verification for further assertions.
pub async fn assert_intact_copy(
    target: &str,
    topic: &str,
    seeded: &[SampleRecord],
) -> Verification {
    let (target, read, expected) = (target.to_string(), topic.to_string(), seeded.len());
    let copy = blocking(move || {
        samples::read_all(&target, &read, expected, Duration::from_secs(60)).unwrap()
    })
    .await;
    verify_copy(&format!("the copy of {topic}"), seeded, &copy)
}
