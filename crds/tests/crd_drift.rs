//! `crds/kafkamirror.yaml`, and the chart's copy that Helm installs, must be exactly what the types generate.
//! Regenerate both on purpose with `UPDATE_GOLDEN=1 cargo test -p kafka-mirror-crds --test crd_drift`.

use std::path::Path;

const COPIES: &[&str] = &[
    "kafkamirror.yaml",
    "../charts/kafka-mirror-operator/crds/kafkamirror.yaml",
];

#[test]
fn checked_in_crds_match_the_types() {
    let generated = kafka_mirror_crds::crd_yaml();
    for copy in COPIES {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(copy);
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::write(&path, &generated).unwrap();
            continue;
        }
        let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            checked_in == generated,
            "crds/{copy} is out of date with crds/src; regenerate it with \
             `UPDATE_GOLDEN=1 cargo test -p kafka-mirror-crds --test crd_drift` and review the diff"
        );
    }
}
