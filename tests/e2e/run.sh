#!/usr/bin/env bash
# The kind end-to-end suite (tests/e2e/README.md): both images built from this tree, the Helm chart installed,
# two Kafka clusters in the cluster, and a KafkaMirror that has to copy every record, keep doing so while it
# scales from 1 to 3 workers, and take everything it created with it when deleted.
#
# Needs docker (with the buildx plugin), kind, kubectl and helm on PATH. Environment:
#   KIND_CLUSTER   the kind cluster to use (default kafka-mirror-e2e). Created when missing; one this run created
#                  is deleted at the end unless KEEP_CLUSTER=1. An existing one is cleaned of a previous run first.
#   E2E_RECORDS    records per batch (default 20000)
set -euo pipefail
cd "$(dirname "$0")/../.."
export LC_ALL=C

CLUSTER="${KIND_CLUSTER:-kafka-mirror-e2e}"
CONTEXT="kind-$CLUSTER"
RECORDS="${E2E_RECORDS:-20000}"
KEYS=64
TOPIC=testtopic
PARTITIONS=8
NS=kafka-mirror
MIRROR=e2e
SOURCE_NS=kafka-source
TARGET_NS=kafka-target
OPERATOR_IMAGE=kafka-mirror-operator:e2e
WORKER_IMAGE=mirror-worker:e2e
WORKER_SELECTOR="app.kubernetes.io/instance=$MIRROR,app.kubernetes.io/name=kafka-mirror-worker"
# The heap of every Kafka tool the suite starts in a broker's pod (console producer and consumer, kafka-topics,
# kafka-get-offsets): Kafka's own default for tools (kafka-run-class.sh gives -Xmx256M when KAFKA_HEAP_OPTS is
# unset). Without it a tool started by `kubectl exec` inherits the container's KAFKA_HEAP_OPTS, which is the
# broker's (-Xms512m -Xmx512m in kafka.yaml), and commits 512 MB more inside the pod's 1536Mi limit beside the
# broker's own heap: enough to get the broker OOM-killed mid-run.
TOOL_HEAP_OPTS="-Xms32m -Xmx256m"
WORK=""
CREATED_CLUSTER=0
SUMMARY=()

# One record, as a line of kafka-console-producer with parse.headers and parse.key (the default separators: a tab
# after the headers, a tab after the key, "," between headers, ":" inside one), which is also exactly the line
# kafka-console-consumer prints with print.headers and print.key. Every value carries its sequence number;
# sequence numbers 1..RECORDS are batch 1, the next RECORDS batch 2.
RECORD_AWK='
function record(seq,    batch) {
  batch = int((seq - 1) / per_batch) + 1
  return sprintf("e2e-seq:%d,e2e-batch:%d\tkey-%d\tseq=%d batch=%d payload=%s", seq, batch, seq % keys, seq, batch,
                 "kafka-mirror-e2e-0123456789-abcdefghijklmnopqrstuvwxyz")
}'

log() { printf '\n==> %s\n' "$*"; }
note() { SUMMARY+=("$*"); printf '    %s\n' "$*"; }
fail() { printf '\nFAIL: %s\n' "$*" >&2; exit 1; }
k() { kubectl --context "$CONTEXT" "$@"; }
now() { date -u +%Y-%m-%dT%H:%M:%SZ; }

# in_kafka [-i] NAMESPACE COMMAND...: runs a Kafka tool in that namespace's Kafka pod with the tools' heap
# (TOOL_HEAP_OPTS), not the broker's; -i passes standard input on.
in_kafka() {
  local stdin=()
  if [[ $1 == -i ]]; then
    stdin=(-i)
    shift
  fi
  local ns=$1
  shift
  k -n "$ns" exec ${stdin[@]+"${stdin[@]}"} kafka-0 -c kafka -- env KAFKA_HEAP_OPTS="$TOOL_HEAP_OPTS" "$@"
}

# wait_until SECONDS WHAT COMMAND...: runs COMMAND every 5 s until it succeeds.
wait_until() {
  local timeout=$1 what=$2 deadline=$((SECONDS + $1))
  shift 2
  until "$@"; do
    ((SECONDS < deadline)) || fail "timed out after ${timeout}s waiting for $what"
    sleep 5
  done
}

