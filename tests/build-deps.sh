#!/usr/bin/env bash
# Sourced by tests/run-all.sh and tests/benchmark.sh: installs, from Debian's packages, what building librdkafka
# needs (rdkafka-sys compiles it from source: a C compiler, make, pkg-config, OpenSSL headers) plus the
# commands named in KMIRROR_EXTRA_COMMANDS ("command:package" pairs), once.

# Root here; a CI runner's user has sudo.
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

_missing=()
command -v cc >/dev/null || _missing+=(gcc)
command -v make >/dev/null || _missing+=(make)
command -v pkg-config >/dev/null || _missing+=(pkg-config)
pkg-config --exists openssl 2>/dev/null || _missing+=(libssl-dev)
for _pair in ${KMIRROR_EXTRA_COMMANDS:-}; do
  command -v "${_pair%%:*}" >/dev/null || _missing+=("${_pair#*:}")
done
if [ ${#_missing[@]} -gt 0 ]; then
  printf '\n==> installing %s\n' "${_missing[*]}"
  as_root apt-get update && as_root apt-get install -y --no-install-recommends "${_missing[@]}"
fi
