//! A mirror's life after `kubectl apply`, on the real API server and controller manager (`tests/control-plane`)
//! with the operator binary, the pod runner of the kit running the real `mirror-worker` for every pod, and one
//! Apache Kafka cluster as both source and target (topics renamed `mirror.{topic}`): `kubectl scale` through
//! the scale subresource, a spec edit that rolls the pods, `spec.paused`, and what the user sees when the
//! mirror cannot work: a spec the operator refuses, a missing Secret, an unreachable source (GitHub issue 14).
//!
//! Each test has a namespace, a pod runner and an operator (`--namespace`) of its own; the control plane and
//! the Kafka cluster are shared by the tests of this file.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use kafka_mirror_crds::cluster::SaslMechanism;
use kafka_mirror_samples as samples;
use kafka_mirror_tests::document::{Connection, MirrorDocument, secret};
use kafka_mirror_tests::{
    ClusterOptions, KafkaCluster, PodView, SaslUser, Scene, Scram, free_port,
};
use serde_json::Value;

const NAME: &str = "orders";
const WORKLOAD: &str = "orders-worker";
const CONFIG_MAP: &str = "orders-worker-config";
const CONFIG_HASH: &str = "kafkamirror.io/config-hash";
/// A user of the SASL listeners (SCRAM-SHA-512), for the missing Secret.
const USER: (&str, &str) = ("lifecycle", "lifecycle-scram-password");

/// One cluster for every test of the file: plaintext for most mirrors, SASL for the one whose Secret is missing.
fn kafka() -> &'static KafkaCluster {
    static CLUSTER: OnceLock<KafkaCluster> = OnceLock::new();
    CLUSTER.get_or_init(|| {
        KafkaCluster::start_for_process(
            "lifecycle",
            &ClusterOptions {
                users: vec![SaslUser::scram(USER.0, USER.1, Scram::Sha512)],
                ..ClusterOptions::default()
            },
        )
    })
}

/// A mirror named [`NAME`] of `topics` from `source` into the same cluster, each topic to `mirror.{topic}`,
/// created with replication factor 1.
fn mirror_of(source: Connection, topics: &[&str]) -> MirrorDocument {
    let target = Connection::new(&kafka().internal);
    topics
        .iter()
        .fold(MirrorDocument::new(NAME, source, target), |doc, topic| {
            doc.include(topic)
        })
        .rename("mirror.{topic}")
        .create(1, &[])
}

/// [`mirror_of`] the cluster's plaintext listener.
fn mirror(topics: &[&str]) -> MirrorDocument {
    mirror_of(Connection::new(&kafka().internal), topics)
}

/// `records` sample records produced to a new `topic` of 3 partitions.
fn topic_with(topic: &str, records: u64) {
    kafka().create_topic(topic, 3, 1, &[]);
    if records > 0 {
        samples::produce_with(&kafka().client(), topic, 0, records, 20, 100).unwrap();
    }
}

/// The condition `type_` of a mirror as `kubectl get -o json` shows it (`Null` while there is none).
fn condition(mirror: &Value, type_: &str) -> Value {
    mirror["status"]["conditions"]
        .as_array()
        .and_then(|all| all.iter().find(|c| c["type"] == type_))
        .cloned()
        .unwrap_or(Value::Null)
}

/// Whether the condition `type_` has `status` and `reason` and was written for the mirror's current
/// generation (so a condition left from before an edit does not count).
fn has_condition(mirror: &Value, type_: &str, status: &str, reason: &str) -> bool {
    let c = condition(mirror, type_);
    c["status"] == status
        && c["reason"] == reason
        && c["observedGeneration"] == mirror["metadata"]["generation"]
}

/// Waits for the condition `type_` with `status` and `reason` on the current generation; the mirror then.
fn wait_condition(
    scene: &Scene,
    type_: &str,
    status: &str,
    reason: &str,
    timeout: Duration,
) -> Value {
    let mut mirror = Value::Null;
    scene.wait_for(
        &format!("{type_}={status} ({reason}) on the current generation"),
        timeout,
        || {
            mirror = scene.get(&["kmirror", NAME]);
            has_condition(&mirror, type_, status, reason)
        },
    );
    mirror
}

