#!/usr/bin/env bash
# Stops the control plane tests/control-plane/up.sh started in DIR: kube-controller-manager, kube-apiserver, then
# etcd, each with SIGTERM and, after 10 s, SIGKILL. The logs stay in DIR; the next up.sh there starts afresh.
#
#   bash tests/control-plane/down.sh [--dir DIR]
#
# --dir DIR  as for up.sh (default $KAFKA_MIRROR_CONTROL_PLANE, else ${TMPDIR:-/tmp}/kafka-mirror-control-plane)
# (up.sh --owner-pid PID runs `down.sh --dir DIR --when-gone PID` as its watchdog: it waits until PID is gone,
# then stops the control plane and deletes DIR; it gives up once DIR's control plane is stopped by other means.)
set -euo pipefail

die() { echo "tests/control-plane/down.sh: $*" >&2; exit 1; }

dir="${KAFKA_MIRROR_CONTROL_PLANE:-${TMPDIR:-/tmp}/kafka-mirror-control-plane}" owner=""
while [ $# -gt 0 ]; do
  case "$1" in
    --dir) dir="$2"; shift 2 ;;
    --when-gone) owner="$2"; shift 2 ;;
    *) die "unknown argument '$1' (usage: down.sh [--dir DIR])" ;;
  esac
done

# running PID: the process exists and is not a zombie (where PID 1 does not reap orphans, as in some
# containers, a killed process stays a zombie that `kill -0` still finds).
running() {
  local state
  state="$(ps -o stat= -p "$1" 2>/dev/null)" && [ -n "$state" ] && [ "${state#Z}" = "$state" ]
}

# stop NAME: the process of DIR/NAME.pid, if it still is NAME (a pid may have been reused since).
stop() {
  local name="$1" pid
  [ -e "$dir/$name.pid" ] || return 0
  pid="$(cat "$dir/$name.pid")"
  if [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$name"; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do
      running "$pid" || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$dir/$name.pid"
}

if [ -n "$owner" ]; then
  while running "$owner" && [ -e "$dir/running" ]; do sleep 1; done
  [ -e "$dir/running" ] || exit 0
fi

[ -d "$dir" ] || exit 0
for name in kube-controller-manager kube-apiserver etcd; do stop "$name"; done
rm -f "$dir/running"
[ -z "$owner" ] || rm -rf "$dir"
