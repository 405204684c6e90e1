//! Reading a `KafkaMirror` YAML document, exactly what a user would `kubectl apply`, with errors that name
//! the field at fault.

use crate::{API_VERSION, DocumentError, FieldError, KIND, KafkaMirror};

/// Parses one `KafkaMirror` document and runs every check of [`crate::validate`].
///
/// Unknown fields are errors, not silently ignored: a typo such as `numStream: 4` would otherwise run a mirror
/// the user did not ask for.
pub fn parse_document(yaml: &str) -> Result<KafkaMirror, DocumentError> {
    let mirror = parse_shape(yaml)?;
    crate::validate(&mirror.spec).map_err(DocumentError::Invalid)?;
    Ok(mirror)
}

fn parse_shape(yaml: &str) -> Result<KafkaMirror, DocumentError> {
    let header: Header =
        yaml_serde::from_str(yaml).map_err(|e| shape("document", e.to_string()))?;
    if header.api_version.as_deref() != Some(API_VERSION) {
        return Err(shape(
            "apiVersion",
            format!(
                "expected {API_VERSION:?}, found {:?}",
                header.api_version.unwrap_or_default()
            ),
        ));
    }
    if header.kind.as_deref() != Some(KIND) {
        return Err(shape(
            "kind",
            format!(
                "expected {KIND:?}, found {:?}",
                header.kind.unwrap_or_default()
            ),
        ));
    }

    let mut unknown = Vec::new();
    let deserializer = yaml_serde::Deserializer::from_str(yaml);
    let mut track = serde_path_to_error::Track::new();
    let tracked = serde_path_to_error::Deserializer::new(deserializer, &mut track);
    let result: Result<KafkaMirror, _> =
        serde_ignored::deserialize(tracked, |path| unknown.push(path.to_string()));
    let mirror = result.map_err(|e| {
        let path = track.path().to_string();
        let message = e.to_string();
        // yaml_serde already prefixes the path it knows; keep one copy of it.
        let message = message
            .strip_prefix(&format!("{path}: "))
            .map(str::to_string)
            .unwrap_or(message);
        shape(
            if path == "." {
                "document".to_string()
            } else {
                path
            },
            message,
        )
    })?;
    // apiVersion and kind were checked above; the generated type does not keep them as fields.
    if let Some(field) = unknown
        .into_iter()
        .find(|f| f != "apiVersion" && f != "kind")
    {
        return Err(shape(
            field,
            "unknown field; see `kubectl explain kafkamirror.spec` for the fields".to_string(),
        ));
    }
    Ok(mirror)
}

fn shape(field: impl Into<String>, message: String) -> DocumentError {
    DocumentError::Shape(FieldError::new(field, message))
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Header {
    api_version: Option<String>,
    kind: Option<String>,
}