/// Ready=True (`Mirroring`) for the current generation with `replicas` ready workers.
fn wait_mirroring(scene: &Scene, replicas: i64, timeout: Duration) -> Value {
    let mut mirror = Value::Null;
    scene.wait_for(
        &format!("Ready=True (Mirroring) with {replicas} ready workers"),
        timeout,
        || {
            mirror = scene.get(&["kmirror", NAME]);
            has_condition(&mirror, "Ready", "True", "Mirroring")
                && mirror["status"]["readyReplicas"] == replicas
        },
    );
    mirror
}

/// The Events about the mirror as `kubectl get events --field-selector involvedObject.name=...` lists them:
/// `(type, reason, message)`.
fn events(scene: &Scene) -> Vec<(String, String, String)> {
    let list = scene.get(&[
        "events",
        "--field-selector",
        &format!("involvedObject.name={NAME},involvedObject.kind=KafkaMirror"),
    ]);
    list["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|e| {
            let text = |key: &str| e[key].as_str().unwrap_or_default().to_string();
            (text("type"), text("reason"), text("message"))
        })
        .collect()
}

/// Waits for a Warning Event with `reason` whose message contains `containing`; its message.
fn wait_warning(scene: &Scene, reason: &str, containing: &str) -> String {
    let mut found = None;
    scene.wait_for(
        &format!("a Warning Event {reason} containing {containing:?}"),
        Duration::from_secs(60),
        || {
            found = events(scene)
                .into_iter()
                .find(|(t, r, m)| t == "Warning" && r == reason && m.contains(containing))
                .map(|(_, _, m)| m);
            found.is_some()
        },
    );
    found.expect("found above")
}

/// Nothing of the worker exists: no ServiceAccount, ConfigMap, Deployment, metrics Service, no pod.
fn assert_nothing_applied(scene: &Scene) {
    for (kind, name) in [
        ("serviceaccount", WORKLOAD.to_string()),
        ("configmap", CONFIG_MAP.to_string()),
        ("deployment", WORKLOAD.to_string()),
        ("service", format!("{WORKLOAD}-metrics")),
    ] {
        assert!(
            !scene.exists(&[kind, &name]),
            "{kind} {name} was applied for a mirror that cannot work: {:#}",
            scene.get(&[kind, &name])
        );
    }
    assert!(scene.runner.pods().is_empty(), "{:#?}", scene.runner.pods());
}

/// The owner reference of an object the operator made: controlled by the `KafkaMirror` [`NAME`].
fn assert_owned(object: &Value) {
    let owned = object["metadata"]["ownerReferences"]
        .as_array()
        .is_some_and(|owners| {
            owners
                .iter()
                .any(|o| o["kind"] == "KafkaMirror" && o["name"] == NAME && o["controller"] == true)
        });
    assert!(
        owned,
        "{} is not controlled by the mirror: {:#}",
        object["metadata"]["name"], object["metadata"]
    );
}

/// The Deployment's `spec.replicas`.
fn deployment_replicas(scene: &Scene) -> Value {
    scene.get(&["deployment", WORKLOAD])["spec"]["replicas"].clone()
}

/// The live pods, once `count` of them are ready and none other is left.
fn wait_pods_ready(scene: &Scene, count: usize, timeout: Duration) -> Vec<PodView> {
    scene.runner.wait_for(
        &format!("{count} ready pods and no other"),
        timeout,
        |pods| pods.len() == count && pods.iter().all(|p| p.ready),
    )
}

fn config_hash(pod: &PodView) -> String {
    pod.annotations
        .get(CONFIG_HASH)
        .cloned()
        .unwrap_or_else(|| panic!("pod {} has no {CONFIG_HASH}: {pod:#?}", pod.name))
}

/// Asserts the operator failed no reconcile: its `kafka_mirror_operator_reconcile_failures` metric has no
/// sample above 0, and its log shows no failed reconcile and no server-side apply conflict.
fn assert_no_reconcile_failure(scene: &Scene) {
    let (status, metrics) = kafka_mirror_tests::http_get(scene.operator.http, "/metrics")
        .expect("the operator's /metrics");
    assert_eq!(status, 200);
    let failures: Vec<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("kafka_mirror_operator_reconcile_failures"))
        .filter(|l| {
            l.rsplit_once(' ')
                .is_some_and(|(_, v)| v.parse::<f64>().unwrap_or(1.0) > 0.0)
        })
        .collect();
    assert!(failures.is_empty(), "reconciles failed: {failures:?}");
    let log = scene.operator.log();
    for line in log.lines() {
        let lower = line.to_lowercase();
        assert!(
            !lower.contains("conflict") && !lower.contains("reconcile failed"),
            "the operator logged a failure: {line}\nits log:\n{log}"
        );
    }
}

