#!/usr/bin/env bash
# The throughput, memory and latency benchmark of issues 6 and 17, in one command, on Apache Kafka: installs
# Debian's kcat and a JDK and Maven when missing, Apache Kafka (tests/kafka/install.sh: the brokers),
# MirrorMaker 1 and MirrorMaker 2 (tests/mirrormaker/install.sh: the peers), all from Maven Central into
# ~/.cache/kafka-mirror once, and the Kubernetes control plane the operator's section runs on
# (tests/control-plane/install.sh; the benchmark starts it with up.sh through the test kit); builds the worker and the operator in release mode, and runs
# mirror-worker/benches/mirror (about 25 minutes after the build on 2 cores; `--quick` is a smoke run of a few
# minutes). Prints the results as Markdown and writes them to target/benchmark-results.md, the table
# BENCHMARKS.md holds. Not part of the test command. Arguments go to the benchmark (`--help` lists them).
# Usage: bash tests/benchmark.sh [--quick] [--value-sizes 1000] [--rounds 2] [--skip mm1,mm2] ...
set -euo pipefail
cd "$(dirname "$0")/.."

export KMIRROR_EXTRA_COMMANDS="kcat:kcat java:openjdk-17-jdk-headless mvn:maven openssl:openssl"
# shellcheck source=tests/build-deps.sh
source tests/build-deps.sh

printf '\n==> Apache Kafka (the brokers), MirrorMaker 1 and MirrorMaker 2 (the peers), from Maven Central\n'
bash tests/kafka/install.sh
bash tests/mirrormaker/install.sh mm1
bash tests/mirrormaker/install.sh mm2

printf '\n==> the Kubernetes control plane of the operator section (tests/control-plane/install.sh: built once)\n'
bash tests/control-plane/install.sh >/dev/null

printf '\n==> building mirror-worker and kafka-mirror-operator (release)\n'
cargo build --release -p mirror-worker -p kafka-mirror-operator --bins
printf '\n==> running the benchmark\n'
cargo bench -p mirror-worker --bench mirror -- \
  --operator "$PWD/target/release/kafka-mirror-operator" --out "$PWD/target/benchmark-results.md" "$@"
