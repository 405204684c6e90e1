//! A stand-in kubelet for the control plane of [`crate::control_plane`], which has none: it runs the real
//! `mirror-worker` binary for every pod of one namespace, as a kubelet would run the worker image.
//!
//! For each pod the ReplicaSet controller creates, the runner
//! - writes the pod's ConfigMap and Secret volumes, read from the API server, into a directory of the pod, at
//!   their mount paths under it (`<pod dir>/etc/kafka-mirror/config.yaml` for `/etc/kafka-mirror/config.yaml`),
//!   and waits, as a kubelet does, while one is missing (the pod stays Pending and the runner says why);
//! - starts the container's command line with its environment, each argument or value that names a path under
//!   a mount, or a directory holding mounts (`KMIRROR_SECRETS_DIR`), rewritten to the same path under the pod
//!   directory, and its HTTP endpoint moved from the pod's port to a free loopback one (`KMIRROR_HTTP_LISTEN`,
//!   the pod contract's variable);
//! - asks the container's readiness probe (the HTTP path the pod spec names) and writes `Running`, `Ready` and
//!   the container's restart count into the pod's status, from which the ReplicaSet and Deployment controllers
//!   count ready replicas;
//! - restarts a worker that exited (`restartPolicy: Always`), and sends SIGTERM to the worker of a pod that was
//!   deleted (a pod without a node is removed at once, so there is no grace period to honour).
//!
//! What it does not do: pull images (every image is the `mirror-worker` of this build), enforce resources, the
//! security context or the liveness probe, or write `/etc/hosts` from `hostAliases` (the worker resolves them
//! itself). Those need containers, which only the kind suite in GitHub Actions has.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{ConfigMap, Container, KeyToPath, Pod, Secret};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kafka_mirror_crds::worker_pod;
use kube::api::{Api, ListParams, Patch, PatchParams};

use crate::ControlPlane;
use crate::http::{free_address, http_get};
use crate::worker::{Worker, worker_binary};

/// How often the runner looks at the pods, their workers and their probes.
const TICK: Duration = Duration::from_millis(250);
/// The wait before a worker that exited is started again (a kubelet's first back-off step is 10 s; shorter
/// here, so a test sees the restart soon).
const RESTART_DELAY: Duration = Duration::from_secs(1);

/// What the runner knows of one pod, for a test to look at.
#[derive(Debug, Clone, Default)]
pub struct PodView {
    pub name: String,
    /// The pod's annotations (the operator's config hash among them).
    pub annotations: BTreeMap<String, String>,
    /// How often its worker was started.
    pub starts: u32,
    /// Whether its readiness probe answered 200 last time.
    pub ready: bool,
    /// Where its worker serves /metrics, /healthz and /readyz, once started.
    pub http: Option<SocketAddr>,
    /// Why it has not started yet (a volume's ConfigMap or Secret is missing).
    pub waiting: Option<String>,
    /// How each earlier run of its worker ended: the exit status and the last line of its log.
    pub exits: Vec<String>,
    /// The pod was deleted and its worker stopped.
    pub gone: bool,
}

struct Shared {
    stop: AtomicBool,
    pods: Mutex<BTreeMap<String, PodView>>,
    /// Every line of every worker's log of the pods that are gone, for a failure message.
    finished_logs: Mutex<Vec<String>>,
    /// The threads waiting for the workers of deleted pods to exit.
    stopping: Mutex<Vec<JoinHandle<()>>>,
}

