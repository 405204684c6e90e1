#!/usr/bin/env bash
# Sourced by the deployment checks: makes the pinned Python tools of tests/requirements.txt and the Debian
# packages they need available, installing them once into ~/.cache/kafka-mirror (never into the work tree).
# Usage: source tests/tools.sh
set -euo pipefail

# Root here; a CI runner's user has sudo.
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
_cache="${KAFKA_MIRROR_CACHE:-$HOME/.cache/kafka-mirror}"
_requirements="$_root/tests/requirements.txt"
_hash="$(sha256sum "$_requirements" | cut -c1-12)"
KMIRROR_VENV="$_cache/venv-$_hash"

# Lua 5.1 is the language of Argo CD's health checks (gopher-lua implements 5.1): the checks run in Debian's
# reference interpreter.
if ! command -v lua5.1 >/dev/null; then
  echo "==> installing lua5.1 (once)"
  as_root apt-get update && as_root apt-get install -y --no-install-recommends lua5.1
fi

# Created in place (a virtualenv cannot be moved: its scripts name its path); `.complete` marks an install
# that finished, so an interrupted one is redone.
# Two checks started at once install once: the second waits on the lock.
mkdir -p "$_cache"
exec {_lock}>"$_cache/venv.lock"
flock "$_lock"
if [ ! -e "$KMIRROR_VENV/.complete" ]; then
  echo "==> installing the Python tools of tests/requirements.txt into $KMIRROR_VENV (once)"
  rm -rf "$KMIRROR_VENV"
  python3 -m venv "$KMIRROR_VENV"
  "$KMIRROR_VENV/bin/pip" install --quiet --disable-pip-version-check -r "$_requirements"
  touch "$KMIRROR_VENV/.complete"
fi
flock --unlock "$_lock"
export KMIRROR_VENV
export PATH="$KMIRROR_VENV/bin:$PATH"
