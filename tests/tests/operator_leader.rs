//! Operator replicas against a real Kubernetes API server and controller manager (`tests/control-plane`),
//! mirroring between two Apache Kafka clusters, with the pod runner of the kit running the workers (see
//! `operator_control_plane.rs`):
//! - leader election on a `coordination.k8s.io` Lease: of two replicas only the Lease holder reconciles and
//!   writes; SIGKILL of the holder hands the mirror to the other within the lease duration (and not before the
//!   Lease could have expired); SIGTERM of the new holder releases the Lease at once, so a third replica takes
//!   over without waiting out the duration;
//! - the operator's own status writes do not make it reconcile again: an idle mirror is reconciled once per
//!   `--lag-interval`, not in a loop.
//!
//! Each test has a namespace (the Lease lives there too), a pod runner and operators of its own; the two Kafka
//! clusters and the control plane are shared by the tests of this file.

use std::time::{Duration, Instant};

use k8s_openapi::jiff::Timestamp;
use kafka_mirror_samples as samples;
use kafka_mirror_tests::document::{Connection, MirrorDocument};
use kafka_mirror_tests::{KafkaCluster, Operator, Scene};

const LEASE: &str = "kafka-mirror-operator";
/// `--lease-duration`: the holder renews every third of it (2 s), a standby takes over after seeing the
/// Lease unchanged for longer than it.
const LEASE_SECONDS: u64 = 6;
const LEADER: &str = "kafka_mirror_operator_leader";
/// The operator's Events' `reportingComponent`.
const COMPONENT: &str = "kafka-mirror-operator";

fn source() -> &'static KafkaCluster {
    KafkaCluster::source_and_target().0
}

fn target() -> &'static KafkaCluster {
    KafkaCluster::source_and_target().1
}

/// A mirror of `topic` (2 partitions, `records` records already in it) between the two clusters, reached by
/// the workers through their `internal` listeners.
fn mirror_of(name: &str, topic: &str, records: u64) -> MirrorDocument {
    source().create_topic(topic, 2, 1, &[]);
    samples::produce_with(&source().client(), topic, 0, records, 10, 100).unwrap();
    MirrorDocument::new(
        name,
        Connection::new(&source().internal),
        Connection::new(&target().internal),
    )
    .include(topic)
    .create(1, &[])
}

/// `--leader-election` on Lease `LEASE` in `namespace` (the test's own), lasting `LEASE_SECONDS`.
fn election_args(namespace: &str) -> Vec<String> {
    [
        "--namespace",
        namespace,
        "--leader-election",
        "--lease-name",
        LEASE,
        "--lease-namespace",
        namespace,
        "--lease-duration",
        &LEASE_SECONDS.to_string(),
    ]
    .map(String::from)
    .to_vec()
}

fn as_strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

/// The Lease's `spec.holderIdentity` (none once released).
fn holder(scene: &Scene) -> Option<String> {
    scene.get(&["lease", LEASE])["spec"]["holderIdentity"]
        .as_str()
        .filter(|h| !h.is_empty())
        .map(String::from)
}

fn is_leader(operator: &Operator) -> bool {
    operator.metric(LEADER) == Some(1.0)
}

/// `status.lag.measuredAt` of mirror `name`, when measured.
fn measured_at(scene: &Scene, name: &str) -> Option<Timestamp> {
    scene.get(&["kmirror", name])["status"]["lag"]["measuredAt"]
        .as_str()
        .map(|t| t.parse().expect("measuredAt is an RFC 3339 time"))
}

