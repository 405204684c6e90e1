#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs what the tests need (the nisshi broker, cached outside
# the work tree), builds, lints and runs every test. README.md names this command; .ci/run calls it.
set -euo pipefail
cd "$(dirname "$0")/.."

NISSHI_VERSION=0.8.1
CACHE="${KAFKA_MIRROR_CACHE:-$HOME/.cache/kafka-mirror}"
export NISSHI_BIN="$CACHE/nisshi-$NISSHI_VERSION/bin/nisshi"

step() { printf '\n==> %s\n' "$*"; }

# A test run builds once from scratch: incremental caches would only take disk (about 12 GB of it).
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"

# shellcheck source=tests/build-deps.sh
source tests/build-deps.sh

# nisshi, an independent Kafka-compatible broker, for the admin path and two-process runs. It needs
# rustc >= 1.96: the machine's nightly toolchain builds it (about 25 minutes on 2 cores, once). Storage:
# dynostore (in memory) and libsql (SQLite, the storage that holds the SCRAM users of tests/tests/security.rs);
# a cached build without libsql is rebuilt.
if [ ! -x "$NISSHI_BIN" ] || [[ "$("$NISSHI_BIN" --help)" != *"Storage engines:"*libsql* ]]; then
  step "installing nisshi $NISSHI_VERSION into $CACHE (once)"
  rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
  cargo +nightly install nisshi --version "$NISSHI_VERSION" --locked --no-default-features \
    --features dynostore,libsql --root "$CACHE/nisshi-$NISSHI_VERSION" --force
fi

step "format"
cargo fmt --all -- --check

step "clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "chart and manifests (Helm's engine, Kubernetes $(grep -o '^KUBERNETES = "[0-9.]*"' tests/deploy/test_chart.py | cut -d'"' -f2) schemas)"
bash tests/deploy/run.sh

step "the kind suite's workflow, scripts and Dockerfiles (actionlint, shellcheck; the suite itself runs in GitHub Actions)"
bash tests/lint-ci.sh

step "Argo CD health check (Lua 5.1, as Argo CD runs it)"
bash tests/argocd/run.sh

step "build (the process tests run the mirror-worker binary)"
cargo build --workspace --bins --locked

step "tests"
cargo test --workspace --locked
