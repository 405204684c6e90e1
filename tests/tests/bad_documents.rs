//! The catalogue of bad `KafkaMirror` documents, `tests/bad-documents/*.yaml`: every one is refused with the
//! exact message its header names, by the worker and by the operator (or, before the operator, by the API
//! server), and nothing panics.
//!
//! Header lines of a document (comments, so the document stays what a user would write):
//!
//! - `# expect: LINE` (one or more): `mirror-worker --config FILE` exits 2 and its error is exactly these
//!   lines, in this order. `{secrets-dir}` stands for the (empty) `--secrets-dir`.
//! - `# operator: schema`: the API server refuses the document (the CRD's OpenAPI schema, a CEL rule, or no such
//!   apiVersion/kind), so the operator never sees it; `# schema: PATH KEYWORD` lines name what refuses it.
//! - `# operator: kubectl`: kubectl cannot even send it (not YAML, empty, no apiVersion/kind).
//! - otherwise the operator sees it: its status says `Ready=False` with reason `InvalidSpec` (or the reason
//!   after `# operator:`, e.g. `SecretMissing`) and the `# expect:` lines as the message, joined by `; `
//!   (`# operator-expect:` lines instead where the operator words it differently; `{namespace}` is the mirror's).
//!
//! The API server's side of these lines is checked on a real one (`tests/control-plane`): it refuses every
//! `schema` document naming the field, and accepts every document the operator is meant to see.
//!
//! The documents name brokers on 127.0.0.1 ports 1 and 2, where nothing listens: a worker that went past its
//! checks would hang retrying, which the 30 s limit per run turns into a failure naming the document.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kafka_mirror_crds::KafkaMirror;
use kafka_mirror_crds::status::KafkaMirrorStatus;
use kafka_mirror_operator::observe::build_plan;
use kafka_mirror_operator::publish::refused_status;
use kafka_mirror_operator::secret_values;
use kafka_mirror_operator::validate::check_spec;
use kafka_mirror_tests::{ControlPlane, Launch};
use serde_json::Value;

/// The issue asks for a catalogue of at least 25 documents.
const AT_LEAST: usize = 25;
const NAMESPACE: &str = "mirrors";
const WORKER_LIMIT: Duration = Duration::from_secs(30);

#[derive(Debug, PartialEq)]
enum Operator {
    /// The operator sees it and reports this reason.
    Reason(String),
    /// The API server refuses it.
    Schema,
    /// kubectl cannot send it.
    Kubectl,
}

struct Case {
    name: String,
    path: PathBuf,
    text: String,
    expect: Vec<String>,
    operator: Operator,
    operator_expect: Vec<String>,
    /// `(path, keyword)` of each `# schema:` line.
    schema: Vec<(String, String)>,
}

fn catalogue_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("bad-documents")
}

fn catalogue() -> Vec<Case> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(catalogue_dir())
        .expect("tests/bad-documents")
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "yaml"))
        .collect();
    paths.sort();
    let cases: Vec<Case> = paths.into_iter().map(read_case).collect();
    assert!(
        cases.len() >= AT_LEAST,
        "the catalogue has {} documents, fewer than {AT_LEAST}",
        cases.len()
    );
    cases
}

fn read_case(path: PathBuf) -> Case {
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    let text = std::fs::read_to_string(&path).unwrap();
    let header = |tag: &str| -> Vec<String> {
        text.lines()
            .filter_map(|line| line.strip_prefix(tag))
            .map(str::to_string)
            .collect()
    };
    let expect = header("# expect: ");
    let operator = match header("# operator: ").as_slice() {
        [] => Operator::Reason("InvalidSpec".into()),
        [one] if one == "schema" => Operator::Schema,
        [one] if one == "kubectl" => Operator::Kubectl,
        [one] => Operator::Reason(one.clone()),
        more => panic!("{name}: more than one `# operator:` line: {more:?}"),
    };
    let schema: Vec<(String, String)> = header("# schema: ")
        .iter()
        .map(|line| {
            let (path, keyword) = line
                .split_once(' ')
                .unwrap_or_else(|| panic!("{name}: `# schema: PATH KEYWORD`, found {line:?}"));
            (path.to_string(), keyword.to_string())
        })
        .collect();
    assert!(!expect.is_empty(), "{name}: no `# expect:` line");
    assert_eq!(
        operator == Operator::Schema,
        !schema.is_empty(),
        "{name}: `# schema:` lines go with `# operator: schema`, and only there"
    );
    Case {
        operator_expect: header("# operator-expect: "),
        name,
        path,
        text,
        expect,
        operator,
        schema,
    }
}

