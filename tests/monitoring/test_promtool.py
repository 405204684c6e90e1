"""The chart's PrometheusRule under promtool: rendered with Helm's engine (the rules the chart ships, not a
copy), checked with `promtool check rules` and unit-tested with `promtool test rules` on series like a worker's
/metrics (rules_test.yaml); and every query of the Grafana dashboard parsed by Prometheus' own PromQL parser.

Run by tests/monitoring/run.sh, which installs promtool.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "deploy"))

from test_monitoring import ALL_ON, DASHBOARD, dashboard_queries, rules  # noqa: E402


def promtool(*args: str, cwd: Path) -> str:
    assert shutil.which("promtool"), "promtool is missing: run tests/monitoring/run.sh, which installs it"
    done = subprocess.run(["promtool", *args], cwd=cwd, capture_output=True, text=True, timeout=120)
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"promtool {' '.join(args)}:\n{output}"
    return output


def test_the_rendered_rules_pass_promtool_check(tmp_path):
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(rules(), sort_keys=False))
    output = promtool("check", "rules", "rules.yaml", cwd=tmp_path)
    assert "SUCCESS: 6 rules found" in output, output


def test_the_alerts_fire_when_they_should_and_only_then(tmp_path):
    # promtool compares an alert's annotations whole: the tests pin expressions, durations and labels, and
    # `promtool check rules` above checks the annotations' templates.
    groups = copy.deepcopy(rules())
    for group in groups["groups"]:
        for rule in group["rules"]:
            rule.pop("annotations", None)
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(groups, sort_keys=False))
    shutil.copy(HERE / "rules_test.yaml", tmp_path / "rules_test.yaml")
    output = promtool("test", "rules", "rules_test.yaml", cwd=tmp_path)
    assert "SUCCESS" in output, output


def test_a_failing_expectation_fails_promtool(tmp_path):
    groups = copy.deepcopy(rules())
    for group in groups["groups"]:
        for rule in group["rules"]:
            rule.pop("annotations", None)
            if rule.get("alert") == "KafkaMirrorTargetUnreachable":
                rule["for"] = "8m"
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(groups, sort_keys=False))
    shutil.copy(HERE / "rules_test.yaml", tmp_path / "rules_test.yaml")
    done = subprocess.run(["promtool", "test", "rules", "rules_test.yaml"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode != 0 and "KafkaMirrorTargetUnreachable" in done.stdout + done.stderr


def test_every_dashboard_query_parses(tmp_path):
    # Grafana's variables replaced by what Grafana would put there, then each query as a recording rule.
    substitutions = {"$__rate_interval": "2m", "$__interval": "1m", "$namespace": ".*", "$mirror": ".*"}
    records = []
    for index, (where, query) in enumerate(sorted(dashboard_queries(json.loads(DASHBOARD.read_text())).items())):
        for variable, value in substitutions.items():
            query = query.replace(variable, value)
        assert "$" not in query, f"{where}: a variable the check does not know: {query}"
        if query.startswith("label_values("):
            query = re.fullmatch(r"label_values\((.*),\s*\w+\)", query).group(1)
        records.append({"record": f"dashboard:query_{index}", "expr": query})
    (tmp_path / "dashboard.yaml").write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": records}]}))
    output = promtool("check", "rules", "dashboard.yaml", cwd=tmp_path)
    assert f"SUCCESS: {len(records)} rules found" in output, output


def test_all_on_renders_the_rules_the_tests_use():
    assert rules() == rules(ALL_ON)
