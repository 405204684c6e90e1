"""The chart's monitoring: the workers' PodMonitor, the PrometheusRule and the Grafana dashboard, rendered with
Helm's engine; and every metric their PromQL names checked against the series the code exports.

The exported series are listed in tests/monitoring/metrics/*.txt, written and checked by a unit test of each
registry (mirror-worker/src/observe/metrics.rs, operator/src/metrics.rs): renaming a metric in Rust fails there
until the list is regenerated, and here until no query names the old series. The alerts' behaviour is tested
with promtool by tests/monitoring/run.sh.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from test_chart import CHART, NAMESPACE, ROOT, by_kind, one, render, validate

MONITORING = ROOT / "tests" / "monitoring"
DASHBOARD = CHART / "files" / "dashboards" / "kafka-mirror.json"
ALL_ON = {
    "metrics": {
        "serviceMonitor": {"enabled": True},
        "podMonitor": {"enabled": True},
        "prometheusRule": {"enabled": True},
        "dashboard": {"enabled": True},
    }
}
# Series that come from elsewhere: Prometheus' own per target, and kube-state-metrics'.
EXTERNAL = {"up", "kube_pod_container_status_restarts_total"}


def exported(component: str) -> set[str]:
    return set((MONITORING / "metrics" / f"{component}.txt").read_text().split())


def known_series() -> set[str]:
    return exported("mirror-worker") | exported("operator") | EXTERNAL


# --- PromQL ------------------------------------------------------------------------------------------------------

_KEYWORDS = {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring", "group_left",
             "group_right", "inf", "nan", "atan2"}


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression (or a Grafana query with its $variables) reads.

    Strings, label matchers, ranges and label lists are removed first; what is left that is not a function, an
    aggregation, a keyword or a number is a metric name. Grafana's label_values(series, label) reads its first
    argument only.
    """
    text = re.sub(r'"(?:[^"\\]|\\.)*"|`[^`]*`|\'(?:[^\'\\]|\\.)*\'', '""', expr)
    text = re.sub(r"\$\{?\w+\}?", "x", text)  # Grafana variables: only ever inside strings or ranges here
    text = re.sub(r"\{[^{}]*\}", "", text)
    text = re.sub(r"\[[^\[\]]*\]", "", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)", r"\1", text)
    text = re.sub(r"\blabel_values\s*\(([^,()]*),[^()]*\)", r"label_values(\1)", text)
    names = set()
    # A call, or an aggregation with its `by`/`without` in front of its argument.
    for match in re.finditer(r"(?<![\w.:])([a-zA-Z_:][\w:]*)(\s*\(|\s+(?:by|without)\b)?", text):
        name, call = match.group(1), match.group(2)
        if call or name.lower() in _KEYWORDS:
            continue
        names.add(name)
    return names


def rules(values: dict | None = None) -> dict:
    """The `groups` of the PrometheusRule the chart renders: a Prometheus rules file."""
    return one(render(values or ALL_ON), "PrometheusRule")["spec"]


def rule_queries(values: dict | None = None) -> dict[str, str]:
    return {r.get("alert") or r["record"]: r["expr"] for g in rules(values)["groups"] for r in g["rules"]}


def dashboard_queries(dashboard: dict) -> dict[str, str]:
    """Panel title (and refId) → query, and every query variable's query."""
    queries = {}

    def panels(items):
        for panel in items:
            yield panel
            yield from panels(panel.get("panels", []))

    for panel in panels(dashboard["panels"]):
        for target in panel.get("targets", []):
            queries[f"{panel['title']} {target['refId']}"] = target["expr"]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            query = variable["query"]
            queries[f"${variable['name']}"] = query["query"] if isinstance(query, dict) else query
    return queries


def test_the_metric_name_check_finds_names_and_only_names():
    assert metric_names(
        'sum by (namespace, topic) (rate(kafka_mirror_records_mirrored_total{job="x", mirror=~"$mirror"}'
        "[$__rate_interval])) > on (topic) group_left (pod) kafka_mirror_partition_lag offset 15m"
    ) == {"kafka_mirror_records_mirrored_total", "kafka_mirror_partition_lag"}
    assert metric_names('histogram_quantile(0.99, sum by (le) (rate(a_bucket{le!="+Inf"}[5m]))) / 1e3') == {"a_bucket"}
    assert metric_names('label_values(kafka_mirror_ready{namespace=~"$namespace"}, mirror)') == {"kafka_mirror_ready"}
    assert metric_names("max_over_time(x[30m:1m]) or up == bool 0") == {"x", "up"}


