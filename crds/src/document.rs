//! Reading a `KafkaMirror` YAML document, exactly what a user would `kubectl apply`, with errors that name
//! the field at fault.

use yaml_serde::Value;

use crate::cluster::ClusterConnection;
use crate::{API_VERSION, DocumentError, FieldError, KIND, KafkaMirror};

/// What a document must start with, for messages about one that does not.
const EXPECTED_SHAPE: &str = "a KafkaMirror is a YAML mapping with apiVersion: kafkamirror.io/v1alpha1, kind: KafkaMirror, metadata and spec";
/// Deeper nesting of `{...}` / `[...]` is refused before the YAML parser sees it: the parser takes time
/// quadratic in the depth of nested flow mappings (`{a: ` 100,000 times: 45 s), although reading stops at 128
/// levels anyway.
const MAX_FLOW_DEPTH: usize = 256;
const UNKNOWN_FIELD: &str = "unknown field; see `kubectl explain kafkamirror.spec` for the fields";

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
    if flow_depth_exceeds(yaml, MAX_FLOW_DEPTH) {
        return Err(shape(
            "document",
            format!(
                "brackets ({{ }} or [ ]) nested more than {MAX_FLOW_DEPTH} levels deep; {EXPECTED_SHAPE}"
            ),
        ));
    }
    let document: Value =
        yaml_serde::from_str(yaml).map_err(|e| shape("document", e.to_string()))?;
    let root = match &document {
        Value::Mapping(root) => root,
        Value::Null => return Err(shape("document", format!("empty; {EXPECTED_SHAPE}"))),
        other => {
            return Err(shape(
                "document",
                format!("{} is not a KafkaMirror; {EXPECTED_SHAPE}", describe(other)),
            ));
        }
    };
    for (field, expected) in [("apiVersion", API_VERSION), ("kind", KIND)] {
        match root.get(field) {
            Some(Value::String(found)) if found == expected => {}
            Some(Value::String(found)) => {
                return Err(shape(
                    field,
                    format!("expected {expected:?}, found {found:?}"),
                ));
            }
            Some(other) => {
                return Err(shape(
                    field,
                    format!("expected {expected:?}, found {}", describe(other)),
                ));
            }
            None => return Err(shape(field, format!("missing; set it to {expected:?}"))),
        }
    }

    let mut unknown = Vec::new();
    let deserializer = yaml_serde::Deserializer::from_str(yaml);
    let mut track = serde_path_to_error::Track::new();
    let tracked = serde_path_to_error::Deserializer::new(deserializer, &mut track);
    let result: Result<KafkaMirror, _> =
        serde_ignored::deserialize(tracked, |path| unknown.push(field_path(&path)));
    // apiVersion and kind were checked above; the generated type does not keep them as fields.
    let unknown = unknown
        .into_iter()
        .find(|f| f != "apiVersion" && f != "kind");
    let mirror = match (result, unknown) {
        // An unknown field first, even when reading failed: a typo such as `bootstrapServer` is both unknown
        // and the reason `bootstrapServers` is missing.
        (_, Some(field)) => return Err(shape(field, UNKNOWN_FIELD.to_string())),
        (Ok(mirror), None) => mirror,
        (Err(e), None) => {
            let path = track.path().to_string();
            // `spec.source` and `spec.target` are flattened, which hides the path inside them: look again.
            if is_flattened(&path)
                && let Some(error) = flattened_problem(&document)
            {
                return Err(DocumentError::Shape(error));
            }
            let message = e.to_string();
            // yaml_serde already prefixes the path it knows; keep one copy of it.
            let message = message
                .strip_prefix(&format!("{path}: "))
                .map(str::to_string)
                .unwrap_or(message);
            return Err(shape(
                if path == "." {
                    "document".to_string()
                } else {
                    path
                },
                plain(&message),
            ));
        }
    };
    // Unknown fields inside the flattened sections (`spec.source.tsl`, `spec.target.tls.caa`) are invisible to
    // the pass above.
    if let Some(error) = flattened_problem(&document) {
        return Err(DocumentError::Shape(error));
    }
    Ok(mirror)
}

