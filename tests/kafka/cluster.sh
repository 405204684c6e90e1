#!/usr/bin/env bash
# Apache Kafka clusters (KRaft, each node broker and controller) on free loopback ports, for the tests and for a
# person exploring. The Kafka comes from tests/kafka/install.sh (Maven Central, cached in ~/.cache/kafka-mirror).
#
#   bash tests/kafka/cluster.sh start --name src [--brokers 1|3] [options]   prints the bootstrap servers
#   bash tests/kafka/cluster.sh stop --name src [--kill]
#   bash tests/kafka/cluster.sh kill-broker --name src --broker N            SIGKILL node N (1..brokers)
#   bash tests/kafka/cluster.sh start-broker --name src --broker N           start node N again, wait for it
#   bash tests/kafka/cluster.sh add-scram-user --name src --mechanism SCRAM-SHA-256 --user U --password P
#   bash tests/kafka/cluster.sh env --name src                               the bootstrap servers again
#
# A cluster lives in --dir DIR, or with --name in $KAFKA_MIRROR_CLUSTERS/NAME (default
# ${TMPDIR:-/tmp}/kafka-mirror-clusters/NAME). Every broker has these listeners, each on its own port:
#   PLAINTEXT       no authentication; advertised as --advertised-host when given (a name that may resolve
#                   nowhere: the HDInsight FQDN case), else 127.0.0.1
#   INTERNAL        plaintext, always advertised as 127.0.0.1: brokers talk to each other here, and so can a
#                   test's own clients when PLAINTEXT advertises a name that does not resolve
#   SSL             TLS with ssl.client.auth=required: mutual TLS, client certificates signed by the test CA
#   SASL_SSL        SASL over TLS: PLAIN (--plain-user), SCRAM-SHA-256 and SCRAM-SHA-512 (--scram-user,
#                   add-scram-user)
#   SASL_PLAINTEXT  the same mechanisms without TLS
# `start` options:
#   --brokers N              1 or 3 (default 1); internal topics get min(N, 3) replicas
#   --pki DIR                ca.crt (the CA clients' certificates must chain to) and broker.pem (the broker's
#                            PKCS#8 key and certificate chain); default: a test PKI made with openssl in DIR/pki,
#                            with client.crt/client.key for mutual TLS
#   --plain-user NAME:PASSWORD       a SASL/PLAIN user (repeatable)
#   --scram-user MECHANISM:NAME:PASSWORD   a SCRAM user stored at format time (repeatable)
#   --advertised-host HOST   the PLAINTEXT listener's advertised host
#   --config KEY=VALUE       a further broker property (repeatable)
#   --owner-pid PID          stop the cluster and delete DIR once process PID is gone (what a test fixture
#                            passes, so a panicking or killed test leaves no broker behind)
# JVM: KMIRROR_KAFKA_HEAP (default -Xms64m -Xmx512m) and KMIRROR_KAFKA_JVM_OPTS (default: serial GC and the
# client compiler only, which start fastest and leave the 2 cores of the build machines to the tests).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
die() { echo "tests/kafka/cluster.sh: $*" >&2; exit 1; }
say() { echo "$*" >&2; }

LISTENERS=(INTERNAL PLAINTEXT SSL SASL_SSL SASL_PLAINTEXT CONTROLLER)

cmd="${1:-}"
[ -n "$cmd" ] || die "usage: cluster.sh start|stop|kill-broker|start-broker|add-scram-user|env --name NAME|--dir DIR [...]"
shift
dir="" brokers=1 pki="" advertised="" owner="" hard=false node="" mechanism="" user="" password=""
plain_users=() scram_users=() extra_config=()
while [ $# -gt 0 ]; do
  case "$1" in
    --name) dir="${KAFKA_MIRROR_CLUSTERS:-${TMPDIR:-/tmp}/kafka-mirror-clusters}/$2"; shift 2 ;;
    --dir) dir="$2"; shift 2 ;;
    --brokers) brokers="$2"; shift 2 ;;
    --pki) pki="$2"; shift 2 ;;
    --plain-user) plain_users+=("$2"); shift 2 ;;
    --scram-user) scram_users+=("$2"); shift 2 ;;
    --advertised-host) advertised="$2"; shift 2 ;;
    --config) extra_config+=("$2"); shift 2 ;;
    --owner-pid) owner="$2"; shift 2 ;;
    --kill) hard=true; shift ;;
    --broker) node="$2"; shift 2 ;;
    --mechanism) mechanism="$2"; shift 2 ;;
    --user) user="$2"; shift 2 ;;
    --password) password="$2"; shift 2 ;;
    *) die "unknown argument '$1'" ;;
  esac
