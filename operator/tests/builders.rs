//! From example `KafkaMirror` documents to the exact objects the operator applies. The golden files under
//! `operator/tests/golden/` are reviewed by eye and regenerated on purpose only:
//! `UPDATE_GOLDEN=1 cargo test -p kafka-mirror-operator --test builders`.

use std::path::{Path, PathBuf};

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kafka_mirror_clients::MirrorPlan;
use kafka_mirror_clients::secrets::Secrets;
use kafka_mirror_crds::KafkaMirror;
use kafka_mirror_crds::worker_pod::{CONFIG_FILE, SECRETS_DIR};
use kafka_mirror_operator::desired::{BuildSettings, DesiredObjects, WorkerState, desired_objects};
use kafka_mirror_operator::validate::MirrorIdentity;

const UID: &str = "6b1f1f5e-3f7c-4d3b-9c1e-000000000001";

/// Examples under deploy/examples that are not `KafkaMirror` documents.
const NOT_MIRRORS: &[&str] = &["networkpolicy.yaml"];

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/examples")
}

fn example(file: &str) -> KafkaMirror {
    let yaml = std::fs::read_to_string(examples_dir().join(file)).unwrap();
    let mut mirror = kafka_mirror_crds::parse_document(&yaml).unwrap();
    mirror.metadata.uid = Some(UID.to_string());
    mirror
}

fn settings() -> BuildSettings {
    BuildSettings {
        worker_image: "registry.example/mirror-worker:test".to_string(),
    }
}

fn build(mirror: &KafkaMirror) -> DesiredObjects {
    desired_objects(
        &MirrorIdentity::of(mirror).unwrap(),
        &mirror.spec,
        &settings(),
        &WorkerState::from_spec(&mirror.spec),
    )
    .unwrap()
}

#[test]
fn every_example_renders_exactly_its_golden_file() {
    let golden_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let mut checked = 0;
    for entry in std::fs::read_dir(examples_dir()).unwrap() {
        let file = entry.unwrap().file_name().into_string().unwrap();
        if !file.ends_with(".yaml") || NOT_MIRRORS.contains(&file.as_str()) {
            continue;
        }
        let rendered = build(&example(&file)).to_yaml().unwrap();
        let golden = golden_dir.join(&file);
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::write(&golden, &rendered).unwrap();
        }
        let expected = std::fs::read_to_string(&golden).unwrap_or_default();
        assert!(
            rendered == expected,
            "{file} no longer renders to tests/golden/{file}; review the change and regenerate with \
             UPDATE_GOLDEN=1 cargo test -p kafka-mirror-operator --test builders\n{rendered}"
        );
        checked += 1;
    }
    assert!(checked >= 2, "the examples were found");
}

#[test]
fn the_configmap_document_and_mounted_secrets_are_exactly_what_the_worker_loads() {
    let mirror = example("eventhubs-target.yaml");
    let objects = build(&mirror);
    let document = &objects.config_map.data.as_ref().unwrap()[CONFIG_FILE];
    // The worker's view: the document at its mount path and each Secret key as a file under the secrets dir,
    // at the path the Deployment mounts it.
    let root = tempfile::tempdir().unwrap();
    let config = root.path().join(CONFIG_FILE);
    std::fs::write(&config, document).unwrap();
    let pod = objects
        .deployment
        .spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap();
    let mounts = pod.containers[0].volume_mounts.as_ref().unwrap();
    let secret_mount = mounts
        .iter()
        .find(|m| m.mount_path.starts_with(SECRETS_DIR))
        .expect("a Secret mount");
    let relative = secret_mount
        .mount_path
        .strip_prefix(SECRETS_DIR)
        .unwrap()
        .trim_start_matches('/');
    let volume = pod
        .volumes
        .as_ref()
        .unwrap()
        .iter()
        .find(|v| v.name == secret_mount.name)
        .unwrap();
    let secret = volume.secret.as_ref().unwrap();
    assert_eq!(secret.secret_name.as_deref(), Some("eventhubs-connection"));
    let items = secret.items.as_ref().unwrap();
    assert_eq!(items.len(), 1, "only the referenced key is mounted");
    std::fs::create_dir_all(root.path().join("secrets").join(relative)).unwrap();
    std::fs::write(
        root.path()
            .join("secrets")
            .join(relative)
            .join(&items[0].path),
        "Endpoint=sb://x/",
    )
    .unwrap();

    let plan = MirrorPlan::load(&config, &Secrets::new(root.path().join("secrets")))
        .expect("the worker loads it");
    // Everything but the pod template, which the Deployment realizes and the worker never reads.
    assert_eq!(
        plan.spec,
        kafka_mirror_crds::KafkaMirrorSpec {
            template: None,
            ..mirror.spec.clone()
        }
    );
    assert!(mirror.spec.template.is_some());
    assert_eq!(plan.group_id, "orders-to-eventhubs");
    assert!(
        !document.contains("Endpoint=sb://"),
        "no credential in the ConfigMap"
    );
}