def test_a_renamed_metric_is_caught():
    renamed = rule_queries()["KafkaMirrorLagGrowing"].replace("partition_lag", "consumer_lag")
    assert metric_names(renamed) - known_series() == {"kafka_mirror_consumer_lag"}


def test_every_series_the_alerts_and_the_dashboard_read_is_exported():
    queries = {f"alert {k}": v for k, v in rule_queries().items()}
    queries |= {f"dashboard {k}": v for k, v in dashboard_queries(json.loads(DASHBOARD.read_text())).items()}
    known = known_series()
    unknown = {name: sorted(metric_names(q) - known) for name, q in queries.items() if metric_names(q) - known}
    assert not unknown, f"queries name series nothing exports (see tests/monitoring/metrics/): {unknown}"
    assert all(metric_names(q) for q in queries.values()), "a query with no series: the check missed it"


def test_the_dashboard_shows_every_series_a_worker_exports():
    used = set().union(*map(metric_names, dashboard_queries(json.loads(DASHBOARD.read_text())).values()))
    missing = exported("mirror-worker") - used
    assert not missing, f"the worker exports series no panel shows: {sorted(missing)}"


def test_the_promtool_tests_feed_series_that_exist():
    suite = yaml.safe_load((MONITORING / "rules_test.yaml").read_text())
    fed = {re.match(r"[\w:]+", s["series"]).group(0) for t in suite["tests"] for s in t["input_series"]}
    assert fed <= known_series(), sorted(fed - known_series())
    tested = {a["alertname"] for t in suite["tests"] for a in t.get("alert_rule_test", [])}
    assert tested == set(rule_queries()), "every alert has a promtool test, and only the chart's alerts"


# --- the objects -------------------------------------------------------------------------------------------------


def test_monitoring_objects_are_off_by_default():
    kinds = {o["kind"] for o in render()}
    assert not kinds & {"PodMonitor", "PrometheusRule", "ServiceMonitor", "ConfigMap"}


def test_the_pod_monitor_selects_the_pods_the_operator_makes():
    objects = render({"metrics": {"podMonitor": {"enabled": True, "labels": {"release": "prom"}, "interval": "15s"}}})
    for obj in objects:
        validate(obj)
    monitor = one(objects, "PodMonitor")
    assert monitor["metadata"]["namespace"] == NAMESPACE
    assert monitor["metadata"]["labels"]["release"] == "prom"
    spec = monitor["spec"]
    assert spec["namespaceSelector"] == {"any": True}, "mirrors live in any namespace"
    # What the operator puts on every worker pod: the name label of labels::selector, the port of the container.
    labels_rs = (ROOT / "operator" / "src" / "labels.rs").read_text()
    assert re.search(r'NAME_LABEL\.to_string\(\),\s*"kafka-mirror-worker"', labels_rs)
    assert 'pub const NAME_LABEL: &str = "app.kubernetes.io/name"' in labels_rs
    assert 'pub const INSTANCE_LABEL: &str = "app.kubernetes.io/instance"' in labels_rs
    deployment_rs = (ROOT / "operator" / "src" / "desired" / "deployment.rs").read_text()
    assert re.search(r'ports: Some\(vec!\[ContainerPort \{\s*name: Some\("http"', deployment_rs)
    assert spec["selector"] == {"matchLabels": {"app.kubernetes.io/name": "kafka-mirror-worker"}}
    assert spec["jobLabel"] == "app.kubernetes.io/name", 'job="kafka-mirror-worker", as the queries expect'
    (endpoint,) = spec["podMetricsEndpoints"]
    assert endpoint["port"] == "http" and endpoint["path"] == "/metrics" and endpoint["interval"] == "15s"
    assert endpoint["relabelings"] == [
        {"sourceLabels": ["__meta_kubernetes_pod_label_app_kubernetes_io_instance"], "targetLabel": "mirror"}
    ]


def test_with_a_watch_namespace_the_pod_monitor_looks_there_only():
    monitor = one(render({"watchNamespace": "team-a", "metrics": {"podMonitor": {"enabled": True}}}), "PodMonitor")
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": ["team-a"]}


