//! Secret references resolved outside Kubernetes: from an environment variable or a mounted file. Values are
//! never logged; errors name the field and where the value was looked for.

use std::path::{Path, PathBuf};

use kafka_mirror_crds::FieldError;
use kafka_mirror_crds::cluster::SecretKeyRef;

use crate::{Error, Result};

/// Where the operator mounts Secrets in a worker pod: `<dir>/<secret name>/<key>`.
pub const DEFAULT_SECRETS_DIR: &str = "/var/run/kafka-mirror/secrets";

#[derive(Debug, Clone)]
pub struct Secrets {
    dir: PathBuf,
}

impl Secrets {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
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
            "KMIRROR_SECRET_{}_{}",
            upper(&reference.name),
            upper(&reference.key)
        )
    }

    pub fn file_path(&self, reference: &SecretKeyRef) -> PathBuf {
        self.dir.join(&reference.name).join(&reference.key)
    }

    /// The secret's value. `field` is the document path of the reference, for the error message.
    pub fn resolve(&self, field: &str, reference: &SecretKeyRef) -> Result<String> {
        let env = Self::env_name(reference);
        if let Ok(value) = std::env::var(&env) {
            return Ok(value);
        }
        let path = self.file_path(reference);
        read_secret_file(&path).map_err(|reason| {
            Error::Field(FieldError::new(
                field,
                format!(
                    "Secret {:?} key {:?} not found: {reason}; set the environment variable {env} or create the file {}",
                    reference.name,
                    reference.key,
                    path.display()
                ),
            ))
        })
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
}
