//! Reconcile scenarios against a mocked API server that checks every request, in order (see `fixtures`), with
//! real Kafka-protocol clusters (librdkafka's mock cluster) behind the mirror: the lag in the status is
//! measured, not invented.

use std::sync::Arc;
use std::time::Duration;

use kafka_mirror_crds::KafkaMirror;
use kafka_mirror_samples as samples;
use kube::runtime::controller::Action;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde_json::{Value, json};

use crate::fixtures::{self, ApiServer, Call, context, merge, not_found};
use crate::reconcile::{Intervals, reconcile};

const NS: &str = "mirrors";
const UID: &str = "3f9d2a64-1b7e-4c55-9f0e-00000000beef";
const RECORDS: u64 = 300;
const GROUP: &str = "kafka-mirror.mirrors.orders";

const SA: &str = "/api/v1/namespaces/mirrors/serviceaccounts/orders-worker";
const CONFIG: &str = "/api/v1/namespaces/mirrors/configmaps/orders-worker-config";
const RECORD: &str = "/api/v1/namespaces/mirrors/configmaps/orders-migration";
const DEPLOYMENT: &str = "/apis/apps/v1/namespaces/mirrors/deployments/orders-worker";
const PDB: &str = "/apis/policy/v1/namespaces/mirrors/poddisruptionbudgets/orders-worker";
const PDBS: &str = "/apis/policy/v1/namespaces/mirrors/poddisruptionbudgets";
const CONFIG_MAPS: &str = "/api/v1/namespaces/mirrors/configmaps";
const SERVICE: &str = "/api/v1/namespaces/mirrors/services/orders-worker-metrics";
const STATUS: &str = "/apis/kafkamirror.io/v1alpha1/namespaces/mirrors/kafkamirrors/orders/status";

/// A source cluster with `orders` (3 partitions, RECORDS records) and an empty target cluster.
struct Clusters {
    source: MockCluster<'static, DefaultProducerContext>,
    target: MockCluster<'static, DefaultProducerContext>,
}

impl Clusters {
    fn new() -> Self {
        let source = MockCluster::new(1).unwrap();
        source.create_topic("orders", 3, 1).unwrap();
        source.create_topic("audit", 1, 1).unwrap();
        samples::produce(&source.bootstrap_servers(), "orders", 0, RECORDS, 30, 32).unwrap();
        Self {
            source,
            target: MockCluster::new(1).unwrap(),
        }
    }

    /// A mirror of `orders` between the two clusters; `spec` is YAML merged into the spec.
    fn mirror(&self, generation: i64, spec: Value, status: Option<Value>) -> KafkaMirror {
        let mut object = json!({
            "apiVersion": "kafkamirror.io/v1alpha1",
            "kind": "KafkaMirror",
            "metadata": {"name": "orders", "namespace": NS, "uid": UID, "generation": generation},
            "spec": {
                "source": {"bootstrapServers": self.source.bootstrap_servers()},
                "target": {"bootstrapServers": self.target.bootstrap_servers()},
                "topics": {"include": ["orders"], "rename": "mirror.{topic}"},
            },
        });
        merge(&mut object["spec"], &spec);
        if let Some(status) = status {
            object["status"] = status;
        }
        serde_json::from_value(object).unwrap()
    }

    /// Commits the group's offsets at `offsets` (one per `orders` partition): what workers leave behind.
    fn commit_everything_up_to(&self, offsets: &[i64]) {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", self.source.bootstrap_servers())
            .set("group.id", GROUP)
            .create()
            .unwrap();
        let mut tpl = TopicPartitionList::new();
        for (partition, offset) in offsets.iter().enumerate() {
            tpl.add_partition_offset("orders", partition as i32, Offset::Offset(*offset))
                .unwrap();
        }
        consumer.commit(&tpl, CommitMode::Sync).unwrap();
    }

    fn highs(&self) -> Vec<i64> {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", self.source.bootstrap_servers())
            .create()
            .unwrap();
        (0..3)
            .map(|p| {
                consumer
                    .fetch_watermarks("orders", p, Duration::from_secs(5))
                    .unwrap()
                    .1
            })
            .collect()
    }
}

