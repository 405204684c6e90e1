//! The `KafkaMirror` CRD on a real Kubernetes API server (`tests/control-plane`, v1.33 built from source):
//! what `kubectl` shows a user and what the API server itself accepts, with no operator running. The
//! operator against this API server, with Apache Kafka brokers, is issue 14's next step.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use kafka_mirror_tests::ControlPlane;

/// The namespace the examples name.
const NAMESPACE: &str = "kafka-mirror";
/// Where the printer-column and scale test keeps its mirror.
const SCALED: &str = "kafka-mirror-scaled";

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The shared control plane with the CRD installed and the namespace the examples name, set up once for the
/// tests of this file, which run in parallel.
fn control_plane() -> &'static ControlPlane {
    static READY: OnceLock<()> = OnceLock::new();
    let control_plane = ControlPlane::shared();
    READY.get_or_init(|| {
        control_plane.install_crd();
        control_plane.create_namespace(NAMESPACE);
    });
    control_plane
}

/// Every file under `dir` (recursively) that holds a `KafkaMirror` (its apiVersion, which the CRD lacks).
fn mirrors_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(mirrors_under(&path));
        } else if path.extension().is_some_and(|e| e == "yaml")
            && std::fs::read_to_string(&path)
                .unwrap()
                .lines()
                .any(|l| l.trim() == "apiVersion: kafkamirror.io/v1alpha1")
        {
            found.push(path);
        }
    }
    found.sort();
    found
}

#[test]
fn every_kafka_mirror_under_deploy_and_the_kind_suite_is_accepted_by_the_api_server() {
    let control_plane = control_plane();
    let root = repository();
    let mut files = mirrors_under(&root.join("deploy"));
    files.extend(mirrors_under(&root.join("tests/e2e")));
    assert!(
        files.len() >= 4,
        "the examples and the kind suite's mirror: {files:?}"
    );
    for file in &files {
        let path = file.to_str().unwrap();
        let applied =
            control_plane.run_kubectl(&["apply", "--dry-run=server", "-n", NAMESPACE, "-f", path]);
        assert!(
            applied.contains("kafkamirror.kafkamirror.io/") && applied.contains("(server dry run)"),
            "{path}: {applied}"
        );
    }
    eprintln!("{} files accepted", files.len());
}

#[test]
fn kubectl_explain_teaches_the_fields_from_their_doc_comments() {
    let control_plane = control_plane();
    // The API server publishes an established CRD's schema a moment later; kubectl explain reads it from
    // there, as a user's would.
    let deadline = Instant::now() + Duration::from_secs(60);
    let topics = loop {
        let run = control_plane.try_kubectl(&["explain", "kafkamirror.spec.topics"]);
        if run.status.success() {
            break String::from_utf8_lossy(&run.stdout).into_owned();
        }
        assert!(
            Instant::now() < deadline,
            "kubectl explain never found the CRD's schema: {}",
            String::from_utf8_lossy(&run.stderr)
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    assert!(
        topics.contains("MirrorMaker's `--whitelist`") && topics.contains("include"),
        "{topics}"
    );
    let spec = control_plane.run_kubectl(&["explain", "kafkamirror.spec"]);
    for field in [
        "source",
        "target",
        "topics",
        "replicas",
        "numStreams",
        "paused",
        "mode",
    ] {
        assert!(
            spec.contains(field),
            "kubectl explain kafkamirror.spec lacks {field}:\n{spec}"
        );
    }
}

#[test]
fn kubectl_get_shows_the_printer_columns_and_scale_goes_through_the_scale_subresource() {
    let control_plane = control_plane();
    // The seed's example, in a namespace of this test's own (the dry runs above send the same name).
    let example = repository().join("deploy/examples/hdinsight-testtopic.yaml");
    let mut mirror: serde_json::Value =
        yaml_serde::from_str(&std::fs::read_to_string(example).unwrap()).unwrap();
    mirror["metadata"]["namespace"] = SCALED.into();
    control_plane.create_namespace(SCALED);
    control_plane.run_kubectl_with(&["apply", "-f", "-"], &mirror.to_string());
    let name = "kafkamirror/primary-to-secondary";

    let wide = control_plane.run_kubectl(&["get", "kmirror", "-n", SCALED, "-o", "wide"]);
    let header: Vec<&str> = wide
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        [
            "NAME",
            "SOURCE",
            "TARGET",
            "TOPICS",
            "LAG",
            "READY",
            "REASON",
            "MODE",
            "DELIVERY",
            "REPLICAS",
            "LAG-SECONDS",
            "FAILOVER",
            "MISSED",
            "RE-READ",
            "AGE"
        ],
        "{wide}"
    );
    assert!(
        wide.contains("10.23.0.11:9092,10.23.0.7:9092,10.23.0.9:9092"),
        "the source column shows spec.source.bootstrapServers:\n{wide}"
    );

    // Through the scale subresource (what `kubectl scale` and a HorizontalPodAutoscaler use), not a patch.
    let scaled = control_plane.run_kubectl(&["scale", "-n", SCALED, name, "--replicas=3"]);
    assert!(scaled.contains("scaled"), "{scaled}");
    let scale = control_plane.run_kubectl(&[
        "get",
        "--raw",
        &format!("/apis/kafkamirror.io/v1alpha1/namespaces/{SCALED}/kafkamirrors/primary-to-secondary/scale"),
    ]);
    let scale: serde_json::Value = serde_json::from_str(&scale).unwrap();
    assert_eq!(scale["kind"], "Scale", "{scale}");
    assert_eq!(scale["spec"]["replicas"], 3, "{scale}");
    let replicas =
        control_plane.run_kubectl(&["get", "-n", SCALED, name, "-o", "jsonpath={.spec.replicas}"]);
    assert_eq!(replicas, "3");

    // Above the schema's maximum, the scale subresource refuses too.
    let refused = control_plane.try_kubectl(&["scale", "-n", SCALED, name, "--replicas=5000"]);
    assert!(
        !refused.status.success(),
        "scaling to 5000 replicas was accepted"
    );
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("spec.replicas"), "{stderr}");
    control_plane.run_kubectl(&["delete", "-n", SCALED, name]);
}
