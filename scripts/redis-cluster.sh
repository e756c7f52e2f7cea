#!/usr/bin/env bash
# A Redis Cluster on loopback for trying Baton on a cluster: 3 primaries with a replica each
# (redis-server --cluster-enabled yes, joined by redis-cli --cluster create), AOF with
# appendfsync always, cluster-node-timeout 2000 ms. State and logs in .baton/redis-cluster/.
#
#   scripts/redis-cluster.sh up     start it and print the environment that points Baton at it
#   scripts/redis-cluster.sh down   stop it (SIGTERM), keeping its data
#   scripts/redis-cluster.sh purge  stop it and delete its data
#
# Then:  eval "$(scripts/redis-cluster.sh env)"; BATON_REDIS_MIN_REPLICAS_ACKED=1 scripts/stack.sh up
set -euo pipefail
cd "$(dirname "$0")/.."
STATE="$(pwd)/.baton/redis-cluster"
PORTS=(${BATON_CLUSTER_PORTS:-17001 17002 17003 17004 17005 17006})

env_lines() {
  local seeds=""
  for p in "${PORTS[@]:1}"; do seeds+="${seeds:+, }\"redis://127.0.0.1:$p\""; done
  echo "export BATON_REDIS_URL=redis://127.0.0.1:${PORTS[0]}"
  echo "export BATON_REDIS_CLUSTER=true"
  echo "export BATON_REDIS_CLUSTER_SEEDS='[$seeds]'"
}

up() {
  command -v redis-server >/dev/null || bash scripts/install-deps.sh
  mkdir -p "$STATE"
  for p in "${PORTS[@]}"; do
    mkdir -p "$STATE/$p"
    if ! redis-cli -p "$p" ping >/dev/null 2>&1; then
      redis-server --port "$p" --bind 127.0.0.1 --cluster-enabled yes --cluster-config-file nodes.conf \
        --cluster-node-timeout 2000 --appendonly yes --appendfsync always --save "" \
        --dir "$STATE/$p" --daemonize yes --logfile "$STATE/$p/redis.log" --pidfile "$STATE/$p/redis.pid"
    fi
  done
  for p in "${PORTS[@]}"; do
    for _ in $(seq 1 50); do redis-cli -p "$p" ping >/dev/null 2>&1 && break; sleep 0.1; done
  done
  if ! redis-cli -p "${PORTS[0]}" cluster info | grep -q 'cluster_state:ok'; then
    redis-cli --cluster create $(printf '127.0.0.1:%s ' "${PORTS[@]}") --cluster-replicas 1 --cluster-yes >/dev/null
    for _ in $(seq 1 100); do
      redis-cli -p "${PORTS[0]}" cluster info | grep -q 'cluster_state:ok' && break
      sleep 0.2
    done
  fi
  redis-cli -p "${PORTS[0]}" cluster info | grep -q 'cluster_state:ok' || { echo "the cluster did not form" >&2; exit 1; }
  echo "Redis Cluster up on ports ${PORTS[*]}; point Baton at it with:" >&2
  env_lines
}

down() {
  for p in "${PORTS[@]}"; do redis-cli -p "$p" shutdown nosave >/dev/null 2>&1 || true; done
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  purge) down; rm -rf "$STATE" ;;
  env) env_lines ;;
  *) echo "usage: $0 up|down|purge|env" >&2; exit 2 ;;
esac
