//! Reading `KafkaMirror` documents: the examples users copy parse, and bad documents fail with a message
//! that names the field.

use std::path::Path;

use kafka_mirror_crds::{Mode, Partitioning, parse_document};

const VALID: &str = r#"
apiVersion: kafkamirror.io/v1alpha1
kind: KafkaMirror
metadata: {name: m}
spec:
  source: {bootstrapServers: "a:9092"}
  target: {bootstrapServers: "b:9092"}
  topics: {include: ["testtopic"]}
"#;

/// The first error message for `VALID` with `from` replaced by `to`.
fn error_for(from: &str, to: &str) -> String {
    let doc = VALID.replace(from, to);
    assert_ne!(doc, VALID, "the replacement {from:?} must apply");
    parse_document(&doc)
        .expect_err("document must be refused")
        .field_errors()[0]
        .to_string()
}

#[test]
fn the_seed_example_parses_with_every_knob_of_the_mirrormaker_run() {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/examples/hdinsight-testtopic.yaml");
    let mirror = parse_document(&std::fs::read_to_string(path).unwrap()).unwrap();
    let spec = &mirror.spec;
    assert_eq!(
        spec.source.connection.bootstrap_servers,
        "10.23.0.11:9092,10.23.0.7:9092,10.23.0.9:9092"
    );
    assert_eq!(spec.source.group_id.as_deref(), Some("mirrorgroup"));
    assert_eq!(spec.topics.include, ["testtopic"]);
    assert_eq!(spec.num_streams, 4);
    assert_eq!(spec.topics.create.replication_factor, Some(2));
    assert_eq!(
        spec.target.connection.config["compression.type"],
        k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String("none".into())
    );
    assert_eq!(spec.source.connection.host_aliases.len(), 3);
}

#[test]
fn defaults_fill_what_a_minimal_document_leaves_out() {
    let spec = parse_document(VALID).unwrap().spec;
    assert_eq!(spec.mode, Mode::Continuous);
    assert_eq!(spec.partitioning, Partitioning::Key);
    assert_eq!((spec.replicas, spec.num_streams), (1, 1));
    assert_eq!(spec.topics.rename, "{topic}");
    assert!(spec.topics.create.enabled);
    assert_eq!(spec.topics.target_name("orders"), "orders");
}

#[test]
fn an_invalid_regular_expression_names_its_list_entry() {
    let e = error_for(
        r#"include: ["testtopic"]"#,
        r#"include: ["testtopic", "orders["]"#,
    );
    assert!(
        e.starts_with("spec.topics.include[1]: invalid regular expression \"orders[\""),
        "{e}"
    );
}

#[test]
fn an_unknown_field_is_an_error_not_silently_ignored() {
    let e = error_for("topics: {", "numStream: 4\n  topics: {");
    assert!(e.starts_with("spec.numStream: unknown field"), "{e}");
}

#[test]
fn an_unknown_mode_names_the_field_and_the_allowed_values() {
    let e = error_for("topics: {", "mode: mirror\n  topics: {");
    assert!(e.starts_with("spec.mode: unknown variant `mirror`"), "{e}");
    assert!(e.contains("continuous") && e.contains("migrate"), "{e}");
}

#[test]
fn a_wrong_type_names_the_field() {
    let e = error_for("topics: {", "replicas: many\n  topics: {");
    assert!(e.starts_with("spec.replicas: invalid type"), "{e}");
}

#[test]
fn a_missing_required_field_names_its_parent() {
    let e = error_for(r#"  target: {bootstrapServers: "b:9092"}"#, "");
    assert!(e.contains("missing field `target`"), "{e}");
}

#[test]
fn security_keys_cannot_be_smuggled_through_config() {
    let e = error_for(
        r#"target: {bootstrapServers: "b:9092"}"#,
        r#"target: {bootstrapServers: "b:9092", config: {sasl.password: x}}"#,
    );
    assert_eq!(
        e,
        "spec.target.config.sasl.password: refused: set credentials through the authentication field from a Secret"
    );
    let e = error_for(
        r#"target: {bootstrapServers: "b:9092"}"#,
        r#"target: {bootstrapServers: "b:9092", config: {acks: "1"}}"#,
    );
    assert!(e.starts_with("spec.target.config.acks: refused:"), "{e}");
}

#[test]
fn mirroring_a_cluster_onto_itself_needs_a_rename() {
    let e = error_for(
        r#"target: {bootstrapServers: "b:9092"}"#,
        r#"target: {bootstrapServers: "A:9092"}"#,
    );
    assert!(
        e.starts_with("spec.topics.rename: source and target are the same cluster"),
        "{e}"
    );
    let renamed = VALID
        .replace(
            r#"target: {bootstrapServers: "b:9092"}"#,
            r#"target: {bootstrapServers: "a:9092"}"#,
        )
        .replace(
            r#"include: ["testtopic"]"#,
            r#"include: ["testtopic"], rename: "copy.{topic}""#,
        );
    assert!(parse_document(&renamed).is_ok());
}

#[test]
fn wrong_api_version_or_kind_is_named() {
    let e = error_for("kafkamirror.io/v1alpha1", "kafkamirror.io/v1");
    assert!(
        e.starts_with("apiVersion: expected \"kafkamirror.io/v1alpha1\""),
        "{e}"
    );
}

#[test]
fn a_bad_bootstrap_list_is_named() {
    let e = error_for(
        r#"source: {bootstrapServers: "a:9092"}"#,
        r#"source: {bootstrapServers: "a:9092,b"}"#,
    );
    assert_eq!(e, "spec.source.bootstrapServers: \"b\" is not host:port");
}

#[test]
fn not_yaml_at_all_is_reported_with_its_location() {
    let e = parse_document("apiVersion: [").unwrap_err().to_string();
    assert!(e.starts_with("document:"), "{e}");
    assert!(e.contains("line"), "{e}");
}

#[test]
fn an_unknown_field_inside_source_or_target_is_named_too() {
    // `source` and `target` are flattened structs, which hide unknown keys from a plain serde pass: a typo in
    // `tls` once ran the mirror without the CA it named.
    let e = error_for(
        r#"source: {bootstrapServers: "a:9092"}"#,
        r#"source: {bootstrapServers: "a:9092", tls: {caCert: {name: ca, key: ca.crt}}}"#,
    );
    assert!(
        e.starts_with("spec.source.tls.caCert: unknown field"),
        "{e}"
    );
    let e = error_for(
        r#"target: {bootstrapServers: "b:9092"}"#,
        r#"target: {bootstrapServers: "b:9092", config: {linger.ms: [5]}}"#,
    );
    assert_eq!(
        e,
        "spec.target.config.linger.ms: invalid type: sequence, expected a string or an integer"
    );
}

#[test]
fn a_secret_reference_must_be_a_secret_name_and_key() {
    let e = error_for(
        r#"source: {bootstrapServers: "a:9092"}"#,
        r#"source: {bootstrapServers: "a:9092", tls: {ca: {name: ../etc, key: passwd}}}"#,
    );
    assert!(
        e.starts_with("spec.source.tls.ca.name: \"../etc\" is not a Secret name"),
        "{e}"
    );
}