def test_the_prometheus_rule_takes_its_thresholds_and_labels_from_values():
    values = {
        "metrics": {
            "prometheusRule": {
                "enabled": True,
                "labels": {"release": "prom"},
                "alertLabels": {"team": "data"},
                "notReadyFor": "3m",
                "lagRecords": 500,
                "lagGrowingFor": "20m",
                "restarts": 5,
                "targetUnreachableFor": "2m",
            }
        }
    }
    objects = render(values)
    for obj in objects:
        validate(obj)
    rule = one(objects, "PrometheusRule")
    assert rule["metadata"]["labels"]["release"] == "prom"
    alerts = {r["alert"]: r for g in rule["spec"]["groups"] for r in g["rules"]}
    assert all(a["labels"]["team"] == "data" and a["labels"]["severity"] for a in alerts.values())
    assert alerts["KafkaMirrorWorkerNotReady"]["for"] == "3m"
    assert "3m" in alerts["KafkaMirrorWorkerNotReady"]["annotations"]["description"]
    lag = alerts["KafkaMirrorLagGrowing"]
    assert lag["for"] == "20m" and "> 500" in lag["expr"] and "offset 20m" in lag["expr"]
    assert ">= 5" in alerts["KafkaMirrorWorkerRestarting"]["expr"]
    assert alerts["KafkaMirrorTargetUnreachable"]["for"] == "2m"
    # Prometheus' templates reach the annotations unrendered by Helm.
    assert "{{ $labels.mirror }}" in alerts["KafkaMirrorWorkerNotReady"]["annotations"]["summary"]


def test_the_dashboard_config_map_carries_the_file_and_the_sidecar_label():
    values = {"metrics": {"dashboard": {"enabled": True, "namespace": "grafana", "annotations": {"grafana_folder": "Kafka"}}}}
    objects = render(values)
    for obj in objects:
        validate(obj)
    config_map = one(objects, "ConfigMap")
    assert config_map["metadata"]["namespace"] == "grafana"
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert config_map["metadata"]["annotations"] == {"grafana_folder": "Kafka"}
    (name,) = config_map["data"]
    assert name.endswith(".json")
    dashboard = json.loads(config_map["data"][name])
    assert dashboard == json.loads(DASHBOARD.read_text())
    assert len(json.dumps(dashboard)) < 900_000, "a ConfigMap holds 1 MiB"


def test_the_dashboard_is_one_grafana_can_load():
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "kafka-mirror" and dashboard["title"] and dashboard["schemaVersion"] >= 36
    assert "id" not in dashboard or dashboard["id"] is None, "an id would clash with the Grafana it is loaded into"
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids)), "panel ids are unique"
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert panel["targets"] and all(t["datasource"]["uid"] == "${datasource}" for t in panel["targets"])
        grid = panel["gridPos"]
        assert 0 <= grid["x"] and grid["x"] + grid["w"] <= 24, panel["title"]
    worker_queries = [
        q for q in dashboard_queries(dashboard).values() if any(n.startswith("kafka_mirror_") and
                                                                  not n.startswith("kafka_mirror_operator_")
                                                                  for n in metric_names(q))
    ]
    assert all('job="kafka-mirror-worker"' in q for q in worker_queries), "worker series as the PodMonitor labels them"


def test_everything_on_renders_valid_objects_and_a_clean_lint():
    import helm_python as helm

    objects = render(ALL_ON)
    for obj in objects:
        validate(obj)
    assert {"PodMonitor", "PrometheusRule", "ServiceMonitor", "ConfigMap"} <= {o["kind"] for o in objects}
    report = helm.lint(CHART, ALL_ON, strict=True, namespace=NAMESPACE, kube_version="v1.33.0")
    findings = [m for m in report["messages"] if m["severity"] >= 2] + report.get("errors", [])
    assert not findings, findings


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"metrics": {"podMonitor": {"interval": "often"}}}, "interval"),
        ({"metrics": {"podMonitor": {"labels": {"release": 1}}}}, "release"),
        ({"metrics": {"prometheusRule": {"notReadyFor": "ten minutes"}}}, "notReadyFor"),
        ({"metrics": {"prometheusRule": {"lagRecords": -1}}}, "lagRecords"),
        ({"metrics": {"prometheusRule": {"restarts": 0}}}, "restarts"),
        ({"metrics": {"dashboard": {"namespace": "Grafana_NS"}}}, "namespace"),
        ({"metrics": {"dashboard": {"enable": True}}}, "enable"),
    ],
)
def test_bad_monitoring_values_are_refused_naming_the_key(values, expected):
    import helm_python as helm

    with pytest.raises(helm.HelmError) as refused:
        helm.Chart.load(CHART).validate_schema(values)
    assert expected in str(refused.value), str(refused.value)