require_tools() {
  local tool
  for tool in docker kind kubectl helm; do
    command -v "$tool" >/dev/null || fail "$tool is not on PATH (tests/e2e/README.md lists what the suite needs)"
  done
  docker buildx version >/dev/null 2>&1 || fail "docker has no buildx plugin (tests/e2e/README.md lists what the suite needs)"
}

create_cluster() {
  if kind get clusters 2>/dev/null | grep -qx "$CLUSTER"; then
    log "using the existing kind cluster $CLUSTER"
    reset_cluster
  else
    log "creating the kind cluster $CLUSTER"
    kind create cluster --name "$CLUSTER" --wait 180s
    CREATED_CLUSTER=1
  fi
}

# What an earlier run left in a reused cluster would spoil the counts: its release, mirror and Kafka data.
reset_cluster() {
  helm --kube-context "$CONTEXT" uninstall kafka-mirror --namespace "$NS" --wait 2>/dev/null || true
  k delete namespace "$NS" "$SOURCE_NS" "$TARGET_NS" --ignore-not-found --wait --timeout=5m
}

# Built without provenance or SBOM attestations, so each image is one plain single-platform manifest. With
# them (BuildKit attaches a provenance attestation by default wherever Docker keeps images in containerd, the
# default of Docker 29 on fresh installs, GitHub's runners included) the image is an index whose attestation
# manifest `kind load docker-image` hands on through `docker save` to `ctr images import --all-platforms`, which
# then fails with "content digest sha256:...: not found" (kind issues #3795 and #4066, containerd #11344).
# Of the two ways around it (the other: `docker save --platform` + `kind load image-archive`, kind PR #4247's
# documented workaround), this one removes the cause for our own images, keeps `kind load docker-image`, and
# behaves the same whichever store Docker uses.
build_images() {
  local image node
  log "building $OPERATOR_IMAGE and $WORKER_IMAGE"
  docker buildx build --provenance=false --sbom=false --load -f operator/Dockerfile -t "$OPERATOR_IMAGE" .
  docker buildx build --provenance=false --sbom=false --load -f mirror-worker/Dockerfile -t "$WORKER_IMAGE" .
  kind load docker-image --name "$CLUSTER" "$OPERATOR_IMAGE" "$WORKER_IMAGE"
  # The chart runs them with imagePullPolicy Never / IfNotPresent: a node without them would only show up as
  # pods stuck in ErrImageNeverPull until helm's --wait times out.
  for node in $(kind get nodes --name "$CLUSTER"); do
    for image in "$OPERATOR_IMAGE" "$WORKER_IMAGE"; do
      docker exec "$node" crictl inspecti "$image" >/dev/null ||
        fail "kind load reported success but node $node has no $image"
    done
  done
  note "images built without attestations and loaded into $(kind get nodes --name "$CLUSTER" | wc -l) node(s)"
}

start_kafka() {
  log "starting the source and target Kafka clusters"
  k apply -f tests/e2e/kafka.yaml
  k -n "$SOURCE_NS" rollout status statefulset/kafka --timeout=5m
  k -n "$TARGET_NS" rollout status statefulset/kafka --timeout=5m
}

create_topic() {
  log "creating $TOPIC with $PARTITIONS partitions on the source"
  wait_until 180 "the source broker to create $TOPIC" \
    in_kafka "$SOURCE_NS" /opt/kafka/bin/kafka-topics.sh --bootstrap-server localhost:9092 --create --if-not-exists \
    --topic "$TOPIC" --partitions "$PARTITIONS" --replication-factor 1
  in_kafka "$SOURCE_NS" /opt/kafka/bin/kafka-topics.sh --bootstrap-server localhost:9092 --describe --topic "$TOPIC"
}

# The CRD as the API server judges it, first thing after the cluster is up (before the images are built and
# the chart installs it): a schema or CEL rule it refuses (an estimated rule cost over the budget, say) fails
# here with the API server's own message rather than as a failed `helm install` many minutes later. The test
# command does the same on the local control plane (tests/tests/api_server.rs installs crds/kafkamirror.yaml).
# On a reused cluster the CRD exists, so this is a dry-run update there.
check_crd() {
  log "kubectl apply --dry-run=server -f crds/kafkamirror.yaml"
  k apply --dry-run=server -f crds/kafkamirror.yaml
  note "the API server accepts crds/kafkamirror.yaml (server dry run)"
}

