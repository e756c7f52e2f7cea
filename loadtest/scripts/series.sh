#!/usr/bin/env bash
# Does the dev stack slow as it ages? On a fresh release dev stack (new broker database, empty
# Redis), SERIES consecutive W1 series (RUNS runs x 10 echo steps, 64 in flight), one row each:
# steps/s, the CPU per step of the broker, Redis, the gateway and the worker (/proc/<pid>/stat,
# user + system), and the size of tansu's database afterwards. The stack is stopped at the end.
#   loadtest/scripts/series.sh [series] [runs]
# BATON_DEV_BROKER_INDEX=0 starts the broker without the header index scripts/stack.sh adds, to
# see what it is for.
set -euo pipefail
cd "$(dirname "$0")/../.."
SERIES="${1:-5}"
RUNS="${2:-2000}"
. loadtest/scripts/dev-stack.sh
TICK_US=$((1000000 / $(getconf CLK_TCK)))
trap 'scripts/stack.sh down >/dev/null 2>&1 || true' EXIT
fresh_stack
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
names=(broker redis gateway worker)
pids=()
for n in "${names[@]}"; do pids+=("$(cat "$STATE/$n.pid")"); done
printf '%-7s %9s %9s %9s %9s %9s %12s\n' series steps/s broker redis gateway worker "db MB"
for s in $(seq 1 "$SERIES"); do
  before=(); for p in "${pids[@]}"; do before+=("$(cpu_ticks "$p")"); done
  result=$("$BIN/baton-loadtest" --runs "$RUNS" --steps 10 --concurrency 64 --tenant "series-$s" \
    2>>"$STATE/series-loadtest.log" | grep RESULT)
  after=(); for p in "${pids[@]}"; do after+=("$(cpu_ticks "$p")"); done
  steps=$(sed -E 's/.* steps=([0-9]+).*/\1/' <<<"$result")
  rate=$(sed -E 's/.* steps_per_s=([0-9.]+).*/\1/' <<<"$result")
  per_step=()
  for k in 0 1 2 3; do per_step+=($(( (after[k] - before[k]) * TICK_US / steps ))); done
  db=$(du -cm "$STATE"/tansu.db* | tail -1 | cut -f1)
  printf '%-7s %9s %9s %9s %9s %9s %12s\n' "$s" "$rate" "${per_step[@]}" "$db"
done