/// The requests of a reconcile that applies, in the order the operator sends them.
struct Applied {
    config: Call,
    record: Option<Call>,
    deployment: Call,
    budget: Option<Call>,
}

/// Answers the apply requests. `ready` is the Deployment's readyReplicas the API server reports.
async fn expect_apply(
    server: &mut ApiServer,
    budget: bool,
    record: bool,
    ready: i64,
    existing_budgets: Vec<Value>,
    existing_config_maps: Vec<Value>,
) -> Applied {
    server.expect_apply(SA, json!({})).await;
    let config = server.expect_apply(CONFIG, json!({})).await;
    let record = if record {
        Some(server.expect_apply(RECORD, json!({})).await)
    } else {
        None
    };
    let deployment = server
        .expect_apply(
            DEPLOYMENT,
            json!({"status": {"replicas": ready, "readyReplicas": ready}}),
        )
        .await;
    let budget = if budget {
        Some(server.expect_apply(PDB, json!({})).await)
    } else {
        None
    };
    server.expect_apply(SERVICE, json!({})).await;
    let list = server.expect_list(PDBS, existing_budgets).await;
    assert!(
        list.query
            .contains("labelSelector=app.kubernetes.io%2Finstance%3Dorders%2Capp.kubernetes.io%2Fmanaged-by%3Dkafka-mirror-operator"),
        "orphans are looked for by the mirror's labels: {}",
        list.query
    );
    server.expect_list(CONFIG_MAPS, existing_config_maps).await;
    Applied {
        config,
        record,
        deployment,
        budget,
    }
}

/// The status apply; answered with a whole object, as the API server does (the operator ignores its content).
async fn expect_status(server: &mut ApiServer) -> Call {
    server
        .expect_apply(
            STATUS,
            json!({
                "metadata": {"name": "orders", "namespace": NS, "uid": UID},
                "spec": {"source": {"bootstrapServers": "a:1"}, "target": {"bootstrapServers": "b:1"},
                    "topics": {"include": ["orders"]}},
            }),
        )
        .await
}

fn condition<'a>(status: &'a Value, type_: &str) -> &'a Value {
    status["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == type_)
        .unwrap_or_else(|| panic!("no {type_} condition in {status}"))
}

