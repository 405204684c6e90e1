"""The Helm chart and the install manifests, checked with Helm's own engine (Helm v4's Go SDK through
helm-python-sdk) and Kubernetes' OpenAPI schemas of a pinned version (kubernetes-validate).

Run by tests/deploy/run.sh; regenerate deploy/install.yaml on purpose with UPDATE_GOLDEN=1.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import helm_python as helm
import jsonschema
import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "kafka-mirror-operator"
INSTALL = ROOT / "deploy" / "install.yaml"
# The Kubernetes version whose schemas every object must satisfy: AKS's oldest supported minor at the time of
# writing. Objects using newer fields would be refused by clusters still on it.
KUBERNETES = "1.33.0"
NAMESPACE = "kafka-mirror"


def rendered(values: dict | None = None, *, name: str = "kafka-mirror", namespace: str = NAMESPACE) -> dict[str, str]:
    """Template path → rendered text, as `helm install` would produce."""
    return helm.Chart.load(CHART).render(values or {}, name=name, namespace=namespace, is_install=True)


def render(values: dict | None = None, *, name: str = "kafka-mirror", namespace: str = NAMESPACE) -> list[dict]:
    objects = []
    for path, text in sorted(rendered(values, name=name, namespace=namespace).items()):
        if path.endswith("NOTES.txt"):
            continue
        objects.extend(doc for doc in yaml.safe_load_all(text) if doc)
    return objects


def notes(values: dict | None = None) -> str:
    return next(text for path, text in rendered(values).items() if path.endswith("NOTES.txt"))


def by_kind(objects: list[dict], kind: str) -> list[dict]:
    return [o for o in objects if o["kind"] == kind]


def one(objects: list[dict], kind: str) -> dict:
    found = by_kind(objects, kind)
    assert len(found) == 1, f"expected one {kind}, found {[o['metadata']['name'] for o in found]}"
    return found[0]


def validate(obj: dict) -> None:
    """Validates against Kubernetes' schemas; kinds Kubernetes does not define are named, never skipped."""
    kind = f"{obj['apiVersion']}/{obj['kind']}"
    if kind == "kafkamirror.io/v1alpha1/KafkaMirror":
        validate_kafka_mirror(obj)
    elif kind in FOREIGN_KINDS:
        FOREIGN_KINDS[kind](obj)
    else:
        kubernetes_validate.validate(obj, KUBERNETES, strict=True)


def validate_service_monitor(obj: dict) -> None:
    # The Prometheus Operator's CRD is not in Kubernetes' schemas: check what Prometheus needs from it.
    spec = obj["spec"]
    assert spec["selector"]["matchLabels"], obj
    assert all(e["port"] and e["path"] == "/metrics" for e in spec["endpoints"]), obj


def validate_pod_monitor(obj: dict) -> None:
    # Like the ServiceMonitor: what Prometheus needs from it (the field names are the CRD's).
    spec = obj["spec"]
    assert set(spec) <= {"jobLabel", "namespaceSelector", "selector", "podMetricsEndpoints"}, obj
    assert spec["selector"]["matchLabels"], obj
    assert set(spec["namespaceSelector"]) <= {"any", "matchNames"}, obj
    for endpoint in spec["podMetricsEndpoints"]:
        assert set(endpoint) <= {"port", "path", "interval", "relabelings"}, endpoint
        assert endpoint["port"] and endpoint["path"] == "/metrics", obj
        assert all(set(r) <= {"sourceLabels", "targetLabel", "action", "regex", "replacement"} for r in
                   endpoint.get("relabelings", [])), endpoint


def validate_prometheus_rule(obj: dict) -> None:
    # Prometheus' rules file format inside spec; promtool checks the rules themselves (tests/monitoring/).
    for group in obj["spec"]["groups"]:
        assert set(group) <= {"name", "interval", "rules"} and group["name"], group
        for rule in group["rules"]:
            assert set(rule) <= {"alert", "record", "expr", "for", "labels", "annotations"}, rule
            assert bool(rule.get("alert")) != bool(rule.get("record")) and rule["expr"], rule
            assert re.fullmatch(r"([0-9]+(ms|s|m|h|d))+", rule.get("for", "0s")), rule
            for value in [*rule.get("labels", {}).values(), *rule.get("annotations", {}).values()]:
                assert isinstance(value, str), rule


def validate_argocd_application(obj: dict) -> None:
    spec = obj["spec"]
    assert spec["destination"]["namespace"] and spec["source"]["repoURL"] and spec["source"]["path"], obj


