//! The operator binary against a real Kubernetes API server and controller manager (`tests/control-plane`),
//! mirroring between two Apache Kafka clusters. No kubelet runs containers here: the pod runner of the kit
//! (`kafka_mirror_tests::kubelet`) runs the real `mirror-worker` binary for every worker pod, on the ConfigMap and
//! Secret files the operator rendered, and writes the pods' readiness back, so the Deployment's ready replicas,
//! and from them the mirror's `Ready` condition, come from workers that really copy.
//!
//! Each test has a namespace, a pod runner and an operator (`--namespace`) of its own; the two Kafka clusters
//! and the control plane are shared by the tests of this file.

use std::collections::BTreeMap;
use std::net::ToSocketAddrs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use kafka_mirror_clients::migration::{MIGRATION_FILE, MigrationRecord};
use kafka_mirror_crds::Mode;
use kafka_mirror_samples as samples;
use kafka_mirror_tests::document::{Connection, MirrorDocument};
use kafka_mirror_tests::producer::{BackgroundProducer, Feed};
use kafka_mirror_tests::{ClusterOptions, KafkaCluster, Scene, read_records, verify_copy};

const RECORDS: u64 = 300;

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn source() -> &'static KafkaCluster {
    KafkaCluster::source_and_target().0
}

fn target() -> &'static KafkaCluster {
    KafkaCluster::source_and_target().1
}

/// The seed's example (`deploy/examples/hdinsight-testtopic.yaml`) in `namespace`, pointed at this machine's
/// clusters: mirroring `topic` from `source` (bootstrapped at `bootstrap`) to the target, with `host_aliases`
/// (a JSON list) in place of the example's, or none; a single-broker cluster takes replication factor 1.
fn seed_example(
    namespace: &str,
    dir: &Path,
    topic: &str,
    bootstrap: &str,
    host_aliases: Option<serde_json::Value>,
) -> PathBuf {
    let example = repository().join("deploy/examples/hdinsight-testtopic.yaml");
    let mut mirror: serde_json::Value =
        yaml_serde::from_str(&std::fs::read_to_string(example).unwrap()).unwrap();
    mirror["metadata"]["namespace"] = namespace.into();
    let spec = &mut mirror["spec"];
    spec["source"]["bootstrapServers"] = bootstrap.into();
    match host_aliases {
        Some(aliases) => spec["source"]["hostAliases"] = aliases,
        None => {
            spec["source"]
                .as_object_mut()
                .unwrap()
                .remove("hostAliases");
        }
    }
    spec["target"]["bootstrapServers"] = target().internal.clone().into();
    spec["topics"]["include"] = serde_json::json!([topic]);
    spec["topics"]["create"]["replicationFactor"] = 1.into();
    let path = dir.join("mirror.yaml");
    std::fs::write(&path, yaml_serde::to_string(&mirror).unwrap()).unwrap();
    path
}

/// `kubectl get kmirror name`'s LAG and READY columns.
fn lag_and_ready_columns(scene: &Scene, name: &str) -> (String, String) {
    let columns = scene.columns(name, false);
    let column = |title: &str| {
        columns
            .get(title)
            .cloned()
            .unwrap_or_else(|| panic!("no {title}: {columns:?}"))
    };
    (column("LAG"), column("READY"))
}

/// Waits for `status.lag.total` 0 (the operator measures it from Kafka every 2 s here).
fn wait_for_lag_0(scene: &Scene, name: &str) {
    scene.wait_for("lag 0 in the status", Duration::from_secs(60), || {
        scene.get(&["kmirror", name])["status"]["lag"]["total"] == 0
    });
}

/// The owner reference of an object the operator made: controlled by the `KafkaMirror` `name`.
fn assert_owned_by(object: &serde_json::Value, name: &str) {
    let owners = object["metadata"]["ownerReferences"]
        .as_array()
        .unwrap_or_else(|| panic!("no ownerReferences: {object:#}"));
    assert!(
        owners
            .iter()
            .any(|o| o["kind"] == "KafkaMirror" && o["name"] == name && o["controller"] == true),
        "{} {} is not controlled by KafkaMirror {name}: {owners:#?}",
        object["kind"],
        object["metadata"]["name"]
    );
}