/// Waits until the operator started `more` reconciles after now.
fn wait_reconciles(scene: &Scene, more: f64) {
    let from = scene.operator.reconciliations();
    scene.wait_for(
        &format!("{more} more reconciles"),
        Duration::from_secs(30),
        || scene.operator.reconciliations() >= from + more,
    );
}

/// `kubectl scale kmirror/orders --replicas=3` goes through the scale subresource: the Deployment follows,
/// a PodDisruptionBudget owned by the mirror appears, three workers become ready and Ready is True again;
/// the first worker is not replaced (a scale does not roll). Later reconciles and `kubectl apply -f` of the
/// original file (no `replicas` field) keep the three workers without any conflict; a file that does say
/// `replicas: 1` scales back to one and the budget goes.
#[test]
fn kubectl_scale_adds_workers_without_rolling_and_a_later_apply_of_the_file_is_no_conflict() {
    let started = Instant::now();
    let scene = Scene::new("lifecycle-scale");
    topic_with("scale-orders", 300);
    let dir = tempfile::tempdir().unwrap();
    let document = mirror(&["scale-orders"]);
    assert!(
        !document.to_yaml().contains("replicas"),
        "the original file leaves replicas to the default: {}",
        document.to_yaml()
    );
    let file = document.write_in(dir.path());
    let file = file.to_str().unwrap();
    let applied = scene.kubectl(&["apply", "-f", file]);
    assert!(
        applied.contains("kafkamirror.io/orders created"),
        "{applied}"
    );
    wait_mirroring(&scene, 1, Duration::from_secs(120));
    let first = wait_pods_ready(&scene, 1, Duration::from_secs(30)).remove(0);
    let hash = config_hash(&first);
    assert!(
        !scene.exists(&["poddisruptionbudget", WORKLOAD]),
        "one worker has no PodDisruptionBudget"
    );

    let scaled = scene.kubectl(&["scale", &format!("kmirror/{NAME}"), "--replicas=3"]);
    assert!(scaled.contains("kafkamirror.io/orders scaled"), "{scaled}");
    // Through the scale subresource: its manager's entry says so, and the Scale object shows the count.
    let stored = scene.get(&["kmirror", NAME, "--show-managed-fields"]);
    assert_eq!(stored["spec"]["replicas"], 3, "{stored:#}");
    let managers = stored["metadata"]["managedFields"].as_array().unwrap();
    assert!(
        managers
            .iter()
            .any(|m| m["subresource"] == "scale"
                && m["fieldsV1"]["f:spec"]["f:replicas"].is_object()),
        "spec.replicas is managed through the scale subresource: {managers:#?}"
    );

    scene.wait_for(
        "the Deployment at 3 replicas",
        Duration::from_secs(30),
        || deployment_replicas(&scene) == 3,
    );
    scene.wait_for("a PodDisruptionBudget", Duration::from_secs(30), || {
        scene.exists(&["poddisruptionbudget", WORKLOAD])
    });
    let budget = scene.get(&["poddisruptionbudget", WORKLOAD]);
    assert_owned(&budget);
    let pods = wait_pods_ready(&scene, 3, Duration::from_secs(90));
    let mirror = wait_mirroring(&scene, 3, Duration::from_secs(60));
    assert_eq!(mirror["status"]["replicas"], 3, "{:#}", mirror["status"]);
    let scale = scene.get(&["kmirror", NAME, "--subresource=scale"]);
    assert_eq!(
        (&scale["spec"]["replicas"], &scale["status"]["replicas"]),
        (&Value::from(3), &Value::from(3)),
        "{scale:#}"
    );
    assert!(
        scale["status"]["selector"]
            .as_str()
            .is_some_and(|s| s.contains("app.kubernetes.io/instance=orders")),
        "the scale subresource selects the worker pods: {scale:#}"
    );
    // A scale does not roll: every pod has the first one's config, the first one still runs its first start.
    for pod in &pods {
        assert_eq!(
            config_hash(pod),
            hash,
            "a scale changed the config: {pods:#?}"
        );
    }
    let still = pods
        .iter()
        .find(|p| p.name == first.name)
        .unwrap_or_else(|| panic!("the first worker {} was replaced: {pods:#?}", first.name));
    assert_eq!(still.starts, 1, "{still:#?}");
    eprintln!("scaled to 3 after {:?}", started.elapsed());

    // The original file again: it has no replicas field, so `kubectl apply` leaves the scaled count alone,
    // and neither it nor the next reconciles conflict with anything.
    let again = scene.kubectl(&["apply", "-f", file]);
    assert!(again.contains("kafkamirror.io/orders unchanged"), "{again}");
    wait_reconciles(&scene, 2.0);
    assert_eq!(scene.get(&["kmirror", NAME])["spec"]["replicas"], 3);
    assert_eq!(deployment_replicas(&scene), 3);
    let after: Vec<(String, u32)> = scene
        .runner
        .live_pods()
        .iter()
        .map(|p| (p.name.clone(), p.starts))
        .collect();
    let before: Vec<(String, u32)> = pods.iter().map(|p| (p.name.clone(), 1)).collect();
    assert_eq!(
        after, before,
        "the apply of an unchanged file touched the pods"
    );
    assert!(scene.exists(&["poddisruptionbudget", WORKLOAD]));
    assert_no_reconcile_failure(&scene);

    // A file that says `replicas: 1`: `kubectl apply` makes the file true again, as for a Deployment.
    let one = document.clone().replicas(1).write_in(dir.path());
    let applied = scene.kubectl(&["apply", "-f", one.to_str().unwrap()]);
    assert!(
        applied.contains("kafkamirror.io/orders configured"),
        "{applied}"
    );
    assert_eq!(scene.get(&["kmirror", NAME])["spec"]["replicas"], 1);
    scene.wait_for(
        "the Deployment at 1 replica, without its budget",
        Duration::from_secs(30),
        || deployment_replicas(&scene) == 1 && !scene.exists(&["poddisruptionbudget", WORKLOAD]),
    );
    let pods = wait_pods_ready(&scene, 1, Duration::from_secs(60));
    assert_eq!(config_hash(&pods[0]), hash, "{pods:#?}");
    wait_mirroring(&scene, 1, Duration::from_secs(60));
    assert_no_reconcile_failure(&scene);
    eprintln!("{}: done after {:?}", scene.namespace, started.elapsed());
}

