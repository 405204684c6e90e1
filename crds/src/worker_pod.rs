//! The contract between the operator and the worker pods it runs, and between a person and
//! `mirror-worker --config` outside Kubernetes: where the document and the Secrets are found, where the HTTP
//! endpoint listens, and the environment variables that say so. The operator renders pods from these and the
//! worker reads its defaults from them, so the two sides cannot drift apart.

/// Port of the worker's `/metrics`, `/healthz` and `/readyz`.
pub const HTTP_PORT: u16 = 8080;
/// Where the worker's HTTP endpoint listens by default: every interface, [`HTTP_PORT`].
pub const HTTP_LISTEN: &str = "0.0.0.0:8080";
/// Where the operator mounts the ConfigMap holding the worker's document.
pub const CONFIG_DIR: &str = "/etc/kafka-mirror";
/// The document's file name in the ConfigMap (and so in [`CONFIG_DIR`]).
pub const CONFIG_FILE: &str = "mirror.yaml";
/// Where Secrets are mounted, one directory per Secret: `<dir>/<secret name>/<key>`.
pub const SECRETS_DIR: &str = "/var/run/kafka-mirror/secrets";
/// `mode: migrate`: where the operator mounts the ConfigMap `<name>-migration` holding the end offsets it
/// recorded (read-only; not under [`CONFIG_DIR`], itself a read-only ConfigMap volume).
pub const MIGRATION_DIR: &str = "/var/run/kafka-mirror/migration";
/// `mode: migrate`: the end offsets' file name in [`MIGRATION_DIR`], which is their key in the ConfigMap
/// `<name>-migration`. Its format is `kafka_mirror_clients::migration::MigrationRecord`.
pub const MIGRATION_FILE: &str = "end-offsets.json";
/// The worker's flag naming the recorded end offsets of a migration (the operator passes
/// `MIGRATION_DIR/MIGRATION_FILE`).
pub const MIGRATION_END_FLAG: &str = "--migration-end";

/// The worker's `--drain-timeout` default: how long a SIGTERM'd worker waits for in-flight records before it
/// commits and exits. The operator's termination grace period is this and a margin.
pub const DRAIN_TIMEOUT_SECONDS: u64 = 30;

/// The worker's `--commit-interval` default: how often acknowledged source positions are committed and, with
/// `delivery: exactlyOnce`, how often transactions commit (so a `read_committed` reader of the target sees a
/// record within about this long). The benchmark reports its exactly-once latency against it.
pub const COMMIT_INTERVAL_SECONDS: f64 = 2.0;

/// Seconds a SIGTERM'd worker may take beyond its drain timeout for the last commit and closing its clients;
/// then it exits by itself (with 1 if something was still closing). The operator's termination grace period
/// leaves 5 s more, so a pod ends on its own and says why before the kubelet kills it.
pub const STOP_MARGIN_SECONDS: u64 = 10;

/// What every environment variable the worker reads starts with.
pub const ENV_PREFIX: &str = "KMIRROR_";
/// Environment variable: the document to run (`--config`).
pub const ENV_CONFIG: &str = "KMIRROR_CONFIG";
/// Environment variable: the Secrets directory (`--secrets-dir`).
pub const ENV_SECRETS_DIR: &str = "KMIRROR_SECRETS_DIR";
/// Environment variable: the HTTP endpoint's address (`--http-listen`).
pub const ENV_HTTP_LISTEN: &str = "KMIRROR_HTTP_LISTEN";
/// Environment variable: `text` or `json` logs (`--log-format`).
pub const ENV_LOG_FORMAT: &str = "KMIRROR_LOG_FORMAT";
/// Prefix of the environment variables that carry a Secret value outside Kubernetes:
/// `KMIRROR_SECRET_<SECRET>_<KEY>`, upper case, other characters as `_`.
pub const ENV_SECRET_PREFIX: &str = "KMIRROR_SECRET_";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_listen_address_uses_the_port() {
        assert_eq!(HTTP_LISTEN, format!("0.0.0.0:{HTTP_PORT}"));
    }

    #[test]
    fn every_variable_starts_with_the_prefix() {
        for name in [
            ENV_CONFIG,
            ENV_SECRETS_DIR,
            ENV_HTTP_LISTEN,
            ENV_LOG_FORMAT,
            ENV_SECRET_PREFIX,
        ] {
            assert!(name.starts_with(ENV_PREFIX), "{name}");
        }
    }
}
