# shellcheck shell=bash
# free_ports N: prints N free TCP ports on 127.0.0.1, separated by spaces. Every socket stays bound until all N
# are chosen, so none is handed out twice. Sourced by tests/kafka/cluster.sh and tests/control-plane/up.sh.
free_ports() {
  python3 - "$1" <<'PY'
import socket, sys
held = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    held.append(s)
print(" ".join(str(s.getsockname()[1]) for s in held))
PY
}