/// Polls `condition` every 100 ms for up to `timeout`; the time it took, or a failure showing the logs of
/// `operators`.
fn wait_until(
    what: &str,
    timeout: Duration,
    operators: &[&Operator],
    mut condition: impl FnMut() -> bool,
) -> Duration {
    let start = Instant::now();
    while !condition() {
        if start.elapsed() > timeout {
            let logs: Vec<String> = operators
                .iter()
                .map(|o| format!("the operator {}'s log:\n{}", o.identity, o.log()))
                .collect();
            panic!(
                "timed out after {timeout:?} waiting for {what}\n{}",
                logs.join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    start.elapsed()
}

/// The `reportingInstance` of every Event the operator published in the scene's namespace.
fn event_reporters(scene: &Scene) -> Vec<String> {
    scene.get(&["events"])["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter(|e| e["reportingComponent"] == COMPONENT)
        .filter_map(|e| e["reportingInstance"].as_str().map(String::from))
        .collect()
}

/// Two replicas on one namespace: only the Lease holder reconciles and writes the status. SIGKILL of the
/// holder: the standby takes over once the Lease stayed unchanged for its duration (measured), and keeps
/// reconciling the mirror (lag measured again, a spec edit reflected). SIGTERM of the new holder: it releases
/// the Lease on its way out, and a third replica started then takes over at once, not after a duration.
#[test]
fn only_the_lease_holder_reconciles_and_the_lease_passes_on_after_sigkill_and_sigterm() {
    let namespace = "leader-election";
    let args = election_args(namespace);
    let scene = Scene::with_operator_args(namespace, &as_strs(&args)[2..]);
    let first = &scene.operator;
    wait_until(
        "the first operator holding the Lease",
        Duration::from_secs(30),
        &[first],
        || is_leader(first),
    );
    let standby = Operator::start(scene.control_plane, "operator-standby", &as_strs(&args));
    let name = "leader-mirror";
    let mirror = mirror_of(name, "leader-topic", 200);
    scene.apply(&mirror);
    scene.wait_ready(name, Duration::from_secs(180));
    scene.wait_for("lag 0 in the status", Duration::from_secs(60), || {
        scene.get(&["kmirror", name])["status"]["lag"]["total"] == 0
    });

    // Only the holder writes: over more than a lease duration the standby stays out while the holder renews
    // the Lease and keeps measuring the lag into the status.
    let before = measured_at(&scene, name).expect("a lag measurement");
    let watch = Instant::now();
    while watch.elapsed() < Duration::from_secs(LEASE_SECONDS + 3) {
        assert_eq!(
            holder(&scene).as_deref(),
            Some(first.identity.as_str()),
            "the Lease: {:#}",
            scene.get(&["lease", LEASE])
        );
        assert_eq!(first.metric(LEADER), Some(1.0), "the holder's leader gauge");
        assert_eq!(
            standby.metric(LEADER),
            Some(0.0),
            "the standby's leader gauge"
        );
        assert_eq!(
            standby.reconciliations(),
            0.0,
            "the standby reconciled; its log:\n{}",
            standby.log()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let after = measured_at(&scene, name).expect("a lag measurement");
    assert!(
        after > before,
        "the holder keeps measuring the lag: {before} then {after}"
    );
    assert!(first.reconciliations() > 0.0);
    let reporters = event_reporters(&scene);
    assert!(
        reporters.iter().all(|r| *r == first.identity),
        "Events only from the holder: {reporters:?}"
    );
    eprintln!(
        "holder {}: {} reconciles, Events {reporters:?}; standby {}: 0 reconciles; lag measured at {before} then {after}",
        first.identity,
        first.reconciliations(),
        standby.identity
    );

    // SIGKILL: no release, so the standby waits until it saw the Lease unchanged for a whole duration.
    first.signal("KILL");
    let killed = Instant::now();
    let killed_at = Timestamp::now();
    let takeover = wait_until(
        "the standby taking over the Lease",
        Duration::from_secs(LEASE_SECONDS * 3),
        &[&standby],
        || is_leader(&standby),
    );
    eprintln!(
        "takeover after SIGKILL of the holder: {:.1} s (lease duration {LEASE_SECONDS} s, renewed every {} s)",
        takeover.as_secs_f64(),
        LEASE_SECONDS / 3
    );
    // Not before the Lease could have expired: it was renewed at most a renewal period before the kill...
    assert!(
        takeover >= Duration::from_millis(LEASE_SECONDS * 1000 * 2 / 3 - 500),
        "taken over {takeover:?} after the kill, before a Lease renewed at most {} s earlier could expire",
        LEASE_SECONDS / 3
    );
    // ...and within the duration, the standby's poll period and the time it first saw that renewal.
    assert!(
        takeover <= Duration::from_secs(LEASE_SECONDS + 2 * (LEASE_SECONDS / 3) + 1),
        "taken over only {takeover:?} after the kill"
    );
    assert_eq!(
        holder(&scene).as_deref(),
        Some(standby.identity.as_str()),
        "the Lease: {:#}",
        scene.get(&["lease", LEASE])
    );
    assert!(killed.elapsed() >= takeover);

    // The new holder reconciles the mirror: the lag is measured again, a spec edit is applied.
    wait_until(
        "a lag measurement by the new holder",
        Duration::from_secs(30),
        &[&standby],
        || measured_at(&scene, name).is_some_and(|t| t > killed_at),
    );
    assert!(standby.reconciliations() > 0.0);
    // (30 s is the default: an edit to 45 s makes generation 2.)
    scene.apply(&mirror.clone().refresh_interval_seconds(45));
    let edited = Instant::now();
    loop {
        let object = scene.get(&["kmirror", name]);
        if object["metadata"]["generation"] == 2 && object["status"]["observedGeneration"] == 2 {
            break;
        }
        assert!(
            edited.elapsed() < Duration::from_secs(30),
            "the new holder did not observe generation 2 within 30 s: {object:#}\nits log:\n{}",
            standby.log()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    let config = scene.get(&["configmap", &format!("{name}-worker-config")]);
    assert!(
        config["data"]["mirror.yaml"]
            .as_str()
            .is_some_and(|yaml| yaml.contains("refreshIntervalSeconds: 45")),
        "the worker's ConfigMap carries the edit: {config:#}"
    );
    scene.wait_ready(name, Duration::from_secs(120));

    // SIGTERM: the holder drains, releases the Lease and exits; a replica started then takes it at once.
    let terminated = Instant::now();
    let status = standby.stop(Duration::from_secs(30));
    let exited = terminated.elapsed();
    assert!(status.success(), "the holder exited with {status}");
    let lease = scene.get(&["lease", LEASE]);
    assert!(
        holder(&scene).is_none(),
        "the Lease is released by the time its holder exited: {lease:#}"
    );
    let starting = Instant::now();
    let third = Operator::start(scene.control_plane, "operator-third", &as_strs(&args));
    wait_until(
        "the third operator taking over the released Lease",
        Duration::from_secs(LEASE_SECONDS * 3),
        &[&third],
        || is_leader(&third),
    );
    let handover = starting.elapsed();
    eprintln!(
        "SIGTERM of the holder: exited (Lease released) after {:.1} s; a third replica started then held the Lease {:.1} s after its start, {:.1} s after the SIGTERM",
        exited.as_secs_f64(),
        handover.as_secs_f64(),
        terminated.elapsed().as_secs_f64()
    );
    // A Lease left held would keep a newcomer out for a whole duration from its first look at it.
    assert!(
        handover < Duration::from_secs(LEASE_SECONDS / 2),
        "the third replica waited {handover:?} for a released Lease"
    );
    let lease = scene.get(&["lease", LEASE]);
    assert_eq!(lease["spec"]["holderIdentity"], third.identity.as_str());
    assert_eq!(
        lease["spec"]["leaseTransitions"], 2,
        "two hand-overs: {lease:#}"
    );
    let taken_at = Timestamp::now();
    wait_until(
        "a lag measurement by the third holder",
        Duration::from_secs(30),
        &[&third],
        || measured_at(&scene, name).is_some_and(|t| t > taken_at),
    );
    assert!(third.reconciliations() > 0.0);
}

/// The operator's own status writes are no reason to reconcile: an idle mirror (Ready, nothing produced
/// after) is reconciled once per `--lag-interval`, where a loop (status write → watch event → reconcile →
/// status write) would reconcile every second or faster.
#[test]
fn an_idle_ready_mirror_is_reconciled_once_per_lag_interval_not_in_a_loop() {
    const LAG_INTERVAL: u64 = 10;
    const WINDOW: u64 = 60;
    let interval = LAG_INTERVAL.to_string();
    let scene = Scene::with_operator_args("idle-mirror", &["--lag-interval", &interval]);
    let name = "idle-mirror";
    scene.apply(&mirror_of(name, "idle-topic", 200));
    scene.wait_ready(name, Duration::from_secs(180));
    scene.wait_for("lag 0 in the status", Duration::from_secs(60), || {
        scene.get(&["kmirror", name])["status"]["lag"]["total"] == 0
    });
    // Past the rollout's last Deployment status changes.
    std::thread::sleep(Duration::from_secs(5));

    let before = scene.operator.reconciliations();
    let measured_before = measured_at(&scene, name).expect("a lag measurement");
    let start = Instant::now();
    let mut timeline = Vec::new();
    while start.elapsed() < Duration::from_secs(WINDOW) {
        std::thread::sleep(Duration::from_secs(5));
        timeline.push(scene.operator.reconciliations() - before);
    }
    let count = scene.operator.reconciliations() - before;
    let measured_after = measured_at(&scene, name).expect("a lag measurement");
    eprintln!(
        "{count} reconciles of an idle mirror in {WINDOW} s with --lag-interval {LAG_INTERVAL} (cumulative every 5 s: {timeline:?}); lag measured at {measured_before} then {measured_after}"
    );
    let expected = (WINDOW / LAG_INTERVAL) as f64;
    assert!(
        count <= expected + 3.0,
        "{count} reconciles in {WINDOW} s, where one per {LAG_INTERVAL} s explains {expected}: a reconcile loop? \
         cumulative every 5 s: {timeline:?}\nthe operator's log:\n{}",
        scene.operator.log()
    );
    assert!(
        count >= expected / 2.0,
        "only {count} reconciles in {WINDOW} s: the lag is measured every {LAG_INTERVAL} s"
    );
    assert!(measured_after > measured_before);
    let mirror = scene.get(&["kmirror", name]);
    assert_eq!(
        mirror["status"]["lag"]["total"], 0,
        "{:#}",
        mirror["status"]
    );
}
