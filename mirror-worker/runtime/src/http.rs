//! `/metrics` (Prometheus text), `/healthz` (liveness) and `/readyz` (readiness).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::net::TcpListener;

use prometheus_client::registry::Registry;

/// The HTTP endpoint could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("{what}: {source}")]
pub struct ServeError {
    pub what: String,
    pub source: std::io::Error,
}

/// What a process answers on its HTTP endpoint. The worker and the operator serve the same three paths.
pub trait Endpoints: Send + Sync + 'static {
    /// Prometheus text exposition.
    fn metrics(&self) -> String;
    /// `/healthz`: `Err(why)` asks Kubernetes to restart the process.
    fn live(&self) -> std::result::Result<(), String>;
    /// `/readyz`: `Err(why)` takes the pod out of service without a restart.
    fn ready(&self) -> std::result::Result<(), String>;
}

/// Binds `addr` and serves `/metrics`, `/healthz` and `/readyz` until the process ends. Returns the bound
/// address (port 0 picks a free one).
pub async fn serve(
    addr: SocketAddr,
    endpoints: Arc<dyn Endpoints>,
) -> Result<SocketAddr, ServeError> {
    let listener = TcpListener::bind(addr).await.map_err(|source| ServeError {
        what: format!("binding the HTTP endpoint to {addr}"),
        source,
    })?;
    let bound = listener.local_addr().map_err(|source| ServeError {
        what: "reading the HTTP endpoint's address".into(),
        source,
    })?;
    let app = Router::new()
        .route("/metrics", get(metrics_text))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(endpoints);
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "HTTP endpoint stopped");
        }
    });
    Ok(bound)
}

type Shared = Arc<dyn Endpoints>;

async fn metrics_text(State(shared): State<Shared>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        shared.metrics(),
    )
}

async fn healthz(State(shared): State<Shared>) -> impl IntoResponse {
    answer(shared.live())
}

async fn readyz(State(shared): State<Shared>) -> impl IntoResponse {
    answer(shared.ready())
}

fn answer(result: std::result::Result<(), String>) -> (StatusCode, String) {
    match result {
        Ok(()) => (StatusCode::OK, "ok\n".to_string()),
        Err(reason) => (StatusCode::SERVICE_UNAVAILABLE, format!("{reason}\n")),
    }
}

/// The Prometheus text exposition of a registry (the worker's and the operator's `/metrics`).
pub fn encode_registry(registry: &Registry) -> String {
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, registry)
        .expect("writing to a String cannot fail");
    out
}

/// The names of the series Prometheus text (what [`encode_registry`] wrote) exports, sorted, from its
/// `# TYPE` lines: a counter's `_total`, a histogram's `_bucket`, `_sum` and `_count`, a gauge's own name. What
/// the chart's alerts and dashboard are checked against (tests/monitoring/metrics/*.txt).
pub fn exported_series(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    for line in text.lines() {
        let Some((name, kind)) = line
            .strip_prefix("# TYPE ")
            .and_then(|rest| rest.split_once(' '))
        else {
            continue;
        };
        match kind {
            "counter" => names.push(format!("{name}_total")),
            "histogram" => {
                names.extend(["_bucket", "_sum", "_count"].map(|s| format!("{name}{s}")))
            }
            "gauge" => names.push(name.to_string()),
            other => panic!("{name}: a {other} has no expansion here yet"),
        }
    }
    names.sort();
    names
}

/// Compares `names` with the list in `path` (one per line), rewriting the file first when `UPDATE_GOLDEN` is
/// set; panics naming `regenerate`, the command that rewrites it, when they differ. For the registries' tests.
pub fn assert_series_list(names: &[String], path: &str, regenerate: &str) {
    let listed = format!("{}\n", names.join("\n"));
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(path, &listed).unwrap_or_else(|e| panic!("writing {path}: {e}"));
    }
    let golden = std::fs::read_to_string(path).unwrap_or_default();
    assert_eq!(
        golden, listed,
        "{path} is stale: UPDATE_GOLDEN=1 {regenerate}"
    );
}