/// Counts every bracket, quoted or not: brackets in strings are balanced in any document worth reading, and
/// the limit is twice what the parser accepts.
fn flow_depth_exceeds(yaml: &str, max: usize) -> bool {
    let mut depth = 0usize;
    for byte in yaml.bytes() {
        match byte {
            b'{' | b'[' => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

fn is_flattened(path: &str) -> bool {
    ["spec.source", "spec.target"]
        .iter()
        .any(|section| path == *section || path.starts_with(&format!("{section}.")))
}

/// The first unknown field or shape error inside `spec.source` / `spec.target`, read on their own so that the
/// path inside them is known.
fn flattened_problem(document: &Value) -> Option<FieldError> {
    for (section, own_fields) in [("source", &["groupId"][..]), ("target", &[][..])] {
        let Some(Value::Mapping(mapping)) = document.get("spec").and_then(|s| s.get(section))
        else {
            continue;
        };
        let mut connection = mapping.clone();
        for field in own_fields {
            connection.remove(*field);
        }
        let prefix = format!("spec.{section}");
        let mut unknown = Vec::new();
        let mut track = serde_path_to_error::Track::new();
        let tracked =
            serde_path_to_error::Deserializer::new(Value::Mapping(connection), &mut track);
        let result: Result<ClusterConnection, _> =
            serde_ignored::deserialize(tracked, |path| unknown.push(field_path(&path)));
        if let Some(field) = unknown.into_iter().next() {
            return Some(FieldError::new(format!("{prefix}.{field}"), UNKNOWN_FIELD));
        }
        if let Err(e) = result {
            let path = track.path().to_string();
            let field = if path == "." {
                prefix
            } else {
                format!("{prefix}.{path}")
            };
            return Some(FieldError::new(field, plain(&e.to_string())));
        }
    }
    None
}

/// A path as the rest of the messages write it (`spec.template.tolerations[0].foo`), without serde_ignored's
/// `?` for an optional value.
fn field_path(path: &serde_ignored::Path<'_>) -> String {
    use serde_ignored::Path;
    match path {
        Path::Root => String::new(),
        Path::Seq { parent, index } => format!("{}[{index}]", field_path(parent)),
        Path::Map { parent, key } => {
            // An empty or null key (a line that is only `?` or `:`) is shown as `""`, not as nothing.
            let key = if key.is_empty() { "\"\"" } else { key };
            match field_path(parent) {
                parent if parent.is_empty() => key.to_string(),
                parent => format!("{parent}.{key}"),
            }
        }
        Path::Some { parent }
        | Path::NewtypeStruct { parent }
        | Path::NewtypeVariant { parent } => field_path(parent),
    }
}

/// serde's names for Rust types, in the words of the document.
fn plain(message: &str) -> String {
    let integer = if message.starts_with("invalid value: integer") {
        // Too large or too small for the field, not a different type.
        "expected an integer from -2147483648 to 2147483647"
    } else {
        "expected an integer"
    };
    let message = message
        .replace("expected IntOrString", "expected a string or an integer")
        .replace("expected i32", integer);
    match message.find("expected struct ") {
        Some(at) => {
            let rest = &message[at + "expected struct ".len()..];
            let name_end = rest
                .find(|c: char| !c.is_ascii_alphanumeric())
                .unwrap_or(rest.len());
            format!("{}expected a mapping{}", &message[..at], &rest[name_end..])
        }
        None => message,
    }
}

fn describe(value: &Value) -> String {
    match value {
        Value::Null => "nothing".into(),
        Value::Bool(b) => format!("the boolean {b}"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) => {
            let mut short: String = s.chars().take(40).collect();
            if short.len() < s.len() {
                short.push_str("...");
            }
            format!("the text {short:?}")
        }
        Value::Sequence(_) => "a list".into(),
        Value::Mapping(_) => "a mapping".into(),
        Value::Tagged(t) => format!("a value tagged {}", t.tag),
    }
}

fn shape(field: impl Into<String>, message: String) -> DocumentError {
    DocumentError::Shape(FieldError::new(field, message))
}
