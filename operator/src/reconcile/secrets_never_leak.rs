//! The operator reads the Secrets a mirror names (to measure lag with the workers' own credentials), and no
//! value of them ever leaves the process: not in any request it sends the API server (the worker ConfigMap,
//! the Deployment, the ServiceAccount, the metrics Service, Events, the status), not in its logs, at debug
//! level with librdkafka's logs included. Every Secret value carries a unique marker; private keys are also
//! looked for line by line. The clusters are librdkafka mock clusters that speak neither TLS nor SASL, so the
//! operator's Kafka clients fail, and their error messages are checked too.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use kafka_mirror_crds::KafkaMirror;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;
use serde_json::{Value, json};

use crate::fixtures::{self, ApiServer, Call, context};
use crate::reconcile::reconcile;

const NS: &str = "mirrors";
const UID: &str = "3f9d2a64-1b7e-4c55-9f0e-00000000cafe";
const SECRETS: &str = "/api/v1/namespaces/mirrors/secrets";

/// Everything the process logs, at debug level, librdkafka's `log` records included.
fn logs() -> &'static Mutex<Vec<u8>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let writer = buffer.clone();
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("debug"))
            .with_writer(move || LogWriter(writer.clone()))
            .with_ansi(false)
            .init();
        buffer
    })
}

struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl Write for LogWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn marker(what: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("leak{what}{nanos:08x}")
}

/// A PEM block whose body is `marker` (not a valid certificate or key: librdkafka must refuse it without
/// repeating it).
fn fake_pem(label: &str, marker: &str) -> String {
    format!("-----BEGIN {label}-----\n{marker}\n-----END {label}-----\n")
}

/// The Secret values of one scenario, and what must never be seen.
struct Material {
    ca: String,
    certificate: String,
    key: String,
    source_password: String,
    target_password: String,
}

impl Material {
    /// Strings that must appear nowhere: the passwords, the key, each long line of the key's body.
    fn secrets(&self) -> Vec<String> {
        let mut secrets = vec![
            self.source_password.clone(),
            self.target_password.clone(),
            self.key.clone(),
        ];
        secrets.extend(
            self.key
                .lines()
                .filter(|l| !l.starts_with("-----") && l.len() >= 16)
                .map(str::to_string),
        );
        secrets
    }

    fn secret(&self, name: &str) -> Value {
        let data: Value = match name {
            "source-tls" => {
                json!({"ca.crt": self.ca, "tls.crt": self.certificate, "tls.key": self.key})
            }
            "source-creds" => json!({"password": self.source_password}),
            "target-creds" => json!({"password": self.target_password}),
            other => panic!("no Secret {other} in this scenario"),
        };
        let data: serde_json::Map<String, Value> = data
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), json!(base64(v.as_str().unwrap().as_bytes()))))
            .collect();
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": NS}, "data": data})
    }
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A mirror whose source uses TLS with a client certificate and SASL/SCRAM-SHA-512, and whose target uses
/// SASL/PLAIN, every credential from a Secret.
fn mirror(
    source: &MockCluster<'static, DefaultProducerContext>,
    target: &MockCluster<'static, DefaultProducerContext>,
) -> KafkaMirror {
    let object = json!({
        "apiVersion": "kafkamirror.io/v1alpha1",
        "kind": "KafkaMirror",
        "metadata": {"name": "orders", "namespace": NS, "uid": UID, "generation": 1},
        "spec": {
            "source": {
                "bootstrapServers": source.bootstrap_servers(),
                "tls": {
                    "ca": {"name": "source-tls", "key": "ca.crt"},
                    "clientCertificate": {"name": "source-tls", "key": "tls.crt"},
                    "clientKey": {"name": "source-tls", "key": "tls.key"},
                },
                "authentication": {"mechanism": "SCRAM-SHA-512", "username": "mirror",
                    "password": {"name": "source-creds", "key": "password"}},
            },
            "target": {
                "bootstrapServers": target.bootstrap_servers(),
                "authentication": {"mechanism": "PLAIN", "username": "mirror",
                    "password": {"name": "target-creds", "key": "password"}},
            },
            "topics": {"include": ["orders"]},
        },
    });
    serde_json::from_value(object).unwrap()
}

