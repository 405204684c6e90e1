//! What `kubectl explain`, `kubectl get` and `kubectl scale` will see: checked on the generated CRD.

use kafka_mirror_crds::KafkaMirror;
use kube::CustomResourceExt;
use serde_json::Value;

fn crd() -> Value {
    serde_json::to_value(KafkaMirror::crd()).unwrap()
}

fn version() -> Value {
    crd()["spec"]["versions"][0].clone()
}

fn spec_schema() -> Value {
    version()["schema"]["openAPIV3Schema"]["properties"]["spec"].clone()
}

#[test]
fn names_and_scope_are_the_documented_ones() {
    let crd = crd();
    assert_eq!(crd["metadata"]["name"], "kafkamirrors.kafkamirror.io");
    assert_eq!(crd["spec"]["scope"], "Namespaced");
    assert_eq!(crd["spec"]["names"]["kind"], "KafkaMirror");
    assert_eq!(crd["spec"]["names"]["shortNames"][0], "kmirror");
    assert_eq!(version()["name"], "v1alpha1");
}

#[test]
fn scale_subresource_points_at_replicas_and_selector() {
    let sub = &version()["subresources"];
    assert_eq!(sub["scale"]["specReplicasPath"], ".spec.replicas");
    assert_eq!(sub["scale"]["statusReplicasPath"], ".status.replicas");
    assert_eq!(sub["scale"]["labelSelectorPath"], ".status.selector");
    assert!(sub["status"].is_object());
}

#[test]
fn printer_columns_answer_source_target_topics_lag_ready_failover_age() {
    let names: Vec<String> = version()["additionalPrinterColumns"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c.get("priority").is_none())
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect();
    // Failover: condition FailoverReady (empty for a mirror without spec.consumerGroups).
    assert_eq!(
        names,
        [
            "Source", "Target", "Topics", "Lag", "Ready", "Failover", "Age"
        ]
    );
}

#[test]
fn every_spec_field_has_a_description_for_kubectl_explain() {
    fn walk(path: &str, schema: &Value, missing: &mut Vec<String>) {
        if let Some(props) = schema.get("properties").and_then(Value::as_object) {
            for (name, prop) in props {
                let here = format!("{path}.{name}");
                // Kubernetes' own types (resources, affinity, tolerations) carry their own descriptions.
                if here.starts_with(".template.") && !here.starts_with(".template.image") {
                    continue;
                }
                if prop
                    .get("description")
                    .and_then(Value::as_str)
                    .is_none_or(str::is_empty)
                {
                    missing.push(here.clone());
                }
                walk(&here, prop, missing);
            }
        }
        if let Some(items) = schema.get("items") {
            walk(&format!("{path}[]"), items, missing);
        }
    }
    let mut missing = Vec::new();
    walk("", &spec_schema(), &mut missing);
    assert!(
        missing.is_empty(),
        "fields without description: {missing:?}"
    );
}

#[test]
fn defaults_enums_and_bounds_live_in_the_schema() {
    let spec = spec_schema();
    let props = &spec["properties"];
    assert_eq!(props["replicas"]["default"], 1);
    assert_eq!(props["replicas"]["minimum"].as_f64(), Some(0.0));
    assert_eq!(props["numStreams"]["minimum"].as_f64(), Some(1.0));
    assert_eq!(props["numStreams"]["maximum"].as_f64(), Some(64.0));
    assert_eq!(props["mode"]["default"], "continuous");
    assert_eq!(
        props["mode"]["enum"],
        serde_json::json!(["continuous", "migrate"])
    );
    assert_eq!(
        props["partitioning"]["enum"],
        serde_json::json!(["key", "preserve"])
    );
    assert_eq!(
        props["topics"]["properties"]["rename"]["default"],
        "{topic}"
    );
    assert_eq!(props["topics"]["properties"]["include"]["minItems"], 1);
    assert_eq!(
        props["source"]["properties"]["authentication"]["properties"]["mechanism"]["enum"],
        serde_json::json!(["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
    );
    // Pass-through config accepts `linger.ms: 5` as well as `compression.type: none`.
    assert_eq!(
        props["target"]["properties"]["config"]["additionalProperties"]["x-kubernetes-int-or-string"],
        true
    );
}

#[test]
fn cel_rules_guard_what_the_operator_would_otherwise_reject_later() {
    let rules = |v: &Value| -> Vec<String> {
        v["x-kubernetes-validations"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|r| r["rule"].as_str().unwrap().to_string())
                    .collect()
            })
            .unwrap_or_default()
    };
    let spec = spec_schema();
    assert!(
        rules(&spec)
            .iter()
            .any(|r| r.contains("self.topics.rename == '{topic}'")),
        "{:?}",
        rules(&spec)
    );
    assert!(
        rules(&spec["properties"]["topics"]["properties"]["rename"])
            .iter()
            .any(|r| r.contains("{topic}"))
    );
    assert!(
        rules(&spec["properties"]["source"]["properties"]["bootstrapServers"])
            .iter()
            .any(|r| r.contains("matches"))
    );
}
