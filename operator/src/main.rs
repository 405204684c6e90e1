//! `kafka-mirror-operator`: `run` reconciles `KafkaMirror`s in a cluster; `crd` prints the CRD; `render`
//! prints what a `KafkaMirror` document becomes, offline.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use kafka_mirror_operator::Chain;
use kafka_mirror_operator::controller::{self, LeaderElection, OperatorConfig};
use kafka_mirror_operator::desired::{BuildSettings, WorkerState, desired_objects};
use kafka_mirror_operator::reconcile::Intervals;
use kafka_mirror_operator::validate::MirrorIdentity;
use kafka_mirror_runtime::process::{LogFormat, init_logging, shutdown_signal};

// jemalloc with the same options as the worker (one arena): see `kafka_mirror_runtime::use_jemalloc`.
kafka_mirror_runtime::use_jemalloc!();

const DEFAULT_WORKER_IMAGE: &str = concat!(
    "ghcr.io/kafka-mirror/mirror-worker:",
    env!("CARGO_PKG_VERSION")
);

#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Runs the operator: reconciles every KafkaMirror into worker Deployments and writes their lag into the
    /// status. Uses the in-cluster service account, or the current kubeconfig context outside a cluster.
    Run(RunArgs),
    /// Prints the KafkaMirror CustomResourceDefinition (the same YAML as crds/kafkamirror.yaml).
    Crd,
    /// Prints the objects the operator applies for a KafkaMirror document: ServiceAccount, ConfigMap,
    /// Deployment, PodDisruptionBudget (replicas > 1) and metrics Service.
    Render {
        /// The KafkaMirror document.
        #[arg(short = 'f', long = "filename")]
        file: PathBuf,
        /// Namespace, when the document has none.
        #[arg(short, long, default_value = "default")]
        namespace: String,
        /// Worker image, when spec.template.image is absent.
        #[arg(long, env = "KMIRROR_WORKER_IMAGE", default_value = DEFAULT_WORKER_IMAGE)]
        worker_image: String,
    },
}

#[derive(Args, Debug)]
struct RunArgs {
    /// Watch KafkaMirrors in this namespace only (namespaced RBAC suffices); all namespaces when absent.
    #[arg(long, env = "KMIRROR_WATCH_NAMESPACE")]
    namespace: Option<String>,
    /// Worker image, when spec.template.image is absent.
    #[arg(long, env = "KMIRROR_WORKER_IMAGE", default_value = DEFAULT_WORKER_IMAGE)]
    worker_image: String,
    /// Address of /metrics, /healthz and /readyz.
    #[arg(long, env = "KMIRROR_HTTP_LISTEN", default_value = "0.0.0.0:8080")]
    http_listen: SocketAddr,
    /// Seconds between lag measurements of each mirror.
    #[arg(long, default_value_t = 30)]
    lag_interval: u64,
    /// Seconds before a mirror whose spec cannot work is looked at again (an edit is seen at once).
    #[arg(long, default_value_t = 300)]
    invalid_requeue: u64,
    /// Seconds before a mirror refused for a missing Secret or key is looked at again (Secrets are not
    /// watched: creating one is no edit of the mirror).
    #[arg(long, default_value_t = 10)]
    missing_secret_requeue: u64,
    /// Hold a coordination.k8s.io Lease before reconciling, so that several replicas can run (one active).
    #[arg(long, env = "KMIRROR_LEADER_ELECTION")]
    leader_election: bool,
    /// Name of the Lease.
    #[arg(long, default_value = "kafka-mirror-operator")]
    lease_name: String,
    /// Namespace of the Lease (the operator's own namespace).
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    lease_namespace: String,
    /// Seconds a Lease holder that stopped renewing keeps it before another replica takes over.
    #[arg(long, default_value_t = 15)]
    lease_duration: u64,
    /// This replica's identity in the Lease and in Events (the pod name).
    #[arg(long, env = "POD_NAME", default_value = "kafka-mirror-operator")]
    identity: String,
    /// Log format: `text` for a terminal, `json` for a log pipeline.
    #[arg(long, env = "KMIRROR_LOG_FORMAT", default_value = "text")]
    log_format: LogFormat,
}

fn main() -> ExitCode {
    let printed = match Cli::parse().command {
        Command::Run(args) => return run_operator(args),
        Command::Crd => Ok(kafka_mirror_crds::crd_yaml()),
        Command::Render {
            file,
            namespace,
            worker_image,
        } => render(&file, namespace, worker_image),
    };
    match printed {
        Ok(out) => {
            print!("{out}");
            ExitCode::SUCCESS
        }
        Err((code, message)) => {
            eprintln!("kafka-mirror-operator: error: {message}");
            ExitCode::from(code)
        }
    }
}

fn run_operator(args: RunArgs) -> ExitCode {
    init_logging(args.log_format);
    if args.lease_duration < 3
        || args.lag_interval == 0
        || args.invalid_requeue == 0
        || args.missing_secret_requeue == 0
    {
        eprintln!(
            "kafka-mirror-operator: error: --lease-duration must be at least 3 seconds, --lag-interval, --invalid-requeue and --missing-secret-requeue at least 1"
        );
        return ExitCode::from(2);
    }
    let config = OperatorConfig {
        namespace: args.namespace,
        settings: BuildSettings {
            worker_image: args.worker_image,
        },
        http_listen: args.http_listen,
        intervals: Intervals {
            lag: Duration::from_secs(args.lag_interval),
            invalid: Duration::from_secs(args.invalid_requeue),
            missing_secret: Duration::from_secs(args.missing_secret_requeue),
            ..Intervals::default()
        },
        leader_election: args.leader_election.then(|| LeaderElection {
            lease_namespace: args.lease_namespace,
            lease_name: args.lease_name,
            lease_duration: Duration::from_secs(args.lease_duration),
        }),
        identity: args.identity,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("kafka-mirror-operator: error: starting the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        let client = kube::Client::try_default().await.map_err(|e| {
            format!(
                "connecting to the Kubernetes API (in-cluster service account or kubeconfig): {}",
                Chain(&e)
            )
        })?;
        controller::run(client, config, shutdown_signal())
            .await
            .map_err(|e| Chain(&e).to_string())
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            tracing::error!(error = %message, "kafka-mirror-operator stopped");
            eprintln!("kafka-mirror-operator: error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// What `render` prints: every object the operator would apply for the document at `file`.
fn render(file: &Path, namespace: String, worker_image: String) -> Result<String, (u8, String)> {
    let yaml = std::fs::read_to_string(file)
        .map_err(|e| (2, format!("cannot read {}: {e}", file.display())))?;
    let mut mirror = kafka_mirror_crds::parse_document(&yaml).map_err(|e| {
        (
            2,
            format!("invalid KafkaMirror document {}:\n{e}", file.display()),
        )
    })?;
    mirror.metadata.namespace.get_or_insert(namespace);
    // Rendering happens before the API server assigned a uid; a fixed one keeps the output stable.
    mirror
        .metadata
        .uid
        .get_or_insert_with(|| "00000000-0000-0000-0000-000000000000".to_string());
    let identity = MirrorIdentity::of(&mirror).map_err(|e| (1, e.to_string()))?;
    let objects = desired_objects(
        &identity,
        &mirror.spec,
        &BuildSettings { worker_image },
        &WorkerState::from_spec(&mirror.spec),
    )
    .map_err(|e| (1, Chain(&e).to_string()))?;
    objects.to_yaml().map_err(|e| (1, Chain(&e).to_string()))
}