#[test]
fn the_default_group_id_is_the_same_for_operator_and_worker() {
    let mut mirror = example("hdinsight-testtopic.yaml");
    mirror.spec.source.group_id = None;
    let objects = build(&mirror);
    let document = &objects.config_map.data.as_ref().unwrap()[CONFIG_FILE];
    let parsed = kafka_mirror_crds::parse_document(document).unwrap();
    let plan = MirrorPlan::from_resource(parsed, &Secrets::new("/nonexistent")).unwrap();
    assert_eq!(
        plan.group_id,
        "kafka-mirror.kafka-mirror.primary-to-secondary"
    );
}

#[test]
fn paused_scales_to_zero_without_a_disruption_budget() {
    let mut mirror = example("eventhubs-target.yaml");
    assert!(
        build(&mirror).disruption_budget.is_some(),
        "3 replicas get a budget"
    );
    mirror.spec.paused = true;
    let objects = build(&mirror);
    assert_eq!(objects.deployment.spec.as_ref().unwrap().replicas, Some(0));
    assert!(objects.disruption_budget.is_none());
}

#[test]
fn one_replica_has_no_disruption_budget_and_several_allow_one_down() {
    let mut mirror = example("hdinsight-testtopic.yaml");
    assert!(
        build(&mirror).disruption_budget.is_none(),
        "a budget for one pod would block node drains"
    );
    mirror.spec.replicas = 4;
    let pdb = build(&mirror).disruption_budget.unwrap();
    assert_eq!(pdb.spec.unwrap().max_unavailable, Some(IntOrString::Int(1)));
}

fn config_hash(objects: &DesiredObjects) -> String {
    let template = &objects.deployment.spec.as_ref().unwrap().template;
    template
        .metadata
        .as_ref()
        .unwrap()
        .annotations
        .as_ref()
        .unwrap()["kafkamirror.io/config-hash"]
        .clone()
}

#[test]
fn a_spec_change_rolls_the_pods_but_scaling_and_pausing_do_not() {
    let mut mirror = example("hdinsight-testtopic.yaml");
    let before = config_hash(&build(&mirror));
    assert_eq!(
        before,
        config_hash(&build(&mirror)),
        "stable for the same spec"
    );
    mirror.spec.replicas = 3;
    assert_eq!(
        before,
        config_hash(&build(&mirror)),
        "kubectl scale must not restart every pod"
    );
    mirror.spec.paused = true;
    assert_eq!(
        before,
        config_hash(&build(&mirror)),
        "pausing scales to zero without a template change"
    );
    mirror.spec.num_streams = 8;
    assert_ne!(
        before,
        config_hash(&build(&mirror)),
        "numStreams changes what the worker runs"
    );
}

#[test]
fn pods_pass_the_restricted_pod_security_standard() {
    let objects = build(&example("eventhubs-target.yaml"));
    let pod = objects.deployment.spec.unwrap().template.spec.unwrap();
    let pod_sc = pod.security_context.unwrap();
    assert_eq!(pod_sc.run_as_non_root, Some(true));
    assert!(
        pod_sc.run_as_user.is_some_and(|uid| uid > 0),
        "a numeric non-root user, so runAsNonRoot holds for any image"
    );
    assert_eq!(pod_sc.seccomp_profile.unwrap().type_, "RuntimeDefault");
    assert_eq!(
        pod.automount_service_account_token,
        Some(false),
        "the workers never call the Kubernetes API: no token in the pod"
    );
    assert_eq!(
        objects.service_account.automount_service_account_token,
        Some(false),
        "nor on their ServiceAccount"
    );
    assert!(pod.host_network.is_none() && pod.host_pid.is_none() && pod.host_ipc.is_none());
    for container in &pod.containers {
        let sc = container.security_context.as_ref().unwrap();
        assert_eq!(sc.allow_privilege_escalation, Some(false));
        assert_eq!(sc.run_as_non_root, Some(true));
        assert_eq!(sc.read_only_root_filesystem, Some(true));
        assert_eq!(
            sc.capabilities.as_ref().unwrap().drop.as_deref(),
            Some(&["ALL".to_string()][..])
        );
        assert!(sc.privileged.is_none());
    }
    assert!(pod.volumes.unwrap().iter().all(|v| v.host_path.is_none()));
}

#[test]
fn user_labels_cannot_take_the_pods_out_of_their_deployment() {
    let mut mirror = example("hdinsight-testtopic.yaml");
    let mut template = mirror.spec.template.clone().unwrap_or_default();
    template
        .pod_labels
        .insert("app.kubernetes.io/instance".into(), "something-else".into());
    mirror.spec.template = Some(template);
    let deployment = build(&mirror).deployment.spec.unwrap();
    let labels = deployment.template.metadata.unwrap().labels.unwrap();
    for (key, value) in deployment.selector.match_labels.unwrap() {
        assert_eq!(labels[&key], value, "selector label {key} kept");
    }
}

