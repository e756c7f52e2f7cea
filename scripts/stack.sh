#!/usr/bin/env bash
# Starts or stops a local Baton stack without Docker: redis-server and the tansu broker on
# loopback (skipped when BATON_REDIS_URL / BATON_KAFKA_BROKERS point elsewhere), then the
# gateway, a worker, the scheduler and the reaper. State, logs and pid files live in .baton/.
#
#   scripts/stack.sh up      build and start everything, wait until every service is ready
#   scripts/stack.sh down    stop services (SIGTERM, bounded drain), then the broker and Redis
#   scripts/stack.sh status  probe what runs: Redis PING, a Kafka ApiVersions request to the broker,
#                            each service's /readyz (with its reason); exit 1 if anything is unhealthy
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
STATE="$ROOT/.baton"
# BATON_DEV_REDIS_FSYNC: Redis appendfsync, everysec (default: a crash of this machine can lose
# the last second) or always (nothing acknowledged is lost); see docs/failure-model.md.
# BATON_DEV_REDIS_REPLICA=1: also start a replica of that Redis (port + 1), so that
# BATON_REDIS_MIN_REPLICAS_ACKED=1 has a replica to wait for (docs/benchmarks.md, WAIT cost).
# BATON_DEV_BROKER_INDEX=0: leave tansu's database without the header index (index_broker_db),
# to measure what it is for (loadtest/scripts/series.sh).
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
# The worker's stable name: started again under it, it takes over from its killed instance at once.
export BATON_WORKER_NAME="${BATON_WORKER_NAME:-worker-1}"
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
SERVICES="gateway worker scheduler reaper"
declare -A OPS=([gateway]=9460 [worker]=9461 [scheduler]=9462 [reaper]=9463)

log() { printf '==> %s\n' "$*" >&2; }
# A process killed a moment ago can linger as a zombie, which `kill -0` still finds: not alive.
alive() {
  [ -f "$STATE/$1.pid" ] || return 1
  local pid; pid=$(cat "$STATE/$1.pid")
  kill -0 "$pid" 2>/dev/null && ! ps -o stat= -p "$pid" | grep -q '^Z'
}

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

# tansu 0.6.0's SQLite schema has no index on a record's headers (table `header`, looked up by
# topition and offset for every record fetched): each fetch scans every header ever written, and
# the broker slows as its database grows (docs/benchmarks.md, consecutive series). This adds the
# index once tansu has made its tables; a schema change is safe while it runs (SQLite re-prepares).
index_broker_db() { # path of tansu's database
  python3 - "$1" <<'PY' || { log "cannot index the broker's database $1"; exit 1; }
import sqlite3, sys, time
for _ in range(100):
    try:
        db = sqlite3.connect(sys.argv[1], timeout=5)
        if db.execute("select 1 from sqlite_master where type = 'table' and name = 'header'").fetchone():
            db.execute("create index if not exists baton_header_record on header (topition, offset_id)")
            db.commit()
            sys.exit(0)
        db.close()
    except sqlite3.OperationalError:
        pass
    time.sleep(0.1)
sys.exit("no header table after 10 s")
PY
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
    # everysec: a crash of this machine can lose the last second of writes (docs/failure-model.md).
    start redis redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly yes \
      --appendfsync "${BATON_DEV_REDIS_FSYNC:-everysec}" --dir "$STATE"
    wait_port redis "$REDIS_PORT"
    if [ "${BATON_DEV_REDIS_REPLICA:-0}" = 1 ]; then
      mkdir -p "$STATE/replica"
      start redis-replica redis-server --port "$((REDIS_PORT + 1))" --bind 127.0.0.1 --save "" \
        --appendonly yes --appendfsync "${BATON_DEV_REDIS_FSYNC:-everysec}" --dir "$STATE/replica" \
        --replicaof 127.0.0.1 "$REDIS_PORT"
      wait_port redis-replica "$((REDIS_PORT + 1))"
      for _ in $(seq 1 100); do # until the replica has synced (WAIT counts only synced replicas)
        redis-cli -p "$((REDIS_PORT + 1))" info replication | grep -q 'master_link_status:up' && break
        sleep 0.1
      done
    fi
  fi
  if [ "$BATON_KAFKA_BROKERS" = "127.0.0.1:$BROKER_PORT" ]; then
    start broker tansu broker --listener-url "tcp://127.0.0.1:$BROKER_PORT" \
      --advertised-listener-url "tcp://127.0.0.1:$BROKER_PORT" --storage-engine sqlite://tansu.db
    wait_port broker "$BROKER_PORT"
    [ "${BATON_DEV_BROKER_INDEX:-1}" = 0 ] || index_broker_db "$STATE/tansu.db"
  fi
  for s in $SERVICES; do
    upper=$(echo "$s" | tr a-z A-Z)
    start "$s" env "BATON_${upper}_OPS_LISTEN=127.0.0.1:${OPS[$s]}" "$BIN/baton-$s"
  done
  for s in $SERVICES; do wait_ready "$s" "${OPS[$s]}"; done
  log "stack up: gRPC 127.0.0.1:50051, metrics on :9460-9463/metrics, logs in $STATE/"
}

down() {
  for s in reaper scheduler worker gateway broker redis-replica redis; do
    if alive "$s"; then
      kill -TERM "$(cat "$STATE/$s.pid")" 2>/dev/null || true
      for _ in $(seq 1 100); do alive "$s" || break; sleep 0.1; done
      alive "$s" && kill -KILL "$(cat "$STATE/$s.pid")" 2>/dev/null || true
      log "stopped $s"
    fi
    rm -f "$STATE/$s.pid"
  done
}