/// Runs the pods of one namespace until dropped (which stops every worker it started).
pub struct PodRunner {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl PodRunner {
    /// Starts running the pods of `namespace` on `control_plane`.
    pub fn start(control_plane: &ControlPlane, namespace: &str) -> PodRunner {
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            pods: Mutex::new(BTreeMap::new()),
            finished_logs: Mutex::new(Vec::new()),
            stopping: Mutex::new(Vec::new()),
        });
        let kubeconfig = control_plane.kubeconfig.clone();
        let namespace = namespace.to_string();
        let thread_shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name(format!("pod-runner-{namespace}"))
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a runtime for the pod runner");
                runtime.block_on(run(kubeconfig, namespace, thread_shared));
            })
            .expect("starting the pod runner");
        PodRunner {
            shared,
            thread: Some(thread),
        }
    }

    /// Every pod the runner has seen, the deleted ones included (marked `gone`).
    pub fn pods(&self) -> Vec<PodView> {
        self.shared
            .pods
            .lock()
            .expect("pod views")
            .values()
            .cloned()
            .collect()
    }

    /// The pods that still exist.
    pub fn live_pods(&self) -> Vec<PodView> {
        self.pods().into_iter().filter(|p| !p.gone).collect()
    }

    /// Waits up to `timeout` for `condition` on the live pods; fails the test naming `what` and showing them.
    pub fn wait_for(
        &self,
        what: &str,
        timeout: Duration,
        mut condition: impl FnMut(&[PodView]) -> bool,
    ) -> Vec<PodView> {
        let deadline = Instant::now() + timeout;
        loop {
            let pods = self.live_pods();
            if condition(&pods) {
                return pods;
            }
            assert!(
                Instant::now() < deadline,
                "timed out after {timeout:?} waiting for {what}; the pods: {:#?}",
                self.pods()
            );
            std::thread::sleep(TICK);
        }
    }

    /// The logs of the workers of deleted pods, for a failure message.
    pub fn finished_logs(&self) -> String {
        self.shared
            .finished_logs
            .lock()
            .expect("finished logs")
            .join("\n")
    }
}

impl Drop for PodRunner {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        // Every worker this runner started has exited before the test goes on (or its process ends).
        let stopping = std::mem::take(&mut *self.shared.stopping.lock().expect("stopping workers"));
        for thread in stopping {
            let _ = thread.join();
        }
    }
}

/// A pod the runner runs.
struct RunningPod {
    /// The pod's own directory, under which its volumes are mounted.
    root: tempfile::TempDir,
    container: Container,
    /// The container's command line and environment, paths rewritten; built once the volumes are written.
    prepared: Option<Prepared>,
    worker: Option<Worker>,
    restart_at: Option<Instant>,
    started_at: String,
    /// The status last written, so it is written again only when it changes.
    written: Option<(bool, u32, bool)>,
}

struct Prepared {
    args: Vec<String>,
    env: Vec<(String, String)>,
    http: SocketAddr,
    readiness_path: Option<String>,
}

async fn run(kubeconfig: PathBuf, namespace: String, shared: Arc<Shared>) {
    let client = client(&kubeconfig).await;
    let pods_api: Api<Pod> = Api::namespaced(client.clone(), &namespace);
    let mut running: BTreeMap<String, RunningPod> = BTreeMap::new();
    while !shared.stop.load(Ordering::SeqCst) {
        match pods_api.list(&ListParams::default()).await {
            Ok(list) => {
                let live: BTreeMap<String, Pod> = list
                    .items
                    .into_iter()
                    .filter(|p| p.metadata.deletion_timestamp.is_none())
                    .filter_map(|p| Some((p.metadata.name.clone()?, p)))
                    .collect();
                // Deleted pods: their workers get SIGTERM and drain, off this loop.
                let gone: Vec<String> = running
                    .keys()
                    .filter(|name| !live.contains_key(*name))
                    .cloned()
                    .collect();
                for name in gone {
                    let pod = running.remove(&name).expect("a running pod");
                    stop_pod(&shared, &name, pod);
                }
                for (name, pod) in &live {
                    if !running.contains_key(name) {
                        running.insert(name.clone(), admit(&shared, name, pod));
                    }
                }
                for (name, pod) in running.iter_mut() {
                    tend(&client, &namespace, &shared, name, pod).await;
                }
            }
            Err(e) => eprintln!("pod runner ({namespace}): listing pods failed: {e}"),
        }
        tokio::time::sleep(TICK).await;
    }
    for (name, pod) in std::mem::take(&mut running) {
        stop_pod(&shared, &name, pod);
    }
}