/// `kubectl apply --dry-run=server` of every document on a real API server with the CRD installed: a `schema`
/// document is refused and the refusal names its `# schema:` field; a document the operator is meant to see is
/// accepted (the schema must not refuse what the operator explains better); one kubectl cannot send fails in
/// kubectl.
#[test]
fn the_api_server_refuses_every_schema_document_naming_the_field_and_accepts_what_the_operator_sees()
 {
    let control_plane = ControlPlane::shared();
    control_plane.install_crd();
    let mut failures = Vec::new();
    let cases = catalogue();
    for case in &cases {
        let path = case.path.to_str().expect("a UTF-8 path");
        let run = control_plane.try_kubectl(&["apply", "--dry-run=server", "-f", path]);
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&run.stdout),
            String::from_utf8_lossy(&run.stderr)
        );
        let refused = !run.status.success();
        let wrong = match &case.operator {
            Operator::Reason(_) if refused => {
                Some("refused, but the operator should see it".to_string())
            }
            Operator::Reason(_) => None,
            Operator::Kubectl if !refused => {
                Some("sent, but kubectl should not be able to".to_string())
            }
            Operator::Kubectl => None,
            Operator::Schema if !refused => {
                Some("accepted, but the schema should refuse it".to_string())
            }
            Operator::Schema => case
                .schema
                .iter()
                .map(|(field, _)| refusal_names(field))
                .find(|named| !said.contains(named.as_str()))
                .map(|named| format!("refused without naming {named:?}")),
        };
        if let Some(wrong) = wrong {
            failures.push(format!("{}: {wrong}:\n{said}", case.name));
        }
    }
    eprintln!(
        "{} documents sent to the API server, {} wrong",
        cases.len(),
        failures.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// What the API server's refusal says for a `# schema:` path: the field itself, `spec` for the document's
/// root, and for an apiVersion or kind it does not serve, that it knows no such kind.
fn refusal_names(field: &str) -> String {
    match field {
        "." => "spec: Required value".into(),
        "apiVersion" | "kind" => "no matches for kind".into(),
        field => field.to_string(),
    }
}

/// Runs the worker binary on every document: exit code 2, no panic, exactly the expected error lines.
#[test]
fn the_worker_exits_2_with_the_expected_lines_for_every_document() {
    let secrets = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    let cases = catalogue();
    for case in &cases {
        let (code, stderr) = run_worker(&case.path, secrets.path());
        let expected: Vec<String> = case
            .expect
            .iter()
            .map(|line| line.replace("{secrets-dir}", &secrets.path().display().to_string()))
            .collect();
        let problems = [
            (code != Some(2)).then(|| format!("exit code {code:?}, expected 2")),
            stderr.contains("panicked").then(|| "panicked".to_string()),
            (error_lines(&stderr) != expected)
                .then(|| format!("expected the error lines\n  {}", expected.join("\n  "))),
        ];
        for problem in problems.into_iter().flatten() {
            failures.push(format!("{}: {problem}\n-- stderr --\n{stderr}", case.name));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} documents:\n\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
}

/// `mirror-worker --config FILE` with an empty secrets directory and no `KMIRROR_*` environment: its exit code
/// (`None` when it had to be stopped) and stderr. Stopped after `WORKER_LIMIT`.
fn run_worker(document: &Path, secrets_dir: &Path) -> (Option<i32>, String) {
    let run = Launch::worker_defaults(document)
        .secrets_dir(secrets_dir)
        .spawn()
        .finish(WORKER_LIMIT);
    if run.exited_by_itself {
        (run.status.code(), run.stderr)
    } else {
        (
            None,
            format!(
                "still running after {WORKER_LIMIT:?}: it went past its checks (trying to reach a broker?)\n{}",
                run.stderr
            ),
        )
    }
}

/// The error the worker printed, one entry per line, without `mirror-worker: error: ` and the
/// `invalid KafkaMirror document PATH:` line that introduces a document's errors.
fn error_lines(stderr: &str) -> Vec<String> {
    const PREFIX: &str = "mirror-worker: error: ";
    let Some(at) = stderr.rfind(PREFIX) else {
        return Vec::new();
    };
    let mut lines: Vec<String> = stderr[at + PREFIX.len()..]
        .lines()
        .map(str::to_string)
        .collect();
    if lines
        .first()
        .is_some_and(|l| l.starts_with("invalid KafkaMirror document "))
    {
        lines.remove(0);
    }
    lines
}

/// Every document the API server accepts goes through the operator's own decision (the pure steps
/// `reconcile` takes: check the spec, resolve its Secrets against a namespace that has none, build the plan)
/// and its status for a refused spec: `Ready=False` (and `Degraded=True`) with the reason and the message.
#[test]
fn the_operator_reports_ready_false_with_the_message_for_every_document_the_api_server_accepts() {
    let now = Time(k8s_openapi::jiff::Timestamp::from_second(1_800_000_000).unwrap());
    let mut failures = Vec::new();
    let mut seen = 0;
    for case in catalogue() {
        let Operator::Reason(reason) = &case.operator else {
            continue;
        };
        seen += 1;
        // What the operator gets: the object as the API server stores it (JSON), in a namespace.
        let object: Value = yaml_serde::from_str(&case.text).unwrap();
        let mut mirror: KafkaMirror = match serde_json::from_value(object) {
            Ok(mirror) => mirror,
            Err(e) => {
                failures.push(format!(
                    "{}: does not deserialize as the API server would hand it over ({e}); mark it `# operator: schema`",
                    case.name
                ));
                continue;
            }
        };
        mirror.metadata.namespace = Some(NAMESPACE.into());
        mirror.metadata.generation = Some(7);
        let problem = match check_spec(&mirror.spec) {
            Err(problem) => problem,
            Ok(()) => {
                let secrets = secret_values::resolve(&mirror.spec, NAMESPACE, &BTreeMap::new());
                match build_plan(&mirror, secrets) {
                    Err(problem) => problem,
                    Ok(_) => {
                        failures.push(format!("{}: the operator would run it", case.name));
                        continue;
                    }
                }
            }
        };
        let status = refused_status(&mirror, &KafkaMirrorStatus::default(), problem, &now);
        let expected_lines = if case.operator_expect.is_empty() {
            &case.expect
        } else {
            &case.operator_expect
        };
        let expected_message = expected_lines
            .iter()
            .map(|line| line.replace("{namespace}", NAMESPACE))
            .collect::<Vec<_>>()
            .join("; ");
        for (type_, condition_status) in [("Ready", "False"), ("Degraded", "True")] {
            let Some(condition) = status.conditions.iter().find(|c| c.type_ == type_) else {
                failures.push(format!("{}: no {type_} condition", case.name));
                continue;
            };
            let got = (
                condition.status.as_str(),
                condition.reason.as_str(),
                condition.message.as_str(),
            );
            if got != (condition_status, reason.as_str(), expected_message.as_str()) {
                failures.push(format!(
                    "{}: {type_} is {got:?}, expected ({condition_status:?}, {reason:?}, {expected_message:?})",
                    case.name
                ));
            }
            if condition.observed_generation != Some(7) {
                failures.push(format!(
                    "{}: {type_} observedGeneration {:?}",
                    case.name, condition.observed_generation
                ));
            }
        }
    }
    assert!(seen > 0, "no document reaches the operator");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// For the documents the API server refuses, what refuses them is in `crds/kafkamirror.yaml`, the CRD that is
/// installed. No API server runs here and no OpenAPI validator is in the dependency tree, so this is a
/// deliberately small check: each `# schema: PATH KEYWORD` keyword must exist at that field of the schema, and
/// where it can be evaluated without an API server (type, enum, minimum, maximum, minItems, pattern, required,
/// int-or-string, an unknown field under a closed object, an apiVersion or kind the CRD does not serve) the
/// document's value must break it. CEL rules (`x-kubernetes-validations`) are only checked to exist: evaluating
/// CEL needs the API server (the kind suite).
///
/// Unknown fields: the API server prunes them, and refuses them with kubectl's default
/// `--validate=strict` (server-side field validation); `mirror-worker` always refuses them.
#[test]
fn the_crd_schema_has_what_refuses_every_document_marked_schema() {
    let crd: Value = yaml_serde::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../crds/kafkamirror.yaml"),
        )
        .unwrap(),
    )
    .unwrap();
    let schema = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
    let mut failures = Vec::new();
    let mut seen = 0;
    for case in catalogue() {
        match case.operator {
            Operator::Schema => {}
            Operator::Kubectl => {
                // kubectl needs a mapping with apiVersion and kind to know where to send a document.
                let sendable = yaml_serde::from_str::<Value>(&case.text).is_ok_and(|v| {
                    v.get("apiVersion").is_some_and(Value::is_string)
                        && v.get("kind").is_some_and(Value::is_string)
                });
                if sendable {
                    failures.push(format!(
                        "{}: kubectl could send it; it is not `# operator: kubectl`",
                        case.name
                    ));
                }
                continue;
            }
            Operator::Reason(_) => continue,
        }
        seen += 1;
        let document: Value = yaml_serde::from_str(&case.text).unwrap_or_else(|e| {
            panic!(
                "{}: not YAML ({e}); mark it `# operator: kubectl`",
                case.name
            )
        });
        for (path, keyword) in &case.schema {
            if let Err(why) = refused_by(&crd, schema, &document, path, keyword) {
                failures.push(format!("{}: {path} {keyword}: {why}", case.name));
            }
        }
    }
    assert!(seen > 0, "no document is refused by the schema");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// `Ok` when `keyword` at `path` of `schema` exists and (where evaluated) refuses the document's value there.
fn refused_by(
    crd: &Value,
    schema: &Value,
    document: &Value,
    path: &str,
    keyword: &str,
) -> Result<(), String> {
    match keyword {
        // No such resource: the API server answers "no matches for kind".
        "resource" => {
            let served: Vec<String> = crd["spec"]["versions"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|v| v["served"] == true)
                .map(|v| {
                    format!(
                        "{}/{}",
                        crd["spec"]["group"].as_str().unwrap(),
                        v["name"].as_str().unwrap()
                    )
                })
                .collect();
            let value = document
                .get(path)
                .and_then(Value::as_str)
                .unwrap_or_default();
            let known = match path {
                "apiVersion" => served.iter().any(|s| s == value),
                "kind" => crd["spec"]["names"]["kind"] == value,
                other => {
                    return Err(format!(
                        "`resource` applies to apiVersion or kind, not {other}"
                    ));
                }
            };
            return if known {
                Err(format!("the CRD serves {value:?}"))
            } else {
                Ok(())
            };
        }
        "unknown-field" => {
            let (parent, field) = path.rsplit_once('.').unwrap_or((".", path));
            let (node, value) = walk(schema, document, parent)?;
            let properties = node
                .get("properties")
                .and_then(Value::as_object)
                .ok_or("the parent is not an object with properties")?;
            if properties.contains_key(field) {
                return Err("the CRD has this field".into());
            }
            if node.get("additionalProperties").is_some()
                || node.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true))
            {
                return Err("the parent keeps unknown fields".into());
            }
            return match value.and_then(|v| v.get(field)) {
                Some(_) => Ok(()),
                None => Err("the document does not have this field".into()),
            };
        }
        _ => {}
    }
    let (node, value) = walk(schema, document, path)?;
    let rule = node.get(keyword).ok_or_else(|| {
        let keys: Vec<&String> = node
            .as_object()
            .map(|o| o.keys().collect())
            .unwrap_or_default();
        format!("the CRD has no {keyword} there, only {keys:?}")
    })?;
    let broken = match keyword {
        "x-kubernetes-validations" => {
            return if rule.as_array().is_some_and(|rules| !rules.is_empty()) {
                Ok(())
            } else {
                Err("no CEL rule".into())
            };
        }
        "required" => {
            let value = value.ok_or("the document has no object there")?;
            rule.as_array()
                .unwrap()
                .iter()
                .any(|name| value.get(name.as_str().unwrap()).is_none())
        }
        _ => {
            let value = value.ok_or("the document has no value there")?;
            match keyword {
                "type" => !match rule.as_str().unwrap() {
                    "integer" => value.is_i64() || value.is_u64(),
                    "string" => value.is_string(),
                    "boolean" => value.is_boolean(),
                    "array" => value.is_array(),
                    "object" => value.is_object(),
                    other => return Err(format!("type {other} is not evaluated here")),
                },
                "x-kubernetes-int-or-string" => {
                    rule == true && !(value.is_string() || value.is_i64() || value.is_u64())
                }
                "enum" => !rule.as_array().unwrap().contains(value),
                "minimum" => value.as_f64().ok_or("not a number")? < rule.as_f64().unwrap(),
                "maximum" => value.as_f64().ok_or("not a number")? > rule.as_f64().unwrap(),
                "minItems" => {
                    (value.as_array().ok_or("not a list")?.len() as u64) < rule.as_u64().unwrap()
                }
                "pattern" => !regex::Regex::new(rule.as_str().unwrap())
                    .unwrap()
                    .is_match(value.as_str().ok_or("not a string")?),
                other => return Err(format!("{other} is not evaluated here")),
            }
        }
    };
    if broken {
        Ok(())
    } else {
        Err(format!(
            "the document's value {value:?} satisfies {keyword}: {rule}"
        ))
    }
}

/// The schema node at a document path (`spec.topics.include`, `spec.target.config.compression.type`, `.`)
/// and the document's value there, walked together. Under a map (`additionalProperties`) the rest of the path
/// is one key: librdkafka keys contain dots.
fn walk<'a>(
    schema: &'a Value,
    document: &'a Value,
    path: &str,
) -> Result<(&'a Value, Option<&'a Value>), String> {
    let mut node = schema;
    let mut value = Some(document);
    if path == "." {
        return Ok((node, value));
    }
    let parts: Vec<&str> = path.split('.').collect();
    for (i, part) in parts.iter().enumerate() {
        if let Some(next) = node.get("properties").and_then(|p| p.get(*part)) {
            node = next;
            value = value.and_then(|v| v.get(*part));
        } else if let Some(map) = node.get("additionalProperties").filter(|m| m.is_object()) {
            let key = parts[i..].join(".");
            return Ok((map, value.and_then(|v| v.get(&key))));
        } else {
            return Err(format!("the CRD has no field {part:?} in {path}"));
        }
    }
    Ok((node, value))
}