/// `kubectl apply -f` of the seed example: the operator makes the worker's ServiceAccount, ConfigMap,
/// Deployment and metrics Service, each owned by the mirror; the pod runner runs its worker; `kubectl wait
/// --for=condition=Ready` returns once the copy caught up; `kubectl get kmirror` shows lag 0 measured from
/// Kafka; every record arrived with its key, headers and order; `kubectl delete` leaves nothing behind
/// (the controller manager's garbage collector removes what the mirror owned).
#[test]
fn the_seed_example_applied_with_kubectl_mirrors_reports_lag_0_and_is_collected_on_delete() {
    let scene = Scene::new("seed");
    let name = "primary-to-secondary";
    source().create_topic("testtopic", 3, 1, &[]);
    let seeded =
        samples::produce_with(&source().client(), "testtopic", 0, RECORDS, 20, 100).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let file = seed_example(
        &scene.namespace,
        dir.path(),
        "testtopic",
        &source().internal,
        None,
    );
    let applied = scene.kubectl(&["apply", "-f", file.to_str().unwrap()]);
    assert!(
        applied.contains("kafkamirror.kafkamirror.io/primary-to-secondary created"),
        "{applied}"
    );

    scene.wait_ready(name, Duration::from_secs(180));
    let copy = read_records(
        &target().client(),
        "testtopic",
        RECORDS as usize,
        Duration::from_secs(60),
    );
    verify_copy("the seed example through the operator", &seeded, &copy);

    // What the operator made, each owned by the mirror.
    let objects = [
        ("serviceaccount", format!("{name}-worker")),
        ("configmap", format!("{name}-worker-config")),
        ("deployment", format!("{name}-worker")),
        ("service", format!("{name}-worker-metrics")),
    ];
    for (kind, object) in &objects {
        assert_owned_by(&scene.get(&[kind, object]), name);
    }
    assert!(
        !scene.exists(&["poddisruptionbudget", &format!("{name}-worker")]),
        "one replica has no PodDisruptionBudget"
    );
    let deployment = scene.get(&["deployment", &format!("{name}-worker")]);
    assert_eq!(deployment["status"]["readyReplicas"], 1, "{deployment:#}");
    // The worker pod was admitted under the restricted Pod Security Standard, which the API server enforces
    // in this namespace: a pod that breaks it is refused there.
    let privileged = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "privileged", "namespace": scene.namespace},
        "spec": {"containers": [{"name": "c", "image": "busybox", "securityContext": {"privileged": true}}]},
    });
    let refused = scene
        .control_plane
        .try_kubectl_with(&["apply", "-f", "-"], &privileged.to_string());
    let why = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success() && why.contains("violates PodSecurity \"restricted:"),
        "the namespace enforces the restricted standard: {why}"
    );

    // The lag as a user sees it: measured from Kafka (the group's commits against the source's watermarks).
    wait_for_lag_0(&scene, name);
    let mirror = scene.get(&["kmirror", name]);
    eprintln!("status: {:#}", mirror["status"]);
    let topics = mirror["status"]["topics"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        topics
            .iter()
            .any(|t| t["name"] == "testtopic" && t["lag"] == 0 && t["partitions"] == 3),
        "status.topics has testtopic, 3 partitions at lag 0: {:#}",
        mirror["status"]
    );
    assert_eq!(
        lag_and_ready_columns(&scene, name),
        ("0".to_string(), "True".to_string())
    );

    // Delete: the garbage collector removes everything the mirror owned, the worker pod with its Deployment.
    scene.kubectl(&["delete", "kmirror", name, "--wait=true"]);
    scene.wait_for("garbage collection", Duration::from_secs(60), || {
        objects
            .iter()
            .all(|(kind, object)| !scene.exists(&[kind, object]))
    });
    scene
        .runner
        .wait_for("the worker pod removed", Duration::from_secs(30), |pods| {
            pods.is_empty()
        });
}

/// `kubectl get kmirror name -o wide`'s DELIVERY column.
fn delivery_column(scene: &Scene, name: &str) -> String {
    let columns = scene.columns(name, true);
    columns
        .get("DELIVERY")
        .cloned()
        .unwrap_or_else(|| panic!("no DELIVERY column: {columns:?}"))
}

