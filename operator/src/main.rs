//! `kafka-mirror-operator`: prints the CRD and renders what a `KafkaMirror` becomes. (The controller that
//! applies it is being built; see issue 3.)

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use kafka_mirror_operator::build::{BuildSettings, desired_objects};

#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
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
        #[arg(long, env = "KMIRROR_WORKER_IMAGE", default_value = concat!("ghcr.io/kafka-mirror/mirror-worker:", env!("CARGO_PKG_VERSION")))]
        worker_image: String,
    },
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
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

fn run(cli: Cli) -> Result<String, (u8, String)> {
    match cli.command {
        Command::Crd => Ok(kafka_mirror_crds::crd_yaml()),
        Command::Render {
            file,
            namespace,
            worker_image,
        } => {
            let yaml = std::fs::read_to_string(&file)
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
            let objects = desired_objects(&mirror, &BuildSettings { worker_image })
                .map_err(|e| (1, e.to_string()))?;
            objects.to_yaml().map_err(|e| (1, e.to_string()))
        }
    }
}
