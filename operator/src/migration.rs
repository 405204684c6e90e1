//! `mode: migrate`: the operator records every mirrored partition's high watermark when the migration starts
//! and calls it complete when the mirror group's committed offsets reached all of them. The record lives in
//! the ConfigMap `<name>-migration` (owned by the mirror), not in the status: it holds one offset per
//! partition, and the status stays small. The operator mounts that ConfigMap into the worker pods, which copy
//! exactly up to it: the record, its format and the completion rule are defined once, in
//! [`kafka_mirror_clients::migration`], for both. Here: reading it back from the API server.

use k8s_openapi::api::core::v1::ConfigMap;
pub use kafka_mirror_clients::migration::{
    MIGRATION_FILE as END_OFFSETS_KEY, MigrationRecord, Progress, RecordError,
};

/// The record in a ConfigMap read back from the API server.
pub fn from_config_map(config_map: &ConfigMap) -> Result<MigrationRecord, UnreadableRecord> {
    let name = config_map
        .metadata
        .name
        .as_deref()
        .unwrap_or("?")
        .to_string();
    let json = config_map
        .data
        .as_ref()
        .and_then(|data| data.get(END_OFFSETS_KEY))
        .ok_or_else(|| UnreadableRecord::MissingKey { name: name.clone() })?;
    MigrationRecord::from_json(json, &format!("ConfigMap {name} key {END_OFFSETS_KEY}"))
        .map_err(|source| UnreadableRecord::Damaged { name, source })
}

/// A migration record ConfigMap that does not hold a record: it is recorded anew.
#[derive(Debug, thiserror::Error)]
pub enum UnreadableRecord {
    #[error("ConfigMap {name} has no key {END_OFFSETS_KEY}")]
    MissingKey { name: String },
    #[error("{source}; delete the ConfigMap {name} to record the end offsets again")]
    Damaged { name: String, source: RecordError },
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

    use super::*;

    fn config_map(json: &str) -> ConfigMap {
        ConfigMap {
            metadata: ObjectMeta {
                name: Some("m-migration".into()),
                ..Default::default()
            },
            data: Some(BTreeMap::from([(
                END_OFFSETS_KEY.to_string(),
                json.to_string(),
            )])),
            ..ConfigMap::default()
        }
    }

    #[test]
    fn the_record_round_trips_through_its_config_map() {
        let record = MigrationRecord {
            started_at: Time(k8s_openapi::jiff::Timestamp::from_second(1000).unwrap()),
            topics: BTreeMap::from([("orders".to_string(), vec![100, 40])]),
        };
        assert_eq!(
            from_config_map(&config_map(&record.to_json())).unwrap(),
            record
        );
    }

    #[test]
    fn a_damaged_record_says_what_to_do() {
        let error = from_config_map(&config_map("{")).unwrap_err().to_string();
        assert!(
            error.starts_with(
                "invalid migration end offsets ConfigMap m-migration key end-offsets.json: EOF while parsing"
            ),
            "{error}"
        );
        assert!(
            error.ends_with("; delete the ConfigMap m-migration to record the end offsets again"),
            "{error}"
        );
        let missing = from_config_map(&ConfigMap::default())
            .unwrap_err()
            .to_string();
        assert_eq!(missing, "ConfigMap ? has no key end-offsets.json");
    }
}
