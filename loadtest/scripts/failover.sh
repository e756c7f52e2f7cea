#!/usr/bin/env bash
# Failover under load: on the dev stack (scripts/stack.sh up), starts a second worker, runs W1,
# SIGKILLs one worker mid-load (no replacement), and reports how long the runs it affected took:
# submit to finish, for every run slower than 1 s (a healthy W1 run takes ~0.1 s).
#   loadtest/scripts/failover.sh [runs] [kill-after-seconds]
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS="${1:-3000}"
KILL_AFTER="${2:-2}"
. loadtest/scripts/dev-stack.sh
require_stack
BATON_WORKER_OPS_LISTEN=127.0.0.1:9464 "$BIN/baton-worker" >>"$STATE/worker-2.log" 2>&1 &
SECOND=$!
trap 'kill $SECOND 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do curl -sf 127.0.0.1:9464/readyz >/dev/null && break; sleep 0.1; done
# Wait (bounded) until the group gave the second worker partitions.
for _ in $(seq 1 60); do
  grep -q '"partitions assigned".*baton.tasks' "$STATE/worker-2.log" 2>/dev/null && break
  sleep 0.5
done
grep -q '"partitions assigned".*baton.tasks' "$STATE/worker-2.log" || { echo "the second worker got no partitions in 30 s" >&2; exit 1; }
TENANT="failover-$(date +%s)"
"$BIN/baton-loadtest" --runs "$RUNS" --steps 10 --concurrency 64 --tenant "$TENANT" > "$STATE/failover-w1.txt" 2>&1 &
LOAD=$!
sleep "$KILL_AFTER"
kill -KILL "$SECOND"
KILLED_AT=$(date +%s%3N)
echo "SIGKILLed the second worker (pid $SECOND) at $KILLED_AT"
wait $LOAD || true
grep RESULT "$STATE/failover-w1.txt"
python3 loadtest/scripts/run-latency.py "$BIN/batonctl" "$TENANT"
