//! Secret references resolved to their values: outside Kubernetes from an environment variable or a mounted
//! file (the worker), or from values already read from the API server (the operator, which measures lag with
//! the same client settings as the workers). Values are never logged; errors name the field and where the
//! value was looked for.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use kafka_mirror_crds::FieldError;
use kafka_mirror_crds::cluster::SecretKeyRef;
use kafka_mirror_crds::worker_pod::ENV_SECRET_PREFIX;

use crate::{Error, Result};

#[derive(Debug, Clone)]
pub struct Secrets {
    source: Source,
}

#[derive(Clone)]
enum Source {
    /// `KMIRROR_SECRET_<NAME>_<KEY>`, else `<dir>/<name>/<key>`.
    EnvOrDir(PathBuf),
    /// `(secret name, key) → value`.
    Values(BTreeMap<(String, String), String>),
}

impl std::fmt::Debug for Source {
    // Never print a value, not even in a debug log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::EnvOrDir(dir) => f.debug_tuple("EnvOrDir").field(dir).finish(),
            Source::Values(values) => f
                .debug_tuple("Values")
                .field(&values.keys().collect::<Vec<_>>())
                .finish(),
        }
    }
}

impl Secrets {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            source: Source::EnvOrDir(dir.into()),
        }
    }

    /// Values read elsewhere, by `(secret name, key)`.
    pub fn from_values(values: BTreeMap<(String, String), String>) -> Self {
        Self {
            source: Source::Values(values),
        }
    }

    /// The environment variable that overrides a reference: `KMIRROR_SECRET_<NAME>_<KEY>`.
    pub fn env_name(reference: &SecretKeyRef) -> String {
        let upper = |s: &str| {
            s.chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() {
                        c.to_ascii_uppercase()
                    } else {
                        '_'
                    }
                })
                .collect::<String>()
        };
        format!(
            "{ENV_SECRET_PREFIX}{}_{}",
            upper(&reference.name),
            upper(&reference.key)
        )
    }

    /// The secret's value. `field` is the document path of the reference, for the error message.
    pub fn resolve(&self, field: &str, reference: &SecretKeyRef) -> Result<String> {
        let not_found = |where_: String| {
            Error::Field(FieldError::new(
                field,
                format!(
                    "Secret {:?} key {:?} not found: {where_}",
                    reference.name, reference.key
                ),
            ))
        };
        match &self.source {
            Source::Values(values) => values
                .get(&(reference.name.clone(), reference.key.clone()))
                .cloned()
                .ok_or_else(|| not_found("not among the Secrets read".to_string())),
            Source::EnvOrDir(dir) => {
                let env = Self::env_name(reference);
                if let Ok(value) = std::env::var(&env) {
                    return Ok(value);
                }
                let path = dir.join(&reference.name).join(&reference.key);
                read_secret_file(&path).map_err(|reason| {
                    not_found(format!(
                        "{reason}; set the environment variable {env} or create the file {}",
                        path.display()
                    ))
                })
            }
        }
    }
}

fn read_secret_file(path: &Path) -> std::result::Result<String, String> {
    match std::fs::read_to_string(path) {
        // Mounted Secret files often end in a newline that is not part of the password.
        Ok(value) => Ok(value.trim_end_matches(['\r', '\n']).to_string()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err("no such file".to_string()),
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(name: &str, key: &str) -> SecretKeyRef {
        SecretKeyRef {
            name: name.into(),
            key: key.into(),
        }
    }

    #[test]
    fn env_names_are_upper_case_with_underscores() {
        assert_eq!(
            Secrets::env_name(&reference("hdi-creds", "password.txt")),
            "KMIRROR_SECRET_HDI_CREDS_PASSWORD_TXT"
        );
    }

    #[test]
    fn files_are_read_without_their_trailing_newline() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("file-only-secret")).unwrap();
        std::fs::write(dir.path().join("file-only-secret/password"), "s3cret\n").unwrap();
        let value = Secrets::new(dir.path())
            .resolve("spec.x", &reference("file-only-secret", "password"))
            .unwrap();
        assert_eq!(value, "s3cret");
    }

    #[test]
    fn a_missing_secret_names_the_field_and_both_places_looked() {
        let dir = tempfile::tempdir().unwrap();
        let error = Secrets::new(dir.path())
            .resolve(
                "spec.source.authentication.password",
                &reference("absent-secret", "password"),
            )
            .unwrap_err()
            .to_string();
        assert!(error.starts_with("spec.source.authentication.password: Secret \"absent-secret\" key \"password\" not found"), "{error}");
        assert!(
            error.contains("KMIRROR_SECRET_ABSENT_SECRET_PASSWORD"),
            "{error}"
        );
        assert!(error.contains("absent-secret/password"), "{error}");
    }

    #[test]
    fn values_read_elsewhere_resolve_and_a_missing_one_names_the_field() {
        let secrets = Secrets::from_values(BTreeMap::from([(
            ("creds".to_string(), "password".to_string()),
            "s3cret".to_string(),
        )]));
        assert_eq!(
            secrets
                .resolve("spec.x", &reference("creds", "password"))
                .unwrap(),
            "s3cret"
        );
        let error = secrets
            .resolve("spec.target.tls.ca", &reference("creds", "ca.crt"))
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("spec.target.tls.ca: Secret \"creds\" key \"ca.crt\" not found"),
            "{error}"
        );
        assert!(
            !format!("{secrets:?}").contains("s3cret"),
            "Debug never shows a value"
        );
    }
}
