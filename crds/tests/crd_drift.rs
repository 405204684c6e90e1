//! `crds/kafkamirror.yaml` must be exactly what the types generate. Regenerate on purpose with
//! `UPDATE_GOLDEN=1 cargo test -p kafka-mirror-crds --test crd_drift`.

use std::path::Path;

#[test]
fn checked_in_crd_matches_the_types() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("kafkamirror.yaml");
    let generated = kafka_mirror_crds::crd_yaml();
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &generated).unwrap();
        return;
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        checked_in == generated,
        "crds/kafkamirror.yaml is out of date with crds/src; regenerate it with \
         `UPDATE_GOLDEN=1 cargo test -p kafka-mirror-crds --test crd_drift` and review the diff"
    );
}
