#!/usr/bin/env bash
# Starts a Kubernetes control plane on loopback, for the tests and for a person exploring: etcd,
# kube-apiserver and kube-controller-manager (from tests/control-plane/install.sh, which builds what is missing),
# each on free 127.0.0.1 ports, and prints as its last line the path of an admin kubeconfig.
#
#   bash tests/control-plane/up.sh [--dir DIR] [--owner-pid PID]
#   export KUBECONFIG="$(bash tests/control-plane/up.sh | tail -n 1)"
#   bash tests/control-plane/down.sh [--dir DIR]
#
# --dir DIR        where the control plane lives: etcd's data, the certificates, the kubeconfigs, each process's
#                  pid file and log (etcd.log, kube-apiserver.log, kube-controller-manager.log). Default
#                  $KAFKA_MIRROR_CONTROL_PLANE, else ${TMPDIR:-/tmp}/kafka-mirror-control-plane. Every start is
#                  a fresh cluster: what an earlier start left in DIR is replaced.
# --owner-pid PID  stop the control plane and delete DIR once process PID is gone (what a test fixture passes,
#                  so a panicking or killed test leaves no process behind).
#
# What runs, after controller-runtime's envtest and kwokctl:
#   etcd                     Debian's etcd-server, plain HTTP on loopback only
#   kube-apiserver           HTTPS on 127.0.0.1; client certificates signed by DIR/pki/ca.crt (the admin one has
#                            O=system:masters); RBAC; service accounts signed by DIR/pki/sa.key;
#                            service ClusterIPs from 10.0.0.0/24
#   kube-controller-manager  every default controller (garbage collection, Deployment -> ReplicaSet -> Pod,
#                            namespaces, service accounts and their tokens, ...), no leader election
# There is no scheduler and no kubelet: pods are created and stay Pending.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
die() { echo "tests/control-plane/up.sh: $*" >&2; exit 1; }
say() { echo "$*" >&2; }

dir="${KAFKA_MIRROR_CONTROL_PLANE:-${TMPDIR:-/tmp}/kafka-mirror-control-plane}" owner=""
while [ $# -gt 0 ]; do
  case "$1" in
    --dir) dir="$2"; shift 2 ;;
    --owner-pid) owner="$2"; shift 2 ;;
    *) die "unknown argument '$1' (usage: up.sh [--dir DIR] [--owner-pid PID])" ;;
  esac
done
[ -z "$owner" ] || kill -0 "$owner" 2>/dev/null || die "--owner-pid $owner: no such process"
command -v openssl >/dev/null || die "openssl is not on PATH: the control plane's certificates need it"

bin="$(bash "$here/install.sh" | tail -n 1)"
for tool in etcd kube-apiserver kube-controller-manager kubectl; do
  [ -x "$bin/$tool" ] || die "install.sh printed $bin, which holds no $tool"
done

mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"
# running PID: the process exists and is not a zombie (where PID 1 does not reap orphans, as in some
# containers, a killed process stays a zombie that `kill -0` still finds).
running() {
  local state
  state="$(ps -o stat= -p "$1" 2>/dev/null)" && [ -n "$state" ] && [ "${state#Z}" = "$state" ]
}
# A control plane already running here is an error; one whose processes are gone is replaced.
for name in kube-controller-manager kube-apiserver etcd; do
  if [ -e "$dir/$name.pid" ] && running "$(cat "$dir/$name.pid")"; then
    die "$dir already runs a control plane ($name is pid $(cat "$dir/$name.pid")): bash $here/down.sh --dir $dir first"
  fi
