#!/usr/bin/env bash
# Rolling restart under load: on the dev stack (BATON_PROFILE=release scripts/stack.sh up), runs
# three workers, starts W1, and replaces each worker in turn as a Kubernetes rollout does (a new
# worker under a new name starts and gets its partitions, then the old one gets SIGTERM and
# drains). Reports how long the runs took, submit to finish, for every run slower than 1 s (a
# healthy W1 run takes ~0.1 s): a run that waited N s for a step took at least N s. The extra
# workers are stopped at the end; the stack's own worker is replaced too (its pid file updated).
#   loadtest/scripts/rolling.sh [runs]
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS="${1:-6000}"
. loadtest/scripts/dev-stack.sh
require_stack
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done' EXIT

start_worker() { # name ops-port log → pid
  BATON_WORKER_NAME="$1" BATON_WORKER_OPS_LISTEN="127.0.0.1:$2" "$BIN/baton-worker" >>"$STATE/$3" 2>&1 &
  local pid=$!
  for _ in $(seq 1 100); do curl -sf "127.0.0.1:$2/readyz" >/dev/null && break; sleep 0.1; done
  # Until the group gave it partitions (bounded).
  for _ in $(seq 1 120); do grep -q '"partitions assigned".*baton.tasks' "$STATE/$3" && break; sleep 0.25; done
  echo "$pid"
}

: >"$STATE/rolling-a.log"; : >"$STATE/rolling-b.log"
A=$(start_worker rolling-a 9464 rolling-a.log); PIDS+=("$A")
B=$(start_worker rolling-b 9465 rolling-b.log); PIDS+=("$B")
OLD=("$(cat "$STATE/worker.pid")" "$A" "$B")
TENANT="rolling-$(date +%s)"
"$BIN/baton-loadtest" --runs "$RUNS" --steps 10 --concurrency 64 --tenant "$TENANT" >"$STATE/rolling-w1.txt" 2>&1 &
LOAD=$!
sleep 3
for i in 0 1 2; do
  port=$((9466 + i)); : >"$STATE/rolling-new-$i.log"
  NEW=$(start_worker "rolling-new-$i" "$port" "rolling-new-$i.log"); PIDS+=("$NEW")
  echo "$(date +%T.%3N) replacement $i has partitions; SIGTERM to ${OLD[$i]}"
  kill -TERM "${OLD[$i]}"
  while kill -0 "${OLD[$i]}" 2>/dev/null; do sleep 0.1; done
  echo "$(date +%T.%3N) worker ${OLD[$i]} drained and left"
  [ "$i" = 0 ] && echo "$NEW" >"$STATE/worker.pid"
  sleep 2
done
wait $LOAD || true
grep RESULT "$STATE/rolling-w1.txt"
python3 loadtest/scripts/run-latency.py "$BIN/batonctl" "$TENANT"