FOREIGN_KINDS = {
    "monitoring.coreos.com/v1/ServiceMonitor": validate_service_monitor,
    "monitoring.coreos.com/v1/PodMonitor": validate_pod_monitor,
    "monitoring.coreos.com/v1/PrometheusRule": validate_prometheus_rule,
    "argoproj.io/v1alpha1/Application": validate_argocd_application,
}


def kafka_mirror_schema() -> dict:
    crd = yaml.safe_load((ROOT / "crds" / "kafkamirror.yaml").read_text())
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return to_json_schema(schema)


def to_json_schema(node):
    """OpenAPI v3 structural schema → JSON Schema: int-or-string becomes a type union, nullable adds null."""
    if isinstance(node, dict):
        node = {k: to_json_schema(v) for k, v in node.items() if not k.startswith("x-kubernetes-validations")}
        if node.pop("x-kubernetes-int-or-string", False):
            node.pop("anyOf", None)
            node["type"] = ["integer", "string"]
        if node.pop("nullable", False) and "type" in node:
            node["type"] = [node["type"], "null"] if isinstance(node["type"], str) else node["type"] + ["null"]
        if "properties" in node and "additionalProperties" not in node and node.get("type") == "object":
            node["additionalProperties"] = False
        return node
    if isinstance(node, list):
        return [to_json_schema(v) for v in node]
    return node


def validate_kafka_mirror(obj: dict) -> None:
    body = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "metadata")}
    jsonschema.validate(body, kafka_mirror_schema())
    assert obj["metadata"]["name"], obj


# --- the chart -------------------------------------------------------------------------------------------------


def test_default_values_render_an_operator_that_passes_the_schemas_and_the_restricted_standard():
    objects = render()
    assert sorted(o["kind"] for o in objects) == sorted(
        ["ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding", "Deployment", "Service"]
    )
    for obj in objects:
        validate(obj)
    deployment = one(objects, "Deployment")
    assert deployment["metadata"]["name"] == "kafka-mirror-operator"
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == "ghcr.io/kafka-mirror/kafka-mirror-operator:0.1.0", "tag defaults to appVersion"
    assert "--worker-image=ghcr.io/kafka-mirror/mirror-worker:0.1.0" in container["args"]
    assert "--leader-election" in container["args"] and "--lease-name=kafka-mirror-operator" in container["args"]
    assert not any(a.startswith("--namespace") for a in container["args"]), "cluster-wide by default"
    # The "restricted" Pod Security Standard.
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    security = container["securityContext"]
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    assert security["readOnlyRootFilesystem"] is True
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    service = one(objects, "Service")
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]