/// A client of the control plane from its admin kubeconfig.
async fn client(kubeconfig: &Path) -> kube::Client {
    let config = kube::config::Kubeconfig::read_from(kubeconfig).expect("the admin kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(config, &Default::default())
        .await
        .expect("a client configuration from the admin kubeconfig");
    kube::Client::try_from(config).expect("a client of the control plane")
}

/// A new pod: its single container, checked to be one the runner can run.
fn admit(shared: &Shared, name: &str, pod: &Pod) -> RunningPod {
    let spec = pod.spec.as_ref().expect("a pod has a spec");
    assert_eq!(
        spec.containers.len(),
        1,
        "pod {name}: the runner runs pods of one container (the worker)"
    );
    assert!(
        spec.init_containers.is_none(),
        "pod {name}: the runner runs no init containers"
    );
    let container = spec.containers[0].clone();
    let image = container.image.clone().unwrap_or_default();
    assert!(
        image.contains("mirror-worker") && container.command.is_none(),
        "pod {name}: the runner runs the mirror-worker image's entrypoint only, not {image} {:?}",
        container.command
    );
    shared.pods.lock().expect("pod views").insert(
        name.to_string(),
        PodView {
            name: name.to_string(),
            annotations: pod.metadata.annotations.clone().unwrap_or_default(),
            ..PodView::default()
        },
    );
    eprintln!("pod runner: pod {name} admitted");
    RunningPod {
        root: tempfile::Builder::new()
            .prefix(&format!("pod-{name}-"))
            .tempdir()
            .expect("a directory for the pod"),
        container,
        prepared: None,
        worker: None,
        restart_at: Some(Instant::now()),
        started_at: now_rfc3339(),
        written: None,
    }
}

/// One look at a pod: write its volumes until they exist, (re)start its worker when due, probe it, and write
/// its status when it changed.
async fn tend(
    client: &kube::Client,
    namespace: &str,
    shared: &Shared,
    name: &str,
    pod: &mut RunningPod,
) {
    let view = |change: &mut dyn FnMut(&mut PodView)| {
        if let Some(v) = shared.pods.lock().expect("pod views").get_mut(name) {
            change(v)
        }
    };
    if pod.prepared.is_none() {
        let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
        let Ok(current) = pods.get(name).await else {
            return;
        };
        match prepare(client, namespace, &current, &pod.container, pod.root.path()).await {
            Ok(prepared) => {
                pod.prepared = Some(prepared);
                view(&mut |v| v.waiting = None);
            }
            Err(waiting) => {
                view(&mut |v| v.waiting = Some(waiting.clone()));
                return;
            }
        }
    }
    let prepared = pod.prepared.as_ref().expect("prepared above");
    if let Some(worker) = pod.worker.as_mut()
        && let Some(status) = worker.exit_status()
    {
        let worker = pod.worker.take().expect("a worker");
        let finished = worker.finish(Duration::ZERO);
        let last = finished
            .stderr
            .lines()
            .chain(finished.stdout.lines())
            .rfind(|l| !l.trim().is_empty())
            .unwrap_or_default()
            .to_string();
        eprintln!("pod runner: pod {name}: the worker exited with {status}: {last}");
        view(&mut |v| v.exits.push(format!("{status}: {last}")));
        pod.restart_at = Some(Instant::now() + RESTART_DELAY);
    }
    if pod.worker.is_none() && pod.restart_at.is_some_and(|at| Instant::now() >= at) {
        pod.restart_at = None;
        pod.started_at = now_rfc3339();
        pod.worker = Some(start_worker(name, prepared, pod.root.path()));
        view(&mut |v| {
            v.starts += 1;
            v.http = Some(prepared.http);
        });
    }
    let running = pod.worker.is_some();
    let ready = running
        && prepared.readiness_path.as_deref().is_none_or(|path| {
            http_get(prepared.http, path).is_ok_and(|(status, _)| status == 200)
        });
    let restarts = shared
        .pods
        .lock()
        .expect("pod views")
        .get(name)
        .map_or(0, |v| v.starts.saturating_sub(1));
    view(&mut |v| v.ready = ready);
    if pod.written != Some((ready, restarts, running)) {
        let status = pod_status(&pod.container, ready, restarts, running, &pod.started_at);
        let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
        match pods
            .patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
            .await
        {
            Ok(_) => pod.written = Some((ready, restarts, running)),
            Err(e) => eprintln!("pod runner: pod {name}: writing its status failed: {e}"),
        }
    }
}

/// The pod's status as a kubelet writes it: running (or waiting to restart), ready or not, restarts.
fn pod_status(
    container: &Container,
    ready: bool,
    restarts: u32,
    running: bool,
    started_at: &str,
) -> serde_json::Value {
    let condition = |type_: &str, status: bool| {
        serde_json::json!({
            "type": type_,
            "status": if status { "True" } else { "False" },
            "lastTransitionTime": now_rfc3339(),
        })
    };
    let state = if running {
        serde_json::json!({"running": {"startedAt": started_at}})
    } else {
        serde_json::json!({"waiting": {"reason": "CrashLoopBackOff"}})
    };
    serde_json::json!({
        "status": {
            "phase": "Running",
            "startTime": started_at,
            "conditions": [
                condition("PodScheduled", true),
                condition("Initialized", true),
                condition("ContainersReady", ready),
                condition("Ready", ready),
            ],
            "containerStatuses": [{
                "name": container.name,
                "image": container.image,
                "imageID": "",
                "ready": ready,
                "started": running,
                "restartCount": restarts,
                "state": state,
            }],
        }
    })
}

/// Writes the container's volumes under `root` and builds its command line; the reason to wait when a
/// ConfigMap or Secret it mounts does not exist yet.
async fn prepare(
    client: &kube::Client,
    namespace: &str,
    pod: &Pod,
    container: &Container,
    root: &Path,
) -> Result<Prepared, String> {
    let spec = pod.spec.as_ref().expect("a pod has a spec");
    let volumes = spec.volumes.clone().unwrap_or_default();
    let mounts = container.volume_mounts.clone().unwrap_or_default();
    for mount in &mounts {
        assert!(
            mount.sub_path.is_none() && mount.sub_path_expr.is_none(),
            "the runner mounts whole volumes only"
        );
        let volume = volumes
            .iter()
            .find(|v| v.name == mount.name)
            .unwrap_or_else(|| panic!("the pod mounts {}, which it does not define", mount.name));
        let dir = under(root, &mount.mount_path);
        let files: BTreeMap<String, Vec<u8>> = if let Some(source) = &volume.config_map {
            let name = &source.name;
            let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
            let Some(map) = api.get_opt(name).await.map_err(|e| e.to_string())? else {
                return Err(format!(
                    "ConfigMap {name} (volume {}) not found",
                    volume.name
                ));
            };
            let mut data: BTreeMap<String, Vec<u8>> = map
                .data
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, v.into_bytes()))
                .collect();
            data.extend(
                map.binary_data
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(k, v)| (k, v.0)),
            );
            project(data, source.items.as_deref())
        } else if let Some(source) = &volume.secret {
            let name = source
                .secret_name
                .clone()
                .expect("a Secret volume names its Secret");
            let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
            let Some(secret) = api.get_opt(&name).await.map_err(|e| e.to_string())? else {
                return Err(format!("Secret {name} (volume {}) not found", volume.name));
            };
            let data = secret
                .data
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, v.0))
                .collect();
            project(data, source.items.as_deref())
        } else {
            panic!(
                "volume {}: the runner mounts ConfigMap and Secret volumes only",
                volume.name
            );
        };
        std::fs::create_dir_all(&dir).expect("a mount directory");
        for (path, bytes) in files {
            let file = dir.join(&path);
            std::fs::create_dir_all(file.parent().expect("a file in a directory"))
                .expect("a directory in a volume");
            std::fs::write(&file, bytes)
                .unwrap_or_else(|e| panic!("writing {}: {e}", file.display()));
        }
    }
    // A path at or under a mount, or a directory holding mounts (the Secrets directory, one mount per Secret
    // below it).
    let relocate = |value: &str| -> String {
        let inside = mounts.iter().any(|m| {
            let mp = m.mount_path.trim_end_matches('/');
            let value = value.trim_end_matches('/');
            value.starts_with('/')
                && (value == mp
                    || value.starts_with(&format!("{mp}/"))
                    || mp.starts_with(&format!("{value}/")))
        });
        if inside {
            under(root, value).to_string_lossy().into_owned()
        } else {
            value.to_string()
        }
    };
    let http = free_address();
    let mut env: Vec<(String, String)> = Vec::new();
    let mut listens = false;
    for var in container.env.clone().unwrap_or_default() {
        let value = if var.name == worker_pod::ENV_HTTP_LISTEN {
            listens = true;
            http.to_string()
        } else if let Some(value) = &var.value {
            relocate(value)
        } else {
            let field = var
                .value_from
                .as_ref()
                .and_then(|f| f.field_ref.as_ref())
                .map(|f| f.field_path.as_str());
            match field {
                Some("metadata.name") => pod.metadata.name.clone().unwrap_or_default(),
                Some("metadata.namespace") => namespace.to_string(),
                _ => panic!(
                    "env {}: the runner sets literal values and the pod's name and namespace only",
                    var.name
                ),
            }
        };
        env.push((var.name.clone(), value));
    }
    assert!(
        listens,
        "the container sets no {}: the runner cannot move its endpoint to a free port",
        worker_pod::ENV_HTTP_LISTEN
    );
    let args = container
        .args
        .clone()
        .unwrap_or_default()
        .iter()
        .map(|a| relocate(a))
        .collect();
    let readiness_path = container
        .readiness_probe
        .as_ref()
        .and_then(|p| p.http_get.as_ref())
        .map(|get| {
            let named_port = matches!(&get.port, IntOrString::String(name) if name == "http");
            let numbered_port = get.port == IntOrString::Int(i32::from(worker_pod::HTTP_PORT));
            assert!(
                named_port || numbered_port,
                "the readiness probe asks {:?}, not the worker's endpoint",
                get.port
            );
            get.path.clone().unwrap_or_else(|| "/".to_string())
        });
    Ok(Prepared {
        args,
        env,
        http,
        readiness_path,
    })
}

