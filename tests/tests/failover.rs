//! Disaster recovery with `spec.consumerGroups`, on two Apache Kafka clusters through the operator on the real
//! API server (the pod runner runs the real `mirror-worker`): a consumer group of the source switches to the
//! target and resumes where it was, planned and with the source cluster killed, and switches back to the
//! repaired source through a mirror of the opposite direction. Every switch is judged by the records the
//! group's consumer read, by value: how many of those it had not read it missed (must be 0) and how many it read
//! a second time (printed, and held to what the status stated).

use std::collections::{BTreeSet, HashSet};
use std::time::{Duration, SystemTime};

use kafka_mirror_crds::{Delivery, Partitioning};
use kafka_mirror_samples::{self as samples, ReadRecord, SampleRecord};
use kafka_mirror_tests::document::{Connection, MirrorDocument};
use kafka_mirror_tests::group::GroupReader;
use kafka_mirror_tests::producer::{BackgroundProducer, Feed};
use kafka_mirror_tests::{ClusterOptions, KafkaCluster, Scene, read_records};

const TOPIC: &str = "orders";
const KEYS: u64 = 30;

/// A record by what it holds: every sample record's value is unique (`key#seq|...`).
type Value = Vec<u8>;

fn values(records: &[ReadRecord]) -> BTreeSet<Value> {
    records.iter().filter_map(|r| r.value.clone()).collect()
}

fn sample_values(records: &[SampleRecord]) -> BTreeSet<Value> {
    records.iter().map(|r| r.value.clone()).collect()
}

