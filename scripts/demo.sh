#!/usr/bin/env bash
# From a fresh machine: install what is missing, start the whole stack (broker, Redis,
# gateway, worker, scheduler, reaper) and submit a demo run whose events are printed live.
# Stop everything afterwards with: scripts/stack.sh down
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/stack.sh up
case "${BATON_PROFILE:-debug}" in debug|dev) PROFILE_DIR=debug ;; *) PROFILE_DIR="$BATON_PROFILE" ;; esac
BIN="${CARGO_TARGET_DIR:-target}/$PROFILE_DIR"
echo
echo "Submitting a demo run: echo → sleep 1 s → echo, watched until it ends"
"$BIN/batonctl" submit --goal "demo: greet, think, report" \
  --step 'echo:{"say":"hello from step 0"}' \
  --step 'sleep:{"ms":1000}' \
  --step 'echo:{"say":"done"}' \
  --idempotency-key "demo-$(date +%s)" --watch
echo
echo "The stack keeps running: try '$BIN/batonctl list' or '$BIN/batonctl --help'."
echo "Stop it with: scripts/stack.sh down"