/// The files of a volume: every key, or the `items` the volume selects at their paths.
fn project(
    data: BTreeMap<String, Vec<u8>>,
    items: Option<&[KeyToPath]>,
) -> BTreeMap<String, Vec<u8>> {
    match items {
        None => data,
        Some(items) => items
            .iter()
            .filter_map(|item| Some((item.path.clone(), data.get(&item.key)?.clone())))
            .collect(),
    }
}

/// `path` (absolute, as in the pod) under the pod's directory.
fn under(root: &Path, path: &str) -> PathBuf {
    root.join(path.trim_start_matches('/'))
}

/// The worker of a pod, with the pod's environment only (and `PATH`), as a container has.
fn start_worker(name: &str, prepared: &Prepared, root: &Path) -> Worker {
    let mut command = Command::new(worker_binary());
    command
        .args(&prepared.args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOSTNAME", name)
        .envs(prepared.env.iter().map(|(k, v)| (k, v)));
    let logs = tempfile::Builder::new()
        .prefix("logs-")
        .tempdir_in(root)
        .expect("a directory for the worker's output");
    let stderr = logs.path().join("stderr");
    eprintln!(
        "pod runner: pod {name}: starting mirror-worker {} (endpoint {})",
        prepared.args.join(" "),
        prepared.http
    );
    Worker::start(
        command,
        logs,
        stderr,
        prepared.http,
        Duration::from_secs(worker_pod::DRAIN_TIMEOUT_SECONDS),
    )
}

/// A deleted pod: its worker gets SIGTERM and drains in a thread of its own; what it said is kept.
fn stop_pod(shared: &Arc<Shared>, name: &str, pod: RunningPod) {
    if let Some(v) = shared.pods.lock().expect("pod views").get_mut(name) {
        v.gone = true;
        v.ready = false;
    }
    let Some(mut worker) = pod.worker else {
        return;
    };
    eprintln!("pod runner: pod {name} deleted: SIGTERM to its worker");
    // The signal now, the wait in a thread: a test process that ends meanwhile leaves no worker behind that
    // never heard it (the runner's drop joins these threads too).
    if worker.exit_status().is_none() {
        worker.signal("TERM");
    }
    let waiting = Arc::clone(shared);
    let name = name.to_string();
    let stopping = std::thread::spawn(move || {
        let shared = waiting;
        let finished = worker.stop();
        let _root = pod.root;
        shared
            .finished_logs
            .lock()
            .expect("finished logs")
            .push(format!(
                "--- pod {name}: {} ---\n{}",
                finished.status,
                finished.output()
            ));
    });
    shared
        .stopping
        .lock()
        .expect("stopping workers")
        .push(stopping);
}

/// Now, as the API server writes times.
fn now_rfc3339() -> String {
    k8s_openapi::jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}