/// The mirror's condition `type_`: (status, reason, message).
fn condition(scene: &Scene, name: &str, type_: &str) -> (String, String, String) {
    let mirror = scene.get(&["kmirror", name]);
    let found = mirror["status"]["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == type_).cloned())
        .unwrap_or_else(|| panic!("no {type_} condition: {:#}", mirror["status"]));
    let text = |key: &str| found[key].as_str().unwrap_or_default().to_string();
    (text("status"), text("reason"), text("message"))
}

/// `status.failover.groups[name]` of the mirror.
fn group_status(scene: &Scene, mirror: &str, group: &str) -> serde_json::Value {
    let status = scene.get(&["kmirror", mirror])["status"].clone();
    status["failover"]["groups"]
        .as_array()
        .and_then(|groups| groups.iter().find(|g| g["name"] == group).cloned())
        .unwrap_or_else(|| panic!("no group {group} in status.failover: {status:#}"))
}

/// How a switch went for one group: of `unread` (what it had not read before switching), what it did not read
/// after (`missed`); of what it read before, what it read again (`re_read`).
fn judge(
    what: &str,
    read_before: &BTreeSet<Value>,
    unread: &BTreeSet<Value>,
    read_after: &[ReadRecord],
) -> (usize, usize) {
    let after = values(read_after);
    let missed = unread.difference(&after).count();
    let re_read = after.intersection(read_before).count();
    eprintln!(
        "{what}: had read {}, had not read {}; after switching read {}: missed {missed}, read again {re_read}",
        read_before.len(),
        unread.len(),
        after.len()
    );
    (missed, re_read)
}

/// Starts `group`'s consumer on `cluster` and judges the switch (see [`judge`]): of `available` (records that
/// exist for it), it must read every one it had not read (`read_before`), and read again at most
/// `allowed_re_read`. What it read.
fn switch_to(
    what: &str,
    cluster: &KafkaCluster,
    group: &str,
    topic: &str,
    read_before: &BTreeSet<Value>,
    available: &BTreeSet<Value>,
    allowed_re_read: usize,
) -> Vec<ReadRecord> {
    let unread: BTreeSet<Value> = available.difference(read_before).cloned().collect();
    let after = GroupReader::new(&cluster.internal, group, topic).read(
        10_000,
        Duration::from_secs(30),
        Duration::from_secs(5),
    );
    let (missed, re_read) = judge(what, read_before, &unread, &after);
    assert_eq!(missed, 0, "{what}: {group} missed records");
    assert!(
        re_read <= allowed_re_read,
        "{what}: {group} read {re_read} records again, the status stated at most {allowed_re_read}"
    );
    after
}

fn mirror(name: &str, from: &KafkaCluster, to: &KafkaCluster, groups: &[&str]) -> MirrorDocument {
    MirrorDocument::new(
        name,
        Connection::new(&from.internal),
        Connection::new(&to.internal),
    )
    .include(TOPIC)
    .partitioning(Partitioning::Preserve)
    .create(1, &[])
    .mark_origin(true)
    .consumer_groups(groups, 2)
}

/// The planned switch, the failover with the source killed and the failback to the repaired source, in one
/// story on the same topic, as a platform team would live it.
#[test]
fn a_consumer_group_fails_over_to_the_target_and_back_without_missing_a_record() {
    let source = KafkaCluster::start(&ClusterOptions::default());
    let target = KafkaCluster::start(&ClusterOptions::default());
    let scene = Scene::new("failover");
    source.create_topic(TOPIC, 3, 1, &[]);
    let mut produced = samples::produce_with(&source.client(), TOPIC, 0, 900, KEYS, 100).unwrap();

    // 1. Planned: `billing` read part of the topic on the source and committed.
    let billing_before = GroupReader::new(&source.internal, "billing", TOPIC).read(
        400,
        Duration::from_secs(30),
        Duration::from_secs(5),
    );
    assert_eq!(billing_before.len(), 400);
    let forward = mirror("dr", &source, &target, &["billing", "shipping"]);
    scene.apply(&forward);
    scene.wait_condition("dr", "FailoverReady=True", Duration::from_secs(180));
    let billing = group_status(&scene, "dr", "billing");
    eprintln!("status.failover.groups[billing]: {billing}");
    assert_eq!(billing["missed"], 0);
    assert_eq!(billing["state"], "Synced");
    let stated_re_read = billing["reRead"].as_u64().unwrap() as usize;
    let events = scene.kubectl(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=dr",
    ]);
    assert!(
        events.contains("GroupsSynced"),
        "an Event says the groups can switch: {events}"
    );
    let table = scene.columns("dr", true);
    assert_eq!(
        table.get("FAILOVER").map(String::as_str),
        Some("True"),
        "{table:?}"
    );
    assert_eq!(
        table.get("MISSED").map(String::as_str),
        Some("0"),
        "{table:?}"
    );

    switch_to(
        "planned switch",
        &target,
        "billing",
        TOPIC,
        &values(&billing_before),
        &sample_values(&produced),
        stated_re_read,
    );

    // Its offsets on the target are now past the source's (it consumed there): never moved back, and said so.
    scene.wait_for("billing AheadOnTarget", Duration::from_secs(60), || {
        group_status(&scene, "dr", "billing")["state"] == "AheadOnTarget"
    });
    eprintln!(
        "billing after its switch: {}",
        group_status(&scene, "dr", "billing")
    );

    // 2. Failover: `shipping` consumes on the source while records are written, then the source dies.
    let feed = Feed {
        from: 900,
        ..Feed::until_stopped(50, Duration::from_millis(100), KEYS, 100)
    };
    let writer = BackgroundProducer::start(source.client(), TOPIC, feed);
    let shipping = GroupReader::new(&source.internal, "shipping", TOPIC);
    // Each chunk with the time it was committed: a sync taken after it knows it.
    let mut shipping_source: Vec<(SystemTime, Vec<ReadRecord>)> = Vec::new();
    let started = std::time::Instant::now();
    // Slower than the writer, as a consumer with work to do per record: it is behind when the source dies.
    while started.elapsed() < Duration::from_secs(12) {
        let chunk = shipping.read(40, Duration::from_secs(2), Duration::from_millis(300));
        shipping_source.push((SystemTime::now(), chunk));
        std::thread::sleep(Duration::from_millis(300));
    }
    produced.extend(writer.stop());
    let chunk = shipping.read(40, Duration::from_secs(2), Duration::from_millis(300));
    shipping_source.push((SystemTime::now(), chunk));
    drop(shipping);
    source.kill_broker(1);
    let killed_at = SystemTime::now();
    eprintln!(
        "the source was killed with {} records written to it",
        produced.len()
    );

    // The status says the groups cannot be synced any more, and keeps the last sync's numbers.
    scene.wait_for(
        "FailoverReady=False GroupSyncFailed",
        Duration::from_secs(90),
        || condition(&scene, "dr", "FailoverReady").1 == "GroupSyncFailed",
    );
    let (_, _, message) = condition(&scene, "dr", "FailoverReady");
    eprintln!("FailoverReady after the source died: {message}");
    let failover = scene.get(&["kmirror", "dr"])["status"]["failover"].clone();
    let synced_at: SystemTime = failover["syncedAt"]
        .as_str()
        .and_then(|t| t.parse::<k8s_openapi::jiff::Timestamp>().ok())
        .map(SystemTime::from)
        .unwrap_or_else(|| panic!("no syncedAt: {failover:#}"));
    let shipping_status = group_status(&scene, "dr", "shipping");
    eprintln!(
        "status.failover.groups[shipping] as of the last sync, {:.1} s before the kill: {shipping_status}",
        killed_at
            .duration_since(synced_at)
            .unwrap_or_default()
            .as_secs_f64()
    );
    for line in scene
        .operator
        .log()
        .lines()
        .filter(|l| l.contains("synced the consumer groups"))
        .rev()
        .take(3)
    {
        eprintln!("operator: {line}");
    }
    let stated_re_read = shipping_status["reRead"].as_u64().unwrap() as usize;
    // Committed after the last sync (its time is taken before it asks Kafka; a second of slack for
    // syncedAt's precision): what the target's offsets cannot know.
    let after_sync: usize = shipping_source
        .iter()
        .filter(|(at, _)| *at + Duration::from_secs(1) >= synced_at)
        .map(|(_, chunk)| chunk.len())
        .sum();

    let on_target = values(&read_records(
        &target.client(),
        TOPIC,
        0,
        Duration::from_secs(30),
    ));
    let shipping_read: Vec<ReadRecord> = shipping_source
        .iter()
        .flat_map(|(_, chunk)| chunk.iter().cloned())
        .collect();
    let read_before = values(&shipping_read);
    let stranded: BTreeSet<Value> = sample_values(&produced)
        .difference(&on_target)
        .cloned()
        .collect();
    eprintln!(
        "failover: {} records on the target; {} written to the source never reached it (the recovery point)",
        on_target.len(),
        stranded.len()
    );
    let unread: BTreeSet<Value> = on_target.difference(&read_before).cloned().collect();
    let shipping_target = GroupReader::new(&target.internal, "shipping", TOPIC);
    let mut shipping_after =
        shipping_target.read(5_000, Duration::from_secs(30), Duration::from_secs(5));
    let (missed, re_read) = judge(
        "failover of shipping",
        &read_before,
        &unread,
        &shipping_after,
    );
    assert_eq!(missed, 0, "shipping missed records on the target");
    assert!(
        re_read <= stated_re_read + after_sync,
        "shipping read {re_read} records again: more than the {stated_re_read} the status stated plus the \
         {after_sync} it committed on the source after the last sync"
    );

    // 3. Failback. The forward mirror goes; the applications write to the target; `shipping` reads part of it
    // there; the source is repaired; a mirror of the opposite direction brings the target's new records back
    // (not the copies: markOrigin) and syncs the group; `shipping` switches back.
    scene.kubectl(&["delete", "kmirror", "dr", "--wait=true"]);
    scene.runner.wait_for(
        "the forward worker removed",
        Duration::from_secs(60),
        |pods| pods.is_empty(),
    );
    let written_on_target =
        samples::produce_with(&target.client(), TOPIC, 10_000, 10_200, KEYS, 100).unwrap();
    shipping_after.extend(shipping_target.read(
        100,
        Duration::from_secs(30),
        Duration::from_secs(5),
    ));
    drop(shipping_target);
    source.start_broker(1);
    let back = mirror("dr-back", &target, &source, &["shipping"]);
    scene.apply(&back);
    scene.wait_condition("dr-back", "FailoverReady=True", Duration::from_secs(180));
    let shipping_status = group_status(&scene, "dr-back", "shipping");
    eprintln!("status.failover.groups[shipping] of dr-back: {shipping_status}");
    let stated_re_read = shipping_status["reRead"].as_u64().unwrap() as usize;

    let read_before: BTreeSet<Value> = read_before
        .union(&values(&shipping_after))
        .cloned()
        .collect();
    let shipping_back = switch_to(
        "failback",
        &source,
        "shipping",
        TOPIC,
        &read_before,
        &sample_values(&written_on_target),
        stated_re_read,
    );
    // The records stranded on the source by the failure lie before the group's translated offsets there: it
    // does not read them (they never reached the target, where it read on). Counted, not hidden.
    let back_values = values(&shipping_back);
    let stranded_read = stranded.iter().filter(|v| back_values.contains(*v)).count();
    eprintln!(
        "failback: {} records stranded on the source by the failure, {stranded_read} of them read by shipping",
        stranded.len()
    );
    // Only the target's own records came back: the source holds what was written to it and the 200.
    let expected = produced.len() + written_on_target.len();
    let on_source = read_records(&source.client(), TOPIC, expected, Duration::from_secs(60));
    let distinct: HashSet<Value> = on_source.iter().filter_map(|r| r.value.clone()).collect();
    assert_eq!(
        (on_source.len(), distinct.len()),
        (expected, expected),
        "the source holds its own records and the target's new ones, once each"
    );
}

