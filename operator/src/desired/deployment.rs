//! The workers' Deployment: `spec.replicas` pods (none while paused or after a completed migration) running
//! `mirror-worker --config`, with probes, the restricted Pod Security Standard, Secrets as files, `hostAliases`
//! for broker names no DNS server resolves, and a config hash that rolls the pods when the spec changes. With
//! `mode: migrate` the pods also mount the migration record (`<name>-migration`) and are told to copy up to it
//! (`--migration-end`); the volume and flag follow the mode alone, so recording the end offsets never changes the
//! pod template, and the volume is not optional, so the kubelet starts no worker before the record exists.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentSpec, DeploymentStrategy, RollingUpdateDeployment,
};
use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMapVolumeSource, Container, ContainerPort, EnvVar, HTTPGetAction,
    HostAlias, PodSecurityContext, PodSpec, PodTemplateSpec, Probe, ResourceRequirements,
    SeccompProfile, SecurityContext, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kafka_mirror_crds::template::WorkerTemplate;
use kafka_mirror_crds::worker_pod::{
    CONFIG_DIR, CONFIG_FILE, DRAIN_TIMEOUT_SECONDS, ENV_HTTP_LISTEN, ENV_SECRETS_DIR, HTTP_PORT,
    MIGRATION_DIR, MIGRATION_END_FLAG, MIGRATION_FILE, SECRETS_DIR, STOP_MARGIN_SECONDS,
};
use kafka_mirror_crds::{KafkaMirrorSpec, Mode};

use super::{BuildSettings, secrets};
use crate::labels::{object_labels, selector};
use crate::validate::MirrorIdentity;

/// The annotation whose change rolls the pods when the worker document changes.
pub const CONFIG_HASH_ANNOTATION: &str = "kafkamirror.io/config-hash";
/// The non-root user of the worker image.
const WORKER_UID: i64 = 65532;
/// Seconds the worker may take to stop on SIGTERM: its drain timeout, its stop margin (the last commit and
/// closing its clients, after which it exits by itself), and 5 s for its exit to be seen.
const TERMINATION_GRACE_SECONDS: i64 = (DRAIN_TIMEOUT_SECONDS + STOP_MARGIN_SECONDS + 5) as i64;

pub(super) fn build(
    owner: &MirrorIdentity,
    spec: &KafkaMirrorSpec,
    settings: &BuildSettings,
    config_hash: &str,
    replicas: i32,
) -> Deployment {
    let template = spec.template.clone().unwrap_or_default();
    Deployment {
        metadata: owner.metadata(&owner.names.workload),
        spec: Some(DeploymentSpec {
            replicas: Some(replicas),
            selector: LabelSelector {
                match_labels: Some(selector(&owner.name)),
                ..LabelSelector::default()
            },
            // One pod at a time: each replacement costs a rebalance, and the group keeps consuming meanwhile.
            strategy: Some(DeploymentStrategy {
                type_: Some("RollingUpdate".to_string()),
                rolling_update: Some(RollingUpdateDeployment {
                    max_surge: Some(IntOrString::Int(1)),
                    max_unavailable: Some(IntOrString::Int(0)),
                }),
            }),
            template: PodTemplateSpec {
                metadata: Some(pod_metadata(owner, &template, config_hash)),
                spec: Some(pod_spec(owner, spec, &template, settings)),
            },
            ..DeploymentSpec::default()
        }),
        ..Deployment::default()
    }
}

/// The pod template's labels and annotations: the selector, the user's own, the config hash and the Prometheus
/// scrape hints.
fn pod_metadata(
    owner: &MirrorIdentity,
    template: &WorkerTemplate,
    config_hash: &str,
) -> ObjectMeta {
    let mut labels = object_labels(&owner.name);
    labels.extend(template.pod_labels.clone());
    // The selector labels win over user labels of the same name, or the Deployment would lose its pods.
    labels.extend(selector(&owner.name));
    let mut annotations = BTreeMap::from([
        (CONFIG_HASH_ANNOTATION.to_string(), config_hash.to_string()),
        ("prometheus.io/scrape".to_string(), "true".to_string()),
        ("prometheus.io/port".to_string(), HTTP_PORT.to_string()),
        ("prometheus.io/path".to_string(), "/metrics".to_string()),
    ]);
    annotations.extend(template.pod_annotations.clone());
    ObjectMeta {
        labels: Some(labels),
        annotations: Some(annotations),
        ..ObjectMeta::default()
    }
}

