#!/usr/bin/env bash
# The worked example in one command: a support agent with three HTTP tools — a read
# (lookup_order), an idempotent write (update_address) and a non-idempotent external call
# (charge_card) — driven by a model through Baton. By default the model is scripted
# (baton-scripted-model answering from script.json: instant and repeatable); `--model local` uses
# the real small model scripts/model-demo.sh serves on port 18187.
#
#   examples/support-agent/run.sh [--model scripted|local] [--keep]
#
# It restarts the dev stack (scripts/stack.sh) with this example's config, starts the tool server
# (and the scripted model), submits the run, prints its events, the run, and what the tools saw,
# then stops everything it started (--keep leaves the stack running). Exit status 0 when the run
# succeeded.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
EX="$ROOT/examples/support-agent"
STATE="$ROOT/.baton"
MODEL=scripted
KEEP=""
while [ $# -gt 0 ]; do
  case "$1" in
    --model) MODEL="${2:?--model needs a name}"; shift 2 ;;
    --keep) KEEP=1; shift ;;
    *) echo "usage: $0 [--model scripted|local] [--keep]" >&2; exit 2 ;;
  esac
done
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/debug"
log() { printf '==> %s\n' "$*" >&2; }
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  if [ -z "$KEEP" ]; then bash scripts/stack.sh down >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT
wait_port() { # name port
  for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$2") 2>/dev/null && return 0; sleep 0.1; done
  log "$1 did not open port $2"; exit 1
}

mkdir -p "$STATE"
bash scripts/install-deps.sh
cargo build --workspace --bins -q
log "restarting the dev stack with the example's config and tool manifest"
bash scripts/stack.sh down >/dev/null 2>&1 || true
export BATON_CONFIG="$EX/baton.toml" BATON_TOOLS_MANIFEST="$EX/tools.toml"
python3 "$EX/tool_server.py" --port 18190 >"$STATE/support-tools.log" 2>&1 &
PIDS+=($!)
wait_port "tool server" 18190
if [ "$MODEL" = scripted ]; then
  "$BIN/baton-scripted-model" --port 18186 --script "$EX/script.json" >"$STATE/scripted-model.log" 2>&1 &
  PIDS+=($!)
  wait_port "scripted model" 18186
else
  curl -sf "http://127.0.0.1:18187/v1/models" >/dev/null || { log "no model server on 18187: run scripts/model-demo.sh"; exit 1; }
fi
bash scripts/stack.sh up

GOAL="Customer message: Where is my order A1? Please deliver it to 5 Elm St instead. I accept the 4.99 redelivery fee."
SYSTEM="You are a support agent. Use the tools to look the order up, change its delivery address, and charge the redelivery fee the customer accepted. Then answer the customer in one or two sentences."
log "submitting the run (model: $MODEL)"
RUN=$("$BIN/batonctl" submit --model "$MODEL" --goal "$GOAL" --system "$SYSTEM" \
  --tool lookup_order --tool update_address --tool charge_card \
  --max-steps 12 --max-tool-calls 6 --max-tokens 30000 --idempotency-key "support-$(date +%s)")
echo "run $RUN"
echo
STATUS=0
"$BIN/batonctl" watch "$RUN" || STATUS=$?
echo
"$BIN/batonctl" get "$RUN"
echo
log "what the tool server saw (each call's Idempotency-Key is <run>:<step>)"
curl -s http://127.0.0.1:18190/calls | python3 -c '
import json, sys
seen = json.load(sys.stdin)
for c in seen["calls"]:
    print("%-15s key=%s args=%s traceparent=%s" % (c["tool"], c["key"], json.dumps(c["args"]), c["traceparent"] or "-"))
print("charges made: %d" % len(seen["charges"]))'
exit "$STATUS"
