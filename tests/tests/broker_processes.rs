//! mirror-worker as a process between two independent broker processes (nisshi): the admin path (target
//! topic creation with the source's partition count) and a complete `mode: migrate` run from a document.

use std::process::Command;
use std::time::Duration;

use kafka_mirror_tests::{Broker, worker_binary};
use mirror_worker::testkit;
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};

fn create_topic(bootstrap: &str, topic: &str, partitions: i32) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let new_topic = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
    let results = runtime
        .block_on(admin.create_topics(&[new_topic], &AdminOptions::new()))
        .unwrap();
    assert!(results.iter().all(Result::is_ok), "{results:?}");
}

fn partitions_of(bootstrap: &str, topic: &str) -> usize {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .unwrap();
    let metadata = consumer
        .fetch_metadata(None, Duration::from_secs(10))
        .unwrap();
    metadata
        .topics()
        .iter()
        .find(|t| t.name() == topic && t.error().is_none())
        .map_or(0, |t| t.partitions().len())
}

#[test]
fn migrate_between_two_broker_processes_creates_the_target_topic_and_copies_everything() {
    let source = Broker::start("source");
    let target = Broker::start("target");
    create_topic(&source.bootstrap, "testtopic", 4);
    let seeded = testkit::produce(&source.bootstrap, "testtopic", 0, 2000, 50, 200).unwrap();
    assert_eq!(
        partitions_of(&target.bootstrap, "mirror.testtopic"),
        0,
        "the target starts without the topic"
    );

    let dir = tempfile::tempdir().unwrap();
    let document = dir.path().join("mirror.yaml");
    std::fs::write(
        &document,
        format!(
            "apiVersion: kafkamirror.io/v1alpha1\nkind: KafkaMirror\nmetadata: {{name: migration}}\nspec:\n  \
             source: {{bootstrapServers: \"{}\", groupId: mirrorgroup}}\n  target: {{bootstrapServers: \"{}\"}}\n  \
             topics:\n    include: [testtopic]\n    rename: \"mirror.{{topic}}\"\n    create: {{replicationFactor: 1}}\n  \
             mode: migrate\n  numStreams: 2\n",
            source.bootstrap, target.bootstrap
        ),
    )
    .unwrap();
    let output = Command::new(worker_binary())
        .args([
            "--config",
            document.to_str().unwrap(),
            "--http-listen",
            "127.0.0.1:0",
            "--commit-interval",
            "0.5",
        ])
        .output()
        .expect("running mirror-worker");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "mirror-worker failed ({:?}):\n{stdout}\n{stderr}",
        output.status
    );
    assert!(stdout.contains("migration complete"), "{stdout}");
    let row = stdout
        .lines()
        .find(|l| l.starts_with("testtopic"))
        .unwrap_or_else(|| panic!("no summary row:\n{stdout}"));
    let columns: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(
        columns[..3],
        ["testtopic", "mirror.testtopic", "2000"],
        "{row}"
    );

    assert_eq!(
        partitions_of(&target.bootstrap, "mirror.testtopic"),
        4,
        "created with the source's partition count"
    );
    let copy = testkit::read_all(
        &target.bootstrap,
        "mirror.testtopic",
        2000,
        Duration::from_secs(60),
    )
    .unwrap();
    let v = testkit::verify(&seeded, &copy);
    assert!(v.is_intact(), "{v}");
    assert_eq!(v.duplicated, 0, "{v}");
}

#[test]
fn a_bad_document_exits_2_naming_the_field_before_touching_any_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let document = dir.path().join("bad.yaml");
    std::fs::write(
        &document,
        "apiVersion: kafkamirror.io/v1alpha1\nkind: KafkaMirror\nmetadata: {name: bad}\nspec:\n  source: \
         {bootstrapServers: \"127.0.0.1:1\"}\n  target: {bootstrapServers: \"127.0.0.1:2\"}\n  topics: {include: \
         [\"orders[\"]}\n",
    )
    .unwrap();
    let output = Command::new(worker_binary())
        .args(["--config", document.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let last = stderr
        .lines()
        .rfind(|l| !l.trim().is_empty())
        .unwrap_or_default();
    assert!(
        last.contains("spec.topics.include[0]: invalid regular expression \"orders[\""),
        "{stderr}"
    );
}
