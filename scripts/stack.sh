#!/usr/bin/env bash
# Starts or stops a local Baton stack without Docker: redis-server and the tansu broker on
# loopback (skipped when BATON_REDIS_URL / BATON_KAFKA_BROKERS point elsewhere), then the
# gateway, a worker, the scheduler and the reaper. State, logs and pid files live in .baton/.
#
#   scripts/stack.sh up      build and start everything, wait until every service is ready
#   scripts/stack.sh down    stop services (SIGTERM, bounded drain), then the broker and Redis
#   scripts/stack.sh status  show what runs
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
STATE="$ROOT/.baton"
# BATON_PROFILE: debug (or dev, the default) or release; cargo calls the debug profile "dev".
case "${BATON_PROFILE:-debug}" in
  debug|dev) CARGO_PROFILE=dev; PROFILE_DIR=debug ;;
  *) CARGO_PROFILE="$BATON_PROFILE"; PROFILE_DIR="$BATON_PROFILE" ;;
esac
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/$PROFILE_DIR"
REDIS_PORT="${BATON_DEV_REDIS_PORT:-16379}"
BROKER_PORT="${BATON_DEV_BROKER_PORT:-19092}"
export BATON_REDIS_URL="${BATON_REDIS_URL:-redis://127.0.0.1:$REDIS_PORT}"
export BATON_KAFKA_BROKERS="${BATON_KAFKA_BROKERS:-127.0.0.1:$BROKER_PORT}"
export BATON_TELEMETRY_LOG_LEVEL="${BATON_TELEMETRY_LOG_LEVEL:-info,librdkafka=warn,rdkafka=warn}"
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
SERVICES="gateway worker scheduler reaper"
declare -A OPS=([gateway]=9460 [worker]=9461 [scheduler]=9462 [reaper]=9463)

log() { printf '==> %s\n' "$*" >&2; }
alive() { [ -f "$STATE/$1.pid" ] && kill -0 "$(cat "$STATE/$1.pid")" 2>/dev/null; }

wait_port() { # name port
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$2") 2>/dev/null && return 0
    sleep 0.1
  done
  log "$1 did not open port $2; see $STATE/$1.log"; exit 1
}

wait_ready() { # service port
  for _ in $(seq 1 150); do
    if { exec 3<>"/dev/tcp/127.0.0.1/$2"; } 2>/dev/null; then
      printf 'GET /readyz HTTP/1.0\r\n\r\n' >&3
      if head -1 <&3 | grep -q ' 200 '; then exec 3>&-; return 0; fi
      exec 3>&-
    fi
    sleep 0.2
  done
  log "$1 not ready after 30 s; see $STATE/$1.log"; exit 1
}

start() { # name command...
  local name=$1; shift
  if alive "$name"; then log "$name already running"; return; fi
  ( cd "$STATE" && exec "$@" ) >>"$STATE/$name.log" 2>&1 &
  echo $! >"$STATE/$name.pid"
}

up() {
  mkdir -p "$STATE"
  bash scripts/install-deps.sh
  cargo build --workspace --bins --profile "$CARGO_PROFILE"
  if [ "$BATON_REDIS_URL" = "redis://127.0.0.1:$REDIS_PORT" ]; then
    start redis redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly yes --dir "$STATE"
    wait_port redis "$REDIS_PORT"
  fi
  if [ "$BATON_KAFKA_BROKERS" = "127.0.0.1:$BROKER_PORT" ]; then
    start broker tansu broker --listener-url "tcp://127.0.0.1:$BROKER_PORT" \
      --advertised-listener-url "tcp://127.0.0.1:$BROKER_PORT" --storage-engine sqlite://tansu.db
    wait_port broker "$BROKER_PORT"
  fi
  for s in $SERVICES; do
    upper=$(echo "$s" | tr a-z A-Z)
    start "$s" env "BATON_${upper}_OPS_LISTEN=127.0.0.1:${OPS[$s]}" "$BIN/baton-$s"
  done
  for s in $SERVICES; do wait_ready "$s" "${OPS[$s]}"; done
  log "stack up: gRPC 127.0.0.1:50051, metrics on :9460-9463/metrics, logs in $STATE/"
}

down() {
  for s in reaper scheduler worker gateway broker redis; do
    if alive "$s"; then
      kill -TERM "$(cat "$STATE/$s.pid")" 2>/dev/null || true
      for _ in $(seq 1 100); do alive "$s" || break; sleep 0.1; done
      alive "$s" && kill -KILL "$(cat "$STATE/$s.pid")" 2>/dev/null || true
      log "stopped $s"
    fi
    rm -f "$STATE/$s.pid"
  done
}

status() {
  for s in redis broker $SERVICES; do
    if alive "$s"; then echo "$s: running (pid $(cat "$STATE/$s.pid"))"; else echo "$s: stopped"; fi
  done
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
