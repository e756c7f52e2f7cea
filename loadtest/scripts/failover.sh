#!/usr/bin/env bash
# Failover under load: on the dev stack (scripts/stack.sh up), starts a second worker, runs W1,
# SIGKILLs one worker mid-load (no replacement), and reports how long the runs it affected took:
# submit to finish, for every run slower than 1 s (a healthy W1 run takes ~0.1 s).
#   loadtest/scripts/failover.sh [runs] [kill-after-seconds]
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS="${1:-3000}"
KILL_AFTER="${2:-2}"
case "${BATON_PROFILE:-release}" in debug|dev) DIR=debug ;; *) DIR="${BATON_PROFILE:-release}" ;; esac
BIN="target/$DIR"
STATE=.baton
# The dev stack's addresses (scripts/stack.sh), unless the environment names others.
export BATON_REDIS_URL="${BATON_REDIS_URL:-redis://127.0.0.1:${BATON_DEV_REDIS_PORT:-16379}}"
export BATON_KAFKA_BROKERS="${BATON_KAFKA_BROKERS:-127.0.0.1:${BATON_DEV_BROKER_PORT:-19092}}"
[ -f "$STATE/worker.pid" ] || { echo "start the stack first: BATON_PROFILE=release scripts/stack.sh up" >&2; exit 2; }
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
python3 - "$BIN/batonctl" "$TENANT" "$KILLED_AT" <<'PY'
import json, subprocess, sys
ctl, tenant, killed = sys.argv[1], sys.argv[2], int(sys.argv[3])
token, runs = "", []
while True:
    args = [ctl, "--tenant", tenant, "--json", "list", "--page-size", "500"] + (["--page-token", token] if token else [])
    page = json.loads(subprocess.run(args, check=True, capture_output=True, text=True).stdout)
    runs += page["runs"]
    token = page["next_page_token"]
    if not token:
        break
slow = sorted(r["updated_at_ms"] - r["created_at_ms"] for r in runs if r["updated_at_ms"] - r["created_at_ms"] > 1000)
done = sum(1 for r in runs if r["status"] == "succeeded")
print(f"runs={len(runs)} succeeded={done} affected(>1s)={len(slow)}")
if slow:
    pick = lambda p: slow[min(len(slow) - 1, round(p * (len(slow) - 1)))]
    print(f"affected run latency ms: p50={pick(0.5)} p99={pick(0.99)} max={slow[-1]}")
PY