# host:port of a redis:// URL or of the first broker of a bootstrap list.
redis_addr() { local a=${BATON_REDIS_URL#*://}; a=${a##*@}; a=${a%%/*}; echo "${a:-127.0.0.1:6379}"; }
broker_addr() { local a=${BATON_KAFKA_BROKERS%%,*}; echo "${a#*://}"; }

# Opens fd 3 to host:port, giving up after 3 s (an unroutable address would hang for minutes).
connect3() { # host port
  timeout 3 bash -c ': <>"/dev/tcp/$1/$2"' _ "$1" "$2" 2>/dev/null && { exec 3<>"/dev/tcp/$1/$2"; } 2>/dev/null
}

# Redis answers PING with +PONG.
probe_redis() { # host port
  connect3 "$1" "$2" || { echo "nothing answers on $1:$2"; return 1; }
  printf 'PING\r\n' >&3
  local reply=""; IFS= read -r -t 3 reply <&3 || true; exec 3>&-
  case "$reply" in +PONG*) echo "answers PING on $1:$2" ;; "") echo "no answer to PING on $1:$2"; return 1 ;;
    *) echo "PING on $1:$2 answered: ${reply%$'\r'}"; return 1 ;; esac
}

# A real Kafka request: ApiVersions v0 (api key 18, correlation id 7, client id baton-status);
# the broker must answer with the same correlation id and error code 0.
probe_broker() { # host port
  connect3 "$1" "$2" || { echo "nothing answers on $1:$2"; return 1; }
  printf '\x00\x00\x00\x16\x00\x12\x00\x00\x00\x00\x00\x07\x00\x0cbaton-status' >&3
  local head; head=$(timeout 3 head -c 10 <&3 | od -An -tx1 | tr -d ' \n'); exec 3>&-
  case "$head" in
    ????????000000070000) echo "answers a Kafka ApiVersions request on $1:$2" ;;
    "") echo "port $1:$2 open but no answer to a Kafka ApiVersions request within 3 s"; return 1 ;;
    *) echo "unexpected answer to a Kafka ApiVersions request on $1:$2 (${head})"; return 1 ;;
  esac
}

# GET /readyz: prints "ready" or the service's reason ("not ready: kafka unreachable, ...").
probe_ready() { # port
  connect3 127.0.0.1 "$1" || { echo "nothing listens on ops port $1"; return 1; }
  printf 'GET /readyz HTTP/1.0\r\n\r\n' >&3
  local answer; answer=$(timeout 3 cat <&3 | tr -d '\r'); exec 3>&-
  local body; body=$(printf '%s\n' "$answer" | sed '1,/^$/d' | head -1)
  case "$(printf '%s\n' "$answer" | head -1)" in
    *" 200 "*) echo "ready (:$1)" ;;
    "") echo "no answer on ops port $1 within 3 s"; return 1 ;;
    *) echo "${body:-not ready} (:$1)"; return 1 ;;
  esac
}

status() {
  local bad=0 up=0 infra_bad="" line hints=()
  local redis; redis=$(redis_addr)
  local broker; broker=$(broker_addr)
  local own_redis="" own_broker=""
  [ "$BATON_REDIS_URL" = "redis://127.0.0.1:$REDIS_PORT" ] && own_redis=1
  [ "$BATON_KAFKA_BROKERS" = "127.0.0.1:$BROKER_PORT" ] && own_broker=1
  for s in redis broker $SERVICES; do
    local proc ok=1
    if alive "$s"; then proc="running (pid $(cat "$STATE/$s.pid"))"; up=1
    elif [ -f "$STATE/$s.pid" ]; then proc="exited"; ok=0
    elif { [ "$s" = redis ] && [ -z "$own_redis" ]; } || { [ "$s" = broker ] && [ -z "$own_broker" ]; }; then
      proc="external"
    else proc="stopped"; ok=0
    fi
    case "$s" in
      redis) line=$(probe_redis "${redis%:*}" "${redis##*:}") || ok=0 ;;
      broker) line=$(probe_broker "${broker%:*}" "${broker##*:}") || ok=0 ;;
      *) if [ "$proc" = stopped ]; then line="-"; else line=$(probe_ready "${OPS[$s]}") || ok=0; fi ;;
    esac
    printf '%-10s %-22s %s\n' "$s:" "$proc" "$line"
    [ "$ok" = 1 ] && continue
    bad=1
    case "$s" in redis|broker) infra_bad=1 ;; esac
    case "$proc" in
      running*) case "$s" in
          redis|broker) hints+=("$s process alive but not answering: scripts/stack.sh down && scripts/stack.sh up") ;;
          # "kafka/redis unreachable" when the broker or Redis already failed above: that hint covers it.
          *) case "$line" in *unreachable*) [ -n "$infra_bad" ] && continue ;; esac
            hints+=("$s runs but is not ready (${line% (*}): see $STATE/$s.log") ;;
        esac ;;
      external) if [ "$s" = redis ]; then hints+=("Redis at BATON_REDIS_URL=$BATON_REDIS_URL is not answering")
        else hints+=("the broker at BATON_KAFKA_BROKERS=$BATON_KAFKA_BROKERS is not answering"); fi ;;
      exited) hints+=("$s exited: see $STATE/$s.log, then scripts/stack.sh up (starts what is not running)") ;;
      *) hints+=("$s is not running: scripts/stack.sh up (starts what is not running)") ;;
    esac
  done
  if [ "$up" = 0 ] && [ "$bad" = 1 ]; then
    log "the stack is not running: start it with scripts/stack.sh up"
    return 1
  fi
  for h in "${hints[@]}"; do log "$h"; done
  if [ "$bad" = 0 ]; then log "stack healthy"; else log "stack NOT healthy"; fi
  return "$bad"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
