#!/usr/bin/env bash
# Installs a Kubernetes control plane for the tests and prints, as the last line of output, the directory holding
# etcd, kube-apiserver, kube-controller-manager and kubectl:
#   - etcd: Debian's etcd-server (apt-get install when `etcd` is not on PATH; linked into the directory);
#   - kube-apiserver, kube-controller-manager and kubectl of the Kubernetes release pinned in go.mod here, built
#     from source through the Go module proxy by the wrapper module of this directory (go.mod explains why a
#     wrapper). kubectl is built too rather than taken from Debian: Debian 12's kubernetes-client is 1.20, far
#     outside kubectl's one-minor-version skew with a 1.33 API server.
# The binaries land in ${KAFKA_MIRROR_CACHE:-~/.cache/kafka-mirror}/control-plane-<version>-<hash of go.mod>/bin,
# never in the work tree; the Go module and build caches they are built with (GOMODCACHE, GOCACHE) beside it in
# control-plane-go/, shared by every version, so an interrupted build or the next release fetches and compiles
# only what it lacks. Built once; a cold build took 6 to 8 minutes on 2 cores shared with other tests, and left
# 0.6 GB of modules, 3 GB of build cache and 0.25 GB of binaries.
# Usage: bash tests/control-plane/install.sh
# Needs Go >= 1.24 (go) and, when etcd is missing, apt-get as root (or sudo); fails naming what is missing.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
die() { echo "tests/control-plane/install.sh: $*" >&2; exit 1; }
cache="${KAFKA_MIRROR_CACHE:-$HOME/.cache/kafka-mirror}"
version="$(awk '$1 == "k8s.io/kubernetes" { print $2 }' "$here/go.mod")"
[ -n "$version" ] || die "$here/go.mod requires no k8s.io/kubernetes"
# go.mod's hash names the install: another release (or another replace) installs afresh.
hash="$(sha256sum "$here/go.mod" | cut -c1-12)"
dest="$cache/control-plane-$version-$hash"
bin="$dest/bin"

as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null; then
    sudo "$@"
  else
    die "'$*' needs root (or sudo)"
  fi
}

command -v go >/dev/null || die "'go' is not on PATH: Kubernetes $version is built from source and needs Go 1.24 or newer"

mkdir -p "$cache"
# Two callers at once install once: the second waits on the lock.
exec {lock}>"$cache/control-plane.lock"
flock "$lock"

if ! command -v etcd >/dev/null; then
  command -v apt-get >/dev/null || die "'etcd' is not on PATH and there is no apt-get to install Debian's etcd-server"
  echo "==> installing etcd (Debian's etcd-server)" >&2
  # A fresh container has no package lists: apt-cache then knows no candidate.
  # (Read whole first: `grep -q` in a pipe would end apt-cache early, and pipefail call that a failure.)
  policy="$(apt-cache policy etcd-server 2>/dev/null || true)"
  if ! grep -q 'Candidate: [0-9]' <<<"$policy"; then
    as_root apt-get update >&2
  fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends etcd-server >&2
  command -v etcd >/dev/null || die "etcd-server is installed but 'etcd' is still not on PATH"
fi

if [ ! -e "$dest/.complete" ]; then
  echo "==> building Kubernetes $version (kube-apiserver, kube-controller-manager, kubectl) from the Go module proxy into $dest (once; cold, 6 to 8 minutes)" >&2
  # An interrupted install is redone; the module and build caches are kept (Go checks both itself), so the
  # rerun only fetches and compiles what the interrupted one had not.
  rm -rf "$bin"
  mkdir -p "$bin"
  pkg=k8s.io/component-base/version
  client=k8s.io/client-go/pkg/version
  minor="${version#v1.}"
  minor="${minor%%.*}"
  ldflags="-s -w"
  for p in "$pkg" "$client"; do
    ldflags="$ldflags -X $p.gitVersion=$version -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
  done
  # Other people's tests share these 2 cores: one package at a time, at the lowest priority. The go.sum of this
  # directory is the whole truth (-mod=readonly): nothing is written into the work tree.
  (
    cd "$here"
    export GOMODCACHE="$cache/control-plane-go/mod" GOCACHE="$cache/control-plane-go/build" GOFLAGS="-mod=readonly -buildvcs=false" \
      GOTOOLCHAIN=local CGO_ENABLED=0
    nice -n 19 go build -p 1 -trimpath -ldflags "$ldflags" -o "$bin/" \
      k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kubectl >&2
  )
  reported="$("$bin/kube-apiserver" --version)"
  [ "$reported" = "Kubernetes $version" ] || die "the kube-apiserver built says '$reported', not 'Kubernetes $version'"
  echo "$version" >"$dest/.complete"
fi
# etcd comes from PATH, which may change between runs: linked on every run.
ln -sfn "$(command -v etcd)" "$bin/etcd"
flock --unlock "$lock"
echo "$bin"
