//! The CustomResourceDefinition as YAML: the content of `crds/kafkamirror.yaml`.

use kube::CustomResourceExt;

use crate::KafkaMirror;

/// The CRD for `kubectl apply`, with a header saying where it comes from.
pub fn crd_yaml() -> String {
    let body = yaml_serde::to_string(&KafkaMirror::crd()).expect("a CRD always serializes");
    format!(
        "# Generated from crds/src/*.rs by `UPDATE_GOLDEN=1 cargo test -p kafka-mirror-crds`; do not edit.\n{body}"
    )
}
