//! The operator's memory when idle: the real operator binary, holding its leader Lease and watching
//! KafkaMirrors and Deployments, against a minimal stand-in for the Kubernetes API server (no API server runs
//! on the build machines). The stand-in answers lists with empty lists, keeps watches open, and stores what is
//! created or replaced (the Lease) so that reads see it.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{Method, StatusCode, Uri};
use axum::response::Response;
use serde_json::{Value, json};

use crate::measure;

#[derive(Clone, Default)]
struct ApiState {
    objects: Arc<Mutex<HashMap<String, Value>>>,
    requests: Arc<Mutex<Vec<String>>>,
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap()
}

async fn answer(state: ApiState, method: Method, uri: Uri, body: Bytes) -> Response {
    let path = uri.path().to_string();
    let query = uri.query().unwrap_or_default();
    state
        .requests
        .lock()
        .unwrap()
        .push(format!("{method} {uri}"));
    if method == Method::GET && query.contains("watch=true") {
        // An open watch that reports nothing: the cluster is idle.
        return Response::builder()
            .header("content-type", "application/json")
            .body(Body::from_stream(futures::stream::pending::<
                Result<Bytes, std::io::Error>,
            >()))
            .unwrap();
    }
    let mut objects = state.objects.lock().unwrap();
    match method {
        Method::GET => match objects.get(&path) {
            Some(object) => json_response(StatusCode::OK, object),
            // A collection (its last segment is a plural resource name) lists empty; anything else is absent.
            None if is_collection(&path) => json_response(
                StatusCode::OK,
                &json!({"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": "1"}, "items": []}),
            ),
            None => json_response(
                StatusCode::NOT_FOUND,
                &json!({"apiVersion": "v1", "kind": "Status", "status": "Failure", "reason": "NotFound", "code": 404}),
            ),
        },
        Method::POST | Method::PUT => {
            let mut object: Value = serde_json::from_slice(&body).unwrap_or(json!({}));
            let name = object["metadata"]["name"]
                .as_str()
                .unwrap_or("unnamed")
                .to_string();
            let key = if method == Method::POST {
                format!("{path}/{name}")
            } else {
                path
            };
            let version = objects.len() + 2;
            object["metadata"]["resourceVersion"] = json!(version.to_string());
            objects.insert(key, object.clone());
            let status = if method == Method::POST {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            json_response(status, &object)
        }
        _ => json_response(StatusCode::OK, &json!({})),
    }
}

fn is_collection(path: &str) -> bool {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    // /api/v1/<plural>, /apis/<group>/<version>/<plural>, and the same under namespaces/<ns>/.
    let resource_index = if segments.first() == Some(&"api") {
        2
    } else {
        3
    };
    let index = if segments.get(resource_index) == Some(&"namespaces")
        && segments.len() > resource_index + 2
    {
        resource_index + 2
    } else {
        resource_index
    };
    segments.len() == index + 1
}

pub struct OperatorIdle {
    pub peak_rss_kib: u64,
    pub rss_kib: u64,
    pub cpu: Duration,
    pub requests: usize,
}

/// Runs `operator` for `duration` against the stand-in API server and reads its memory at the end.
pub fn measure(operator: &Path, duration: Duration) -> OperatorIdle {
    let state = ApiState::default();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let address = listener.local_addr().unwrap();
    let app = Router::new().fallback({
        let state = state.clone();
        move |method: Method, uri: Uri, body: Bytes| answer(state.clone(), method, uri, body)
    });
    runtime.spawn(async move { axum::serve(listener, app).await });

    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: bench\n  cluster:\n    server: http://{address}\n\
             users:\n- name: bench\n  user: {{}}\ncontexts:\n- name: bench\n  context:\n    cluster: bench\n    \
             user: bench\n    namespace: default\ncurrent-context: bench\n"
        ),
    )
    .unwrap();
    let http = kafka_mirror_tests::free_address();
    let log = dir.path().join("operator.log");
    let child = Command::new(operator)
        .args([
            "run",
            "--leader-election",
            "--http-listen",
            &http.to_string(),
        ])
        .env("KUBECONFIG", &kubeconfig)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {}: {e}", operator.display()));
    let started = Instant::now();
    let mut rss_kib = 0;
    while started.elapsed() < duration {
        std::thread::sleep(Duration::from_millis(500));
        rss_kib = measure::rss_now(child.id()).unwrap_or_else(|| {
            panic!(
                "the operator exited; its log:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            )
        });
    }
    let holding = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        holding.contains("holding the leader Lease"),
        "the operator never became leader against the stand-in API server; its log:\n{holding}\nrequests:\n{}",
        state.requests.lock().unwrap().join("\n")
    );
    measure::signal(&child, libc::SIGTERM);
    let usage = measure::reap(child, "kafka-mirror-operator");
    let requests = state.requests.lock().unwrap().len();
    runtime.shutdown_background();
    OperatorIdle {
        peak_rss_kib: usage.peak_rss_kib,
        rss_kib,
        cpu: usage.cpu,
        requests,
    }
}