def test_a_watch_namespace_grants_a_role_in_that_namespace_only():
    objects = render({"watchNamespace": "team-a"})
    for obj in objects:
        validate(obj)
    assert not by_kind(objects, "ClusterRole") and not by_kind(objects, "ClusterRoleBinding")
    roles = {(r["metadata"]["namespace"], r["metadata"]["name"]) for r in by_kind(objects, "Role")}
    assert roles == {("team-a", "kafka-mirror-operator"), (NAMESPACE, "kafka-mirror-operator-leader-election")}
    binding = next(b for b in by_kind(objects, "RoleBinding") if b["metadata"]["namespace"] == "team-a")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "kafka-mirror-operator", "namespace": NAMESPACE}]
    args = one(objects, "Deployment")["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--namespace=team-a" in args
    assert "team-a" in notes({"watchNamespace": "team-a"})


def test_non_default_values_reach_the_objects():
    values = {
        "replicaCount": 2,
        "image": {"repository": "registry.example/op", "tag": "1.2.3", "pullPolicy": "Always"},
        "workerImage": {"repository": "registry.example/worker", "tag": "1.2.3"},
        "lagIntervalSeconds": 60,
        "logFormat": "text",
        "serviceAccount": {"name": "mirror-operator", "annotations": {"azure.workload.identity/client-id": "x"}},
        "metrics": {"serviceMonitor": {"enabled": True, "labels": {"release": "prometheus"}}},
        "nodeSelector": {"kubernetes.io/os": "linux"},
        "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "kafka", "effect": "NoSchedule"}],
        "podAnnotations": {"team": "data"},
    }
    objects = render(values)
    for obj in objects:
        validate(obj)
    deployment = one(objects, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert deployment["spec"]["replicas"] == 2
    assert container["image"] == "registry.example/op:1.2.3" and container["imagePullPolicy"] == "Always"
    assert "--worker-image=registry.example/worker:1.2.3" in container["args"]
    assert "--lag-interval=60" in container["args"] and "--log-format=text" in container["args"]
    assert pod["serviceAccountName"] == "mirror-operator"
    assert one(objects, "ServiceAccount")["metadata"]["annotations"] == {"azure.workload.identity/client-id": "x"}
    assert pod["nodeSelector"] == {"kubernetes.io/os": "linux"} and pod["tolerations"][0]["value"] == "kafka"
    assert deployment["spec"]["template"]["metadata"]["annotations"]["team"] == "data"
    monitor = one(objects, "ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    assert monitor["spec"]["selector"]["matchLabels"] == one(objects, "Service")["spec"]["selector"]


def test_the_optional_network_policy_lets_the_operator_reach_only_what_it_needs():
    assert not by_kind(render(), "NetworkPolicy"), "off by default: it needs the cluster's addresses"
    values = {
        "networkPolicy": {
            "enabled": True,
            "metricsNamespace": "prometheus",
            "apiServer": {"cidrs": ["20.50.1.2/32"]},
            "kafka": {"cidrs": ["10.23.0.0/24", "10.24.0.0/24"], "ports": [9093]},
        }
    }
    objects = render(values)
    for obj in objects:
        validate(obj)
    policy = one(objects, "NetworkPolicy")
    spec = policy["spec"]
    assert spec["podSelector"]["matchLabels"] == one(objects, "Deployment")["spec"]["selector"]["matchLabels"]
    assert spec["policyTypes"] == ["Ingress", "Egress"]
    (ingress,) = spec["ingress"]
    assert ingress["from"] == [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "prometheus"}}}]
    assert ingress["ports"] == [{"port": "http", "protocol": "TCP"}]
    dns, api, kafka = spec["egress"]
    assert {p["port"] for p in dns["ports"]} == {53}
    assert api == {"to": [{"ipBlock": {"cidr": "20.50.1.2/32"}}], "ports": [{"port": 443, "protocol": "TCP"}]}
    assert [t["ipBlock"]["cidr"] for t in kafka["to"]] == ["10.23.0.0/24", "10.24.0.0/24"]
    assert kafka["ports"] == [{"port": 9093, "protocol": "TCP"}]


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"replicaCount": 0}, "replicaCount"),
        ({"replicaCount": "2"}, "replicaCount"),
        ({"logFormat": "xml"}, "logFormat"),
        ({"replicas": 2}, "replicas"),
        ({"image": {"repository": "x", "pullPolicy": "Sometimes"}}, "pullPolicy"),
        ({"watchNamespace": "Team_A"}, "watchNamespace"),
        ({"lagIntervalSeconds": 1}, "lagIntervalSeconds"),
        ({"leaderElection": {"leaseDurationSeconds": 1}}, "leaseDurationSeconds"),
        ({"metrics": {"serviceMonitor": {"interval": "often"}}}, "interval"),
        ({"workerImage": {"repository": ""}}, "repository"),
        ({"networkPolicy": {"apiServer": {"cidrs": ["10.0.0.1"]}}}, "cidrs"),
        ({"networkPolicy": {"kafka": {"ports": [0]}}}, "ports"),
    ],
)
def test_bad_values_are_refused_naming_the_key(values, expected):
    with pytest.raises(helm.HelmError) as refused:
        helm.Chart.load(CHART).validate_schema(values)
    assert expected in str(refused.value), str(refused.value)
    with pytest.raises(helm.HelmError):
        render(values)


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"replicaCount": 2, "leaderElection": {"enabled": False}}, "needs leaderElection.enabled=true"),
        (
            {"metrics": {"service": {"enabled": False}, "serviceMonitor": {"enabled": True}}},
            "needs metrics.service.enabled",
        ),
        ({"networkPolicy": {"enabled": True}}, "needs networkPolicy.apiServer.cidrs"),
        (
            {"networkPolicy": {"enabled": True, "apiServer": {"cidrs": ["20.50.1.2/32"]}}},
            "needs networkPolicy.kafka.cidrs",
        ),
    ],
)
def test_combinations_that_cannot_work_are_refused_with_the_reason(values, expected):
    with pytest.raises(helm.HelmError) as refused:
        render(values)
    assert expected in str(refused.value), str(refused.value)


