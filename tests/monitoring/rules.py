"""The rules file of the chart's PrometheusRule (see rules.sh)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "deploy"))

from test_monitoring import rules  # noqa: E402

out = Path(sys.argv[1])
overrides = json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}
values = {"metrics": {"prometheusRule": {"enabled": True, **overrides}}}
out.write_text(yaml.safe_dump(rules(values), sort_keys=False))