#[test]
fn host_aliases_of_both_clusters_are_merged_by_ip() {
    let mut mirror = example("hdinsight-testtopic.yaml");
    let mut extra = mirror.spec.source.connection.host_aliases[0].clone();
    extra.hostnames = vec!["wn0-kafka-s.internal.cloudapp.net".into()];
    mirror.spec.target.connection.host_aliases.push(extra);
    let pod = build(&mirror)
        .deployment
        .spec
        .unwrap()
        .template
        .spec
        .unwrap();
    let aliases = pod.host_aliases.unwrap();
    assert_eq!(aliases.len(), 3);
    let first = aliases.iter().find(|a| a.ip == "10.23.0.11").unwrap();
    assert_eq!(
        first.hostnames.as_deref().unwrap(),
        [
            "wn0-kafka-p.internal.cloudapp.net",
            "wn0-kafka-s.internal.cloudapp.net"
        ]
    );
}

#[test]
fn every_object_is_owned_by_the_mirror_so_deleting_it_removes_them() {
    let objects = build(&example("eventhubs-target.yaml"));
    let metas = [
        &objects.config_map.metadata,
        &objects.service_account.metadata,
        &objects.deployment.metadata,
        &objects.disruption_budget.as_ref().unwrap().metadata,
        &objects.metrics_service.metadata,
    ];
    for meta in metas {
        let owner = &meta.owner_references.as_ref().unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.name.as_str(), owner.uid.as_str()),
            ("KafkaMirror", "orders-to-eventhubs", UID)
        );
        assert_eq!(owner.controller, Some(true));
        assert_eq!(meta.namespace.as_deref(), Some("kafka-mirror"));
    }
}

#[test]
fn a_mirror_without_uid_is_refused_not_built_with_a_dangling_owner() {
    let mut mirror = example("hdinsight-testtopic.yaml");
    mirror.metadata.uid = None;
    let error = MirrorIdentity::of(&mirror).unwrap_err().to_string();
    assert!(error.contains("metadata.uid"), "{error}");
}

#[test]
fn a_migration_mounts_its_record_where_the_worker_reads_it_and_recording_it_rolls_no_pod() {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use kafka_mirror_clients::migration::MigrationRecord;
    use kafka_mirror_crds::worker_pod::{MIGRATION_DIR, MIGRATION_FILE};

    let mirror = example("migrate-testtopic.yaml");
    let identity = MirrorIdentity::of(&mirror).unwrap();
    let before = build(&mirror);
    assert!(before.migration_record.is_none(), "nothing recorded yet");
    let record = MigrationRecord {
        started_at: Time(k8s_openapi::jiff::Timestamp::from_second(1_700_000_000).unwrap()),
        topics: [("testtopic".to_string(), vec![120, 0, 7])].into(),
    };
    let state = WorkerState {
        migration_record: Some(record.clone()),
        ..WorkerState::from_spec(&mirror.spec)
    };
    let after = desired_objects(&identity, &mirror.spec, &settings(), &state).unwrap();
    assert_eq!(
        before.deployment, after.deployment,
        "writing the record changes nothing in the Deployment, so no pod rolls"
    );

    let pod = after.deployment.spec.unwrap().template.spec.unwrap();
    let container = &pod.containers[0];
    let args = container.args.as_ref().unwrap();
    let flag = args
        .iter()
        .position(|a| a == "--migration-end")
        .expect("--migration-end");
    let file = &args[flag + 1];
    assert_eq!(*file, format!("{MIGRATION_DIR}/{MIGRATION_FILE}"));
    let mount = container
        .volume_mounts
        .as_ref()
        .unwrap()
        .iter()
        .find(|m| m.mount_path == MIGRATION_DIR)
        .expect("the record is mounted");
    assert_eq!(mount.read_only, Some(true));
    let volume = pod
        .volumes
        .as_ref()
        .unwrap()
        .iter()
        .find(|v| v.name == mount.name)
        .unwrap();
    let source = volume.config_map.as_ref().unwrap();
    let config_map = after.migration_record.unwrap();
    assert_eq!(Some(&source.name), config_map.metadata.name.as_ref());
    assert_eq!(source.optional, Some(false), "no worker starts without it");
    assert!(
        source.items.is_none(),
        "every key becomes a file named after it"
    );

    // The worker's view: the ConfigMap's key as the file at the mount path, read as the worker reads it.
    let root = tempfile::tempdir().unwrap();
    let (key, json) = config_map.data.unwrap().into_iter().next().unwrap();
    assert_eq!(key, MIGRATION_FILE);
    let path = root.path().join(&key);
    std::fs::write(&path, json).unwrap();
    assert_eq!(MigrationRecord::read(&path).unwrap(), record);

    let continuous = build(&example("hdinsight-testtopic.yaml"));
    let pod = continuous.deployment.spec.unwrap().template.spec.unwrap();
    assert!(
        !pod.containers[0]
            .args
            .as_ref()
            .unwrap()
            .contains(&"--migration-end".to_string())
    );
    assert!(pod.volumes.unwrap().iter().all(|v| v.name != "migration"));
}
