#!/usr/bin/env bash
# Makes sure a RabbitMQ broker answers on the test URL's port, and says how:
# a running one is used, else the installed one is started, else it is installed from
# Debian's packages and started. Fails, loudly, when none can be had.
set -euo pipefail

url="${FABRIC_TEST_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}"
hostport="${url#*://}"; hostport="${hostport#*@}"; hostport="${hostport%%/*}"; hostport="${hostport%%\?*}"
host="${hostport%%:*}"; port="${hostport##*:}"
[ "$port" = "$hostport" ] && port=5672

say() { printf 'ci/broker.sh: %s\n' "$*"; }
reachable() { timeout 2 bash -c "exec 3<>/dev/tcp/$host/$port" 2>/dev/null; }
wait_for_broker() {
  # `rabbitmqctl await_startup` waits for the node; the port check confirms AMQP listens.
  timeout 120 rabbitmqctl await_startup >/dev/null 2>&1 || true
  for _ in $(seq 1 60); do
    reachable && return 0
    sleep 1
  done
  return 1
}

if reachable; then
  say "using the broker already running at $host:$port"
  exit 0
fi

case "$host" in
  127.0.0.1|localhost|::1) ;;
  *) say "no broker answers at $host:$port, and it is not local: cannot start one there"; exit 1 ;;
esac

if ! command -v rabbitmq-server >/dev/null 2>&1; then
  say "no broker at $host:$port and RabbitMQ is not installed: installing rabbitmq-server from Debian's packages"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq rabbitmq-server >/dev/null
  say "installed $(dpkg-query -W -f='${Version}' rabbitmq-server 2>/dev/null || echo rabbitmq-server)"
  # The package may have started it already (where an init system runs).
  if reachable; then say "the package started the broker at $host:$port"; exit 0; fi
fi

say "starting the installed RabbitMQ (rabbitmq-server -detached)"
rabbitmq-server -detached >/dev/null 2>&1 || true
if wait_for_broker; then
  say "started RabbitMQ; it answers at $host:$port"
else
  say "RabbitMQ did not come up at $host:$port within the time allowed; see /var/log/rabbitmq"
  exit 1
fi
