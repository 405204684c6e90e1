#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs what the tests need (Apache Kafka from Maven Central, a
# Kubernetes control plane built through the Go module proxy, both cached outside the work tree), builds, lints
# and runs every test. README.md names this command; .ci/run calls it.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

# A test run builds once from scratch: incremental caches would only take disk (about 12 GB of it).
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"

# rustfmt and clippy come with the Rust toolchain (rustup components, which no registry here serves): when
# one is missing the run fails naming it, it never skips the check.
for component in fmt clippy; do
  cargo "$component" --version >/dev/null 2>&1 || {
    echo "tests/run-all.sh: 'cargo $component' does not run: install the toolchain's ${component/fmt/rustfmt} component" >&2
    exit 1
  }
done

# The JDK and Maven that fetch and run Apache Kafka, and openssl for the test clusters' PKI, from Debian's
# packages when the machine lacks them.
export KMIRROR_EXTRA_COMMANDS="java:openjdk-17-jdk-headless mvn:maven openssl:openssl python3:python3"
# shellcheck source=tests/build-deps.sh
source tests/build-deps.sh

# Apache Kafka from Maven Central, the broker of every test about Kafka's behaviour (once, into the cache).
step "Apache Kafka $(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' tests/kafka/pom.xml) (tests/kafka/install.sh)"
bash tests/kafka/install.sh

# A real Kubernetes API server and controller manager, built from source through the Go module proxy (once, into
# the cache; 6 to 8 minutes cold): the API server side of the CRD is tested on it.
step "Kubernetes control plane $(awk '$1 == "k8s.io/kubernetes" { print $2 }' tests/control-plane/go.mod) (tests/control-plane/install.sh)"
bash tests/control-plane/install.sh

step "format"
cargo fmt --all -- --check

step "clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "chart and manifests (Helm's engine, Kubernetes $(grep -o '^KUBERNETES = "[0-9.]*"' tests/deploy/test_chart.py | cut -d'"' -f2) schemas)"
bash tests/deploy/run.sh

step "alerts and dashboard queries under promtool (tests/monitoring/run.sh; Debian's prometheus, installed once)"
bash tests/monitoring/run.sh

step "the kind suite's workflow, scripts and Dockerfiles (actionlint, shellcheck; the suite itself runs in GitHub Actions)"
bash tests/lint-ci.sh

step "Argo CD health check (Lua 5.1, as Argo CD runs it)"
bash tests/argocd/run.sh

step "build (the process tests run the mirror-worker binary)"
cargo build --workspace --bins --locked

step "tests"
cargo test --workspace --locked --no-fail-fast