done
rm -rf "$dir/etcd-data" "$dir/pki" "$dir/kcm-certs" "$dir"/*.pid "$dir"/*.log "$dir"/*.kubeconfig "$dir/ports" \
  "$dir/running"

# Free loopback ports (free_ports N), shared with the other script that starts servers for the tests.
# shellcheck source=tests/free-ports.sh
source "$here/../free-ports.sh"
read -r etcd_port peer_port api_port kcm_port <<<"$(free_ports 4)"
printf 'etcd=%s\netcd-peer=%s\nkube-apiserver=%s\nkube-controller-manager=%s\n' \
  "$etcd_port" "$peer_port" "$api_port" "$kcm_port" >"$dir/ports"

# The certificates: a CA; the API server's serving certificate (127.0.0.1, localhost and the in-cluster names of
# the `kubernetes` Service, whose ClusterIP is the first of 10.0.0.0/24); client certificates for the admin
# (O=system:masters) and for the controller manager (the user its bootstrap RBAC roles name); the key pair
# service-account tokens are signed with.
pki="$dir/pki"
mkdir -p "$pki"
(
  cd "$pki"
  openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=kafka-mirror test control plane CA" \
    -keyout ca.key -out ca.crt 2>/dev/null
  sign() { # sign NAME SUBJECT EXTENSIONS
    openssl req -newkey rsa:2048 -nodes -subj "$2" -keyout "$1.key" -out "$1.csr" 2>/dev/null
    printf '%b' "$3" >"$1.ext"
    openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 30 -extfile "$1.ext" \
      -out "$1.crt" 2>/dev/null
  }
  sign apiserver "/CN=kube-apiserver" "subjectAltName=IP:127.0.0.1,DNS:localhost,IP:10.0.0.1,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local\nextendedKeyUsage=serverAuth\n"
  sign admin "/O=system:masters/CN=kafka-mirror-admin" "extendedKeyUsage=clientAuth\n"
  sign controller-manager "/CN=system:kube-controller-manager" "extendedKeyUsage=clientAuth\n"
  openssl genrsa -out sa.key 2048 2>/dev/null
  openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
  rm -f ./*.csr ./*.ext ca.srl
)

server="https://127.0.0.1:$api_port"
kubeconfig() { # kubeconfig FILE USER CERT_NAME
  local k=("$bin/kubectl" --kubeconfig "$1" config)
  "${k[@]}" set-cluster kafka-mirror --server "$server" --certificate-authority "$pki/ca.crt" --embed-certs >/dev/null
  "${k[@]}" set-credentials "$2" --client-certificate "$pki/$3.crt" --client-key "$pki/$3.key" --embed-certs >/dev/null
  "${k[@]}" set-context kafka-mirror --cluster kafka-mirror --user "$2" >/dev/null
  "${k[@]}" use-context kafka-mirror >/dev/null
}
kubeconfig "$dir/admin.kubeconfig" admin admin
kubeconfig "$dir/controller-manager.kubeconfig" system:kube-controller-manager controller-manager

# start NAME COMMAND...: in the background, its output in DIR/NAME.log, its pid in DIR/NAME.pid.
start() {
  local name="$1"
  shift
  nohup "$@" >"$dir/$name.log" 2>&1 </dev/null &
  echo $! >"$dir/$name.pid"
}
alive() { running "$(cat "$dir/$1.pid")"; }
# wait_for NAME SECONDS WHAT COMMAND...: until COMMAND succeeds; fails with NAME's log if NAME exits or time runs out.
wait_for() {
  local name="$1" limit="$2" what="$3" deadline=$((SECONDS + $2))
  shift 3
  until "$@" >/dev/null 2>&1; do
    alive "$name" || die "$name exited before $what; the end of $dir/$name.log:
$(tail -n 30 "$dir/$name.log")"
    [ $SECONDS -lt $deadline ] || die "$name: no $what within $limit s; the end of $dir/$name.log:
$(tail -n 30 "$dir/$name.log")"
    sleep 0.2
  done
}
# A failed start leaves nothing running.
started=false
trap '$started || bash "$here/down.sh" --dir "$dir" >/dev/null 2>&1 || true' EXIT

touch "$dir/running"
if [ -n "$owner" ]; then
  # The watchdog outlives this script (setsid), not the owner.
  setsid nohup bash "$here/down.sh" --dir "$dir" --when-gone "$owner" >/dev/null 2>&1 </dev/null &
fi

start etcd "$bin/etcd" --name kafka-mirror --data-dir "$dir/etcd-data" \
  --listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
  --listen-peer-urls "http://127.0.0.1:$peer_port" --initial-advertise-peer-urls "http://127.0.0.1:$peer_port" \
  --initial-cluster "kafka-mirror=http://127.0.0.1:$peer_port" --logger zap --log-level warn
etcd_healthy() { python3 - "$etcd_port" <<'PY'
import json, sys, urllib.request
with urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/health", timeout=2) as r:
    sys.exit(0 if json.load(r).get("health") == "true" else 1)
PY
}
wait_for etcd 60 "health" etcd_healthy

# The requestheader flags publish a CA in kube-system/extension-apiserver-authentication, which the controller
# manager's delegated authentication reads (it logs errors every few seconds without). No endpoint reconciler: it
# would write 127.0.0.1 into the `kubernetes` Endpoints, which refuse loopback addresses, every 10 s.
start kube-apiserver "$bin/kube-apiserver" \
  --etcd-servers "http://127.0.0.1:$etcd_port" \
  --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$api_port" \
  --tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" \
  --client-ca-file "$pki/ca.crt" \
  --authorization-mode RBAC \
  --service-account-issuer "$server" \
  --service-account-key-file "$pki/sa.pub" --service-account-signing-key-file "$pki/sa.key" \
  --service-cluster-ip-range 10.0.0.0/24 \
  --allow-privileged=true \
  --requestheader-client-ca-file "$pki/ca.crt" --requestheader-allowed-names front-proxy-client \
  --requestheader-username-headers X-Remote-User --requestheader-group-headers X-Remote-Group \
  --requestheader-extra-headers-prefix X-Remote-Extra- \
  --endpoint-reconciler-type none
readyz() { "$bin/kubectl" --kubeconfig "$dir/admin.kubeconfig" get --raw /readyz; }
wait_for kube-apiserver 120 "ok from /readyz" readyz

start kube-controller-manager "$bin/kube-controller-manager" \
  --kubeconfig "$dir/controller-manager.kubeconfig" \
  --authentication-kubeconfig "$dir/controller-manager.kubeconfig" \
  --authorization-kubeconfig "$dir/controller-manager.kubeconfig" \
  --bind-address 127.0.0.1 --secure-port "$kcm_port" --cert-dir "$dir/kcm-certs" \
  --root-ca-file "$pki/ca.crt" \
  --service-account-private-key-file "$pki/sa.key" \
  --use-service-account-credentials=true \
  --service-cluster-ip-range 10.0.0.0/24 \
  --leader-elect=false \
  --controllers '*'
# The controller manager is working once its service-account controller made the `default` ServiceAccount, which
# the API server's ServiceAccount admission needs before it admits any pod into a namespace.
default_sa() { "$bin/kubectl" --kubeconfig "$dir/admin.kubeconfig" get serviceaccount default --namespace default; }
wait_for kube-controller-manager 120 "ServiceAccount default/default" default_sa
started=true

say "control plane in $dir: etcd on 127.0.0.1:$etcd_port, kube-apiserver on $server, kube-controller-manager on 127.0.0.1:$kcm_port"
say "  export KUBECONFIG=$dir/admin.kubeconfig PATH=$bin:\$PATH    # stop: bash $here/down.sh --dir $dir"
echo "$dir/admin.kubeconfig"
