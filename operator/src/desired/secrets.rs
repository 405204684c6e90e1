//! Secret references of a spec as pod volumes: one read-only volume per Secret, holding only the keys the
//! mirror names, mounted where the worker looks (`<secrets dir>/<secret>/<key>`).

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{KeyToPath, SecretVolumeSource, Volume, VolumeMount};
use kafka_mirror_crds::KafkaMirrorSpec;

use kafka_mirror_crds::worker_pod::SECRETS_DIR;

/// Volumes and mounts for every Secret the spec references, in a stable order.
pub(super) fn volumes(spec: &KafkaMirrorSpec) -> (Vec<Volume>, Vec<VolumeMount>) {
    let mut keys: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (_, reference) in spec.secret_refs() {
        keys.entry(reference.name.as_str())
            .or_default()
            .insert(reference.key.as_str());
    }
    let mut volumes = Vec::new();
    let mut mounts = Vec::new();
    for (i, (secret, keys)) in keys.into_iter().enumerate() {
        let volume = format!("secret-{i}");
        volumes.push(Volume {
            name: volume.clone(),
            secret: Some(SecretVolumeSource {
                secret_name: Some(secret.to_string()),
                items: Some(
                    keys.into_iter()
                        .map(|key| KeyToPath {
                            key: key.to_string(),
                            path: key.to_string(),
                            mode: None,
                        })
                        .collect(),
                ),
                // Owner-read only; with the pod's fsGroup the kubelet adds group read for the worker's group
                // (65532), so no other user in the pod can read a key.
                default_mode: Some(0o400),
                optional: Some(false),
            }),
            ..Volume::default()
        });
        mounts.push(VolumeMount {
            name: volume,
            mount_path: format!("{SECRETS_DIR}/{secret}"),
            read_only: Some(true),
            ..VolumeMount::default()
        });
    }
    (volumes, mounts)
}
