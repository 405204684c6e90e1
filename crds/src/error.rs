//! Errors that name the field at fault, so a user can fix a document without reading the source.

use std::fmt;

/// One thing wrong with one field, e.g. `spec.topics.include[1]: invalid regular expression: ...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// Path of the field from the document root, e.g. `spec.source.config.acks`.
    pub field: String,
    /// What is wrong and, where there is one, what to do instead.
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// Why a `KafkaMirror` document cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    /// Not YAML, or not shaped like a `KafkaMirror` (wrong type, missing field, unknown field).
    #[error("{0}")]
    Shape(FieldError),
    /// Well-formed, but a value cannot work (bad regular expression, refused config key, ...).
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<FieldError>),
}

impl DocumentError {
    /// Every field error, first one first.
    pub fn field_errors(&self) -> Vec<FieldError> {
        match self {
            DocumentError::Shape(e) => vec![e.clone()],
            DocumentError::Invalid(errors) => errors.clone(),
        }
    }
}