/// The pod: the worker container, its service account without an API token, the restricted Pod Security
/// Standard, the user's scheduling constraints, and the config and Secret volumes.
fn pod_spec(
    owner: &MirrorIdentity,
    spec: &KafkaMirrorSpec,
    template: &WorkerTemplate,
    settings: &BuildSettings,
) -> PodSpec {
    let (secret_volumes, secret_mounts) = secrets::volumes(spec);
    let mut mounts = vec![VolumeMount {
        name: "config".to_string(),
        mount_path: CONFIG_DIR.to_string(),
        read_only: Some(true),
        ..VolumeMount::default()
    }];
    mounts.extend(secret_mounts);
    let mut volumes = vec![Volume {
        name: "config".to_string(),
        config_map: Some(ConfigMapVolumeSource {
            name: owner.names.config_map.clone(),
            ..ConfigMapVolumeSource::default()
        }),
        ..Volume::default()
    }];
    volumes.extend(secret_volumes);
    let migrate = spec.mode == Mode::Migrate;
    if migrate {
        mounts.push(VolumeMount {
            name: "migration".to_string(),
            mount_path: MIGRATION_DIR.to_string(),
            read_only: Some(true),
            ..VolumeMount::default()
        });
        volumes.push(Volume {
            name: "migration".to_string(),
            config_map: Some(ConfigMapVolumeSource {
                name: owner.names.migration_record.clone(),
                // Not optional: a pod waits for the record instead of starting without an end.
                optional: Some(false),
                ..ConfigMapVolumeSource::default()
            }),
            ..Volume::default()
        });
    }
    let host_aliases = host_aliases(spec);
    PodSpec {
        containers: vec![worker_container(template, settings, mounts, migrate)],
        service_account_name: Some(owner.names.workload.clone()),
        automount_service_account_token: Some(false),
        host_aliases: (!host_aliases.is_empty()).then_some(host_aliases),
        security_context: Some(PodSecurityContext {
            run_as_non_root: Some(true),
            run_as_user: Some(WORKER_UID),
            run_as_group: Some(WORKER_UID),
            fs_group: Some(WORKER_UID),
            seccomp_profile: Some(SeccompProfile {
                type_: "RuntimeDefault".to_string(),
                ..SeccompProfile::default()
            }),
            ..PodSecurityContext::default()
        }),
        termination_grace_period_seconds: Some(TERMINATION_GRACE_SECONDS),
        node_selector: (!template.node_selector.is_empty()).then(|| template.node_selector.clone()),
        tolerations: (!template.tolerations.is_empty()).then(|| template.tolerations.clone()),
        affinity: template.affinity.clone(),
        volumes: Some(volumes),
        ..PodSpec::default()
    }
}

/// `mirror-worker --config` (and `--migration-end` when `migrate`) with probes on its HTTP endpoint, read-only
/// and without capabilities.
fn worker_container(
    template: &WorkerTemplate,
    settings: &BuildSettings,
    mounts: Vec<VolumeMount>,
    migrate: bool,
) -> Container {
    let mut args = vec![
        "--config".to_string(),
        format!("{CONFIG_DIR}/{CONFIG_FILE}"),
        "--log-format".to_string(),
        "json".to_string(),
    ];
    if migrate {
        args.extend([
            MIGRATION_END_FLAG.to_string(),
            format!("{MIGRATION_DIR}/{MIGRATION_FILE}"),
        ]);
    }
    Container {
        name: "worker".to_string(),
        image: Some(
            template
                .image
                .clone()
                .unwrap_or_else(|| settings.worker_image.clone()),
        ),
        image_pull_policy: template.image_pull_policy.clone(),
        args: Some(args),
        env: Some(vec![
            env(ENV_SECRETS_DIR, SECRETS_DIR),
            env(ENV_HTTP_LISTEN, &format!("0.0.0.0:{HTTP_PORT}")),
        ]),
        ports: Some(vec![ContainerPort {
            name: Some("http".to_string()),
            container_port: i32::from(HTTP_PORT),
            protocol: Some("TCP".to_string()),
            ..ContainerPort::default()
        }]),
        // Alive unless the worker hit a fatal error; ready while it consumes and the target is reachable, so
        // an unreachable target shows as not ready without restarting the pod.
        liveness_probe: Some(http_probe("/healthz", 10, 6)),
        readiness_probe: Some(http_probe("/readyz", 5, 3)),
        resources: Some(template.resources.clone().unwrap_or_else(default_resources)),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            read_only_root_filesystem: Some(true),
            run_as_non_root: Some(true),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".to_string()]),
                ..Capabilities::default()
            }),
            ..SecurityContext::default()
        }),
        volume_mounts: Some(mounts),
        ..Container::default()
    }
}

/// Source and target host aliases merged per IP, so one `/etc/hosts` line serves both clusters.
fn host_aliases(spec: &KafkaMirrorSpec) -> Vec<HostAlias> {
    let mut by_ip: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let all = spec
        .source
        .connection
        .host_aliases
        .iter()
        .chain(&spec.target.connection.host_aliases);
    for alias in all {
        let names = by_ip.entry(alias.ip.as_str()).or_default();
        for hostname in &alias.hostnames {
            if !names.contains(hostname) {
                names.push(hostname.clone());
            }
        }
    }
    by_ip
        .into_iter()
        .map(|(ip, hostnames)| HostAlias {
            ip: ip.to_string(),
            hostnames: Some(hostnames),
        })
        .collect()
}

fn env(name: &str, value: &str) -> EnvVar {
    EnvVar {
        name: name.to_string(),
        value: Some(value.to_string()),
        ..EnvVar::default()
    }
}

fn http_probe(path: &str, period_seconds: i32, failure_threshold: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.to_string()),
            port: IntOrString::String("http".to_string()),
            ..HTTPGetAction::default()
        }),
        period_seconds: Some(period_seconds),
        failure_threshold: Some(failure_threshold),
        ..Probe::default()
    }
}

/// Requests that fit a worker at moderate rates; the memory limit leaves room over the worker's bounded
/// queues (the producer queue, and per stream the prefetch and one fetch: `kafka_mirror_clients::client_config`
/// sets their defaults, and `spec.source.config` / `spec.target.config` can raise them).
fn default_resources() -> ResourceRequirements {
    ResourceRequirements {
        requests: Some(BTreeMap::from([
            ("cpu".to_string(), Quantity("100m".to_string())),
            ("memory".to_string(), Quantity("128Mi".to_string())),
        ])),
        limits: Some(BTreeMap::from([(
            "memory".to_string(),
            Quantity("512Mi".to_string()),
        )])),
        ..ResourceRequirements::default()
    }
}