#[test]
fn the_seed_example_with_delivery_exactly_once_mirrors_each_record_once_and_reports_lag_0() {
    let scene = Scene::new("exactly-once");
    let name = "primary-to-secondary";
    let topic = "eos-testtopic";
    source().create_topic(topic, 3, 1, &[]);
    let seeded = samples::produce_with(&source().client(), topic, 0, RECORDS, 20, 100).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = seed_example(
        &scene.namespace,
        dir.path(),
        topic,
        &source().internal,
        None,
    );
    let mut mirror: serde_json::Value =
        yaml_serde::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    mirror["spec"]["delivery"] = "exactlyOnce".into();
    std::fs::write(&file, yaml_serde::to_string(&mirror).unwrap()).unwrap();
    scene.kubectl(&["apply", "-f", file.to_str().unwrap()]);

    scene.wait_ready(name, Duration::from_secs(180));
    // read_committed, the reader exactly once asks for: each record once.
    let copy = read_records(
        &target().client(),
        topic,
        RECORDS as usize,
        Duration::from_secs(60),
    );
    let v = verify_copy("the seed example with delivery exactlyOnce", &seeded, &copy);
    assert_eq!(v.duplicated, 0, "{v}");
    // The operator's lag reads the source group, which the worker commits after each transaction.
    wait_for_lag_0(&scene, name);
    scene.wait_for("status.delivery", Duration::from_secs(30), || {
        scene.get(&["kmirror", name])["status"]["delivery"] == "exactlyOnce"
    });
    assert_eq!(delivery_column(&scene, name), "exactlyOnce");
    scene.kubectl(&["delete", "kmirror", name, "--wait=true"]);
}

/// The name HDInsight's brokers advertise in the walkthrough's FQDN variant; nothing here resolves it.
const ADVERTISED: &str = "wn0-kafka.abc123.internal.cloudapp.net";

/// A source cluster whose brokers advertise [`ADVERTISED`] on their PLAINTEXT listener.
fn fqdn_source() -> &'static KafkaCluster {
    static CLUSTER: OnceLock<KafkaCluster> = OnceLock::new();
    CLUSTER.get_or_init(|| {
        assert!(
            (ADVERTISED, 0).to_socket_addrs().is_err(),
            "{ADVERTISED} resolves on this machine: this test needs a name that resolves nowhere"
        );
        KafkaCluster::start_for_process(
            "fqdn-source",
            &ClusterOptions {
                advertised_host: Some(ADVERTISED.into()),
                ..ClusterOptions::default()
            },
        )
    })
}

/// The HDInsight walkthrough's FQDN variant: the source's brokers advertise a worker-node FQDN that no DNS
/// server resolves, the mirror bootstraps by IP and maps the name in `spec.source.hostAliases`. Both the
/// worker (whose pod here has no `/etc/hosts` of its own: the pod runner runs it on this machine's) and the
/// operator's own clients, which measure the lag, resolve it through the aliases: the mirror reaches `Ready`
/// and `kubectl get kmirror` shows lag 0.
#[test]
fn the_hdinsight_fqdn_variant_reaches_ready_with_lag_0_through_host_aliases() {
    let scene = Scene::new("hdinsight-fqdn");
    let name = "primary-to-secondary";
    let topic = "fqdn-testtopic";
    let source = fqdn_source();
    source.create_topic(topic, 3, 1, &[]);
    let seeded = samples::produce_with(&source.client(), topic, 0, RECORDS, 20, 100).unwrap();
    assert!(
        source.plaintext.contains(ADVERTISED),
        "{}",
        source.plaintext
    );
    let by_ip = source.plaintext.replace(ADVERTISED, "127.0.0.1");

    let dir = tempfile::tempdir().unwrap();
    let aliases = serde_json::json!([{"ip": "127.0.0.1", "hostnames": [ADVERTISED]}]);
    let file = seed_example(&scene.namespace, dir.path(), topic, &by_ip, Some(aliases));
    scene.kubectl(&["apply", "-f", file.to_str().unwrap()]);

    scene.wait_ready(name, Duration::from_secs(180));
    let copy = read_records(
        &target().client(),
        topic,
        RECORDS as usize,
        Duration::from_secs(60),
    );
    verify_copy("the FQDN variant through the operator", &seeded, &copy);
    wait_for_lag_0(&scene, name);
    assert_eq!(
        lag_and_ready_columns(&scene, name),
        ("0".to_string(), "True".to_string())
    );
}

