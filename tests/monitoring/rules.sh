#!/usr/bin/env bash
# Writes the Prometheus rules file the chart's PrometheusRule holds, rendered with Helm's engine, to OUT:
# default values, or the metrics.prometheusRule values given as JSON. tests/tests/prometheus_alerts.rs loads it
# into a real Prometheus.
#   bash tests/monitoring/rules.sh OUT ['{"notReadyFor": "10s"}']
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=tests/tools.sh
source tests/tools.sh >&2
exec python tests/monitoring/rules.py "$@"
