//! The running operator: watches `KafkaMirror`s (one namespace or all) and the worker Deployments they own,
//! reconciles each, holds the leader Lease when asked to, serves `/metrics`, `/healthz` and `/readyz`, and
//! stops cleanly on SIGTERM.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::{FutureExt, StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use kafka_mirror_crds::KafkaMirror;
use kube::api::ListParams;
use kube::runtime::controller::{Config as ControllerConfig, Controller};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::{PredicateConfig, WatchStreamExt, predicates, reflector, watcher};
use kube::{Api, Client};

use crate::desired::BuildSettings;
use crate::labels::{MANAGED_BY_LABEL, MANAGER};
use crate::leader::{self, LeaderLease};
use crate::metrics::Metrics;
use crate::reconcile::{Context, Intervals, error_policy, reconcile};
use crate::{Chain, Result};

/// How the operator was started.
#[derive(Debug, Clone)]
pub struct OperatorConfig {
    /// Watch only this namespace; `None` watches all.
    pub namespace: Option<String>,
    pub settings: BuildSettings,
    pub http_listen: SocketAddr,
    pub intervals: Intervals,
    /// The Lease to hold before reconciling; `None` runs without leader election (one replica only).
    pub leader_election: Option<LeaderElection>,
    /// Reporting instance of Events (the pod name).
    pub identity: String,
}

#[derive(Debug, Clone)]
pub struct LeaderElection {
    pub lease_namespace: String,
    pub lease_name: String,
    pub lease_duration: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("serving /metrics")]
    Serve {
        source: kafka_mirror_runtime::http::ServeError,
    },

    #[error(
        "listing KafkaMirrors (is the CRD installed? `kafka-mirror-operator crd | kubectl apply -f -`)"
    )]
    ListMirrors { source: kube::Error },
}

/// Runs until `shutdown` resolves (then drains in-flight reconciles and releases the Lease) or leadership is
/// lost (then returns the error: the process must exit so that it never writes as a second leader).
pub async fn run(
    client: Client,
    config: OperatorConfig,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) -> Result<()> {
    let metrics = Arc::new(Metrics::new());
    let bound = kafka_mirror_runtime::http::serve(config.http_listen, metrics.clone())
        .await
        .map_err(|source| Error::Serve { source })?;
    tracing::info!(http = %bound, "serving /metrics, /healthz and /readyz");

    let mirrors: Api<KafkaMirror> = scoped(&client, config.namespace.as_deref());
    // Fails early with a clear message when the CRD is not installed or RBAC forbids the list.
    mirrors
        .list(&ListParams::default().limit(1))
        .await
        .map_err(|source| Error::ListMirrors { source })?;
    metrics.set_running(true);

    // Awaited twice: while waiting for the Lease, and by the controller's graceful shutdown.
    let shutdown = shutdown.boxed().shared();
    let lease = config
        .leader_election
        .as_ref()
        .map(|election| leader_lease(&client, election, &config.identity));
    if let Some(lease) = &lease {
        tokio::select! {
            () = wait_for_leadership(lease) => {}
            () = shutdown.clone() => return Ok(()),
        }
    }
    metrics.leader.set(1);

    let context = reconcile_context(&client, &config, &metrics);
    let controller = reconcile_mirrors(&client, &config, mirrors, context, shutdown);
    let outcome = run_while_leader(controller, lease.as_ref()).await;
    metrics.leader.set(0);
    outcome?;
    if let Some(lease) = &lease
        && let Err(e) = lease.release().await
    {
        tracing::warn!(error = %Chain(&e), "could not release the leader Lease; a standby takes over when it expires");
    }
    tracing::info!("stopped");
    Ok(())
}

fn leader_lease(client: &Client, election: &LeaderElection, identity: &str) -> LeaderLease {
    LeaderLease::new(
        Api::<Lease>::namespaced(client.clone(), &election.lease_namespace),
        &election.lease_name,
        identity,
        election.lease_duration,
    )
}

async fn wait_for_leadership(lease: &LeaderLease) {
    tracing::info!(lease = lease.name(), "waiting for the leader Lease");
    leader::acquire(lease).await;
    tracing::info!(lease = lease.name(), "holding the leader Lease");
}

/// What every reconcile shares: the client, the settings, the Event recorder (this replica is the reporting
/// instance), the metrics and the intervals.
fn reconcile_context(
    client: &Client,
    config: &OperatorConfig,
    metrics: &Arc<Metrics>,
) -> Arc<Context> {
    Arc::new(Context {
        client: client.clone(),
        settings: config.settings.clone(),
        recorder: Recorder::new(
            client.clone(),
            Reporter {
                controller: MANAGER.to_string(),
                instance: Some(config.identity.clone()),
            },
        ),
        metrics: metrics.clone(),
        intervals: config.intervals.clone(),
    })
}

/// The controller: reconciles every mirror on spec changes and on changes of the worker Deployments it owns,
/// until `shutdown` resolves and the reconciles in flight end.
fn reconcile_mirrors(
    client: &Client,
    config: &OperatorConfig,
    mirrors: Api<KafkaMirror>,
    context: Arc<Context>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) -> impl Future<Output = ()> {
    let deployments: Api<Deployment> = scoped(client, config.namespace.as_deref());
    // Reconcile on spec changes only (the generation), not on our own status writes: the status carries the
    // time of each lag measurement, so reacting to it would reconcile in a loop. Lag is measured on the
    // requeue interval instead; changes of the worker Deployments still trigger a reconcile.
    let (store, writer) = reflector::store();
    let metrics = context.metrics.clone();
    let spec_changes = watcher(mirrors, watcher::Config::default().any_semantic())
        .default_backoff()
        .reflect(writer)
        // A deleted mirror is not reconciled again (its Deployment goes with it, by owner reference): its
        // metric series go here.
        .inspect_ok(move |event| {
            if let watcher::Event::Delete(mirror) = event {
                metrics.mirror_forgotten(
                    mirror.metadata.namespace.as_deref().unwrap_or_default(),
                    mirror.metadata.name.as_deref().unwrap_or_default(),
                );
            }
        })
        .applied_objects()
        .predicate_filter(predicates::generation, PredicateConfig::default());
    Controller::for_stream(spec_changes, store)
        // A rollout changes the Deployment's status several times a second: one reconcile for the burst.
        .with_config(ControllerConfig::default().debounce(Duration::from_secs(1)))
        .owns(
            deployments,
            watcher::Config::default().labels(&format!("{MANAGED_BY_LABEL}={MANAGER}")),
        )
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, context)
        .for_each(|result| async move {
            match result {
                Ok((object, _)) => tracing::debug!(mirror = %object.name, namespace = ?object.namespace, "reconciled"),
                Err(e) => tracing::debug!(error = %Chain(&e), "reconcile error (counted by the error policy)"),
            }
        })
}

/// Runs `controller` to its end, or until the Lease (if any) is lost: then the error, and the controller is
/// dropped so that this replica stops writing.
async fn run_while_leader(
    controller: impl Future<Output = ()>,
    lease: Option<&LeaderLease>,
) -> Result<()> {
    let lost = async {
        match lease {
            Some(lease) => leader::keep(lease).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        () = controller => Ok(()),
        error = lost => Err(error.into()),
    }
}

fn scoped<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: kube::Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}
