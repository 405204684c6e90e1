#!/usr/bin/env bash
# Installs MirrorMaker 1 (tests/mirrormaker/mm1/pom.xml: the core of Kafka 3.9.x, kafka.tools.MirrorMaker) or
# MirrorMaker 2 (tests/mirrormaker/mm2/pom.xml: connect-mirror of Kafka 4.x) from Maven Central into
# ~/.cache/kafka-mirror (never into the work tree), once, and prints the directory of its jars as the last line
# of output. The benchmark's peers (tests/benchmark.sh installs both); the same pattern as tests/kafka/install.sh.
# Usage: bash tests/mirrormaker/install.sh mm1|mm2
# Needs a JDK 17+ (java) and Maven (mvn); fails naming either when missing, never skips.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
peer="${1:-}"
case "$peer" in
  mm1|mm2) ;;
  *) echo "usage: tests/mirrormaker/install.sh mm1|mm2" >&2; exit 2 ;;
esac
pom="$here/$peer/pom.xml"
cache="${KAFKA_MIRROR_CACHE:-$HOME/.cache/kafka-mirror}"
version="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$pom")"
# The pom's hash names the install: changing a version or adding an artifact installs afresh.
hash="$(sha256sum "$pom" | cut -c1-12)"
dest="$cache/$peer-$version-$hash"
case "$peer" in
  mm1) marker="kafka_2.13-$version.jar" ;;
  mm2) marker="connect-mirror-$version.jar" ;;
esac

for tool in java mvn; do
  command -v "$tool" >/dev/null || {
    echo "tests/mirrormaker/install.sh: '$tool' is not on PATH: MirrorMaker ($peer, Kafka $version) needs a JDK 17+ and Maven" >&2
    exit 1
  }
done

mkdir -p "$cache"
# Two callers at once install once: the second waits on the lock.
exec {lock}>"$cache/$peer.lock"
flock "$lock"
if [ ! -e "$dest/.complete" ]; then
  echo "==> installing MirrorMaker ($peer, Kafka $version) from Maven Central into $dest (once)" >&2
  rm -rf "$dest"
  mkdir -p "$dest"
  # Maven's own repository is the one tests/kafka/install.sh keeps in the cache: nothing is fetched twice.
  mvn -B -q -f "$pom" -Dmaven.repo.local="$cache/maven-repository" \
    dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$dest/libs" >&2
  [ -e "$dest/libs/$marker" ] || {
    echo "tests/mirrormaker/install.sh: Maven finished but $dest/libs has no $marker" >&2
    exit 1
  }
  echo "$version" >"$dest/.complete"
fi
flock --unlock "$lock"
echo "$dest/libs"
