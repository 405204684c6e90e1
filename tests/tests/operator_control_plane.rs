//! The operator binary against a real Kubernetes API server and controller manager (`tests/control-plane`),
//! mirroring between two Apache Kafka clusters. No kubelet runs containers here: the pod runner of the kit
//! (`kafka_mirror_tests::kubelet`) runs the real `mirror-worker` binary for every worker pod, on the ConfigMap and
//! Secret files the operator rendered, and writes the pods' readiness back, so the Deployment's ready replicas,
//! and from them the mirror's `Ready` condition, come from workers that really copy.
//!
//! Each test has a namespace, a pod runner and an operator (`--namespace`) of its own; the two Kafka clusters
//! and the control plane are shared by the tests of this file.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use kafka_mirror_samples as samples;
use kafka_mirror_tests::{ClusterOptions, KafkaCluster, Scene, read_records, verify_copy};

const RECORDS: u64 = 300;

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn source() -> &'static KafkaCluster {
    static CLUSTER: OnceLock<KafkaCluster> = OnceLock::new();
    CLUSTER.get_or_init(|| KafkaCluster::start_for_process("source", &ClusterOptions::default()))
}

fn target() -> &'static KafkaCluster {
    static CLUSTER: OnceLock<KafkaCluster> = OnceLock::new();
    CLUSTER.get_or_init(|| KafkaCluster::start_for_process("target", &ClusterOptions::default()))
}

/// The seed's example (`deploy/examples/hdinsight-testtopic.yaml`) pointed at this machine's clusters: its
/// brokers here advertise IP addresses, so the `hostAliases` for HDInsight's names are left out, and a
/// single-broker cluster takes replication factor 1.
fn seed_example(namespace: &str, dir: &Path) -> PathBuf {
    let example = repository().join("deploy/examples/hdinsight-testtopic.yaml");
    let mut mirror: serde_json::Value =
        yaml_serde::from_str(&std::fs::read_to_string(example).unwrap()).unwrap();
    mirror["metadata"]["namespace"] = namespace.into();
    let spec = &mut mirror["spec"];
    spec["source"]["bootstrapServers"] = source().internal.clone().into();
    spec["source"]
        .as_object_mut()
        .unwrap()
        .remove("hostAliases");
    spec["target"]["bootstrapServers"] = target().internal.clone().into();
    spec["topics"]["create"]["replicationFactor"] = 1.into();
    let path = dir.join("mirror.yaml");
    std::fs::write(&path, yaml_serde::to_string(&mirror).unwrap()).unwrap();
    path
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
    let file = seed_example(&scene.namespace, dir.path());
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

    // The lag as a user sees it: measured from Kafka (the group's commits against the source's watermarks).
    scene.wait_for("lag 0 in the status", Duration::from_secs(60), || {
        let mirror = scene.get(&["kmirror", name]);
        mirror["status"]["lag"]["total"] == 0
    });
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
    let table = scene.kubectl(&["get", "kmirror", name]);
    eprintln!("{table}");
    let row: Vec<&str> = table
        .lines()
        .nth(1)
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let header: Vec<&str> = table
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let column = |title: &str| {
        let i = header
            .iter()
            .position(|h| *h == title)
            .unwrap_or_else(|| panic!("no {title}: {table}"));
        row.get(i).copied().unwrap_or_default()
    };
    assert_eq!((column("LAG"), column("READY")), ("0", "True"), "{table}");

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
