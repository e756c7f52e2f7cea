#!/usr/bin/env bash
# What `redis.min_replicas_acked = 1` costs per step: W1 (and W1 at C=1) on a fresh dev stack
# whose Redis has a replica (scripts/stack.sh with BATON_DEV_REDIS_REPLICA=1), once with
# min_replicas_acked = 0 and once with 1, alternating, `series` times each. Each series starts a
# fresh stack (new broker database, empty Redis) and stops it afterwards. Prints one line per
# series; the loadtest reports are kept in .baton-wait-cost/.
#   loadtest/scripts/wait-cost.sh [series] [runs]
set -euo pipefail
cd "$(dirname "$0")/../.."
SERIES="${1:-2}"
RUNS="${2:-2000}"
export BATON_PROFILE="${BATON_PROFILE:-release}"
case "$BATON_PROFILE" in debug|dev) DIR=debug ;; *) DIR="$BATON_PROFILE" ;; esac
BIN="${CARGO_TARGET_DIR:-target}/$DIR"
OUT=.baton-wait-cost
mkdir -p "$OUT"
trap 'scripts/stack.sh down >/dev/null 2>&1 || true' EXIT
for i in $(seq 1 "$SERIES"); do
  for acked in 0 1; do
    scripts/stack.sh down >/dev/null 2>&1 || true
    rm -rf .baton
    BATON_DEV_REDIS_REPLICA=1 BATON_REDIS_MIN_REPLICAS_ACKED=$acked scripts/stack.sh up >/dev/null 2>&1
    report="$OUT/series-$i-acked-$acked"
    "$BIN/baton-loadtest" --runs "$RUNS" --steps 10 --concurrency 64 --tenant "w1-$i-$acked" >"$report-w1.txt" 2>&1
    "$BIN/baton-loadtest" --runs 200 --steps 10 --concurrency 1 --tenant "c1-$i-$acked" >"$report-c1.txt" 2>&1
    not_replicated=$(curl -s 127.0.0.1:9461/metrics | awk '/^baton_redis_writes_not_replicated_total/ {s += $2} END {print s + 0}')
    echo "series $i min_replicas_acked=$acked | W1: $(grep -m1 'steps/s' "$report-w1.txt" | tr -s ' ') | C=1: $(grep -m1 'latency' "$report-c1.txt" | tr -s ' ') | writes not replicated: $not_replicated"
  done
done
