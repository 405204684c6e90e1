#!/usr/bin/env bash
# The chart's alerts under promtool (Debian's prometheus package, installed once when missing): the rules the
# chart renders pass `promtool check rules` and the unit tests of tests/monitoring/rules_test.yaml, and every
# dashboard query parses as PromQL.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=tests/tools.sh
source tests/tools.sh
if ! command -v promtool >/dev/null; then
  echo "==> installing prometheus (promtool; once)"
  as_root apt-get update && as_root apt-get install -y --no-install-recommends prometheus
fi
exec python -m pytest -q -p no:cacheprovider tests/monitoring "$@"
