# Sourced by the loadtest scripts that use the dev stack (scripts/stack.sh): BATON_PROFILE
# (default release, exported for stack.sh), its binaries in $BIN, the stack's state directory in
# $STATE, and the stack's addresses and log level exported for the processes they start. Scripts
# that drive a running stack call `require_stack`; those that measure a fresh one `fresh_stack`.
export BATON_PROFILE="${BATON_PROFILE:-release}"
case "$BATON_PROFILE" in debug|dev) DIR=debug ;; *) DIR="$BATON_PROFILE" ;; esac
BIN="${CARGO_TARGET_DIR:-target}/$DIR"
STATE=.baton
export BATON_REDIS_URL="${BATON_REDIS_URL:-redis://127.0.0.1:${BATON_DEV_REDIS_PORT:-16379}}"
export BATON_KAFKA_BROKERS="${BATON_KAFKA_BROKERS:-127.0.0.1:${BATON_DEV_BROKER_PORT:-19092}}"
export BATON_TELEMETRY_LOG_LEVEL="${BATON_TELEMETRY_LOG_LEVEL:-info,librdkafka=warn,rdkafka=warn}"
require_stack() {
  [ -f "$STATE/worker.pid" ] || { echo "start the stack first: BATON_PROFILE=release scripts/stack.sh up" >&2; exit 2; }
}
# Stops any stack, removes its state (new broker database, empty Redis), starts a fresh one.
fresh_stack() {
  scripts/stack.sh down >/dev/null 2>&1 || true
  rm -rf "$STATE"
  scripts/stack.sh up >/dev/null 2>&1
}
