#!/usr/bin/env bash
# The release names one version everywhere a user meets it: the workspace's crates (the operator's default
# worker image tag is its own version), the chart's version and appVersion (the default image tag of both
# images), and, when given, the git tag being released. The test command runs it without a tag
# (tests/lint-ci.sh); .github/workflows/release.yml runs it with the pushed tag before anything is published.
# Usage: bash tests/release/check-versions.sh [TAG_VERSION]   (TAG_VERSION without the leading v)
set -euo pipefail
cd "$(dirname "$0")/../.."

crates="$(sed -n '/^\[workspace.package\]/,/^\[/s/^version = "\(.*\)"/\1/p' Cargo.toml)"
chart_file=charts/kafka-mirror-operator/Chart.yaml
chart="$(sed -n 's/^version: *"\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' "$chart_file")"
app="$(sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' "$chart_file")"

problems=()
[ -n "$crates" ] || problems+=("Cargo.toml has no [workspace.package] version")
[ "$chart" = "$crates" ] || problems+=("$chart_file version is '$chart', the crates' is '$crates'")
[ "$app" = "$crates" ] || problems+=("$chart_file appVersion is '$app', the crates' is '$crates' (the images' default tag)")
if [ $# -gt 0 ] && [ "$1" != "$crates" ]; then
  problems+=("the tag names version '$1', the crates and the chart '$crates': bump Cargo.toml and $chart_file first")
fi
if [ ${#problems[@]} -gt 0 ]; then
  printf 'tests/release/check-versions.sh: %s\n' "${problems[@]}" >&2
  exit 1
fi
echo "version $crates: the crates, the chart and its appVersion${1:+ and the tag} agree"