/// `delivery: exactlyOnce`: the offset maps go into the partitions' transactions, and the target's offsets hold a
/// transaction marker after each transaction, so the distance between source and target offsets grows with
/// every commit. A group switching to the target still resumes exactly where it was.
#[test]
fn a_group_switches_to_an_exactly_once_copy_without_missing_or_re_reading_a_record() {
    let source = KafkaCluster::start(&ClusterOptions::default());
    let target = KafkaCluster::start(&ClusterOptions::default());
    let scene = Scene::new("failover-eos");
    source.create_topic("payments", 3, 1, &[]);
    let eos = MirrorDocument::new(
        "dr-eos",
        Connection::new(&source.internal),
        Connection::new(&target.internal),
    )
    .include("payments")
    .partitioning(Partitioning::Preserve)
    .create(1, &[])
    .delivery(Delivery::ExactlyOnce)
    .consumer_groups(&["audit"], 2);
    scene.apply(&eos);
    scene.wait_ready("dr-eos", Duration::from_secs(180));
    // In batches while the mirror runs, so it copies them in many transactions.
    let produced = BackgroundProducer::start(
        source.client(),
        "payments",
        Feed::batches(40, 15, Duration::from_millis(250), KEYS, 100),
    )
    .join();
    let audit_before = GroupReader::new(&source.internal, "audit", "payments").read(
        250,
        Duration::from_secs(30),
        Duration::from_secs(5),
    );
    assert_eq!(audit_before.len(), 250);
    scene.wait_condition("dr-eos", "FailoverReady=True", Duration::from_secs(180));
    let audit = group_status(&scene, "dr-eos", "audit");
    eprintln!("status.failover.groups[audit]: {audit}");
    let stated_re_read = audit["reRead"].as_u64().unwrap() as usize;

    switch_to(
        "switch to the exactly-once copy",
        &target,
        "audit",
        "payments",
        &values(&audit_before),
        &sample_values(&produced),
        stated_re_read,
    );
    // The copies sit after transaction markers: without them in the map, the translation would be off by one
    // per transaction (and re-read that many).
    let copy = read_records(
        &target.client(),
        "payments",
        produced.len(),
        Duration::from_secs(30),
    );
    let last_offsets: i64 = (0..3)
        .map(|p| {
            copy.iter()
                .filter(|r| r.partition == p)
                .map(|r| r.offset + 1)
                .max()
                .unwrap_or(0)
        })
        .sum();
    eprintln!(
        "the target holds {} records in {last_offsets} offsets: {} are transaction markers",
        copy.len(),
        last_offsets - copy.len() as i64
    );
    assert!(
        last_offsets > copy.len() as i64 + 3,
        "the copy was written in several transactions"
    );
}
