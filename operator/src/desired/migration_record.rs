//! The ConfigMap `<name>-migration` holding the end offsets a migration copies up to. Applied with the same
//! content on every reconcile once recorded; deleted when the mirror leaves `mode: migrate`.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;

use crate::migration::{END_OFFSETS_KEY, MigrationRecord};
use crate::validate::MirrorIdentity;

pub(super) fn build(owner: &MirrorIdentity, record: &MigrationRecord) -> ConfigMap {
    ConfigMap {
        metadata: owner.metadata(&owner.names.migration_record),
        data: Some(BTreeMap::from([(
            END_OFFSETS_KEY.to_string(),
            record.to_json(),
        )])),
        ..ConfigMap::default()
    }
}