/// `kubectl patch --type merge` of the topics: the operator renders a new config, the Deployment rolls, the
/// new pod carries the new config hash, the old one is gone, and the mirror is Ready with both topics.
#[test]
fn a_spec_edit_rolls_the_workers_onto_the_new_config() {
    let started = Instant::now();
    let scene = Scene::new("lifecycle-roll");
    topic_with("roll-a", 100);
    topic_with("roll-b", 100);
    scene.apply(&mirror(&["roll-a"]));
    let mirror = wait_mirroring(&scene, 1, Duration::from_secs(120));
    assert_eq!(mirror["status"]["topicCount"], 1, "{:#}", mirror["status"]);
    let old = wait_pods_ready(&scene, 1, Duration::from_secs(30)).remove(0);
    let old_hash = config_hash(&old);

    scene.kubectl(&[
        "patch",
        "kmirror",
        NAME,
        "--type",
        "merge",
        "-p",
        r#"{"spec":{"topics":{"include":["roll-a","roll-b"]}}}"#,
    ]);
    let pods = scene.runner.wait_for(
        "one ready pod of the new config, the old one gone",
        Duration::from_secs(90),
        |pods| {
            pods.len() == 1
                && pods[0].ready
                && pods[0].name != old.name
                && pods[0].annotations.get(CONFIG_HASH) != Some(&old_hash)
        },
    );
    let new_hash = config_hash(&pods[0]);
    let template =
        scene.get(&["deployment", WORKLOAD])["spec"]["template"]["metadata"]["annotations"]
            [CONFIG_HASH]
            .clone();
    assert_eq!(template, new_hash.as_str());
    assert!(
        scene
            .runner
            .pods()
            .iter()
            .any(|p| p.name == old.name && p.gone),
        "the old pod was deleted: {:#?}",
        scene.runner.pods()
    );
    let document = scene.get(&["configmap", CONFIG_MAP])["data"].to_string();
    assert!(document.contains("roll-b"), "{document}");

    let mirror = wait_mirroring(&scene, 1, Duration::from_secs(60));
    assert_eq!(mirror["metadata"]["generation"], 2);
    assert_eq!(mirror["status"]["topicCount"], 2, "{:#}", mirror["status"]);
    scene.wait_for("roll-b copied", Duration::from_secs(60), || {
        kafka().records("mirror.roll-b") >= 100
    });
    assert_no_reconcile_failure(&scene);
    eprintln!("{}: done after {:?}", scene.namespace, started.elapsed());
}

