#!/usr/bin/env bash
# Runs parked at scale: on a fresh release dev stack, first the scheduler's and reaper's CPU with
# nothing parked (20 s), then `baton-loadtest --mode parked` (RUNS runs of `wait PARK_SECS → echo`
# submitted at RATE per second; Redis memory per parked run, how late each ends after its wake-up)
# while this script prints every 10 s: the scheduler's and the reaper's CPU over the last 10 s
# (ms of CPU per second: their sweeps' cost) and Redis's used memory. Flat sweep cost means the
# same CPU per second with 0 and with RUNS runs parked. The stack is stopped at the end.
# PARK_ON=approval parks the runs on an approval instead (`baton-loadtest --mode approvals`: Redis
# memory per parked run, then ListApprovals paged through all of them; park-secs is unused).
#   [PARK_ON=approval] loadtest/scripts/parked.sh [runs] [rate] [park-secs]
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS="${1:-100000}"
RATE="${2:-500}"
PARK="${3:-$((RUNS / RATE + 60))}"
. loadtest/scripts/dev-stack.sh
REDIS="$BATON_REDIS_URL"
TICK_MS=$((1000 / $(getconf CLK_TCK)))
SAMPLER=""
stop_all() {
  [ -n "$SAMPLER" ] && kill "$SAMPLER" 2>/dev/null || true
  scripts/stack.sh down >/dev/null 2>&1 || true
}
trap stop_all EXIT
fresh_stack
sched=$(cat "$STATE/scheduler.pid") reaper=$(cat "$STATE/reaper.pid")
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
sample() { # every 10 s: elapsed, scheduler and reaper ms of CPU per s, Redis used memory
  local start=$SECONDS s0 r0 s1 r1 mem
  s0=$(ticks "$sched"); r0=$(ticks "$reaper")
  while sleep 10; do
    s1=$(ticks "$sched"); r1=$(ticks "$reaper")
    mem=$(redis-cli -u "$REDIS" info memory | tr -d '\r' | awk -F: '/^used_memory:/{print $2}')
    printf 'sample t=%ss scheduler_cpu_ms_per_s=%s reaper_cpu_ms_per_s=%s redis_used_mb=%s\n' \
      "$((SECONDS - start))" "$(((s1 - s0) * TICK_MS / 10))" "$(((r1 - r0) * TICK_MS / 10))" "$((mem / 1048576))"
    s0=$s1; r0=$r1
  done
}
sample & SAMPLER=$!
sleep 21 # two samples with nothing parked
if [ "${PARK_ON:-timer}" = approval ]; then
  "$BIN/baton-loadtest" --mode approvals --runs "$RUNS" --rate "$RATE" --redis-url "$REDIS" \
    --timeout-secs $((RUNS / RATE * 2 + 300)) --tenant "approvals-$RUNS"
else
  "$BIN/baton-loadtest" --mode parked --runs "$RUNS" --rate "$RATE" --park-secs "$PARK" --redis-url "$REDIS" \
    --timeout-secs $((PARK * 3 + 300)) --tenant "parked-$RUNS"
fi
