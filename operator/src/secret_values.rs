//! The Secret values a mirror references, resolved from the Secrets [`crate::observe`] read through the API
//! server, so the operator can measure lag with the same client settings as the workers. A missing Secret or
//! key is the user's to fix: it comes back as field errors (for the status), not as a reconcile failure.
//! Values never leave this process.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use kafka_mirror_clients::secrets::Secrets;
use kafka_mirror_crds::{FieldError, KafkaMirrorSpec};

/// The values of every reference of `spec` from the Secrets `found` in `namespace` (by name; `None` or absent:
/// no such Secret), or one field error per reference that does not resolve. Pure.
pub fn resolve(
    spec: &KafkaMirrorSpec,
    namespace: &str,
    found: &BTreeMap<String, Option<Secret>>,
) -> std::result::Result<Secrets, Vec<FieldError>> {
    let mut values = BTreeMap::new();
    let mut errors = Vec::new();
    for (field, reference) in spec.secret_refs() {
        match found.get(&reference.name).and_then(Option::as_ref) {
            None => errors.push(FieldError::new(
                field,
                format!(
                    "Secret {:?} not found in namespace {namespace:?}",
                    reference.name
                ),
            )),
            Some(secret) => match value(secret, &reference.key) {
                Some(value) => {
                    values.insert((reference.name.clone(), reference.key.clone()), value);
                }
                None => errors.push(FieldError::new(
                    field,
                    format!(
                        "Secret {:?} has no key {:?} (it has: {})",
                        reference.name,
                        reference.key,
                        keys(secret).join(", ")
                    ),
                )),
            },
        }
    }
    if errors.is_empty() {
        Ok(Secrets::from_values(values))
    } else {
        Err(errors)
    }
}

fn value(secret: &Secret, key: &str) -> Option<String> {
    if let Some(bytes) = secret.data.as_ref().and_then(|d| d.get(key)) {
        return Some(String::from_utf8_lossy(&bytes.0).into_owned());
    }
    secret
        .string_data
        .as_ref()
        .and_then(|d| d.get(key))
        .cloned()
}

fn keys(secret: &Secret) -> Vec<String> {
    let mut keys: Vec<String> = secret
        .data
        .iter()
        .flat_map(|d| d.keys().cloned())
        .chain(secret.string_data.iter().flat_map(|d| d.keys().cloned()))
        .collect();
    keys.sort();
    keys
}