/// Each partition's records as `(key, value, headers, timestamp)`, in offset order, the first `ends[p]` of
/// partition `p` only when `ends` is given.
type Copied = Vec<(
    Option<Vec<u8>>,
    Option<Vec<u8>>,
    Vec<(String, Vec<u8>)>,
    Option<i64>,
)>;

fn by_partition(records: &[samples::ReadRecord], ends: Option<&[i64]>) -> BTreeMap<i32, Copied> {
    let mut sorted = records.to_vec();
    sorted.sort_by_key(|r| (r.partition, r.offset));
    let mut partitions: BTreeMap<i32, Copied> = BTreeMap::new();
    for r in sorted {
        if ends.is_some_and(|ends| r.offset >= ends[r.partition as usize]) {
            continue;
        }
        partitions
            .entry(r.partition)
            .or_default()
            .push((r.key, r.value, r.headers, r.timestamp));
    }
    partitions
}

/// `mode: migrate` through the operator while a producer keeps writing to the source: the operator records the
/// end offsets in `<name>-migration`, the workers (two pods) read that record, and the target ends up holding,
/// partition by partition, exactly the source's records below the recorded ends — none after them, whatever
/// the workers did when they finished — and the operator scales the workers to zero and calls it complete.
#[test]
fn a_migration_through_the_operator_copies_exactly_up_to_the_recorded_end_and_scales_to_zero() {
    let scene = Scene::new("migrate");
    let topic = "migrate-orders";
    source().create_topic(topic, 3, 1, &[]);
    samples::produce_with(&source().client(), topic, 0, RECORDS, 20, 100).unwrap();
    let producer = BackgroundProducer::start(
        source().client(),
        topic,
        Feed {
            from: RECORDS,
            ..Feed::until_stopped(20, Duration::from_millis(100), 20, 100)
        },
    );

    let mirror = MirrorDocument::new(
        "migration",
        Connection::new(&source().internal),
        Connection::new(&target().internal),
    )
    .include(topic)
    .create(1, &[])
    .mode(Mode::Migrate)
    .replicas(2);
    scene.apply(&mirror);
    scene.wait_for("the migration completed", Duration::from_secs(180), || {
        !scene.get(&["kmirror", "migration"])["status"]["migration"]["completedAt"].is_null()
    });
    let produced = producer.stop().len() as u64 + RECORDS;
    let status = scene.get(&["kmirror", "migration"])["status"].clone();
    eprintln!("status: {status:#}");

    let record = scene.get(&["configmap", "migration-migration"]);
    let record = MigrationRecord::from_json(
        record["data"][MIGRATION_FILE]
            .as_str()
            .expect("the recorded end offsets"),
        "ConfigMap migration-migration",
    )
    .unwrap();
    let ends = record.topics[topic].clone();
    let end_total: i64 = ends.iter().sum();
    eprintln!("recorded ends {ends:?} ({end_total} records of {produced} produced)");
    assert!(
        end_total >= RECORDS as i64 && (end_total as u64) < produced,
        "the end lies between the seeded records and what the producer wrote after the start"
    );

    // The workers scale to zero and the migration is Ready.
    scene.wait_for(
        "the workers scaled to zero",
        Duration::from_secs(60),
        || {
            scene.get(&["deployment", "migration-worker"])["spec"]["replicas"] == 0
                && scene.runner.live_pods().is_empty()
        },
    );
    scene.wait_ready("migration", Duration::from_secs(60));

    // Partition by partition, the target holds exactly the source's records below the recorded ends.
    let on_source = read_records(
        &source().client(),
        topic,
        produced as usize,
        Duration::from_secs(60),
    );
    let on_target = read_records(
        &target().client(),
        topic,
        end_total as usize,
        Duration::from_secs(60),
    );
    assert_eq!(
        on_target.len() as i64,
        end_total,
        "the target holds the records below the recorded ends, none after"
    );
    assert!(
        by_partition(&on_target, None) == by_partition(&on_source, Some(&ends)),
        "each target partition equals the source partition's records below its recorded end"
    );
    for pod in scene.runner.pods() {
        eprintln!(
            "pod {}: started {} times, exits {:?}",
            pod.name, pod.starts, pod.exits
        );
    }
}