@pytest.mark.parametrize(
    "values",
    [
        {},
        {"watchNamespace": "team-a", "replicaCount": 3},
        {
            "networkPolicy": {
                "enabled": True,
                "apiServer": {"cidrs": ["20.50.1.2/32"]},
                "kafka": {"cidrs": ["10.23.0.0/24"]},
            }
        },
    ],
)
def test_helm_lint_is_clean(values):
    report = helm.lint(CHART, values, strict=True, namespace=NAMESPACE, kube_version="v1.33.0")
    findings = [m for m in report["messages"] if m["severity"] >= 2] + report.get("errors", [])
    assert not findings, findings


def test_the_chart_crd_is_the_generated_one():
    assert (CHART / "crds" / "kafkamirror.yaml").read_text() == (ROOT / "crds" / "kafkamirror.yaml").read_text(), (
        "charts/kafka-mirror-operator/crds/kafkamirror.yaml differs from crds/kafkamirror.yaml: copy it over"
    )
    validate(yaml.safe_load((ROOT / "crds" / "kafkamirror.yaml").read_text()))


def test_every_rbac_rule_says_why_it_is_needed():
    lines = (CHART / "templates" / "rbac.yaml").read_text().splitlines()
    rules = [i for i, line in enumerate(lines) if line.strip().startswith("- apiGroups:")]
    assert len(rules) >= 9
    for i in rules:
        assert lines[i - 1].strip().startswith("#"), f"rbac.yaml line {i + 1} has no comment saying why: {lines[i]}"


def test_notes_tell_the_next_command():
    text = notes()
    assert "kubectl -n kafka-mirror rollout status deployment/kafka-mirror-operator" in text
    assert "kubectl get kmirror -A -w" in text


# --- deploy/ ---------------------------------------------------------------------------------------------------


def install_manifest() -> str:
    """deploy/install.yaml: the namespace, the CRD and the chart with default values, for `kubectl apply -f`."""
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}
    crd = (ROOT / "crds" / "kafkamirror.yaml").read_text().strip()
    header = (
        "# Generated from charts/kafka-mirror-operator with default values (namespace kafka-mirror) by\n"
        "# tests/deploy/test_chart.py; regenerate with UPDATE_GOLDEN=1 bash tests/deploy/run.sh. Do not edit.\n"
    )
    parts = [yaml.safe_dump(namespace, sort_keys=False).strip(), crd.removeprefix("---\n")]
    parts += [yaml.safe_dump(o, sort_keys=False).strip() for o in render()]
    return header + "---\n" + "\n---\n".join(parts) + "\n"


def test_install_yaml_is_the_rendered_chart():
    expected = install_manifest()
    if os.environ.get("UPDATE_GOLDEN"):
        INSTALL.write_text(expected)
    assert INSTALL.read_text() == expected, "deploy/install.yaml is stale: UPDATE_GOLDEN=1 bash tests/deploy/run.sh"


def test_the_kustomize_base_lists_existing_files():
    kustomization = yaml.safe_load((ROOT / "deploy" / "kustomization.yaml").read_text())
    assert kustomization["resources"] == ["install.yaml"]
    assert (ROOT / "deploy" / "install.yaml").exists()


def deploy_documents():
    """Every manifest a user or the kind suite applies: deploy/ and tests/e2e/."""
    paths = sorted((ROOT / "deploy").rglob("*.yaml")) + sorted((ROOT / "tests" / "e2e").glob("*.yaml"))
    for path in paths:
        if path.name in ("kustomization.yaml", "health_test.yaml"):
            continue
        for index, doc in enumerate(yaml.safe_load_all(path.read_text())):
            if doc:
                yield pytest.param(doc, id=f"{path.relative_to(ROOT)}#{index}")


@pytest.mark.parametrize("obj", list(deploy_documents()))
def test_every_object_under_deploy_and_the_kind_suite_passes_its_schema(obj):
    validate(obj)


def test_the_kafka_mirror_schema_check_can_fail():
    mirror = yaml.safe_load((ROOT / "deploy" / "examples" / "hdinsight-testtopic.yaml").read_text())
    mirror["spec"]["replicas"] = "two"
    with pytest.raises(Exception, match="two"):
        validate(mirror)
    mirror["spec"]["replicas"] = 1
    mirror["spec"]["topics"]["inclde"] = ["x"]
    with pytest.raises(Exception, match="inclde"):
        validate(mirror)


def test_a_kubernetes_schema_violation_is_caught():
    deployment = one(render(), "Deployment")
    deployment["spec"]["replicas"] = "1"
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(deployment)
    assert re.match(r"^\d+\.\d+\.\d+$", KUBERNETES)