/// `spec.paused: true` scales the workers to zero and says so (`Ready=False`, reason `Paused`, not
/// degraded); `paused: false` brings a worker back, which continues from the group's committed positions
/// with what was produced meanwhile.
#[test]
fn paused_scales_the_workers_to_zero_and_unpausing_resumes_where_it_stopped() {
    let started = Instant::now();
    let scene = Scene::new("lifecycle-pause");
    topic_with("pause-orders", 100);
    scene.apply(&mirror(&["pause-orders"]));
    wait_mirroring(&scene, 1, Duration::from_secs(120));
    scene.wait_for(
        "the first 100 records copied",
        Duration::from_secs(60),
        || kafka().records("mirror.pause-orders") >= 100,
    );

    scene.kubectl(&[
        "patch",
        "kmirror",
        NAME,
        "--type",
        "merge",
        "-p",
        r#"{"spec":{"paused":true}}"#,
    ]);
    let mirror = wait_condition(&scene, "Ready", "False", "Paused", Duration::from_secs(60));
    assert!(
        condition(&mirror, "Ready")["message"]
            .as_str()
            .is_some_and(|m| m.contains("spec.paused")),
        "{:#}",
        mirror["status"]
    );
    assert!(has_condition(&mirror, "Progressing", "False", "NotRunning"));
    assert!(
        has_condition(&mirror, "Degraded", "False", "AsExpected"),
        "paused is not a failure: {:#}",
        mirror["status"]
    );
    scene.wait_for(
        "the Deployment at 0 replicas",
        Duration::from_secs(30),
        || deployment_replicas(&scene) == 0,
    );
    scene
        .runner
        .wait_for("no pod", Duration::from_secs(60), |pods| pods.is_empty());
    assert!(
        scene.exists(&["configmap", CONFIG_MAP]),
        "paused deletes nothing"
    );

    // Produced while paused: copied after the resume.
    samples::produce_with(&kafka().client(), "pause-orders", 100, 200, 20, 100).unwrap();
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        scene.runner.live_pods().is_empty(),
        "still paused: {:#?}",
        scene.runner.pods()
    );
    scene.kubectl(&[
        "patch",
        "kmirror",
        NAME,
        "--type",
        "merge",
        "-p",
        r#"{"spec":{"paused":false}}"#,
    ]);
    wait_pods_ready(&scene, 1, Duration::from_secs(60));
    wait_mirroring(&scene, 1, Duration::from_secs(60));
    scene.wait_for(
        "the records produced while paused copied, lag 0",
        Duration::from_secs(60),
        || {
            kafka().records("mirror.pause-orders") >= 200
                && scene.get(&["kmirror", NAME])["status"]["lag"]["total"] == 0
        },
    );
    assert_no_reconcile_failure(&scene);
    eprintln!("{}: done after {:?}", scene.namespace, started.elapsed());
}

