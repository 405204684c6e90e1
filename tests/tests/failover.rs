//! Disaster recovery with `spec.consumerGroups`, on two Apache Kafka clusters through the operator on the real
//! API server (the pod runner runs the real `mirror-worker`): a consumer group of the source switches to the
//! target and resumes where it was, planned and with the source cluster killed, and switches back to the
//! repaired source through a mirror of the opposite direction. Every switch is judged by the records the
//! group's consumer read, by value: how many of those it had not read it missed (must be 0) and how many it read
//! a second time (printed, and held to what the status stated).

use std::collections::{BTreeSet, HashSet};
use std::time::{Duration, SystemTime};

use kafka_mirror_clients::offset_map::offset_syncs_topic;
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
/// The time a status section states in `field` (an RFC 3339 timestamp, as the operator writes it).
fn status_time(section: &serde_json::Value, field: &str) -> SystemTime {
    section[field]
        .as_str()
        .and_then(|t| t.parse::<k8s_openapi::jiff::Timestamp>().ok())
        .map(SystemTime::from)
        .unwrap_or_else(|| panic!("no {field}: {section:#}"))
}

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

/// Records read by a group, chunk by chunk, each with the time its offsets were committed: a sync taken after
/// that time knows them.
type Consumed = Vec<(SystemTime, Vec<ReadRecord>)>;

/// `group` reads `topic` on `source` for 12 s while records from `from` on are written to it (added to
/// `produced`), slower than the writer, as a consumer with work to do per record: it is behind at the end.
fn read_while_written(
    source: &KafkaCluster,
    group: &str,
    topic: &str,
    from: u64,
    produced: &mut Vec<SampleRecord>,
) -> Consumed {
    let feed = Feed {
        from,
        ..Feed::until_stopped(50, Duration::from_millis(100), KEYS, 100)
    };
    let writer = BackgroundProducer::start(source.client(), topic, feed);
    let reader = GroupReader::new(&source.internal, group, topic);
    let mut consumed = Vec::new();
    let started = std::time::Instant::now();
    while started.elapsed() < Duration::from_secs(12) {
        let chunk = reader.read(40, Duration::from_secs(2), Duration::from_millis(300));
        consumed.push((SystemTime::now(), chunk));
        std::thread::sleep(Duration::from_millis(300));
    }
    produced.extend(writer.stop());
    let chunk = reader.read(40, Duration::from_secs(2), Duration::from_millis(300));
    consumed.push((SystemTime::now(), chunk));
    consumed
}

