#!/usr/bin/env bash
# The throughput, memory and latency benchmark of issue 6, in one command: installs Debian's kcat (the peer),
# builds the worker and the operator in release mode, and runs mirror-worker/benches/mirror (about 5 minutes
# after the build). Prints the results as Markdown and writes them to target/benchmark-results.md, the table
# BENCHMARKS.md holds. Not part of the test command. Arguments go to the benchmark (`--help` lists them).
# Usage: bash tests/benchmark.sh [--num-streams 2] [--value-sizes 1000] ...
set -euo pipefail
cd "$(dirname "$0")/.."

export KMIRROR_EXTRA_COMMANDS="kcat:kcat"
# shellcheck source=tests/build-deps.sh
source tests/build-deps.sh

printf '\n==> building mirror-worker and kafka-mirror-operator (release)\n'
cargo build --release -p mirror-worker -p kafka-mirror-operator --bins
printf '\n==> running the benchmark\n'
# fetch.wait.max.ms=10: librdkafka's mock broker holds a fetch that found nothing for the whole wait, even when
# records arrive meanwhile (Kafka answers as soon as fetch.min.bytes are there), so with the default 500 ms the
# latency measured would be the mock's. Every run of the benchmark, the limits included, uses it.
cargo bench -p mirror-worker --bench mirror -- \
  --operator "$PWD/target/release/kafka-mirror-operator" --out "$PWD/target/benchmark-results.md" \
  --source-config fetch.wait.max.ms=10 "$@"