/// An include pattern that is no regular expression passes the API server (the schema cannot check it) but
/// not the operator: `Ready=False` and `Degraded=True` with reason `InvalidSpec` naming the field, a Warning
/// Event saying the same, and nothing applied. Fixing the pattern lets the mirror start.
#[test]
fn a_spec_the_operator_refuses_names_the_field_and_applies_nothing_until_fixed() {
    let started = Instant::now();
    let scene = Scene::new("lifecycle-invalid");
    topic_with("invalid-orders", 0);
    let created = scene.apply(&mirror(&["invalid-orders", "orders["]));
    assert!(
        created.contains("kafkamirror.io/orders created"),
        "{created}"
    );

    let field = r#"spec.topics.include[1]: invalid regular expression "orders[""#;
    let mirror = wait_condition(
        &scene,
        "Ready",
        "False",
        "InvalidSpec",
        Duration::from_secs(60),
    );
    let message = condition(&mirror, "Ready")["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(message.starts_with(field), "{message}");
    assert!(
        has_condition(&mirror, "Degraded", "True", "InvalidSpec"),
        "{:#}",
        mirror["status"]
    );
    let warning = wait_warning(&scene, "InvalidSpec", field);
    eprintln!("the Warning Event: {warning}");
    std::thread::sleep(Duration::from_secs(2));
    assert_nothing_applied(&scene);

    scene.kubectl(&[
        "patch",
        "kmirror",
        NAME,
        "--type",
        "merge",
        "-p",
        r#"{"spec":{"topics":{"include":["invalid-orders"]}}}"#,
    ]);
    wait_mirroring(&scene, 1, Duration::from_secs(120));
    assert_owned(&scene.get(&["deployment", WORKLOAD]));
    assert_no_reconcile_failure(&scene);
    eprintln!("{}: done after {:?}", scene.namespace, started.elapsed());
}

/// SASL credentials from a Secret that does not exist: `Ready=False` with reason `SecretMissing` naming the
/// Secret, a Warning Event, nothing applied. Once the Secret is created the mirror starts on its own.
#[test]
fn a_missing_secret_is_named_and_applies_nothing_until_it_is_created() {
    let started = Instant::now();
    let scene = Scene::new("lifecycle-secret");
    topic_with("secret-orders", 50);
    let source = Connection::new(&kafka().sasl_plaintext).authentication(
        SaslMechanism::ScramSha512,
        USER.0,
        secret("lifecycle-creds", "password"),
    );
    scene.apply(&mirror_of(source, &["secret-orders"]));

    let named = format!(
        r#"spec.source.authentication.password: Secret "lifecycle-creds" not found in namespace "{}""#,
        scene.namespace
    );
    let mirror = wait_condition(
        &scene,
        "Ready",
        "False",
        "SecretMissing",
        Duration::from_secs(60),
    );
    assert_eq!(condition(&mirror, "Ready")["message"], named.as_str());
    assert!(
        has_condition(&mirror, "Degraded", "True", "SecretMissing"),
        "{:#}",
        mirror["status"]
    );
    wait_warning(&scene, "SecretMissing", &named);
    assert_nothing_applied(&scene);

    let created_at = Instant::now();
    scene.kubectl(&[
        "create",
        "secret",
        "generic",
        "lifecycle-creds",
        &format!("--from-literal=password={}", USER.1),
    ]);
    wait_mirroring(&scene, 1, Duration::from_secs(90));
    eprintln!(
        "Ready {:?} after the Secret was created",
        created_at.elapsed()
    );
    scene.wait_for("the records copied", Duration::from_secs(60), || {
        kafka().records("mirror.secret-orders") >= 50
    });
    assert_no_reconcile_failure(&scene);
    eprintln!("{}: done after {:?}", scene.namespace, started.elapsed());
}

/// A source whose bootstrap server is a closed loopback port: the operator still applies the workers (the
/// brokers may come), and says the source is unreachable: `Degraded=True` with reason `SourceUnreachable`
/// naming `spec.source.bootstrapServers`, `Ready=False`, and a Warning Event.
#[test]
fn an_unreachable_source_is_degraded_with_a_warning_event() {
    let started = Instant::now();
    let scene = Scene::new("lifecycle-unreachable");
    let closed = format!("127.0.0.1:{}", free_port());
    scene.apply(&mirror_of(
        Connection::new(&closed),
        &["unreachable-orders"],
    ));

    let field = format!("spec.source.bootstrapServers {closed:?}");
    let mirror = wait_condition(
        &scene,
        "Degraded",
        "True",
        "SourceUnreachable",
        Duration::from_secs(90),
    );
    let degraded = condition(&mirror, "Degraded");
    let message = degraded["message"].as_str().unwrap_or_default();
    assert!(message.starts_with(&field), "{message}");
    assert!(
        message.contains("Connection refused")
            && message.contains("check spec.source.bootstrapServers"),
        "librdkafka's reason and what to check: {message}"
    );
    // Not ready, and Ready says why: the source (the worker cannot reach it either; were it ready, the lag
    // would be unknown).
    let ready = condition(&mirror, "Ready");
    assert_eq!(ready["status"], "False", "{:#}", mirror["status"]);
    assert!(
        (ready["reason"] == "SourceUnreachable" || ready["reason"] == "LagUnknown")
            && ready["message"]
                .as_str()
                .unwrap_or_default()
                .starts_with(&field),
        "{ready:#}"
    );
    assert!(
        mirror["status"]["lag"]["total"].is_null(),
        "no lag is invented: {:#}",
        mirror["status"]
    );
    let warning = wait_warning(&scene, "SourceUnreachable", &field);
    eprintln!("Ready: {ready:#}\nthe Warning Event: {warning}");
    assert!(
        scene.runner.live_pods().iter().all(|p| !p.ready),
        "no worker is ready without its source: {:#?}",
        scene.runner.pods()
    );
    assert_no_reconcile_failure(&scene);
    eprintln!("{}: done after {:?}", scene.namespace, started.elapsed());
}
