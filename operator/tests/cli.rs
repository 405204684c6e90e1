//! The operator binary's offline commands.

use std::path::Path;
use std::process::Command;

fn operator() -> Command {
    Command::new(env!("CARGO_BIN_EXE_kafka-mirror-operator"))
}

#[test]
fn crd_prints_exactly_the_checked_in_crd() {
    let output = operator().arg("crd").output().unwrap();
    assert!(output.status.success());
    let checked_in = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../crds/kafkamirror.yaml"),
    )
    .unwrap();
    assert!(
        String::from_utf8(output.stdout).unwrap() == checked_in,
        "`kafka-mirror-operator crd` differs from crds/kafkamirror.yaml"
    );
}

#[test]
fn render_of_a_bad_document_exits_2_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.yaml");
    std::fs::write(
        &file,
        "apiVersion: kafkamirror.io/v1alpha1\nkind: KafkaMirror\nmetadata: {name: m}\nspec:\n  source: {bootstrapServers: \
         \"a:9092\", config: {ssl.key.password: x}}\n  target: {bootstrapServers: \"b:9092\"}\n  topics: {include: [t]}\n",
    )
    .unwrap();
    let output = operator()
        .args(["render", "-f", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains("spec.source.config.ssl.key.password: refused"),
        "{stderr}"
    );
}

#[test]
fn run_without_a_cluster_exits_1_saying_what_it_tried() {
    let home = tempfile::tempdir().unwrap();
    let output = operator()
        .args(["run", "--http-listen", "127.0.0.1:0"])
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env_remove("KUBERNETES_SERVICE_PORT")
        .env("KUBECONFIG", home.path().join("absent-kubeconfig"))
        .env("HOME", home.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains(
            "error: connecting to the Kubernetes API (in-cluster service account or kubeconfig)"
        ),
        "{stderr}"
    );
}

#[test]
fn run_refuses_a_lease_duration_that_cannot_be_renewed_in_time() {
    let output = operator()
        .args(["run", "--leader-election", "--lease-duration", "1"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains("--lease-duration must be at least 3 seconds"),
        "{stderr}"
    );
}
