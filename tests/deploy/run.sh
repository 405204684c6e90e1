#!/usr/bin/env bash
# The chart and manifest checks: Helm's own engine renders and lints the chart, every rendered object and every
# file under deploy/ is validated against Kubernetes' OpenAPI schemas (and KafkaMirrors against the CRD).
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=tests/tools.sh
source tests/tools.sh
exec python -m pytest -q -p no:cacheprovider tests/deploy "$@"