install_operator() {
  log "installing the chart"
  helm --kube-context "$CONTEXT" install kafka-mirror charts/kafka-mirror-operator \
    --namespace "$NS" --create-namespace \
    --set image.repository=kafka-mirror-operator --set image.tag=e2e --set image.pullPolicy=Never \
    --set workerImage.repository=mirror-worker --set workerImage.tag=e2e \
    --wait --timeout 5m
  k -n "$NS" rollout status deployment/kafka-mirror-operator --timeout=2m
}

# produce FIRST COUNT: produces the records FIRST..FIRST+COUNT-1 to the source, then checks the source holds
# every record produced so far (the console producer reports failed sends in its log, not in its exit code).
produce() {
  local first=$1 count=$2 file="$WORK/produce-$1.txt" total
  awk -v first="$first" -v count="$count" -v per_batch="$RECORDS" -v keys="$KEYS" "$RECORD_AWK"'
    BEGIN { for (seq = first; seq < first + count; seq++) print record(seq) }' >"$file"
  in_kafka -i "$SOURCE_NS" /opt/kafka/bin/kafka-console-producer.sh \
    --bootstrap-server localhost:9092 --topic "$TOPIC" --producer-property acks=all \
    --property parse.key=true --property parse.headers=true <"$file"
  total=$(end_offsets "$SOURCE_NS")
  ((total == first + count - 1)) || fail "the source holds $total records, expected $((first + count - 1))"
  note "produced records $first..$((first + count - 1)) to the source: it holds $total"
}

# end_offsets NAMESPACE: the sum of the end offsets of every partition of the topic there.
end_offsets() {
  in_kafka "$1" /opt/kafka/bin/kafka-get-offsets.sh --bootstrap-server localhost:9092 --topic "$TOPIC" --time -1 |
    awk -F: '{ sum += $3 } END { print sum + 0 }'
}

wait_ready() {
  k -n "$NS" wait --for=condition=Ready "kmirror/$MIRROR" --timeout=5m
}

# lag_caught_up SINCE: the mirror reports lag 0 from a measurement taken after SINCE (UTC, RFC 3339); an older
# measurement may predate the records just produced.
lag_caught_up() {
  local lag measured
  read -r lag measured < <(k -n "$NS" get kmirror "$MIRROR" \
    -o jsonpath='{.status.lag.total} {.status.lag.measuredAt}{"\n"}') || return 1
  printf '    lag %s, measured at %s\n' "${lag:-unknown}" "${measured:-never}"
  [[ $lag == 0 && ${measured:0:19} > ${1:0:19} ]]
}

wait_caught_up() {
  log "waiting for kmirror/$MIRROR to report lag 0 measured after $1"
  wait_until 600 "lag 0" lag_caught_up "$1"
  note "$(k -n "$NS" get kmirror "$MIRROR" \
    -o jsonpath='status: lag {.status.lag.total}, topics {range .status.topics[*]}{.name}={.lag} {end}')"
}

# verify_records FILE HIGHEST: every sequence number 1..HIGHEST is in the consumer output FILE, each line exactly
# the record produced (key, headers and value). Prints the counts; fails on a lost, altered or unreadable record.
# Reported only: duplicates (at least once allows them) and records whose first copy arrives after a later record
# of the same key.
verify_records() {
  awk -F'\t' -v highest="$2" -v per_batch="$RECORDS" -v keys="$KEYS" "$RECORD_AWK"'
    {
      split($3, field, " ")
      seq = substr(field[1], 5) + 0
      if (field[1] !~ /^seq=[0-9]+$/ || seq < 1 || seq > highest) { unreadable++; next }
      if ($0 != record(seq)) altered++
      if (seen[seq]++ == 0) { if (seq < last[$2]) out_of_order++; else last[$2] = seq }
      records++
    }
    END {
      for (seq = 1; seq <= highest; seq++) {
        if (!(seq in seen)) lost++
        else duplicated += seen[seq] - 1
      }
      format = "%d records read, %d of %d sequence numbers: %d lost, %d duplicated, %d altered, %d out of per-key order, %d unreadable\n"
      printf format, records, highest - lost, highest, lost, duplicated, altered, out_of_order, unreadable
      exit (lost + altered + unreadable > 0)
    }' "$1"
}