fn config_hash(deployment: &Call) -> String {
    deployment.body["spec"]["template"]["metadata"]["annotations"]["kafkamirror.io/config-hash"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn first_apply_creates_every_object_and_reports_the_measured_lag() {
    let clusters = Clusters::new();
    let (client, server) = fixtures::client();
    let mirror = Arc::new(clusters.mirror(1, json!({}), None));
    let (action, ()) = server
        .run(reconcile(mirror, context(client)), |mut server| async move {
            let applied = expect_apply(&mut server, false, false, 0, vec![], vec![]).await;
            let deployment = &applied.deployment.body;
            assert_eq!(deployment["spec"]["replicas"], 1);
            assert_eq!(deployment["metadata"]["ownerReferences"][0]["uid"], UID);
            assert_eq!(deployment["metadata"]["ownerReferences"][0]["controller"], true);
            assert_eq!(
                deployment["spec"]["template"]["spec"]["containers"][0]["image"],
                "registry.example/mirror-worker:test"
            );
            let document = applied.config.body["data"]["mirror.yaml"].as_str().unwrap();
            assert!(document.contains("mirror.{topic}"), "{document}");

            let event = server.expect_event(NS).await;
            assert_eq!(
                (event.body["type"].as_str(), event.body["reason"].as_str()),
                (Some("Normal"), Some("Applied"))
            );
            assert_eq!(event.body["regarding"]["name"], "orders");

            let status = expect_status(&mut server).await.body;
            assert_eq!(status["kind"], "KafkaMirror");
            let s = &status["status"];
            assert_eq!(s["observedGeneration"], 1);
            assert_eq!((s["replicas"].as_i64(), s["readyReplicas"].as_i64()), (Some(0), Some(0)));
            assert_eq!(
                s["selector"],
                "app.kubernetes.io/instance=orders,app.kubernetes.io/name=kafka-mirror-worker"
            );
            assert_eq!(s["topicCount"], 1, "only `orders` matches, not `audit`");
            // The sample records carry timestamps of 2019: that old is the oldest record not yet mirrored.
            let age = s["topics"][0]["lagSeconds"].as_i64().unwrap_or_default();
            assert!(age > 6 * 365 * 24 * 3600, "lagSeconds {age}");
            assert_eq!(s["lag"]["seconds"], age);
            assert_eq!(
                s["topics"],
                json!([{"name": "orders", "targetName": "mirror.orders", "partitions": 3, "lag": RECORDS, "lagSeconds": age}])
            );
            assert_eq!(s["lag"]["total"], RECORDS);
            assert!(s["lag"]["maxPartition"].as_i64().unwrap() > 0);
            assert!(s["lag"]["measuredAt"].is_string());
            let ready = condition(&status, "Ready");
            assert_eq!((ready["status"].as_str(), ready["reason"].as_str()), (Some("False"), Some("WorkersNotReady")));
            assert_eq!(ready["message"], "0 of 1 workers ready");
            assert_eq!(condition(&status, "Progressing")["reason"], "Scaling");
            assert_eq!(
                condition(&status, "Degraded")["status"],
                "False",
                "workers that are still starting are not a failure"
            );
            (server, ())
        })
        .await;
    assert_eq!(
        action.unwrap(),
        Action::requeue(Intervals::default().lag),
        "lag is measured again on a steady interval"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_spec_change_rolls_the_pods_and_scaling_down_deletes_only_the_budget_it_owns() {
    let clusters = Clusters::new();
    let first = clusters.mirror(1, json!({}), None);
    let first_hash = {
        let objects = crate::desired::desired_objects(
            &crate::validate::MirrorIdentity::of(&first).unwrap(),
            &first.spec,
            &context(fixtures::client().0).settings,
            &crate::desired::WorkerState::from_spec(&first.spec),
        )
        .unwrap();
        objects
            .deployment
            .spec
            .unwrap()
            .template
            .metadata
            .unwrap()
            .annotations
            .unwrap()["kafkamirror.io/config-hash"]
            .clone()
    };

    // Generation 2: three replicas and a second topic. The config hash changes (pods roll), a budget appears.
    let (client, server) = fixtures::client();
    let scaled = clusters.mirror(
        2,
        json!({"replicas": 3, "topics": {"include": ["orders", "audit"]}}),
        Some(json!({"observedGeneration": 1})),
    );
    let (action, (scaled_hash, budget)) = server
        .run(
            reconcile(Arc::new(scaled), context(client)),
            |mut server| async move {
                let applied = expect_apply(&mut server, true, false, 3, vec![], vec![]).await;
                assert_eq!(applied.deployment.body["spec"]["replicas"], 3);
                let budget = applied.budget.unwrap().body;
                assert_eq!(budget["spec"]["maxUnavailable"], 1);
                let event = server.expect_event(NS).await;
                let note = event.body["note"].as_str().unwrap().to_string();
                assert!(
                    note.starts_with("generation 2: 3 worker(s) of orders-worker"),
                    "{note}"
                );
                let status = expect_status(&mut server).await.body;
                assert_eq!(status["status"]["topicCount"], 2);
                assert_eq!(condition(&status, "Ready")["reason"], "Mirroring");
                assert_eq!(condition(&status, "Progressing")["reason"], "CatchingUp");
                (server, (config_hash(&applied.deployment), budget))
            },
        )
        .await;
    action.unwrap();
    assert_ne!(
        scaled_hash, first_hash,
        "a changed topic list rolls the workers"
    );

    // Generation 3: back to one replica. The budget it owns goes; one another owner created under the same
    // labels stays; the pods do not roll for a replica change.
    let mut foreign = budget.clone();
    foreign["metadata"]["name"] = json!("orders-worker-by-hand");
    foreign["metadata"]["ownerReferences"][0]["uid"] = json!("someone-else");
    let (client, server) = fixtures::client();
    let single = clusters.mirror(
        3,
        json!({"replicas": 1, "topics": {"include": ["orders", "audit"]}}),
        Some(json!({"observedGeneration": 2})),
    );
    let (action, single_hash) = server
        .run(reconcile(Arc::new(single), context(client)), |mut server| async move {
            server.expect_apply(SA, json!({})).await;
            server.expect_apply(CONFIG, json!({})).await;
            let deployment = server
                .expect_apply(DEPLOYMENT, json!({"status": {"replicas": 1, "readyReplicas": 1}}))
                .await;
            server.expect_apply(SERVICE, json!({})).await;
            server.expect_list(PDBS, vec![budget, foreign]).await;
            server
                .expect("DELETE", PDB, |_| (200, json!({"apiVersion": "v1", "kind": "Status", "status": "Success", "metadata": {}})))
                .await;
            server.expect_list(CONFIG_MAPS, vec![]).await;
            server.expect_event(NS).await;
            expect_status(&mut server).await;
            (server, config_hash(&deployment))
        })
        .await;
    action.unwrap();
    assert_eq!(
        single_hash, scaled_hash,
        "scaling alone does not restart the workers"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn paused_scales_to_zero_says_so_and_still_measures_lag() {
    let clusters = Clusters::new();
    let (client, server) = fixtures::client();
    let mirror = clusters.mirror(1, json!({"paused": true, "replicas": 2}), None);
    let (action, ()) = server
        .run(
            reconcile(Arc::new(mirror), context(client)),
            |mut server| async move {
                let applied = expect_apply(&mut server, false, false, 0, vec![], vec![]).await;
                assert_eq!(applied.deployment.body["spec"]["replicas"], 0);
                server.expect_event(NS).await;
                let status = expect_status(&mut server).await.body;
                let ready = condition(&status, "Ready");
                assert_eq!(
                    (ready["status"].as_str(), ready["reason"].as_str()),
                    (Some("False"), Some("Paused"))
                );
                assert_eq!(
                    condition(&status, "Degraded")["status"],
                    "False",
                    "pausing is not a failure"
                );
                assert_eq!(
                    status["status"]["lag"]["total"], RECORDS,
                    "lag stays true while no worker runs"
                );
                (server, ())
            },
        )
        .await;
    action.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn an_invalid_spec_applies_nothing_and_names_the_field_in_the_status_and_an_event() {
    let clusters = Clusters::new();
    let (client, server) = fixtures::client();
    let mirror = clusters.mirror(4, json!({"topics": {"include": ["orders["]}}), None);
    let (action, ()) = server
        .run(
            reconcile(Arc::new(mirror), context(client)),
            |mut server| async move {
                let event = server.expect_event(NS).await;
                assert_eq!(
                    (event.body["type"].as_str(), event.body["reason"].as_str()),
                    (Some("Warning"), Some("InvalidSpec"))
                );
                let note = event.body["note"].as_str().unwrap().to_string();
                assert!(
                    note.starts_with("spec.topics.include[0]: invalid regular expression"),
                    "{note}"
                );
                let status = expect_status(&mut server).await.body;
                assert_eq!(status["status"]["observedGeneration"], 4);
                let ready = condition(&status, "Ready");
                assert_eq!(
                    (ready["status"].as_str(), ready["reason"].as_str()),
                    (Some("False"), Some("InvalidSpec"))
                );
                assert_eq!(ready["message"].as_str().unwrap(), note);
                assert_eq!(condition(&status, "Degraded")["status"], "True");
                (server, ())
            },
        )
        .await;
    assert_eq!(
        action.unwrap(),
        Action::requeue(Intervals::default().invalid),
        "a spec that cannot work is looked at again slowly, not in a loop"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_secret_or_key_names_the_field_and_never_shows_a_value() {
    let clusters = Clusters::new();
    let auth = json!({"source": {"authentication": {"mechanism": "PLAIN", "username": "mirror",
        "password": {"name": "hdi-creds", "key": "password"}}}});

    let (client, server) = fixtures::client();
    let mirror = clusters.mirror(1, auth.clone(), None);
    let (action, ()) = server
        .run(reconcile(Arc::new(mirror), context(client)), |mut server| async move {
            server
                .expect("GET", "/api/v1/namespaces/mirrors/secrets/hdi-creds", |_| not_found("secrets", "hdi-creds"))
                .await;
            let event = server.expect_event(NS).await;
            assert_eq!(event.body["reason"], "SecretMissing");
            let status = expect_status(&mut server).await.body;
            assert_eq!(
                condition(&status, "Ready")["message"],
                "spec.source.authentication.password: Secret \"hdi-creds\" not found in namespace \"mirrors\""
            );
            (server, ())
        })
        .await;
    assert_eq!(
        action.unwrap(),
        Action::requeue(Intervals::default().missing_secret),
        "creating the Secret is no edit of the mirror, and Secrets are not watched: looked at again soon"
    );
    assert!(Intervals::default().missing_secret < Intervals::default().invalid);

    // The Secret exists with another key: the message lists the keys it has, never a value.
    let (client, server) = fixtures::client();
    let mirror = clusters.mirror(1, auth, None);
    let (action, ()) = server
        .run(reconcile(Arc::new(mirror), context(client)), |mut server| async move {
            server
                .expect("GET", "/api/v1/namespaces/mirrors/secrets/hdi-creds", |_| {
                    // base64 of "hunter2-secret-value"
                    (200, json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "hdi-creds", "namespace": NS},
                        "data": {"pasword": "aHVudGVyMi1zZWNyZXQtdmFsdWU="}}))
                })
                .await;
            let event = server.expect_event(NS).await;
            let status = expect_status(&mut server).await.body;
            let message = condition(&status, "Ready")["message"].as_str().unwrap().to_string();
            assert_eq!(
                message,
                "spec.source.authentication.password: Secret \"hdi-creds\" has no key \"password\" (it has: pasword)"
            );
            for text in [event.body.to_string(), status.to_string()] {
                assert!(!text.contains("hunter2"), "a credential leaked: {text}");
            }
            (server, ())
        })
        .await;
    action.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_migration_records_its_end_offsets_then_completes_and_scales_to_zero() {
    let clusters = Clusters::new();
    let highs = clusters.highs();
    assert_eq!(highs.iter().sum::<i64>(), RECORDS as i64);

    // Start: no record yet. The operator records the high watermarks and runs the workers.
    let (client, server) = fixtures::client();
    let mirror = clusters.mirror(1, json!({"mode": "migrate"}), None);
    let (action, ((record, deployment), status)) = server
        .run(
            reconcile(Arc::new(mirror), context(client)),
            |mut server| async move {
                server
                    .expect("GET", RECORD, |_| {
                        not_found("configmaps", "orders-migration")
                    })
                    .await;
                // The record is applied before the Deployment (expect_apply checks the order), so no pod can
                // start before it exists.
                let applied = expect_apply(&mut server, false, true, 1, vec![], vec![]).await;
                assert_eq!(applied.deployment.body["spec"]["replicas"], 1);
                let record = applied.record.unwrap().body;
                server.expect_event(NS).await;
                let status = expect_status(&mut server).await.body;
                (server, ((record, applied.deployment.body), status))
            },
        )
        .await;
    action.unwrap();
    // The workers copy up to this record: it is mounted, not optional, and named with --migration-end.
    let template = deployment["spec"]["template"].clone();
    let pod = &template["spec"];
    assert_eq!(
        pod["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == "migration")
            .expect("a migration volume"),
        &json!({"name": "migration", "configMap": {"name": "orders-migration", "optional": false}})
    );
    let container = &pod["containers"][0];
    assert!(
        container["volumeMounts"].as_array().unwrap().contains(
            &json!({"name": "migration", "mountPath": "/var/run/kafka-mirror/migration",
                "readOnly": true})
        ),
        "{container}"
    );
    let args: Vec<&str> = container["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert!(
        args.windows(2).any(|w| w
            == [
                "--migration-end",
                "/var/run/kafka-mirror/migration/end-offsets.json"
            ]),
        "{args:?}"
    );
    let recorded: Value =
        serde_json::from_str(record["data"]["end-offsets.json"].as_str().unwrap()).unwrap();
    assert_eq!(recorded["topics"]["orders"], json!(highs));
    assert_eq!(record["metadata"]["ownerReferences"][0]["uid"], UID);
    assert_eq!(status["status"]["migration"]["remaining"], RECORDS);
    assert!(status["status"]["migration"]["completedAt"].is_null());
    let progressing = condition(&status, "Progressing");
    assert_eq!(progressing["reason"], "Migrating");
    assert_eq!(
        progressing["message"],
        format!("{RECORDS} records left to copy up to the end offsets recorded at the start")
    );

    // More records arrive after the start; the workers commit up to the recorded offsets only. The migration
    // is complete: the workers go to zero, the record stays, an Event says so.
    samples::produce(
        &clusters.source.bootstrap_servers(),
        "orders",
        RECORDS,
        RECORDS + 50,
        30,
        32,
    )
    .unwrap();
    clusters.commit_everything_up_to(&highs);
    let (client, server) = fixtures::client();
    let mirror = clusters.mirror(
        1,
        json!({"mode": "migrate"}),
        Some(status["status"].clone()),
    );
    let record_answer = record.clone();
    let (action, status) = server
        .run(
            reconcile(Arc::new(mirror), context(client)),
            |mut server| async move {
                server
                    .expect("GET", RECORD, move |_| (200, record_answer))
                    .await;
                let applied = expect_apply(&mut server, false, true, 0, vec![], vec![]).await;
                assert_eq!(applied.deployment.body["spec"]["replicas"], 0);
                assert_eq!(
                    applied.deployment.body["spec"]["template"], template,
                    "a recorded (or completed) migration does not roll the pods"
                );
                assert_eq!(
                    applied.record.unwrap().body["data"],
                    record["data"],
                    "the record never changes"
                );
                let event = server.expect_event(NS).await;
                assert_eq!(event.body["reason"], "MigrationCompleted");
                let status = expect_status(&mut server).await.body;
                (server, status)
            },
        )
        .await;
    action.unwrap();
    let ready = condition(&status, "Ready");
    assert_eq!(
        (ready["status"].as_str(), ready["reason"].as_str()),
        (Some("True"), Some("Completed"))
    );
    assert_eq!(status["status"]["migration"]["remaining"], 0);
    assert!(status["status"]["migration"]["completedAt"].is_string());
    assert_eq!(
        status["status"]["lag"]["total"], 50,
        "the lag still counts what arrived after the start"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_source_is_degraded_naming_the_field_and_the_workers_are_still_applied() {
    let clusters = Clusters::new();
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let (client, server) = fixtures::client();
    let mirror = clusters.mirror(
        1,
        json!({"source": {"bootstrapServers": closed.to_string()}}),
        None,
    );
    let (action, ()) = server
        .run(
            reconcile(Arc::new(mirror), context(client)),
            |mut server| async move {
                expect_apply(&mut server, false, false, 1, vec![], vec![]).await;
                assert_eq!(server.expect_event(NS).await.body["reason"], "Applied");
                let warning = server.expect_event(NS).await;
                assert_eq!(
                    (
                        warning.body["type"].as_str(),
                        warning.body["reason"].as_str()
                    ),
                    (Some("Warning"), Some("SourceUnreachable"))
                );
                let status = expect_status(&mut server).await.body;
                let degraded = condition(&status, "Degraded");
                assert_eq!(
                    (degraded["status"].as_str(), degraded["reason"].as_str()),
                    (Some("True"), Some("SourceUnreachable"))
                );
                let message = degraded["message"].as_str().unwrap();
                assert!(
                    message.starts_with(&format!("spec.source.bootstrapServers \"{closed}\"")),
                    "{message}"
                );
                assert!(
                    message.contains("Connection refused")
                        && message.contains("check spec.source.bootstrapServers"),
                    "librdkafka's reason and the field to check: {message}"
                );
                assert_eq!(condition(&status, "Ready")["reason"], "LagUnknown");
                assert!(status["status"]["lag"].is_null(), "no lag is invented");
                (server, ())
            },
        )
        .await;
    action.unwrap();
}
