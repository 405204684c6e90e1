#!/usr/bin/env bash
# Installs the Apache Kafka of tests/kafka/pom.xml from Maven Central into ~/.cache/kafka-mirror (never into
# the work tree), once, and prints the directory of its jars as the last line of output.
# Usage: bash tests/kafka/install.sh
# Needs a JDK 17+ (java) and Maven (mvn); fails naming either when missing, never skips.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache="${KAFKA_MIRROR_CACHE:-$HOME/.cache/kafka-mirror}"
version="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$here/pom.xml")"
# The pom's hash names the install: changing a version or adding an artifact installs afresh.
hash="$(sha256sum "$here/pom.xml" | cut -c1-12)"
dest="$cache/kafka-$version-$hash"

for tool in java mvn; do
  command -v "$tool" >/dev/null || {
    echo "tests/kafka/install.sh: '$tool' is not on PATH: Apache Kafka $version needs a JDK 17+ and Maven" >&2
    exit 1
  }
done
java_major="$(java -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p')"
if [ "${java_major%%.*}" -lt 17 ]; then
  echo "tests/kafka/install.sh: java is version $java_major; Apache Kafka $version brokers need Java 17 or newer" >&2
  exit 1
fi

mkdir -p "$cache"
# Two callers at once install once: the second waits on the lock.
exec {lock}>"$cache/kafka.lock"
flock "$lock"
if [ ! -e "$dest/.complete" ]; then
  echo "==> installing Apache Kafka $version from Maven Central into $dest (once)" >&2
  rm -rf "$dest"
  mkdir -p "$dest"
  # Maven's own repository stays in the cache too, so a rebuilt install fetches nothing twice.
  mvn -B -q -f "$here/pom.xml" -Dmaven.repo.local="$cache/maven-repository" \
    dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$dest/libs" >&2
  [ -e "$dest/libs/kafka_2.13-$version.jar" ] || {
    echo "tests/kafka/install.sh: Maven finished but $dest/libs has no kafka_2.13-$version.jar" >&2
    exit 1
  }
  echo "$version" >"$dest/.complete"
fi
flock --unlock "$lock"
echo "$dest/libs"