/// One reconcile of the mirror with `material` in its Secrets; every request the operator sent, in order.
async fn reconcile_with(material: &Material) -> Vec<Call> {
    logs();
    let source = MockCluster::new(1).unwrap();
    source.create_topic("orders", 2, 1).unwrap();
    let target = MockCluster::new(1).unwrap();
    let mirror = Arc::new(mirror(&source, &target));
    let (client, server) = fixtures::client();
    let (action, calls) = server
        .run(
            reconcile(mirror, context(client)),
            |mut server: ApiServer| async move {
                let mut calls = Vec::new();
                for name in ["source-tls", "source-creds", "target-creds"] {
                    let secret = material.secret(name);
                    calls.push(
                        server
                            .expect("GET", &format!("{SECRETS}/{name}"), |_| (200, secret))
                            .await,
                    );
                }
                let paths = [
                    "/api/v1/namespaces/mirrors/serviceaccounts/orders-worker",
                    "/api/v1/namespaces/mirrors/configmaps/orders-worker-config",
                ];
                for path in paths {
                    calls.push(server.expect_apply(path, json!({})).await);
                }
                calls.push(
                    server
                        .expect_apply(
                            "/apis/apps/v1/namespaces/mirrors/deployments/orders-worker",
                            json!({"status": {"replicas": 1, "readyReplicas": 0}}),
                        )
                        .await,
                );
                calls.push(
                    server
                        .expect_apply(
                            "/api/v1/namespaces/mirrors/services/orders-worker-metrics",
                            json!({}),
                        )
                        .await,
                );
                calls.push(
                    server
                        .expect_list("/apis/policy/v1/namespaces/mirrors/poddisruptionbudgets", vec![])
                        .await,
                );
                calls.push(
                    server
                        .expect_list("/api/v1/namespaces/mirrors/configmaps", vec![])
                        .await,
                );
                // Applied, then what could not be measured: neither mock cluster speaks TLS or SASL.
                for _ in 0..3 {
                    calls.push(server.expect_event(NS).await);
                }
                calls.push(
                    server
                        .expect_apply(
                            "/apis/kafkamirror.io/v1alpha1/namespaces/mirrors/kafkamirrors/orders/status",
                            json!({"metadata": {"name": "orders", "namespace": NS, "uid": UID},
                                "spec": {"source": {"bootstrapServers": "a:1"}, "target": {"bootstrapServers": "b:1"},
                                    "topics": {"include": ["orders"]}}}),
                        )
                        .await,
                );
                (server, calls)
            },
        )
        .await;
    action.unwrap();
    calls
}

/// Asserts that no request and no log line holds a secret, and that the scenario did what it should: the
/// objects were applied, the failures were reported.
fn assert_nothing_leaked(material: &Material, calls: &[Call]) {
    let requests: Vec<String> = calls
        .iter()
        .skip(3) // the Secret reads: GETs without a body
        .map(|c| format!("{} {}?{} {}", c.method, c.path, c.query, c.body))
        .collect();
    let logs = String::from_utf8_lossy(&logs().lock().unwrap()).into_owned();
    for secret in material.secrets() {
        for request in &requests {
            assert!(
                !request.contains(&secret),
                "a credential ({secret}) in {request}"
            );
        }
        assert!(
            !requests
                .iter()
                .any(|r| r.contains(&base64(secret.as_bytes()))),
            "a credential in base64"
        );
        assert!(
            !logs.contains(&secret),
            "a credential ({secret}) in the logs"
        );
    }

    let body = |path_end: &str| {
        &calls
            .iter()
            .find(|c| c.path.ends_with(path_end))
            .unwrap_or_else(|| panic!("no request to {path_end}"))
            .body
    };
    // The worker gets references, not values: the document names the Secrets, the pod mounts them.
    let document = body("configmaps/orders-worker-config")["data"]["mirror.yaml"]
        .as_str()
        .unwrap();
    assert!(
        document.contains("source-creds") && document.contains("tls.key"),
        "{document}"
    );
    let volumes =
        body("deployments/orders-worker")["spec"]["template"]["spec"]["volumes"].to_string();
    for name in ["source-tls", "source-creds", "target-creds"] {
        assert!(volumes.contains(name), "{name} mounted: {volumes}");
    }
    // The status and the Events say what failed, so the checks above looked at real messages.
    let status = body("kafkamirrors/orders/status").to_string();
    assert!(status.contains("spec.source.bootstrapServers"), "{status}");
    let notes: Vec<&str> = calls
        .iter()
        .filter(|c| c.path.ends_with("/events"))
        .filter_map(|c| c.body["note"].as_str())
        .collect();
    assert!(
        notes
            .iter()
            .any(|n| n.starts_with("spec.source.bootstrapServers")),
        "{notes:?}"
    );
    assert!(
        logs.contains("DEBUG"),
        "debug logs were captured: {}",
        &logs[..logs.len().min(2000)]
    );
}

/// A CA and a client certificate it signed, with the certificate's key: all PEM.
fn pki() -> (String, String, String) {
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, rcgen::KeyPair::generate().unwrap())
        .unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let certificate = rcgen::CertificateParams::new(Vec::<String>::new())
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    (ca.pem(), certificate.pem(), key.serialize_pem())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_key_that_is_not_valid_pem_never_leaves_the_operator() {
    let (ca, certificate, _) = pki();
    let material = Material {
        ca,
        certificate,
        key: fake_pem("PRIVATE KEY", &marker("key")),
        source_password: marker("sourcepassword"),
        target_password: marker("targetpassword"),
    };
    let calls = reconcile_with(&material).await;
    assert_nothing_leaked(&material, &calls);
    let status = calls.last().unwrap().body.to_string();
    assert!(
        status.contains("ssl.key.pem"),
        "the key was parsed, and refused: {status}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn valid_certificates_keys_and_passwords_never_leave_the_operator() {
    let (ca, certificate, key) = pki();
    let material = Material {
        ca,
        certificate,
        key,
        source_password: marker("sourcepassword"),
        target_password: marker("targetpassword"),
    };
    let calls = reconcile_with(&material).await;
    assert_nothing_leaked(&material, &calls);
}
