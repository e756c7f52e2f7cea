#!/usr/bin/env bash
# Throughput against fleet size, and the CPU each component spends per step: for every partition
# count and worker count, a fresh dev stack (new broker database, empty Redis) with that many
# task partitions and workers runs W1, and the CPU time of every process (/proc/<pid>/stat,
# user + system) is read before and after. One row per series: steps/s, then µs of CPU per
# step of the gateway, all workers together, Redis, the broker, scheduler + reaper, and the load
# generator (it runs on the same machine; read as this shell's waited-for children). These
# rows are what docs/scaling.md's capacity model is fitted to and checked against. The stack is
# stopped at the end.
#   loadtest/scripts/scaling.sh [runs] ["workers ..."] ["partitions ..."]
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS="${1:-2000}"
WORKERS="${2:-1 2 4}"
PARTITIONS="${3:-8 16 32}"
export BATON_PROFILE="${BATON_PROFILE:-release}"
case "$BATON_PROFILE" in debug|dev) DIR=debug ;; *) DIR="$BATON_PROFILE" ;; esac
BIN="${CARGO_TARGET_DIR:-target}/$DIR"
STATE=.baton
export BATON_REDIS_URL="redis://127.0.0.1:${BATON_DEV_REDIS_PORT:-16379}"
export BATON_KAFKA_BROKERS="127.0.0.1:${BATON_DEV_BROKER_PORT:-19092}"
TICK_US=$((1000000 / $(getconf CLK_TCK)))
EXTRA=()
stop_all() {
  for p in "${EXTRA[@]}"; do kill "$p" 2>/dev/null || true; done
  EXTRA=()
  scripts/stack.sh down >/dev/null 2>&1 || true
}
trap stop_all EXIT
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
sum_ticks() { local t=0; for p in "$@"; do t=$((t + $(cpu_ticks "$p"))); done; echo "$t"; }
printf '%-9s %-7s %9s %9s %9s %9s %9s %9s %9s\n' partitions workers steps/s gateway workers redis broker control client
for parts in $PARTITIONS; do
  for workers in $WORKERS; do
    stop_all
    rm -rf "$STATE"
    BATON_KAFKA_PARTITIONS=$parts scripts/stack.sh up >/dev/null 2>&1
    worker_pids=("$(cat "$STATE/worker.pid")")
    for i in $(seq 2 "$workers"); do
      BATON_KAFKA_PARTITIONS=$parts BATON_WORKER_NAME="worker-$i" BATON_WORKER_OPS_LISTEN="127.0.0.1:$((9462 + i))" \
        "$BIN/baton-worker" >>"$STATE/worker-$i.log" 2>&1 &
      EXTRA+=($!)
      worker_pids+=($!)
    done
    # Until every worker owns partitions (bounded), so the series measures the whole fleet.
    for _ in $(seq 1 120); do
      owning=$(grep -l '"partitions assigned".*baton.tasks' "$STATE"/worker*.log 2>/dev/null | wc -l)
      [ "$owning" -ge "$workers" ] && break
      sleep 0.5
    done
    sleep 3 # the assignment settles after the last join
    gateway=$(cat "$STATE/gateway.pid") redis=$(cat "$STATE/redis.pid") broker=$(cat "$STATE/broker.pid")
    control=("$(cat "$STATE/scheduler.pid")" "$(cat "$STATE/reaper.pid")")
    before=("$(cpu_ticks "$gateway")" "$(sum_ticks "${worker_pids[@]}")" "$(cpu_ticks "$redis")" \
      "$(cpu_ticks "$broker")" "$(sum_ticks "${control[@]}")")
    # The load generator runs on the same machine: its CPU is read too (as a child's, after it exits).
    client_before=$(awk '{print $16 + $17}' /proc/$$/stat)
    result=$("$BIN/baton-loadtest" --runs "$RUNS" --steps 10 --concurrency 64 --tenant "scale-$parts-$workers" \
      2>>"$STATE/scaling-loadtest.log" | grep RESULT)
    client_after=$(awk '{print $16 + $17}' /proc/$$/stat)
    after=("$(cpu_ticks "$gateway")" "$(sum_ticks "${worker_pids[@]}")" "$(cpu_ticks "$redis")" \
      "$(cpu_ticks "$broker")" "$(sum_ticks "${control[@]}")")
    steps=$(sed -E 's/.* steps=([0-9]+).*/\1/' <<<"$result")
    rate=$(sed -E 's/.* steps_per_s=([0-9.]+).*/\1/' <<<"$result")
    per_step=()
    for k in 0 1 2 3 4; do per_step+=($(( (after[k] - before[k]) * TICK_US / steps ))); done
    per_step+=($(( (client_after - client_before) * TICK_US / steps )))
    printf '%-9s %-7s %9s %9s %9s %9s %9s %9s %9s\n' "$parts" "$workers" "$rate" "${per_step[@]}"
  done
done
