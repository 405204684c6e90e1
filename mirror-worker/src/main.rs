//! `mirror-worker`: runs the mirror a `KafkaMirror` document describes, or the one-command demo.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use kafka_mirror_clients::MirrorPlan;
use kafka_mirror_clients::migration::MigrationRecord;
use kafka_mirror_clients::secrets::Secrets;
use kafka_mirror_crds::{Mode, worker_pod};
use kafka_mirror_runtime::process::{
    LogFormat, init_logging, init_logging_to_file, shutdown_signal,
};
use mirror_worker::demo::{self, DemoOptions};
use mirror_worker::health::{Health, WorkerEndpoints};
use mirror_worker::metrics::Metrics;
use mirror_worker::{Engine, EngineOptions, Error, Summary};
use tracing::{error, info};

kafka_mirror_runtime::use_jemalloc!();

/// Mirrors Kafka topics from a source cluster to a target cluster, as a `KafkaMirror` document describes.
#[derive(Parser, Debug)]
#[command(version, about, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,

    /// The `KafkaMirror` YAML document to run (what you would `kubectl apply`).
    #[arg(long, env = worker_pod::ENV_CONFIG, value_name = "FILE")]
    config: Option<PathBuf>,

    /// Directory with Secret values as `<secret>/<key>` files (environment variables
    /// `KMIRROR_SECRET_<SECRET>_<KEY>` take precedence).
    #[arg(long, env = worker_pod::ENV_SECRETS_DIR, default_value = worker_pod::SECRETS_DIR)]
    secrets_dir: PathBuf,

    /// Address of the HTTP endpoint serving /metrics, /healthz and /readyz.
    #[arg(long, env = worker_pod::ENV_HTTP_LISTEN, default_value = worker_pod::HTTP_LISTEN)]
    http_listen: SocketAddr,

    /// Seconds between commits of acknowledged source offsets.
    #[arg(long, default_value_t = worker_pod::COMMIT_INTERVAL_SECONDS)]
    commit_interval: f64,

    /// Seconds a shutdown or rebalance waits for in-flight records before committing what is acknowledged.
    #[arg(long, default_value_t = worker_pod::DRAIN_TIMEOUT_SECONDS as f64)]
    drain_timeout: f64,

    /// `mode: migrate`: the end offsets recorded when the migration started (what the operator mounts from
    /// ConfigMap `<name>-migration`). The worker copies exactly up to them and, once the group's commits reached
    /// them, stays up idle and ready, copying nothing, until stopped: a restart copies nothing new. Without it
    /// the worker records the high watermarks it sees at start and exits 0 when it reached them.
    #[arg(long, value_name = "FILE")]
    migration_end: Option<PathBuf>,

    /// Log format: `text` for a terminal, `json` for a log pipeline.
    #[arg(long, env = worker_pod::ENV_LOG_FORMAT, default_value = "text")]
    log_format: LogFormat,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Starts two embedded Kafka clusters, seeds `testtopic` with keyed records, mirrors it with the real
    /// engine while showing progress, and verifies the copy record by record.
    Demo {
        /// Records to seed (two thirds before the mirror starts, the rest while it runs).
        #[arg(long, default_value_t = 50_000)]
        records: u64,
        /// Distinct keys.
        #[arg(long, default_value_t = 500)]
        keys: u64,
        /// Value size in bytes.
        #[arg(long, default_value_t = 100)]
        value_size: usize,
        /// Consumer instances (MirrorMaker's --num.streams).
        #[arg(long, default_value_t = 4)]
        num_streams: i32,
        /// Where the engine's log goes while the terminal shows the progress line (default: a file in the
        /// temporary directory, named at the end).
        #[arg(long, value_name = "FILE")]
        log_file: Option<PathBuf>,
        /// The engine's log on stderr instead of a file.
        #[arg(long)]
        verbose: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let demo_log = match &cli.command {
        Some(Command::Demo {
            log_file, verbose, ..
        }) if !verbose => {
            let path = log_file
                .clone()
                .unwrap_or_else(|| std::env::temp_dir().join("mirror-worker-demo.log"));
            match std::fs::File::create(&path) {
                Ok(file) => init_logging_to_file(cli.log_format, file),
                Err(e) => {
                    eprintln!("mirror-worker: error: --log-file {}: {e}", path.display());
                    return ExitCode::from(2);
                }
            }
            Some(path)
        }
        _ => {
            init_logging(cli.log_format);
            None
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("mirror-worker: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Some(Command::Demo {
                records,
                keys,
                value_size,
                num_streams,
                ..
            }) => {
                let options = DemoOptions {
                    records,
                    keys,
                    value_size,
                    num_streams,
                    ..DemoOptions::default()
                };
                let verification = demo::run(options).await;
                if let Some(path) = &demo_log {
                    println!("the engine's log: {}", path.display());
                }
                let verification = verification?;
                if verification.is_intact() {
                    println!("the copy is complete and intact");
                    Ok(())
                } else {
                    Err(Error::Fatal(format!(
                        "the copy is not intact: {verification}"
                    )))
                }
            }
            None => run_mirror(&cli).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // A configuration error is for the person at the terminal; a runtime failure also goes to the log.
            if e.exit_code() != 2 {
                error!(error = %e, "mirror-worker stopped");
            }
            eprintln!("mirror-worker: error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

async fn run_mirror(cli: &Cli) -> Result<(), Error> {
    let Some(config) = &cli.config else {
        return Err(field_error(
            "--config",
            "required: the KafkaMirror document to run (or use `mirror-worker demo`)",
        ));
    };
    let options = EngineOptions {
        commit_interval: seconds("--commit-interval", cli.commit_interval)?,
        drain_timeout: seconds("--drain-timeout", cli.drain_timeout)?,
    };
    let options_drain_timeout = options.drain_timeout;
    let plan = MirrorPlan::load(config, &Secrets::new(&cli.secrets_dir))?;
    refuse_what_only_the_operator_honours(&plan)?;
    let migration_end = migration_end(cli.migration_end.as_deref(), plan.spec.mode)?;
    let metrics = Arc::new(Metrics::new());
    let health = Arc::new(Health::new(plan.spec.num_streams as usize));
    let bound = kafka_mirror_runtime::http::serve(
        cli.http_listen,
        Arc::new(WorkerEndpoints {
            metrics: metrics.clone(),
            health: health.clone(),
        }),
    )
    .await?;
    info!(mirror = plan.name, http = %bound, "serving /metrics, /healthz and /readyz");
    let mut engine = Engine::new(plan, options, metrics, health.clone());
    let idle_when_complete = migration_end.is_some();
    if let Some(record) = migration_end {
        engine = engine.migration_end(record);
    }
    let stop_deadline = options_drain_timeout + STOP_MARGIN;
    let summary = engine
        .run(async move {
            shutdown_signal().await;
            exit_if_not_stopped_within(stop_deadline);
        })
        .await?;
    print_summary(&summary);
    // The operator's migration ends when it scales the workers to zero. A worker that exited instead would be
    // restarted by its Deployment, again and again (CrashLoopBackOff): it idles, ready, until stopped.
    if summary.migration_complete && idle_when_complete {
        health.set_migration_complete();
        info!(
            "migration complete: every recorded end offset is committed; idle until stopped (the operator scales \
             the workers to zero)"
        );
        shutdown_signal().await;
    }
    Ok(())
}

/// How long a stop may take beyond the drain: the last commit and closing the clients (see
/// `worker_pod::STOP_MARGIN_SECONDS`, which the operator's grace period counts with).
const STOP_MARGIN: Duration = Duration::from_secs(worker_pod::STOP_MARGIN_SECONDS);

/// After SIGTERM the worker drains (up to `--drain-timeout`) and commits; then closing the consumers waits
/// for the source's group coordinator, which librdkafka keeps retrying while no broker answers (a worker whose
/// source went away once waited for an hour). A stop must end: `limit` after the signal the process exits
/// with 1, whatever is still closing; what was committed stays committed, the rest is read again by the next
/// owner.
fn exit_if_not_stopped_within(limit: Duration) {
    std::thread::spawn(move || {
        std::thread::sleep(limit);
        let why = format!(
            "the stop did not finish within {limit:?} of the signal (--drain-timeout and {STOP_MARGIN:?} to close \
             the clients; a cluster that does not answer keeps librdkafka's close waiting): exiting; records \
             not committed are read again by the next owner"
        );
        error!("{why}");
        eprintln!("mirror-worker: error: {why}");
        std::process::exit(1);
    });
}

/// Fields of the document that only the operator can honour, since they are about pods, not about one
/// process: a worker given one it cannot honour refuses it rather than run as if it were absent.
/// - `paused: true`: a paused mirror copies nothing; the operator runs no worker at all.
/// - `template`: the worker pods' image, resources and scheduling; the operator leaves it out of the document
///   it gives its pods, so only a document written for `mirror-worker --config` by hand can carry it.
/// - `replicas` is honoured, not refused: it is how many workers share the mirror's consumer group, each
///   started with the same document; this process is one of them (said in the log).
fn refuse_what_only_the_operator_honours(plan: &MirrorPlan) -> Result<(), Error> {
    if plan.spec.paused {
        return Err(field_error(
            "spec.paused",
            "true: a paused mirror copies nothing, so there is nothing to run (set it to false to mirror; \
             the operator runs no workers while a mirror is paused)",
        ));
    }
    if plan.spec.template.is_some() {
        return Err(field_error(
            "spec.template",
            "pod settings (image, resources, scheduling) apply to the worker pods the operator runs; a \
             mirror-worker process started by hand has none to apply (remove spec.template to run this \
             document with --config)",
        ));
    }
    if plan.spec.replicas > 1 {
        info!(
            mirror = plan.name,
            replicas = plan.spec.replicas,
            "spec.replicas: this process is one of the workers sharing the consumer group; start the others with \
             the same document"
        );
    }
    Ok(())
}

/// `--migration-end`, read before any connection: a record that cannot be used names the file and the field.
fn migration_end(path: Option<&Path>, mode: Mode) -> Result<Option<MigrationRecord>, Error> {
    let Some(path) = path else {
        return Ok(None);
    };
    if mode != Mode::Migrate {
        return Err(field_error(
            worker_pod::MIGRATION_END_FLAG,
            format!(
                "{}: end offsets are for spec.mode: migrate, and the document's mode is continuous",
                path.display()
            ),
        ));
    }
    MigrationRecord::read(path)
        .map(Some)
        .map_err(|e| field_error(worker_pod::MIGRATION_END_FLAG, e.to_string()))
}

fn seconds(flag: &str, value: f64) -> Result<Duration, Error> {
    Duration::try_from_secs_f64(value)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| field_error(flag, format!("{value} is not a positive number of seconds")))
}

/// A command-line argument the user must fix (exit code 2, like a field of the document).
fn field_error(flag: &str, message: impl Into<String>) -> Error {
    kafka_mirror_clients::Error::Field(kafka_mirror_crds::FieldError::new(flag, message)).into()
}

fn print_summary(summary: &Summary) {
    if summary.migration_complete {
        println!("migration complete");
    }
    println!(
        "{:<40} {:<40} {:>12} {:>14}",
        "SOURCE TOPIC", "TARGET TOPIC", "RECORDS", "BYTES"
    );
    for (topic, s) in &summary.topics {
        println!(
            "{topic:<40} {:<40} {:>12} {:>14}",
            s.target_topic, s.records, s.bytes
        );
    }
}