done
[ -n "$dir" ] || die "$cmd needs --name NAME or --dir DIR"

java_command() {
  local libs
  libs="$(bash "$here/install.sh" | tail -n 1)"
  # shellcheck disable=SC2206 # the JVM options are a list of words on purpose
  JAVA=(java ${KMIRROR_KAFKA_HEAP:--Xms64m -Xmx512m}
    ${KMIRROR_KAFKA_JVM_OPTS:--XX:+UseSerialGC -XX:TieredStopAtLevel=1 -XX:-UsePerfData -Djava.awt.headless=true}
    "-Dlog4j2.configurationFile=$here/log4j2.properties" -cp "$libs/*")
}

# Free loopback ports (free_ports N), shared with the other script that starts servers for the tests.
# shellcheck source=tests/free-ports.sh
source "$here/../free-ports.sh"

# A test PKI: a CA, a broker certificate for localhost/127.0.0.1 (and the advertised host), a client
# certificate for mutual TLS. Keys are PKCS#8, the form Kafka's PEM key stores read.
make_pki() {
  local out="$1" san="DNS:localhost,IP:127.0.0.1"
  [ -z "$advertised" ] || san="$san,DNS:$advertised"
  mkdir -p "$out"
  (
    cd "$out"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 -subj "/CN=kafka-mirror test CA" \
      -keyout ca.key -out ca.crt 2>/dev/null
    for who in broker client; do
      openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=kafka-mirror-$who" \
        -keyout "$who.key" -out "$who.csr" 2>/dev/null
    done
    printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\n' "$san" >broker.ext
    printf 'extendedKeyUsage=clientAuth\n' >client.ext
    for who in broker client; do
      openssl x509 -req -in "$who.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 30 -extfile "$who.ext" \
        -out "$who.crt" 2>/dev/null
    done
    cat broker.key broker.crt >broker.pem
    rm -f ./*.csr ./*.ext ca.srl
  )
}

# The JAAS line of one SASL listener: PLAIN with its users, SCRAM with users kept in the cluster metadata.
jaas_lines() {
  local listener="$1" users="" entry
  for entry in "${plain_users[@]+"${plain_users[@]}"}"; do
    users="$users user_${entry%%:*}=\"${entry#*:}\""
  done
  echo "listener.name.$listener.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required$users;"
  for m in scram-sha-256 scram-sha-512; do
    echo "listener.name.$listener.$m.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;"
  done
}

port_of() { sed -n "s/^$2=//p" "$dir/ports-$1"; }

write_properties() {
  local n="$1" voters="$2" replicas="$3" min_isr="$4" host listeners="" advertised_listeners="" l
  host="${advertised:-127.0.0.1}"
  for l in "${LISTENERS[@]}"; do
    listeners="$listeners${listeners:+,}$l://127.0.0.1:$(port_of "$n" "$l")"
    case "$l" in
      CONTROLLER) ;;
      PLAINTEXT) advertised_listeners="$advertised_listeners${advertised_listeners:+,}$l://$host:$(port_of "$n" "$l")" ;;
      *) advertised_listeners="$advertised_listeners${advertised_listeners:+,}$l://127.0.0.1:$(port_of "$n" "$l")" ;;
    esac
  done
  {
    echo "process.roles=broker,controller"
    echo "node.id=$n"
    echo "controller.quorum.voters=$voters"
    echo "controller.listener.names=CONTROLLER"
    echo "inter.broker.listener.name=INTERNAL"
    echo "listeners=$listeners"
    echo "advertised.listeners=$advertised_listeners"
    echo "listener.security.protocol.map=INTERNAL:PLAINTEXT,PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_SSL:SASL_SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,CONTROLLER:PLAINTEXT"
    echo "log.dirs=$dir/data-$n"
    # Like HDInsight: topics are created on purpose, never by a client's first request.
    echo "auto.create.topics.enable=false"
    echo "offsets.topic.replication.factor=$replicas"
    echo "offsets.topic.num.partitions=8"
    echo "transaction.state.log.replication.factor=$replicas"
    echo "transaction.state.log.min.isr=$min_isr"
    echo "transaction.state.log.num.partitions=8"
    echo "share.coordinator.state.topic.replication.factor=$replicas"
    echo "share.coordinator.state.topic.min.isr=$min_isr"
    echo "group.initial.rebalance.delay.ms=0"
    # The test records carry timestamps from 2019 (kafka_mirror_samples, so a copy that re-stamps them is
    # caught): Kafka's default time retention (7 days, first applied 30 s after start) would delete them while
    # a test runs. Tests that want records gone say so (DeleteRecords, a topic's retention.ms).
    echo "log.retention.ms=-1"
    # A killed broker is fenced (and its partitions' leadership moves) after 3 s instead of 9 s.
    echo "broker.heartbeat.interval.ms=500"
    echo "broker.session.timeout.ms=3000"
    echo "ssl.keystore.type=PEM"
    echo "ssl.keystore.location=$dir/broker-pki/broker.pem"
    echo "ssl.truststore.type=PEM"
    echo "ssl.truststore.location=$dir/broker-pki/ca.crt"
    echo "listener.name.ssl.ssl.client.auth=required"
    echo "sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512"
    jaas_lines sasl_ssl
    jaas_lines sasl_plaintext
    for entry in "${extra_config[@]+"${extra_config[@]}"}"; do echo "$entry"; done
  } >"$dir/server-$n.properties"
}

bootstrap_of() {
  local l="$1" n host list=""
  for n in $(seq 1 "$(cat "$dir/brokers")"); do
    host=127.0.0.1
    [ "$l" != PLAINTEXT ] || host="$(cat "$dir/advertised-host")"
    list="$list${list:+,}$host:$(port_of "$n" "$l")"
  done
  echo "$list"
}

print_env() {
  local l
  for l in "${LISTENERS[@]}"; do
    [ "$l" = CONTROLLER ] || echo "$l=$(bootstrap_of "$l")"
  done
  echo "PKI=$(cat "$dir/pki-dir")"
}

# Starts node N in the background and waits until it says it started (or fails with its log).
launch() {
  local n="$1"
  local log="$dir/broker-$n.log"
  java_command
  : >"$log"
  nohup "${JAVA[@]}" kafka.Kafka "$dir/server-$n.properties" >>"$log" 2>&1 </dev/null &
  echo $! >"$dir/pid-$n"
}

wait_started() {
  local n="$1" deadline=$((SECONDS + 90))
  local log="$dir/broker-$n.log"
  until grep -q 'Kafka Server started' "$log"; do
    if ! kill -0 "$(cat "$dir/pid-$n")" 2>/dev/null; then
      die "broker $n of $dir exited instead of starting; its log:
$(tail -n 40 "$log")"
    fi
    [ $SECONDS -lt $deadline ] || die "broker $n of $dir did not start within 90 s; its log:
$(tail -n 40 "$log")"
    sleep 0.1
  done
}

kill_node() {
  local n="$1" signal="$2" pid
  [ -e "$dir/pid-$n" ] || return 0
  pid="$(cat "$dir/pid-$n")"
  kill "-$signal" "$pid" 2>/dev/null || true
  for _ in $(seq 1 300); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$dir/pid-$n"
}

case "$cmd" in
  start)
    case "$brokers" in 1|3) ;; *) die "--brokers must be 1 or 3, not '$brokers'" ;; esac
    command -v openssl >/dev/null || die "openssl is not on PATH: the test PKI needs it"
    [ ! -e "$dir/brokers" ] || die "$dir already holds a cluster: stop it first"
    mkdir -p "$dir"
    echo "$brokers" >"$dir/brokers"
    echo "${advertised:-127.0.0.1}" >"$dir/advertised-host"
    if [ -z "$pki" ]; then pki="$dir/pki"; make_pki "$pki"; fi
    [ -e "$pki/ca.crt" ] && [ -e "$pki/broker.pem" ] || die "--pki $pki needs ca.crt and broker.pem"
    pki="$(cd "$pki" && pwd)"
    echo "$pki" >"$dir/pki-dir"
    ln -sfn "$pki" "$dir/broker-pki"
    read -r -a ports <<<"$(free_ports $((brokers * ${#LISTENERS[@]})))"
    voters=""
    for n in $(seq 1 "$brokers"); do
      for i in "${!LISTENERS[@]}"; do
        echo "${LISTENERS[$i]}=${ports[$(((n - 1) * ${#LISTENERS[@]} + i))]}"
      done >"$dir/ports-$n"
      voters="$voters${voters:+,}$n@127.0.0.1:$(port_of "$n" CONTROLLER)"
    done
    replicas=$((brokers < 3 ? brokers : 3))
    min_isr=$((brokers < 2 ? 1 : 2))
    for n in $(seq 1 "$brokers"); do write_properties "$n" "$voters" "$replicas" "$min_isr"; done
    java_command
    cluster_id="$("${JAVA[@]}" kafka.tools.StorageTool random-uuid)"
    scram_args=()
    for entry in "${scram_users[@]+"${scram_users[@]}"}"; do
      IFS=: read -r m name pass <<<"$entry"
      scram_args+=(--add-scram "$m=[name=$name,password=$pass]")
    done
    # Formatting is a JVM start per node: done side by side.
    for n in $(seq 1 "$brokers"); do
      "${JAVA[@]}" kafka.tools.StorageTool format -t "$cluster_id" -c "$dir/server-$n.properties" \
        "${scram_args[@]+"${scram_args[@]}"}" >"$dir/format-$n.log" 2>&1 &
    done
    for n in $(seq 1 "$brokers"); do
      wait -n || die "formatting $dir failed: $(cat "$dir"/format-*.log)"
    done
    for n in $(seq 1 "$brokers"); do launch "$n"; done
    if [ -n "$owner" ]; then
      # The watchdog outlives this script (setsid), not the owner.
      setsid nohup bash "$0" _watch --dir "$dir" --owner-pid "$owner" >/dev/null 2>&1 </dev/null &
    fi
    for n in $(seq 1 "$brokers"); do wait_started "$n"; done
    say "cluster $dir: $brokers broker(s) started"
    print_env | tee "$dir/cluster.env"
    ;;
  stop)
    signal=TERM
    ! $hard || signal=KILL
    if [ -e "$dir/brokers" ]; then
      for n in $(seq 1 "$(cat "$dir/brokers")"); do kill_node "$n" "$signal" & done
      wait
    fi
    ;;
  kill-broker)
    [ -n "$node" ] || die "kill-broker needs --broker N"
    [ -e "$dir/pid-$node" ] || die "broker $node of $dir is not running"
    kill_node "$node" KILL
    ;;
  start-broker)
    [ -n "$node" ] || die "start-broker needs --broker N"
    [ -e "$dir/server-$node.properties" ] || die "$dir has no broker $node"
    [ ! -e "$dir/pid-$node" ] || ! kill -0 "$(cat "$dir/pid-$node")" 2>/dev/null || die "broker $node of $dir is running"
    launch "$node"
    wait_started "$node"
    ;;
  add-scram-user)
    [ -n "$mechanism" ] && [ -n "$user" ] && [ -n "$password" ] || die "add-scram-user needs --mechanism, --user and --password"
    java_command
    "${JAVA[@]}" org.apache.kafka.tools.ConfigCommand --bootstrap-server "$(bootstrap_of INTERNAL)" --alter \
      --add-config "$mechanism=[password=$password]" --entity-type users --entity-name "$user" >&2
    ;;
  env)
    print_env
    ;;
  _watch)
    while kill -0 "$owner" 2>/dev/null && [ -e "$dir/brokers" ]; do sleep 1; done
    if [ -e "$dir/brokers" ]; then
      bash "$0" stop --dir "$dir" --kill
      rm -rf "$dir"
    fi
    ;;
  *) die "unknown command '$cmd'" ;;
esac