# check_target LABEL HIGHEST: reads the whole target topic and verifies it holds records 1..HIGHEST.
check_target() {
  local out="$WORK/consumed-$2.txt" result
  log "reading $TOPIC from the target ($1)"
  in_kafka "$TARGET_NS" /opt/kafka/bin/kafka-console-consumer.sh --bootstrap-server localhost:9092 \
    --topic "$TOPIC" --from-beginning --timeout-ms 30000 \
    --property print.key=true --property print.headers=true >"$out" 2>"$out.log"
  if ! result=$(verify_records "$out" "$2"); then
    note "$1: $result"
    tail -n 20 "$out.log" >&2
    fail "$1: records were lost or altered on the way to the target"
  fi
  note "$1: $result"
}

ready_workers() {
  local ready
  ready=$(k -n "$NS" get kmirror "$MIRROR" -o jsonpath='{.status.readyReplicas}') || return 1
  [[ $ready == "$1" ]]
}

scale_to_three() {
  log "scaling kmirror/$MIRROR to 3 workers"
  k -n "$NS" scale "kmirror/$MIRROR" --replicas=3
}

wait_three_workers() {
  wait_until 300 "3 ready workers in kmirror/$MIRROR status" ready_workers 3
  k -n "$NS" rollout status "deployment/$MIRROR-worker" --timeout=5m
  wait_until 120 "PodDisruptionBudget $MIRROR-worker (more than one replica)" \
    k -n "$NS" get "poddisruptionbudget/$MIRROR-worker" -o name
  note "scaled: $(k -n "$NS" get deployment "$MIRROR-worker" -o jsonpath='{.status.readyReplicas}') ready workers and a PodDisruptionBudget"
}

delete_mirror() {
  log "deleting kmirror/$MIRROR"
  k -n "$NS" delete "kmirror/$MIRROR" --timeout=2m
  k -n "$NS" wait --for=delete "deployment/$MIRROR-worker" "configmap/$MIRROR-worker-config" \
    "service/$MIRROR-worker-metrics" "serviceaccount/$MIRROR-worker" "poddisruptionbudget/$MIRROR-worker" --timeout=2m
  k -n "$NS" wait --for=delete pod -l "$WORKER_SELECTOR" --timeout=2m
  note "deleted: the Deployment, ConfigMap, Service, ServiceAccount and PodDisruptionBudget of $MIRROR went with it, and its workers"
}

diagnostics() {
  log "diagnostics"
  k -n "$NS" describe kmirror || true
  k -n "$NS" get kmirror,deployments,pods,configmaps,services -o wide || true
  log "operator logs"
  k -n "$NS" logs deployment/kafka-mirror-operator --all-containers --tail=300 || true
  log "worker logs"
  k -n "$NS" logs -l "$WORKER_SELECTOR" --all-containers --prefix --tail=200 --max-log-requests=10 || true
  log "events"
  k get events -A --sort-by=.lastTimestamp 2>/dev/null | tail -n 60 || true
}

print_summary() {
  local line
  log "summary"
  for line in ${SUMMARY[@]+"${SUMMARY[@]}"}; do printf '    %s\n' "$line"; done
}

on_exit() {
  local status=$?
  ((status == 0)) || diagnostics
  print_summary
  if ((status == 0)); then printf '\ne2e: passed\n'; else printf '\ne2e: FAILED (exit %d)\n' "$status"; fi
  if ((CREATED_CLUSTER)) && [[ ${KEEP_CLUSTER:-0} != 1 ]]; then
    kind delete cluster --name "$CLUSTER" || true
  fi
  if [[ -n $WORK ]]; then rm -rf "$WORK"; fi
  exit "$status"
}

main() {
  require_tools
  trap on_exit EXIT
  WORK="$(mktemp -d)"
  create_cluster
  check_crd
  build_images
  start_kafka
  create_topic
  install_operator
  log "applying kmirror/$MIRROR"
  k apply -f tests/e2e/mirror.yaml

  log "batch 1: $RECORDS records with 1 worker"
  produce 1 "$RECORDS"
  local produced_at
  produced_at=$(now)
  wait_ready
  wait_caught_up "$produced_at"
  check_target "1 worker" "$RECORDS"

  log "batch 2: $RECORDS records while scaling to 3 workers"
  scale_to_three
  produce $((RECORDS + 1)) "$RECORDS"
  produced_at=$(now)
  wait_three_workers
  wait_ready
  wait_caught_up "$produced_at"
  check_target "3 workers" $((2 * RECORDS))

  delete_mirror
}

main "$@"