/// The unplanned failover, once the source was killed: the status must say the groups cannot be synced and
/// keep the last sync's numbers; `group` then starts on the target. It must miss none of the records on the
/// target it had not read, and read again at most what the status stated plus what it committed on the source
/// after the last sync. What it had read, the records that never reached the target, and what it read there.
#[allow(clippy::too_many_arguments)]
fn switch_after_the_source_died(
    what: &str,
    scene: &Scene,
    mirror: &str,
    target: &KafkaCluster,
    group: &str,
    topic: &str,
    consumed: &Consumed,
    produced: &[SampleRecord],
) -> (BTreeSet<Value>, BTreeSet<Value>, Vec<ReadRecord>) {
    let killed_at = SystemTime::now();
    eprintln!(
        "{what}: the source was killed with {} records written to it",
        produced.len()
    );
    scene.wait_for(
        "FailoverReady=False GroupSyncFailed",
        Duration::from_secs(90),
        || condition(scene, mirror, "FailoverReady").1 == "GroupSyncFailed",
    );
    let (_, _, message) = condition(scene, mirror, "FailoverReady");
    eprintln!("FailoverReady after the source died: {message}");
    let failover = scene.get(&["kmirror", mirror])["status"]["failover"].clone();
    let synced_at = status_time(&failover, "syncedAt");
    let status = group_status(scene, mirror, group);
    eprintln!(
        "status.failover.groups[{group}] as of the last sync, {:.1} s before the kill: {status}",
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
    // The recovery point as the last lag measurement stated it: the age of the oldest record not yet on the
    // target, by its timestamp (the sample records are stamped from 2019 on, a millisecond apart).
    let lag = scene.get(&["kmirror", mirror])["status"]["lag"].clone();
    let measured_at = status_time(&lag, "measuredAt");
    let stamped_since = measured_at
        .duration_since(
            SystemTime::UNIX_EPOCH + Duration::from_millis(samples::BASE_TIMESTAMP_MS as u64),
        )
        .unwrap()
        .as_secs() as i64;
    eprintln!(
        "{what}: status.lag as last measured: {lag}; the first sample record was stamped {stamped_since} s before"
    );
    match lag["seconds"].as_i64() {
        Some(seconds) if lag["total"].as_i64().unwrap() > 0 => assert!(
            (stamped_since - 30..=stamped_since).contains(&seconds),
            "{what}: lag.seconds {seconds} is not the age of a sample record ({stamped_since} s and a few less)"
        ),
        Some(seconds) => assert_eq!(seconds, 0, "{what}: nothing behind, no age"),
        // Absent when the oldest record behind could not be read: only a measurement the kill cut short may
        // lack it (it reads the watermarks first, then that record).
        None => {
            let before_kill = killed_at.duration_since(measured_at).unwrap_or_default();
            assert!(
                before_kill < Duration::from_secs(10),
                "{what}: lag.seconds is absent from a measurement {before_kill:?} before the source was killed"
            );
        }
    }
    let stated_re_read = status["reRead"].as_u64().unwrap() as usize;
    // Committed after the last sync (its time is taken before it asks Kafka; a second of slack for
    // syncedAt's precision): what the target's offsets cannot know.
    let after_sync: usize = consumed
        .iter()
        .filter(|(at, _)| *at + Duration::from_secs(1) >= synced_at)
        .map(|(_, chunk)| chunk.len())
        .sum();
    let on_target = values(&read_records(
        &target.client(),
        topic,
        0,
        Duration::from_secs(30),
    ));
    let read: Vec<ReadRecord> = consumed
        .iter()
        .flat_map(|(_, chunk)| chunk.iter().cloned())
        .collect();
    let read_before = values(&read);
    let stranded: BTreeSet<Value> = sample_values(produced)
        .difference(&on_target)
        .cloned()
        .collect();
    eprintln!(
        "{what}: {} records on the target; {} written to the source never reached it (the recovery point)",
        on_target.len(),
        stranded.len()
    );
    let unread: BTreeSet<Value> = on_target.difference(&read_before).cloned().collect();
    let after = GroupReader::new(&target.internal, group, topic).read(
        5_000,
        Duration::from_secs(30),
        Duration::from_secs(5),
    );
    let (missed, re_read) = judge(what, &read_before, &unread, &after);
    eprintln!(
        "{what}: read again {re_read}, allowed {stated_re_read} (stated) + {after_sync} (committed after the last sync)"
    );
    assert_eq!(missed, 0, "{what}: {group} missed records on the target");
    assert!(
        re_read <= stated_re_read + after_sync,
        "{what}: {group} read {re_read} records again: more than the {stated_re_read} the status stated plus \
         the {after_sync} it committed on the source after the last sync"
    );
    (read_before, stranded, after)
}

/// The operator's `kafka_mirror_operator_failover_missed_records` series of a group of a mirror in the
/// failover scene.
fn missed_series(mirror: &str, group: &str) -> String {
    format!(
        "kafka_mirror_operator_failover_missed_records{{namespace=\"failover\",mirror=\"{mirror}\",group=\"{group}\"}}"
    )
}

/// A mirror of the topics `include` selects, that syncs `groups`.
fn mirror(
    name: &str,
    from: &KafkaCluster,
    to: &KafkaCluster,
    include: &str,
    groups: &[&str],
) -> MirrorDocument {
    MirrorDocument::new(
        name,
        Connection::new(&from.internal),
        Connection::new(&to.internal),
    )
    .include(include)
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
    let forward = mirror("dr", &source, &target, TOPIC, &["billing", "shipping"]);
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
    assert_eq!(
        scene.operator.metric(&missed_series("dr", "billing")),
        Some(0.0),
        "the operator's gauge says it too"
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
    let consumed = read_while_written(&source, "shipping", TOPIC, 900, &mut produced);
    source.kill_broker(1);
    let (read_before, stranded, mut shipping_after) = switch_after_the_source_died(
        "failover of shipping",
        &scene,
        "dr",
        &target,
        "shipping",
        TOPIC,
        &consumed,
        &produced,
    );
    let shipping_target = GroupReader::new(&target.internal, "shipping", TOPIC);

    // 3. Failback. The forward mirror goes; the applications write to the target; `shipping` reads part of it
    // there; the source is repaired; a mirror of the opposite direction brings the target's new records back
    // (not the copies: markOrigin) and syncs the group; `shipping` switches back.
    scene.kubectl(&["delete", "kmirror", "dr", "--wait=true"]);
    scene.runner.wait_for(
        "the forward worker removed",
        Duration::from_secs(60),
        |pods| pods.is_empty(),
    );
    scene.wait_for(
        "the deleted mirror's gauges gone",
        Duration::from_secs(30),
        || {
            scene
                .operator
                .metric(&missed_series("dr", "shipping"))
                .is_none()
        },
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
    // Every topic, as a failback of the whole cluster would: the target holds the forward mirror's own
    // offset-syncs topic too, which must not come back (its offsets are the target's).
    let back = mirror("dr-back", &target, &source, ".*", &["shipping"]);
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
    let forward_syncs = offset_syncs_topic(&forward.group_id_in("failover"));
    assert!(
        target.partitions(&forward_syncs) > 0,
        "the forward mirror wrote {forward_syncs} on the target"
    );
    assert_eq!(
        source.partitions(&forward_syncs),
        0,
        "the reverse mirror of .* copied the forward mirror's own {forward_syncs} to the source"
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

/// `partitioning: key` (the default) into a target topic with fewer partitions, by two workers: each target
/// partition holds records of all four source partitions, interleaved as the two workers' copies arrived. A
/// group's offset in a target partition is where no record it has not read lies before it; the status states
/// what it reads again. One group switches mid-topic, one that read everything resumes exactly at the end, and
/// one that was reading while records were written switches after one worker left and the source was killed.
#[test]
fn a_group_switches_to_a_copy_with_other_partitions_without_missing_a_record() {
    let source = KafkaCluster::start(&ClusterOptions::default());
    let target = KafkaCluster::start(&ClusterOptions::default());
    let scene = Scene::new("failover-key");
    source.create_topic("events", 4, 1, &[]);
    target.create_topic("events", 3, 1, &[]);
    let keyed = MirrorDocument::new(
        "dr-key",
        Connection::new(&source.internal),
        Connection::new(&target.internal),
    )
    .include("events")
    .partitioning(Partitioning::Key)
    .replicas(2)
    .consumer_groups(&["analytics", "reports", "alerts"], 2);
    scene.apply(&keyed);
    scene.wait_ready("dr-key", Duration::from_secs(180));

    // A first part both groups read whole, so each has an offset in every source partition.
    let mut produced =
        samples::produce_with(&source.client(), "events", 0, 200, KEYS, 100).unwrap();
    let mut read_before: Vec<BTreeSet<Value>> = Vec::new();
    let mut alerts_consumed: Consumed = Vec::new();
    for group in ["analytics", "reports", "alerts"] {
        let first = GroupReader::new(&source.internal, group, "events").read(
            200,
            Duration::from_secs(30),
            Duration::from_secs(5),
        );
        assert_eq!(first.len(), 200, "{group}");
        read_before.push(values(&first));
        if group == "alerts" {
            alerts_consumed.push((SystemTime::now(), first));
        }
    }
    // More in batches while the mirror runs and `analytics` reads on: it stops mid-topic.
    let writer = BackgroundProducer::start(
        source.client(),
        "events",
        Feed {
            from: 200,
            ..Feed::batches(40, 20, Duration::from_millis(250), KEYS, 100)
        },
    );
    let analytics = GroupReader::new(&source.internal, "analytics", "events");
    let started = std::time::Instant::now();
    while started.elapsed() < Duration::from_secs(6) {
        read_before[0].extend(values(&analytics.read(
            30,
            Duration::from_secs(2),
            Duration::from_millis(300),
        )));
        std::thread::sleep(Duration::from_millis(300));
    }
    drop(analytics);
    produced.extend(writer.join());
    let reports_rest = GroupReader::new(&source.internal, "reports", "events").read(
        produced.len() - 200,
        Duration::from_secs(30),
        Duration::from_secs(5),
    );
    read_before[1].extend(values(&reports_rest));
    assert_eq!(
        read_before[1].len(),
        produced.len(),
        "reports read everything"
    );
    eprintln!(
        "{} records on the source; analytics read {}, reports all",
        produced.len(),
        read_before[0].len()
    );
    assert!(read_before[0].len() < produced.len() - 100);

    scene.wait_condition("dr-key", "FailoverReady=True", Duration::from_secs(180));
    // Once the mirror's positions show everything copied, `reports` resumes at the ends, re-reading nothing.
    scene.wait_for("reports reRead 0", Duration::from_secs(60), || {
        group_status(&scene, "dr-key", "reports")["reRead"] == 0
    });
    let available = sample_values(&produced);
    for (i, group) in ["analytics", "reports"].into_iter().enumerate() {
        let status = group_status(&scene, "dr-key", group);
        eprintln!("status.failover.groups[{group}]: {status}");
        assert_eq!(status["missed"], 0);
        assert_eq!(status["state"], "Synced");
        assert_eq!(status["partitions"], 4, "every source partition");
        switch_to(
            &format!("{group} to a copy with other partitions"),
            &target,
            group,
            "events",
            &read_before[i],
            &available,
            status["reRead"].as_u64().unwrap() as usize,
        );
    }

    // A worker leaves (2 → 1 replicas): it publishes its partitions' maps as it revokes them, and the one left
    // reads them before taking the partitions over, so `alerts`, still at the offsets of its first 200 records,
    // stays translatable (from a map begun at the takeover it would not be: NotTranslated).
    scene.kubectl(&[
        "patch",
        "kmirror",
        "dr-key",
        "--type=merge",
        "-p",
        r#"{"spec":{"replicas":1}}"#,
    ]);
    scene
        .runner
        .wait_for("one worker left", Duration::from_secs(90), |pods| {
            pods.len() == 1
        });

    // Unplanned: `alerts` reads on while records are written, then the source dies.
    alerts_consumed.extend(read_while_written(
        &source,
        "alerts",
        "events",
        produced.len() as u64,
        &mut produced,
    ));
    scene.wait_for(
        "alerts Synced after the hand-over",
        Duration::from_secs(60),
        || group_status(&scene, "dr-key", "alerts")["state"] == "Synced",
    );
    source.kill_broker(1);
    switch_after_the_source_died(
        "failover of alerts to a copy with other partitions",
        &scene,
        "dr-key",
        &target,
        "alerts",
        "events",
        &alerts_consumed,
        &produced,
    );
}
